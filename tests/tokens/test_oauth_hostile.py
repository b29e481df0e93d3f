"""Hostile input at the OAuth endpoints (issue 6 §6), over real HTTP on a live server.

Each case asserts BOTH the RFC answer (status and ``error``) AND the ledger event the
store records for it (``token.refused`` with the reason, or ``credential.auth_failed`` for
a client that fails to authenticate) — and that the reason never reaches the client.
Forged subject tokens are presented to token exchange (the grant that accepts a token from
the outside); introspection of each answers only ``{"active": false}``. Two servers on one
database (SQLite, PostgreSQL): a client assertion raced to both is used once, and a
revocation at one reaches the other's introspection.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.jwk import OKPKey
from oauth_env import GRANT_EXCHANGE, TT_ACCESS, Env, oauth_env

from keyplane.service import credentials, identities, policies, signing_keys
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.tokens.keys import b64url
from live_server import serve

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with oauth_env(tmp_path) as e:
        yield e


# ------------------------------------------------------------------------------ helpers


def _split(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(head))),
        json.loads(base64.urlsafe_b64decode(pad(body))),
    )


def _enc(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def _resign(env: Env, token: str, **changes: Any) -> str:
    """``token``'s claims with ``changes``, properly signed by the store's own key: a
    token whose only fault is what the changes make of it."""
    _, claims = _split(token)
    claims.update(changes)
    return signing_keys.signer(env.svc, "default").sign(claims, header={"typ": "at+jwt"})


def _exchange(
    env: Env, subject: str, *, client: str = "agent:worker", **extra: str
) -> httpx.Response:
    """worker exchanges ``subject`` with its own fresh token as actor_token."""
    form = {
        "grant_type": GRANT_EXCHANGE,
        "subject_token": subject,
        "subject_token_type": TT_ACCESS,
        "actor_token": env.token(client),
        "actor_token_type": TT_ACCESS,
        **extra,
    }
    return env.post("token", form, auth=env.basic(client))


def _assert_refused(
    env: Env,
    r: httpx.Response,
    status: int,
    error: str,
    reason: str,
    *,
    event: str = "token.refused",
    subject: str | None = "agent:worker",
) -> None:
    """The RFC 6749 §5.2 answer, not cached, the internal reason kept out of it, and the
    ledger event with that reason."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error, body
    assert set(body) <= {"error", "error_description"}
    assert reason not in body.get("error_description", ""), body  # internal only
    assert r.headers["cache-control"] == "no-store"
    matching = [e for e in env.events(event) if reason in e.reasons]
    assert matching, f"no {event} event with reason {reason!r}: {env.reasons(event)}"
    ev = matching[-1]
    assert ev.outcome == "deny"
    if subject is not None:
        assert ev.subject == subject
    if event == "token.refused":
        assert ev.details["error"] == error


def _inactive(env: Env, token: str) -> None:
    r = env.post("introspect", {"token": token}, auth=env.basic("agent:intruder"))
    assert r.status_code == 200 and r.json() == {"active": False}


# ------------------------------------------------------------------------------ forged tokens


def _alg_none(env: Env, good: str) -> str:
    header, claims = _split(good)
    return f"{_enc({**header, 'alg': 'none'})}.{_enc(claims)}."


def _hs256_public_key(env: Env, good: str) -> str:
    """HS256 keyed with the store's public key (PEM, as libraries that take "the key"
    and the header's alg would use it)."""
    header, claims = _split(good)
    jwk = jwt.PyJWKClient(env.jwks_uri()).get_signing_key_from_jwt(good)
    pem = jwk.key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_enc({**header, 'alg': 'HS256'})}.{_enc(claims)}"
    sig = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def _unknown_kid(env: Env, good: str) -> str:
    """Signed with a key of our own, under a kid the store never published."""
    header, claims = _split(good)
    signing_input = f"{_enc({**header, 'kid': 'not-a-published-kid'})}.{_enc(claims)}"
    sig = Ed25519PrivateKey.generate().sign(signing_input.encode())
    return f"{signing_input}.{b64url(sig)}"


def _own_key_under_the_store_kid(env: Env, good: str) -> str:
    """Signed with a key of our own under the store's real kid: the signature fails."""
    header, claims = _split(good)
    signing_input = f"{_enc(header)}.{_enc(claims)}"
    sig = Ed25519PrivateKey.generate().sign(signing_input.encode())
    return f"{signing_input}.{b64url(sig)}"


def _expired(env: Env, good: str) -> str:
    now = int(time.time())
    return _resign(env, good, iat=now - 600, nbf=now - 600, exp=now - 120)


def _not_yet_valid(env: Env, good: str) -> str:
    now = int(time.time())
    return _resign(env, good, iat=now, nbf=now + 600, exp=now + 900)


def _tampered(env: Env, good: str) -> str:
    """The payload changed (a wider scope) under the original signature."""
    head, _, sig = good.split(".")
    _, claims = _split(good)
    claims["scope"] = "document:*#read document:*#write"
    return f"{head}.{_enc(claims)}.{sig}"


FORGERIES: dict[str, tuple[Callable[[Env, str], str], str]] = {
    "alg_none": (_alg_none, "subject_alg_not_allowed"),
    "hs256_with_public_key": (_hs256_public_key, "subject_alg_not_allowed"),
    "unknown_kid": (_unknown_kid, "subject_unknown_kid"),
    "foreign_key_real_kid": (_own_key_under_the_store_kid, "subject_bad_signature"),
    "expired": (_expired, "subject_expired"),
    "not_yet_valid": (_not_yet_valid, "subject_not_yet_valid"),
    "tampered_payload": (_tampered, "subject_bad_signature"),
}


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_forged_subject_token(env: Env, case: str) -> None:
    make, reason = FORGERIES[case]
    good = env.token("agent:planner", scope="document:*#read")
    assert _exchange(env, good).status_code == 200  # the genuine one works
    forged = make(env, good)
    r = _exchange(env, forged)
    _assert_refused(env, r, 400, "invalid_request", reason)
    _inactive(env, forged)
    # nor does an independent verifier accept it
    with pytest.raises((jwt.PyJWTError, jwt.PyJWKClientError)):
        jwks = jwt.PyJWKClient(env.jwks_uri(), cache_keys=False, cache_jwk_set=False)
        key = jwks.get_signing_key_from_jwt(forged)
        jwt.decode(forged, key.key, algorithms=["EdDSA", "ES256"], audience=env.issuer())


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_forged_actor_token(env: Env, case: str) -> None:
    """The same forgeries as the client's own actor_token: invalid_request (RFC 8693
    §2.2.2), actor_<reason>."""
    make, reason = FORGERIES[case]
    subject = env.token("agent:planner", scope="document:*#read")
    forged = make(env, env.token("agent:worker"))
    form = {
        "grant_type": GRANT_EXCHANGE,
        "subject_token": subject,
        "subject_token_type": TT_ACCESS,
        "actor_token": forged,
        "actor_token_type": TT_ACCESS,
    }
    r = env.post("token", form, auth=env.basic("agent:worker"))
    _assert_refused(env, r, 400, "invalid_request", reason.replace("subject_", "actor_", 1))


def test_expiry_by_the_server_clock(env: Env) -> None:
    """A genuine token past its exp (the server's clock moved on) is refused."""
    good = env.token("agent:planner")
    env.clock.advance(400)  # past the 300 s default lifetime (+30 s leeway)
    r = _exchange(env, good)
    _assert_refused(env, r, 400, "invalid_request", "subject_expired")
    _inactive(env, good)


def test_wrong_audience(env: Env) -> None:
    """A token for another audience (neither this issuer nor the exchanging client) is not
    a subject token here."""
    elsewhere = env.token("agent:planner", audience="https://api.example")
    r = _exchange(env, elsewhere)
    _assert_refused(env, r, 400, "invalid_request", "subject_audience")
    # it is still a valid token — for its audience
    assert jwt.decode(elsewhere, options={"verify_signature": False})["aud"] == [
        "https://api.example"
    ]


def test_token_of_another_store(env: Env) -> None:
    acme = env.token("agent:planner", store="acme")
    r = _exchange(env, acme)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert [x for x in env.reasons("token.refused") if x.startswith("subject_")]
    _inactive(env, acme)


def test_replayed_client_assertion(env: Env) -> None:
    assertion = private_key_jwt_sign(
        OKPKey.import_key(env.private_key),
        client_id="agent:planner",
        token_endpoint=env.endpoint("token"),
        alg="EdDSA",
        claims={"exp": int(time.time()) + 60},
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": "agent:planner",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    assert env.post("token", form).status_code == 200
    r = env.post("token", form)
    _assert_refused(
        env, r, 401, "invalid_client", "replayed_jti",
        event="credential.auth_failed", subject="agent:planner",
    )  # fmt: skip


def test_assertion_for_another_audience(env: Env) -> None:
    assertion = private_key_jwt_sign(
        OKPKey.import_key(env.private_key),
        client_id="agent:planner",
        token_endpoint="https://other.example/oauth2/token",
        alg="EdDSA",
        claims={"exp": int(time.time()) + 60},
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    r = env.post("token", form)
    _assert_refused(
        env, r, 401, "invalid_client", "wrong_audience",
        event="credential.auth_failed", subject="agent:planner",
    )  # fmt: skip


def test_scope_widening(env: Env) -> None:
    narrow = env.token("agent:planner", scope="document:roadmap#read")
    r = _exchange(env, narrow, scope="document:*#read")
    _assert_refused(env, r, 400, "invalid_scope", "scope_widening")


def test_exchange_without_a_covering_delegation(env: Env) -> None:
    subject = env.token("agent:planner", scope="document:*#read")
    # agent:intruder holds no delegation from agent:planner
    r = _exchange(env, subject, client="agent:intruder")
    _assert_refused(env, r, 400, "invalid_request", "delegation_missing", subject="agent:intruder")
    # worker holds one, for read only: write is not covered
    r = _exchange(env, env.token("agent:planner"), scope="document:roadmap#write")
    _assert_refused(env, r, 400, "invalid_scope", "scope_not_delegated")


def test_exchange_by_a_suspended_agent(env: Env) -> None:
    subject = env.token("agent:planner", scope="document:*#read")
    actor = env.token("agent:worker")
    identities.suspend_identity(env.svc, Caller.system_caller(), "default", "agent:worker")
    form = {
        "grant_type": GRANT_EXCHANGE,
        "subject_token": subject,
        "subject_token_type": TT_ACCESS,
        "actor_token": actor,
        "actor_token_type": TT_ACCESS,
    }
    r = env.post("token", form, auth=env.basic("agent:worker"))
    _assert_refused(
        env, r, 401, "invalid_client", "identity_suspended", event="credential.auth_failed"
    )
    assert r.headers["www-authenticate"] == 'Basic realm="keyplane"'
    _inactive(env, actor)  # its own tokens die with it


def test_exchange_of_a_revoked_token(env: Env) -> None:
    subject = env.token("agent:planner", scope="document:*#read")
    r = env.post("revoke", {"token": subject}, auth=env.basic("agent:planner"))
    assert r.status_code == 200
    r = _exchange(env, subject)
    _assert_refused(env, r, 400, "invalid_request", "subject_token_revoked")
    _inactive(env, subject)


def test_revoking_another_client_s_token_is_refused(env: Env) -> None:
    planner = env.token("agent:planner")
    r = env.post("revoke", {"token": planner}, auth=env.basic("agent:intruder"))
    # RFC 7009 §2.1: the server verifies the token was issued to the requesting client
    _assert_refused(
        env, r, 400, "unauthorized_client", "not_token_client", subject="agent:intruder"
    )
    r = env.post("introspect", {"token": planner}, auth=env.basic("agent:worker"))
    assert r.json()["active"] is True


# ------------------------------------------------------------------------------ malformed requests


def test_oversized_request(env: Env) -> None:
    body = "grant_type=client_credentials&scope=" + "a" * (64 * 1024)
    r = env.post(
        "token", body, auth=env.basic("agent:planner"),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    _assert_refused(env, r, 413, "invalid_request", "body_too_large", subject=None)


def test_oversized_chunked_request(env: Env) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"grant_type=client_credentials&scope="
        for _ in range(80):
            yield b"a" * 1024

    r = httpx.post(
        env.endpoint("token"),
        content=chunks(),
        auth=env.basic("agent:planner"),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    _assert_refused(env, r, 413, "invalid_request", "body_too_large", subject=None)


MALFORMED: dict[str, tuple[dict[str, Any], str]] = {
    "json_body": (
        {"content": b'{"grant_type": "client_credentials"}',
         "headers": {"content-type": "application/json"}},
        "wrong_content_type",
    ),
    "no_content_type": ({"content": b"grant_type=client_credentials"}, "wrong_content_type"),
    "invalid_utf8": (
        {"content": b"grant_type=client_credentials&scope=%FF%FE",
         "headers": {"content-type": "application/x-www-form-urlencoded"}},
        "malformed_request",
    ),
    "repeated_grant_type": (
        {"content": b"grant_type=client_credentials&grant_type=client_credentials",
         "headers": {"content-type": "application/x-www-form-urlencoded"}},
        "repeated_parameter",
    ),
    "too_many_fields": (
        {"content": "&".join(f"x{i}=1" for i in range(200)).encode(),
         "headers": {"content-type": "application/x-www-form-urlencoded"}},
        "malformed_request",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request(env: Env, case: str) -> None:
    kw, reason = MALFORMED[case]
    r = httpx.post(env.endpoint("token"), auth=env.basic("agent:planner"), **kw)
    _assert_refused(env, r, 400, "invalid_request", reason, subject=None)


def test_missing_and_unsupported_parameters(env: Env) -> None:
    auth = env.basic("agent:worker")
    r = env.post("token", {"scope": "x"}, auth=auth)
    _assert_refused(env, r, 400, "invalid_request", "missing_parameter")
    r = env.post("token", {"grant_type": "password", "username": "u", "password": "p"}, auth=auth)
    _assert_refused(env, r, 400, "unsupported_grant_type", "unsupported_grant_type")
    r = env.post(
        "token", {"grant_type": GRANT_EXCHANGE, "subject_token": "x"}, auth=auth
    )  # no subject_token_type
    _assert_refused(env, r, 400, "invalid_request", "missing_parameter")


def test_client_authentication_must_be_single_and_present(env: Env) -> None:
    secret = env.secrets[("default", "agent:planner")]
    # two methods at once (Basic and client_secret_post)
    r = env.post(
        "token",
        {"grant_type": "client_credentials", "client_id": "agent:planner", "client_secret": secret},
        auth=env.basic("agent:planner"),
    )
    _assert_refused(env, r, 400, "invalid_request", "several_auth_methods", subject=None)
    # none at all
    r = env.post("token", {"grant_type": "client_credentials", "client_id": "agent:planner"})
    _assert_refused(env, r, 401, "invalid_client", "no_client_auth", subject=None)
    # a wrong secret (Basic): 401 with the Basic challenge, recorded by authentication
    r = env.post("token", {"grant_type": "client_credentials"}, auth=("agent:planner", "kpcs_x"))
    _assert_refused(
        env, r, 401, "invalid_client", "invalid_secret",
        event="credential.auth_failed", subject="agent:planner",
    )  # fmt: skip
    assert r.headers["www-authenticate"] == 'Basic realm="keyplane"'
    # an API key is not a client credential at the token endpoint
    r = env.post(
        "token", {"grant_type": "client_credentials"},
        headers={"authorization": f"Bearer {env.admin_key}"},
    )  # fmt: skip
    _assert_refused(env, r, 401, "invalid_client", "api_key_at_token_endpoint", subject=None)


def test_api_keys_at_introspection_and_revocation(env: Env) -> None:
    access = env.token("agent:planner")
    # a made-up key: 401 invalid_client with the Bearer challenge, and auth.failed (in the
    # _system chain, like every refused API key) naming the oauth surface
    r = env.post("introspect", {"token": access}, headers={"authorization": "Bearer kp_bogus"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Bearer")
    [ev] = env.events("auth.failed", "_system")
    assert ev.outcome == "deny" and ev.details["surface"] == "oauth"
    assert ev.resource == "POST /oauth2/introspect"
    assert "kp_bogus" not in repr(ev)
    # a reader key may introspect but not revoke: 403, and the token lives on
    r = env.post("revoke", {"token": access}, headers={"authorization": f"Bearer {env.reader_key}"})
    assert r.status_code == 403 and r.json()["error"] == "unauthorized_client"
    r = env.post(
        "introspect", {"token": access}, headers={"authorization": f"Bearer {env.reader_key}"}
    )
    assert r.status_code == 200 and r.json()["active"] is True


@pytest.mark.parametrize(
    ("header", "reason", "challenge"),
    [
        ("Basic !!!not-base64!!!", "malformed_basic", True),
        (f"Basic {base64.b64encode(b'no-colon').decode()}", "malformed_basic", True),
        ("Digest username=agent:planner", "unsupported_auth_scheme", False),
    ],
)
def test_malformed_authorization_header(
    env: Env, header: str, reason: str, challenge: bool
) -> None:
    r = env.post("token", {"grant_type": "client_credentials"}, headers={"authorization": header})
    _assert_refused(env, r, 401, "invalid_client", reason, subject=None)
    assert ("www-authenticate" in r.headers) == challenge


def test_client_assertion_type_must_be_jwt_bearer(env: Env) -> None:
    r = env.post(
        "token",
        {
            "grant_type": "client_credentials",
            "client_id": "agent:planner",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            "client_assertion": "x.y.z",
        },
    )
    _assert_refused(env, r, 401, "invalid_client", "unsupported_assertion_type", subject=None)


def test_an_assertion_replayed_to_another_server_is_refused(
    tmp_path: Path, storage_url: str
) -> None:
    """Two servers (each its own Services) behind one issuer, on one database: the same
    client assertion sent to both at once gets ONE token; the other answer is
    invalid_client (replayed_jti). Once on SQLite (one file), once on PostgreSQL."""
    public = "https://auth.example.com"  # KEYPLANE_ISSUER: both servers are this issuer
    with oauth_env(tmp_path, storage_url, issuer=public) as env:
        other = Services.open(env.svc.settings, clock=env.clock)
        try:
            with serve(other) as other_url:
                for _ in range(3):
                    codes = _race(env, [env.url, other_url], f"{public}/oauth2/token")
                    assert [c for c, _ in codes] == [200, 401], codes
                    assert codes[1][1]["error"] == "invalid_client"
            # a repeat inside a coalescing window is only counted until its summary is
            # written: write both servers' summaries before reading the ledger
            credentials.flush_auth_failures(other, force=True)
        finally:
            other.close()
        failures = env.events("credential.auth_failed")  # flushes env.svc's windows
        assert {r for e in failures for r in e.reasons} == {"replayed_jti"}
        assert sum(int(e.details["count"]) for e in failures) == 3


def _race(env: Env, urls: list[str], audience: str) -> list[tuple[int, dict[str, Any]]]:
    """POST one fresh client assertion to every url at once; the sorted answers."""
    assertion = private_key_jwt_sign(
        OKPKey.import_key(env.private_key),
        client_id="agent:planner",
        token_endpoint=audience,
        alg="EdDSA",
        claims={"exp": int(time.time()) + 60},
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    answers: list[tuple[int, dict[str, Any]]] = []
    barrier = threading.Barrier(len(urls))

    def send(url: str) -> None:
        barrier.wait()
        r = httpx.post(f"{url}/oauth2/token", data=form, timeout=10)
        answers.append((r.status_code, r.json()))

    threads = [threading.Thread(target=send, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(answers, key=lambda a: a[0])


def test_a_revocation_at_one_server_reaches_the_other(tmp_path: Path, storage_url: str) -> None:
    """Revoked through server A's revocation endpoint, a token (and the one exchanged from
    it) turns inactive at server B, which learns it from the database (its tailer), with
    no request to B in between."""
    public = "https://auth.example.com"
    with oauth_env(tmp_path, storage_url, issuer=public) as env:
        other = Services.open(
            dataclasses.replace(env.svc.settings, poll_interval=0.05), clock=env.clock
        )
        try:
            with serve(other) as b_url:
                subject = env.token("agent:planner", scope="document:*#read")
                exchanged = _exchange(env, subject).json()["access_token"]

                def active_at_b(token: str) -> bool:
                    r = httpx.post(
                        f"{b_url}/oauth2/introspect", data={"token": token},
                        auth=env.basic("agent:intruder"), timeout=10,
                    )  # fmt: skip
                    assert r.status_code == 200
                    return bool(r.json()["active"])

                assert active_at_b(subject) and active_at_b(exchanged)
                r = env.post("revoke", {"token": subject}, auth=env.basic("agent:planner"))
                assert r.status_code == 200
                deadline = time.monotonic() + 10  # a bound, not a measurement
                while active_at_b(exchanged) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert not active_at_b(exchanged) and not active_at_b(subject)
        finally:
            other.close()
        [ev] = env.events("token.revoked")
        assert ev.caller == "agent:planner"


def test_a_body_cut_short_is_refused_and_the_server_carries_on(env: Env) -> None:
    """A client that announces 1000 bytes, sends 20 and hangs up: recorded as a malformed
    request (nobody is left to answer), and the next request is served as usual."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(env.url)
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:
        s.sendall(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
            b"grant_type=client_cr"
        )
    deadline = time.monotonic() + 10  # a bound on the server noticing, not a measurement
    while "malformed_request" not in env.reasons("token.refused"):
        assert time.monotonic() < deadline, env.reasons("token.refused")
        time.sleep(0.05)
    r = env.post("token", {"grant_type": "client_credentials"}, auth=env.basic("agent:planner"))
    assert r.status_code == 200


def test_audience_outside_the_store_s_list(env: Env) -> None:
    policies.update_store_policy(
        env.svc, Caller.system_caller(), "default", token_audiences=["https://api.example"]
    )
    auth = env.basic("agent:planner")
    ok = env.post(
        "token", {"grant_type": "client_credentials", "audience": "https://api.example"}, auth=auth
    )
    assert ok.status_code == 200
    r = env.post(
        "token", {"grant_type": "client_credentials", "resource": "https://evil.example"}, auth=auth
    )
    _assert_refused(env, r, 400, "invalid_target", "audience_not_allowed", subject="agent:planner")


def test_refusals_for_a_store_that_does_not_exist_go_to_the_system_chain(env: Env) -> None:
    r = httpx.post(f"{env.url}/stores/ghost/oauth2/token", json={"grant_type": "x"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert "wrong_content_type" in env.reasons("token.refused", "_system")
    r = httpx.post(
        f"{env.url}/stores/ghost/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=env.basic("agent:planner"),
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert env.reasons("credential.auth_failed", "_system") == ["unknown_store"]
    assert not env.reasons("token.refused")  # nothing landed in the default store's ledger


def test_an_api_key_without_the_permission_is_on_the_record(env: Env) -> None:
    """403 unauthorized_client at introspection or revocation is a token.refused event
    (reason permission_denied, the key as subject), coalesced; for a store that does not
    exist, in the _system chain."""
    from keyplane.service.keys import authenticate, create_key

    admin = authenticate(env.svc, env.admin_key)
    acme_key, acme_secret = create_key(env.svc, admin, owner="acme-only", roles=["reader:acme"])
    reader = authenticate(env.svc, env.reader_key)
    access = env.token("agent:planner")
    for _ in range(3):  # revocation needs can_manage_credentials: a reader has not
        r = env.post("revoke", {"token": access}, headers={"authorization": f"Bearer {env.reader_key}"})  # fmt: skip
        assert r.status_code == 403 and r.json()["error"] == "unauthorized_client"
    # introspecting the default store's token needs reading it: an acme reader may not
    r = env.post("introspect", {"token": access}, headers={"authorization": f"Bearer {acme_secret}"})  # fmt: skip
    assert r.status_code == 403 and r.json()["error"] == "unauthorized_client"
    assert "permission_denied" not in r.text
    refused = [e for e in env.events("token.refused") if "permission_denied" in e.reasons]
    assert all(e.outcome == "deny" and e.details["error"] == "unauthorized_client"
               for e in refused)  # fmt: skip
    counts = {(e.subject, e.details["count"]) for e in refused}
    # the reader's three: one event at once, the two repeats in one summary
    assert counts == {(reader.principal, 1), (reader.principal, 2), (f"key:{acme_key.id}", 1)}
    # a store that does not exist has no ledger: the _system chain
    r = env.post("introspect", {"token": access}, store="ghost",
                 headers={"authorization": f"Bearer {acme_secret}"})  # fmt: skip
    assert r.status_code == 403 and r.json()["error"] == "unauthorized_client"
    assert "permission_denied" in env.reasons("token.refused", "_system")
    # and the refused token lives on
    r = env.post("introspect", {"token": access}, headers={"authorization": f"Bearer {env.reader_key}"})  # fmt: skip
    assert r.status_code == 200 and r.json()["active"] is True

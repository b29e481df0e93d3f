"""Client credentials through the service layer, on SQLite and PostgreSQL: secrets (hashed,
shown once, never in events), rotation overlap, revocation, the expiry cap, suspended
identities, and private_key_jwt assertions built with PyJWT (an independent library) —
accepted when right, refused for every forgery and mistake."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import (
    IdentityStateError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from keyplane.service import credentials as C
from keyplane.service import identities as I
from keyplane.service import policies as P
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.tokens.clients import LEEWAY, MAX_ASSERTION_SECONDS, ClientAuthError, hash_secret

S = "creds"
NOW = 1_800_000_000.0
URL = "https://kp.example/oauth2/token"
MODEL = "model\n  schema 1.1\ntype user\n"
ME = Caller.system_caller()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def svc(storage_url: str, clock: FixedClock) -> Iterator[Services]:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=S)
    kp = Keyplane.open(settings=settings, clock=clock)
    try:
        kp.write_model(MODEL)
        I.create_identity(kp.services, ME, S, "human", "alice")
        I.create_identity(kp.services, ME, S, "agent", "bot", owners=["human:alice"])
        yield kp.services
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


def _events(svc: Services, type_: str | None = None) -> list[Any]:
    return [e for e in svc.storage.read_events(S, limit=1000) if type_ is None or e.type == type_]


def _auth(svc: Services, **kw: Any) -> Any:
    kw.setdefault("token_endpoint_url", URL)
    store = kw.pop("store", S)
    return C.authenticate_client(svc, store, kw.pop("client_id", "agent:bot"), **kw)


def _refused(svc: Services, reason: str, **kw: Any) -> None:
    with pytest.raises(ClientAuthError) as info:
        _auth(svc, **kw)
    assert info.value.error == "invalid_client"
    assert info.value.reason == reason


# ------------------------------------------------------------------------------ secrets


def test_secret_is_random_hashed_and_shown_once(svc: Services) -> None:
    cred, secret = C.create_credential(svc, ME, S, "agent:bot")
    assert secret is not None and secret.startswith(f"kpcs_{cred.id}_")
    assert len(secret.rsplit("_", 1)[1]) == 52  # 256 bits of base32
    assert cred.client_id == "agent:bot" and cred.type == "client_secret"
    assert cred.status == "active" and cred.created_by == "system"
    assert cred.expires_at == NOW + 90 * 86400  # the default cap
    rec = svc.storage.get_credential(S, cred.id)
    assert rec is not None and rec.secret_hash == hash_secret(cred.id, secret)
    assert secret not in json.dumps(cred.to_dict())
    # shown once: reading it back never returns it
    again = C.get_credential(svc, ME, S, cred.id)
    assert again == cred and secret not in repr(again)
    listed = C.list_credentials(svc, ME, S, identity="agent:bot").items
    assert [c.id for c in listed] == [cred.id]
    _, other = C.create_credential(svc, ME, S, "agent:bot")
    assert other != secret
    # the ledger has the event, never the secret nor its hash
    (ev,) = _events(svc, "credential.created")[:1]
    assert ev.resource == f"credential:{cred.id}" and ev.details["identity"] == "agent:bot"
    dump = json.dumps([e.details for e in _events(svc)], default=str)
    assert secret not in dump and secret.rsplit("_", 1)[1] not in dump
    assert rec.secret_hash not in dump


def test_secret_authenticates_and_wrong_ones_fail(svc: Services, clock: FixedClock) -> None:
    cred, secret = C.create_credential(svc, ME, S, "agent:bot")
    assert secret is not None
    client = _auth(svc, secret=secret)
    assert client.node == "agent:bot" and client.identity.node == "agent:bot"
    assert client.credential_id == cred.id and client.method == "client_secret"
    assert client.credential_expires_at == cred.expires_at
    assert C.get_credential(svc, ME, S, cred.id).last_used_at == NOW
    clock.advance(10)
    _auth(svc, secret=secret)  # within a minute: not written again
    assert C.get_credential(svc, ME, S, cred.id).last_used_at == NOW
    tampered = secret[:-1] + ("a" if secret[-1] != "a" else "b")
    _refused(svc, "invalid_secret", secret=tampered)
    _refused(svc, "invalid_secret", secret="not-a-secret")
    _refused(svc, "unknown_client", client_id="agent:nobody", secret=secret)
    _refused(svc, "unknown_client", client_id="human:alice", secret=secret)
    I.create_identity(svc, ME, S, "agent", "other", owners=["human:alice"])
    _refused(svc, "invalid_secret", client_id="agent:other", secret=secret)
    _refused(svc, "no_single_method")
    failed = _events(svc, "credential.auth_failed")
    assert {e.reasons[0] for e in failed} >= {"invalid_secret", "unknown_client"}
    assert all(e.outcome == "deny" for e in failed)
    assert secret not in json.dumps([e.details for e in failed], default=str)


def test_failed_authentications_are_coalesced(svc: Services, clock: FixedClock) -> None:
    for _ in range(5):
        _refused(svc, "invalid_secret", secret="nope")
    assert len(_events(svc, "credential.auth_failed")) == 1
    clock.advance(2)
    assert C.flush_auth_failures(svc) == 1
    evs = _events(svc, "credential.auth_failed")
    assert sorted(e.details["count"] for e in evs) == [1, 4]


def test_failures_beyond_the_window_cap_share_one_system_window(svc: Services) -> None:
    for i in range(C.MAX_FAILURE_WINDOWS + 10):
        _refused(svc, "unknown_client", client_id=f"agent:nobody-{i}", secret="x")
    # a store that does not exist has no ledger: its refusals go to _system, unknown_store
    _refused(svc, "unknown_store", secret="x", store="no-such-store")
    in_store = _events(svc, "credential.auth_failed")
    assert len(in_store) == C.MAX_FAILURE_WINDOWS
    system = [
        e
        for e in svc.storage.read_events("_system", limit=1000)
        if e.type == "credential.auth_failed"
    ]
    assert sorted(e.reasons[0] for e in system) == ["unknown_client", "unknown_store"]
    assert all(e.subject is None for e in system)
    assert C.flush_auth_failures(svc, force=True) == 1  # the 9 repeats, summarized
    system = [
        e
        for e in svc.storage.read_events("_system", limit=1000)
        if e.type == "credential.auth_failed"
    ]
    assert sorted(e.details["count"] for e in system) == [1, 1, 9]


def test_rotation_overlap_then_only_the_new_secret(svc: Services, clock: FixedClock) -> None:
    cred, old = C.create_credential(svc, ME, S, "agent:bot")
    rotated, new = C.rotate_credential(svc, ME, S, cred.id, overlap_seconds=600)
    assert new is not None and old is not None and new != old and rotated.id == cred.id
    assert rotated.previous_expires_at == NOW + 600 and rotated.expires_at == cred.expires_at
    assert rotated.revision > cred.revision
    _auth(svc, secret=old)
    _auth(svc, secret=new)  # both valid meanwhile
    clock.advance(601)
    _refused(svc, "invalid_secret", secret=old)
    _auth(svc, secret=new)
    (ev,) = _events(svc, "credential.rotated")
    assert ev.details["previous_expires_at"] == NOW + 600
    assert new not in json.dumps(ev.details) and old not in json.dumps(ev.details)


def test_revocation_and_expiry(svc: Services, clock: FixedClock) -> None:
    _cred, secret = C.create_credential(svc, ME, S, "agent:bot", expires_at=NOW + 100)
    _auth(svc, secret=secret)
    clock.advance(100)
    _refused(svc, "expired_credential", secret=secret)
    cred2, secret2 = C.create_credential(svc, ME, S, "agent:bot")
    revoked = C.revoke_credential(svc, ME, S, cred2.id, reason="leaked")
    assert revoked.status == "revoked" and revoked.revoked_reason == "leaked"
    _refused(svc, "revoked_credential", secret=secret2)
    assert C.revoke_credential(svc, ME, S, cred2.id) == revoked  # idempotent, no event
    assert len(_events(svc, "credential.revoked")) == 1
    with pytest.raises(Exception, match="revoked"):
        C.rotate_credential(svc, ME, S, cred2.id)
    assert [c.id for c in C.list_credentials(svc, ME, S, status="revoked").items] == [cred2.id]


def test_expiry_cap_from_store_policy(svc: Services) -> None:
    with pytest.raises(ValidationError, match="max_credential_seconds"):
        C.create_credential(svc, ME, S, "agent:bot", expires_at=NOW + 91 * 86400)
    with pytest.raises(ValidationError, match="future"):
        C.create_credential(svc, ME, S, "agent:bot", expires_at=NOW - 1)
    pol = P.update_store_policy(svc, ME, S, max_credential_seconds=3600)
    assert pol.max_credential_seconds == 3600
    assert P.get_store_policy(svc, ME, S).max_credential_seconds == 3600
    cred, _ = C.create_credential(svc, ME, S, "agent:bot")
    assert cred.expires_at == NOW + 3600
    with pytest.raises(ValidationError):
        C.create_credential(svc, ME, S, "agent:bot", expires_at=NOW + 3601)
    with pytest.raises(ValidationError):
        P.update_store_policy(svc, ME, S, max_credential_seconds=10)


def test_only_registered_active_non_humans(svc: Services) -> None:
    with pytest.raises(ValidationError, match="non-human"):
        C.create_credential(svc, ME, S, "human:alice")
    with pytest.raises(NotFoundError):
        C.create_credential(svc, ME, S, "agent:ghost")
    with pytest.raises(ValidationError, match="type"):
        C.create_credential(svc, ME, S, "agent:bot", type="password")
    with pytest.raises(NotFoundError):
        C.get_credential(svc, ME, S, "01ARZ3NDEKTSV4RRFFQ69G5FAV")
    I.suspend_identity(svc, ME, S, "agent:bot")
    with pytest.raises(IdentityStateError):
        C.create_credential(svc, ME, S, "agent:bot")


def test_suspended_identity_credentials_refused(svc: Services) -> None:
    _, secret = C.create_credential(svc, ME, S, "agent:bot")
    _auth(svc, secret=secret)
    I.suspend_identity(svc, ME, S, "agent:bot")
    _refused(svc, "identity_suspended", secret=secret)
    I.reactivate_identity(svc, ME, S, "agent:bot")
    _auth(svc, secret=secret)
    I.deprovision_identity(svc, ME, S, "agent:bot")
    _refused(svc, "identity_deprovisioned", secret=secret)


def test_reader_may_not_manage(svc: Services) -> None:
    from keyplane.service import keys as K

    _key, token = K.create_key(svc, ME, owner="human:alice", roles=[f"reader:{S}"])
    reader = K.authenticate(svc, token)
    cred, _ = C.create_credential(svc, ME, S, "agent:bot")
    assert C.get_credential(svc, reader, S, cred.id).id == cred.id
    with pytest.raises(PermissionDeniedError):
        C.create_credential(svc, reader, S, "agent:bot")
    with pytest.raises(PermissionDeniedError):
        C.revoke_credential(svc, reader, S, cred.id)


# ------------------------------------------------------------------------------ private_key_jwt


def _jwk(private: Any, **extra: Any) -> dict[str, Any]:
    algo = jwt.algorithms
    if isinstance(private, ed25519.Ed25519PrivateKey):
        d = json.loads(algo.OKPAlgorithm.to_jwk(private.public_key()))
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        d = json.loads(algo.ECAlgorithm.to_jwk(private.public_key()))
    else:
        d = json.loads(algo.RSAAlgorithm.to_jwk(private.public_key()))
    d.update(extra)
    return dict(d)


def _assertion(private: Any, alg: str, **claims: Any) -> str:
    body: dict[str, Any] = {
        "iss": "agent:bot", "sub": "agent:bot", "aud": URL, "exp": int(NOW) + 60,
        "iat": int(NOW), "jti": hashlib.sha256(str(time.perf_counter_ns()).encode()).hexdigest(),
    }  # fmt: skip
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, private, algorithm=alg)


KEYS = [
    ("EdDSA", lambda: ed25519.Ed25519PrivateKey.generate()),
    ("ES256", lambda: ec.generate_private_key(ec.SECP256R1())),
    ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
]


@pytest.mark.parametrize(("alg", "make"), KEYS, ids=[k[0] for k in KEYS])
def test_private_key_jwt_assertions(svc: Services, alg: str, make: Any) -> None:
    key = make()
    cred, secret = C.create_credential(
        svc, ME, S, "agent:bot", type="private_key_jwt", public_jwk=_jwk(key)
    )
    assert secret is None and cred.alg == alg and cred.thumbprint
    assert "d" not in (cred.public_jwk or {})
    good = _assertion(key, alg)
    client = _auth(svc, assertion=good)
    assert client.node == "agent:bot" and client.credential_id == cred.id
    assert client.method == "private_key_jwt"
    _refused(svc, "replayed_jti", assertion=good)
    _refused(svc, "wrong_audience", assertion=_assertion(key, alg, aud="https://evil/token"))
    _refused(svc, "expired_assertion", assertion=_assertion(key, alg, exp=int(NOW) - 120))
    _refused(svc, "assertion_too_long", assertion=_assertion(key, alg, exp=int(NOW) + 86400))
    _refused(svc, "missing_exp", assertion=_assertion(key, alg, exp=None))
    _refused(svc, "missing_jti", assertion=_assertion(key, alg, jti=None))
    _refused(svc, "wrong_issuer", assertion=_assertion(key, alg, iss="agent:other"))
    _refused(svc, "wrong_issuer", assertion=_assertion(key, alg, sub="agent:other"))
    other = make()
    _refused(svc, "bad_signature", assertion=_assertion(other, alg))
    head, _payload, sig = _assertion(key, alg).split(".")
    forged = jwt.utils.base64url_encode(json.dumps({"iss": "agent:bot", "x": 1}).encode())
    _refused(svc, "bad_signature", assertion=f"{head}.{forged.decode()}.{sig}")
    _refused(svc, "unknown_client", client_id="agent:ghost", assertion=_assertion(key, alg))
    _refused(svc, "malformed_assertion", assertion="a.b")
    # a secret is no way in for a JWT client
    _refused(svc, "invalid_secret", secret="kpcs_" + cred.id + "_" + "a" * 52)


def test_hour_long_assertions_are_accepted_and_stay_single_use(
    svc: Services, clock: FixedClock
) -> None:
    """authlib's PrivateKeyJWT (and other common clients) sign assertions valid 3600 s by
    default: accepted (up to MAX_ASSERTION_SECONDS = 3600 s, plus the 30 s leeway), and
    their jti is kept for as long as they are accepted — a replay near the end of the hour
    is still refused. Longer ones are refused."""
    assert MAX_ASSERTION_SECONDS == 3600
    key = ed25519.Ed25519PrivateKey.generate()
    C.create_credential(svc, ME, S, "agent:bot", type="private_key_jwt", public_jwk=_jwk(key))
    hour = _assertion(key, "EdDSA", exp=int(NOW) + 3600)
    assert _auth(svc, assertion=hour).node == "agent:bot"
    at_the_edge = _assertion(key, "EdDSA", exp=int(NOW) + 3600 + LEEWAY)
    assert _auth(svc, assertion=at_the_edge).node == "agent:bot"
    _refused(svc, "assertion_too_long", assertion=_assertion(key, "EdDSA", exp=int(NOW) + 3631))
    _refused(svc, "assertion_too_long", assertion=_assertion(key, "EdDSA", exp=int(NOW) + 7200))
    clock.advance(3600 + LEEWAY - 1)  # the first one is about to expire: still single use
    _refused(svc, "replayed_jti", assertion=hour)
    clock.advance(2)
    _refused(svc, "expired_assertion", assertion=hour)


def _b64(data: dict[str, Any]) -> str:
    return jwt.utils.base64url_encode(json.dumps(data).encode()).decode()


def test_alg_none_and_hs256_with_the_public_key_refused(svc: Services) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = _jwk(key)
    C.create_credential(svc, ME, S, "agent:bot", type="private_key_jwt", public_jwk=jwk)
    claims = {
        "iss": "agent:bot", "sub": "agent:bot", "aud": URL, "exp": int(NOW) + 60, "jti": "n1",
    }  # fmt: skip
    none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    _refused(svc, "alg_not_allowed", assertion=none)
    # HS256 keyed with the public key's JSON (the classic confusion attack)
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({**claims, 'jti': 'h1'})}"
    mac = hmac.new(json.dumps(jwk).encode(), signing_input.encode(), hashlib.sha256).digest()
    hs = f"{signing_input}.{jwt.utils.base64url_encode(mac).decode()}"
    _refused(svc, "alg_not_allowed", assertion=hs)
    # a registered ES256 key does not accept an EdDSA assertion, even a well-signed one
    _refused(
        svc,
        "alg_not_allowed",
        assertion=_assertion(ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    )


def test_public_jwk_validation(svc: Services) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
    assert "d" in private

    def bad(jwk: Any, match: str) -> None:
        with pytest.raises(ValidationError, match=match):
            C.create_credential(svc, ME, S, "agent:bot", type="private_key_jwt", public_jwk=jwk)

    bad(private, "private key material")
    bad(None, "needs public_jwk")
    bad({"kty": "oct", "k": "c2VjcmV0"}, "private key material")
    bad({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}, "P-256")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    bad(_jwk(small), "2048")
    bad(_jwk(key, alg="RS256"), "does not fit")
    bad({**_jwk(key), "x": _jwk(ec.generate_private_key(ec.SECP256R1()))["x"]}, "invalid")
    with pytest.raises(ValidationError, match="only client secrets rotate"):
        cred, _ = C.create_credential(
            svc, ME, S, "agent:bot", type="private_key_jwt", public_jwk=_jwk(key)
        )
        C.rotate_credential(svc, ME, S, cred.id)


def test_revoked_key_and_suspended_identity_refuse_assertions(svc: Services) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cred, _ = C.create_credential(
        svc, ME, S, "agent:bot", type="private_key_jwt", public_jwk=_jwk(key)
    )
    _auth(svc, assertion=_assertion(key, "EdDSA"))
    I.suspend_identity(svc, ME, S, "agent:bot")
    _refused(svc, "identity_suspended", assertion=_assertion(key, "EdDSA"))
    I.reactivate_identity(svc, ME, S, "agent:bot")
    C.revoke_credential(svc, ME, S, cred.id)
    _refused(svc, "no_usable_key", assertion=_assertion(key, "EdDSA"))

"""Signing keys, the JWKS and the RFC 8414 metadata on a live server, checked by an
independent library: PyJWT's ``PyJWKClient`` fetches the published JWK Set over HTTP and
verifies JWTs the store's ``signer`` made (EdDSA and ES256), across a rotation and after
the retiring key's window. Private keys never appear in a response or a ledger event."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keyplane.clock import FixedClock
from keyplane.config import Settings
from keyplane.errors import PermissionDeniedError, ValidationError
from keyplane.ledger.events import EventFilter
from keyplane.sdk import Client
from keyplane.secrets import generate_master_key
from keyplane.service import signing_keys, stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.tokens.keys import b64url, jwk_thumbprint, unseal_private_key
from live_server import admin_key, serve

TTL = 600  # KEYPLANE_TOKEN_MAX_TTL of these servers


@dataclass
class Live:
    url: str
    key: str
    svc: Services
    clock: FixedClock

    def client(self) -> Client:
        return Client(self.url, self.key)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    clock = FixedClock(time.time())
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'kp.db'}",
        poll_interval=0.0,
        master_key=generate_master_key(),
        token_max_ttl=TTL,
    )
    svc = Services.open(settings, clock=clock)
    try:
        system = Caller.system_caller()
        stores.create_store(svc, system, "default", store_id="default")
        stores.create_store(svc, system, "acme", store_id="acme")
        key = admin_key(svc)
        with serve(svc) as base:
            yield Live(base, key, svc, clock)
    finally:
        svc.close()


def _token(live: Live, store: str, sub: str) -> str:
    now = int(time.time())
    return signing_keys.signer(live.svc, store).sign(
        {"iss": "https://issuer.example", "sub": sub, "aud": "api", "iat": now, "exp": now + 300},
        header={"typ": "at+jwt"},
    )


def _verify(jwks_url: str, token: str) -> dict[str, object]:
    client = jwt.PyJWKClient(jwks_url, cache_keys=False, cache_jwk_set=False)
    key = client.get_signing_key_from_jwt(token)
    claims: dict[str, object] = jwt.decode(
        token, key.key, algorithms=["EdDSA", "ES256"], audience="api"
    )
    return claims


def test_jwks_is_public_and_verifies_signer_tokens_eddsa(live: Live) -> None:
    jwks_url = f"{live.url}/.well-known/jwks.json"
    # no key of any kind: the first request creates the default store's first key
    r = httpx.get(jwks_url)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/jwk-set+json")
    assert r.headers["cache-control"] == "public, max-age=300"
    [jwk] = r.json()["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert jwk["kid"] == jwk_thumbprint(jwk) and "d" not in jwk
    # its creation is in the ledger, by the system, with no private material
    [ev] = live.svc.storage.read_events(
        "default", filters=EventFilter(types=("signing_key.created",))
    )
    assert ev.details == {"kid": jwk["kid"], "algorithm": "EdDSA"}

    token = _token(live, "default", "agent:planner")
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": jwk["kid"], "typ": "at+jwt"}
    assert _verify(jwks_url, token)["sub"] == "agent:planner"
    # a tampered payload does not verify
    head, body, sig = token.split(".")
    forged = json.loads(jwt.utils.base64url_decode(body))
    forged["sub"] = "agent:mallory"
    bad = ".".join([head, b64url(json.dumps(forged).encode()), sig])
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(jwks_url, bad)


def test_rotation_publishes_both_then_drops_the_retired_key(live: Live) -> None:
    jwks_url = f"{live.url}/stores/acme/.well-known/jwks.json"
    old_token = _token(live, "acme", "agent:a")  # the lazily created EdDSA key
    with live.client() as kp:
        [first] = kp.list_signing_keys(store="acme")
        new = kp.rotate_signing_key(store="acme", algorithm="ES256")
        assert (new.algorithm, new.state) == ("ES256", "active")
        new_token = _token(live, "acme", "agent:b")
        assert jwt.get_unverified_header(new_token)["kid"] == new.kid
        assert jwt.get_unverified_header(new_token)["alg"] == "ES256"

        kids = [k["kid"] for k in httpx.get(jwks_url).json()["keys"]]
        assert kids == [new.kid, first.kid]  # the active key first
        assert _verify(jwks_url, old_token)["sub"] == "agent:a"
        assert _verify(jwks_url, new_token)["sub"] == "agent:b"

        old, cur = kp.list_signing_keys(store="acme")
        assert (old.kid, old.state, cur.kid, cur.state) == (
            first.kid,
            "retiring",
            new.kid,
            "active",
        )
        assert old.publish_until == pytest.approx(live.clock.now() + TTL)

        # past the overlap window the old key is retired: no longer published
        live.clock.advance(TTL + 1)
        assert [k["kid"] for k in httpx.get(jwks_url).json()["keys"]] == [new.kid]
        with pytest.raises(jwt.PyJWKClientError):
            _verify(jwks_url, old_token)
        assert _verify(jwks_url, new_token)["sub"] == "agent:b"
        assert [k.state for k in kp.list_signing_keys(store="acme")] == ["retired", "active"]

    [ev] = live.svc.storage.read_events("acme", filters=EventFilter(types=("signing_key.rotated",)))
    assert ev.details["kid"] == new.kid and ev.details["retiring"] == [first.kid]
    assert ev.details["algorithm"] == "ES256"


def test_rotation_rules(live: Live) -> None:
    svc = live.svc
    system = Caller.system_caller()
    with pytest.raises(ValidationError):
        signing_keys.rotate_signing_key(svc, system, "acme", overlap_seconds=TTL - 1)
    with pytest.raises(ValidationError):
        signing_keys.rotate_signing_key(svc, system, "acme", algorithm="HS256")
    k = signing_keys.rotate_signing_key(svc, system, "acme", overlap_seconds=TTL * 2)
    k2 = signing_keys.rotate_signing_key(svc, system, "acme")
    keys = signing_keys.list_signing_keys(svc, system, "acme")
    assert [x.kid for x in keys] == [k.kid, k2.kid]
    assert keys[0].publish_until == pytest.approx(svc.clock.now() + TTL)
    # REST: rotating needs an admin key; listing a reader's; no key at all: 401
    with live.client() as kp:
        reader = kp.create_key(owner="r", roles=["reader"])
    with Client(live.url, reader[1]) as kp_reader:
        assert [x.kid for x in kp_reader.list_signing_keys(store="acme")] == [k.kid, k2.kid]
        with pytest.raises(PermissionDeniedError):
            kp_reader.rotate_signing_key(store="acme")
    assert httpx.get(f"{live.url}/v1/stores/acme/signing-keys").status_code == 401
    assert httpx.get(f"{live.url}/stores/nope/.well-known/jwks.json").status_code == 404


def test_authorization_server_metadata(live: Live, tmp_path: Path) -> None:
    r = httpx.get(f"{live.url}/.well-known/oauth-authorization-server")
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    md = r.json()
    assert md["issuer"] == live.url
    assert md["jwks_uri"] == f"{live.url}/.well-known/jwks.json"
    assert md["response_types_supported"] == []  # no authorization endpoint
    assert md["grant_types_supported"] == [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert md["keyplane_token_signing_alg_values_supported"] == ["EdDSA", "ES256"]
    assert md["token_endpoint"] == f"{live.url}/oauth2/token"
    assert "scopes_supported" not in md  # the store's own
    # a store's issuer, at the RFC 8414 §3.1 insertion URL; its jwks_uri serves its keys
    md = httpx.get(f"{live.url}/.well-known/oauth-authorization-server/stores/acme").json()
    assert md["issuer"] == f"{live.url}/stores/acme"
    assert md["jwks_uri"] == f"{live.url}/stores/acme/.well-known/jwks.json"
    assert md["token_endpoint"] == f"{live.url}/stores/acme/oauth2/token"
    assert md["introspection_endpoint"] == f"{live.url}/stores/acme/oauth2/introspect"
    assert md["revocation_endpoint"] == f"{live.url}/stores/acme/oauth2/revoke"
    assert httpx.get(md["jwks_uri"]).json()["keys"]
    r = httpx.get(f"{live.url}/.well-known/oauth-authorization-server/stores/nope")
    assert r.status_code == 404

    # KEYPLANE_ISSUER wins over the request's base URL
    svc = Services.open(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'iss.db'}",
            poll_interval=0.0,
            master_key=generate_master_key(),
            issuer="https://auth.example.com/",
        )
    )
    try:
        stores.create_store(svc, Caller.system_caller(), "acme", store_id="acme")
        with serve(svc) as base:
            md = httpx.get(f"{base}/.well-known/oauth-authorization-server/stores/acme").json()
    finally:
        svc.close()
    assert md["issuer"] == "https://auth.example.com/stores/acme"
    assert md["jwks_uri"] == "https://auth.example.com/stores/acme/.well-known/jwks.json"


def _private_forms(live: Live, store: str) -> list[str]:
    """Every private key of the store in the forms a leak would take (JWK ``d``, hex, PEM)."""
    forms: list[str] = []
    master = live.svc.master_key()
    for rec in live.svc.storage.list_signing_keys(store):
        key = unseal_private_key(master, rec)
        if isinstance(key, Ed25519PrivateKey):
            raw = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        else:
            raw = key.private_numbers().private_value.to_bytes(32, "big")
        forms += [b64url(raw), raw.hex(), b64url(rec.encrypted_private_key)]
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()  # fmt: skip
        forms.append(pem.splitlines()[1])
    return forms


def test_private_keys_never_leave(live: Live) -> None:
    texts: list[str] = []
    with live.client() as kp:
        kp.rotate_signing_key(store="acme", algorithm="ES256")
        texts.append(httpx.get(f"{live.url}/stores/acme/.well-known/jwks.json").text)
        kp.rotate_signing_key(store="acme")
        headers = {"Authorization": f"Bearer {live.key}"}
        texts.append(httpx.get(f"{live.url}/v1/stores/acme/signing-keys", headers=headers).text)
        texts.append(
            httpx.post(
                f"{live.url}/v1/stores/acme/signing-keys:rotate", headers=headers, json={}
            ).text
        )
        texts.append(httpx.get(f"{live.url}/stores/acme/.well-known/jwks.json").text)
    events = live.svc.storage.read_events("acme", limit=1000)
    assert {e.type for e in events} >= {"signing_key.rotated"}
    texts += [json.dumps(e.details) for e in events]
    texts += [repr(k) for k in live.svc.storage.list_signing_keys("acme")]
    texts.append(repr(signing_keys.signer(live.svc, "acme")))
    forms = _private_forms(live, "acme")
    assert len(forms) == 4 * 3  # three keys, four forms each
    for text in texts:
        assert '"d"' not in text
        for form in forms:
            assert form not in text


def test_cli_signing_key_list_and_rotate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from keyplane.cli.main import app

    monkeypatch.setenv("KEYPLANE_DATABASE_URL", f"sqlite:///{tmp_path / 'kp.db'}")
    monkeypatch.chdir(tmp_path)  # the master key file is created here, mode 0600
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, list(args))
        assert res.exit_code == code, (args, res.exit_code, res.output)
        return res.output

    assert json.loads(run("signing-key", "list", "--json")) == []  # none until needed
    first = json.loads(run("signing-key", "rotate", "--json"))
    assert (first["algorithm"], first["state"]) == ("EdDSA", "active")
    assert "d" not in first["public_jwk"]
    second = json.loads(run("signing-key", "rotate", "--algorithm", "ES256", "--json"))
    listed = json.loads(run("signing-key", "list", "--json"))
    assert [(k["kid"], k["state"]) for k in listed] == [
        (first["kid"], "retiring"),
        (second["kid"], "active"),
    ]
    assert second["kid"] in run("signing-key", "list")
    assert "error[validation_error]" in run("signing-key", "rotate", "--algorithm", "HS256", code=1)
    key_file = tmp_path / "keyplane.key"
    assert key_file.exists() and key_file.stat().st_mode & 0o077 == 0

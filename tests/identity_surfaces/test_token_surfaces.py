"""Token operations on every surface (issue 6): introspection and revocation by control-plane
callers through the SDK's Client and AsyncClient against a real server, the embedded
Keyplane, the CLI (local and remote) and MCP through the official client; the OAuth helper
:class:`keyplane.sdk.oauth.TokenClient` (client_secret_basic and private_key_jwt with
Ed25519, P-256 and RSA keys, token exchange, its own introspection and revocation) and the
CLI's ``keyplane token client-credentials|exchange`` against the live token endpoint.

Tokens are real: issued by the server's token endpoint (or, for the embedded Keyplane and
the local CLI, by the same service functions in process)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from idp_helpers import MODEL, Live
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from test_mcp_identity_plane import fails, ok, session
from test_sdk_identity_plane import SyncOverAsync
from typer.testing import CliRunner

from keyplane import Keyplane
from keyplane.cli.main import app
from keyplane.config import Settings
from keyplane.errors import PermissionDeniedError, ValidationError
from keyplane.ledger.events import EventFilter
from keyplane.mcp import READ_TOOLS, WRITE_TOOLS
from keyplane.sdk import Client
from keyplane.sdk.oauth import OAuthResponseError, TokenClient
from keyplane.service import tokens
from keyplane.service.context import Services
from keyplane.service.credentials import authenticate_client

pytestmark = pytest.mark.timeout(120)

Mint = Callable[..., str]


def _setup(kp: Any) -> str:
    """human:alice owning agent:bot with a client secret (returned)."""
    kp.create_identity("human", "alice")
    kp.create_identity("agent", "bot", owners=["human:alice"])
    _, secret = kp.create_credential("agent:bot")
    assert secret is not None
    return str(secret)


def _mint_in_process(svc: Services, store: str = "default") -> Mint:
    """Tokens issued by the service functions the token endpoint calls."""

    def mint(client_id: str, secret: str, **kw: Any) -> str:
        url = "http://keyplane.invalid/oauth2/token"
        client = authenticate_client(svc, store, client_id, secret=secret, token_endpoint_url=url)
        issued = tokens.issue_client_credentials(
            svc, store, client, issuer=tokens.token_issuer(svc, store), **kw
        )
        return issued.access_token

    return mint


def _mint_over_http(base: str) -> Mint:
    def mint(client_id: str, secret: str, **kw: Any) -> str:
        with TokenClient(base, client_id, client_secret=secret) as tc:
            return str(tc.client_credentials(**kw)["access_token"])

    return mint


@dataclass
class Surface:
    kp: Any
    mint: Mint
    svc: Services


@pytest.fixture(
    params=[
        "embedded",
        "client",
        "async_client",
        pytest.param("client_postgres", marks=pytest.mark.postgres),
    ]
)
def surface(request: pytest.FixtureRequest) -> Iterator[Surface]:
    if request.param == "embedded":
        emb: Keyplane = request.getfixturevalue("embedded")
        yield Surface(emb, _mint_in_process(emb.services), emb.services)
        return
    live: Live = request.getfixturevalue(
        "live_pg" if request.param.endswith("_postgres") else "live"
    )
    mint = _mint_over_http(live.url)
    if request.param.startswith("client"):
        with live.client() as c:
            yield Surface(c, mint, live.services)
        return
    a = SyncOverAsync(live.url, live.keys["admin"])
    try:
        yield Surface(a, mint, live.services)
    finally:
        a.close()


def test_introspect_and_revoke_on_every_sdk_surface(surface: Surface) -> None:
    kp, mint = surface.kp, surface.mint
    secret = _setup(kp)
    first = mint("agent:bot", secret, scope="document:*#read", purpose="triage")
    body = kp.introspect_token(first)
    assert body["active"] is True and body["purpose"] == "triage"
    assert body["sub"] == "agent:bot" and body["client_id"] == "agent:bot"
    assert body["scope"] == "document:*#read" and body["token_type"] == "Bearer"
    assert isinstance(body["jti"], str) and isinstance(body["exp"], int)
    # a store administrator is told why a token is inactive (the OAuth endpoint never says)
    assert kp.introspect_token("not-a-token") == {
        "active": False,
        "keyplane_inactive_reason": "malformed",
    }

    r = kp.revoke_token(first)
    assert r.revoked is True and r.jti == body["jti"] and r.revision is None
    assert kp.introspect_token(first) == {
        "active": False,
        "keyplane_inactive_reason": "token_revoked",
    }
    assert kp.revoke_token(first).revoked is False  # already dead: nothing to revoke
    assert kp.revoke_token("not-a-token").revoked is False

    second = mint("agent:bot", secret)
    claims = kp.introspect_token(second)
    r = kp.revoke_token(jti=claims["jti"], expires_at=claims["exp"], reason="leaked")
    assert r.revoked is True and r.jti == claims["jti"]
    assert isinstance(r.revision, int) and r.revision > 0
    assert kp.introspect_token(second) == {
        "active": False,
        "keyplane_inactive_reason": "token_revoked",
    }
    assert surface.svc.storage.is_token_revoked("default", claims["jti"])
    [ev] = [
        e
        for e in surface.svc.storage.read_events(
            "default", filters=EventFilter(types=("token.revoked",))
        )
        if e.details.get("jti") == claims["jti"]
    ]
    assert ev.details["reason"] == "leaked"
    assert second not in json.dumps(ev.to_dict(), default=str)  # never the token itself

    third = mint("agent:bot", secret)
    for bad in (
        {},  # neither
        {"token": third, "jti": "x"},  # both
        {"token": third, "reason": "why"},  # reason goes with jti
    ):
        with pytest.raises(ValidationError):
            kp.revoke_token(bad.pop("token", None), **bad)
    assert kp.introspect_token(third)["active"] is True  # none of those revoked it


def test_rest_roles_and_the_ledger(any_live: Live) -> None:
    live = any_live
    with live.client() as admin, live.client("reader") as reader, live.client("writer") as writer:
        secret = _setup(admin)
        token = _mint_over_http(live.url)("agent:bot", secret)
        jti = reader.introspect_token(token)["jti"]  # readers introspect
        with pytest.raises(PermissionDeniedError):
            reader.revoke_token(token)
        with pytest.raises(PermissionDeniedError):
            reader.revoke_token(jti=jti)
        assert writer.introspect_token(token)["active"] is True
        r = writer.revoke_token(token)
        assert r.revoked and r.jti == jti
        assert admin.introspect_token(token) == {
            "active": False,
            "keyplane_inactive_reason": "token_revoked",
        }
        why = reader.introspect_token(token)["keyplane_inactive_reason"]
        assert why == "token_revoked"  # readers too
        # the RFC 7662 endpoint never says why, even to an administrator's key
        r = httpx.post(
            f"{live.url}/oauth2/introspect",
            data={"token": token},
            headers={"Authorization": f"Bearer {live.keys['admin']}"},
        )
        assert r.status_code == 200 and r.json() == {"active": False}
    events = list(
        live.services.storage.read_events("default", filters=EventFilter(types=("token.revoked",)))
    )
    [ev] = [e for e in events if jti in json.dumps(e.details, default=str)]
    assert ev.caller.startswith("key:")  # the writer's key, not the token's client
    assert token not in json.dumps([e.to_dict() for e in events], default=str)


def test_an_exchanged_token_dies_with_its_subject_token(live: Live) -> None:
    with live.client() as admin:
        admin.create_identity("human", "alice")
        secrets = {}
        for name in ("planner", "worker"):
            admin.create_identity("agent", name, owners=["human:alice"])
            secrets[name] = admin.create_credential(f"agent:{name}")[1]
        d = admin.create_delegation(
            delegator="agent:planner",
            delegate="agent:worker",
            scope=[{"actions": ["read"], "resource": "document:*"}],
            expires_at=live.services.clock.now() + 3600,
        )
        with (
            TokenClient(live.url, "agent:planner", client_secret=secrets["planner"]) as planner,
            TokenClient(live.url, "agent:worker", client_secret=secrets["worker"]) as worker,
        ):
            subject = planner.client_credentials(scope="document:*#read")["access_token"]
            actor = worker.client_credentials()["access_token"]
            answer = worker.exchange(subject, actor_token=actor, scope="document:roadmap#read")
            assert answer["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
            assert answer["scope"] == "document:roadmap#read"
            exchanged = answer["access_token"]
            body = admin.introspect_token(exchanged)
            assert body["sub"] == "agent:planner" and body["act"] == {"sub": "agent:worker"}
            assert body["client_id"] == "agent:worker" and body["delegation_id"] == d.id
            assert worker.introspect(exchanged)["jti"] == body["jti"]  # the OAuth endpoint
            # a widening is refused with the RFC error
            with pytest.raises(OAuthResponseError) as exc:
                worker.exchange(subject, actor_token=actor, scope="document:roadmap#write")
            assert exc.value.error == "invalid_scope" and exc.value.status == 400

            assert admin.revoke_token(subject).revoked
            assert admin.introspect_token(exchanged) == {
                "active": False, "keyplane_inactive_reason": "parent_token_revoked",
            }  # fmt: skip
            assert worker.introspect(exchanged) == {"active": False}  # a client: never why
            assert admin.introspect_token(actor)["active"] is True  # not its parent


def _keys() -> dict[str, tuple[Any, dict[str, Any]]]:
    """name -> (what TokenClient is given as private_key, the public JWK to register)."""
    ed = ed25519.Ed25519PrivateKey.generate()
    p256 = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    return {
        "ed25519-jwk": (
            json.loads(OKPAlgorithm.to_jwk(ed)),
            json.loads(OKPAlgorithm.to_jwk(ed.public_key())),
        ),
        "p256-pem": (
            p256.private_bytes(pem, pkcs8, none).decode(),
            json.loads(ECAlgorithm.to_jwk(p256.public_key())),
        ),
        "rsa-key-object": (rsa_key, json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))),
    }


def test_token_client_auth_methods_and_errors(live: Live) -> None:
    with live.client() as admin:
        secret = _setup(admin)
        for name, (private, public) in _keys().items():
            admin.create_credential("agent:bot", type="private_key_jwt", public_jwk=public)
            with TokenClient(live.url, "agent:bot", private_key=private) as tc:
                assert "agent:bot" in repr(tc) and "private_key_jwt" in repr(tc)
                token = tc.client_credentials(
                    audience=["https://api.example", "https://b.example"]
                )["access_token"]
                body = tc.introspect(token)  # private_key_jwt at the introspection endpoint
                assert body["active"] and body["client_id"] == "agent:bot", name
                assert {"https://api.example", "https://b.example"} <= set(body["aud"])
                tc.revoke(token)  # ...and at the revocation endpoint
                gone = admin.introspect_token(token)
                assert gone == {"active": False, "keyplane_inactive_reason": "token_revoked"}, name

        with TokenClient(live.url, "agent:bot", client_secret=secret) as tc:
            assert secret not in repr(tc)
            token = tc.client_credentials()["access_token"]
            assert tc.introspect(token)["active"]
            tc.revoke(token)
            assert tc.introspect(token) == {"active": False}
            tc.revoke(token)  # RFC 7009: revoking a dead token is no error
        with pytest.raises(OAuthResponseError) as exc:
            TokenClient(live.url, "agent:bot", client_secret=secret + "x").client_credentials()
        assert exc.value.error == "invalid_client" and exc.value.status == 401
        other = ed25519.Ed25519PrivateKey.generate()  # a key nobody registered
        with pytest.raises(OAuthResponseError) as exc:
            TokenClient(live.url, "agent:bot", private_key=other).client_credentials()
        assert exc.value.error == "invalid_client"
    with pytest.raises(ValueError, match="exactly one"):
        TokenClient(live.url, "agent:bot")
    with pytest.raises(ValueError):
        TokenClient(live.url, "agent:bot", private_key="not a key")


def test_token_client_per_store_endpoints(live: Live) -> None:
    with live.client() as admin:
        admin.create_store("acme", store_id="acme")
        admin.write_model(MODEL, store="acme")
        admin.create_identity("human", "alice", store="acme")
        admin.create_identity("agent", "bot", owners=["human:alice"], store="acme")
        _, secret = admin.create_credential("agent:bot", store="acme")
        assert secret is not None
        with TokenClient(live.url, "agent:bot", client_secret=secret, store="acme") as tc:
            assert tc.token_endpoint == f"{live.url}/stores/acme/oauth2/token"
            token = tc.client_credentials()["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["iss"] == f"{live.url}/stores/acme"
        assert admin.introspect_token(token, store="acme")["active"] is True
        other = admin.introspect_token(token)  # not the default store's
        assert other["active"] is False and isinstance(other["keyplane_inactive_reason"], str)
        assert admin.revoke_token(token).revoked is False
        assert admin.revoke_token(token, store="acme").revoked is True


# ---------------------------------------------------------------------------- CLI


class Cli:
    def __init__(self, env: dict[str, str], mint: Mint) -> None:
        self.env, self.mint, self.runner = env, mint, CliRunner()

    def invoke(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        res = self.runner.invoke(app, list(args), env=self.env, input=stdin)
        return res.exit_code, res.stdout, res.stderr

    def run(self, *args: str, code: int = 0, stdin: str | None = None) -> str:
        rc, out, err = self.invoke(*args, stdin=stdin)
        assert rc == code, (args, rc, out, err)
        return out


@pytest.fixture(params=["local", "remote"])
def cli(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cli]:
    for var in ("KEYPLANE_URL", "KEYPLANE_API_KEY", "KEYPLANE_CLIENT_SECRET", "KEYPLANE_STORE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "model.fga").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    if request.param == "local":
        db = f"sqlite:///{tmp_path / 'local.db'}"
        with Keyplane.open(settings=Settings(database_url=db, poll_interval=0.0)) as kp:
            c = Cli({"KEYPLANE_DATABASE_URL": db}, _mint_in_process(kp.services))
            c.run("model", "write", "model.fga")
            yield c
        return
    live: Live = request.getfixturevalue("live")
    yield Cli(
        {
            "KEYPLANE_URL": live.url,
            "KEYPLANE_API_KEY": live.keys["admin"],
            "KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'must-not-be-used.db'}",
        },
        _mint_over_http(live.url),
    )


def test_cli_introspect_and_revoke(cli: Cli) -> None:
    cli.run("identity", "create", "human", "alice")
    cli.run("identity", "create", "agent", "bot", "--owner", "human:alice")
    secret = json.loads(cli.run("credential", "create", "agent:bot", "--json"))["secret"]
    token = cli.mint("agent:bot", secret)
    body = json.loads(cli.run("token", "introspect", token))
    assert body["active"] is True and body["sub"] == "agent:bot"
    assert json.loads(cli.run("token", "introspect", "-", stdin=token + "\n"))["jti"] == body["jti"]
    garbage = json.loads(cli.run("token", "introspect", "garbage", code=3))
    assert garbage == {"active": False, "keyplane_inactive_reason": "malformed"}

    revoked = json.loads(cli.run("token", "revoke", "-", "--json", stdin=token))
    assert revoked == {"revoked": True, "jti": body["jti"], "revision": None}
    dead = json.loads(cli.run("token", "introspect", token, code=3))
    assert dead == {"active": False, "keyplane_inactive_reason": "token_revoked"}
    assert "Nothing to revoke" in cli.run("token", "revoke", token)

    other = cli.mint("agent:bot", secret)
    jti = json.loads(cli.run("token", "introspect", other))["jti"]
    text = cli.run("token", "revoke", "--jti", jti, "--reason", "leaked")
    assert f"Revoked token {jti} (revision " in text
    cli.run("token", "introspect", other, code=3)

    rc, _, err = cli.invoke("token", "revoke", other, "--jti", jti)
    assert rc == 2 and "not both" in err
    rc, _, err = cli.invoke("token", "revoke")
    assert rc == 2


def test_cli_oauth_grants(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KEYPLANE_URL", "KEYPLANE_API_KEY", "KEYPLANE_CLIENT_SECRET", "KEYPLANE_STORE"):
        monkeypatch.delenv(var, raising=False)
    with live.client() as admin:
        admin.create_identity("human", "alice")
        secrets = {}
        for name in ("planner", "worker"):
            admin.create_identity("agent", name, owners=["human:alice"])
            secrets[name] = admin.create_credential(f"agent:{name}")[1]
        admin.create_delegation(
            delegator="agent:planner",
            delegate="agent:worker",
            scope=[{"actions": ["read"], "resource": "document:*"}],
            expires_at=live.services.clock.now() + 3600,
        )
        key = ec.generate_private_key(ec.SECP256R1())
        admin.create_credential(
            "agent:worker",
            type="private_key_jwt",
            public_jwk=json.loads(ECAlgorithm.to_jwk(key.public_key())),
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "worker.pem").write_bytes(pem)
    base = {"KEYPLANE_URL": live.url}
    planner = Cli({**base, "KEYPLANE_CLIENT_SECRET": str(secrets["planner"])}, _no_mint)
    worker = Cli(base, _no_mint)

    got = json.loads(
        planner.run(
            "token",
            "client-credentials",
            "--client-id",
            "agent:planner",
            "--scope",
            "document:*#read",
        )
    )
    assert got["token_type"] == "Bearer" and got["scope"] == "document:*#read"
    subject = got["access_token"]
    actor = json.loads(
        worker.run(
            "token",
            "client-credentials",
            "--client-id",
            "agent:worker",
            "--private-key",
            str(tmp_path / "worker.pem"),
        )
    )["access_token"]
    exchanged = json.loads(
        worker.run(
            "token",
            "exchange",
            "--client-id",
            "agent:worker",
            "--client-secret",
            str(secrets["worker"]),
            "--subject-token",
            "-",
            "--actor-token",
            actor,
            "--scope",
            "document:plan#read",
            stdin=subject,
        )
    )
    assert exchanged["issued_token_type"].endswith(":access_token")
    with Client(live.url, live.keys["reader"]) as reader:
        body = reader.introspect_token(exchanged["access_token"])
    assert body["sub"] == "agent:planner" and body["act"] == {"sub": "agent:worker"}

    rc, _, err = worker.invoke(
        "token", "exchange", "--client-id", "agent:worker", "--client-secret", "kpcs_wrong",
        "--subject-token", subject,
    )  # fmt: skip
    assert rc == 1 and "error[invalid_client]" in err
    rc, _, err = Cli({}, _no_mint).invoke(
        "token", "client-credentials", "--client-id", "agent:worker", "--client-secret", "x"
    )
    assert rc == 2 and "--url" in err
    rc, _, err = worker.invoke("token", "client-credentials", "--client-id", "agent:worker")
    assert rc == 2 and "--client-secret" in err


def _no_mint(*_a: Any, **_kw: Any) -> str:
    raise AssertionError("not used")


# ---------------------------------------------------------------------------- MCP


def test_mcp_introspect_and_revoke(live: Live) -> None:
    assert "introspect_token" in READ_TOOLS and "revoke_token" in WRITE_TOOLS
    with live.client() as admin:
        secret = _setup(admin)
    mint = _mint_over_http(live.url)
    first, second = mint("agent:bot", secret), mint("agent:bot", secret)

    async def main() -> None:
        async with session(live.url, live.keys["reader"]) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert "introspect_token" in names and "revoke_token" not in names
            body, text = await ok(s, "introspect_token", {"token": first})
            assert body["active"] is True and body["sub"] == "agent:bot"
            assert text.startswith("active: agent:bot") and first not in text
            await fails(s, "revoke_token", {"token": first}, "permission_denied")
        async with session(live.url, live.keys["admin"]) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert tools["revoke_token"].annotations is not None
            assert tools["revoke_token"].annotations.destructive_hint is True
            body, _ = await ok(s, "introspect_token", {"token": second})
            done, text = await ok(
                s, "revoke_token", {"jti": body["jti"], "expires_at": body["exp"], "reason": "x"}
            )
            assert done["revoked"] is True and done["jti"] == body["jti"] and done["revision"] > 0
            assert body["jti"] in text
            done, _ = await ok(s, "revoke_token", {"token": first})
            assert done == {"revoked": True, "jti": done["jti"], "revision": None}
            for t in (first, second):
                gone, text = await ok(s, "introspect_token", {"token": t})
                assert gone == {"active": False, "keyplane_inactive_reason": "token_revoked"}
                assert text.startswith("inactive") and "token_revoked" in text
            await fails(s, "revoke_token", {}, "validation_error")

    anyio.run(main)

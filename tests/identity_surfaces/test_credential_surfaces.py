"""Client credentials on every surface (issue 6 §2): REST through the SDK's Client and
AsyncClient against a real server, the embedded Keyplane, the CLI (local and remote, the
secret printed once) and MCP through the official client (list/get only: an agent cannot
mint credentials). The store-policy cap ``max_credential_seconds`` on each as well."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from idp_helpers import MODEL, Live
from jwt.algorithms import OKPAlgorithm
from test_cli_identity_plane import _run
from test_mcp_identity_plane import fails, ok, session
from test_sdk_identity_plane import SyncOverAsync

from keyplane.errors import PermissionDeniedError, ValidationError
from keyplane.mcp import NOT_EXPOSED, READ_TOOLS, WRITE_TOOLS
from keyplane.service.credentials import authenticate_client

URL = "https://kp.example/oauth2/token"


@pytest.fixture(params=["embedded", "client", "async_client"])
def kp(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "embedded":
        yield request.getfixturevalue("embedded")
        return
    live: Live = request.getfixturevalue("live")
    if request.param == "client":
        with live.client() as c:
            yield c
        return
    a = SyncOverAsync(live.url, live.keys["admin"])
    try:
        yield a
    finally:
        a.close()


def test_credential_scenario(kp: Any) -> None:
    kp.create_identity("human", "alice")
    kp.create_identity("agent", "bot", owners=["human:alice"])
    cred, secret = kp.create_credential("agent:bot")
    assert secret and secret.startswith(f"kpcs_{cred.id}_")
    assert cred.client_id == "agent:bot" and cred.type == "client_secret"
    got = kp.get_credential(cred.id)
    assert got.id == cred.id and got.expires_at == cred.expires_at
    page = kp.list_credentials(identity="agent:bot", status="active")
    assert [c.id for c in page.items] == [cred.id]
    rotated, new = kp.rotate_credential(cred.id, overlap_seconds=60)
    assert new and new != secret and rotated.previous_expires_at is not None
    revoked = kp.revoke_credential(cred.id, reason="done")
    assert revoked.status == "revoked" and revoked.revoked_reason == "done"
    jwk = json.loads(OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate().public_key()))
    keyed, none = kp.create_credential("agent:bot", type="private_key_jwt", public_jwk=jwk)
    assert none is None and keyed.alg == "EdDSA" and keyed.public_jwk["x"] == jwk["x"]
    with pytest.raises(ValidationError):
        kp.create_credential("human:alice")
    pol = kp.update_store_policy(max_credential_seconds=7200)
    assert pol.max_credential_seconds == 7200
    assert kp.get_store_policy().max_credential_seconds == 7200
    short, _ = kp.create_credential("agent:bot")
    assert short.expires_at - short.created_at == pytest.approx(7200, abs=1)


def test_rest_secret_authenticates_and_reader_is_refused(live: Live) -> None:
    with live.client() as admin, live.client("reader") as reader:
        admin.create_identity("human", "alice")
        admin.create_identity("agent", "bot", owners=["human:alice"])
        _, secret = admin.create_credential("agent:bot")
        assert secret is not None
        ident = authenticate_client(
            live.services, "default", "agent:bot", secret=secret, token_endpoint_url=URL
        )
        assert ident.node == "agent:bot"
        assert len(reader.list_credentials().items) == 1
        with pytest.raises(PermissionDeniedError):
            reader.create_credential("agent:bot")
    with live.client("writer") as writer:
        assert writer.create_credential("agent:bot")[1]


@pytest.fixture(params=["local", "remote"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("KEYPLANE_URL", raising=False)
    monkeypatch.delenv("KEYPLANE_API_KEY", raising=False)
    (tmp_path / "model.fga").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    if request.param == "local":
        run, _ = _run({"KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}"})
        run("model", "write", "model.fga")
        return run
    live: Live = request.getfixturevalue("live")
    run, _ = _run(
        {
            "KEYPLANE_URL": live.url,
            "KEYPLANE_API_KEY": live.keys["admin"],
            "KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'must-not-be-used.db'}",
        }
    )
    return run


def test_cli_credentials(cli: Any, tmp_path: Path) -> None:
    run = cli
    run("identity", "create", "human", "alice")
    run("identity", "create", "agent", "bot", "--owner", "human:alice")
    text = run("credential", "create", "agent:bot")
    assert "shown only now" in text
    secret = next(w for w in text.split() if w.startswith("kpcs_"))
    made = json.loads(run("credential", "create", "agent:bot", "--json"))
    assert made["secret"].startswith("kpcs_") and made["credential"]["client_id"] == "agent:bot"
    cid = made["credential"]["id"]
    listed = json.loads(run("credential", "list", "--identity", "agent:bot", "--json"))
    assert len(listed) == 2 and secret not in json.dumps(listed)
    assert cid in run("credential", "list")
    got = json.loads(run("credential", "get", cid, "--json"))
    assert got["id"] == cid and "secret" not in got
    rotated = run("credential", "rotate", cid, "--overlap-seconds", "30")
    assert "kpcs_" in rotated and "previous secret works until" in rotated
    revoked = json.loads(run("credential", "revoke", cid, "--reason", "x", "--json"))
    assert revoked["status"] == "revoked"
    jwk = json.loads(OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate().public_key()))
    (tmp_path / "key.jwk").write_text(json.dumps(jwk))
    keyed = json.loads(
        run("credential", "create", "agent:bot", "--public-jwk", "key.jwk", "--json")
    )
    assert keyed["secret"] is None and keyed["credential"]["type"] == "private_key_jwt"
    assert "max credential: 3600 s" in run("policy", "set", "--max-credential-seconds", "3600")


def test_mcp_lists_and_reads_but_cannot_mint(live: Live) -> None:
    for op in ("create", "rotate", "revoke"):
        assert f"credentials.{op}_credential" in NOT_EXPOSED
        assert f"{op}_credential" not in {*READ_TOOLS, *WRITE_TOOLS}
    with live.client() as admin:
        admin.create_identity("human", "alice")
        admin.create_identity("agent", "bot", owners=["human:alice"])
        cred, secret = admin.create_credential("agent:bot")
    assert secret is not None

    async def main() -> None:
        async with session(live.url, live.keys["admin"]) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert {"list_credentials", "get_credential"} <= names
            assert not names & {"create_credential", "rotate_credential", "revoke_credential"}
            listed, text = await ok(s, "list_credentials", {"identity": "agent:bot"})
            assert [c["id"] for c in listed["credentials"]] == [cred.id]
            assert secret not in json.dumps(listed) and secret not in text
            got, _ = await ok(s, "get_credential", {"credential_id": cred.id})
            assert got["client_id"] == "agent:bot"
            await fails(s, "get_credential", {"credential_id": "nope"}, "not_found")

    anyio.run(main)

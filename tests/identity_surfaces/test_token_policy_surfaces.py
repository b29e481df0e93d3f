"""The store policy's token settings (issue 6: access_token_seconds, allow_impersonation,
token_audiences, trusted_issuers) on every surface: REST through the SDK's Client and
AsyncClient against a real server (and raw HTTP for the wire shape and refusals), the
embedded Keyplane, the CLI (local and remote) and MCP's get_store_policy (read only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from idp_helpers import MODEL, Live
from jwt.algorithms import OKPAlgorithm
from test_cli_identity_plane import _run
from test_mcp_identity_plane import ok, session
from test_sdk_identity_plane import SyncOverAsync

from keyplane.errors import PermissionDeniedError, ValidationError
from keyplane.mcp import NOT_EXPOSED
from keyplane.policy.records import TrustedIssuer


def _jwk() -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(
        OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate().public_key())
    )
    jwk["kid"] = "idp-1"
    return jwk


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


def test_token_policy_round_trip(kp: Any) -> None:
    p0 = kp.get_store_policy()
    assert (p0.access_token_seconds, p0.allow_impersonation) == (300, False)
    assert p0.token_audiences == () and p0.trusted_issuers == ()
    jwk = _jwk()
    idp = TrustedIssuer(
        "https://idp.example", jwks={"keys": [jwk]}, audience="keyplane", subject_claim="email",
        algorithms=("EdDSA",),
    )  # fmt: skip
    p1 = kp.update_store_policy(
        access_token_seconds=900, allow_impersonation=True,
        token_audiences=["https://api.example"],
        trusted_issuers=[idp, {"issuer": "https://login.example", "jwks_uri":
                               "https://login.example/keys", "audience": "kp",
                               "subject_kind": "human"}],
    )  # fmt: skip
    assert p1.access_token_seconds == 900 and p1.allow_impersonation is True
    assert p1.token_audiences == ("https://api.example",)
    assert p1.trusted_issuers == (
        idp,
        TrustedIssuer("https://login.example", jwks_uri="https://login.example/keys", audience="kp"),
    )  # fmt: skip
    assert kp.get_store_policy() == p1
    # the older settings are untouched, and lists replaced whole
    assert p1.max_credential_seconds == p0.max_credential_seconds
    p2 = kp.update_store_policy(trusted_issuers=[], token_audiences=[])
    assert p2.trusted_issuers == () and p2.token_audiences == () and p2.allow_impersonation
    with pytest.raises(ValidationError):
        kp.update_store_policy(access_token_seconds=30)
    with pytest.raises(ValidationError):
        kp.update_store_policy(
            trusted_issuers=[{"issuer": "https://x", "jwks_uri": "http://evil.example/k",
                              "audience": "kp"}]
        )  # fmt: skip
    with pytest.raises(ValidationError) as exc:  # no audience: refused (token confusion)
        kp.update_store_policy(trusted_issuers=[{"issuer": "https://x", "jwks_uri": "https://x/k"}])
    assert "audience" in str(exc.value)
    assert kp.get_store_policy() == p2


def test_rest_wire_shape_and_refusals(live: Live) -> None:
    base = f"{live.url}/v1/stores/default/policy"
    admin = {"Authorization": f"Bearer {live.keys['admin']}"}
    got = httpx.get(base, headers=admin).json()
    assert got["access_token_seconds"] == 300 and got["allow_impersonation"] is False
    assert got["token_audiences"] == [] and got["trusted_issuers"] == []
    body = {
        "allow_impersonation": True,
        "trusted_issuers": [{"issuer": "https://idp.example", "jwks_uri": "https://idp.example/k",
                             "audience": "https://kp.example"}],
    }  # fmt: skip
    r = httpx.patch(base, headers=admin, json=body)
    assert r.status_code == 200, r.text
    [t] = r.json()["trusted_issuers"]
    assert t == {
        "issuer": "https://idp.example", "jwks": None, "jwks_uri": "https://idp.example/k",
        "audience": "https://kp.example", "subject_kind": "human", "subject_claim": "sub",
        "algorithms": ["RS256", "ES256", "EdDSA"],
    }  # fmt: skip
    for bad in (
        {"allow_impersonation": "true"},  # strict booleans
        {"access_token_seconds": 10},
        {"token_audiences": "https://api.example"},
        {"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/k", "nope": 1}]},
        {"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/k",
                              "subject_kind": "robot"}]},
        {"trusted_issuers": [{"issuer": "https://x", "audience": "kp"}]},
        {"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/k"}]},  # no aud
        {"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/k",
                              "audience": None}]},
        {"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/k",
                              "audience": ""}]},
    ):  # fmt: skip
        r = httpx.patch(base, headers=admin, json=bad)
        assert r.status_code == 400, (bad, r.text)
    assert httpx.get(base, headers=admin).json()["trusted_issuers"] == [t]
    with live.client("writer") as writer:
        assert writer.get_store_policy().allow_impersonation is True
        with pytest.raises(PermissionDeniedError):
            writer.update_store_policy(allow_impersonation=False)


@pytest.fixture(params=["local", "remote"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("KEYPLANE_URL", raising=False)
    monkeypatch.delenv("KEYPLANE_API_KEY", raising=False)
    (tmp_path / "model.fga").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    if request.param == "local":
        run, invoke = _run({"KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}"})
        run("model", "write", "model.fga")
        return run, invoke
    live: Live = request.getfixturevalue("live")
    return _run(
        {
            "KEYPLANE_URL": live.url,
            "KEYPLANE_API_KEY": live.keys["admin"],
            "KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'must-not-be-used.db'}",
        }
    )


def test_cli_token_policy(cli: Any, tmp_path: Path) -> None:
    run, invoke = cli
    jwk = _jwk()
    issuers: list[dict[str, Any]] = [
        {
            "issuer": "https://idp.example",
            "jwks": {"keys": [jwk]},
            "subject_claim": "email",
            "audience": "kp",
        },
        {
            "issuer": "https://login.example",
            "jwks_uri": "https://login.example/keys",
            "audience": "kp",
        },
    ]
    (tmp_path / "issuers.json").write_text(json.dumps(issuers))
    text = run(
        "policy", "set", "--access-token-seconds", "600", "--allow-impersonation",
        "--token-audience", "https://api.example", "--token-audience", "urn:kp:mail",
        "--trusted-issuers", "issuers.json",
    )  # fmt: skip
    assert "access token lifetime: 600 s" in text and "impersonation: allowed" in text
    assert "token audiences: https://api.example, urn:kp:mail" in text
    assert "https://idp.example → human:<email> (aud kp; keys: 1 inline key(s))" in text
    assert "https://login.example → human:<sub> (aud kp; keys: https://login.example/keys)" in text
    got = json.loads(run("policy", "get", "--json"))
    assert got["access_token_seconds"] == 600 and got["allow_impersonation"] is True
    assert got["token_audiences"] == ["https://api.example", "urn:kp:mail"]
    assert [t["issuer"] for t in got["trusted_issuers"]] == [i["issuer"] for i in issuers]
    assert got["trusted_issuers"][0]["jwks"] == {"keys": [jwk]}
    cleared = json.loads(
        run("policy", "set", "--refuse-impersonation", "--clear-token-audiences", "--json")
    )
    assert cleared["allow_impersonation"] is False and cleared["token_audiences"] == []
    assert len(cleared["trusted_issuers"]) == 2  # not given: unchanged
    (tmp_path / "none.json").write_text("[]")
    assert (
        json.loads(run("policy", "set", "--trusted-issuers", "none.json", "--json"))[
            "trusted_issuers"
        ]
        == []
    )
    (tmp_path / "bad.json").write_text("{not json")
    rc, _out, err = invoke("policy", "set", "--trusted-issuers", "bad.json")
    assert rc == 2 and "--trusted-issuers" in err
    rc, _out, err = invoke("policy", "set", "--access-token-seconds", "5")
    assert rc != 0 and "access_token_seconds" in err


def test_mcp_reads_the_token_settings(live: Live) -> None:
    assert "policies.update_store_policy" in NOT_EXPOSED
    with live.client() as admin:
        admin.update_store_policy(
            access_token_seconds=120,
            trusted_issuers=[
                {
                    "issuer": "https://idp.example",
                    "jwks_uri": "https://idp.example/k",
                    "audience": "kp",
                }
            ],
        )

    async def main() -> None:
        async with session(live.url, live.keys["admin"]) as s:
            pol, text = await ok(s, "get_store_policy", {})
            assert pol["access_token_seconds"] == 120 and pol["allow_impersonation"] is False
            assert [t["issuer"] for t in pol["trusted_issuers"]] == ["https://idp.example"]
            assert "access tokens last 120 s" in text and "1 trusted issuer(s)" in text

    anyio.run(main)

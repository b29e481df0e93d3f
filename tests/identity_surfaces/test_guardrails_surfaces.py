"""Guardrails on every surface: REST (``/guardrails``, ``/guardrails/versions``,
``/guardrails:dry-run``), the SDK (embedded, Client), the CLI and the MCP read tools —
versions kept, invalid rules refused with ``invalid_guardrail``, writing for admins only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from idp_helpers import Live
from test_mcp_identity_plane import fails, ok, session
from typer.testing import CliRunner

from keyplane.cli.main import app
from keyplane.errors import GuardrailInvalidError, PermissionDeniedError
from keyplane.mcp import NOT_EXPOSED, READ_TOOLS, WRITE_TOOLS, build_tools
from keyplane.policy.records import Guardrail, GuardrailSet

S = "/v1/stores/default"
RULES = [
    {
        "id": "no-agent-delete",
        "description": "agents may not delete",
        "effect": "forbid",
        "expression": 'chain_length > 0 && action == "delete"',
    },
    {
        "id": "chain-2",
        "effect": "require_approval",
        "expression": "chain_length > 2",
        "enabled": False,
    },
]


def _http(live: Live, role: str = "admin") -> httpx.Client:
    return httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {live.keys[role]}"}, timeout=30
    )


def _ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def _error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert err["code"] == code
    return err


def test_rest(live: Live) -> None:
    with _http(live) as c:
        none = _ok(c.get(f"{S}/guardrails"))
        assert none["version"] == 0 and none["rules"] == []
        v1 = _ok(c.put(f"{S}/guardrails", json={"rules": RULES}))
        assert v1["version"] == 1 and [r["id"] for r in v1["rules"]] == [
            "no-agent-delete",
            "chain-2",
        ]
        assert v1["rules"][0] == {**RULES[0], "enabled": True}
        assert v1["rules"][1]["enabled"] is False and v1["rules"][1]["description"] == ""
        assert v1["created_by"].startswith("key:") and v1["revision"] > 0
        v2 = _ok(c.put(f"{S}/guardrails", json={"rules": RULES[:1]}))
        assert v2["version"] == 2 and len(v2["rules"]) == 1
        assert _ok(c.get(f"{S}/guardrails")) == v2
        assert _ok(c.get(f"{S}/guardrails", params={"version": 1})) == v1
        versions = _ok(c.get(f"{S}/guardrails/versions"))
        assert [v["version"] for v in versions["versions"]] == [2, 1]
        page = _ok(c.get(f"{S}/guardrails/versions", params={"page_size": 1}))
        assert [v["version"] for v in page["versions"]] == [2] and page["continuation_token"]

        bad = _error(
            c.put(
                f"{S}/guardrails",
                json={"rules": [{"id": "x", "effect": "forbid", "expression": "action =="}]},
            ),
            400,
            "invalid_guardrail",
        )
        assert bad["message"]
        _error(
            c.put(
                f"{S}/guardrails",
                json={"rules": [{"id": "x", "effect": "forbid", "expression": "no_such_var"}]},
            ),
            400,
            "invalid_guardrail",
        )
        _error(
            c.put(f"{S}/guardrails", json={"rules": [RULES[0], RULES[0]]}),
            400,
            "invalid_guardrail",
        )
        _error(
            c.put(
                f"{S}/guardrails",
                json={"rules": [{"id": "x", "effect": "maybe", "expression": "true"}]},
            ),
            400,
            "validation_error",
        )
        assert _ok(c.get(f"{S}/guardrails"))["version"] == 2  # nothing stored by refusals
        _error(c.get(f"{S}/guardrails", params={"version": 9}), 404, "not_found")

        run = _ok(c.post(f"{S}/guardrails:dry-run", json={"rules": RULES, "last": 50}))
        assert run["considered"] == 0 and run["changed"] == 0 and run["flips"] == []
        assert run["current_version"] == 2
        _error(
            c.post(
                f"{S}/guardrails:dry-run",
                json={"rules": [{"id": "x", "effect": "forbid", "expression": "1 +"}]},
            ),
            400,
            "invalid_guardrail",
        )
    with _http(live, "writer") as w:
        assert _ok(w.get(f"{S}/guardrails"))["version"] == 2
        _error(w.put(f"{S}/guardrails", json={"rules": []}), 403, "permission_denied")
    with _http(live, "reader") as r:
        _error(r.post(f"{S}/guardrails:dry-run", json={"rules": []}), 403, "permission_denied")


@pytest.mark.parametrize("flavour", ["embedded", "client"])
def test_sdk(flavour: str, request: pytest.FixtureRequest) -> None:
    if flavour == "embedded":
        kp: Any = request.getfixturevalue("embedded")
    else:
        live: Live = request.getfixturevalue("live")
        kp = live.client()
    try:
        g = kp.put_guardrails([Guardrail("r1", "first", "forbid", "chain_length > 3"), RULES[0]])
        assert isinstance(g, GuardrailSet) and g.version == 1
        assert g.rules[0] == Guardrail("r1", "first", "forbid", "chain_length > 3", True)
        assert kp.get_guardrails() == g and kp.get_guardrails(version=1) == g
        kp.put_guardrails([])
        assert [v.version for v in kp.list_guardrail_versions().items] == [2, 1]
        assert kp.get_guardrails().rules == ()
        run = kp.dry_run_guardrails(RULES, last=10)
        assert (run.considered, run.changed, run.current_version) == (0, 0, 2)
        with pytest.raises(GuardrailInvalidError):
            kp.put_guardrails([{"id": "bad", "effect": "forbid", "expression": "(("}])
    finally:
        if flavour == "client":
            kp.close()


def test_sdk_permission(live: Live) -> None:
    with live.client("writer") as w, pytest.raises(PermissionDeniedError):
        w.put_guardrails([])


@pytest.fixture
def cli_env(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules.json").write_text(json.dumps({"rules": RULES}))
    (tmp_path / "list.json").write_text(json.dumps(RULES[:1]))
    (tmp_path / "bad.json").write_text(
        json.dumps([{"id": "b", "effect": "forbid", "expression": "(("}])
    )
    (tmp_path / "notrules.json").write_text('{"x": 1}')
    return {"KEYPLANE_URL": live.url, "KEYPLANE_API_KEY": live.keys["admin"]}


def test_cli(cli_env: dict[str, str]) -> None:
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, list(args), env=cli_env)
        assert res.exit_code == code, (args, res.stdout, res.stderr)
        return res.stdout if code in (0, 3) else res.stderr

    assert "no guardrails" in run("guardrails", "get")
    out = run("guardrails", "put", "rules.json")
    assert "version 1" in out and "no-agent-delete" in out
    v2 = json.loads(run("guardrails", "put", "list.json", "--json"))
    assert v2["version"] == 2 and [r["id"] for r in v2["rules"]] == ["no-agent-delete"]
    assert json.loads(run("guardrails", "get", "--version", "1", "--json"))["rules"][1]["id"] == (
        "chain-2"
    )
    versions = json.loads(run("guardrails", "versions", "--json"))
    assert [v["version"] for v in versions["versions"]] == [2, 1]
    assert "2" in run("guardrails", "versions")
    dry = json.loads(run("guardrails", "dry-run", "rules.json", "--last", "5", "--json"))
    assert dry["considered"] == 0 and dry["current_version"] == 2
    assert "would change" in run("guardrails", "dry-run", "rules.json")
    assert "error[invalid_guardrail]" in run("guardrails", "put", "bad.json", code=1)
    assert "expected a list" in run("guardrails", "put", "notrules.json", code=2)
    assert "cannot read" in run("guardrails", "put", "missing.json", code=2)


def test_mcp(live: Live) -> None:
    assert {"get_guardrails", "list_guardrail_versions", "dry_run_guardrails"} <= set(READ_TOOLS)
    assert "put_guardrails" not in build_tools("default") and "put_guardrails" not in WRITE_TOOLS
    assert "guardrails.put_guardrails" in NOT_EXPOSED

    async def main() -> None:
        async with session(live.url, live.keys["admin"]) as s:
            g, text = await ok(s, "get_guardrails", {})
            assert g["version"] == 0 and text == "no guardrails (version 0)"
            with live.client() as c:
                c.put_guardrails(RULES)
            g, text = await ok(s, "get_guardrails", {})
            assert g["version"] == 1 and "no-agent-delete [forbid]" in text
            assert "chain-2 [require_approval, disabled]" in text
            vs, text = await ok(s, "list_guardrail_versions", {})
            assert [v["version"] for v in vs["versions"]] == [1] and "v1 (2 rules)" in text
            run, text = await ok(s, "dry_run_guardrails", {"rules": RULES[:1], "last": 10})
            assert run["considered"] == 0 and "would change" in text
            await fails(
                s,
                "dry_run_guardrails",
                {"rules": [{"id": "x", "effect": "forbid", "expression": "(("}]},
                "invalid_guardrail",
            )
            await fails(s, "get_guardrails", {"version": 7}, "not_found")

    anyio.run(main)

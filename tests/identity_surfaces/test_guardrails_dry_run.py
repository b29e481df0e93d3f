"""A guardrail dry run over real recorded decisions, on every surface: the decisions the
candidate rule would flip are named (decision id, old and new outcome, the rule) the same
way by REST, the SDK, the CLI and the MCP tool — and putting the rule makes it so."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import httpx
from idp_helpers import Live
from test_mcp_identity_plane import ok, session
from typer.testing import CliRunner

from keyplane.cli.main import app

S = "/v1/stores/default"
RULE = {
    "id": "no-agents-on-secrets",
    "effect": "forbid",
    "expression": 'chain_length > 0 && resource.id.startsWith("secret")',
}


def _ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def test_dry_run_names_the_flips_on_every_surface(live: Live, tmp_path: Any) -> None:
    auth = {"Authorization": f"Bearer {live.keys['admin']}"}
    with httpx.Client(base_url=live.url, headers=auth, timeout=30) as c:
        _ok(c.post(f"{S}/identities", json={"kind": "human", "id": "alice"}), 201)
        _ok(
            c.post(
                f"{S}/identities",
                json={"kind": "agent", "id": "planner", "owners": ["human:alice"]},
            ),
            201,
        )
        _ok(
            c.post(
                f"{S}/delegations",
                json={
                    "delegator": "human:alice",
                    "delegate": "agent:planner",
                    "scope": [{"actions": ["viewer"], "resource": "document:*"}],
                    "expires_at": time.time() + 3600,
                },
            ),
            201,
        )
        writes = [
            {"object": f"document:{doc}", "relation": "viewer", "user": user}
            for doc in ("secret-plan", "roadmap")
            for user in ("human:alice", "agent:planner")
        ]
        rev = _ok(c.post(f"{S}/tuples/write", json={"writes": writes}))["revision"]
        ids: dict[str, str] = {}
        for doc, actors in (
            ("secret-plan", ["agent:planner"]),
            ("roadmap", ["agent:planner"]),
            ("secret-plan", []),
        ):
            d = _ok(
                c.post(
                    f"{S}/decide",
                    json={
                        "subject": "human:alice",
                        "actors": actors,
                        "action": "viewer",
                        "resource": f"document:{doc}",
                        "at_least_as_fresh": rev,
                    },
                )
            )
            assert d["allowed"] is True
            ids[f"{doc}/{len(actors)}"] = d["decision_id"]
        flipped = ids["secret-plan/1"]  # only the agent's read of the secret

        rest = _ok(c.post(f"{S}/guardrails:dry-run", json={"rules": [RULE], "last": 100}))
        assert rest["considered"] == 3 and rest["changed"] == 1 and rest["outcome_changed"] == 1
        (flip,) = rest["flips"]
        assert flip["decision_id"] == flipped and flip["rule_ids"] == [RULE["id"]]
        assert (flip["old_outcome"], flip["new_outcome"]) == ("allow", "deny")
        assert (flip["old_code"], flip["new_code"]) == ("allowed", "guardrail_forbid")
        assert flip["subject"] == "human:alice" and flip["actors"] == ["agent:planner"]

        with live.client() as sdk:
            run = sdk.dry_run_guardrails([RULE], last=100)
        assert [(f.decision_id, f.new_code, f.rule_ids) for f in run.flips] == [
            (flipped, "guardrail_forbid", (RULE["id"],))
        ]

        (tmp_path / "rules.json").write_text(json.dumps([RULE]))
        res = CliRunner().invoke(
            app,
            ["guardrails", "dry-run", str(tmp_path / "rules.json"), "--json"],
            env={"KEYPLANE_URL": live.url, "KEYPLANE_API_KEY": live.keys["admin"]},
        )
        assert res.exit_code == 0, res.stderr
        assert [f["decision_id"] for f in json.loads(res.stdout)["flips"]] == [flipped]
        res = CliRunner().invoke(
            app,
            ["guardrails", "dry-run", str(tmp_path / "rules.json")],
            env={"KEYPLANE_URL": live.url, "KEYPLANE_API_KEY": live.keys["admin"]},
        )
        assert "1 would change" in res.stdout and flipped in res.stdout

        async def via_mcp() -> tuple[dict[str, Any], str]:
            async with session(live.url, live.keys["admin"]) as s:
                return await ok(s, "dry_run_guardrails", {"rules": [RULE]})

        structured, text = anyio.run(via_mcp)
        assert [f["decision_id"] for f in structured["flips"]] == [flipped]
        assert flipped in text and "allow → deny" in text

        # the prediction holds once the rule is in force
        _ok(c.put(f"{S}/guardrails", json={"rules": [RULE]}))
        after = _ok(
            c.post(
                f"{S}/decide",
                json={
                    "subject": "human:alice",
                    "actors": ["agent:planner"],
                    "action": "viewer",
                    "resource": "document:secret-plan",
                },
            )
        )
        assert after["code"] == "guardrail_forbid" and after["guardrail_version"] == 1
        assert RULE["id"] in json.dumps(after["reason"])

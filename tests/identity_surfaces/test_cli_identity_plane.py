"""The identity plane from the command line, on the local database and against a server:
``keyplane identity|delegation|policy …``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from idp_helpers import MODEL, Live
from typer.testing import CliRunner

from keyplane.cli.main import app

Run = Callable[..., str]
Invoke = Callable[..., tuple[int, str, str]]


def _runner(env: dict[str, str]) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str, str]:
        res = runner.invoke(app, list(args), env=env)
        return res.exit_code, res.stdout, res.stderr

    return invoke


def _run(env: dict[str, str]) -> tuple[Run, Invoke]:
    invoke = _runner(env)

    def run(*args: str, code: int = 0) -> str:
        rc, stdout, stderr = invoke(*args)
        assert rc == code, (args, rc, stdout, stderr)
        return stdout

    return run, invoke


@pytest.fixture(params=["local", "remote"])
def cli(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Run, Invoke]:
    monkeypatch.delenv("KEYPLANE_URL", raising=False)
    monkeypatch.delenv("KEYPLANE_API_KEY", raising=False)
    (tmp_path / "model.fga").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    if request.param == "local":
        env = {"KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}"}
        run, invoke = _run(env)
        run("model", "write", "model.fga")
        return run, invoke
    live: Live = request.getfixturevalue("live")
    env = {
        "KEYPLANE_URL": live.url,
        "KEYPLANE_API_KEY": live.keys["admin"],
        "KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'must-not-be-used.db'}",
    }
    return _run(env)


def test_identity_commands(cli: tuple[Run, Invoke]) -> None:
    run, invoke = cli
    out = run("identity", "create", "human", "alice", "--name", "Alice", "-a", '{"team": "g"}')
    assert "human:alice" in out and "Alice" in out
    made = json.loads(
        run("identity", "create", "agent", "planner", "--owner", "human:alice", "--json")
    )
    assert made["node"] == "agent:planner" and made["owners"] == ["human:alice"]
    got = json.loads(run("identity", "get", "agent:planner", "-o", "json"))
    assert got == made
    assert "agent:planner" in run("identity", "get", "agent:planner")
    listed = json.loads(run("identity", "list", "--kind", "agent", "--json"))
    assert [i["node"] for i in listed["identities"]] == ["agent:planner"]
    table = run("identity", "list")
    assert "human:alice" in table and "agent:planner" in table
    upd = json.loads(
        run("identity", "update", "agent:planner", "-a", '{"model": "large"}', "--json")
    )
    assert upd["attributes"] == {"model": "large"}
    run("identity", "create", "human", "bob")
    owners = json.loads(
        run(
            "identity",
            "owners",
            "agent:planner",
            "--add",
            "human:bob",
            "--remove",
            "human:alice",
            "--json",
        )
    )
    assert owners["owners"] == ["human:bob"]
    assert "suspended" in run("identity", "suspend", "agent:planner", "--reason", "test")
    assert json.loads(run("identity", "get", "agent:planner", "--json"))["status"] == "suspended"
    assert (
        json.loads(run("identity", "reactivate", "agent:planner", "--json"))["status"] == "active"
    )
    gone = json.loads(run("identity", "deprovision", "human:bob", "--json"))
    assert gone["status"] == "deprovisioned"
    assert json.loads(run("identity", "list", "--orphaned", "--json"))["identities"][0]["node"] == (
        "agent:planner"
    )

    rc, _, err = invoke("identity", "get", "agent:ghost")
    assert rc == 1 and "error[identity_not_found]" in err
    rc, _, err = invoke("identity", "create", "agent", "lonely")
    assert rc == 1 and "error[owner_required]" in err
    rc, _, err = invoke("identity", "create", "human", "x", "-a", "[1]")
    assert rc == 2 and "JSON object" in err


def test_delegation_and_policy_commands(
    cli: tuple[Run, Invoke],
) -> None:
    run, invoke = cli
    run("identity", "create", "human", "alice")
    run("identity", "create", "agent", "planner", "--owner", "human:alice")
    run("identity", "create", "agent", "researcher", "--owner", "human:alice")
    root = json.loads(
        run(
            "delegation",
            "create",
            "--from",
            "human:alice",
            "--to",
            "agent:planner",
            "--grant",
            "viewer@document:*",
            "--purpose",
            "planning",
            "--expires-in",
            "3600",
            "--max-depth",
            "1",
            "--json",
        )
    )
    assert root["scope"] == [{"actions": ["viewer"], "resource": "document:*", "tools": []}]
    assert root["expires_at"] > time.time() + 3500
    rc, _, err = invoke(
        "delegation",
        "create",
        "--from",
        "agent:planner",
        "--to",
        "agent:researcher",
        "--grant",
        "editor@document:roadmap",
        "--purpose",
        "planning",
        "--expires-in",
        "60",
        "--parent",
        root["id"],
    )
    assert rc == 1 and "error[delegation_widening]" in err
    child = json.loads(
        run(
            "delegation",
            "create",
            "--from",
            "agent:planner",
            "--to",
            "agent:researcher",
            "-g",
            "viewer@document:roadmap#read_tuples",
            "-p",
            "planning",
            "--expires-at",
            str(time.time() + 600),
            "--parent",
            root["id"],
            "--json",
        )
    )
    assert child["scope"][0]["tools"] == ["read_tuples"] and child["parent_id"] == root["id"]
    assert json.loads(run("delegation", "get", child["id"], "--json")) == child
    assert child["id"] in run("delegation", "get", child["id"])
    listed = json.loads(run("delegation", "list", "--from", "human:alice", "--json"))
    assert [d["id"] for d in listed["delegations"]] == [root["id"]]
    assert "agent:researcher" in run("delegation", "list")

    revoked = json.loads(run("delegation", "revoke", root["id"], "--reason", "done", "--json"))
    assert {r["id"] for r in revoked["revoked"]} == {root["id"], child["id"]}
    pol = json.loads(run("policy", "get", "--json"))
    assert pol["max_delegation_seconds"] == 86400 and pol["actions"] == {}
    pol = json.loads(
        run("policy", "set", "--action", "read=viewer", "--max-delegation-seconds", "900", "--json")
    )
    assert pol["actions"] == {"read": "viewer"} and pol["max_delegation_seconds"] == 900
    assert "read → viewer" in run("policy", "get")
    rc, _, err = invoke(
        "delegation",
        "create",
        "--from",
        "human:alice",
        "--to",
        "agent:planner",
        "-g",
        "read@document:roadmap",
        "--expires-in",
        "3600",
    )
    assert rc == 1 and "error[invalid_delegation]" in err
    rc, _, err = invoke("delegation", "create", "--from", "a:b", "--to", "c:d", "-g", "nope")
    assert rc == 2 and "ACTIONS@RESOURCE" in err

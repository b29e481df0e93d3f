"""``keyplane decide`` on the local database and against a server: allowed (exit 0) and
denied (exit 3) with the code and the reason, through a two-hop chain."""

from __future__ import annotations

import json
import time

from test_cli_identity_plane import Invoke, Run, cli  # noqa: F401  (the local/remote fixture)


def test_decide_command(cli: tuple[Run, Invoke]) -> None:  # noqa: F811
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
    run(
        "tuple",
        "write",
        "document:roadmap#viewer@human:alice",
        "document:roadmap#viewer@agent:planner",
        "document:roadmap#viewer@agent:researcher",
    )
    d = json.loads(
        run(
            "decide",
            "human:alice",
            "viewer",
            "document:roadmap",
            "-a",
            "agent:planner",
            "-a",
            "agent:researcher",
            "-p",
            "planning",
            "--tool",
            "read_tuples",
            "--json",
        )
    )
    assert d["allowed"] is True and d["delegation_ids"] == [root["id"], child["id"]]
    text = run(
        "decide",
        "human:alice",
        "viewer",
        "document:roadmap",
        "-a",
        "agent:planner",
        "-p",
        "marketing",
        code=3,
    )
    assert "denied" in text and "purpose_not_allowed" in text

    run("delegation", "revoke", root["id"])
    d = json.loads(
        run(
            "decide",
            "human:alice",
            "viewer",
            "document:roadmap",
            "-a",
            "agent:planner",
            "-p",
            "planning",
            "--json",
            code=3,
        )
    )
    assert d["allowed"] is False and d["code"] in ("delegation_revoked", "delegation_missing")

    rc, _, err = invoke("decide", "human:alice", "viewer", "document:roadmap", "-c", "[1]")
    assert rc == 2 and "JSON object" in err
    rc, _, err = invoke("decide", "human:alice", "viewer", "robot:1")
    assert rc == 1 and err.startswith("error[")

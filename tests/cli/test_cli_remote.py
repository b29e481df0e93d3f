"""The CLI against a real server (``--url`` / ``KEYPLANE_URL`` with ``--api-key`` /
``KEYPLANE_API_KEY``): every command prints what it prints on the local database."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyplane import Client, Settings
from keyplane.cli.main import app
from keyplane.errors import AuthenticationError
from keyplane.service.context import Services
from live_server import Server, admin_key, serve

MODEL = """\
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type document
  relations
    define owner: [user]
    define blocked: [user]
    define viewer: ([user, group#member] or owner) but not blocked
"""

Run = Callable[..., str]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    svc = Services.open(Settings(database_url=f"sqlite:///{tmp_path / 'server.db'}"))
    try:
        key = admin_key(svc)
        with serve(svc) as url:
            with Client(url, key) as c:
                c.create_store("default", store_id="default")  # as Keyplane.open does locally
            yield Server(url, key, svc)
    finally:
        svc.close()


def _runner() -> Callable[..., tuple[int, str, str]]:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        res = runner.invoke(app, list(args), env=env)
        return res.exit_code, res.stdout, res.stderr

    return invoke


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("KEYPLANE_URL", raising=False)
    monkeypatch.delenv("KEYPLANE_API_KEY", raising=False)
    (tmp_path / "model.fga").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    env = {"KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}"}
    invoke = _runner()

    def run(*args: str, code: int = 0) -> str:
        rc, stdout, stderr = invoke(*args, env=env)
        assert rc == code, (args, rc, stdout, stderr)
        return stdout

    return run


@pytest.fixture
def remote(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    (tmp_path / "model.fga").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    # the local database is somewhere else entirely: remote mode must not touch it
    env = {
        "KEYPLANE_URL": server.url,
        "KEYPLANE_API_KEY": server.key,
        "KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'must-not-be-used.db'}",
    }
    invoke = _runner()

    def run(*args: str, code: int = 0) -> str:
        rc, stdout, stderr = invoke(*args, env=env)
        assert rc == code, (args, rc, stdout, stderr)
        return stdout

    return run


SESSION: list[tuple[tuple[str, ...], int]] = [
    (("store", "create", "Acme", "--id", "acme", "-o", "json"), 0),
    (("model", "write", "model.fga"), 0),
    (("model", "write", "model.fga", "--store", "acme", "--json"), 0),
    (
        (
            "tuple",
            "write",
            "group:eng#member@user:anne",
            "document:roadmap#viewer@group:eng#member",
            "document:roadmap#owner@user:carol",
            "document:roadmap#blocked@user:bob",
            "group:eng#member@user:bob",
        ),
        0,
    ),
    (
        (
            "tuple",
            "write",
            "document:x#viewer@user:erin",
            "--expires-at",
            "2001-01-01T00:00:00Z",
            "-o",
            "json",
        ),
        0,
    ),
    (("tuple", "write", "document:roadmap#owner@user:carol"), 1),
    (("tuple", "write", "document:roadmap#owner@user:carol", "--idempotent", "--json"), 0),
    (("check", "user:anne", "viewer", "document:roadmap"), 0),
    (("check", "user:bob", "viewer", "document:roadmap", "--output", "json"), 3),
    (
        (
            "check",
            "user:erin",
            "viewer",
            "document:roadmap",
            "--with",
            "group:eng#member@user:erin",
        ),
        0,
    ),
    (("check", "user:anne", "viewer", "robot:1"), 1),
    (("list-objects", "user:anne", "viewer", "document"), 0),
    (("list-objects", "user:carol", "viewer", "document", "-o", "json"), 0),
    (("list-users", "document:roadmap", "viewer", "--filter", "user"), 0),
    (("list-users", "document:roadmap", "viewer", "--filter", "user", "--json"), 0),
    (("expand", "document:roadmap", "viewer"), 0),
    (("explain", "user:anne", "viewer", "document:roadmap"), 0),
    (("explain", "user:bob", "viewer", "document:roadmap"), 0),
    (("explain", "user:anne", "viewer", "document:roadmap", "--output", "json"), 0),
    (("tuple", "read", "--object", "document:roadmap"), 0),
    (("tuple", "read", "--object", "group:", "-o", "json"), 0),
    (("tuple", "changes", "--json"), 0),
    (("tuple", "changes", "--after", "1"), 0),
    (("tuple", "gc", "-o", "json"), 0),
    (("tuple", "delete", "document:roadmap#blocked@user:bob", "-o", "json"), 0),
    (("tuple", "delete", "document:roadmap#blocked@user:bob"), 1),
    (("model", "get"), 0),
    (("model", "get", "--format", "json"), 0),
    (("model", "list", "-o", "json"), 0),
    (("model", "list", "--store", "acme"), 0),
    (("store", "list", "--json"), 0),
    (("store", "delete", "acme", "-o", "json"), 0),
    (("store", "delete", "acme"), 1),
]

_ULID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)")


def _normal(text: str) -> str:
    """Model ids and creation times differ between two databases by nature."""
    text = _ULID.sub("<ULID>", text)
    text = _TIME.sub(lambda m: m.group(0) if m.group(0).startswith("2001") else "<TIME>", text)
    # tables pad columns to their widest cell
    return re.sub(r"[ ─━]+", " ", text)


def test_every_command_prints_the_same_locally_and_remotely(local: Run, remote: Run) -> None:
    for args, code in SESSION:
        here = local(*args, code=code)
        there = remote(*args, code=code)
        assert _normal(there) == _normal(here), args


def test_remote_mode_really_uses_the_server(server: Server, remote: Run, tmp_path: Path) -> None:
    remote("store", "create", "Remote only", "--id", "remote-only")
    with Client(server.url, server.key) as c:
        assert c.get_store("remote-only").name == "Remote only"
    assert not (tmp_path / "must-not-be-used.db").exists()


def test_url_and_key_options(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYPLANE_URL", raising=False)
    monkeypatch.delenv("KEYPLANE_API_KEY", raising=False)
    invoke = _runner()
    rc, out, _ = invoke("store", "list", "--url", server.url, "--api-key", server.key, "-o", "json")
    assert rc == 0 and "default" in {s["id"] for s in json.loads(out)}
    rc, _, err = invoke("store", "list", "--url", server.url, "--api-key", "kp_wrong")
    assert rc == 1 and "error[unauthenticated]" in err
    rc, _, err = invoke("store", "list", "--url", server.url)
    assert rc == 1 and "error[unauthenticated]" in err
    rc, _, err = invoke(
        "check",
        "user:a",
        "viewer",
        "document:1",
        "--url",
        "http://127.0.0.1:9",
        "--api-key",
        "kp_x",
    )
    assert rc == 1 and "error[transport_error]" in err and "127.0.0.1:9" in err


def test_roles_apply_to_the_cli(server: Server, remote: Run) -> None:
    remote("model", "write", "model.fga")
    with Client(server.url, server.key) as c:
        _, reader = c.create_key(owner="viewer", roles=["reader:default"])
    invoke = _runner()
    env = {"KEYPLANE_URL": server.url, "KEYPLANE_API_KEY": reader}
    rc, _, _ = invoke("check", "user:anne", "viewer", "document:roadmap", env=env)
    assert rc == 3
    rc, _, err = invoke("tuple", "write", "document:roadmap#viewer@user:anne", env=env)
    assert rc == 1 and "error[permission_denied]" in err


def test_explain_tree_shows_the_path(remote: Run) -> None:
    remote("model", "write", "model.fga")
    remote(
        "tuple", "write", "group:eng#member@user:anne", "document:roadmap#viewer@group:eng#member"
    )
    out = remote("explain", "user:anne", "viewer", "document:roadmap")
    lines = out.splitlines()
    assert lines[0].startswith("ALLOWED user:anne viewer document:roadmap")
    assert any("└── path 1" in line for line in lines)
    userset = next(
        i
        for i, line in enumerate(lines)
        if "via userset document:roadmap#viewer@group:eng#member" in line
    )
    leaf = next(
        i for i, line in enumerate(lines) if "direct tuple group:eng#member@user:anne" in line
    )
    # the leaf hangs under the userset step: deeper indentation, later line
    assert leaf > userset and lines[leaf].index("direct") > lines[userset].index("document:")
    denied = remote("explain", "user:zed", "viewer", "document:roadmap")
    assert denied.startswith("DENIED") and "no tuple grants user:zed" in denied


def test_key_commands_against_the_server(server: Server, remote: Run) -> None:
    created = json.loads(
        remote("key", "create", "--owner", "ci", "--role", "reader:default", "-o", "json")
    )
    key_id, secret = created["key"]["id"], created["secret"]
    with Client(server.url, secret) as c:
        assert c.get_store("default").id == "default"
    assert key_id in {k["id"] for k in json.loads(remote("key", "list", "-o", "json"))["keys"]}
    assert json.loads(remote("key", "get", key_id, "--json"))["owner"] == "ci"
    rotated = json.loads(remote("key", "rotate", key_id, "--overlap", "0", "-o", "json"))
    assert rotated["secret"] != secret
    assert "Revoked" in remote("key", "revoke", key_id)
    with Client(server.url, rotated["secret"]) as c, pytest.raises(AuthenticationError):
        c.get_store("default")

"""``keyplane init`` and ``keyplane key …`` through Typer's CliRunner, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from keyplane.cli.main import app
from keyplane.config import Settings
from keyplane.embedded import Keyplane
from keyplane.service import stores
from keyplane.service.keys import authenticate

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _authenticates(url: str, secret: str) -> str:
    with Keyplane.open(settings=Settings(database_url=url, poll_interval=0.0)) as kp:
        caller = authenticate(kp.services, secret)
        stores.list_stores(kp.services, caller)  # an admin-only-ish operation works
        assert caller.key_id is not None
        return caller.key_id


def test_init_prints_the_admin_key_once_as_json(storage_url: str) -> None:
    code, out, _ = _run("init", "--db", storage_url, "--output", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert list(doc) == ["api_key"] and doc["api_key"].startswith("kp_")
    key_id = _authenticates(storage_url, doc["api_key"])
    # the secret is never shown again: not by list, not by get
    for args in (("key", "list"), ("key", "get", key_id)):
        code, listed, _ = _run(*args, "--db", storage_url, "--output", "json")
        assert code == 0 and doc["api_key"].split("_")[2] not in listed
    assert key_id in listed and '"admin"' in listed


def test_init_refuses_a_second_admin_key_unless_forced(storage_url: str) -> None:
    code, first, _ = _run("init", "--db", storage_url, "--output", "json")
    assert code == 0
    code, out, err = _run("init", "--db", storage_url, "--output", "json")
    assert code == 1 and out == ""
    assert err.startswith("error[conflict]:") and "--force-new-admin-key" in err
    code, out, _ = _run("init", "--db", storage_url, "--output", "json", "--force-new-admin-key")
    assert code == 0
    second = json.loads(out)["api_key"]
    assert second != json.loads(first)["api_key"]
    assert _authenticates(storage_url, second) != _authenticates(
        storage_url, json.loads(first)["api_key"]
    )


def test_init_table_output_shows_the_key(storage_url: str) -> None:
    code, out, _ = _run("init", "--db", storage_url)
    assert code == 0 and "shown only now" in out
    secret = next(line for line in out.splitlines() if line.startswith("kp_"))
    _authenticates(storage_url, secret)


def test_key_commands_create_rotate_revoke(storage_url: str) -> None:
    code, out, _ = _run(
        "key", "create", "--db", storage_url, "--owner", "ci", "--role", "reader:default",
        "--role", "auditor", "--expires-in", "3600", "--description", "nightly", "--output",
        "json",
    )  # fmt: skip
    assert code == 0, out
    created = json.loads(out)
    key = created["key"]
    assert key["roles"] == ["reader:default", "auditor"] and key["owner"] == "ci"
    assert key["expires_at"] is not None and key["revoked_at"] is None
    assert _authenticates(storage_url, created["secret"]) == key["id"]

    code, out, _ = _run(
        "key", "rotate", key["id"], "--db", storage_url, "--overlap", "0", "-o", "json"
    )
    assert code == 0
    rotated = json.loads(out)
    assert rotated["key"]["id"] == key["id"] and rotated["secret"] != created["secret"]
    _authenticates(storage_url, rotated["secret"])

    code, out, _ = _run("key", "list", "--db", storage_url)
    assert code == 0 and "active" in out

    code, out, _ = _run("key", "revoke", key["id"], "--db", storage_url)
    assert code == 0 and key["id"] in out
    code, out, _ = _run("key", "get", key["id"], "--db", storage_url, "--output", "json")
    assert code == 0 and json.loads(out)["revoked_at"] is not None
    code, out, _ = _run("key", "get", key["id"], "--db", storage_url)
    assert code == 0 and "revoked" in out


def test_key_command_errors_are_one_line(storage_url: str) -> None:
    code, _, err = _run("key", "create", "--db", storage_url, "--owner", "x", "--role", "root")
    assert code == 1 and err.startswith("error[validation_error]:")
    code, _, err = _run("key", "revoke", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--db", storage_url)
    assert code == 1 and err.startswith("error[not_found]:")

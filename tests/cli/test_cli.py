"""The CLI end to end on a SQLite file: the README quickstart, exit codes, error lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyplane.cli.main import app
from keyplane.storage.ids import ULID_RE

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
    define viewer: [user, group#member] or owner
"""


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KEYPLANE_DATABASE_URL", f"sqlite:///{tmp_path / 'kp.db'}")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, list(args))
        assert res.exit_code == code, (args, res.exit_code, res.output)
        return res.output

    (tmp_path / "model.fga").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    return invoke


def test_quickstart(run) -> None:  # type: ignore[no-untyped-def]
    assert "wrote model" in run("model", "write", "model.fga")
    out = run(
        "tuple", "write", "group:eng#member@user:anne", "document:roadmap#viewer@group:eng#member"
    )
    assert "revision 2" in out  # the model write was revision 1
    assert "allowed" in run("check", "user:anne", "viewer", "document:roadmap")
    assert "denied" in run("check", "user:bob", "viewer", "document:roadmap", code=3)
    data = json.loads(run("check", "user:anne", "viewer", "document:roadmap", "--json"))
    assert data["allowed"] is True and data["revision"] == 2
    assert run("list-objects", "user:anne", "viewer", "document").split() == ["document:roadmap"]
    assert run("list-users", "document:roadmap", "viewer", "--filter", "user").split() == [
        "user:anne"
    ]
    assert "group:eng#member@user:anne" in run("explain", "user:anne", "viewer", "document:roadmap")
    ex = json.loads(run("explain", "user:bob", "viewer", "document:roadmap", "--json"))
    assert ex["allowed"] is False
    assert "document:roadmap#viewer" in run("expand", "document:roadmap", "viewer")
    changes = json.loads(run("tuple", "changes", "--json"))
    assert [c["revision"] for c in changes["changes"]] == [2, 2]
    assert "schema 1.1" in run("model", "get")
    assert json.loads(run("model", "get", "--format", "json"))["schema_version"] == "1.1"


def test_contextual_tuples_and_context(run) -> None:  # type: ignore[no-untyped-def]
    run("model", "write", "model.fga")
    run("tuple", "write", "document:roadmap#viewer@group:eng#member")
    assert "allowed" in run(
        "check", "user:erin", "viewer", "document:roadmap", "--with", "group:eng#member@user:erin"
    )
    run("check", "user:erin", "viewer", "document:roadmap", code=3)


def test_errors_print_one_line_with_the_code(run) -> None:  # type: ignore[no-untyped-def]
    run("model", "write", "model.fga")
    out = run("tuple", "write", "document:x#viewer@robot:1", code=1)
    assert "error[type_not_found]" in out
    out = run("tuple", "delete", "document:x#viewer@user:nobody", code=1)
    assert "error[tuple_missing]" in out
    out = run("check", "user:a", "viewer", "document:x", "--store", "nope", code=1)
    assert "error[store_not_found]" in out


def test_model_validate_reports_positions(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.fga"
    bad.write_text(
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [usr]\n"
    )
    out = run("model", "validate", str(bad), code=1)
    assert "bad.fga:6:" in out and "usr" in out
    assert "valid" in run("model", "validate", "model.fga")
    # as `model write` stores it: the base model's identity types may be used undeclared,
    # and an owner relation that conflicts with them is reported
    uses_base = tmp_path / "agents.fga"
    uses_base.write_text(
        "model\n  schema 1.1\ntype doc\n  relations\n    define viewer: [human, agent]\n"
    )
    assert "valid" in run("model", "validate", str(uses_base))
    conflict = tmp_path / "conflict.fga"
    conflict.write_text(
        "model\n  schema 1.1\ntype user\ntype agent\n  relations\n    define owner: [user]\n"
    )
    out = run("model", "validate", str(conflict), code=1)
    assert "'agent#owner' conflicts with the built-in base model" in out


def test_stores(run) -> None:  # type: ignore[no-untyped-def]
    run("store", "create", "team-a", "--id", "team-a")
    assert "team-a" in run("store", "list")
    run("store", "create", "team-a", "--id", "team-a", code=1)
    run("store", "delete", "team-a")
    assert "team-a" not in run("store", "list", "--json")


def test_json_output_names_each_decision(run) -> None:  # type: ignore[no-untyped-def]
    """`--output json` shows the decision id of every decision (its ledger event)."""
    run("model", "write", "model.fga")
    run("tuple", "write", "group:eng#member@user:anne", "document:roadmap#viewer@group:eng#member")
    ids = [
        json.loads(run(*args))["decision_id"]
        for args in [
            ("check", "user:anne", "viewer", "document:roadmap", "--output", "json"),
            ("list-objects", "user:anne", "viewer", "document", "--output", "json"),
            ("list-users", "document:roadmap", "viewer", "--filter", "user", "--output", "json"),
            ("explain", "user:anne", "viewer", "document:roadmap", "--output", "json"),
            ("expand", "document:roadmap", "viewer"),
        ]
    ]
    assert all(ULID_RE.match(i) for i in ids) and len(set(ids)) == 5

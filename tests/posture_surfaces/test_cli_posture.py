"""Governance analytics from the command line (issue 8), on the local database and
against a live server: ``keyplane access effective|holders`` (table, JSON, DOT, Mermaid)
and ``keyplane posture over-privilege|apply|exceeding|inventory|report``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from posture_helpers import MODEL, PLANNER_GRANTS, Live, seed
from typer.testing import CliRunner

from keyplane import Keyplane
from keyplane.cli.main import app
from keyplane.config import Settings

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(params=["local", "remote"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    for var in ("KEYPLANE_URL", "KEYPLANE_API_KEY", "KEYPLANE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    if request.param == "local":
        url = f"sqlite:///{tmp_path / 'local.db'}"
        with Keyplane.open(settings=Settings(database_url=url, poll_interval=0.0)) as kp:
            kp.write_model(MODEL)
            seed(kp)
        env = {"KEYPLANE_DATABASE_URL": url}
    else:
        live: Live = request.getfixturevalue("live")
        env = {
            "KEYPLANE_URL": live.url,
            "KEYPLANE_API_KEY": live.keys["admin"],
            "KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'must-not-be-used.db'}",
        }
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
        res = runner.invoke(app, list(args), env=env, input=input)
        return res.exit_code, res.stdout, res.stderr

    return run


def _ok(cli: Run, *args: str, input: str | None = None) -> str:
    rc, out, err = cli(*args, input=input)
    assert rc == 0, (args, rc, out, err)
    return out


def test_access_commands(cli: Run) -> None:
    entries = json.loads(_ok(cli, "access", "effective", "agent:planner", "--json"))
    mine = {(e["object"], e["relation"]) for e in entries if e["via"] == "graph"}
    assert {("document:budget", "editor"), ("document:specs", "viewer")} <= mine
    assert [e["on_behalf_of"] for e in entries if e["via"] == "delegation"] == ["human:alice"]
    # the same with small pages: walking them changes nothing
    small = json.loads(
        _ok(cli, "access", "effective", "agent:planner", "--page-size", "1", "-f", "json")
    )
    assert small == entries

    table = _ok(cli, "access", "effective", "agent:planner", "--object-type", "document")
    assert "document:budget" in table and "delegation for human:alice" in table
    assert "│ member " not in table  # no group relation: documents only

    import pydot

    dot = _ok(cli, "access", "effective", "agent:planner", "--format", "dot")
    assert pydot.graph_from_dot_data(dot)
    mermaid = _ok(cli, "access", "holders", "document:roadmap", "--format", "mermaid")
    assert "flowchart LR" in mermaid.splitlines() and "human:alice" in mermaid

    holders = json.loads(
        _ok(cli, "access", "holders", "document:roadmap", "-r", "viewer", "-u", "agent", "--json")
    )
    assert {(e["user"], e["via"]) for e in holders} == {
        ("agent:planner", "graph"),
        ("agent:planner", "delegation"),
    }

    rc, _, err = cli("access", "effective", "agent:planner", "--object-type", "nope")
    assert rc == 1 and "error[type_not_found]" in err


def test_over_privilege_and_apply(cli: Run) -> None:
    o = json.loads(_ok(cli, "posture", "over-privilege", "agent:planner", "--json"))
    revoke = sorted(o["recommendation"]["revoke"])
    assert revoke == sorted(PLANNER_GRANTS - {"document:roadmap#viewer@agent:planner"})
    table = _ok(cli, "posture", "over-privilege", "agent:planner")
    assert "revoke" in table and "document:budget#editor@agent:planner" in table

    # asked first; "no" applies nothing
    rc, out, err = cli("posture", "apply", "agent:planner", "--mode", "revoke", input="n\n")
    assert rc == 1 and "Nothing applied" in err
    assert "document:budget#editor@agent:planner" in out
    assert json.loads(_ok(cli, "posture", "over-privilege", "agent:planner", "--json"))[
        "recommendation"
    ]["revoke"]

    review = json.loads(
        _ok(
            cli, "posture", "apply", "agent:planner", "--yes", "--reviewer", "human:alice", "--json"
        )
    )
    assert review["mode"] == "review" and sorted(review["tuples"]) == revoke
    items = json.loads(_ok(cli, "review", "items", review["review_id"], "--json"))
    assert len(items) == len(revoke)

    out = _ok(cli, "posture", "apply", "agent:planner", "--mode", "revoke", input="y\n")
    assert f"Revoked {len(revoke)} grant(s) of agent:planner" in out
    rc, _, err = cli("posture", "apply", "agent:planner", "--mode", "revoke", "--yes")
    assert rc == 1 and "error[nothing_to_apply]" in err


def test_exceeding_inventory_report(cli: Run, tmp_path: Path) -> None:
    ex = json.loads(_ok(cli, "posture", "exceeding", "--json"))
    assert ("agent:planner", "human:alice") in {(e["agent"], e["principal"]) for e in ex}
    assert "agent:planner" in _ok(cli, "posture", "exceeding", "--agent", "agent:planner")

    inv = json.loads(_ok(cli, "posture", "inventory", "--json"))
    assert [i["identity"] for i in inv] == ["agent:helper", "agent:planner", "service_account:ci"]
    table = _ok(cli, "posture", "inventory", "--kind", "service_account")
    assert "service_account:ci" in table and "agent:helper" not in table

    report = json.loads(_ok(cli, "posture", "report", "--format", "json"))
    assert ("orphaned_identity", "service_account:ci") in {
        (f["code"], f["identity"]) for f in report["findings"]
    }
    text = _ok(cli, "posture", "report")
    assert "orphaned_identity" in text and "\x1b[" not in text

    page = tmp_path / "report.html"
    rc, out, err = cli("posture", "report", "--format", "html", "-o", str(page))
    assert rc == 0 and out == "" and "Wrote html report" in err
    html = page.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "<svg" in html

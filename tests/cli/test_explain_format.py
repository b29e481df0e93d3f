"""``keyplane explain --format text|json|dot|mermaid`` on a SQLite file: the default is
still the tree, json the explanation, dot a Graphviz graph pydot parses, mermaid a
flowchart; an unknown format is a usage error."""

from __future__ import annotations

import json
from pathlib import Path

import pydot
import pytest
from typer.testing import CliRunner

from keyplane.cli.main import app

pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated - use:DeprecationWarning")

MODEL = """\
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type document
  relations
    define viewer: [user, group#member]
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
    invoke("model", "write", "model.fga")
    invoke("tuple", "write", "group:eng#member@user:anne", "document:r#viewer@group:eng#member")
    return invoke


def test_explain_formats(run) -> None:  # type: ignore[no-untyped-def]
    args = ("explain", "user:anne", "viewer", "document:r")
    text = run(*args)
    assert "group:eng#member@user:anne" in text and text == run(*args, "--format", "text")
    data = json.loads(run(*args, "--format", "json"))
    assert data["allowed"] is True and data["decision_id"]
    assert json.loads(run(*args, "--json"))["paths"] == data["paths"]
    dot = run(*args, "--format", "dot")
    (graph,) = pydot.graph_from_dot_data(dot) or []
    labels = {n.get("label") for n in graph.get_nodes()}
    assert {'"document:r#viewer"', '"group:eng#member"', '"user:anne"'} <= labels
    assert len(graph.get_edges()) == 2
    mermaid = run(*args, "-f", "mermaid").splitlines()
    assert mermaid[:4] == ["---", 'title: "ALLOWED: user:anne viewer document:r"', "---",
                           "flowchart LR"]  # fmt: skip
    assert sum("-->" in line for line in mermaid) == 2
    denied = run("explain", "user:bob", "viewer", "document:r", "--format", "dot")
    assert "DENIED" in denied and "style=dashed" in denied
    run(*args, "--format", "svg", code=2)

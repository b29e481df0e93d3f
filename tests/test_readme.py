"""The README's Python quickstart runs as written (in a temporary directory)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_quickstart_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEYPLANE_DATABASE_URL", raising=False)
    match = re.search(r"## Quickstart — Python\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README lost its Python quickstart"
    scope: dict[str, object] = {}
    exec(compile(match.group(1), "README.md", "exec"), scope)
    kp = scope["kp"]
    try:
        assert kp.check("user:anne", "viewer", "document:roadmap").allowed  # type: ignore[attr-defined]
        assert (tmp_path / "keyplane.db").exists()
    finally:
        kp.close()  # type: ignore[attr-defined]


def test_agent_quickstart_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = README.read_text()
    match = re.search(
        r"## Quickstart — an agent acting for a person\n\n```python\n(.*?)```", text, re.S
    )
    assert match, "README lost its agent quickstart"
    scope: dict[str, object] = {}
    exec(compile(match.group(1), "README.md", "exec"), scope)
    kp, d = scope["kp"], scope["d"]
    try:
        assert not d.allowed  # type: ignore[attr-defined]
        assert d.code == "identity_suspended"  # type: ignore[attr-defined]
        assert "agent:planner" in d.reason_user  # type: ignore[attr-defined]
        assert kp.get_decision(d.decision_id).event.outcome == "deny"  # type: ignore[attr-defined]
    finally:
        kp.close()  # type: ignore[attr-defined]

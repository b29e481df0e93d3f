"""DSL ⇄ JSON on openfga/language's ``tests/data/transformer`` cases (both directions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from language_cases import DATA

from keyplane.graph.language import parse_dsl, write_dsl

_DIRS = sorted(p for p in (DATA / "transformer").glob("*") if p.is_dir()) if DATA.exists() else []
_KEEP_EMPTY = {"this", "wildcard"}  # empty messages that carry meaning


def _prune(value: Any) -> Any:
    """Drop empty fields as protojson does, keeping the meaningful ``this``/``wildcard``."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if k in _KEEP_EMPTY or v not in ({}, [], "", None)}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


@pytest.mark.parametrize("case_dir", _DIRS, ids=[p.name for p in _DIRS])
def test_dsl_to_json(case_dir: Path) -> None:
    dsl = (case_dir / "authorization-model.fga").read_text()
    expected = json.loads((case_dir / "authorization-model.json").read_text())
    assert _prune(parse_dsl(dsl, validate=False)) == _prune(expected)


@pytest.mark.parametrize("case_dir", _DIRS, ids=[p.name for p in _DIRS])
def test_json_to_dsl(case_dir: Path) -> None:
    dsl = (case_dir / "authorization-model.fga").read_text()
    model = json.loads((case_dir / "authorization-model.json").read_text())
    assert write_dsl(model) == dsl


@pytest.mark.parametrize("case_dir", _DIRS, ids=[p.name for p in _DIRS])
def test_round_trip_is_stable(case_dir: Path) -> None:
    dsl = (case_dir / "authorization-model.fga").read_text()
    assert write_dsl(parse_dsl(dsl, validate=False)) == dsl

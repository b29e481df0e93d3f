"""Shared helpers for the language tests: where the openfga/language conformance data lives."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from conformance_paths import ROOT as CONFORMANCE

DATA = CONFORMANCE / "openfga-language" / "tests" / "data"


def load_cases(name: str) -> list[dict[str, Any]]:
    """The cases of one YAML conformance file (skipped when the data is absent)."""
    path = DATA / name
    if not path.exists():
        return []
    cases: list[dict[str, Any]] = yaml.safe_load(path.read_text()) or []
    return cases


def case_params(name: str) -> list[Any]:
    """pytest params, one per case, with the case name as the test id."""
    return [pytest.param(case, id=case["name"]) for case in load_cases(name)]

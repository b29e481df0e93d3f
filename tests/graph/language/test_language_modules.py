"""Modular models on openfga/language's ``tests/data/transformer-module`` cases.

Module files → combined model JSON (semantic equality), combination and validation errors
(message, file, 0-based positions, error type), the combined model written back as DSL
with and without source information, and the list of modules of a combined model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from language_cases import DATA

from keyplane.errors import InvalidModelError
from keyplane.graph.language import (
    model_modules,
    transform_modules,
    validate_modules,
    write_dsl,
)

_BASE = DATA / "transformer-module"
_DIRS = sorted(p for p in _BASE.glob("*") if p.is_dir()) if _BASE.exists() else []


def _files(case_dir: Path) -> dict[str, str]:
    module_dir = case_dir / "module"
    return {
        str(f.relative_to(module_dir)): f.read_text() for f in sorted(module_dir.rglob("*.fga"))
    }


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


_WITH_MODEL = [
    d for d in _DIRS if (d / "module").exists() and (d / "authorization-model.json").exists()
]
_WITH_ERRORS = [d for d in _DIRS if (d / "expected_errors.json").exists()]
_WITH_COMBINED = [d for d in _DIRS if (d / "combined.fga").exists()]
_WITH_MODULES = [d for d in _DIRS if (d / "expected_modules.json").exists()]


@pytest.mark.parametrize("case_dir", _WITH_MODEL, ids=_ids(_WITH_MODEL))
def test_modules_to_model(case_dir: Path) -> None:
    expected = json.loads((case_dir / "authorization-model.json").read_text())
    assert transform_modules(_files(case_dir)) == expected


def _expected_error(error: dict[str, Any]) -> tuple[Any, ...]:
    return (
        error["msg"],
        error.get("file"),
        (error["line"]["start"], error["line"]["end"]),
        (error["column"]["start"], error["column"]["end"]),
        (error.get("metadata") or {}).get("errorType"),
    )


@pytest.mark.parametrize("case_dir", _WITH_ERRORS, ids=_ids(_WITH_ERRORS))
def test_module_errors(case_dir: Path) -> None:
    expected = [
        _expected_error(e) for e in json.loads((case_dir / "expected_errors.json").read_text())
    ]
    issues = validate_modules(_files(case_dir))
    actual = [
        (i.message, i.metadata.get("file"), i.line, i.column, e[4] and i.error_type)
        for i, e in zip(issues, expected, strict=False)
    ]
    assert len(issues) == len(expected)
    assert actual == expected
    with pytest.raises(InvalidModelError):
        transform_modules(_files(case_dir))


@pytest.mark.parametrize("case_dir", _WITH_COMBINED, ids=_ids(_WITH_COMBINED))
def test_combined_dsl(case_dir: Path) -> None:
    model = json.loads((case_dir / "authorization-model.json").read_text())
    assert write_dsl(model) == (case_dir / "combined.fga").read_text()
    with_info = (case_dir / "combined-sourceinfo.fga").read_text()
    assert write_dsl(model, source_info=True) == with_info


@pytest.mark.parametrize("case_dir", _WITH_MODULES, ids=_ids(_WITH_MODULES))
def test_model_modules(case_dir: Path) -> None:
    model = json.loads((case_dir / "authorization-model.json").read_text())
    assert model_modules(model) == json.loads((case_dir / "expected_modules.json").read_text())

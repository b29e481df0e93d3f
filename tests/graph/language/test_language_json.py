"""JSON-side conformance: model validation, JSON→DSL failures, object ids."""

from __future__ import annotations

import json
from typing import Any

import pytest
from language_cases import case_params

from keyplane.errors import InvalidModelError
from keyplane.graph.language import (
    load_model,
    validate_model,
    validate_object_id,
    write_dsl,
)


@pytest.mark.parametrize("case", case_params("json-validation-cases.yaml"))
def test_json_validation_case(case: dict[str, Any]) -> None:
    model = json.loads(case["json"])
    expected = [
        (
            e["msg"],
            (e.get("metadata") or {}).get("errorType"),
            (e.get("metadata") or {}).get("symbol"),
        )
        for e in case.get("expected_errors") or []
    ]
    issues = validate_model(model)
    assert [(i.message, i.error_type, i.metadata.get("symbol")) for i in issues] == expected
    assert all(i.line is None and i.column is None for i in issues)
    if expected:
        with pytest.raises(InvalidModelError):
            load_model(case["json"])
    else:
        assert load_model(case["json"]) == model


@pytest.mark.parametrize("case", case_params("json-syntax-transformer-validation-cases.yaml"))
def test_json_to_dsl_case(case: dict[str, Any]) -> None:
    model = json.loads(case["json"])
    if case.get("valid", True) and not case.get("error_message"):
        assert write_dsl(model).startswith("model\n  schema 1.1\n")
    else:
        with pytest.raises(InvalidModelError) as info:
            write_dsl(model)
        assert info.value.message == case["error_message"]


@pytest.mark.parametrize("case", case_params("object-id-validation-cases.yaml"))
def test_object_id_case(case: dict[str, Any]) -> None:
    assert validate_object_id(case["object_id"]) is case["valid"]

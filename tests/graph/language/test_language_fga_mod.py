"""``fga.mod`` manifests on openfga/language's ``fga-mod-transformer-cases.yaml``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from language_cases import case_params

from keyplane.errors import InvalidModelError
from keyplane.graph.language import parse_fga_mod, validate_fga_mod


@pytest.mark.parametrize("case", case_params("fga-mod-transformer-cases.yaml"))
def test_fga_mod_case(case: dict[str, Any]) -> None:
    manifest, issues = validate_fga_mod(case["modFile"])
    if "json" in case:
        assert issues == []
        assert manifest == json.loads(case["json"])
        assert parse_fga_mod(case["modFile"]) == manifest
        return
    expected = [
        (
            e["msg"],
            (e["line"]["start"], e["line"]["end"]),
            (e["column"]["start"], e["column"]["end"]),
        )
        for e in case["expected_errors"]
    ]
    assert manifest is None
    assert [(i.message, i.line, i.column) for i in issues] == expected
    with pytest.raises(InvalidModelError):
        parse_fga_mod(case["modFile"])

"""Public entry points of the language package (see ``__init__``): parse, validate, load.

Errors are :class:`~keyplane.errors.InvalidModelError` carrying every
:class:`~keyplane.errors.ModelIssue` found, each with the reference implementation's
message, error type and (for DSL input) 0-based line and column ranges.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from keyplane.errors import InvalidModelError, ModelIssue
from keyplane.graph.language.json_model import (
    depth_issue,
    normalize_model,
    read_json,
    shape_issues,
)
from keyplane.graph.language.parser import parse
from keyplane.graph.language.validation import validate as semantic_issues

__all__ = ["load_model", "parse_dsl", "validate_dsl", "validate_model", "validate_object_id"]


def _raise(errors: list[ModelIssue]) -> NoReturn:
    count = len(errors)
    summary = errors[0].message if count == 1 else f"{count} errors in the model"
    raise InvalidModelError(summary, errors=errors)


def validate_dsl(text: str) -> list[ModelIssue]:
    """Every syntax and semantic issue in DSL text (empty when the model is valid)."""
    result = parse(text)
    if result.errors:
        return result.errors
    return _semantic_with_positions(result.model, text)


def parse_dsl(text: str, *, validate: bool = True) -> dict[str, Any]:
    """DSL text → model JSON dict; raises InvalidModelError listing every issue.

    With ``validate=False`` only the syntax is checked, as ``fga model transform`` does:
    the conformance transformer cases include models that parse but are semantically
    invalid (an undefined condition, a non-direct tupleset).
    """
    result = parse(text)
    errors = result.errors
    if not errors and validate:
        errors = _semantic_with_positions(result.model, text)
    if errors:
        _raise(errors)
    return result.model


def _semantic_with_positions(model: Mapping[str, Any], text: str) -> list[ModelIssue]:
    return semantic_issues(model, text.split("\n"))


def validate_model(model: Mapping[str, Any]) -> list[ModelIssue]:
    """Issues of a model given as JSON (no positions): its shape, then its semantics."""
    issue = depth_issue(model)
    if issue is not None:
        return [issue]
    normalized = normalize_model(model)
    return shape_issues(normalized) or semantic_issues(normalized)


def load_model(source: str | Mapping[str, Any]) -> dict[str, Any]:
    """DSL text, JSON text or a dict → validated model dict (raises InvalidModelError).

    The result is in the canonical spelling (:func:`.json_model.normalize_model`).
    """
    if isinstance(source, Mapping):
        model: Mapping[str, Any] = source
    elif source.lstrip().startswith("{"):
        parsed, issues = read_json(source)
        if parsed is None:
            _raise(issues)
        model = parsed
    else:
        return normalize_model(parse_dsl(source))
    errors = validate_model(model)
    if errors:
        _raise(errors)
    return normalize_model(model)


# Letters, digits and ``_ | * @ . + / -``; never ``#``, ``:`` or white space, and no
# leading ``*`` (``type:*`` is the wildcard).
_OBJECT_ID = re.compile(r"[A-Za-z0-9_|@.+/\-][A-Za-z0-9_|*@.+/\-]*")


def validate_object_id(object_id: str) -> bool:
    """Whether ``object_id`` is an acceptable object id."""
    return _OBJECT_ID.fullmatch(object_id) is not None

"""Public entry points of the language package (see ``__init__``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from keyplane.errors import InvalidModelError, ModelIssue
from keyplane.graph.language.parser import parse
from keyplane.graph.language.validation import validate

__all__ = ["load_model", "parse_dsl", "validate_dsl", "validate_model", "validate_object_id"]


def _raise(errors: list[ModelIssue]) -> None:
    count = len(errors)
    summary = errors[0].message if count == 1 else f"{count} errors in the model"
    raise InvalidModelError(summary, errors=errors)


def validate_dsl(text: str) -> list[ModelIssue]:
    """Every syntax and semantic issue in DSL text (empty when the model is valid)."""
    result = parse(text)
    if result.errors:
        return result.errors
    return validate_model_lines(result.model, text)


def parse_dsl(text: str, *, validate: bool = True) -> dict[str, Any]:
    """DSL text → model JSON dict; raises InvalidModelError listing every issue.

    With ``validate=False`` only the syntax is checked, as ``fga model transform`` does:
    the conformance transformer cases include models that parse but are semantically
    invalid (an undefined condition, a non-direct tupleset).
    """
    result = parse(text)
    errors = result.errors
    if not errors and validate:
        errors = validate_model_lines(result.model, text)
    if errors:
        _raise(errors)
    return result.model


def validate_model_lines(model: Mapping[str, Any], text: str) -> list[ModelIssue]:
    return validate(model, text.split("\n"))


def validate_model(model: Mapping[str, Any]) -> list[ModelIssue]:
    """Semantic issues of a model given as JSON (no positions)."""
    return validate(model)


def load_model(source: str | Mapping[str, Any]) -> dict[str, Any]:
    """DSL text, JSON text or a dict → validated model dict (raises InvalidModelError)."""
    if isinstance(source, Mapping):
        model = dict(source)
    elif source.lstrip().startswith("{"):
        model = json.loads(source)
    else:
        return parse_dsl(source)
    errors = validate_model(model)
    if errors:
        _raise(errors)
    return model


# Letters, digits and ``_ | * @ . + / -``; never ``#``, ``:`` or white space, and no
# leading ``*`` (``type:*`` is the wildcard).
_OBJECT_ID = re.compile(r"^[A-Za-z0-9_|@.+/\-][A-Za-z0-9_|*@.+/\-]*$")


def validate_object_id(object_id: str) -> bool:
    """Whether ``object_id`` is an acceptable object id."""
    return bool(_OBJECT_ID.match(object_id))

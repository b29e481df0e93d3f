"""Model JSON: read it, check its shape, and bring it to one canonical spelling.

OpenFGA's API speaks protojson, which accepts both a field's proto name and its JSON name:
``schema_version`` / ``schemaVersion``, ``directly_related_user_types`` /
``directlyRelatedUserTypes``, ``computedUserset`` / ``computed_userset``, ... The canonical
form used throughout Keyplane is the one of openfga/language's test data (and of
``fga model transform``): snake_case for the model, type definitions, metadata and
conditions, camelCase ``computedUserset`` / ``tupleToUserset`` inside rewrites.

:func:`normalize_model` renames the alternative spellings and drops ``null`` members;
:func:`shape_issues` reports JSON that is not a model at all (wrong member types) before
semantic validation looks at it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from keyplane.errors import InvalidModelError, ModelIssue

__all__ = ["MAX_DEPTH", "depth_issue", "normalize_model", "read_json", "shape_issues"]

# Deepest nesting of JSON objects and arrays accepted in a model (a rewrite operator takes
# three levels), so that recursive processing can never exhaust the stack.
MAX_DEPTH = 100
TOO_DEEP = "the model is nested too deeply"

_ALIASES = {
    "schemaVersion": "schema_version",
    "typeDefinitions": "type_definitions",
    "directlyRelatedUserTypes": "directly_related_user_types",
    "sourceInfo": "source_info",
    "typeName": "type_name",
    "genericTypes": "generic_types",
    "computed_userset": "computedUserset",
    "tuple_to_userset": "tupleToUserset",
}
# Members whose values are maps keyed by user-chosen names (relations, conditions,
# parameters): their keys must never be renamed.
_NAMED_MAPS = {"relations", "conditions", "parameters"}
_SHAPE = "invalid-model-json"


def _normalize(value: Any, *, names: bool = False) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            canonical = str(key) if names else _ALIASES.get(str(key), str(key))
            out[canonical] = _normalize(item, names=canonical in _NAMED_MAPS and not names)
        return out
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def depth_issue(value: Any) -> ModelIssue | None:
    """An issue when ``value`` nests objects and arrays deeper than :data:`MAX_DEPTH`."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return ModelIssue(TOO_DEEP, _SHAPE)
        if isinstance(item, Mapping):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def normalize_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``model`` in the canonical spelling, without ``null`` members."""
    issue = depth_issue(model)
    if issue is not None:
        raise InvalidModelError(issue.message, errors=[issue])
    result: dict[str, Any] = _normalize(model)
    return result


def read_json(text: str) -> tuple[dict[str, Any] | None, list[ModelIssue]]:
    """Parse JSON text into a model dict, or say why it is not one."""
    try:
        value = json.loads(text)
    except RecursionError:
        return None, [ModelIssue(TOO_DEEP, _SHAPE)]
    except json.JSONDecodeError as err:
        return None, [ModelIssue(f"invalid JSON: {err.msg}", _SHAPE, line=(err.lineno - 1,) * 2)]
    if not isinstance(value, dict):
        return None, [ModelIssue("a model must be a JSON object", _SHAPE)]
    return value, []


def _issue(path: str, expected: str) -> ModelIssue:
    return ModelIssue(f"`{path}` must be {expected}", _SHAPE, metadata={"symbol": path})


def shape_issues(model: Mapping[str, Any]) -> list[ModelIssue]:
    """Members of the wrong JSON type, in a model already normalized."""
    issues: list[ModelIssue] = []
    if not isinstance(model.get("schema_version", ""), str):
        issues.append(_issue("schema_version", "a string"))
    type_defs = model.get("type_definitions", [])
    if not isinstance(type_defs, list):
        return [*issues, _issue("type_definitions", "a list")]
    for i, type_def in enumerate(type_defs):
        path = f"type_definitions[{i}]"
        if not isinstance(type_def, Mapping):
            issues.append(_issue(path, "an object"))
            continue
        if not isinstance(type_def.get("type"), str):
            issues.append(_issue(f"{path}.type", "a string"))
        relations = type_def.get("relations", {})
        if not isinstance(relations, Mapping) or not all(
            isinstance(r, Mapping) for r in relations.values()
        ):
            issues.append(_issue(f"{path}.relations", "an object of rewrites"))
        metadata = type_def.get("metadata", {})
        meta_relations = metadata.get("relations", {}) if isinstance(metadata, Mapping) else None
        if not isinstance(meta_relations, Mapping):
            issues.append(_issue(f"{path}.metadata", "an object with a `relations` object"))
            continue
        for name, meta in meta_relations.items():
            refs = meta.get("directly_related_user_types", []) if isinstance(meta, Mapping) else 0
            if not isinstance(refs, list) or not all(
                isinstance(r, Mapping) and isinstance(r.get("type"), str) for r in refs
            ):
                issues.append(
                    _issue(f"{path}.metadata.relations.{name}", "a list of type restrictions")
                )
    conditions = model.get("conditions", {})
    if not isinstance(conditions, Mapping) or not all(
        isinstance(c, Mapping) and isinstance(c.get("expression", ""), str)
        for c in conditions.values()
    ):
        issues.append(_issue("conditions", "an object of conditions"))
    return issues

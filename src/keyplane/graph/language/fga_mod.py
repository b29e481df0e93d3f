"""The ``fga.mod`` manifest of a modular model: which module files make up the model.

A YAML document with two fields, as read by openfga/language (``pkg/go/transformer/
mod-to-json.go``, ``pkg/js/transformer/modules/mod-to-json.ts``)::

    schema: '1.2'          # a string, and only 1.2
    contents:              # a list of relative paths of ``.fga`` files
      - core.fga
      - team1/project.fga

The result keeps each value with its 0-based position (``line`` and ``column`` as
``{start, end}``), so that tools can point at a bad entry. Paths may not be absolute or
climb out of the project (``..``), even percent-encoded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import yaml

from keyplane.errors import InvalidModelError, ModelIssue

__all__ = ["parse_fga_mod", "validate_fga_mod"]

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"


def _span(node: yaml.Node) -> dict[str, Any]:
    return {
        "line": {"start": node.start_mark.line, "end": node.end_mark.line},
        "column": {"start": node.start_mark.column, "end": node.end_mark.column},
    }


def _issue(message: str, node: yaml.Node | None) -> ModelIssue:
    if node is None:
        return ModelIssue(message, line=(0, 0), column=(0, 0))
    span = _span(node)
    return ModelIssue(
        message,
        line=(span["line"]["start"], span["line"]["end"]),
        column=(span["column"]["start"], span["column"]["end"]),
    )


def _escapes(path: str) -> bool:
    decoded = unquote(path)
    if decoded.startswith(("/", "\\")):
        return True
    return ".." in decoded.replace("\\", "/").split("/")


def validate_fga_mod(text: str) -> tuple[dict[str, Any] | None, list[ModelIssue]]:
    """The manifest with positions, or ``None`` and every issue found."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as err:
        return None, [ModelIssue(f"invalid YAML: {err}")]
    fields: dict[str, yaml.Node] = {}
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            fields[str(key.value)] = value
    issues: list[ModelIssue] = []
    out: dict[str, Any] = {}

    schema = fields.get("schema")
    if schema is None:
        issues.append(_issue("missing schema field", None))
    elif schema.tag != _STR:
        got = schema.value if isinstance(schema, yaml.ScalarNode) else ""
        issues.append(_issue(f"unexpected schema type, expected string got value {got}", schema))
    elif schema.value != "1.2":
        message = "unsupported schema version, fga.mod only supported in version `1.2`"
        issues.append(_issue(message, schema))
    else:
        out["schema"] = {"value": schema.value, **_span(schema)}

    contents = fields.get("contents")
    if contents is None:
        issues.append(_issue("missing contents field", None))
    elif contents.tag != _SEQ or not isinstance(contents, yaml.SequenceNode):
        got = contents.value if isinstance(contents, yaml.ScalarNode) else ""
        message = f"unexpected contents type, expected list of strings got value {got}"
        issues.append(_issue(message, contents))
    else:
        items = []
        for item in contents.value:
            value = item.value if isinstance(item, yaml.ScalarNode) else ""
            if item.tag != _STR:
                message = f"unexpected contents item type, expected string got value {value}"
                issues.append(_issue(message, item))
            elif not value.endswith(".fga"):
                message = f"contents items should use fga file extension, got {value}"
                issues.append(_issue(message, item))
            elif _escapes(value):
                issues.append(_issue(f"invalid contents item {value}", item))
            items.append({"value": value, **_span(item)})
        out["contents"] = {"value": items, **_span(contents)}
    return (None, issues) if issues else (out, [])


def parse_fga_mod(text: str) -> dict[str, Any]:
    """The manifest with positions; raises InvalidModelError listing every issue."""
    manifest, issues = validate_fga_mod(text)
    if manifest is None:
        summary = issues[0].message if len(issues) == 1 else f"{len(issues)} errors in fga.mod"
        raise InvalidModelError(summary, errors=issues)
    return manifest

"""Modular models (schema 1.2): combine ``module`` files into one authorization model.

A module file starts with ``module <name>`` instead of the ``model`` header; it declares
types and conditions, and may add relations to a type declared in another module with
``extend type <name>``. Combining follows openfga/language (``pkg/go/transformer/
module-to-model.go``, ``pkg/js/transformer/modules/modules-to-model.ts``):

1. every file is parsed; a syntax error, or a file that is not a module, is reported and
   the file skipped; a type or condition declared twice is reported ("duplicate type
   definition", "duplicate condition"); each type and condition records its module and file
   in ``metadata`` (``module``, ``source_info.file``);
2. extensions are applied: the extended type must exist ("extended type X does not
   exist") and may not redefine a relation ("relation r already exists on type X"); each
   added relation records its own module and file;
3. the combined model (``schema_version`` 1.2) is validated like any model, each issue
   placed in the file that declares what it is about.

Positions of combination errors are 0-based; the column is the first occurrence of the
name on the line, as in the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyplane.errors import InvalidModelError, ModelIssue
from keyplane.graph.language.parser import parse
from keyplane.graph.language.positions import Locator
from keyplane.graph.language.validation import validate

__all__ = ["combine_modules", "model_modules", "transform_modules", "validate_modules"]


class ModuleLocator(Locator):
    """Finds declarations in the module file that holds them."""

    def __init__(self, files: Mapping[str, str], model: Mapping[str, Any]) -> None:
        super().__init__(None)
        for name, text in files.items():
            self.files[name] = text.split("\n")
        self.types = {str(t.get("type")): t for t in model.get("type_definitions") or []}
        self.conditions: Mapping[str, Any] = model.get("conditions") or {}

    def file_of_type(self, type_name: str) -> str | None:
        return _file((self.types.get(type_name) or {}).get("metadata"))

    def file_of_relation(self, type_name: str, relation: str) -> str | None:
        meta = (self.types.get(type_name) or {}).get("metadata") or {}
        return _file((meta.get("relations") or {}).get(relation)) or _file(meta)

    def file_of_condition(self, condition: str) -> str | None:
        return _file((self.conditions.get(condition) or {}).get("metadata"))

    def type_index(self, lines: list[str], type_name: str) -> int:
        index = super().type_index(lines, type_name)
        if index == -1:  # a relation added to the type by ``extend type``
            index = self.declaration(lines, f"extend type {type_name}", lambda rest: True)
        return index


def _file(meta: Any) -> str | None:
    file = ((meta or {}).get("source_info") or {}).get("file")
    return str(file) if file else None


def _issue(file: str, message: str, lines: list[str], index: int, symbol: str) -> ModelIssue:
    if index < 0:
        line, column = (0, 0), (0, 0)
    else:
        start = max(lines[index].find(symbol), 0)
        line, column = (index, index), (start, start + len(symbol))
    return ModelIssue(message, line=line, column=column, metadata={"file": file})


def _origin(module: str, file: str) -> dict[str, Any]:
    return {"module": module, "source_info": {"file": file}}


def combine_modules(files: Mapping[str, str]) -> tuple[dict[str, Any], list[ModelIssue]]:
    """The combined model and the issues met combining it (``files``: name → text)."""
    issues: list[ModelIssue] = []
    types: list[dict[str, Any]] = []
    extensions: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    conditions: dict[str, Any] = {}
    locate = Locator(None)
    for file, text in files.items():
        lines = text.split("\n")
        result = parse(text)
        if result.errors:
            issues.extend(
                ModelIssue(e.message, e.error_type, e.line, e.column, {**e.metadata, "file": file})
                for e in result.errors
            )
            continue
        module = result.module
        if module is None:
            issues.append(ModelIssue("file is not a module", line=(0, 0), column=(0, 0),
                                     metadata={"file": file}))  # fmt: skip
            continue
        for i, type_def in enumerate(result.model.get("type_definitions") or []):
            name = type_def["type"]
            if i in result.extensions:
                extensions.setdefault(file, []).append((module, type_def))
                continue
            if any(t["type"] == name for t in types):
                index = locate.type_index(lines, name)
                issues.append(_issue(file, f"duplicate type definition {name}", lines, index, name))
                continue
            type_def["metadata"] = {**(type_def.get("metadata") or {}), **_origin(module, file)}
            types.append(type_def)
        for name, condition in (result.model.get("conditions") or {}).items():
            if name in conditions:
                index = locate.declaration(
                    lines, f"condition {name}", lambda rest: rest.lstrip(" \t\f").startswith("(")
                )
                issues.append(_issue(file, f"duplicate condition {name}", lines, index, name))
                continue
            condition["metadata"] = _origin(module, file)
            conditions[name] = condition
    for file, extended in extensions.items():
        lines = files[file].split("\n")
        for module, ext in extended:
            _extend(file, lines, module, ext, types, issues, locate)
    model: dict[str, Any] = {"schema_version": "1.2", "type_definitions": types}
    if conditions:
        model["conditions"] = conditions
    return model, issues


def _extend(
    file: str,
    lines: list[str],
    module: str,
    ext: dict[str, Any],
    types: list[dict[str, Any]],
    issues: list[ModelIssue],
    locate: Locator,
) -> None:
    name = ext["type"]
    original = next((t for t in types if t["type"] == name), None)
    if original is None:
        index = locate.declaration(lines, f"extend type {name}", lambda rest: True)
        issues.append(_issue(file, f"extended type {name} does not exist", lines, index, name))
        return
    ext_meta = ((ext.get("metadata") or {}).get("relations")) or {}
    original_meta = original.setdefault("metadata", {})
    relations = original.setdefault("relations", {})
    meta_relations = original_meta.setdefault("relations", {})
    for relation, rewrite in (ext.get("relations") or {}).items():
        if relation in relations:
            index = locate.relation_index(lines, relation, 0)
            message = f"relation {relation} already exists on type {name}"
            issues.append(_issue(file, message, lines, index, relation))
            continue
        relations[relation] = rewrite
        meta_relations[relation] = {**(ext_meta.get(relation) or {}), **_origin(module, file)}


def validate_modules(files: Mapping[str, str]) -> list[ModelIssue]:
    """Every issue of a modular model: combining it, then validating the result."""
    model, issues = combine_modules(files)
    return issues + validate(model, locator=ModuleLocator(files, model))


def transform_modules(files: Mapping[str, str]) -> dict[str, Any]:
    """Module files (name → text) → one validated model; raises InvalidModelError."""
    issues = validate_modules(files)
    if issues:
        summary = issues[0].message if len(issues) == 1 else f"{len(issues)} errors in the modules"
        raise InvalidModelError(summary, errors=issues)
    return combine_modules(files)[0]


def model_modules(model: Mapping[str, Any]) -> list[str]:
    """The sorted names of the modules a combined model was built from."""
    names: set[str] = set()
    for type_def in model.get("type_definitions") or []:
        meta = type_def.get("metadata") or {}
        names.update(str(m) for m in [meta.get("module")] if m)
        for rel_meta in (meta.get("relations") or {}).values():
            names.update(str(m) for m in [(rel_meta or {}).get("module")] if m)
    for condition in (model.get("conditions") or {}).values():
        names.update(str(m) for m in [((condition or {}).get("metadata") or {}).get("module")] if m)
    return sorted(names)

"""Semantic validation of an OpenFGA model (schema 1.1), given as its protojson dict.

The checks, their order, messages and error types follow openfga/language's reference
validator (``pkg/js/validator/validate-dsl.ts``), so DSL and JSON models are judged alike:

1. names: reserved ``self``/``this`` (``reserved-type-keywords``,
   ``reserved-relation-keywords``) and the naming rules ``^[^:#@\\*\\s]{1,254}$`` for types,
   ``{1,50}`` for relations (``invalid-name``); the schema version (``invalid-schema``,
   ``schema-version-required``);
2. references, only if 1 found nothing: unknown types (``invalid-type``), relations
   (``missing-definition``, ``invalid-relation-type``), tuplesets that are not plain direct
   relations (``tupleuserset-not-direct``), ``X from Y`` where no type of ``Y`` has ``X``
   (``invalid-relation-on-tupleset``), undefined conditions (``condition-not-defined``);
3. duplicates (``duplicated-error``): types, type restrictions, operands of one operator;
4. entry points: a relation no tuple can ever satisfy is an "impossible relation"
   (``relation-no-entry-point``), flagged "(potential loop)" when a cycle is the cause;
5. conditions: key/name mismatch (``different-nested-condition-name``), unused conditions
   (``condition-not-used``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.errors import ModelIssue
from keyplane.graph.language.entrypoints import EntryPoints
from keyplane.graph.language.positions import (
    Collector,
    Locator,
    Where,
    after_colon,
    after_from,
    condition_column,
)
from keyplane.graph.language.usersets import (
    Leaf,
    TypeIndex,
    Userset,
    decode_restriction,
    is_leaf,
    leaf,
    restriction_string,
)

__all__ = ["RELATION_RULE", "TYPE_RULE", "validate"]

TYPE_RULE = r"^[^:#@\*\s]{1,254}$"
RELATION_RULE = r"^[^:#@\*\s]{1,50}$"
_RESERVED = ("self", "this")
_SUPPORTED_SCHEMAS = ("1.1", "1.2")


class _Validator:
    def __init__(self, model: Mapping[str, Any], collector: Collector) -> None:
        self.model = model
        self.c = collector
        self.loc = collector.locator
        self.index = TypeIndex(model)
        self.type_defs = self.index.type_defs
        self.types = self.index.types
        self.conditions: Mapping[str, Any] = model.get("conditions") or {}
        # file -> modules declared in it (insertion-ordered), for modular models.
        self.file_modules: dict[str, dict[str, None]] = {}

    def track_module(self, *metas: Any) -> None:
        """Record the (file, module) of an element; the first metadata that has one wins."""
        file = next(
            (f for m in metas if (f := ((m or {}).get("source_info") or {}).get("file"))), None
        )
        module = next((mod for m in metas if (mod := (m or {}).get("module"))), None)
        if file and module:
            self.file_modules.setdefault(file, {})[module] = None

    # -- helpers -------------------------------------------------------------------------

    def relations(self, type_name: str) -> Mapping[str, Userset]:
        return self.index.relations(type_name)

    def restrictions(self, type_name: str, relation: str) -> list[str]:
        return self.index.restrictions(type_name, relation)

    def line(self, type_name: str, relation: str) -> Where | None:
        return self.loc.relation_in_type(type_name, relation)

    # -- 1. names and schema ----------------------------------------------------------------

    def names(self) -> None:
        for type_def in self.type_defs:
            name = str(type_def.get("type", ""))
            self.track_module(type_def.get("metadata"))
            if name in _RESERVED:
                self.c.add(
                    "a type cannot be named 'self' or 'this'.",
                    "reserved-type-keywords",
                    name,
                    self.loc.type_line(name),
                )
            if not re.search(TYPE_RULE, name):
                self.c.add(
                    f"type '{name}' does not match naming rule: '{TYPE_RULE}'.",
                    "invalid-name",
                    name,
                    self.loc.type_line(name),
                )
            for rel in type_def.get("relations") or {}:
                if rel in _RESERVED:
                    self.c.add(
                        "a relation cannot be named 'self' or 'this'.",
                        "reserved-relation-keywords",
                        rel,
                        self.line(name, rel),
                    )
                if not re.search(RELATION_RULE, rel):
                    self.c.add(
                        f"relation '{rel}' of type '{name}' does not match naming rule: "
                        f"'{RELATION_RULE}'.",
                        "invalid-name",
                        rel,
                        self.line(name, rel),
                    )

    def run(self) -> None:
        self.names()
        schema = self.model.get("schema_version")
        if not schema:
            self.c.add("schema version required", "schema-version-required", "", (None, 0))
        elif schema in _SUPPORTED_SCHEMAS:
            self.model_checks()
        else:
            self.c.add(
                f"invalid schema {schema}", "invalid-schema", schema, self.loc.schema_line(schema)
            )
        for file, modules in self.file_modules.items():
            if len(modules) > 1:
                self.c.add(
                    f"file {file} would contain multiple module definitions "
                    f"({', '.join(modules)}) when transforming to DSL. "
                    "Only one module can be defined per file.",
                    "multiple-modules-in-file",
                    file,
                    None,
                )

    # -- 2..5 ------------------------------------------------------------------------------

    def model_checks(self) -> None:
        if self.c.issues:
            return
        for type_def in self.type_defs:
            for rel in type_def.get("relations") or {}:
                self.references(str(type_def.get("type")), rel)
        if not self.c.issues:
            self.duplicates()
        if not self.c.issues:
            self.entry_points()
        self.condition_checks()

    def references(self, type_name: str, relation: str) -> None:
        relations = self.relations(type_name)
        if relation not in relations:
            return
        queue: list[Userset] = [relations[relation]]
        while queue:
            child = queue.pop(0)
            if (child.get("union") or {}).get("child"):
                queue.extend(child["union"]["child"])
            elif (child.get("intersection") or {}).get("child"):
                queue.extend(child["intersection"]["child"])
            elif (diff := child.get("difference")) and diff.get("base") and diff.get("subtract"):
                queue.extend([diff["base"], diff["subtract"]])
            else:
                self.leaf_defined(type_name, relation, leaf(child))

    def leaf_defined(self, type_name: str, relation: str, node: Leaf) -> None:
        relations = self.relations(type_name)
        if node.kind == "direct":
            self.direct_defined(type_name, relation)
        elif node.kind == "computed":
            if node.target and node.target not in relations:
                self.c.add(
                    f"the relation `{node.target}` does not exist.",
                    "missing-definition",
                    node.target,
                    self.line(type_name, relation),
                )
        elif node.target and node.tupleset:
            self.tupleset_defined(type_name, relation, node.target, node.tupleset)

    def direct_defined(self, type_name: str, relation: str) -> None:
        items = self.restrictions(type_name, relation)

        def line() -> Where | None:  # looked up only when an issue is reported
            return self.line(type_name, relation)

        if not items:
            self.c.add(
                f"assignable relation '{relation}' must have types",
                "assignable-relation-must-have-type",
                relation,
                line(),
            )
        for item in items:
            target_type, target_rel, wildcard, condition = decode_restriction(item)
            if target_type not in self.types:
                self.c.add(
                    f"`{target_type}` is not a valid type.",
                    "invalid-type",
                    target_type,
                    line(),
                    resolver=after_colon,
                )
            if condition and condition not in self.conditions:
                self.c.add(
                    f"`{condition}` is not a defined condition in the model.",
                    "condition-not-defined",
                    condition,
                    line(),
                    resolver=condition_column,
                )
            if (
                target_rel
                and not wildcard
                and (target_type not in self.types or target_rel not in self.relations(target_type))
            ):
                self.c.add(
                    f"`{target_rel}` is not a valid relation for `{target_type}`.",
                    "invalid-relation-type",
                    f"{target_type}#{target_rel}",
                    line(),
                )

    def not_direct(self, type_name: str, relation: str, tupleset: str) -> None:
        self.c.add(
            f"`{tupleset}` relation used inside from allows only direct relation.",
            "tupleuserset-not-direct",
            tupleset,
            self.line(type_name, relation),
            resolver=after_from,
        )

    def tupleset_defined(self, type_name: str, relation: str, target: str, tupleset: str) -> None:
        relations = self.relations(type_name)
        # A tupleset must be a plain direct relation: no rewrite at all.
        if tupleset in relations and relations[tupleset].get("this") is None:
            self.not_direct(type_name, relation, tupleset)
            return

        def line() -> Where | None:  # looked up only when an issue is reported
            return self.line(type_name, relation)

        if tupleset not in relations:
            self.c.add(
                f"`{tupleset}` is not a valid relation for `{type_name}`.",
                "invalid-relation-type",
                f"{target} from {tupleset}",
                line(),
            )
            return
        tupleset_rewrite = relations[tupleset]
        if not is_leaf(tupleset_rewrite):
            self.not_direct(type_name, relation, tupleset)
            return
        from_types = (
            self.restrictions(type_name, tupleset)
            if leaf(tupleset_rewrite).kind == "direct"
            else []
        )
        missing: list[str] = []
        for item in from_types:
            target_type, target_rel, wildcard, _ = decode_restriction(item)
            if wildcard or target_rel:
                self.not_direct(type_name, relation, tupleset)
            elif target_type not in self.types or target not in self.relations(target_type):
                missing.append(target_type)
        if len(missing) == len(from_types):
            for target_type in missing:
                self.c.add(
                    f"the `{target}` relation definition on type `{type_name}` is not valid: "
                    f"`{target}` does not exist on `{tupleset}`, which is of type `{target_type}`.",
                    "invalid-relation-on-tupleset",
                    f"{target} from {tupleset}",
                    line(),
                )

    def duplicates(self) -> None:
        seen_types: set[str] = set()
        for type_def in self.type_defs:
            name = str(type_def.get("type"))
            if name in seen_types:
                self.c.add(
                    f"the type `{name}` is a duplicate.",
                    "duplicated-error",
                    name,
                    self.loc.type_line(name),
                )
            seen_types.add(name)
            meta = (type_def.get("metadata") or {}).get("relations") or {}
            for rel, rel_meta in meta.items():
                seen: set[str] = set()
                for ref in (rel_meta or {}).get("directly_related_user_types") or []:
                    item = restriction_string(ref)
                    if item in seen:
                        # The reference looks the line up from the *restricted* type's line.
                        line = self.loc.restriction_line(name, rel, str(ref.get("type")))
                        self.c.add(
                            f"the type restriction `{item}` is a duplicate in the relation `{rel}`.",
                            "duplicated-error",
                            item,
                            line,
                        )
                    seen.add(item)
                self.duplicate_operands(type_def, rel)

    def duplicate_operands(self, type_def: Mapping[str, Any], rel: str) -> None:
        name = str(type_def.get("type"))
        rewrite = (type_def.get("relations") or {}).get(rel)
        if rewrite is None:
            return

        def report(operand: str) -> None:
            self.c.add(
                f"the partial relation definition `{operand}` is a duplicate in the relation `{rel}`.",
                "duplicated-error",
                operand,
                self.line(name, rel),
            )

        for key in ("union", "intersection"):
            seen: set[str | None] = set()
            for child in (rewrite.get(key) or {}).get("child") or []:
                operand = leaf(child).name if is_leaf(child) else None
                if operand and operand in seen:
                    report(operand)
                seen.add(operand)
        if rewrite.get("difference") is not None:
            diff = rewrite["difference"]
            base = leaf(diff.get("base") or {}).name if is_leaf(diff.get("base") or {}) else None
            sub = leaf(diff.get("subtract") or {})
            if base and is_leaf(diff.get("subtract") or {}) and base == sub.name:
                report(base)

    def entry_points(self) -> None:
        entry_points = EntryPoints(self.index)
        for type_def in self.type_defs:
            name = str(type_def.get("type"))
            type_meta = type_def.get("metadata") or {}
            for rel in type_def.get("relations") or {}:
                self.track_module((type_meta.get("relations") or {}).get(rel), type_meta)
                has_entry, loop = entry_points.check(name, rel)
                if not has_entry:
                    kind = "potential loop" if loop else "no entrypoint"
                    self.c.add(
                        f"`{rel}` is an impossible relation for `{name}` ({kind}).",
                        "relation-no-entry-point",
                        rel,
                        self.line(name, rel),
                    )

    def condition_checks(self) -> None:
        used: set[str] = set()
        for type_def in self.type_defs:
            meta = (type_def.get("metadata") or {}).get("relations") or {}
            for rel_meta in meta.values():
                for ref in (rel_meta or {}).get("directly_related_user_types") or []:
                    if ref.get("condition"):
                        used.add(str(ref["condition"]))
        for key, condition in self.conditions.items():
            self.track_module((condition or {}).get("metadata"))
            nested = (condition or {}).get("name")
            if key != nested:
                self.c.add(
                    f"condition key is `{key}` but nested name property is {nested}",
                    "different-nested-condition-name",
                    str(nested),
                    None,
                )
            if key not in used:
                self.c.add(
                    f"`{key}` condition is not used in the model.",
                    "condition-not-used",
                    key,
                    self.loc.condition_line(key),
                )


def validate(
    model: Mapping[str, Any],
    lines: Sequence[str] | None = None,
    *,
    locator: Locator | None = None,
) -> list[ModelIssue]:
    """Semantic issues of ``model``; ``lines`` (the DSL text's lines) adds positions.

    A modular model passes a ``locator`` that knows which module file declares what.
    """
    if locator is None:
        locator = Locator(list(lines) if lines is not None else None)
    collector = Collector(locator)
    _Validator(model, collector).run()
    return collector.issues

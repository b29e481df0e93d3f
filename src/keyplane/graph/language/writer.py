"""Model JSON → canonical OpenFGA DSL text (schema 1.1).

Produces the canonical layout of openfga/language's transformer (``pkg/js/transformer/
jsontodsl.ts``), byte for byte: ``model`` / ``  schema X`` header, one blank line before each
``type``, ``  relations`` then ``    define name: rewrite`` in the JSON's relation order,
nested operators in parentheses, direct assignment (``[...]``) moved first in a union or
intersection, then the conditions sorted by name with their parameters sorted by name.

A rewrite the DSL cannot express (direct assignment anywhere but the first operand, or more
than once) raises :class:`~keyplane.errors.InvalidModelError` with the reference message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.errors import InvalidModelError, ModelIssue
from keyplane.graph.language.json_model import normalize_model

__all__ = ["write_dsl"]


class _Unsupported(Exception):
    pass


def _type_restriction(ref: Mapping[str, Any]) -> str:
    out = str(ref.get("type", ""))
    if ref.get("wildcard") is not None:
        out += ":*"
    if ref.get("relation"):
        out += f"#{ref['relation']}"
    if ref.get("condition"):
        out += f" with {ref['condition']}"
    return out


def _prioritize_direct(children: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    out = list(children)
    for i, child in enumerate(out):
        if child.get("this") is not None:
            out.insert(0, out.pop(i))
            break
    return out


def _is_first_position(userset: Mapping[str, Any]) -> bool:
    if userset.get("this") is not None:
        return True
    diff = userset.get("difference")
    if diff and diff.get("base"):
        return _is_first_position(diff["base"])
    for key in ("intersection", "union"):
        group = userset.get(key)
        if group and group.get("child"):
            # The writer moves direct assignment first in a union or intersection.
            return _is_first_position(_prioritize_direct(group["child"])[0])
    return False


class _RelationWriter:
    def __init__(self, restrictions: Sequence[Mapping[str, Any]]) -> None:
        self.restrictions = restrictions
        self.direct_count = 0

    def top(self, userset: Mapping[str, Any]) -> str:
        if userset.get("difference") is not None:
            return self.difference(userset["difference"])
        if userset.get("union") is not None:
            return self.group(userset["union"], " or ")
        if userset.get("intersection") is not None:
            return self.group(userset["intersection"], " and ")
        return self.sub(userset)

    def difference(self, diff: Mapping[str, Any]) -> str:
        return f"{self.sub(diff.get('base') or {})} but not {self.sub(diff.get('subtract') or {})}"

    def group(self, group: Mapping[str, Any], joiner: str) -> str:
        children = _prioritize_direct(group.get("child") or [])
        return joiner.join(self.sub(child) for child in children)

    def sub(self, userset: Mapping[str, Any]) -> str:
        if userset.get("this") is not None:
            self.direct_count += 1
            return "[" + ", ".join(_type_restriction(r) for r in self.restrictions) + "]"
        if userset.get("computedUserset") is not None:
            return str(userset["computedUserset"].get("relation", ""))
        if userset.get("tupleToUserset") is not None:
            ttu = userset["tupleToUserset"]
            computed = (ttu.get("computedUserset") or {}).get("relation", "")
            tupleset = (ttu.get("tupleset") or {}).get("relation", "")
            return f"{computed} from {tupleset}"
        if userset.get("union") is not None:
            return f"({self.group(userset['union'], ' or ')})"
        if userset.get("intersection") is not None:
            return f"({self.group(userset['intersection'], ' and ')})"
        if userset.get("difference") is not None:
            return f"({self.difference(userset['difference'])})"
        raise _Unsupported


def _relation(type_name: str, name: str, userset: Mapping[str, Any], meta: Any) -> str:
    restrictions = (meta or {}).get("directly_related_user_types") or []
    writer = _RelationWriter(restrictions)
    unsupported = (
        f"the '{name}' relation definition under the '{type_name}' type is not supported "
        "by the OpenFGA DSL syntax yet"
    )
    try:
        body = writer.top(userset)
    except _Unsupported:
        raise InvalidModelError(unsupported, errors=[ModelIssue(unsupported)]) from None
    if writer.direct_count == 0 or (writer.direct_count == 1 and _is_first_position(userset)):
        return f"    define {name}: {body}"
    raise InvalidModelError(unsupported, errors=[ModelIssue(unsupported)])


def _origin(meta: Any, default: tuple[str, str] = ("", "")) -> tuple[str, str]:
    """(module, file) recorded in an element's metadata, else ``default``."""
    meta = meta or {}
    module = str(meta.get("module") or "")
    file = str((meta.get("source_info") or {}).get("file") or "")
    return (module, file) if module or file else default


def _type(type_def: Mapping[str, Any], *, modular: bool, source_info: bool) -> str:
    name = str(type_def.get("type", ""))
    type_origin = _origin(type_def.get("metadata"))
    out = f"\ntype {name}"
    if source_info and modular:
        out += f" # module: {type_origin[0]}, file: {type_origin[1]}"
    relations = type_def.get("relations") or {}
    meta = ((type_def.get("metadata") or {}).get("relations")) or {}
    names = list(relations)
    if modular:
        # The type's own relations first, then those added by each extending module.
        def order(relation: str) -> tuple[bool, str, str, str]:
            origin = _origin(meta.get(relation), type_origin)
            return (origin != type_origin, *origin, relation)

        names.sort(key=order)
    if names:
        out += "\n  relations"
        for rel_name in names:
            out += "\n" + _relation(name, rel_name, relations[rel_name] or {}, meta.get(rel_name))
            origin = _origin(meta.get(rel_name), type_origin)
            if source_info and modular and origin != type_origin:
                out += f" # extended by: module: {origin[0]}, file: {origin[1]}"
    return out


def _param_type(param: Mapping[str, Any]) -> str:
    base = str(param.get("type_name", "")).replace("TYPE_NAME_", "").lower()
    if base in ("list", "map"):
        generics = param.get("generic_types") or [{}]
        generic = str(generics[0].get("type_name", "")).replace("TYPE_NAME_", "").lower()
        return f"{base}<{generic}>"
    return base


def _condition(key: str, condition: Mapping[str, Any], *, source_info: bool = False) -> str:
    if key != condition.get("name"):
        msg = f"condition key '{key}' does not match condition name '{condition.get('name')}'"
        raise InvalidModelError(msg, errors=[ModelIssue(msg)])
    params = condition.get("parameters") or {}
    params_text = ", ".join(f"{p}: {_param_type(params[p])}" for p in sorted(params))
    out = f"condition {key}({params_text}) {{\n  {condition.get('expression', '')}\n}}"
    origin = _origin(condition.get("metadata"))
    if source_info and origin != ("", ""):
        out += f" # module: {origin[0]}, file: {origin[1]}"
    return out + "\n"


def write_dsl(model: Mapping[str, Any], *, source_info: bool = False) -> str:
    """Render a model JSON dict as canonical DSL text (ends with a newline).

    A modular model (types carrying ``metadata.module``) is written module by module:
    types, relations and conditions ordered by (module, file, name). With ``source_info``
    each type and condition is annotated with its module and file, and each relation added
    by ``extend type`` with the module and file that added it.
    """
    model = normalize_model(model)
    schema = model.get("schema_version") or "1.1"
    type_defs = list(model.get("type_definitions") or [])
    modular = any((t.get("metadata") or {}).get("module") for t in type_defs)
    if modular:
        type_defs.sort(key=lambda t: (*_origin(t.get("metadata")), str(t.get("type", ""))))
    out = f"model\n  schema {schema}\n"
    if type_defs:
        out += "\n".join(_type(t, modular=modular, source_info=source_info) for t in type_defs)
        out += "\n"
    conditions = model.get("conditions") or {}
    keys = sorted(conditions)
    if modular:
        keys.sort(key=lambda k: (*_origin(conditions[k].get("metadata")), k))
    for key in keys:
        out += "\n" + _condition(key, conditions[key], source_info=source_info)
    return out

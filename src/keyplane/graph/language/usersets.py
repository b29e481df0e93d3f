"""Read-only helpers over a model's protojson dict, shared by the validation modules.

A rewrite (``Userset``) is a tree of ``union`` / ``intersection`` / ``difference`` nodes whose
leaves are ``this`` (direct assignment), ``computedUserset`` (``r``) or ``tupleToUserset``
(``r from t``). Type restrictions are handled as the strings the DSL writes —
``type``, ``type:*``, ``type#relation``, optionally followed by `` with condition`` — because
the reference validator reasons on those strings, and matching its results needs the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Leaf",
    "TypeIndex",
    "Userset",
    "decode_restriction",
    "is_leaf",
    "leaf",
    "restriction_string",
]

Userset = Mapping[str, Any]


@dataclass(frozen=True)
class Leaf:
    """One leaf of a rewrite: direct (``this``), ``target`` or ``target from tupleset``."""

    target: str | None = None
    tupleset: str | None = None

    @property
    def kind(self) -> str:
        if self.tupleset:
            return "ttu"
        return "computed" if self.target else "direct"

    @property
    def name(self) -> str | None:
        """How the DSL writes the leaf (``None`` for direct assignment)."""
        if self.kind == "ttu":
            return f"{self.target} from {self.tupleset}"
        return self.target


def leaf(userset: Userset) -> Leaf:
    if userset.get("computedUserset") is not None:
        return Leaf(target=userset["computedUserset"].get("relation") or None)
    ttu = userset.get("tupleToUserset") or {}
    return Leaf(
        target=(ttu.get("computedUserset") or {}).get("relation") or None,
        tupleset=(ttu.get("tupleset") or {}).get("relation") or None,
    )


def is_leaf(userset: Userset) -> bool:
    return all(userset.get(k) is None for k in ("union", "intersection", "difference"))


def restriction_string(ref: Mapping[str, Any]) -> str:
    """``type``, ``type:*`` or ``type#relation``, plus `` with cond`` — as the DSL writes it."""
    out = str(ref.get("type", ""))
    if ref.get("wildcard") is not None:
        out += ":*"
    elif ref.get("relation"):
        out += f"#{ref['relation']}"
    if ref.get("condition"):
        out += f" with {ref['condition']}"
    return out


def decode_restriction(item: str) -> tuple[str, str | None, bool, str | None]:
    """Split a restriction string into (type, relation, is_wildcard, condition)."""
    base, _, condition = item.partition(" with ")
    wildcard = ":*" in base
    type_name, _, relation = base.replace(":*", "", 1).partition("#")
    return type_name, relation or None, wildcard, condition or None


class TypeIndex:
    """The model's type definitions by name (the last definition of a name wins)."""

    def __init__(self, model: Mapping[str, Any]) -> None:
        self.type_defs: list[Mapping[str, Any]] = list(model.get("type_definitions") or [])
        self.types: dict[str, Mapping[str, Any]] = {str(t.get("type")): t for t in self.type_defs}

    def relations(self, type_name: str) -> Mapping[str, Userset]:
        return (self.types.get(type_name) or {}).get("relations") or {}

    def restrictions(self, type_name: str, relation: str) -> list[str]:
        type_def = self.types.get(type_name) or {}
        meta = (type_def.get("metadata") or {}).get("relations") or {}
        refs = (meta.get(relation) or {}).get("directly_related_user_types") or []
        return [restriction_string(r) for r in refs]

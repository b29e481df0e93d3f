"""The SCIM filter language (RFC 7644 §3.4.2.2) and PATCH paths (RFC 7644 §3.5.2).

Grammar (RFC 7644 Figure 1, whitespace-tolerant; keywords and operators case-insensitive)::

    FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
    valuePath = attrPath "[" valFilter "]"
    attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
    logExp    = FILTER SP ("and" / "or") SP FILTER
    attrPath  = [URI ":"] ATTRNAME *1subAttr
    compValue = false / null / true / number / string      ; JSON literals
    PATH      = attrPath / valuePath [subAttr]             ; PATCH only

Precedence: ``not`` binds tightest, then ``and``, then ``or``; parentheses group.
:func:`parse_filter` returns a tree of the frozen dataclasses below;
:func:`matches` evaluates one against a SCIM resource (a JSON dict):

* a multi-valued attribute matches when ANY of its values does; on a multi-valued complex
  attribute named without a sub-attribute (``emails co "@example.com"``) the ``value``
  sub-attribute is compared;
* strings compare case-insensitively unless the attribute is ``caseExact``;
  ``dateTime`` attributes compare as instants; ``gt ge lt le`` on booleans and binary, and
  ``co sw ew`` on non-strings, are ``400 invalidFilter``;
* ``pr`` is "present and not empty" (not null, not ``""``, not ``[]``, not ``{}``);
* ``ne`` is the negation of ``eq`` (an absent attribute is ``ne`` any value);
* an attribute the schema does not define matches nothing.

Syntax errors are ``ScimError(400, invalidFilter)`` naming the 0-based position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from keyplane.scim.schemas import ResourceType

__all__ = [
    "COMPARE_OPS",
    "And",
    "AttrPath",
    "Compare",
    "Node",
    "Not",
    "Or",
    "PatchPath",
    "Present",
    "ValuePath",
    "matches",
    "parse_filter",
    "parse_path",
]

CompareOp = Literal["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
COMPARE_OPS: Final = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``[urn:]attr[.sub]`` as written (canonical names come from the schema at
    evaluation). ``urn`` is ``None`` when the path carries no schema prefix."""

    attr: str
    sub: str | None = None
    urn: str | None = None

    def __str__(self) -> str:
        text = f"{self.urn}:{self.attr}" if self.urn else self.attr
        return f"{text}.{self.sub}" if self.sub else text


@dataclass(frozen=True, slots=True)
class Compare:
    path: AttrPath
    op: CompareOp
    #: a JSON literal: str, int, float, bool or None
    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Present:
    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    expr: Node


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``attr[filter]``: some value of the multi-valued complex ``path`` satisfies
    ``filter``, whose attribute paths name sub-attributes of ``path``."""

    path: AttrPath
    filter: Node


Node = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 §3.5.2): ``attr``, ``attr.sub``, ``urn:…:attr[.sub]``,
    ``attr[filter]`` or ``attr[filter].sub`` — or a bare schema URN
    (``urn:…:enterprise:2.0:User``: the extension as a whole, ``attr.attr == ""``).

    ``attr.sub`` is set only without a filter; with a filter the trailing sub-attribute is
    ``sub``."""

    attr: AttrPath
    filter: Node | None = None
    sub: str | None = None


def parse_filter(text: str) -> Node:
    """Parse a filter; ``ScimError(400, invalidFilter)`` naming the position on a syntax
    error."""
    raise NotImplementedError  # pragma: no cover — skeleton


def parse_path(text: str, *, resource_type: ResourceType | None = None) -> PatchPath:
    """Parse a PATCH path; ``ScimError(400, invalidPath)`` on a syntax error (a bad value
    filter inside the brackets is ``invalidFilter``). With ``resource_type``, a path that is
    exactly one of its schema URNs is recognised as that schema."""
    raise NotImplementedError  # pragma: no cover — skeleton


def matches(
    node: Node,
    resource: Mapping[str, Any],
    *,
    resource_type: ResourceType | None = None,
) -> bool:
    """Whether ``resource`` satisfies the filter. The resource type (for ``caseExact``,
    types and extension attributes) is the one given, else the one the resource's
    ``schemas`` names."""
    raise NotImplementedError  # pragma: no cover — skeleton

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

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, cast

from keyplane.scim.errors import ScimError
from keyplane.scim.schemas import (
    AttrDef,
    ResourceType,
    get_schema,
    is_present,
    parse_datetime,
    resource_type_of,
)

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
    "format_filter",
    "matches",
    "matches_value",
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


# ---------------------------------------------------------------------------- lexing

_WORD: Final = re.compile(r"[A-Za-z0-9_$:.\-+]+")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$")
_ATTRNAME: Final = re.compile(r"\$?[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: Literal["word", "string", "(", ")", "[", "]", "end"]
    text: str
    pos: int


def _lex(text: str, error: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()[]":
            toks.append(_Tok(cast(Any, c), c, i))
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise _error(error, "unterminated string", i)
            toks.append(_Tok("string", text[i : j + 1], i))
            i = j + 1
        else:
            m = _WORD.match(text, i)
            if m is None:
                raise _error(error, f"unexpected character {c!r}", i)
            toks.append(_Tok("word", m.group(), i))
            i = m.end()
    toks.append(_Tok("end", "", n))
    return toks


def _error(scim_type: str, what: str, pos: int) -> ScimError:
    kind = "filter" if scim_type == "invalidFilter" else "path"
    return ScimError(
        f"invalid {kind} at position {pos}: {what}",
        scim_type=scim_type,
        details={"position": pos},
    )


def _attr_path(text: str, pos: int, error: str) -> AttrPath:
    """``[URI ":"]ATTRNAME[.subAttr]``: the URN is everything before the last colon."""
    urn: str | None = None
    rest = text
    if text.lower().startswith("urn:"):
        urn, _, rest = text.rpartition(":")
        if not rest:
            raise _error(error, f"{text!r} names no attribute", pos)
    name, dot, sub = rest.partition(".")
    if not _ATTRNAME.match(name) or (dot and not _ATTRNAME.match(sub)):
        raise _error(error, f"{text!r} is not an attribute path", pos)
    return AttrPath(name, sub or None, urn)


# ---------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self, text: str, error: str = "invalidFilter") -> None:
        self.error = error
        self.toks = _lex(text, error)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.lower() == word

    def expect(self, kind: str, what: str) -> _Tok:
        tok = self.take()
        if tok.kind != kind:
            found = "the end" if tok.kind == "end" else repr(tok.text)
            raise _error(self.error, f"expected {what}, found {found}", tok.pos)
        return tok

    def filter(self, *, nested: bool = False) -> Node:
        left = self.conjunction(nested)
        while self.keyword("or"):
            self.take()
            left = Or(left, self.conjunction(nested))
        return left

    def conjunction(self, nested: bool) -> Node:
        left = self.factor(nested)
        while self.keyword("and"):
            self.take()
            left = And(left, self.factor(nested))
        return left

    def factor(self, nested: bool) -> Node:
        tok = self.peek()
        if tok.kind == "(":
            self.take()
            inner = self.filter(nested=nested)
            self.expect(")", "')'")
            return inner
        if self.keyword("not") and self.toks[self.i + 1].kind == "(":
            self.take()
            self.take()
            inner = self.filter(nested=nested)
            self.expect(")", "')'")
            return Not(inner)
        word = self.expect("word", "an attribute path")
        path = _attr_path(word.text, word.pos, self.error)
        if self.peek().kind == "[":
            bracket = self.take()
            if nested:
                raise _error(self.error, "value filters cannot nest", bracket.pos)
            if path.sub is not None:
                raise _error(self.error, "a value filter follows an attribute", bracket.pos)
            inner = self.filter(nested=True)
            self.expect("]", "']'")
            return ValuePath(path, inner)
        op_tok = self.expect("word", "an operator")
        op = op_tok.text.lower()
        if op == "pr":
            return Present(path)
        if op not in COMPARE_OPS:
            raise _error(self.error, f"unknown operator {op_tok.text!r}", op_tok.pos)
        return Compare(path, cast(CompareOp, op), self.literal())

    def literal(self) -> str | int | float | bool | None:
        tok = self.take()
        if tok.kind == "string":
            try:
                value = json.loads(tok.text)
            except ValueError:
                raise _error(self.error, "invalid string escape", tok.pos) from None
            return cast(str, value)
        if tok.kind == "word":
            low = tok.text.lower()
            if low in ("true", "false"):
                return low == "true"
            if low == "null":
                return None
            if _NUMBER.match(tok.text):
                number = json.loads(tok.text)
                return cast(int | float, number)
        found = "the end" if tok.kind == "end" else repr(tok.text)
        raise _error(self.error, f"expected a value, found {found}", tok.pos)


def parse_filter(text: str) -> Node:
    """Parse a filter; ``ScimError(400, invalidFilter)`` naming the position on a syntax
    error."""
    if not isinstance(text, str) or not text.strip():
        raise ScimError("invalid filter: empty", scim_type="invalidFilter")
    parser = _Parser(text)
    node = parser.filter()
    tok = parser.peek()
    if tok.kind != "end":
        raise _error("invalidFilter", f"unexpected {tok.text!r}", tok.pos)
    return node


def parse_path(text: str, *, resource_type: ResourceType | None = None) -> PatchPath:
    """Parse a PATCH path; ``ScimError(400, invalidPath)`` on a syntax error (a bad value
    filter inside the brackets is ``invalidFilter``). With ``resource_type``, a path that is
    exactly one of its schema URNs is recognised as that schema."""
    if not isinstance(text, str) or not text.strip():
        raise ScimError("invalid path: empty", scim_type="invalidPath")
    text = text.strip()
    if resource_type is not None and resource_type.locate_schema(text) is not None:
        return PatchPath(AttrPath("", None, resource_type.locate_schema(text)))
    if resource_type is None and get_schema(text) is not None:
        return PatchPath(AttrPath("", None, text))
    bracket = text.find("[")
    if bracket < 0:
        if not _WORD.fullmatch(text):
            raise _error("invalidPath", f"{text!r} is not an attribute path", 0)
        return PatchPath(_attr_path(text, 0, "invalidPath"))
    attr = _attr_path(text[:bracket].strip(), 0, "invalidPath")
    if attr.sub is not None:
        raise _error("invalidPath", "a value filter follows an attribute", bracket)
    close = _closing_bracket(text, bracket)
    inner_text = text[bracket + 1 : close]
    parser = _Parser(inner_text)
    try:
        inner = parser.filter(nested=True)
        tok = parser.peek()
        if tok.kind != "end":
            raise _error("invalidFilter", f"unexpected {tok.text!r}", tok.pos)
    except ScimError as exc:
        pos = int(exc.details.get("position", 0)) + bracket + 1
        raise ScimError(
            f"invalid value filter in path at position {pos}: {exc.message.split(': ', 1)[-1]}",
            scim_type="invalidFilter",
            details={"position": pos},
        ) from None
    tail = text[close + 1 :].strip()
    sub: str | None = None
    if tail:
        if not tail.startswith(".") or not _ATTRNAME.match(tail[1:]):
            raise _error("invalidPath", f"unexpected {tail!r} after the value filter", close + 1)
        sub = tail[1:]
    return PatchPath(attr, inner, sub)


def _closing_bracket(text: str, start: int) -> int:
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "]":
            return i
        i += 1
    raise _error("invalidPath", "missing ']'", start)


def format_filter(node: Node) -> str:
    """The filter as text :func:`parse_filter` reads back to the same tree (fully
    parenthesised where precedence needs it; JSON literals)."""
    if isinstance(node, Compare):
        return f"{node.path} {node.op} {json.dumps(node.value, ensure_ascii=False)}"
    if isinstance(node, Present):
        return f"{node.path} pr"
    if isinstance(node, ValuePath):
        return f"{node.path}[{format_filter(node.filter)}]"
    if isinstance(node, Not):
        return f"not ({format_filter(node.expr)})"
    if isinstance(node, And):
        # and is left-associative and binds tighter than or
        left = _wrap(node.left, Or)
        right = _wrap(node.right, Or | And)
        return f"{left} and {right}"
    left = format_filter(node.left)
    right = _wrap(node.right, Or)
    return f"{left} or {right}"


def _wrap(node: Node, kinds: Any) -> str:
    text = format_filter(node)
    return f"({text})" if isinstance(node, kinds) else text


# ---------------------------------------------------------------------------- evaluation


_MISSING: Final = object()


def matches(
    node: Node,
    resource: Mapping[str, Any],
    *,
    resource_type: ResourceType | None = None,
) -> bool:
    """Whether ``resource`` satisfies the filter. The resource type (for ``caseExact``,
    types and extension attributes) is the one given, else the one the resource's
    ``schemas`` names."""
    rt = resource_type or resource_type_of(resource)
    return _eval(node, _Scope(resource, rt, None))


def matches_value(node: Node, value: Mapping[str, Any], definition: AttrDef) -> bool:
    """Whether one value of the multi-valued complex attribute ``definition`` satisfies
    the value filter ``node`` (the part between brackets of ``emails[type eq "work"]``)."""
    return _eval(node, _Scope(value, None, definition))


@dataclass(frozen=True, slots=True)
class _Scope:
    container: Mapping[str, Any]
    rt: ResourceType | None
    #: the multi-valued attribute whose values a value filter is looking at
    parent: AttrDef | None


def _eval(node: Node, scope: _Scope) -> bool:
    if isinstance(node, And):
        return _eval(node.left, scope) and _eval(node.right, scope)
    if isinstance(node, Or):
        return _eval(node.left, scope) or _eval(node.right, scope)
    if isinstance(node, Not):
        return not _eval(node.expr, scope)
    if isinstance(node, Present):
        value, _ = _lookup(node.path, scope)
        return value is not _MISSING and is_present(value)
    if isinstance(node, ValuePath):
        value, definition = _lookup(node.path, scope)
        if value is _MISSING or value is None:
            return False
        items = value if isinstance(value, list) else [value]
        return any(
            _eval(node.filter, _Scope(item, scope.rt, definition))
            for item in items
            if isinstance(item, Mapping)
        )
    return _compare(node, scope)


def _lookup(path: AttrPath, scope: _Scope) -> tuple[Any, AttrDef | None]:
    """The raw value at ``path`` (a list for a multi-valued attribute, the sub-attribute's
    values gathered across them) and its definition; ``_MISSING`` when the schema does not
    define the attribute."""
    if scope.parent is not None or scope.rt is None:
        definition = scope.parent.sub(path.attr) if scope.parent is not None else None
        if scope.parent is not None and definition is None:
            return _MISSING, None
        value = _get_ci(scope.container, path.attr)
        if path.sub is None:
            return value, definition
        sub_def = definition.sub(path.sub) if definition is not None else None
        return _descend(value, path.sub), sub_def
    text = f"{path.urn}:{path.attr}" if path.urn else path.attr
    if path.sub:
        text += f".{path.sub}"
    ref = scope.rt.locate(text, strict=False)
    if ref.attr is None or (ref.sub is not None and ref.sub_attr is None):
        return _MISSING, None
    container = _get_ci(scope.container, ref.schema) if ref.extension else scope.container
    value = _get_ci(container, ref.name)
    if ref.sub is None:
        return value, ref.attr
    return _descend(value, ref.sub), ref.sub_attr


def _descend(value: Any, sub: str) -> Any:
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            v = _get_ci(item, sub)
            if isinstance(v, list):
                out.extend(v)
            elif v is not None:
                out.append(v)
        return out
    return _get_ci(value, sub)


def _get_ci(container: Any, name: str) -> Any:
    if not isinstance(container, Mapping):
        return None
    if name in container:
        return container[name]
    low = name.lower()
    for k, v in container.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return None


def _compare(node: Compare, scope: _Scope) -> bool:
    value, definition = _lookup(node.path, scope)
    if value is _MISSING:
        return False
    # a complex attribute named without a sub-attribute compares its "value"
    if definition is not None and definition.type == "complex":
        sub = definition.sub("value")
        value = _descend(value, "value") if sub is not None else None
        definition = sub
    leaves = [v for v in (value if isinstance(value, list) else [value]) if v is not None]
    if isinstance(leaves and leaves[0], Mapping):  # untyped complex values
        leaves = [v for v in (_get_ci(x, "value") for x in leaves) if v is not None]
    if node.value is None:
        if node.op not in ("eq", "ne"):
            raise _error("invalidFilter", f"{node.op} null is meaningless", 0)
        return (not leaves) == (node.op == "eq")
    if node.op == "ne":
        return not any(_test(v, "eq", node.value, definition, node.path) for v in leaves)
    return any(_test(v, node.op, node.value, definition, node.path) for v in leaves)


def _test(
    actual: Any,
    op: str,
    expected: str | int | float | bool,
    definition: AttrDef | None,
    path: AttrPath,
) -> bool:
    kind = definition.type if definition is not None else _kind_of(actual)
    if kind == "boolean":
        if op not in ("eq", "ne"):
            raise _error("invalidFilter", f"{op} is not defined for boolean {path}", 0)
        if isinstance(actual, str):
            actual = actual.strip().lower() == "true"
        return isinstance(expected, bool) and actual is expected
    if kind in ("integer", "decimal"):
        if op in ("co", "sw", "ew"):
            raise _error("invalidFilter", f"{op} is not defined for numeric {path}", 0)
        if isinstance(expected, bool) or not isinstance(expected, int | float):
            return False
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        return _order(actual, op, expected)
    if kind == "binary" and op in ("gt", "ge", "lt", "le"):
        raise _error("invalidFilter", f"{op} is not defined for binary {path}", 0)
    if kind == "dateTime" and op in ("eq", "ne", "gt", "ge", "lt", "le"):
        when = parse_datetime(actual)
        bound = parse_datetime(expected)
        if bound is None:
            raise _error("invalidFilter", f"{expected!r} is not a dateTime for {path}", 0)
        return when is not None and _order(when, op, bound)
    if not isinstance(expected, str) or not isinstance(actual, str):
        return False
    a, e = (
        (actual, expected)
        if definition and definition.case_exact
        else (
            actual.lower(),
            expected.lower(),
        )
    )
    if op == "co":
        return e in a
    if op == "sw":
        return a.startswith(e)
    if op == "ew":
        return a.endswith(e)
    return _order(a, op, e)


def _order(a: Any, op: str, b: Any) -> bool:
    if op == "eq":
        return bool(a == b)
    if op == "gt":
        return bool(a > b)
    if op == "ge":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    if op == "le":
        return bool(a <= b)
    return False


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "decimal"
    if isinstance(value, datetime):
        return "dateTime"
    return "string"

"""Parser rules for relation definitions (``define r: ...``) of the OpenFGA DSL.

Implements these rules of ``grammar/OpenFGAParser.g4`` (openfga/language)::

    relationDef         : (directAssignment | relationDefGrouping | relationRecurse) partials?
    relationDefNoDirect : (relationDefGrouping | relationRecurseNoDirect) partials?
    relationDefPartials : (WS 'or' WS operand)+ | (WS 'and' WS operand)+ | WS 'but not' WS operand
    operand             : relationDefGrouping | relationRecurseNoDirect
    relationRecurse     : '(' WS* (relationDef | relationRecurseNoDirect) WS* ')'
    relationRecurseNoDirect : '(' WS* (relationDefNoDirect | relationRecurseNoDirect) WS* ')'
    directAssignment    : '[' WS? typeRestriction WS? (',' WS? typeRestriction WS?)* ']'
    relationDefRewrite  : extended_identifier (WS 'from' WS extended_identifier)?
    typeRestriction     : NL? (base | base WS 'with' WS conditionName) NL?
    base                : extended_identifier ((':' '*') | ('#' extended_identifier))?

Each rule mirrors the code ANTLR generates for it (where it syncs, how it predicts), so that
syntax errors read exactly as the reference's. Rewrites are built as the reference listener
builds them: one operator per level, a parenthesised group is a single operand.
"""

from __future__ import annotations

from typing import Any

from keyplane.graph.language import lexer as lx
from keyplane.graph.language.recognizer import Follow, NoViableAlt, Recognizer

__all__ = ["EXT", "IDS", "ExpressionRules", "follow"]

IDS = frozenset({lx.IDENTIFIER, lx.MODULE, lx.MODEL, lx.SCHEMA, lx.EXTEND, lx.TYPE, lx.RELATION})
EXT = IDS | {lx.EXTENDED_IDENTIFIER}
_OPERATORS = {lx.OR: "union", lx.AND: "intersection", lx.BUT_NOT: "difference"}
_DEF_FIRST = (lx.LBRACKET, lx.LPAREN, *EXT)
_NO_DIRECT_FIRST = (lx.LPAREN, *EXT)

Userset = dict[str, Any]


def follow(*types: int, eps: bool = False) -> Follow:
    return Follow(frozenset(types), eps)


_END = follow(eps=True)


def _combine(operator: int, children: list[Userset | None]) -> Userset | None:
    parts = [c for c in children if c is not None]
    if len(parts) != len(children):
        return None
    if operator == lx.BUT_NOT:
        return {"difference": {"base": parts[0], "subtract": parts[1]}}
    return {_OPERATORS[operator]: {"child": parts}}


class ExpressionRules(Recognizer):
    """The relation-definition half of the parser (the other half is in ``parser``)."""

    # -- identifiers ---------------------------------------------------------------------

    def ext_id(self, after: Follow) -> str:
        """``extended_identifier`` invoked with ``after`` as its follow."""
        return self.invoke(after, self._ext_id, "extended_identifier") or ""

    def _ext_id(self) -> str:
        self.sync(follow(*EXT), "ext_id")
        if self.la() in IDS:
            tok = self.invoke(_END, lambda: self.match_set(IDS, _END, "identifier"), "identifier")
            return tok.text if tok else ""
        if self.la() == lx.EXTENDED_IDENTIFIER:
            return self.match(lx.EXTENDED_IDENTIFIER, _END, "ext_id.x").text
        raise NoViableAlt(self.pos, self.pos, "ext_id")

    def ws_star(self, local: Follow, state: str) -> None:
        """``WHITESPACE*`` with ANTLR's loop-entry and loop-back syncs."""
        self.sync(local, state)
        while self.la() == lx.WHITESPACE:
            self.match(lx.WHITESPACE, local, state)
            self.sync(local, state + ".back", loop_back=True)

    def optional_ws(self, local: Follow, state: str) -> None:
        """``WHITESPACE?`` where ``local`` is what may come here (WS included)."""
        self.sync(local, state)
        if self.la() == lx.WHITESPACE:
            self.match(lx.WHITESPACE, Follow(local.tokens - {lx.WHITESPACE}, local.eps), state)

    # -- relation definitions ------------------------------------------------------------

    def relation_def(self, direct: list[dict[str, Any]]) -> Userset | None:
        self.sync(follow(*_DEF_FIRST), "relationDef")
        la = self.la()
        first: Userset | None
        if la == lx.LBRACKET:
            self.invoke(
                follow(lx.WHITESPACE, eps=True), lambda: self.direct_assignment(direct), "direct"
            )
            first = {"this": {}}
        elif la in EXT:
            first = self.invoke(follow(lx.WHITESPACE, eps=True), self.rewrite, "grouping")
        elif la == lx.LPAREN:
            first = self.invoke(
                follow(lx.WHITESPACE, eps=True), lambda: self.recurse(direct), "recurse"
            )
        else:
            raise NoViableAlt(self.pos, self.pos, "relationDef")
        return self.with_partials(first)

    def relation_def_no_direct(self) -> Userset | None:
        self.sync(follow(*_NO_DIRECT_FIRST), "relationDefNoDirect")
        la = self.la()
        first: Userset | None
        if la in EXT:
            first = self.invoke(follow(lx.WHITESPACE, eps=True), self.rewrite, "grouping")
        elif la == lx.LPAREN:
            first = self.invoke(follow(lx.WHITESPACE, eps=True), self.recurse_no_direct, "rnd")
        else:
            raise NoViableAlt(self.pos, self.pos, "relationDefNoDirect")
        return self.with_partials(first)

    def with_partials(self, first: Userset | None) -> Userset | None:
        # (relationDefPartials)? — WS also follows a definition inside parentheses, so
        # ANTLR predicts with two tokens; anything else falls back to "no partials".
        self.sync(follow(lx.WHITESPACE, eps=True), "partials?")
        if self.la() == lx.WHITESPACE and self.la(2) in _OPERATORS:
            result = self.invoke(_END, self.partials, "partials")
            if result is None:
                return None
            operator, rest = result
            return _combine(operator, [first, *rest])
        return first

    def partials(self) -> tuple[int, list[Userset | None]]:
        self.sync(follow(lx.WHITESPACE), "partials")
        operator = self.la(2)
        if operator not in _OPERATORS:
            raise NoViableAlt(self.pos, self.pos + 1, "partials")
        children: list[Userset | None] = []
        if operator == lx.BUT_NOT:
            self.operator_prefix(operator)
            children.append(self.operand(_END))
            return operator, children
        self.sync(follow(lx.WHITESPACE), "partials.plus")
        while True:
            self.operator_prefix(operator)
            children.append(self.operand(follow(lx.WHITESPACE, eps=True)))
            self.sync(follow(lx.WHITESPACE, eps=True), "partials.back", loop_back=True)
            if not (self.la() == lx.WHITESPACE and self.la(2) == operator):
                return operator, children

    def operator_prefix(self, operator: int) -> None:
        self.match(lx.WHITESPACE, follow(operator), "op.ws1")
        self.match(operator, follow(lx.WHITESPACE), "op")
        self.match(lx.WHITESPACE, follow(*_NO_DIRECT_FIRST), "op.ws2")

    def operand(self, after: Follow) -> Userset | None:
        self.sync(follow(*_NO_DIRECT_FIRST), "operand")
        if self.la() in EXT:
            return self.invoke(after, self.rewrite, "grouping")
        if self.la() == lx.LPAREN:
            return self.invoke(after, self.recurse_no_direct, "rnd")
        raise NoViableAlt(self.pos, self.pos, "operand")

    def recurse(self, direct: list[dict[str, Any]]) -> Userset | None:
        self.match(lx.LPAREN, follow(lx.WHITESPACE, *_DEF_FIRST), "recurse.(")
        self.ws_star(follow(lx.WHITESPACE, *_DEF_FIRST), "recurse.ws1")
        self.sync(follow(*_DEF_FIRST), "recurse.block")
        if self.la() not in _DEF_FIRST:
            raise NoViableAlt(self.pos, self.pos, "recurse.block")
        # relationDef covers every input relationRecurseNoDirect does; ANTLR resolves
        # the ambiguity to the first alternative.
        inner = self.invoke(
            follow(lx.WHITESPACE, lx.RPAREN), lambda: self.relation_def(direct), "relationDef"
        )
        self.ws_star(follow(lx.WHITESPACE, lx.RPAREN), "recurse.ws2")
        self.match(lx.RPAREN, _END, "recurse.)")
        return inner

    def recurse_no_direct(self) -> Userset | None:
        self.match(lx.LPAREN, follow(lx.WHITESPACE, *_NO_DIRECT_FIRST), "rnd.(")
        self.ws_star(follow(lx.WHITESPACE, *_NO_DIRECT_FIRST), "rnd.ws1")
        self.sync(follow(*_NO_DIRECT_FIRST), "rnd.block")
        if self.la() not in _NO_DIRECT_FIRST:
            raise NoViableAlt(self.pos, self.pos, "rnd.block")
        inner = self.invoke(
            follow(lx.WHITESPACE, lx.RPAREN), self.relation_def_no_direct, "relationDefNoDirect"
        )
        self.ws_star(follow(lx.WHITESPACE, lx.RPAREN), "rnd.ws2")
        self.match(lx.RPAREN, _END, "rnd.)")
        return inner

    def rewrite(self) -> Userset:
        computed = self.ext_id(follow(lx.WHITESPACE, eps=True))
        self.sync(follow(lx.WHITESPACE, eps=True), "rewrite.from?")
        if self.la() == lx.WHITESPACE and self.la(2) == lx.FROM:
            self.match(lx.WHITESPACE, follow(lx.FROM), "from.ws1")
            self.match(lx.FROM, follow(lx.WHITESPACE), "from")
            self.match(lx.WHITESPACE, follow(*EXT), "from.ws2")
            tupleset = self.ext_id(_END)
            return {
                "tupleToUserset": {
                    "computedUserset": {"relation": computed},
                    "tupleset": {"relation": tupleset},
                }
            }
        return {"computedUserset": {"relation": computed}}

    # -- direct assignment ---------------------------------------------------------------

    def direct_assignment(self, direct: list[dict[str, Any]]) -> None:
        restriction_first = follow(lx.WHITESPACE, lx.NEWLINE, *EXT)
        after_restriction = follow(lx.WHITESPACE, lx.COMMA, lx.RPRACKET)
        self.match(lx.LBRACKET, restriction_first, "[")
        self.optional_ws(restriction_first, "direct.ws1")
        self.restriction(direct, after_restriction)
        self.optional_ws(after_restriction, "direct.ws2")
        self.sync(follow(lx.COMMA, lx.RPRACKET), "direct.loop")
        while self.la() == lx.COMMA:
            self.match(lx.COMMA, restriction_first, ",")
            self.optional_ws(restriction_first, "direct.ws3")
            self.restriction(direct, after_restriction)
            self.optional_ws(after_restriction, "direct.ws4")
            self.sync(follow(lx.COMMA, lx.RPRACKET), "direct.back", loop_back=True)
        self.match(lx.RPRACKET, _END, "]")

    def restriction(self, direct: list[dict[str, Any]], after: Follow) -> None:
        ref = self.invoke(after, self.type_restriction, "typeRestriction")
        if ref is not None:
            direct.append(ref)

    def type_restriction(self) -> dict[str, Any]:
        self.sync(follow(lx.NEWLINE, *EXT), "tr.nl")
        if self.la() == lx.NEWLINE:
            self.match(lx.NEWLINE, follow(*EXT), "tr.nl")
        self.sync(follow(*EXT), "tr.block")
        with_condition = self.predict_restriction()
        base_follow = follow(lx.WHITESPACE) if with_condition else follow(lx.NEWLINE, eps=True)
        ref: dict[str, Any] = self.invoke(base_follow, self.base, "base") or {}
        if with_condition:
            self.match(lx.WHITESPACE, follow(lx.KEYWORD_WITH), "with.ws1")
            self.match(lx.KEYWORD_WITH, follow(lx.WHITESPACE), "with")
            self.match(lx.WHITESPACE, follow(lx.IDENTIFIER), "with.ws2")
            tok = self.invoke(
                follow(lx.NEWLINE, eps=True),
                lambda: self.match(lx.IDENTIFIER, _END, "conditionName"),
                "conditionName",
            )
            if tok is not None:
                ref["condition"] = tok.text
        self.sync(follow(lx.NEWLINE, eps=True), "tr.nl2")
        if self.la() == lx.NEWLINE:
            self.match(lx.NEWLINE, _END, "tr.nl2")
        return ref

    def predict_restriction(self) -> bool:
        """``base`` vs ``base WS 'with' ...``: scan the base, look past it."""
        start = j = self.pos
        if self.tokens[j].type not in EXT:
            raise NoViableAlt(start, j, "tr.block")
        j += 1
        if self.tokens[j].type == lx.COLON:
            if self.tokens[j + 1].type != lx.STAR:
                raise NoViableAlt(start, j + 1, "tr.block")
            j += 2
        elif self.tokens[j].type == lx.HASH:
            if self.tokens[j + 1].type not in EXT:
                raise NoViableAlt(start, j + 1, "tr.block")
            j += 2
        return (
            self.tokens[j].type == lx.WHITESPACE
            and self.tokens[min(j + 1, len(self.tokens) - 1)].type == lx.KEYWORD_WITH
        )

    def base(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"type": self.ext_id(follow(lx.COLON, lx.HASH, eps=True))}
        self.sync(follow(lx.COLON, lx.HASH, eps=True), "base.opt")
        if self.la() == lx.COLON:
            self.match(lx.COLON, follow(lx.STAR), "base.:")
            self.match(lx.STAR, _END, "base.*")
            ref["wildcard"] = {}
        elif self.la() == lx.HASH:
            self.match(lx.HASH, follow(*EXT), "base.#")
            ref["relation"] = self.ext_id(_END)
        return ref

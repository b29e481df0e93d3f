"""Recursive-descent parser: OpenFGA DSL (schema 1.1) → model JSON (protojson dict).

Implements ``grammar/OpenFGAParser.g4`` of openfga/language by hand::

    main        : WS? NL? modelHeader NL? typeDef* NL? condition* NL? EOF
    modelHeader : MODEL NL SCHEMA WS SCHEMA_VERSION WS?
    typeDef     : NL TYPE WS extended_identifier (NL RELATIONS relationDeclaration+)?
    relationDeclaration : NL DEFINE WS relationName WS? ':' WS? relationDef
    relationDef : (directAssignment | rewrite | '(' relationDef ')') partials?
    partials    : (WS 'or' WS term)+ | (WS 'and' WS term)+ | WS 'but not' WS term
    condition   : NL CONDITION WS name WS? '(' params ')' WS? '{' expression '}'

The tree is built as the reference listener builds it (``pkg/js/transformer/dsltojson.ts``):
one operator per nesting level, a parenthesised group becomes one child, a condition's
expression is the text of its tokens, trimmed. Syntax errors are reported with the
reference messages ("mismatched input 'x' expecting {...}") and 0-based positions; the
parser stops at the first error it cannot recover from.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import ModelIssue
from keyplane.graph.language import lexer as lx
from keyplane.graph.language.lexer import Token

__all__ = ["ParseResult", "parse"]

_IDENTIFIER = frozenset(
    {lx.MODEL, lx.SCHEMA, lx.TYPE, lx.RELATION, lx.IDENTIFIER, lx.MODULE, lx.EXTEND}
)
_EXTENDED_IDENTIFIER = _IDENTIFIER | {lx.EXTENDED_IDENTIFIER}
_OPERATORS = {lx.OR: "union", lx.AND: "intersection", lx.BUT_NOT: "difference"}


class _Abort(Exception):
    """Parsing cannot continue; the error was already recorded."""


@dataclass
class ParseResult:
    """The model built so far and every syntax issue met while building it."""

    model: dict[str, Any]
    errors: list[ModelIssue] = field(default_factory=list)


def _display(text: str) -> str:
    return text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _expecting(types: set[int] | frozenset[int]) -> str:
    names = [lx.display_name(t) for t in sorted(types, key=lambda t: lx.SORT_KEY.get(t, 999))]
    return names[0] if len(names) == 1 else "{" + ", ".join(names) + "}"


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.errors: list[ModelIssue] = []
        self.module: str | None = None
        self.extended: set[str] = set()

    # -- token helpers -------------------------------------------------------------------

    def la(self, k: int = 1) -> int:
        i = min(self.pos + k - 1, len(self.tokens) - 1)
        return self.tokens[i].type

    def lt(self, k: int = 1) -> Token:
        return self.tokens[min(self.pos + k - 1, len(self.tokens) - 1)]

    def consume(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.type != lx.EOF:
            self.pos += 1
        return tok

    def optional(self, token_type: int) -> Token | None:
        return self.consume() if self.la() == token_type else None

    def error(self, msg: str, tok: Token) -> None:
        self.errors.append(
            ModelIssue(
                message=msg,
                line=(tok.line, tok.line),
                column=(tok.column, tok.column + len(tok.text)),
                metadata={"symbol": tok.text},
            )
        )

    def mismatch(self, expected: set[int] | frozenset[int]) -> _Abort:
        tok = self.lt()
        self.error(f"mismatched input '{_display(tok.text)}' expecting {_expecting(expected)}", tok)
        return _Abort()

    def match(self, token_type: int, *also: int) -> Token:
        """Match one token; like ANTLR, drop one extraneous token or report a missing one."""
        if self.la() == token_type:
            return self.consume()
        expected = {token_type, *also}
        if self.la(2) == token_type:
            tok = self.lt()
            self.error(
                f"extraneous input '{_display(tok.text)}' expecting {_expecting(expected)}", tok
            )
            self.consume()
            return self.consume()
        raise self.mismatch(expected)

    def match_set(self, types: frozenset[int]) -> Token:
        if self.la() in types:
            return self.consume()
        raise self.mismatch(types)

    # -- rules ---------------------------------------------------------------------------

    def main(self) -> dict[str, Any]:
        model: dict[str, Any] = {}
        self.optional(lx.WHITESPACE)
        self.optional(lx.NEWLINE)
        if self.la() == lx.MODULE:
            self.consume()
            self.match(lx.WHITESPACE)
            self.module = self.match_set(_IDENTIFIER).text
        else:
            self.match(lx.MODEL, lx.MODULE)
            self.match(lx.NEWLINE)
            self.match(lx.SCHEMA)
            self.match(lx.WHITESPACE)
            model["schema_version"] = self.match(lx.SCHEMA_VERSION).text
        self.optional(lx.WHITESPACE)
        types: list[dict[str, Any]] = []
        conditions: dict[str, Any] = {}
        while self.la() == lx.NEWLINE and self.la(2) in (lx.TYPE, lx.EXTEND):
            types.append(self.type_def())
        while self.la() == lx.NEWLINE and self.la(2) == lx.CONDITION:
            self.condition(conditions)
        self.optional(lx.NEWLINE)
        if self.la() != lx.EOF:
            expected = {lx.EOF, lx.NEWLINE}
            raise self.mismatch(expected)
        model["type_definitions"] = types
        if conditions:
            model["conditions"] = conditions
        return model

    def type_def(self) -> dict[str, Any]:
        self.match(lx.NEWLINE)
        extend = self.optional(lx.EXTEND) is not None
        if extend:
            self.match(lx.WHITESPACE)
        self.match(lx.TYPE)
        self.match(lx.WHITESPACE)
        name_tok = self.match_set(_EXTENDED_IDENTIFIER)
        name = name_tok.text
        if extend and self.module is None:
            self.error("extend can only be used in a modular model", name_tok)
        elif extend and name in self.extended:
            self.error(f"'{name}' is already extended in file.", name_tok)
        if extend:
            self.extended.add(name)
        relations: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        type_def: dict[str, Any] = {"type": name, "relations": relations, "metadata": None}
        if self.module is not None:
            type_def["metadata"] = {"module": self.module}
        if self.la() == lx.NEWLINE and self.la(2) == lx.RELATIONS:
            self.consume()
            self.consume()
            self.relation_declaration(type_def, relations, metadata)
            while self.la() == lx.NEWLINE and self.la(2) == lx.DEFINE:
                self.relation_declaration(type_def, relations, metadata)
        if metadata:
            type_def["metadata"] = {**(type_def["metadata"] or {}), "relations": metadata}
        return type_def

    def relation_declaration(
        self, type_def: dict[str, Any], relations: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        self.match(lx.NEWLINE)
        self.match(lx.DEFINE)
        self.match(lx.WHITESPACE)
        name_tok = self.match_set(_EXTENDED_IDENTIFIER)
        self.optional(lx.WHITESPACE)
        self.match(lx.COLON)
        self.optional(lx.WHITESPACE)
        direct: list[dict[str, Any]] = []
        rewrite = self.relation_def(direct, allow_direct=True)
        if name_tok.text in relations:
            self.error(f"'{name_tok.text}' is already defined in '{type_def['type']}'", name_tok)
        relations[name_tok.text] = rewrite
        metadata[name_tok.text] = {"directly_related_user_types": direct}

    def relation_def(self, direct: list[dict[str, Any]], *, allow_direct: bool) -> dict[str, Any]:
        children = [self.term(direct, allow_direct=allow_direct)]
        operator: int | None = None
        while self.la() == lx.WHITESPACE and self.la(2) in _OPERATORS:
            if operator is not None and (self.la(2) != operator or operator == lx.BUT_NOT):
                break
            operator = self.la(2)
            self.consume()
            self.consume()
            self.match(lx.WHITESPACE)
            children.append(self.term(direct, allow_direct=False))
        if operator is None:
            return children[0]
        if operator == lx.BUT_NOT:
            return {"difference": {"base": children[0], "subtract": children[1]}}
        return {_OPERATORS[operator]: {"child": children}}

    def term(self, direct: list[dict[str, Any]], *, allow_direct: bool) -> dict[str, Any]:
        la = self.la()
        if la == lx.LBRACKET and allow_direct:
            self.direct_assignment(direct)
            return {"this": {}}
        if la == lx.LPAREN:
            self.consume()
            while self.optional(lx.WHITESPACE):
                pass
            inner = self.relation_def(direct, allow_direct=allow_direct)
            while self.optional(lx.WHITESPACE):
                pass
            self.match(lx.RPAREN)
            return inner
        if la in _EXTENDED_IDENTIFIER:
            computed = self.consume().text
            if self.la() == lx.WHITESPACE and self.la(2) == lx.FROM:
                self.consume()
                self.consume()
                self.match(lx.WHITESPACE)
                tupleset = self.match_set(_EXTENDED_IDENTIFIER).text
                return {
                    "tupleToUserset": {
                        "computedUserset": {"relation": computed},
                        "tupleset": {"relation": tupleset},
                    }
                }
            return {"computedUserset": {"relation": computed}}
        expected = {lx.LPAREN, *_EXTENDED_IDENTIFIER}
        if allow_direct:
            expected.add(lx.LBRACKET)
        raise self.mismatch(expected)

    def direct_assignment(self, direct: list[dict[str, Any]]) -> None:
        self.match(lx.LBRACKET)
        self.optional(lx.WHITESPACE)
        direct.append(self.type_restriction())
        self.optional(lx.WHITESPACE)
        while self.la() == lx.COMMA:
            self.consume()
            self.optional(lx.WHITESPACE)
            direct.append(self.type_restriction())
            self.optional(lx.WHITESPACE)
        if self.la() != lx.RPRACKET:
            raise self.mismatch({lx.COMMA, lx.RPRACKET})
        self.consume()

    def type_restriction(self) -> dict[str, Any]:
        self.optional(lx.NEWLINE)
        ref: dict[str, Any] = {"type": self.match_set(_EXTENDED_IDENTIFIER).text}
        if self.la() == lx.COLON:
            self.consume()
            self.match(lx.STAR)
            ref["wildcard"] = {}
        elif self.la() == lx.HASH:
            self.consume()
            ref["relation"] = self.match_set(_EXTENDED_IDENTIFIER).text
        if self.la() == lx.WHITESPACE and self.la(2) == lx.KEYWORD_WITH:
            self.consume()
            self.consume()
            self.match(lx.WHITESPACE)
            ref["condition"] = self.match(lx.IDENTIFIER).text
        self.optional(lx.NEWLINE)
        return ref

    def condition(self, conditions: dict[str, Any]) -> None:
        self.match(lx.NEWLINE)
        self.match(lx.CONDITION)
        self.match(lx.WHITESPACE)
        name_tok = self.match(lx.IDENTIFIER)
        name = name_tok.text
        if name in conditions:
            self.error(f"condition '{name}' is already defined in the model", name_tok)
        params: dict[str, Any] = {}
        self.optional(lx.WHITESPACE)
        self.match(lx.LPAREN)
        self.optional(lx.WHITESPACE)
        self.condition_parameter(name, params)
        self.optional(lx.WHITESPACE)
        while self.la() == lx.COMMA:
            self.consume()
            self.optional(lx.WHITESPACE)
            self.condition_parameter(name, params)
            self.optional(lx.WHITESPACE)
        self.optional(lx.NEWLINE)
        self.match(lx.RPAREN)
        self.optional(lx.WHITESPACE)
        self.match(lx.LBRACE)
        parts: list[str] = []
        while self.la() not in (lx.RBRACE, lx.EOF):
            parts.append(self.consume().text)
        self.match(lx.RBRACE)
        conditions[name] = {
            "name": name,
            "expression": "".join(parts).strip(),
            "parameters": params,
        }

    def condition_parameter(self, condition: str, params: dict[str, Any]) -> None:
        self.optional(lx.NEWLINE)
        name_tok = self.match(lx.IDENTIFIER)
        self.optional(lx.WHITESPACE)
        self.match(lx.COLON)
        self.optional(lx.WHITESPACE)
        param: dict[str, Any]
        if self.la() == lx.CONDITION_PARAM_CONTAINER:
            container = self.consume().text
            self.match(lx.LESS)
            generic = self.match(lx.CONDITION_PARAM_TYPE).text
            self.match(lx.GREATER)
            param = {
                "type_name": f"TYPE_NAME_{container.upper()}",
                "generic_types": [{"type_name": f"TYPE_NAME_{generic.upper()}"}],
            }
        else:
            type_name = self.match(lx.CONDITION_PARAM_TYPE).text
            param = {"type_name": f"TYPE_NAME_{type_name.upper()}"}
        if name_tok.text in params:
            self.error(
                f"parameter '{name_tok.text}' is already defined in the condition '{condition}'",
                name_tok,
            )
        params[name_tok.text] = param


def parse(text: str) -> ParseResult:
    """Parse DSL text; ``errors`` is empty when the text is syntactically valid."""
    tokens, lex_errors = lx.tokenize(lx.clean_dsl(text))
    parser = _Parser(tokens)
    for err in lex_errors:
        parser.errors.append(
            ModelIssue(
                message=f"token recognition error at: '{_display(err.text)}'",
                line=(err.line, err.line),
                column=(err.column, err.column + 1),
            )
        )
    model: dict[str, Any] = {}
    with contextlib.suppress(_Abort):
        model = parser.main()
    return ParseResult(model=model, errors=parser.errors)

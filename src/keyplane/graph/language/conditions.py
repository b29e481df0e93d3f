"""Parser rules for conditions, and the line-structure helpers every statement shares.

Implements these rules of ``grammar/OpenFGAParser.g4`` (openfga/language)::

    conditions   : condition*
    condition    : (NL comment)? NL 'condition' WS name WS? '(' WS? param WS?
                   (',' WS? param WS?)* NL? ')' WS? '{' NL? WS? expression NL? '}'
    conditionParameter : NL? IDENTIFIER WS? ':' WS? parameterType
    parameterType      : CONDITION_PARAM_TYPE | CONDITION_PARAM_CONTAINER '<' CONDITION_PARAM_TYPE '>'
    multiLineComment   : '#' ~NL* (NL multiLineComment)?

A condition's expression (CEL) is kept as the text of its tokens, trimmed, exactly as the
reference listener keeps it; it is compiled elsewhere. Repeated condition names and
parameters are reported like the reference listener reports them.
"""

from __future__ import annotations

from typing import Any

from keyplane.errors import ModelIssue
from keyplane.graph.language import lexer as lx
from keyplane.graph.language.expressions import ExpressionRules, follow
from keyplane.graph.language.lexer import Token
from keyplane.graph.language.recognizer import NoViableAlt

__all__ = ["ConditionRules"]

_END = follow(eps=True)
_EXPRESSION = frozenset(range(1, 58)) - {lx.RBRACE}


class ConditionRules(ExpressionRules):
    """Condition rules and shared helpers (the statement rules are in ``parser``)."""

    def __init__(self, tokens: list[Token]) -> None:
        super().__init__(tokens)
        self.listener_errors: list[ModelIssue] = []
        self.conditions: dict[str, Any] = {}

    def listener_error(self, msg: str, tok: Token) -> None:
        self.listener_errors.append(
            ModelIssue(
                message=msg,
                line=(tok.line, tok.line),
                column=(tok.column, tok.column + len(tok.text)),
                metadata={"symbol": tok.text},
            )
        )

    # -- predictions -----------------------------------------------------------------------

    def after_comments(self, j: int) -> int:
        """Index of the token after the comment lines starting at ``j``."""
        while self.tokens[j].type == lx.HASH:
            while self.tokens[j].type not in (lx.NEWLINE, lx.EOF):
                j += 1
            if self.tokens[j].type == lx.EOF:
                return j
            j += 1
        return j

    def next_is(self, *starts: int) -> bool:
        """NL followed (after optional comment lines) by one of ``starts``."""
        if self.la() != lx.NEWLINE:
            return False
        j = self.pos + 1
        if self.tokens[j].type == lx.HASH:
            j = self.after_comments(j)
        return self.tokens[j].type in starts

    def comment_or(self, keyword: int, state: str) -> bool:
        """``(NL comment)? NL keyword``: True for the comment branch."""
        if self.la() != lx.NEWLINE:
            raise NoViableAlt(self.pos, self.pos, state)
        if self.la(2) == lx.HASH:
            return True
        if self.la(2) == keyword or (keyword == lx.TYPE and self.la(2) == lx.EXTEND):
            return False
        raise NoViableAlt(self.pos, self.pos + 1, state)

    def comment(self) -> None:
        self.match(lx.HASH, follow(*(_EXPRESSION - {lx.NEWLINE}), eps=True), "#")
        while self.la() not in (lx.NEWLINE, lx.EOF):
            self.consume()
        if self.la() == lx.NEWLINE and self.la(2) == lx.HASH:
            self.match(lx.NEWLINE, follow(lx.HASH), "comment.nl")
            self.invoke(_END, self.comment, "comment")

    def conditions_rule(self) -> None:
        self.sync(follow(lx.NEWLINE, eps=True), "conditions")
        while self.next_is(lx.CONDITION):
            self.invoke(follow(lx.NEWLINE, eps=True), self.condition, "condition")
            self.sync(follow(lx.NEWLINE, eps=True), "conditions.back", loop_back=True)

    def condition(self) -> None:
        self.sync(follow(lx.NEWLINE), "condition.comment")
        if self.comment_or(lx.CONDITION, "condition.comment"):
            self.match(lx.NEWLINE, follow(lx.HASH), "condition.nl0")
            self.invoke(follow(lx.NEWLINE), self.comment, "comment")
        self.match(lx.NEWLINE, follow(lx.CONDITION), "condition.nl")
        self.match(lx.CONDITION, follow(lx.WHITESPACE), "condition")
        self.match(lx.WHITESPACE, follow(lx.IDENTIFIER), "condition.ws")
        name_tok = self.invoke(
            follow(lx.WHITESPACE, lx.LPAREN),
            lambda: self.match(lx.IDENTIFIER, _END, "conditionName"),
            "conditionName",
        )
        name = name_tok.text if name_tok is not None else ""
        if name_tok is not None and name in self.conditions:
            self.listener_error(f"condition '{name}' is already defined in the model", name_tok)
        params: dict[str, Any] = {}
        self.optional_ws(follow(lx.WHITESPACE, lx.LPAREN), "condition.ws2")
        param_first = follow(lx.WHITESPACE, lx.NEWLINE, lx.IDENTIFIER)
        after_param = follow(lx.WHITESPACE, lx.COMMA, lx.NEWLINE, lx.RPAREN)
        self.match(lx.LPAREN, param_first, "(")
        self.optional_ws(param_first, "condition.ws3")
        self.invoke(after_param, lambda: self.parameter(name, params), "conditionParameter")
        self.optional_ws(after_param, "condition.ws4")
        self.sync(follow(lx.COMMA, lx.NEWLINE, lx.RPAREN), "params")
        while self.la() == lx.COMMA:
            self.match(lx.COMMA, param_first, ",")
            self.optional_ws(param_first, "condition.ws5")
            self.invoke(after_param, lambda: self.parameter(name, params), "conditionParameter")
            self.optional_ws(after_param, "condition.ws6")
            self.sync(follow(lx.COMMA, lx.NEWLINE, lx.RPAREN), "params.back", loop_back=True)
        self.sync(follow(lx.NEWLINE, lx.RPAREN), "condition.nl2")
        if self.la() == lx.NEWLINE:
            self.match(lx.NEWLINE, follow(lx.RPAREN), "condition.nl2")
        self.match(lx.RPAREN, follow(lx.WHITESPACE, lx.LBRACE), ")")
        self.optional_ws(follow(lx.WHITESPACE, lx.LBRACE), "condition.ws7")
        body = follow(*_EXPRESSION, lx.RBRACE)
        self.match(lx.LBRACE, body, "{")
        if self.la() == lx.NEWLINE:
            self.match(lx.NEWLINE, body, "{.nl")
        if self.la() == lx.WHITESPACE:
            self.match(lx.WHITESPACE, body, "{.ws")
        parts: list[str] = []
        self.invoke(follow(lx.NEWLINE, lx.RBRACE), lambda: self.expression(parts), "expression")
        self.sync(follow(lx.NEWLINE, lx.RBRACE), "}.nl")
        if self.la() == lx.NEWLINE:
            self.match(lx.NEWLINE, follow(lx.RBRACE), "}.nl")
        self.match(lx.RBRACE, _END, "}")
        if name_tok is not None:
            self.conditions[name] = {
                "name": name,
                "expression": "".join(parts).strip(),
                "parameters": params,
            }

    def expression(self, parts: list[str]) -> None:
        while self.la() not in (lx.RBRACE, lx.EOF):
            self.end_error()
            parts.append(self.consume().text)

    def parameter(self, condition: str, params: dict[str, Any]) -> None:
        self.sync(follow(lx.NEWLINE, lx.IDENTIFIER), "param.nl")
        if self.la() == lx.NEWLINE:
            self.match(lx.NEWLINE, follow(lx.IDENTIFIER), "param.nl")
        name_tok = self.invoke(
            follow(lx.WHITESPACE, lx.COLON),
            lambda: self.match(lx.IDENTIFIER, _END, "parameterName"),
            "parameterName",
        )
        self.optional_ws(follow(lx.WHITESPACE, lx.COLON), "param.ws")
        type_first = follow(lx.WHITESPACE, lx.CONDITION_PARAM_CONTAINER, lx.CONDITION_PARAM_TYPE)
        self.match(lx.COLON, type_first, "param.:")
        self.optional_ws(type_first, "param.ws2")
        param = self.invoke(_END, self.parameter_type, "parameterType")
        if name_tok is None or param is None:
            return
        if name_tok.text in params:
            self.listener_error(
                f"parameter '{name_tok.text}' is already defined in the condition '{condition}'",
                name_tok,
            )
        params[name_tok.text] = param

    def parameter_type(self) -> dict[str, Any]:
        self.sync(follow(lx.CONDITION_PARAM_TYPE, lx.CONDITION_PARAM_CONTAINER), "paramType")
        if self.la() == lx.CONDITION_PARAM_TYPE:
            name = self.match(lx.CONDITION_PARAM_TYPE, _END, "paramType").text
            return {"type_name": f"TYPE_NAME_{name.upper()}"}
        if self.la() == lx.CONDITION_PARAM_CONTAINER:
            container = self.match(lx.CONDITION_PARAM_CONTAINER, follow(lx.LESS), "container")
            self.match(lx.LESS, follow(lx.CONDITION_PARAM_TYPE), "<")
            generic = self.match(lx.CONDITION_PARAM_TYPE, follow(lx.GREATER), "generic")
            self.match(lx.GREATER, _END, ">")
            return {
                "type_name": f"TYPE_NAME_{container.text.upper()}",
                "generic_types": [{"type_name": f"TYPE_NAME_{generic.text.upper()}"}],
            }
        raise NoViableAlt(self.pos, self.pos, "paramType")

"""Recursive-descent parser: OpenFGA DSL (schema 1.1) → model JSON (protojson dict).

Implements ``grammar/OpenFGAParser.g4`` of openfga/language by hand (relation definitions
are in :mod:`.expressions`)::

    main         : WS? NL? (modelHeader | moduleHeader) NL? typeDefs NL? conditions NL? EOF
    modelHeader  : (comment NL)? 'model' NL 'schema' WS SCHEMA_VERSION WS?
    moduleHeader : (comment NL)? 'module' WS identifier WS?
    typeDef      : (NL comment)? NL ('extend' WS)? 'type' WS extended_identifier
                   (NL 'relations' relationDeclaration+)?
    relationDeclaration : (NL comment)? NL 'define' WS relationName WS? ':' WS? relationDef
    condition    : (NL comment)? NL 'condition' WS name WS? '(' WS? param WS?
                   (',' WS? param WS?)* NL? ')' WS? '{' NL? WS? expression NL? '}'
    conditionParameter : NL? IDENTIFIER WS? ':' WS? parameterType

The model is built as the reference listener (``pkg/js/transformer/dsltojson.ts``) builds
it; a condition's expression is the text of its tokens, trimmed. Like the reference, the
listener's own checks (a relation or condition defined twice, a parameter repeated,
``extend`` outside a module) are reported after every syntax error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import ModelIssue
from keyplane.graph.language import lexer as lx
from keyplane.graph.language.expressions import EXT, IDS, ExpressionRules, follow
from keyplane.graph.language.lexer import Token
from keyplane.graph.language.recognizer import NoViableAlt, RecognitionError

__all__ = ["ParseResult", "parse"]

_END = follow(eps=True)
_AFTER_HEADER = follow(lx.NEWLINE, lx.EOF)
_EXPRESSION = frozenset(range(1, 58)) - {lx.RBRACE}


@dataclass
class ParseResult:
    """The model built so far and every syntax issue met while building it."""

    model: dict[str, Any]
    errors: list[ModelIssue] = field(default_factory=list)
    module: str | None = None
    """The name in ``module <name>`` for a module file, else ``None``."""
    extensions: set[int] = field(default_factory=set)
    """Indexes in ``type_definitions`` declared with ``extend type``."""


class _Parser(ExpressionRules):
    def __init__(self, tokens: list[Token]) -> None:
        super().__init__(tokens)
        self.listener_errors: list[ModelIssue] = []
        self.model: dict[str, Any] = {}
        self.types: list[dict[str, Any]] = []
        self.conditions: dict[str, Any] = {}
        self.module: str | None = None
        self.extended: set[str] = set()
        self.extensions: set[int] = set()

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

    def optional_newline(self, after_nl: set[int], skip_starts: set[int], state: str) -> bool:
        """``NL?`` in ``main``, decided on two tokens like ANTLR's prediction."""
        if self.la() != lx.NEWLINE:
            if self.la() == lx.EOF:
                return False
            raise NoViableAlt(self.pos, self.pos, state)
        second = self.la(2)
        if second in after_nl:
            return True
        if second in skip_starts:
            return False
        raise NoViableAlt(self.pos, self.pos + 1, state)

    # -- rules -------------------------------------------------------------------------------

    def main(self) -> None:
        try:
            self.optional_ws(follow(lx.WHITESPACE, lx.NEWLINE, lx.HASH, lx.MODULE, lx.MODEL), "ws")
            self.sync(follow(lx.NEWLINE, lx.HASH, lx.MODULE, lx.MODEL), "nl")
            if self.la() == lx.NEWLINE:
                self.match(lx.NEWLINE, follow(lx.HASH, lx.MODULE, lx.MODEL), "nl")
            self.sync(follow(lx.HASH, lx.MODULE, lx.MODEL), "header")
            if self.predict_header() == lx.MODEL:
                self.invoke(_AFTER_HEADER, self.model_header, "modelHeader")
            else:
                self.invoke(_AFTER_HEADER, self.module_header, "moduleHeader")
            self.sync(_AFTER_HEADER, "nl1")
            starts = {lx.HASH, lx.EXTEND, lx.TYPE, lx.CONDITION}
            if self.optional_newline({lx.NEWLINE, lx.EOF}, starts, "nl1"):
                self.match(lx.NEWLINE, _AFTER_HEADER, "nl1")
            self.invoke(_AFTER_HEADER, self.type_defs, "typeDefs")
            self.sync(_AFTER_HEADER, "nl2")
            if self.optional_newline({lx.NEWLINE, lx.EOF}, {lx.HASH, lx.CONDITION}, "nl2"):
                self.match(lx.NEWLINE, _AFTER_HEADER, "nl2")
            self.invoke(_AFTER_HEADER, self.conditions_rule, "conditions")
            self.sync(_AFTER_HEADER, "nl3")
            if self.la() == lx.NEWLINE:
                self.match(lx.NEWLINE, follow(lx.EOF), "nl3")
            self.match(lx.EOF, _END, "eof")
        except RecognitionError as err:
            self.report(err)
            self.recover("main:" + err.state)
        self.model["type_definitions"] = self.types
        if self.conditions:
            self.model["conditions"] = self.conditions

    def predict_header(self) -> int:
        j = self.after_comments(self.pos) if self.la() == lx.HASH else self.pos
        if self.tokens[j].type in (lx.MODEL, lx.MODULE):
            return self.tokens[j].type
        raise NoViableAlt(self.pos, j, "header")

    def header_comment(self, keyword: int) -> None:
        self.sync(follow(lx.HASH, keyword), "header.comment")
        if self.la() == lx.HASH:
            self.invoke(follow(lx.NEWLINE), self.comment, "comment")
            self.match(lx.NEWLINE, follow(keyword), "header.comment")

    def model_header(self) -> None:
        self.header_comment(lx.MODEL)
        self.match(lx.MODEL, follow(lx.NEWLINE), "model")
        self.match(lx.NEWLINE, follow(lx.SCHEMA), "model.nl")
        self.match(lx.SCHEMA, follow(lx.WHITESPACE), "schema")
        self.match(lx.WHITESPACE, follow(lx.SCHEMA_VERSION), "schema.ws")
        version = self.match(lx.SCHEMA_VERSION, follow(lx.WHITESPACE, eps=True), "version")
        if version.text:
            self.model["schema_version"] = version.text
        self.optional_ws(follow(lx.WHITESPACE, eps=True), "model.ws")

    def module_header(self) -> None:
        self.header_comment(lx.MODULE)
        self.match(lx.MODULE, follow(lx.WHITESPACE), "module")
        self.match(lx.WHITESPACE, follow(*IDS), "module.ws")
        tok = self.invoke(
            follow(lx.WHITESPACE, eps=True),
            lambda: self.match_set(IDS, _END, "identifier"),
            "identifier",
        )
        self.module = tok.text if tok is not None else ""
        self.optional_ws(follow(lx.WHITESPACE, eps=True), "module.ws2")

    def comment(self) -> None:
        self.match(lx.HASH, follow(*(_EXPRESSION - {lx.NEWLINE}), eps=True), "#")
        while self.la() not in (lx.NEWLINE, lx.EOF):
            self.consume()
        if self.la() == lx.NEWLINE and self.la(2) == lx.HASH:
            self.match(lx.NEWLINE, follow(lx.HASH), "comment.nl")
            self.invoke(_END, self.comment, "comment")

    def type_defs(self) -> None:
        self.sync(follow(lx.NEWLINE, eps=True), "typeDefs")
        while self.next_is(lx.TYPE, lx.EXTEND):
            self.invoke(follow(lx.NEWLINE, eps=True), self.type_def, "typeDef")
            self.sync(follow(lx.NEWLINE, eps=True), "typeDefs.back", loop_back=True)

    def type_def(self) -> None:
        self.sync(follow(lx.NEWLINE), "typeDef.comment")
        if self.comment_or(lx.TYPE, "typeDef.comment"):
            self.match(lx.NEWLINE, follow(lx.HASH), "typeDef.nl0")
            self.invoke(follow(lx.NEWLINE), self.comment, "comment")
        self.match(lx.NEWLINE, follow(lx.EXTEND, lx.TYPE), "typeDef.nl")
        self.sync(follow(lx.EXTEND, lx.TYPE), "extend")
        extend = self.la() == lx.EXTEND
        if extend:
            self.match(lx.EXTEND, follow(lx.WHITESPACE), "extend")
            self.match(lx.WHITESPACE, follow(lx.TYPE), "extend.ws")
        self.match(lx.TYPE, follow(lx.WHITESPACE), "type")
        self.match(lx.WHITESPACE, follow(*EXT), "type.ws")
        name_tok = self.lt()
        name = self.ext_id(follow(lx.NEWLINE, eps=True))
        if extend and self.module is None:
            self.listener_error("extend can only be used in a modular model", name_tok)
        elif extend and name in self.extended:
            self.listener_error(f"'{name}' is already extended in file.", name_tok)
        if extend:
            self.extended.add(name)
            self.extensions.add(len(self.types))
        relations: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        type_def: dict[str, Any] = {"type": name, "relations": relations, "metadata": None}
        if self.module is not None:
            type_def["metadata"] = {"module": self.module}
        self.types.append(type_def)
        self.sync(follow(lx.NEWLINE, eps=True), "relations?")
        if self.la() == lx.NEWLINE and self.la(2) == lx.RELATIONS:
            self.match(lx.NEWLINE, follow(lx.RELATIONS), "relations.nl")
            self.match(lx.RELATIONS, follow(lx.NEWLINE), "relations")
            self.sync(follow(lx.NEWLINE), "relations.plus")
            while True:
                self.invoke(
                    follow(lx.NEWLINE, eps=True),
                    lambda: self.relation_declaration(type_def, relations, metadata),
                    "relationDeclaration",
                )
                self.sync(follow(lx.NEWLINE, eps=True), "relations.back", loop_back=True)
                if not self.next_is(lx.DEFINE):
                    break
        if metadata:
            type_def["metadata"] = {**(type_def["metadata"] or {}), "relations": metadata}

    def relation_declaration(
        self, type_def: dict[str, Any], relations: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        self.sync(follow(lx.NEWLINE), "define.comment")
        if self.comment_or(lx.DEFINE, "define.comment"):
            self.match(lx.NEWLINE, follow(lx.HASH), "define.nl0")
            self.invoke(follow(lx.NEWLINE), self.comment, "comment")
        self.match(lx.NEWLINE, follow(lx.DEFINE), "define.nl")
        self.match(lx.DEFINE, follow(lx.WHITESPACE), "define")
        self.match(lx.WHITESPACE, follow(*EXT), "define.ws")
        name_tok = self.lt()
        name = self.invoke(
            follow(lx.WHITESPACE, lx.COLON), lambda: self.ext_id(_END), "relationName"
        )
        self.optional_ws(follow(lx.WHITESPACE, lx.COLON), "define.ws2")
        first = follow(lx.WHITESPACE, lx.LBRACKET, lx.LPAREN, *EXT)
        self.match(lx.COLON, first, ":")
        self.optional_ws(first, "define.ws3")
        direct: list[dict[str, Any]] = []
        rewrite = self.invoke(_END, lambda: self.relation_def(direct), "relationDef")
        if name is None or rewrite is None:
            return
        if name in relations:
            self.listener_error(f"'{name}' is already defined in '{type_def['type']}'", name_tok)
        relations[name] = rewrite
        metadata[name] = {"directly_related_user_types": direct}

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


def parse(text: str) -> ParseResult:
    """Parse DSL text; ``errors`` is empty when the text is syntactically valid."""
    tokens, lex_errors = lx.tokenize(lx.clean_dsl(text))
    parser = _Parser(tokens)
    for err in lex_errors:
        parser.errors.append(
            ModelIssue(
                message=f"token recognition error at: '{err.text}'",
                line=(err.line, err.line),
                column=(err.column, err.column + 1),
            )
        )
    try:
        parser.main()
    except RecursionError:
        tok = parser.lt()
        parser.errors.append(
            ModelIssue(
                message="the model is nested too deeply",
                error_type="nesting-too-deep",
                line=(tok.line, tok.line),
                column=(tok.column, tok.column + len(tok.text)),
            )
        )
    return ParseResult(
        model=parser.model,
        errors=parser.errors + parser.listener_errors,
        module=parser.module,
        extensions=parser.extensions,
    )

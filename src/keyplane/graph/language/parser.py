"""Recursive-descent parser: OpenFGA DSL (schema 1.1) → model JSON (protojson dict).

Implements ``grammar/OpenFGAParser.g4`` of openfga/language by hand (relation definitions
are in :mod:`.expressions`, conditions in :mod:`.conditions`)::

    main         : WS? NL? (modelHeader | moduleHeader) NL? typeDefs NL? conditions NL? EOF
    modelHeader  : (comment NL)? 'model' NL 'schema' WS SCHEMA_VERSION WS?
    moduleHeader : (comment NL)? 'module' WS identifier WS?
    typeDef      : (NL comment)? NL ('extend' WS)? 'type' WS extended_identifier
                   (NL 'relations' relationDeclaration+)?
    relationDeclaration : (NL comment)? NL 'define' WS relationName WS? ':' WS? relationDef

The model is built as the reference listener (``pkg/js/transformer/dsltojson.ts``) builds
it. Like the reference, the listener's own checks (a relation or condition defined twice,
a parameter repeated, ``extend`` outside a module) are reported after every syntax error.
Syntax errors follow ANTLR's recovery (:mod:`.recognizer`), so one mistake can yield the
same follow-up errors the reference reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import ModelIssue
from keyplane.graph.language import lexer as lx
from keyplane.graph.language.conditions import ConditionRules
from keyplane.graph.language.expressions import EXT, IDS, follow
from keyplane.graph.language.lexer import Token
from keyplane.graph.language.recognizer import NoViableAlt, RecognitionError

__all__ = ["ParseResult", "parse"]

_END = follow(eps=True)
_AFTER_HEADER = follow(lx.NEWLINE, lx.EOF)


@dataclass
class ParseResult:
    """The model built so far and every syntax issue met while building it."""

    model: dict[str, Any]
    errors: list[ModelIssue] = field(default_factory=list)
    module: str | None = None
    """The name in ``module <name>`` for a module file, else ``None``."""
    extensions: set[int] = field(default_factory=set)
    """Indexes in ``type_definitions`` declared with ``extend type``."""


class _Parser(ConditionRules):
    def __init__(self, tokens: list[Token]) -> None:
        super().__init__(tokens)
        self.model: dict[str, Any] = {}
        self.types: list[dict[str, Any]] = []
        self.module: str | None = None
        self.extended: set[str] = set()
        self.extensions: set[int] = set()

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

"""Tokenizer for the OpenFGA modeling language (schema 1.1).

Mirrors ``grammar/OpenFGALexer.g4`` of openfga/language: ANTLR semantics (longest match
wins, ties go to the rule defined first), the ``CONDITION_DEF`` mode entered by the
``condition`` keyword and left at the closing ``)``, and the reference implementation's
token numbering, which fixes the order of token names in "expecting {...}" messages.

Before lexing, the text is cleaned as the reference ``parseDSL`` does: lines whose first
non-blank character is ``#`` become empty and everything from `` #`` to the end of a line is
dropped, as is trailing white space. Only line ends change, so 0-based lines and columns
still point into the original text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "EOF",
    "LexError",
    "Token",
    "clean_dsl",
    "display_name",
    "tokenize",
]

# Token types, numbered as in the reference OpenFGALexer.tokens.
COLON, COMMA, LESS, GREATER, LBRACKET, RBRACKET, LPAREN, RPAREN, WHITESPACE, IDENTIFIER = range(
    1, 11
)
HASH, AND, OR, BUT_NOT, FROM, MODEL, SCHEMA, SCHEMA_VERSION, TYPE, CONDITION = range(11, 21)
RELATIONS, RELATION, DEFINE, KEYWORD_WITH, EQUALS, NOT_EQUALS, IN = range(21, 28)
LESS_EQUALS, GREATER_EQUALS, LOGICAL_AND, LOGICAL_OR, RPRACKET, LBRACE, RBRACE = range(28, 35)
DOT, MINUS, EXCLAM, QUESTIONMARK, PLUS, STAR, SLASH, PERCENT = range(35, 43)
CEL_TRUE, CEL_FALSE, NUL, CEL_COMMENT, NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES = range(43, 52)
NEWLINE, CONDITION_PARAM_CONTAINER, CONDITION_PARAM_TYPE = range(52, 55)
# The reference grammar shown here adds these two; their numbers only order messages.
MODULE, EXTEND, EXTENDED_IDENTIFIER = 55, 56, 57
EOF = -1

_LITERAL: dict[int, str] = {
    HASH: "'#'",
    COLON: "':'",
    COMMA: "','",
    AND: "'and'",
    OR: "'or'",
    BUT_NOT: "'but not'",
    FROM: "'from'",
    MODULE: "'module'",
    MODEL: "'model'",
    SCHEMA: "'schema'",
    EXTEND: "'extend'",
    TYPE: "'type'",
    CONDITION: "'condition'",
    RELATIONS: "'relations'",
    RELATION: "'relation'",
    DEFINE: "'define'",
    KEYWORD_WITH: "'with'",
    EQUALS: "'=='",
    NOT_EQUALS: "'!='",
    IN: "'in'",
    LESS: "'<'",
    LESS_EQUALS: "'<='",
    GREATER_EQUALS: "'>='",
    GREATER: "'>'",
    LOGICAL_AND: "'&&'",
    LOGICAL_OR: "'||'",
    LBRACKET: "'['",
    RPRACKET: "']'",
    LBRACE: "'{'",
    RBRACE: "'}'",
    LPAREN: "'('",
    RPAREN: "')'",
    DOT: "'.'",
    MINUS: "'-'",
    EXCLAM: "'!'",
    QUESTIONMARK: "'?'",
    PLUS: "'+'",
    STAR: "'*'",
    SLASH: "'/'",
    PERCENT: "'%'",
    CEL_TRUE: "'true'",
    CEL_FALSE: "'false'",
    NUL: "'null'",
}
_SYMBOLIC: dict[int, str] = {
    WHITESPACE: "WHITESPACE",
    IDENTIFIER: "IDENTIFIER",
    SCHEMA_VERSION: "SCHEMA_VERSION",
    EXTENDED_IDENTIFIER: "EXTENDED_IDENTIFIER",
    NEWLINE: "NEWLINE",
    CONDITION_PARAM_CONTAINER: "CONDITION_PARAM_CONTAINER",
    CONDITION_PARAM_TYPE: "CONDITION_PARAM_TYPE",
    NUM_FLOAT: "NUM_FLOAT",
    NUM_INT: "NUM_INT",
    NUM_UINT: "NUM_UINT",
    STRING: "STRING",
    BYTES: "BYTES",
    CEL_COMMENT: "CEL_COMMENT",
    RBRACKET: "RBRACKET",
    EOF: "<EOF>",
}

# The order in which ANTLR lists expected tokens: the reference vocabulary order, where
# 'module' and 'extend' sit before 'model' and 'type' respectively and
# EXTENDED_IDENTIFIER just before NEWLINE.
_ORDER: list[int] = [
    EOF, COLON, COMMA, LESS, GREATER, LBRACKET, RBRACKET, LPAREN, RPAREN, WHITESPACE,
    IDENTIFIER, HASH, AND, OR, BUT_NOT, FROM, MODULE, MODEL, SCHEMA, SCHEMA_VERSION, EXTEND,
    TYPE, CONDITION, RELATIONS, RELATION, DEFINE, KEYWORD_WITH, EQUALS, NOT_EQUALS, IN,
    LESS_EQUALS, GREATER_EQUALS, LOGICAL_AND, LOGICAL_OR, RPRACKET, LBRACE, RBRACE, DOT,
    MINUS, EXCLAM, QUESTIONMARK, PLUS, STAR, SLASH, PERCENT, CEL_TRUE, CEL_FALSE, NUL,
    CEL_COMMENT, NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, EXTENDED_IDENTIFIER, NEWLINE,
    CONDITION_PARAM_CONTAINER, CONDITION_PARAM_TYPE,
]  # fmt: skip
SORT_KEY: dict[int, int] = {t: i for i, t in enumerate(_ORDER)}


def display_name(token_type: int) -> str:
    """The name ANTLR prints for a token type: its literal if it has one, else its symbol."""
    return _LITERAL.get(token_type) or _SYMBOLIC.get(token_type, str(token_type))


@dataclass(frozen=True, slots=True)
class Token:
    """One token; ``line`` and ``column`` are 0-based, ``index`` is the offset in the text."""

    type: int
    text: str
    line: int
    column: int
    index: int

    @property
    def end_column(self) -> int:
        return self.column + len(self.text)


@dataclass(frozen=True, slots=True)
class LexError:
    """A character no lexer rule matches (ANTLR's "token recognition error")."""

    text: str
    line: int
    column: int


_ESC = (
    r"""\\(?:[abfnrtv"'\\?`]|[0-3][0-7][0-7]|[xX][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"""
)
_STRING = (
    rf'"""(?:{_ESC}|[^\\])*?"""'
    rf"|'''(?:{_ESC}|[^\\])*?'''"
    rf'|"(?:{_ESC}|[^\\"\n\r])*"'
    rf"|'(?:{_ESC}|[^\\'\n\r])*'"
    r'|[rR]"""[\s\S]*?"""'
    r"|[rR]'''[\s\S]*?'''"
    r'|[rR]"[^"\n\r]*"'
    r"|[rR]'[^'\n\r]*'"
)
_WS = r"[\t \f]+"

# Default-mode rules in grammar order: (type, regex). Longest match wins, then order.
_DEFAULT_RULES: list[tuple[int, re.Pattern[str]]] = [
    (t, re.compile(p))
    for t, p in [
        (HASH, "#"),
        (COLON, ":"),
        (COMMA, ","),
        (AND, "and"),
        (OR, "or"),
        (BUT_NOT, "but not"),
        (FROM, "from"),
        (MODULE, "module"),
        (MODEL, "model"),
        (SCHEMA, "schema"),
        (SCHEMA_VERSION, r"[0-9]+\.[0-9]+"),
        (EXTEND, "extend"),
        (TYPE, "type"),
        (CONDITION, "condition"),
        (RELATIONS, "relations"),
        (RELATION, "relation"),
        (DEFINE, "define"),
        (KEYWORD_WITH, "with"),
        (EQUALS, "=="),
        (NOT_EQUALS, "!="),
        (IN, "in"),
        (LESS, "<"),
        (LESS_EQUALS, "<="),
        (GREATER_EQUALS, ">="),
        (GREATER, ">"),
        (LOGICAL_AND, "&&"),
        (LOGICAL_OR, r"\|\|"),
        (LBRACKET, r"\["),
        (RPRACKET, r"\]"),
        (LBRACE, r"\{"),
        (RBRACE, r"\}"),
        (LPAREN, r"\("),
        (RPAREN, r"\)"),
        (DOT, r"\."),
        (MINUS, "-"),
        (EXCLAM, "!"),
        (QUESTIONMARK, r"\?"),
        (PLUS, r"\+"),
        (STAR, r"\*"),
        (SLASH, "/"),
        (PERCENT, "%"),
        (CEL_TRUE, "true"),
        (CEL_FALSE, "false"),
        (NUL, "null"),
        (WHITESPACE, _WS),
        (CEL_COMMENT, "//[^\n]*"),
        (
            NUM_FLOAT,
            r"[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|\.[0-9]+(?:[eE][+-]?[0-9]+)?",
        ),
        (NUM_INT, r"0x[0-9a-fA-F]+|[0-9]+"),
        (NUM_UINT, r"[0-9]+[uU]|0x[0-9a-fA-F]+[uU]"),
        (STRING, _STRING),
        (BYTES, f"[bB](?:{_STRING})"),
        (IDENTIFIER, r"[A-Za-z_][A-Za-z0-9_\-]*"),
        (EXTENDED_IDENTIFIER, r"[A-Za-z_](?:[/.\-]?[A-Za-z0-9_]+)*"),
        (NEWLINE, r"(?:[\t \f]*(?:\r?\n|\r|\f))+[\t \f]*"),
    ]
]

_CONDITION_RULES: list[tuple[int, re.Pattern[str]]] = [
    (t, re.compile(p))
    for t, p in [
        (RPAREN, r"\)"),
        (CONDITION_PARAM_CONTAINER, "map|list"),
        (
            CONDITION_PARAM_TYPE,
            "bool|string|int|uint|double|duration|timestamp|ipaddress",
        ),
        (LESS, "<"),
        (GREATER, ">"),
        (LPAREN, r"\("),
        (COLON, ":"),
        (COMMA, ","),
        (WHITESPACE, _WS),
        (IDENTIFIER, r"[A-Za-z_][A-Za-z0-9_\-]*"),
    ]
]


def clean_dsl(text: str) -> str:
    """Drop comments and trailing blanks line by line, as the reference parser does."""
    out = []
    for line in text.split("\n"):
        if line.lstrip()[:1] == "#":
            out.append("")
        else:
            out.append(line.split(" #", 1)[0].rstrip())
    return "\n".join(out)


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
_DIGITS = "0123456789"
# The characters each non-literal rule can start with (literal rules start with their
# first character); used to try only the rules that can match at a position.
_FIRST_CHARS = {
    SCHEMA_VERSION: _DIGITS,
    WHITESPACE: "\t \f",
    CEL_COMMENT: "/",
    NUM_FLOAT: _DIGITS + ".",
    NUM_INT: _DIGITS,
    NUM_UINT: _DIGITS,
    STRING: "\"'rR",
    BYTES: "bB",
    IDENTIFIER: _LETTERS,
    EXTENDED_IDENTIFIER: _LETTERS,
    NEWLINE: "\t \f\r\n",
    CONDITION_PARAM_CONTAINER: "ml",
    CONDITION_PARAM_TYPE: "bsiudt",
}

Rules = list[tuple[int, re.Pattern[str]]]


def _by_first_char(rules: Rules) -> dict[str, Rules]:
    index: dict[str, Rules] = {}
    for token_type, pattern in rules:
        firsts = _FIRST_CHARS.get(token_type) or pattern.pattern.lstrip("\\")[:1]
        for char in firsts:
            index.setdefault(char, []).append((token_type, pattern))
    return index


_DEFAULT_INDEX = _by_first_char(_DEFAULT_RULES)
_CONDITION_INDEX = _by_first_char(_CONDITION_RULES)


def _longest(index: dict[str, Rules], text: str, pos: int) -> tuple[int, int]:
    best_type, best_len = 0, 0
    for token_type, pattern in index.get(text[pos], ()):
        m = pattern.match(text, pos)
        if m is not None and len(m.group()) > best_len:
            best_type, best_len = token_type, len(m.group())
    return best_type, best_len


def tokenize(text: str) -> tuple[list[Token], list[LexError]]:
    """Split cleaned DSL text into tokens (hidden CEL comments dropped), ending with EOF."""
    tokens: list[Token] = []
    errors: list[LexError] = []
    pos, line, col = 0, 0, 0
    condition_mode = False
    while pos < len(text):
        token_type, length = _longest(
            _CONDITION_INDEX if condition_mode else _DEFAULT_INDEX, text, pos
        )
        if length == 0:
            errors.append(LexError(text[pos], line, col))
            length = 1
        else:
            chunk = text[pos : pos + length]
            if token_type != CEL_COMMENT:
                tokens.append(Token(token_type, chunk, line, col, pos))
            if token_type == CONDITION:
                condition_mode = True
            elif token_type == RPAREN and condition_mode:
                condition_mode = False
        chunk = text[pos : pos + length]
        newlines = chunk.count("\n") + chunk.count("\r") - chunk.count("\r\n")
        if newlines:
            line += newlines
            col = len(re.split(r"\r\n|\r|\n", chunk)[-1])
        else:
            col += length
        pos += length
    tokens.append(Token(EOF, "<EOF>", line, col, pos))
    return tokens, errors

"""Positions for semantic issues: find the DSL line and column an issue is about.

Semantic checks run on the model JSON, which carries no positions. Like the reference
validator (``pkg/js/validator/validate-dsl.ts`` and ``pkg/js/util/exceptions.ts`` of
openfga/language), the issue is then placed by searching the DSL lines: the line of
``type X``, from there the first ``define R:`` line, and on that line the first whole-word
occurrence of the offending symbol. Reproducing that search (rather than tracking parse
positions) is what makes our line/column numbers match the reference test data exactly.
When the model came as JSON there are no lines and issues carry no position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import ModelIssue

__all__ = ["Collector", "Locator", "Where", "after_colon", "after_from", "condition_column"]

Resolver = Callable[[int, str, str], int]


def _js_find(lines: list[str], skip: int, pred: Callable[[str], bool]) -> int:
    """``lines.slice(skip).findIndex(pred) + skip`` with JavaScript's slice semantics."""
    start = skip if skip >= 0 else max(len(lines) + skip, 0)
    for i, line in enumerate(lines[start:]):
        if pred(line):
            return i + skip
    return -1 + skip


Where = tuple[str | None, int]
"""A line of a file: ``(file name or None for the single DSL text, 0-based index)``."""


class Locator:
    """Line look-ups in the DSL text; every method returns ``None`` without text.

    Subclasses for modular models say which file declares a type, relation or condition.
    """

    def __init__(self, lines: list[str] | None) -> None:
        self.files: dict[str | None, list[str]] = {} if lines is None else {None: lines}

    def lines_of(self, file: str | None) -> list[str] | None:
        return self.files.get(file)

    def file_of_type(self, type_name: str) -> str | None:
        return None

    def file_of_relation(self, type_name: str, relation: str) -> str | None:
        return None

    def file_of_condition(self, condition: str) -> str | None:
        return None

    @staticmethod
    def declaration(
        lines: list[str],
        prefix: str,
        rest_ok: Callable[[str], bool],
        skip: int = 0,
        *,
        collapse: bool = False,
    ) -> int:
        def pred(line: str) -> bool:
            text = line.strip()
            if collapse:
                text = re.sub(" {2,}", " ", text)
            return text.startswith(prefix) and rest_ok(text[len(prefix) :])

        return _js_find(lines, skip, pred)

    def type_index(self, lines: list[str], type_name: str) -> int:
        return self.declaration(lines, f"type {type_name}", _end_or_comment)

    def relation_index(self, lines: list[str], relation: str, skip: int) -> int:
        return self.declaration(
            lines, f"define {relation}", lambda rest: _starts_with(rest, ":"), skip, collapse=True
        )

    def type_line(self, type_name: str) -> Where | None:
        file = self.file_of_type(type_name)
        lines = self.lines_of(file)
        return None if lines is None else (file, self.type_index(lines, type_name))

    def relation_in_type(self, type_name: str, relation: str) -> Where | None:
        """The ``define relation:`` line after the declaration of its type."""
        file = self.file_of_relation(type_name, relation)
        lines = self.lines_of(file)
        if lines is None:
            return None
        return file, self.relation_index(lines, relation, self.type_index(lines, type_name))

    def restriction_line(self, type_name: str, relation: str, restricted: str) -> Where | None:
        """Where the reference places a duplicate type restriction: it looks the relation up
        after the declaration of the *restricted* type."""
        file = self.file_of_relation(type_name, relation)
        lines = self.lines_of(file)
        if lines is None:
            return None
        return file, self.relation_index(lines, relation, self.type_index(lines, restricted))

    def condition_line(self, condition: str) -> Where | None:
        file = self.file_of_condition(condition)
        lines = self.lines_of(file)
        if lines is None:
            return None
        prefix = f"condition {condition}"
        return file, self.declaration(lines, prefix, lambda rest: _starts_with(rest, "("))

    def schema_line(self, schema: str) -> Where | None:
        lines = self.lines_of(None)
        if lines is None:
            return None
        index = self.declaration(lines, f"schema {schema}", _end_or_comment, collapse=True)
        return None, max(index, 0)


def _end_or_comment(rest: str) -> bool:
    """Nothing, or only a trailing `` # comment``, follows a declared name."""
    if rest == "":
        return True
    trimmed = rest.lstrip(_INLINE_WS)
    return trimmed != rest and trimmed.startswith("#")


def _starts_with(rest: str, sep: str) -> bool:
    return rest.lstrip(_INLINE_WS).startswith(sep)


_INLINE_WS = " \t\f"


@dataclass
class Collector:
    """Accumulates issues, positioning each one as the reference ``constructValidationError``."""

    locator: Locator
    issues: list[ModelIssue] = field(default_factory=list)

    def add(
        self,
        message: str,
        error_type: str,
        symbol: str,
        where: Where | None,
        *,
        resolver: Resolver | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        metadata: dict[str, Any] = {"symbol": symbol, "errorType": error_type, **(extra or {})}
        lines = None if where is None else self.locator.lines_of(where[0])
        if not lines or where is None:
            self.issues.append(ModelIssue(message, error_type, metadata=metadata))
            return
        file, line_index = where
        if file is not None:
            metadata["file"] = file
        raw = lines[line_index] if 0 <= line_index < len(lines) else None
        word = 1
        if raw is not None:
            try:
                m = re.search(r"\b" + symbol + r"\b", raw)
            except re.error:
                m = None
            word = m.start() + 1 if m else 1
            if resolver is not None:
                word = resolver(word, raw, symbol)
        # The reference reports 1-based positions; its test data (and we) use 0-based.
        self.issues.append(
            ModelIssue(
                message,
                error_type,
                line=(line_index, line_index),
                column=(word - 1, word - 1 + len(symbol)),
                metadata=metadata,
            )
        )


# -- column rules of particular issues (``customResolver`` in the reference) ---------------


def _word_at(raw: str, symbol: str, start: int) -> int:
    m = re.compile(r"\b" + re.escape(symbol) + r"\b").search(raw, max(start, 0))
    return m.start() + 1 if m else 1


def after_colon(word: int, raw: str, symbol: str) -> int:
    """An unknown type is marked in the restriction, not in the relation's name."""
    return _word_at(raw, symbol, raw.find(":") + 1)


def condition_column(word: int, raw: str, symbol: str) -> int:
    m = re.search(r"\bwith\s+" + re.escape(symbol) + r"\b", raw)
    return m.end() - len(symbol) + 1 if m else word


def after_from(word: int, raw: str, symbol: str) -> int:
    """A tupleset is marked where it follows ``from``."""
    start = raw.find("from") + len("from") + 1
    return start + raw[start:].find(symbol) + 1

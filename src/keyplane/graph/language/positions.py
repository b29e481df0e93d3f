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

__all__ = ["Collector", "Locator"]

Resolver = Callable[[int, str, str], int]


def _js_find(lines: list[str], skip: int, pred: Callable[[str], bool]) -> int:
    """``lines.slice(skip).findIndex(pred) + skip`` with JavaScript's slice semantics."""
    start = skip if skip >= 0 else max(len(lines) + skip, 0)
    for i, line in enumerate(lines[start:]):
        if pred(line):
            return i + skip
    return -1 + skip


@dataclass
class Locator:
    """Line look-ups in the DSL text; every method returns ``None`` without text."""

    lines: list[str] | None

    def _declaration(
        self, prefix: str, rest_ok: Callable[[str], bool], skip: int = 0, *, collapse: bool = False
    ) -> int | None:
        if self.lines is None:
            return None

        def pred(line: str) -> bool:
            text = line.strip()
            if collapse:
                text = re.sub(" {2,}", " ", text)
            return text.startswith(prefix) and rest_ok(text[len(prefix) :])

        return _js_find(self.lines, skip, pred)

    def type_line(self, type_name: str, skip: int = 0) -> int | None:
        return self._declaration(f"type {type_name}", _end_or_comment, skip)

    def relation_line(self, relation: str, skip: int | None = 0) -> int | None:
        return self._declaration(
            f"define {relation}", lambda rest: _starts_with(rest, ":"), skip or 0, collapse=True
        )

    def relation_in_type(self, type_name: str, relation: str) -> int | None:
        return self.relation_line(relation, self.type_line(type_name))

    def condition_line(self, condition: str) -> int | None:
        return self._declaration(f"condition {condition}", lambda rest: _starts_with(rest, "("))

    def schema_line(self, schema: str) -> int | None:
        index = self._declaration(f"schema {schema}", _end_or_comment, collapse=True)
        return None if index is None else max(index, 0)


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
        line_index: int | None,
        *,
        resolver: Resolver | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        metadata: dict[str, Any] = {"symbol": symbol, "errorType": error_type, **(extra or {})}
        lines = self.locator.lines
        if not lines or line_index is None:
            self.issues.append(ModelIssue(message, error_type, metadata=metadata))
            return
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

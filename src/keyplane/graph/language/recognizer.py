"""Token-stream machinery and ANTLR-compatible syntax error recovery for the DSL parser.

The reference implementations parse with ANTLR 4, and the conformance data records the
errors ANTLR's ``DefaultErrorStrategy`` reports, including the follow-up errors it finds
after re-synchronising. :class:`Recognizer` reproduces that strategy for a hand-written
recursive-descent parser:

* ``sync`` before optional blocks and loops: an unexpected token is dropped when the next
  one fits ("extraneous input"), otherwise the rule fails ("mismatched input"); at a loop's
  back edge unexpected tokens are reported once and skipped;
* ``match`` with single-token deletion and insertion ("missing X at Y");
* a failed rule reports once, then skips to a token in the *error recovery set* (what may
  follow any rule on the invocation stack) and returns, so parsing goes on;
* "error recovery mode": after one report, further reports are muted until a token is
  matched successfully.

Each rule invocation pushes its *follow* — the tokens that may come after it in the
caller, plus a flag for "the caller may end here" (ANTLR's epsilon) — which gives the
expected-token sets printed in messages and the recovery sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from keyplane.errors import ModelIssue
from keyplane.graph.language import lexer as lx
from keyplane.graph.language.lexer import Token

__all__ = ["Follow", "NoViableAlt", "RecognitionError", "Recognizer"]

T = TypeVar("T")
TokenSet = frozenset[int]


@dataclass(frozen=True)
class Follow:
    """Tokens that may follow a position; ``eps`` when the enclosing rule may end there."""

    tokens: TokenSet
    eps: bool = False


class RecognitionError(Exception):
    """A rule cannot go on: ANTLR's InputMismatchException."""

    def __init__(self, expected: Iterable[int], state: str) -> None:
        super().__init__(state)
        self.expected = frozenset(expected)
        self.state = state


class NoViableAlt(RecognitionError):
    """No alternative of a decision fits the input from ``start`` to ``offending``."""

    def __init__(self, start: int, offending: int, state: str) -> None:
        super().__init__((), state)
        self.start = start
        self.offending = offending


def display(text: str) -> str:
    """ANTLR's token display: white space escaped, wrapped in quotes."""
    escaped = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{escaped}'"


def expecting(types: Iterable[int]) -> str:
    names = [lx.display_name(t) for t in sorted(set(types), key=lambda t: lx.SORT_KEY.get(t, 999))]
    return names[0] if len(names) == 1 else "{" + ", ".join(names) + "}"


class Recognizer:
    """Token cursor, invocation stack and error strategy shared by the parser's rules."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.errors: list[ModelIssue] = []
        self.stack: list[Follow] = []
        self.recovering = False
        self.last_error_index = -1
        self.last_error_states: set[str] = set()

    # -- cursor ----------------------------------------------------------------------------

    def la(self, k: int = 1) -> int:
        return self.lt(k).type

    def lt(self, k: int = 1) -> Token:
        return self.tokens[min(self.pos + k - 1, len(self.tokens) - 1)]

    def consume(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.type != lx.EOF:
            self.pos += 1
        return tok

    # -- reporting -------------------------------------------------------------------------

    def issue(self, msg: str, tok: Token, *, symbol: bool = True) -> None:
        self.errors.append(
            ModelIssue(
                message=msg,
                line=(tok.line, tok.line),
                column=(tok.column, tok.column + len(tok.text)),
                metadata={"symbol": tok.text} if symbol else {},
            )
        )

    def begin_error(self) -> None:
        self.recovering = True

    def end_error(self) -> None:
        self.recovering = False
        self.last_error_states = set()
        self.last_error_index = -1

    def expected(self, local: Follow) -> TokenSet:
        """ANTLR's getExpectedTokens: local tokens, then callers' follows while they may end."""
        out = set(local.tokens)
        eps = local.eps
        for frame in reversed(self.stack):
            if not eps:
                break
            out |= frame.tokens
            eps = frame.eps
        if eps:
            out.add(lx.EOF)
        return frozenset(out)

    def recovery_set(self) -> TokenSet:
        out: set[int] = set()
        for frame in self.stack:
            out |= frame.tokens
        return frozenset(out)

    def report_unwanted(self, expected: Iterable[int]) -> None:
        if self.recovering:
            return
        self.begin_error()
        tok = self.lt()
        self.issue(f"extraneous input {display(tok.text)} expecting {expecting(expected)}", tok)

    def report(self, err: RecognitionError) -> None:
        if self.recovering:
            return
        self.begin_error()
        if isinstance(err, NoViableAlt):
            start, tok = self.tokens[err.start], self.tokens[err.offending]
            if start.type == lx.EOF:
                text = "<EOF>"
            else:
                text = "".join(t.text for t in self.tokens[err.start : err.offending + 1])
            self.issue(f"no viable alternative at input {display(text)}", tok)
            return
        tok = self.lt()
        self.issue(f"mismatched input {display(tok.text)} expecting {expecting(err.expected)}", tok)

    def recover(self, state: str) -> None:
        if self.last_error_index == self.pos and state in self.last_error_states:
            self.consume()
        self.last_error_index = self.pos
        self.last_error_states.add(state)
        stop = self.recovery_set()
        while self.la() != lx.EOF and self.la() not in stop:
            self.consume()

    # -- the error strategy ----------------------------------------------------------------

    def invoke(self, follow: Follow, rule: Callable[[], T], name: str) -> T | None:
        """Run a rule with its follow pushed; on failure report, resynchronise, return None."""
        self.stack.append(follow)
        try:
            return rule()
        except RecognitionError as err:
            self.report(err)
            self.recover(f"{name}:{err.state}")
            return None
        finally:
            self.stack.pop()

    def sync(self, local: Follow, state: str, *, loop_back: bool = False) -> None:
        """ANTLR's sync before a block or loop: delete one token, or skip, or fail."""
        if self.recovering or self.la() in local.tokens or local.eps:
            return
        if loop_back:
            expected = self.expected(local)
            self.report_unwanted(expected)
            stop = expected | self.recovery_set()
            while self.la() != lx.EOF and self.la() not in stop:
                self.consume()
            return
        if self.single_token_deletion(self.expected(local)):
            return
        raise RecognitionError(local.tokens, state)

    def single_token_deletion(self, expected: TokenSet) -> bool:
        if self.la(2) not in expected:
            return False
        self.report_unwanted(expected)
        self.consume()
        self.end_error()
        return True

    def match(self, token_type: int, after: Follow, state: str) -> Token:
        """Match one token, or delete an extraneous one, or conjure a missing one."""
        return self.match_set(frozenset({token_type}), after, state)

    def match_set(self, types: TokenSet, after: Follow, state: str) -> Token:
        if self.la() in types:
            self.end_error()
            return self.consume()
        if self.single_token_deletion(types):
            self.end_error()
            return self.consume()
        if self.la() in self.expected(after):
            tok = self.lt()
            if not self.recovering:
                self.begin_error()
                self.issue(f"missing {expecting(types)} at {display(tok.text)}", tok)
            return Token(min(types), "", tok.line, tok.column, tok.index)
        raise RecognitionError(types, state)

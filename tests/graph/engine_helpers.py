"""Small builders shared by the engine tests."""

from __future__ import annotations

from collections.abc import Iterable

from keyplane.clock import FixedClock
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.engine import Engine
from keyplane.graph.index import TupleIndex
from keyplane.graph.language import parse_dsl
from keyplane.graph.tuples import Tuple, parse_tuple


def model(dsl: str) -> CompiledModel:
    return CompiledModel.compile(parse_dsl(dsl))


def engine(
    dsl: str,
    tuples: Iterable[str | Tuple] = (),
    *,
    clock: FixedClock | None = None,
    max_depth: int = 25,
) -> Engine:
    m = model(dsl)
    idx = TupleIndex()
    for t in tuples:
        tt = parse_tuple(t) if isinstance(t, str) else t
        m.validate_tuple(tt)
        idx.add(tt)
    return Engine(m, idx, clock=clock or FixedClock(), max_depth=max_depth)


DOCS = """
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, user:*, group#member] or owner or viewer from parent
type document
  relations
    define parent: [folder]
    define owner: [user]
    define editor: [user, group#member] or owner
    define blocked: [user]
    define viewer: ([user, user with in_hours, group#member] or editor or viewer from parent) but not blocked
    define auditor: [user] and editor
condition in_hours(hour: int) {
  hour >= 9 && hour < 17
}
"""

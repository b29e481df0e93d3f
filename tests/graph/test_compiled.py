"""CompiledModel: structural validation and OpenFGA's write validation of tuples."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from engine_helpers import DOCS, engine, model

from keyplane.errors import (
    InvalidModelError,
    InvalidTupleError,
    RelationNotFoundError,
    TypeNotFoundError,
)
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.index import TupleIndex
from keyplane.graph.tuples import Tuple


@pytest.fixture(scope="module")
def m() -> CompiledModel:
    return model(DOCS)


@pytest.mark.parametrize(
    ("t", "error", "code"),
    [
        (Tuple("nope:1", "viewer", "user:a"), TypeNotFoundError, 2021),
        (Tuple("document:1", "nope", "user:a"), RelationNotFoundError, 2022),
        (Tuple("document:1", "viewer", "nope:a"), TypeNotFoundError, 2021),
        (Tuple("document:1", "viewer", "group:a#nope"), RelationNotFoundError, 2022),
        (Tuple("document:1", "owner", "group:eng#member"), InvalidTupleError, 2027),
        (Tuple("document:1", "owner", "user:*"), InvalidTupleError, 2027),
        (Tuple("document:1", "viewer", "folder:x"), InvalidTupleError, 2027),
        (Tuple("document:1", "parent", "folder:x#viewer"), InvalidTupleError, 2027),
        (Tuple("document:1", "parent", "folder:*"), InvalidTupleError, 2027),
        (Tuple("document:1", "viewer", "user:a", "nope"), InvalidTupleError, 2027),
        (Tuple("document:1", "owner", "user:a", "in_hours"), InvalidTupleError, 2027),
        (Tuple("document:1", "viewer", "user:a", "in_hours", {"x": 1}), InvalidTupleError, 2027),
        (Tuple("document:*", "viewer", "user:a"), InvalidTupleError, 2027),
        (Tuple("document", "viewer", "user:a"), InvalidTupleError, 2027),
    ],
)
def test_validate_tuple_errors(m: CompiledModel, t: Tuple, error: type, code: int) -> None:
    with pytest.raises(error) as ei:
        m.validate_tuple(t)
    assert ei.value.fga_code == code


def test_validate_tuple_accepts(m: CompiledModel) -> None:
    for t in (
        Tuple("document:1", "viewer", "user:a"),
        Tuple("document:1", "viewer", "user:a", "in_hours", {"hour": 3}),
        Tuple("document:1", "viewer", "group:eng#member"),
        Tuple("folder:1", "viewer", "user:*"),
        Tuple("document:1", "parent", "folder:x"),
    ):
        m.validate_tuple(t)
    assert m.tuple_counts(Tuple("document:1", "viewer", "user:a"))
    assert not m.tuple_counts(Tuple("document:1", "owner", "user:*"))


def _model(**rels: Any) -> dict[str, Any]:
    return {
        "schema_version": "1.1",
        "type_definitions": [
            {"type": "user"},
            {
                "type": "doc",
                "relations": {k: v for k, (v, _) in rels.items()},
                "metadata": {
                    "relations": {
                        k: {"directly_related_user_types": d} for k, (_, d) in rels.items()
                    }
                },
            },
        ],
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"schema_version": "1.0", "type_definitions": []},
        {"schema_version": "1.1"},
        _model(viewer=({"computedUserset": {"relation": "nope"}}, [])),
        _model(
            viewer=(
                {
                    "tupleToUserset": {
                        "tupleset": {"relation": "nope"},
                        "computedUserset": {"relation": "viewer"},
                    }
                },
                [],
            )
        ),
        _model(viewer=({"this": {}}, [{"type": "nope"}])),
        _model(viewer=({"this": {}}, [{"type": "user", "condition": "nope"}])),
        _model(viewer=({"this": {}}, [])),
        _model(viewer=({"bogus": {}}, [])),
    ],
)
def test_structurally_broken_models(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidModelError) as ei:
        CompiledModel.compile(bad)
    assert ei.value.fga_code == 2036


def test_model_id_is_stable() -> None:
    raw = _model(viewer=({"this": {}}, [{"type": "user"}]))
    assert CompiledModel.compile(raw).model_id == CompiledModel.compile(raw).model_id
    assert CompiledModel.compile(raw, model_id="m1").model_id == "m1"


def test_purge_expired() -> None:
    idx = TupleIndex()
    idx.add(Tuple("document:1", "owner", "user:a", expires_at=10.0))
    idx.add(Tuple("document:1", "owner", "user:b", expires_at=30.0))
    idx.add(Tuple("document:1", "owner", "user:c"))
    assert idx.purge_expired(20.0) == 1
    assert len(idx) == 2
    assert {str(t) for t in idx.iter_tuples()} == {
        "document:1#owner@user:b",
        "document:1#owner@user:c",
    }


def test_check_call_count_guard() -> None:
    """A deterministic guard on the hot path: Python-level calls for one check."""
    e = engine(
        DOCS,
        [
            "group:eng#member@user:anne",
            "group:all#member@group:eng#member",
            "folder:root#viewer@group:all#member",
            "document:1#parent@folder:root",
        ],
    )
    e.check("user:anne", "viewer", "document:1")  # compile lazily first
    calls = 0

    def prof(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(prof)
    try:
        assert e.check("user:anne", "viewer", "document:1")
    finally:
        sys.setprofile(None)
    # check, validation, request state, 2 view getters, clock, 13 rewrite nodes, 1 group walk
    assert calls <= 22, calls

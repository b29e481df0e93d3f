"""Check: every rewrite, wildcards, usersets, cycles, depth, contextual tuples, expiry."""

from __future__ import annotations

import pytest
from engine_helpers import DOCS, engine

from keyplane.clock import FixedClock
from keyplane.errors import (
    ConditionError,
    InvalidTupleError,
    ResolutionTooComplexError,
    ValidationError,
)
from keyplane.graph.engine import CheckItem
from keyplane.graph.index import TupleIndex
from keyplane.graph.tuples import Tuple

TUPLES = [
    "group:eng#member@user:anne",
    "group:all#member@group:eng#member",
    "folder:root#viewer@group:all#member",
    "folder:sub#parent@folder:root",
    "folder:pub#viewer@user:*",
    "document:1#parent@folder:sub",
    "document:2#owner@user:bob",
    "document:3#parent@folder:pub",
    "document:4#editor@user:carl",
    "document:4#auditor@user:carl",
    "document:4#auditor@user:dan",
]


@pytest.fixture
def eng():  # type: ignore[no-untyped-def]
    return engine(DOCS, TUPLES)


def test_direct_and_missing(eng) -> None:  # type: ignore[no-untyped-def]
    assert eng.check("user:anne", "member", "group:eng")
    assert not eng.check("user:bob", "member", "group:eng")


def test_nested_usersets_and_ttu(eng) -> None:  # type: ignore[no-untyped-def]
    # document:1 -> folder:sub -> folder:root -> group:all#member -> group:eng#member -> anne
    assert eng.check("user:anne", "viewer", "document:1")
    assert not eng.check("user:bob", "viewer", "document:1")


def test_computed_userset(eng) -> None:  # type: ignore[no-untyped-def]
    assert eng.check("user:bob", "editor", "document:2")
    assert eng.check("user:bob", "viewer", "document:2")


def test_wildcard(eng) -> None:  # type: ignore[no-untyped-def]
    assert eng.check("user:zoe", "viewer", "document:3")
    assert eng.check("user:*", "viewer", "folder:pub")
    # a wildcard never grants a userset
    assert not eng.check("group:eng#member", "viewer", "folder:pub")


def test_userset_as_user(eng) -> None:  # type: ignore[no-untyped-def]
    assert eng.check("group:eng#member", "member", "group:all")
    assert eng.check("group:eng#member", "member", "group:eng")  # self-defining
    assert eng.check("group:all#member", "viewer", "document:1")


def test_intersection(eng) -> None:  # type: ignore[no-untyped-def]
    assert eng.check("user:carl", "auditor", "document:4")
    assert not eng.check("user:dan", "auditor", "document:4")  # not an editor


def test_exclusion() -> None:
    e = engine(DOCS, [*TUPLES, "document:2#blocked@user:bob"])
    assert e.check("user:bob", "editor", "document:2")
    assert not e.check("user:bob", "viewer", "document:2")


def test_contextual_tuples_do_not_touch_index(eng) -> None:  # type: ignore[no-untyped-def]
    before = len(eng.index)
    ct = [Tuple("document:9", "owner", "user:eve")]
    assert eng.check("user:eve", "viewer", "document:9", contextual_tuples=ct)
    assert not eng.check("user:eve", "viewer", "document:9")
    assert len(eng.index) == before


def test_contextual_tuples_are_validated(eng) -> None:  # type: ignore[no-untyped-def]
    for bad in (
        Tuple("nope:1", "viewer", "user:a"),
        Tuple("document:1", "nope", "user:a"),
        Tuple("document:1", "owner", "group:x#member"),
        Tuple("document:1", "owner", "user:*"),
    ):
        with pytest.raises(InvalidTupleError) as ei:
            eng.check("user:a", "viewer", "document:1", contextual_tuples=[bad])
        assert ei.value.fga_code == 2027


def test_conditions() -> None:
    t = Tuple("document:5", "viewer", "user:ann", "in_hours", None)
    e = engine(DOCS, [t])
    assert e.check("user:ann", "viewer", "document:5", context={"hour": 10})
    assert not e.check("user:ann", "viewer", "document:5", context={"hour": 20})
    with pytest.raises(ConditionError) as ei:
        e.check("user:ann", "viewer", "document:5")
    assert ei.value.fga_code == 2000


def test_missing_parameter_only_errors_when_it_matters() -> None:
    t = Tuple("document:5", "viewer", "user:ann", "in_hours", None)
    e = engine(DOCS, [t, "document:5#owner@user:ann"])
    assert e.check("user:ann", "viewer", "document:5")  # the owner branch grants


def test_expiry_with_fixed_clock() -> None:
    clock = FixedClock(1000.0)
    t = Tuple("document:6", "owner", "user:tim", expires_at=1010.0)
    e = engine(DOCS, [t], clock=clock)
    assert e.check("user:tim", "viewer", "document:6")
    clock.advance(10)
    assert not e.check("user:tim", "viewer", "document:6")


def test_cycles_terminate() -> None:
    e = engine(
        DOCS,
        [
            "group:a#member@group:b#member",
            "group:b#member@group:a#member",
            "folder:x#parent@folder:y",
            "folder:y#parent@folder:x",
        ],
    )
    assert not e.check("user:anne", "member", "group:a")
    assert not e.check("user:anne", "viewer", "folder:x")


def test_depth_limit_is_2002() -> None:
    tuples = [f"group:g{i}#member@group:g{i + 1}#member" for i in range(30)]
    tuples.append("group:g30#member@user:deep")
    e = engine(DOCS, tuples)
    with pytest.raises(ResolutionTooComplexError) as ei:
        e.check("user:deep", "member", "group:g0")
    assert ei.value.fga_code == 2002
    assert e.check("user:deep", "member", "group:g10")


def test_request_validation_is_2000(eng) -> None:  # type: ignore[no-untyped-def]
    for user, rel, obj in (
        ("user:a", "nope", "document:1"),
        ("user:a", "viewer", "nope:1"),
        ("nope:a", "viewer", "document:1"),
        ("group:a#nope", "viewer", "document:1"),
        ("a:b:c", "viewer", "document:1"),
    ):
        with pytest.raises(ValidationError) as ei:
            eng.check(user, rel, obj)
        assert ei.value.fga_code == 2000


def test_batch_check(eng) -> None:  # type: ignore[no-untyped-def]
    out = eng.batch_check(
        [
            CheckItem("user:anne", "viewer", "document:1", correlation_id="a"),
            CheckItem("user:bob", "viewer", "document:1", correlation_id="b"),
            CheckItem("user:anne", "nope", "document:1", correlation_id="c"),
            CheckItem("user:anne", "viewer", "folder:root", correlation_id="d"),
        ]
    )
    assert [(o.allowed, o.correlation_id) for o in out] == [
        (True, "a"),
        (False, "b"),
        (False, "c"),
        (True, "d"),
    ]
    assert out[2].error is not None and out[2].error.fga_code == 2000


def test_tuples_not_fitting_the_model_are_ignored() -> None:
    e = engine(DOCS)
    # written under an older model where document#owner allowed groups
    e.index.add(Tuple("document:7", "owner", "group:eng#member"))
    e.index.add(Tuple("group:eng", "member", "user:anne"))
    assert not e.check("user:anne", "owner", "document:7")


def test_index_remove_and_apply() -> None:
    idx = TupleIndex()
    a, b = Tuple("document:1", "owner", "user:a"), Tuple("document:1", "owner", "user:b")
    idx.apply([a, b], [])
    assert len(idx) == 2
    idx.apply([], [a])
    assert len(idx) == 1 and idx.fwd["document#owner"]["document:1"] == "user:b"
    idx.remove(b)
    assert len(idx) == 0 and not idx.fwd["document#owner"] and not idx.rev["document#owner"]


def test_load_rows() -> None:
    idx = TupleIndex()
    n = idx.load_rows(
        [
            ("document", "1", "owner", "user", "a", "", None, None, None),
            ("document", "1", "viewer", "group", "eng", "member", None, None, None),
            ("document", "1", "viewer", "user", "b", "", "in_hours", '{"hour": 3}', None),
            ("document", "1", "owner", "user", "c", "", None, None, 5.0),
        ]
    )
    assert n == 4 and len(idx) == 4
    tuples = {str(t) for t in idx.iter_tuples()}
    assert "document:1#viewer@group:eng#member" in tuples


def test_nested_group_edges_expire_and_overlay() -> None:
    """The user-side group walk honours expiring edges and contextual tuples."""
    clock = FixedClock(1000.0)
    e = engine(
        DOCS,
        [
            Tuple("group:eng", "member", "user:ann", expires_at=1100.0),
            Tuple("group:all", "member", "group:eng#member", expires_at=1050.0),
            "folder:f#viewer@group:all#member",
            "folder:g#viewer@group:eng#member",
        ],
        clock=clock,
    )
    assert e.check("user:ann", "viewer", "folder:f")
    assert e.check("user:ann", "member", "group:all")
    clock.advance(60)  # the nesting edge expired, the membership did not
    assert not e.check("user:ann", "viewer", "folder:f")
    assert e.check("user:ann", "viewer", "folder:g")
    ct = [Tuple("group:all", "member", "group:eng#member")]
    assert e.check("user:ann", "viewer", "folder:f", contextual_tuples=ct)
    assert set(e.list_objects("user:ann", "viewer", "folder", contextual_tuples=ct)) == {
        "folder:f",
        "folder:g",
    }
    clock.advance(60)  # now the membership expired too
    assert not e.check("user:ann", "viewer", "folder:g")
    assert not e.check("user:ann", "viewer", "folder:f", contextual_tuples=ct)

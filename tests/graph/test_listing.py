"""List objects and list users."""

from __future__ import annotations

import types

import pytest
from engine_helpers import DOCS, engine

from keyplane.errors import (
    ConditionError,
    InvalidTupleError,
    RelationNotFoundError,
    TypeNotFoundError,
    ValidationError,
)
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
    "document:5#parent@folder:root",
    "document:5#blocked@user:anne",
]


@pytest.fixture
def eng():  # type: ignore[no-untyped-def]
    return engine(DOCS, TUPLES)


def test_list_objects_streams_without_repeats(eng) -> None:  # type: ignore[no-untyped-def]
    it = eng.list_objects("user:anne", "viewer", "document")
    assert isinstance(it, types.GeneratorType)
    got = list(it)
    assert len(got) == len(set(got))
    assert set(got) == {"document:1", "document:3"}  # document:5 excluded by 'but not'


def test_list_objects_intersection_candidates_are_checked(eng) -> None:  # type: ignore[no-untyped-def]
    assert list(eng.list_objects("user:carl", "auditor", "document")) == ["document:4"]
    assert list(eng.list_objects("user:dan", "auditor", "document")) == []


def test_list_objects_userset_user(eng) -> None:  # type: ignore[no-untyped-def]
    got = set(eng.list_objects("group:eng#member", "viewer", "folder"))
    assert got == {"folder:root", "folder:sub"}


def test_list_objects_agrees_with_check(eng) -> None:  # type: ignore[no-untyped-def]
    for user in ("user:anne", "user:bob", "user:carl", "user:zed"):
        listed = set(eng.list_objects(user, "viewer", "document"))
        for i in range(1, 7):
            assert (f"document:{i}" in listed) == eng.check(user, "viewer", f"document:{i}")


def test_list_objects_contextual_and_conditions() -> None:
    t = Tuple("document:8", "viewer", "user:ann", "in_hours", None)
    e = engine(DOCS, [t])
    assert list(e.list_objects("user:ann", "viewer", "document", context={"hour": 9})) == [
        "document:8"
    ]
    assert list(e.list_objects("user:ann", "viewer", "document", context={"hour": 8})) == []
    with pytest.raises(ConditionError):
        list(e.list_objects("user:ann", "viewer", "document"))
    ct = [Tuple("document:9", "owner", "user:ann")]
    got = set(
        e.list_objects("user:ann", "viewer", "document", context={"hour": 9}, contextual_tuples=ct)
    )
    assert got == {"document:8", "document:9"}
    with pytest.raises(InvalidTupleError):
        e.list_objects(
            "user:ann",
            "viewer",
            "document",
            contextual_tuples=[Tuple("document:9", "owner", "user:*")],
        )


def test_list_objects_errors(eng) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeNotFoundError):
        eng.list_objects("user:a", "viewer", "nope")
    with pytest.raises(RelationNotFoundError):
        eng.list_objects("user:a", "nope", "document")
    with pytest.raises(ValidationError) as ei:
        eng.list_objects("nope:a", "viewer", "document")
    assert ei.value.fga_code == 2000


def test_list_users(eng) -> None:  # type: ignore[no-untyped-def]
    assert eng.list_users("document:1", "viewer", ["user"]) == ["user:anne"]
    assert eng.list_users("document:1", "viewer", ["group#member"]) == [
        "group:all#member",
        "group:eng#member",
    ]
    assert eng.list_users("document:3", "viewer", ["user"]) == ["user:*"]
    assert eng.list_users("document:5", "viewer", ["user"]) == []  # anne is blocked
    assert eng.list_users("document:4", "auditor", ["user"]) == ["user:carl"]


def test_list_users_wildcard_minus_user() -> None:
    dsl = """
model
  schema 1.1
type user
type document
  relations
    define blocked: [user]
    define member: [user, user:*]
    define active: [user]
    define viewer: (member but not blocked) and active
"""
    e = engine(
        dsl,
        [
            "document:1#member@user:*",
            "document:1#blocked@user:eve",
            "document:1#active@user:eve",
            "document:1#active@user:al",
        ],
    )
    assert e.list_users("document:1", "viewer", ["user"]) == ["user:al"]


def test_list_users_errors(eng) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeNotFoundError):
        eng.list_users("nope:1", "viewer", ["user"])
    with pytest.raises(RelationNotFoundError):
        eng.list_users("document:1", "nope", ["user"])
    with pytest.raises(TypeNotFoundError):
        eng.list_users("document:1", "viewer", ["nope"])
    with pytest.raises(RelationNotFoundError):
        eng.list_users("document:1", "viewer", ["group#nope"])

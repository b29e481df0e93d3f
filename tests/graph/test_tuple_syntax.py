"""One syntax rule for objects and users: whatever a write accepts, every query accepts.

OpenFGA's rules (openfga/api ``openfga.proto`` TupleKey/Object, openfga ``pkg/tuple/tuple.go``):
an object is ``type:id`` (at most 256 characters, the id without ``#``, ``:`` or white space),
a user at most 512 bytes; Keyplane also refuses control characters (NUL, tab, newline ...).
"""

from __future__ import annotations

import pytest
from engine_helpers import engine
from hypothesis import given, settings
from hypothesis import strategies as st

from keyplane.errors import InvalidTupleError, ValidationError
from keyplane.graph.tuples import Tuple, object_error, split_object, split_user, user_error

MODEL = """
model
  schema 1.1
type user
type group
  relations
    define member: [user]
type doc
  relations
    define viewer: [user, group#member]
"""

BAD_OBJECTS = [
    "doc:a:b",
    "doc:x\ty",
    "doc:x\ny",
    "doc:x\x00y",
    "doc:x y",
    "doc:a#b",
    "doc:*",
    "doc:",
    ":a",
    "doc",
    "doc:" + "a" * 253,  # 257 characters
    "doc:" + "a" * 100_000,
]
BAD_USERS = [
    "user:a:b",
    "user:a\tb",
    "user:a\x00",
    "user:a\nb",
    "user:",
    "user:*#member",
    "group:g#",
    "group:g#member#x",
    "user:" + "é" * 300,  # 305 characters but 605 bytes
]


@pytest.mark.parametrize("obj", BAD_OBJECTS)
def test_a_bad_object_is_refused_at_write_and_at_query_time(obj: str) -> None:
    eng = engine(MODEL)
    with pytest.raises(InvalidTupleError) as wi:
        eng.model.validate_tuple(Tuple(obj, "viewer", "user:u"))
    assert wi.value.fga_code == 2027
    with pytest.raises(ValidationError) as ci:
        eng.check("user:u", "viewer", obj)
    assert ci.value.fga_code == 2000
    with pytest.raises(ValidationError):
        eng.list_users(obj, "viewer", ["user"])
    with pytest.raises(ValidationError):
        eng.expand(obj, "viewer")


@pytest.mark.parametrize("user", BAD_USERS)
def test_a_bad_user_is_refused_at_write_and_at_query_time(user: str) -> None:
    eng = engine(MODEL)
    with pytest.raises(InvalidTupleError):
        eng.model.validate_tuple(Tuple("doc:1", "viewer", user))
    with pytest.raises(ValidationError) as ci:
        eng.check(user, "viewer", "doc:1")
    assert ci.value.fga_code == 2000
    with pytest.raises(ValidationError):
        list(eng.list_objects(user, "viewer", "doc"))


@pytest.mark.parametrize(
    ("obj", "user"),
    [
        ("doc:a@b", "user:anne@example.com"),  # '@' is fine in ids (OpenFGA's tuple.go)
        ("doc:résumé", "user:zoë"),
        ("doc:" + "a" * 252, "user:" + "b" * 507),  # exactly 256 characters / 512 bytes
        ("doc:a*", "group:g*#member"),
    ],
)
def test_whatever_is_writable_is_queryable(obj: str, user: str) -> None:
    eng = engine(MODEL, [Tuple(obj, "viewer", user)])
    if "#" not in user:
        assert eng.check(user, "viewer", obj)
        assert list(eng.list_objects(user, "viewer", "doc")) == [obj]
        assert eng.list_users(obj, "viewer", ["user"]) == [user]
    else:
        assert eng.list_users(obj, "viewer", ["group#member"]) == [user]
    assert eng.expand(obj, "viewer")["tree"]["root"]["leaf"]["users"]["users"] == [user]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab:#@* \t\x00é*"), max_size=8))
def test_write_and_query_syntax_agree(s: str) -> None:
    eng = engine(MODEL)
    obj = "doc" + s
    try:
        split_object(obj)
        writable = True
    except InvalidTupleError:
        writable = False
    assert writable is (object_error(obj) is None)
    try:
        eng.check("user:u", "viewer", obj)
        queryable = True
    except ValidationError as exc:
        # a syntactically valid object of an unknown type is a model error, not syntax
        queryable = "not found" in exc.message
    assert queryable is writable
    user = "user" + s
    try:
        split_user(user)
        uwritable = True
    except InvalidTupleError:
        uwritable = False
    assert uwritable is (user_error(user) is None)
    try:
        eng.check(user, "viewer", "doc:1")
        uqueryable = True
    except ValidationError as exc:
        uqueryable = "not found" in exc.message
    assert uqueryable is uwritable


@pytest.mark.parametrize(
    "expires_at",
    [
        float("nan"),  # would be stored as NULL: a grant that never expires
        float("inf"),
        float("-inf"),
        1e300,  # past the year 9999: cannot be written as RFC 3339
        -1e20,
        10**400,  # an int beyond any float
        True,  # a bool is not a time (it would be taken as 1.0)
        "10000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-05:00",  # year 10000 in UTC
        "soon",
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, int) and abs(v) > 2**64 else repr(v),
)
def test_an_unusable_expires_at_is_an_invalid_tuple(expires_at: object) -> None:
    data = {"object": "doc:1", "relation": "viewer", "user": "user:u", "expires_at": expires_at}
    with pytest.raises(InvalidTupleError) as ei:
        Tuple.from_dict(data)
    assert ei.value.fga_code == 2027
    if isinstance(expires_at, int | float):
        # a Tuple built directly is refused by the same rule
        with pytest.raises(InvalidTupleError):
            engine(MODEL).model.validate_tuple(
                Tuple("doc:1", "viewer", "user:u", None, None, expires_at)
            )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expires_at", "text"),
    [
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        (1_800_000_000, "2027-01-15T08:00:00Z"),
    ],
)
def test_the_extreme_expiry_times_round_trip(expires_at: object, text: str) -> None:
    t = Tuple.from_dict(
        {"object": "doc:1", "relation": "viewer", "user": "user:u", "expires_at": expires_at}
    )
    assert t.to_dict()["expires_at"] == text

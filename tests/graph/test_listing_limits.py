"""List objects and list users at the edges: the depth limit and condition errors.

Both follow the reference (openfga/openfga): its reverse expansion
(``pkg/server/commands/reverseexpand/reverse_expand.go``) stops with
``ErrResolutionDepthExceeded`` — 2002 — once a path is deeper than the resolution limit, and
joins every condition evaluation error it meets; ``pkg/server/commands/list_objects.go`` then
fails the request (2002, or the condition error), it does not drop the object. List users
(``listusers/list_users_rpc.go``) returns the first error of any branch, unions included.
"""

from __future__ import annotations

import pytest
from engine_helpers import engine

from keyplane.errors import ConditionError, ResolutionTooComplexError
from keyplane.graph.tuples import Tuple

CHAINS = """
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type team
  relations
    define member: [user, team#member] or member from parent
    define parent: [team]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
type doc
  relations
    define viewer: [group#member]
"""

DEPTH = 5


def _chain(kind: str, n: int) -> tuple[list[str], str, str, list[str]]:
    """(tuples, relation, object type, objects) of a chain of n + 1 objects above user:u."""
    if kind == "userset":
        ts = ["group:g0#member@user:u"]
        ts += [f"group:g{i + 1}#member@group:g{i}#member" for i in range(n)]
        return ts, "member", "group", [f"group:g{i}" for i in range(n + 1)]
    if kind == "ttu":
        ts = ["folder:f0#viewer@user:u"] + [f"folder:f{i + 1}#parent@folder:f{i}" for i in range(n)]
        return ts, "viewer", "folder", [f"folder:f{i}" for i in range(n + 1)]
    if kind == "mixed":
        ts = ["team:t0#member@user:u"] + [f"team:t{i + 1}#parent@team:t{i}" for i in range(n)]
        return ts, "member", "team", [f"team:t{i}" for i in range(n + 1)]
    # documents granted to every group of a userset chain
    ts = ["group:g0#member@user:u"]
    ts += [f"group:g{i + 1}#member@group:g{i}#member" for i in range(n)]
    ts += [f"doc:d{i}#viewer@group:g{i}#member" for i in range(n + 1)]
    return ts, "viewer", "doc", [f"doc:d{i}" for i in range(n + 1)]


def _check(eng, obj: str, rel: str) -> bool | None:  # type: ignore[no-untyped-def]
    """check's answer, None when it is 2002."""
    try:
        return bool(eng.check("user:u", rel, obj))
    except ResolutionTooComplexError:
        return None


@pytest.mark.parametrize("kind", ["userset", "ttu", "mixed", "docs"])
@pytest.mark.parametrize("n", range(DEPTH - 2, DEPTH + 3))
def test_list_objects_honours_the_depth_limit_as_check_does(kind: str, n: int) -> None:
    tuples, rel, otype, objects = _chain(kind, n)
    eng = engine(CHAINS, tuples, max_depth=DEPTH)
    checks = {o: _check(eng, o, rel) for o in objects}
    try:
        listed = set(eng.list_objects("user:u", rel, otype))
    except ResolutionTooComplexError as exc:
        assert exc.fga_code == 2002
        # only when check itself reaches the limit on one of these objects
        assert None in checks.values()
        return
    # every result passes check; every object check allows is listed
    assert None not in checks.values()
    assert listed == {o for o, ok in checks.items() if ok}


def test_the_limit_is_the_same_for_list_objects_and_check() -> None:
    # a chain just below the limit is listed whole; one object more and both report 2002
    tuples, rel, otype, objects = _chain("userset", DEPTH - 1)
    eng = engine(CHAINS, tuples, max_depth=DEPTH)
    assert set(eng.list_objects("user:u", rel, otype)) == set(objects)
    tuples, rel, otype, objects = _chain("userset", DEPTH)
    eng = engine(CHAINS, tuples, max_depth=DEPTH)
    with pytest.raises(ResolutionTooComplexError):
        eng.check("user:u", rel, objects[-1])
    with pytest.raises(ResolutionTooComplexError):
        list(eng.list_objects("user:u", rel, otype))


def test_the_default_limit_is_25() -> None:
    tuples, rel, otype, _ = _chain("docs", 60)
    eng = engine(CHAINS, tuples)
    with pytest.raises(ResolutionTooComplexError):
        eng.check("user:u", rel, "doc:d60")
    with pytest.raises(ResolutionTooComplexError):
        list(eng.list_objects("user:u", rel, otype))
    tuples, rel, otype, _ = _chain("ttu", 60)
    with pytest.raises(ResolutionTooComplexError):
        list(engine(CHAINS, tuples).list_objects("user:u", rel, otype))


COND = """
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member, group#member with c]
type folder
  relations
    define viewer: [group#member]
    define a: [user with c]
    define b: [user]
    define u: a or b
condition c(y: int) {
  y > 0
}
"""


def test_a_condition_error_met_on_the_way_fails_list_objects_as_in_the_reference() -> None:
    eng = engine(
        COND,
        [
            "group:g#member@user:r",
            "folder:f2#viewer@group:g#member",
            Tuple("group:h", "member", "group:g#member", "c"),  # no context: cannot be evaluated
        ],
    )
    assert eng.check("user:r", "viewer", "folder:f2")
    # the reference's reverse expansion evaluates group:h's edge on its way and fails
    with pytest.raises(ConditionError) as ei:
        list(eng.list_objects("user:r", "viewer", "folder"))
    assert ei.value.fga_code == 2000
    # with the parameter, the same query answers
    assert list(eng.list_objects("user:r", "viewer", "folder", context={"y": 1})) == ["folder:f2"]


def test_a_condition_error_in_a_union_fails_the_lists_as_in_the_reference() -> None:
    eng = engine(COND, [Tuple("folder:1", "a", "user:r", "c"), "folder:1#b@user:r"])
    assert eng.check("user:r", "u", "folder:1")  # b grants: check does not need a's answer
    with pytest.raises(ConditionError):
        list(eng.list_objects("user:r", "u", "folder"))
    with pytest.raises(ConditionError):
        eng.list_users("folder:1", "u", ["user"])
    assert eng.list_users("folder:1", "u", ["user"], context={"y": 0}) == ["user:r"]

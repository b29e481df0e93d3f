"""Effective access (keyplane.service.effective) on a real store: what an identity can
reach and who can reach a resource — groups and nesting, computed relations,
tuple-to-usersets, wildcards, conditions, expiry, exclusions, delegated entries (scope,
expiry, revocation, a delegator who lacks the permission), pagination with tampered
tokens, the permission it needs, one ``decision.effective_access`` event per page, and bad
input. SQLite throughout; the whole walk once more on PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyplane import FixedClock, Settings
from keyplane.errors import (
    ConditionError,
    InvalidContinuationToken,
    PermissionDeniedError,
    RelationNotFoundError,
    TypeNotFoundError,
    ValidationError,
)
from keyplane.governance.posture import AccessEntry
from keyplane.ledger.events import EventFilter, LedgerEvent
from keyplane.service import delegations, effective, identities, keys, models, stores, tuples
from keyplane.service.auth import Caller
from keyplane.service.context import Services

S = "eff"
NOW = 1_800_000_000.0
ALICE, BOB, CAROL = "human:alice", "human:bob", "human:carol"
PLANNER, HELPER = "agent:planner", "agent:helper"
SYSTEM = Caller.system_caller()
MODEL = """\
model
  schema 1.1
type human
type agent
type group
  relations
    define member: [human, agent, group#member]
type folder
  relations
    define owner: [human, agent]
    define viewer: [human, agent, group#member] or owner
type document
  relations
    define parent: [folder]
    define owner: [human, agent]
    define editor: [human, agent, group#member, agent with in_hours, human with trusted] or owner
    define viewer: [human, agent, agent:*, group#member] or editor or viewer from parent
    define blocked: [human, agent]
    define reader: viewer but not blocked

condition in_hours(hour: int) {
  hour >= 9 && hour < 18
}
condition trusted(level: int) {
  level > 2
}
"""
TUPLES: list[Any] = [
    # nesting: alice ∈ eng ⊂ staff; staff views folder:f; f parents d1, d2
    "group:eng#member@human:alice",
    "group:staff#member@group:eng#member",
    "folder:f#viewer@group:staff#member",
    "document:d1#parent@folder:f",
    "document:d2#parent@folder:f",
    # computed: an owner is an editor is a viewer
    "document:own#owner@human:alice",
    # every agent views the public document (a wildcard)
    "document:pub#viewer@agent:*",
    # the planner edits d1 directly, and is in eng (so views d1, d2 through the folder)
    "document:d1#editor@agent:planner",
    "group:eng#member@agent:planner",
    # an exclusion: alice is blocked on d2, so she views it but is no reader of it
    "document:d2#blocked@human:alice",
    # conditions: decided by the tuple's own context (true / false), and needing a request
    {"object": "document:c_ok", "relation": "editor", "user": ALICE,
     "condition": {"name": "trusted", "context": {"level": 5}}},
    {"object": "document:c_no", "relation": "editor", "user": ALICE,
     "condition": {"name": "trusted", "context": {"level": 1}}},
    {"object": "document:c_req", "relation": "editor", "user": PLANNER,
     "condition": {"name": "in_hours"}},
    # bob: one plain grant and one that expires
    "document:b1#viewer@human:bob",
    {"object": "document:b_exp", "relation": "viewer", "user": BOB, "expires_at": NOW + 60},
]  # fmt: skip


def _open(database_url: str, clock: FixedClock) -> Services:
    s = Services.open(Settings(database_url=database_url, poll_interval=0.0), clock=clock)
    stores.create_store(s, SYSTEM, "eff", store_id=S)
    models.write_model(s, SYSTEM, S, MODEL)
    tuples.write_tuples(s, SYSTEM, S, writes=TUPLES)
    for kind, name in (("human", "alice"), ("human", "bob"), ("human", "carol")):
        identities.create_identity(s, SYSTEM, S, kind, name)
    for name in ("planner", "helper"):
        identities.create_identity(s, SYSTEM, S, "agent", name, owners=[ALICE])
    return s


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def svc(tmp_path: Path, clock: FixedClock) -> Iterator[Services]:
    s = _open(f"sqlite:///{tmp_path / 'eff.db'}", clock)
    try:
        yield s
    finally:
        s.close()


def _all(fn: Any, *args: Any, continuation_token: str | None = None, **kw: Any
         ) -> list[AccessEntry]:  # fmt: skip
    out: list[AccessEntry] = []
    token = continuation_token
    while True:
        page = fn(*args, continuation_token=token, **kw)
        out.extend(page.items)
        token = page.continuation_token
        if token is None:
            return out


def _pairs(entries: list[AccessEntry], via: str = "graph") -> list[tuple[str, str]]:
    return [(e.object, e.relation) for e in entries if e.via == via]


def _events(svc: Services) -> list[LedgerEvent]:
    svc.ledger.flush()
    return svc.storage.read_events(
        S, limit=1000, filters=EventFilter(types=("decision.effective_access",))
    )


# ------------------------------------------------------------------------------ identity side


def test_alice_reaches_through_groups_computed_ttu_and_conditions(svc: Services) -> None:
    got = _all(effective.effective_access, svc, SYSTEM, S, ALICE, page_size=100)
    pairs = _pairs(got)
    expected = [
        ("agent:helper", "owner"),  # the identity plane's ownership tuples (base model)
        ("agent:planner", "owner"),
        ("document:d2", "blocked"),
        ("document:c_ok", "editor"),  # the condition holds with the tuple's own context
        ("document:own", "editor"),  # computed: owner → editor
        ("document:own", "owner"),
        ("document:c_ok", "reader"),
        ("document:d1", "reader"),
        ("document:own", "reader"),  # not d2: alice is blocked there (the exclusion)
        ("document:c_ok", "viewer"),
        ("document:d1", "viewer"),  # eng ⊂ staff → folder:f viewer → parent of d1
        ("document:d2", "viewer"),
        ("document:own", "viewer"),
        ("folder:f", "viewer"),
        ("group:eng", "member"),
        ("group:staff", "member"),
    ]
    assert pairs == expected  # (object type, relation, object) order, exactly
    assert all(e.user == ALICE and e.via == "graph" for e in got)
    # the condition decided false never shows; nothing of the public agent document either
    assert ("document:c_no", "editor") not in pairs and ("document:pub", "viewer") not in pairs
    # the internal iterator agrees, in the same order
    assert list(effective.iter_effective(svc, S, ALICE)) == expected
    assert list(effective.iter_effective(svc, S, ALICE, object_type="folder")) == [
        ("folder:f", "viewer")
    ]


def test_exactly_what_check_allows(svc: Services) -> None:
    """Against the definition: every (object, relation) of every type for which a check
    without context allows (a condition error counting as no), and nothing else."""
    engine, graph = svc.graphs.engine(S)
    objects = sorted({t.object for t in graph.index.iter_tuples()} | {"document:none"})
    for who in (ALICE, BOB, CAROL, PLANNER, HELPER, "group:eng#member"):
        want = []
        for obj in objects:
            for rel in sorted(engine.model.types[obj.partition(":")[0]]):
                try:
                    ok = engine.check(who, rel, obj)
                except ConditionError:
                    ok = False
                if ok:
                    want.append((obj.partition(":")[0], rel, obj))
        got = list(effective.iter_effective(svc, S, who))
        assert got == [(o, r) for _, r, o in sorted(want)], who


def test_the_model_plan_is_computed_once_per_model(svc: Services) -> None:
    """The report loops call iter_effective for thousands of identities: the pairs a
    kind can reach are worked out once per model, and only those are listed."""
    model = svc.graphs.engine(S)[0].model
    plan = effective._model_plan(model)
    assert effective._model_plan(model) is plan
    humans = plan.reachable("human", "human", ALICE)
    assert plan.reachable("human", "human", BOB) is humans  # cached per kind
    assert ("document", "parent") not in humans  # only folders are parents
    assert ("group", "member") in humans and ("folder", "owner") in humans
    assert "folder" not in plan.user_types and {"human", "agent"} <= set(plan.user_types)


def test_paths_show_how_each_entry_is_granted(svc: Services) -> None:
    got = {
        (e.object, e.relation): e for e in _all(effective.effective_access, svc, SYSTEM, S, ALICE)
    }
    d1 = got[("document:d1", "viewer")]
    kinds = [s["kind"] for s in d1.paths[0]]
    assert kinds == ["tuple_to_userset", "userset", "userset", "direct"]
    assert d1.paths[0][-1]["tuple"] == "group:eng#member@human:alice"
    own = got[("document:own", "viewer")].paths[0]
    assert [s["kind"] for s in own] == ["computed", "computed", "direct"]
    cond = got[("document:c_ok", "editor")].paths[0]
    assert cond[-1] == {"kind": "direct", "tuple": "document:c_ok#editor@human:alice",
                        "condition": "trusted"}  # fmt: skip
    bare = effective.effective_access(svc, SYSTEM, S, ALICE, include_paths=False)
    assert all(e.paths == () for e in bare.items)


def test_wildcards_are_listed_and_shown_as_wildcard_paths(svc: Services) -> None:
    got = _all(effective.effective_access, svc, SYSTEM, S, HELPER, include_delegated=False)
    assert _pairs(got) == [("document:pub", "reader"), ("document:pub", "viewer")]
    viewer = got[1]
    assert viewer.paths[0][-1] == {"kind": "wildcard", "tuple": "document:pub#viewer@agent:*"}
    # the resource side lists the wildcard itself (everybody of the type)
    holders = _all(effective.who_can_access, svc, SYSTEM, S, "document:pub", relation="viewer")
    assert [e.user for e in holders] == ["agent:*"]
    assert holders[0].paths[0][-1]["tuple"] == "document:pub#viewer@agent:*"


def test_a_condition_needing_the_request_does_not_grant_nor_fail(svc: Services) -> None:
    """The planner's in_hours editor grant needs ``hour``: a check without context fails
    with condition_error; effective access leaves that grant out (documented) and lists
    the rest of the pair — d1, granted directly."""
    pairs = _pairs(_all(effective.effective_access, svc, SYSTEM, S, PLANNER, object_type="document",
                        relation="editor"))  # fmt: skip
    assert pairs == [("document:d1", "editor")]
    assert ("document:c_req", "editor") not in list(
        effective.iter_effective(svc, S, PLANNER, object_type="document")
    )


def test_expired_tuples_are_excluded(svc: Services, clock: FixedClock) -> None:
    before = list(effective.iter_effective(svc, S, BOB, relation="viewer"))
    assert before == [("document:b1", "viewer"), ("document:b_exp", "viewer")]
    clock.advance(120)
    after = _pairs(_all(effective.effective_access, svc, SYSTEM, S, BOB, relation="viewer"))
    assert after == [("document:b1", "viewer")]
    holders = _all(effective.who_can_access, svc, SYSTEM, S, "document:b_exp")
    assert holders == []


def test_an_identity_of_a_type_the_model_lacks_reaches_nothing(svc: Services) -> None:
    assert list(effective.iter_effective(svc, S, "workload:batch")) == []
    assert effective.effective_access(svc, SYSTEM, S, "workload:batch").items == []


# ------------------------------------------------------------------------------ delegations


def _delegate(svc: Services, clock: FixedClock, delegator: str, delegate: str,
              scope: list[dict[str, Any]], ttl: float = 3600) -> str:  # fmt: skip
    d = delegations.create_delegation(
        svc, SYSTEM, S, delegator=delegator, delegate=delegate, scope=scope,
        expires_at=clock.now() + ttl,
    )  # fmt: skip
    return d.id


def test_delegated_entries_follow_scope_and_both_parties(svc: Services, clock: FixedClock) -> None:
    # alice → planner, viewer on document:d1 only; bob → planner, viewer on every document
    # (bob holds no document the planner holds: nothing delegated from him)
    d_alice = _delegate(
        svc, clock, ALICE, PLANNER, [{"actions": ["viewer"], "resource": "document:d1"}]
    )
    _delegate(svc, clock, BOB, PLANNER, [{"actions": ["viewer"], "resource": "document:*"}])
    got = _all(effective.effective_access, svc, SYSTEM, S, PLANNER, object_type="document",
               relation="viewer")  # fmt: skip
    assert [(e.object, e.via, e.on_behalf_of, e.delegation_id) for e in got] == [
        ("document:d1", "graph", None, None),
        ("document:d1", "delegation", ALICE, d_alice),  # right after its own entry
        ("document:d2", "graph", None, None),  # alice holds d2 too, but scope is d1 only
        ("document:pub", "graph", None, None),  # alice does not hold pub
    ]
    # the delegated entry carries the delegator's paths
    assert got[1].paths and got[1].paths[0][-1]["tuple"] == "group:eng#member@human:alice"
    # not asked for: none
    plain = _all(effective.effective_access, svc, SYSTEM, S, PLANNER, relation="viewer",
                 include_delegated=False)  # fmt: skip
    assert all(e.via == "graph" for e in plain)
    # the resource side: the planner acting for alice on d1, after the planner's own entry
    holders = _all(effective.who_can_access, svc, SYSTEM, S, "document:d1", relation="viewer")
    assert [(e.user, e.via, e.on_behalf_of) for e in holders] == [
        (PLANNER, "graph", None),
        (PLANNER, "delegation", ALICE),
        (ALICE, "graph", None),
    ]
    agents = _all(effective.who_can_access, svc, SYSTEM, S, "document:d1", relation="viewer",
                  user_type="agent")  # fmt: skip
    assert [(e.user, e.via) for e in agents] == [(PLANNER, "graph"), (PLANNER, "delegation")]


def test_action_names_map_through_the_store_policy(svc: Services, clock: FixedClock) -> None:
    from keyplane.service import policies

    policies.update_store_policy(svc, SYSTEM, S, actions={"read": "viewer"})
    did = _delegate(svc, clock, ALICE, PLANNER, [{"actions": ["read"], "resource": "document:*"}])
    got = _all(effective.effective_access, svc, SYSTEM, S, PLANNER, relation="viewer")
    assert [(e.object, e.delegation_id) for e in got if e.via == "delegation"] == [
        ("document:d1", did), ("document:d2", did),
    ]  # fmt: skip


def test_expired_revoked_and_unheld_delegations_give_nothing(
    svc: Services, clock: FixedClock
) -> None:
    scope = [{"actions": ["viewer", "editor"], "resource": "document:*"}]
    short = _delegate(svc, clock, ALICE, PLANNER, scope, ttl=60)
    revoked = _delegate(svc, clock, ALICE, PLANNER, scope)
    delegations.revoke_delegation(svc, SYSTEM, S, revoked)
    # carol holds nothing: her delegation lends nothing
    _delegate(svc, clock, CAROL, PLANNER, scope)

    def delegated() -> list[tuple[str, str, str | None]]:
        got = _all(effective.effective_access, svc, SYSTEM, S, PLANNER, object_type="document")
        return [(e.object, e.relation, e.delegation_id) for e in got if e.via == "delegation"]

    assert delegated() == [("document:d1", "viewer", short), ("document:d2", "viewer", short)]
    clock.advance(120)  # the short one expired
    assert delegated() == []
    # a suspended delegator lends nothing either
    live = _delegate(svc, clock, ALICE, PLANNER, scope)
    assert {d for _, _, d in delegated()} == {live}
    identities.suspend_identity(svc, SYSTEM, S, ALICE)
    assert delegated() == []


# ------------------------------------------------------------------------------ resource side


def test_who_can_access_lists_every_user_type_with_paths(svc: Services) -> None:
    got = _all(effective.who_can_access, svc, SYSTEM, S, "document:d2")
    rows = [(e.relation, e.user) for e in got]
    assert rows == [
        ("blocked", ALICE),  # the exclusion's own relation, held directly
        ("reader", PLANNER),  # not alice: she is blocked on d2
        ("viewer", PLANNER),
        ("viewer", ALICE),
    ]  # the parent link (document:d2#parent@folder:f) is no one: not listed
    alice = next(e for e in got if e.user == ALICE and e.relation == "viewer")
    assert alice.paths[0][0]["kind"] == "tuple_to_userset"
    # a relation filter and a user type filter
    only = _all(effective.who_can_access, svc, SYSTEM, S, "document:d2", relation="viewer",
                user_type="human")  # fmt: skip
    assert [e.user for e in only] == [ALICE]


# ------------------------------------------------------------------------------ pages


def test_pages_have_no_duplicates_no_gaps_and_refuse_tampering(svc: Services) -> None:
    everything = _all(effective.effective_access, svc, SYSTEM, S, ALICE, page_size=1000)
    for size in (1, 2, 5):
        paged = _all(effective.effective_access, svc, SYSTEM, S, ALICE, page_size=size)
        assert paged == everything
    first = effective.effective_access(svc, SYSTEM, S, ALICE, page_size=3)
    assert len(first.items) == 3 and first.continuation_token
    token = first.continuation_token
    # another identity, other filters, garbage, a forged position: refused
    for bad_call in (
        lambda: effective.effective_access(svc, SYSTEM, S, BOB, continuation_token=token),
        lambda: effective.effective_access(svc, SYSTEM, S, ALICE, relation="viewer",
                                           continuation_token=token),
        lambda: effective.effective_access(svc, SYSTEM, S, ALICE, continuation_token="!!nope"),
        lambda: effective.who_can_access(svc, SYSTEM, S, "document:d1", continuation_token=token),
    ):  # fmt: skip
        with pytest.raises(InvalidContinuationToken):
            bad_call()
    doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    doc["k"] = [1, 2, 3, 4, 5, 6]
    forged = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    with pytest.raises(InvalidContinuationToken):
        effective.effective_access(svc, SYSTEM, S, ALICE, continuation_token=forged)
    # a write between two pages shows on the next one (a page resumes at its position in
    # a listing of the new revision: nothing before it repeats, nothing after it is lost)
    one = effective.effective_access(svc, SYSTEM, S, ALICE, relation="viewer", page_size=2)
    assert [e.object for e in one.items] == ["document:c_ok", "document:d1"]
    tuples.write_tuples(svc, SYSTEM, S, writes=["document:zz#viewer@human:alice"])
    rest = _all(effective.effective_access, svc, SYSTEM, S, ALICE, relation="viewer",
                page_size=2, continuation_token=one.continuation_token)  # fmt: skip
    assert [e.object for e in rest] == ["document:d2", "document:own", "document:zz", "folder:f"]
    # the resource side pages the same way
    holders = _all(effective.who_can_access, svc, SYSTEM, S, "document:d1", page_size=1000)
    assert _all(effective.who_can_access, svc, SYSTEM, S, "document:d1", page_size=1) == holders


def test_one_event_per_page(svc: Services) -> None:
    before = len(_events(svc))
    ids = []
    token = None
    while True:
        page = effective.effective_access(svc, SYSTEM, S, ALICE, page_size=5,
                                          continuation_token=token)  # fmt: skip
        ids.append(page.decision_id)
        token = page.continuation_token
        if token is None:
            break
    evs = _events(svc)[before:]
    assert len(ids) == 4 and [e.decision_id for e in evs] == ids  # each page names its own
    first = evs[0]
    assert (first.subject, first.action, first.resource, first.outcome) == (ALICE, "*", "*", "ok")
    assert first.details["direction"] == "identity" and first.details["count"] == 5
    assert first.details["results"][0] == "agent:helper#owner@human:alice"
    assert first.details["filters"]["continued"] is False
    assert evs[1].details["filters"]["continued"] is True
    assert sum(e.details["count"] for e in evs) == 16
    page = effective.who_can_access(svc, SYSTEM, S, "document:d1", relation="viewer")
    last = _events(svc)[-1]
    assert last.decision_id == page.decision_id
    assert (last.resource, last.action, last.details["direction"]) == (
        "document:d1", "viewer", "resource",
    )  # fmt: skip
    assert last.details["results"] == [
        "document:d1#viewer@agent:planner", "document:d1#viewer@human:alice",
    ]  # fmt: skip


def test_needs_the_query_permission(svc: Services) -> None:
    _, secret = keys.create_key(svc, SYSTEM, owner="nobody", roles=[])
    nobody = keys.authenticate(svc, secret)
    with pytest.raises(PermissionDeniedError):
        effective.effective_access(svc, nobody, S, ALICE)
    with pytest.raises(PermissionDeniedError):
        effective.who_can_access(svc, nobody, S, "document:d1")
    refused = [e for e in _events(svc) if e.outcome == "deny"]
    assert len(refused) == 2 and refused[0].reasons == ("permission_denied",)


def test_bad_input(svc: Services) -> None:
    with pytest.raises(TypeNotFoundError):
        effective.effective_access(svc, SYSTEM, S, ALICE, object_type="spaceship")
    with pytest.raises(RelationNotFoundError):
        effective.effective_access(svc, SYSTEM, S, ALICE, object_type="document", relation="x")
    with pytest.raises(RelationNotFoundError):
        effective.effective_access(svc, SYSTEM, S, ALICE, relation="nothing_has_this")
    for node in ("alice", "human:", "human:a b", "agent:*", ""):
        with pytest.raises(ValidationError):
            effective.effective_access(svc, SYSTEM, S, node)
    with pytest.raises(ValidationError):
        list(effective.iter_effective(svc, S, "not a node"))
    with pytest.raises(ValidationError):
        effective.effective_access(svc, SYSTEM, S, ALICE, page_size=0)
    with pytest.raises(TypeNotFoundError):
        effective.who_can_access(svc, SYSTEM, S, "spaceship:1")
    with pytest.raises(RelationNotFoundError):
        effective.who_can_access(svc, SYSTEM, S, "document:d1", relation="x")
    with pytest.raises(TypeNotFoundError):
        effective.who_can_access(svc, SYSTEM, S, "document:d1", user_type="spaceship")
    for obj in ("document", "document:*", "document:a b"):
        with pytest.raises(ValidationError):
            effective.who_can_access(svc, SYSTEM, S, obj)
    # every failure is on the record as an error of the operation
    errors = [e for e in _events(svc) if e.outcome == "error"]
    assert len(errors) >= 10


@pytest.mark.postgres
@pytest.mark.parametrize("storage_url", ["postgres"], indirect=True)
def test_the_same_on_postgresql(storage_url: str, clock: FixedClock) -> None:
    """(``storage_url`` from tests/conftest.py, its PostgreSQL side only: it empties the
    tables afterwards)"""
    svc = _open(storage_url, clock)
    try:
        _delegate(svc, clock, ALICE, PLANNER, [{"actions": ["viewer"], "resource": "document:*"}])
        got = _all(effective.effective_access, svc, SYSTEM, S, PLANNER, relation="viewer",
                   object_type="document", page_size=2)  # fmt: skip
        assert [(e.object, e.via) for e in got] == [
            ("document:d1", "graph"), ("document:d1", "delegation"),
            ("document:d2", "graph"), ("document:d2", "delegation"),
            ("document:pub", "graph"),
        ]  # fmt: skip
        assert len(_events(svc)) == 3
    finally:
        try:
            stores.delete_store(svc, SYSTEM, S)
        finally:
            svc.close()

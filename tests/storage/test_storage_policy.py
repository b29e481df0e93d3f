"""The identity plane's storage contract (PolicyStore, migration 0007), on both backends:
every mutation bumps the store revision once and stamps its rows with it; owner tuples go
through the changelog; ledger events commit in the same transaction; an empty plan changes
nothing; store deletion removes the rows; filters and pagination."""

from __future__ import annotations

import dataclasses

import pytest

from keyplane.errors import (
    DelegationNotFoundError,
    IdentityExistsError,
    IdentityNotFoundError,
    InvalidContinuationToken,
    StoreNotFoundError,
)
from keyplane.graph.tuples import Tuple
from keyplane.ledger.chain import canonical_json
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.policy.records import Delegation, Identity, ScopeGrant, StorePolicy
from keyplane.storage import Storage
from keyplane.storage.base import PolicyTxReader, PolicyWrite

S = "pol"


def _identity(kind: str, id: str, *, owners: tuple[str, ...] = (), **kw: object) -> Identity:
    base = Identity(
        store_id=S, kind=kind, id=id, display_name=id.title(), attributes={"team": "x"},
        status="active", owners=owners, orphaned=False, source="api", created_at=10.0,
        updated_at=10.0, last_seen=None, revision=0,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _delegation(did: str, delegator: str, delegate: str, **kw: object) -> Delegation:
    base = Delegation(
        store_id=S, id=did, delegator=delegator, delegate=delegate, parent_id=None,
        scope=(ScopeGrant(("viewer", "read"), "document:*", ("search",)),),
        purposes=("support",), not_before=100.0, expires_at=200.0, max_depth=1,
        condition=None, status="active", revoked_at=None, revoked_reason=None,
        created_by="system", created_at=100.0, revision=0,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _write(storage: Storage, change: PolicyWrite, **kw: object) -> int:
    result = storage.write_policy(S, lambda r: change, **kw)  # type: ignore[arg-type]
    assert result.changed
    return result.revision


def _event(revision: int, type: str = "identity.created") -> list[tuple[LedgerEvent, str]]:
    ev = LedgerEvent(
        id=new_event_id(), time=1.0, store=S, type=type, caller="system", revision=revision
    )
    return [(ev, canonical_json(ev).decode("utf-8"))]


@pytest.fixture
def st(storage: Storage) -> Storage:
    storage.create_store("policy", store_id=S)
    return storage


def test_create_identity_bumps_revision_and_stamps_row(st: Storage) -> None:
    alice = _identity("human", "alice")
    result = st.write_policy(S, lambda r: PolicyWrite(new_identities=[alice]))
    assert result.changed and result.revision == 1 == st.current_revision(S)
    assert result.identities == (dataclasses.replace(alice, revision=1),)
    got = st.get_identity(S, "human", "alice")
    assert got == dataclasses.replace(alice, revision=1)
    assert got is not None and got.node == "human:alice" and got.attributes == {"team": "x"}
    with pytest.raises(IdentityExistsError):
        _write(st, PolicyWrite(new_identities=[alice]))
    assert st.current_revision(S) == 1  # the failed write bumped nothing


def test_every_mutation_bumps_the_revision(st: Storage) -> None:
    bot = _identity("agent", "bot", owners=("human:alice",))
    revs = [
        _write(st, PolicyWrite(new_identities=[_identity("human", "alice"), bot])),
        _write(st, PolicyWrite(identities=[dataclasses.replace(bot, display_name="B")])),
        _write(st, PolicyWrite(new_delegations=[_delegation("D1", "human:alice", "agent:bot")])),
        _write(
            st,
            PolicyWrite(
                delegations=[
                    _delegation("D1", "human:alice", "agent:bot", status="revoked", revoked_at=5.0)
                ]
            ),
        ),
        _write(st, PolicyWrite(store_policy=StorePolicy(S, max_delegation_seconds=60))),
    ]
    assert revs == [1, 2, 3, 4, 5] and st.current_revision(S) == 5
    bot_row = st.get_identity(S, "agent", "bot")
    assert bot_row is not None and (bot_row.display_name, bot_row.revision) == ("B", 2)
    d = st.get_delegation(S, "D1")
    assert d is not None and (d.status, d.revoked_at, d.revision) == ("revoked", 5.0, 4)
    assert d.scope == (ScopeGrant(("viewer", "read"), "document:*", ("search",)),)
    assert st.get_store_policy(S) == StorePolicy(S, max_delegation_seconds=60, revision=5)


def test_store_policy_defaults_and_upsert(st: Storage) -> None:
    assert st.get_store_policy(S) == StorePolicy(S)
    _write(st, PolicyWrite(store_policy=StorePolicy(S, suspend_orphans=True, actions={"a": "b"})))
    _write(st, PolicyWrite(store_policy=StorePolicy(S, 30, False, {"read": "viewer"})))
    assert st.get_store_policy(S) == StorePolicy(S, 30, False, {"read": "viewer"}, revision=2)


def test_updating_missing_rows_fails(st: Storage) -> None:
    with pytest.raises(IdentityNotFoundError):
        _write(st, PolicyWrite(identities=[_identity("agent", "ghost")]))
    with pytest.raises(DelegationNotFoundError):
        _write(st, PolicyWrite(delegations=[_delegation("nope", "human:a", "agent:b")]))
    assert st.current_revision(S) == 0


def test_empty_plan_changes_nothing(st: Storage) -> None:
    _write(st, PolicyWrite(new_identities=[_identity("human", "alice")]))
    called: list[int] = []

    def events(rev: int) -> list[tuple[LedgerEvent, str]]:
        called.append(rev)
        return _event(rev)

    result = st.write_policy(S, lambda r: PolicyWrite(), ledger_events=events)
    assert (result.changed, result.revision) == (False, 1)
    assert st.current_revision(S) == 1 and called == [] and st.read_events(S) == []


def test_owner_tuples_go_through_the_changelog(st: Storage) -> None:
    owner = Tuple("agent:bot", "owner", "human:alice")
    team = Tuple("agent:bot", "owner", "group:eng#member")
    rev = _write(
        st,
        PolicyWrite(
            new_identities=[_identity("agent", "bot", owners=("human:alice", "group:eng#member"))],
            tuple_writes=[owner, team],
        ),
    )
    assert {t.key for t in st.read_tuples(S).items} == {owner.key, team.key}
    page = st.read_changes(S)
    assert [(c.tuple.key, c.operation, c.revision) for c in page.changes] == [
        (owner.key, "write", rev),
        (team.key, "write", rev),
    ]
    # idempotent: an existing tuple is not written again, a missing one not deleted
    rev2 = _write(
        st,
        PolicyWrite(
            identities=[_identity("agent", "bot", owners=("group:eng#member",))],
            tuple_writes=[team],
            tuple_deletes=[owner, Tuple("agent:bot", "owner", "human:nobody")],
        ),
    )
    later = st.read_changes(S, after_revision=rev)
    assert [(c.tuple.key, c.operation, c.revision) for c in later.changes] == [
        (owner.key, "delete", rev2)
    ]
    assert [t.key for t in st.read_tuples(S).items] == [team.key]


def test_ledger_events_commit_with_the_change(st: Storage) -> None:
    rev = _write(
        st,
        PolicyWrite(new_identities=[_identity("human", "alice")]),
        ledger_events=_event,
    )
    [ev] = st.read_events(S)
    assert (ev.type, ev.revision) == ("identity.created", rev)


def test_a_failing_event_or_plan_rolls_everything_back(st: Storage) -> None:
    def broken(revision: int) -> list[tuple[LedgerEvent, str]]:
        raise RuntimeError("the ledger cannot take this event")

    change = PolicyWrite(
        new_identities=[_identity("agent", "bot", owners=("human:alice",))],
        tuple_writes=[Tuple("agent:bot", "owner", "human:alice")],
    )
    with pytest.raises(RuntimeError):
        st.write_policy(S, lambda r: change, ledger_events=broken)

    def failing_plan(r: PolicyTxReader) -> PolicyWrite:
        raise ValueError("refused")

    with pytest.raises(ValueError):
        st.write_policy(S, failing_plan, ledger_events=_event)
    # a row that clashes midway rolls back the rows before it, tuples and events included
    _write(st, PolicyWrite(new_identities=[_identity("human", "alice")]))
    with pytest.raises(IdentityExistsError):
        st.write_policy(
            S,
            lambda r: PolicyWrite(
                new_identities=[_identity("human", "bob"), _identity("human", "alice")],
                tuple_writes=[Tuple("agent:x", "owner", "human:bob")],
            ),
            ledger_events=_event,
        )
    assert st.current_revision(S) == 1
    assert st.get_identity(S, "agent", "bot") is None
    assert st.get_identity(S, "human", "bob") is None
    assert st.read_tuples(S).items == [] and st.read_events(S) == []


def test_plan_reads_inside_the_transaction(st: Storage) -> None:
    _write(
        st,
        PolicyWrite(
            new_identities=[
                _identity("human", "alice"),
                _identity("human", "al"),
                _identity("agent", "a1", owners=("human:alice",)),
                _identity("agent", "a2", owners=("group:eng#member", "human:al")),
                _identity("agent", "a3", owners=("human:al_ce",)),
            ],
            new_delegations=[
                _delegation("D1", "human:alice", "agent:a1"),
                _delegation("D2", "agent:a1", "agent:a2", parent_id="D1"),
                _delegation("D3", "agent:a2", "agent:a3", parent_id="D2"),
                _delegation("D4", "agent:a2", "agent:a3", parent_id="D2", status="revoked"),
                _delegation("D5", "human:al", "agent:a2"),
            ],
        ),
    )
    seen: dict[str, object] = {}

    def plan(r: PolicyTxReader) -> PolicyWrite:
        seen["store"] = r.store_id
        seen["alice"] = r.identity("human", "alice")
        seen["missing"] = r.identity("human", "zed")
        seen["owned_by_alice"] = [i.id for i in r.identities_owned_by("human:alice")]
        seen["owned_by_al"] = [i.id for i in r.identities_owned_by("human:al")]
        seen["owned_by_eng"] = [i.id for i in r.identities_owned_by("group:eng#member")]
        seen["of_a2"] = [d.id for d in r.delegations_of("agent:a2")]
        seen["below_D1"] = [d.id for d in r.descendants(["D1"])]
        seen["below_D5"] = [d.id for d in r.descendants(["D5"])]
        seen["D2"] = r.delegation("D2")
        seen["policy"] = r.store_policy()
        return PolicyWrite()

    st.write_policy(S, plan)
    assert seen["store"] == S
    assert isinstance(seen["alice"], Identity) and seen["missing"] is None
    # exact owner match: "human:al" is not "human:alice", "_" is no wildcard
    assert seen["owned_by_alice"] == ["a1"]
    assert seen["owned_by_al"] == ["a2"]
    assert seen["owned_by_eng"] == ["a2"]
    assert seen["of_a2"] == ["D2", "D3", "D5"]  # active only; revoked D4 left out
    assert seen["below_D1"] == ["D2", "D3"]
    assert seen["below_D5"] == []
    assert isinstance(seen["D2"], Delegation) and seen["D2"].parent_id == "D1"
    assert seen["policy"] == StorePolicy(S)


def test_read_policy_changes(st: Storage) -> None:
    empty = st.read_policy_changes(S, 0)
    assert (empty.identities, empty.delegations, empty.revision) == ((), (), 0)
    assert empty.guardrail_set is None and empty.store_policy is None
    _write(st, PolicyWrite(new_identities=[_identity("human", "alice")]))
    st.write(S, writes=[Tuple("doc:1", "viewer", "user:x")])  # a tuple-only revision (2)
    _write(st, PolicyWrite(new_delegations=[_delegation("D1", "human:alice", "agent:b")]))
    _write(st, PolicyWrite(store_policy=StorePolicy(S, suspend_orphans=True)))
    everything = st.read_policy_changes(S, 0)
    assert [i.node for i in everything.identities] == ["human:alice"]
    assert [d.id for d in everything.delegations] == ["D1"]
    assert everything.store_policy == StorePolicy(S, suspend_orphans=True, revision=4)
    assert everything.revision == 4
    after = st.read_policy_changes(S, 2)
    assert after.identities == () and [d.id for d in after.delegations] == ["D1"]
    assert st.read_policy_changes(S, 4) == st.read_policy_changes(S, 4)
    assert st.read_policy_changes(S, 4).store_policy is None
    with pytest.raises(StoreNotFoundError):
        st.read_policy_changes("nope", 0)


def test_list_identities_filters_and_pages(st: Storage) -> None:
    rows = [
        _identity("human", "alice"),
        _identity("human", "bob", status="deprovisioned"),
        _identity("agent", "a1", owners=("human:alice",)),
        _identity("agent", "a2", owners=("human:bob",), orphaned=True, status="suspended"),
        _identity("workload", "w1", owners=("human:alice", "group:eng#member")),
        _identity("service_account", "s1", owners=("human:alice_",)),
    ]
    _write(st, PolicyWrite(new_identities=rows))

    def ids(**kw: object) -> list[str]:
        return [i.node for i in st.list_identities(S, **kw).items]  # type: ignore[arg-type]

    assert ids() == [
        "agent:a1", "agent:a2", "human:alice", "human:bob", "service_account:s1", "workload:w1"
    ]  # fmt: skip
    assert ids(kind="human") == ["human:alice", "human:bob"]
    assert ids(status="suspended") == ["agent:a2"]
    assert ids(owner="human:alice") == ["agent:a1", "workload:w1"]
    assert ids(orphaned=True) == ["agent:a2"]
    assert ids(orphaned=False, kind="agent") == ["agent:a1"]
    pages, token = [], None
    while True:
        page = st.list_identities(S, page_size=4, continuation_token=token)
        pages.append([i.node for i in page.items])
        token = page.continuation_token
        if token is None:
            break
    assert [len(p) for p in pages] == [4, 2]
    assert [n for p in pages for n in p] == ids()
    first = st.list_identities(S, page_size=1)
    assert first.continuation_token is not None
    with pytest.raises(InvalidContinuationToken):
        st.list_identities(S, kind="human", continuation_token=first.continuation_token)


def test_list_delegations_filters_and_pages(st: Storage) -> None:
    _write(
        st,
        PolicyWrite(
            new_delegations=[
                _delegation("D1", "human:alice", "agent:a1"),
                _delegation("D2", "agent:a1", "agent:a2", parent_id="D1"),
                _delegation("D3", "human:alice", "agent:a2", status="revoked"),
            ]
        ),
    )

    def ids(**kw: object) -> list[str]:
        return [d.id for d in st.list_delegations(S, **kw).items]  # type: ignore[arg-type]

    assert ids() == ["D1", "D2", "D3"]
    assert ids(delegator="human:alice") == ["D1", "D3"]
    assert ids(delegate="agent:a2", status="active") == ["D2"]
    assert ids(parent_id="D1") == ["D2"]
    page = st.list_delegations(S, page_size=2)
    assert [d.id for d in page.items] == ["D1", "D2"] and page.continuation_token
    rest = st.list_delegations(S, page_size=2, continuation_token=page.continuation_token)
    assert [d.id for d in rest.items] == ["D3"] and rest.continuation_token is None


def test_touch_identities_moves_last_seen_forward_without_a_revision(st: Storage) -> None:
    _write(st, PolicyWrite(new_identities=[_identity("agent", "bot", owners=("human:a",))]))
    st.touch_identities(S, [("agent", "bot", 50.0)])
    st.touch_identities(S, [("agent", "bot", 40.0), ("agent", "ghost", 60.0)])
    got = st.get_identity(S, "agent", "bot")
    assert got is not None and got.last_seen == 50.0 and got.revision == 1
    assert st.current_revision(S) == 1


def test_store_deletion_removes_the_rows(st: Storage) -> None:
    _write(
        st,
        PolicyWrite(
            new_identities=[_identity("human", "alice")],
            new_delegations=[_delegation("D1", "human:alice", "agent:a")],
            store_policy=StorePolicy(S, max_delegation_seconds=5),
        ),
    )
    st.delete_store(S)
    with pytest.raises(StoreNotFoundError):
        st.get_identity(S, "human", "alice")
    st.create_store("again", store_id=S)
    assert st.get_identity(S, "human", "alice") is None
    assert st.get_delegation(S, "D1") is None
    assert st.get_store_policy(S) == StorePolicy(S)
    fresh = st.read_policy_changes(S, 0)
    assert (fresh.identities, fresh.delegations, fresh.store_policy) == ((), (), None)


def test_unknown_store(storage: Storage) -> None:
    calls = [
        lambda: storage.write_policy("nope", lambda r: PolicyWrite()),
        lambda: storage.get_identity("nope", "human", "a"),
        lambda: storage.list_identities("nope"),
        lambda: storage.get_delegation("nope", "D"),
        lambda: storage.list_delegations("nope"),
        lambda: storage.get_store_policy("nope"),
    ]
    for call in calls:
        with pytest.raises(StoreNotFoundError):
            call()


def test_stores_are_isolated(st: Storage) -> None:
    st.create_store("other", store_id="other")
    _write(st, PolicyWrite(new_identities=[_identity("human", "alice")]))
    assert st.get_identity("other", "human", "alice") is None
    assert st.list_identities("other").items == []
    assert st.current_revision("other") == 0

"""Access governance storage (migration 0011; GovernanceStore and the governance rows of
PolicyWrite), on both backends: entitlements and access requests are written through
write_policy (one revision, ledger events in the same transaction); an approval stores the
request and its grant tuple atomically (a failing ledger callback rolls back both); a
replaced request is compare-and-set on its revision, so racing approvers never both move
it; filters, the state at an instant, and pagination; PolicyChanges carry entitlements."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest

from keyplane.clock import FixedClock
from keyplane.errors import (
    AccessRequestNotFoundError,
    AccessRequestStateError,
    ConflictError,
    EntitlementExistsError,
    EntitlementNotFoundError,
    InvalidContinuationToken,
    InvalidTupleError,
    StoreNotFoundError,
)
from keyplane.governance.records import (
    ACTIVE,
    DENIED,
    ENTITLEMENT_DELETED,
    EXPIRED,
    PENDING,
    AccessRequest,
    Approval,
    ApprovalRule,
    Entitlement,
    ReviewCampaign,
    ReviewFilter,
)
from keyplane.graph.tuples import Tuple
from keyplane.ledger.chain import canonical_json
from keyplane.ledger.events import EventFilter, LedgerEvent, new_event_id
from keyplane.storage import Storage, open_storage
from keyplane.storage.base import PolicyTxReader, PolicyWrite, PolicyWriteResult
from keyplane.storage.governance_sql import ACCESS_REQUEST_COLS, ENTITLEMENT_COLS

S = "gov"
T0 = 1_000_000.0
HOUR = 3600.0


def _ent(eid: str, obj: str = "document:roadmap", **kw: object) -> Entitlement:
    base = Entitlement(
        store_id=S, id=eid, object=obj, relation="viewer", description=f"{eid} access",
        owners=("human:olga",), risk="low", max_duration_seconds=3600,
        agents_may_request=True,
        approval=(ApprovalRule("auto", 'entitlement.risk == "low"', "approve"),
                  ApprovalRule("owners", "true", "route", ("entitlement_owners",), 2)),
        status="active", created_by="admin", created_at=T0, updated_at=T0, revision=0,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _req(rid: str, **kw: object) -> AccessRequest:
    base = AccessRequest(
        store_id=S, id=rid, entitlement_id="roadmap", object="document:roadmap",
        relation="viewer", beneficiary="agent:bot", requester="human:alice",
        caller="key:alice", duration_seconds=3600, purpose="support",
        justification="ticket 42", state=PENDING, created_at=T0, pending_until=T0 + 7 * 86400,
        route_approvers=("human:olga", "group:sec#member"), required=2, rule_id="owners",
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _grant(r: AccessRequest, expires_at: float | None) -> Tuple:
    return Tuple(r.object, r.relation, r.beneficiary, expires_at=expires_at)


def _events(kind: str, resource: str) -> Callable[[int], list[tuple[LedgerEvent, str]]]:
    def make(revision: int) -> list[tuple[LedgerEvent, str]]:
        ev = LedgerEvent(
            id=new_event_id(), time=T0, store=S, type=kind, caller="system",
            revision=revision, resource=resource,
        )  # fmt: skip
        return [(ev, canonical_json(ev).decode("utf-8"))]

    return make


def _write(st: Storage, change: PolicyWrite, **kw: object) -> PolicyWriteResult:
    result = st.write_policy(S, lambda r: change, **kw)  # type: ignore[arg-type]
    assert result.changed
    return result


def _activate(r: AccessRequest, at: float, approver: str = "human:olga") -> AccessRequest:
    vote = Approval(approver, "approve", "ok", at, f"key:{approver}")
    return dataclasses.replace(
        r, state=ACTIVE, approvals=(*r.approvals, vote), decided_at=at,
        grant_starts_at=at, grant_expires_at=at + r.duration_seconds,
    )  # fmt: skip


@pytest.fixture
def st(storage: Storage) -> Storage:
    storage.create_store("governance", store_id=S)
    return storage


# -- entitlements ----------------------------------------------------------------------


def test_entitlement_lifecycle_through_write_policy(st: Storage) -> None:
    e = _ent("roadmap")
    res = _write(
        st,
        PolicyWrite(new_entitlements=[e]),
        ledger_events=_events("entitlement.created", "entitlement:roadmap"),
    )
    assert res.revision == 1 == st.current_revision(S)
    assert res.entitlements == (dataclasses.replace(e, revision=1),)
    got = st.get_entitlement(S, "roadmap")
    assert got == dataclasses.replace(e, revision=1)
    assert got is not None and got.approval[1].approvers == ("entitlement_owners",)
    assert got.approval[1].required == 2 and got.agents_may_request is True
    [ev] = st.read_events(S, filters=EventFilter(resource="entitlement:roadmap"))
    assert (ev.type, ev.revision) == ("entitlement.created", 1)

    with pytest.raises(EntitlementExistsError):
        _write(st, PolicyWrite(new_entitlements=[e]))
    assert st.current_revision(S) == 1  # the refused write bumped nothing

    changed = dataclasses.replace(e, risk="high", status="disabled", updated_at=T0 + 5)
    res2 = _write(st, PolicyWrite(entitlements=[changed]))
    assert res2.entitlements == (dataclasses.replace(changed, revision=2),)
    assert st.get_entitlement(S, "roadmap") == dataclasses.replace(changed, revision=2)

    res3 = _write(st, PolicyWrite(deleted_entitlements=["roadmap"]))
    [tomb] = res3.entitlements
    assert (tomb.id, tomb.status, tomb.revision) == ("roadmap", ENTITLEMENT_DELETED, 3)
    assert st.get_entitlement(S, "roadmap") is None
    assert st.list_entitlements(S).items == []
    for gone in (
        PolicyWrite(entitlements=[changed]),
        PolicyWrite(deleted_entitlements=["roadmap"]),
        PolicyWrite(deleted_entitlements=["never"]),
    ):
        with pytest.raises(EntitlementNotFoundError):
            _write(st, gone)
    assert st.current_revision(S) == 3
    # the id can be used again once deleted
    again = _write(st, PolicyWrite(new_entitlements=[_ent("roadmap", risk="medium")]))
    assert again.revision == 4
    fresh = st.get_entitlement(S, "roadmap")
    assert fresh is not None and (fresh.risk, fresh.status, fresh.revision) == (
        "medium",
        "active",
        4,
    )


def test_entitlements_read_in_the_plan_and_in_policy_changes(st: Storage) -> None:
    _write(st, PolicyWrite(new_entitlements=[_ent("a"), _ent("b", "document:*")]))
    seen: list[object] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        seen.append(r.entitlement("a"))
        seen.append(r.entitlement("missing"))
        return PolicyWrite(deleted_entitlements=["b"])

    st.write_policy(S, plan)
    assert seen == [dataclasses.replace(_ent("a"), revision=1), None]
    everything = st.read_policy_changes(S, 0)
    assert [(e.id, e.status, e.revision) for e in everything.entitlements] == [
        ("a", "active", 1),
        ("b", ENTITLEMENT_DELETED, 2),  # the tombstone, so replicas drop it
    ]
    later = st.read_policy_changes(S, 1)
    assert [(e.id, e.status) for e in later.entitlements] == [("b", ENTITLEMENT_DELETED)]
    assert st.read_policy_changes(S, 2).entitlements == ()


def test_list_entitlements_filters_and_pages(st: Storage) -> None:
    ents = [
        _ent("doc-1", "document:one"),
        _ent("doc-any", "document:*", owners=("group:sec#member",)),
        _ent("doc-2", "document:two", relation="editor", status="disabled"),
        _ent("folder", "folder:x", owners=("human:olga", "human:zed")),
        _ent("role", "role:billing-admin", relation="assignee"),
    ]
    _write(st, PolicyWrite(new_entitlements=ents))
    _write(st, PolicyWrite(new_entitlements=[_ent("gone")]))
    _write(st, PolicyWrite(deleted_entitlements=["gone"]))

    def ids(**kw: object) -> list[str]:
        return [e.id for e in st.list_entitlements(S, **kw).items]  # type: ignore[arg-type]

    assert ids() == ["doc-1", "doc-2", "doc-any", "folder", "role"]
    assert ids(status="disabled") == ["doc-2"]
    assert ids(object_type="document") == ["doc-1", "doc-2", "doc-any"]
    assert ids(object="document:*") == ["doc-any"]
    assert ids(relation="assignee") == ["role"]
    assert ids(owner="human:zed") == ["folder"]
    assert ids(owner="group:sec#member") == ["doc-any"]
    assert ids(owner="human:olg") == []  # exactly, not a prefix
    # an underscore or percent in a filter is literal, not a LIKE wildcard
    assert ids(object_type="docu_ent") == [] and ids(object_type="%") == []

    got: list[str] = []
    token = None
    while True:
        page = st.list_entitlements(S, page_size=2, continuation_token=token)
        got += [e.id for e in page.items]
        assert len(page.items) <= 2
        token = page.continuation_token
        if token is None:
            break
    assert got == ["doc-1", "doc-2", "doc-any", "folder", "role"]
    first = st.list_entitlements(S, object_type="document", page_size=1)
    assert first.continuation_token is not None
    with pytest.raises(InvalidContinuationToken):  # bound to its filters
        st.list_entitlements(S, page_size=1, continuation_token=first.continuation_token)
    with pytest.raises(StoreNotFoundError):
        st.list_entitlements("nope")
    with pytest.raises(StoreNotFoundError):
        st.get_entitlement("nope", "doc-1")


# -- access requests -------------------------------------------------------------------


def test_request_created_then_activated_with_its_grant_in_one_transaction(st: Storage) -> None:
    _write(st, PolicyWrite(new_entitlements=[_ent("roadmap")]))
    r = _req("R1")
    res = _write(
        st,
        PolicyWrite(new_access_requests=[r]),
        ledger_events=_events("access_request.created", "access_request:R1"),
    )
    assert res.access_requests == (dataclasses.replace(r, revision=2),)
    stored = st.get_access_request(S, "R1")
    assert stored == dataclasses.replace(r, revision=2)
    assert stored is not None and stored.route_approvers == ("human:olga", "group:sec#member")
    with pytest.raises(ConflictError):
        _write(st, PolicyWrite(new_access_requests=[r]))

    active = _activate(stored, T0 + 10)
    grant = _grant(active, active.grant_expires_at)
    res2 = _write(
        st,
        PolicyWrite(access_requests=[active], tuple_writes=[grant]),
        ledger_events=_events("access_request.activated", "access_request:R1"),
    )
    rev = res2.revision
    got = st.get_access_request(S, "R1")
    assert got == dataclasses.replace(active, revision=rev)
    assert got is not None and got.approvals[0].caller == "key:human:olga"
    [t] = st.read_tuples(S).items
    assert t.key == grant.key and t.expires_at == T0 + 10 + 3600
    changes = st.read_changes(S, after_revision=2).changes
    assert [(c.operation, c.tuple.key, c.revision, c.tuple.expires_at) for c in changes] == [
        ("write", grant.key, rev, T0 + 3610)
    ]
    history = st.read_events(S, filters=EventFilter(resource="access_request:R1"))
    assert [(e.type, e.revision) for e in history] == [
        ("access_request.created", 2),
        ("access_request.activated", rev),
    ]
    # the plan reads the stored grant with its expiry
    seen: list[Tuple | None] = []

    def plan(rd: PolicyTxReader) -> PolicyWrite:
        seen.append(rd.tuple("document:roadmap", "viewer", "agent:bot"))
        seen.append(rd.tuple("document:roadmap", "viewer", "agent:other"))
        seen.append(rd.tuple("not a tuple", "viewer", "agent:bot"))
        req = rd.access_request("R1")
        assert req is not None and req.state == ACTIVE
        assert rd.access_request("R404") is None
        return PolicyWrite()

    st.write_policy(S, plan)
    assert seen[0] is not None and seen[0].expires_at == T0 + 3610 and seen[1:] == [None, None]


def test_a_failing_ledger_callback_rolls_back_the_request_and_the_grant(st: Storage) -> None:
    r = _req("R1")
    _write(st, PolicyWrite(new_access_requests=[r]))
    stored = st.get_access_request(S, "R1")
    assert stored is not None
    active = _activate(stored, T0 + 10)

    def broken(revision: int) -> list[tuple[LedgerEvent, str]]:
        raise RuntimeError("the ledger refused")

    with pytest.raises(RuntimeError):
        st.write_policy(
            S,
            lambda rd: PolicyWrite(access_requests=[active], tuple_writes=[_grant(active, 2e9)]),
            ledger_events=broken,
        )
    assert st.get_access_request(S, "R1") == stored  # still pending, same revision
    assert st.read_tuples(S).items == []
    assert st.read_changes(S).changes == []
    assert st.current_revision(S) == 1
    # the revoke path likewise: request and tuple deletion roll back together
    _write(st, PolicyWrite(access_requests=[active], tuple_writes=[_grant(active, 2e9)]))
    now_active = st.get_access_request(S, "R1")
    assert now_active is not None
    revoked = dataclasses.replace(
        now_active, state="revoked", ended_at=T0 + 20, ended_by="human:olga"
    )
    with pytest.raises(RuntimeError):
        st.write_policy(
            S,
            lambda rd: PolicyWrite(
                access_requests=[revoked], tuple_deletes=[_grant(revoked, None)]
            ),
            ledger_events=broken,
        )
    assert st.get_access_request(S, "R1") == now_active
    assert [t.key for t in st.read_tuples(S).items] == [_grant(active, None).key]


def test_a_stale_request_is_refused_compare_and_set(st: Storage) -> None:
    _write(st, PolicyWrite(new_access_requests=[_req("R1")]))
    read = st.get_access_request(S, "R1")
    assert read is not None and read.revision == 1
    _write(
        st, PolicyWrite(access_requests=[dataclasses.replace(read, state=DENIED, decided_at=T0)])
    )
    # a second writer still holding the revision-1 row
    with pytest.raises(AccessRequestStateError) as caught:
        _write(
            st,
            PolicyWrite(access_requests=[_activate(read, T0)], tuple_writes=[_grant(read, 2e9)]),
        )
    assert caught.value.details["state"] == DENIED and caught.value.details["revision"] == 2
    assert st.read_tuples(S).items == [] and st.current_revision(S) == 2
    with pytest.raises(AccessRequestNotFoundError):
        _write(st, PolicyWrite(access_requests=[_req("R404")]))


def _vote_plan(
    request_id: str, approver: str, at: float
) -> Callable[[PolicyTxReader], PolicyWrite]:
    """An approver's vote, read-modify-write inside the transaction (what the service
    does): the second vote of two required activates the request with its grant."""

    def plan(rd: PolicyTxReader) -> PolicyWrite:
        cur = rd.access_request(request_id)
        assert cur is not None
        if cur.state != PENDING:
            raise AccessRequestStateError("not pending", details={"state": cur.state})
        votes = (*cur.approvals, Approval(approver, "approve", "", at, f"key:{approver}"))
        new = dataclasses.replace(cur, approvals=votes)
        if len(votes) >= cur.required:
            new = dataclasses.replace(
                new, state=ACTIVE, decided_at=at, grant_starts_at=at, grant_expires_at=at + HOUR
            )
            return PolicyWrite(access_requests=[new], tuple_writes=[_grant(new, at + HOUR)])
        return PolicyWrite(access_requests=[new])

    return plan


def _race(*jobs: Callable[[], object]) -> list[object]:
    """Run ``jobs`` at once in threads; each result or the exception it raised."""
    barrier = threading.Barrier(len(jobs))
    out: list[object] = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = jobs[i]()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_approvals_are_serialized(st: Storage) -> None:
    # two of two required: both votes count, the request is activated once, one grant
    _write(st, PolicyWrite(new_access_requests=[_req("R1", required=2)]))
    out = _race(
        lambda: st.write_policy(S, _vote_plan("R1", "human:olga", T0)),
        lambda: st.write_policy(S, _vote_plan("R1", "human:sam", T0)),
    )
    assert all(isinstance(o, PolicyWriteResult) and o.changed for o in out), out
    got = st.get_access_request(S, "R1")
    assert got is not None and got.state == ACTIVE
    assert sorted(a.approver for a in got.approvals) == ["human:olga", "human:sam"]
    writes = [c for c in st.read_changes(S).changes if c.operation == "write"]
    assert len(writes) == 1 and writes[0].tuple.key == ("document:roadmap", "viewer", "agent:bot")

    # one required, two approvers: exactly one activates, the other is refused
    _write(st, PolicyWrite(new_access_requests=[_req("R2", required=1, beneficiary="agent:two")]))
    out2 = _race(
        lambda: st.write_policy(S, _vote_plan("R2", "human:olga", T0)),
        lambda: st.write_policy(S, _vote_plan("R2", "human:sam", T0)),
    )
    assert sum(isinstance(o, PolicyWriteResult) for o in out2) == 1, out2
    assert sum(isinstance(o, AccessRequestStateError) for o in out2) == 1, out2
    got2 = st.get_access_request(S, "R2")
    assert got2 is not None and got2.state == ACTIVE and len(got2.approvals) == 1

    # writers holding the same stale row (compare-and-set): one wins, one is refused
    _write(st, PolicyWrite(new_access_requests=[_req("R3", required=1, beneficiary="agent:three")]))
    read = st.get_access_request(S, "R3")
    assert read is not None
    a = _activate(read, T0, "human:olga")
    d = dataclasses.replace(read, state=DENIED, decided_at=T0)
    out3 = _race(
        lambda: st.write_policy(
            S, lambda rd: PolicyWrite(access_requests=[a], tuple_writes=[_grant(a, 2e9)])
        ),
        lambda: st.write_policy(S, lambda rd: PolicyWrite(access_requests=[d])),
    )
    assert sum(isinstance(o, PolicyWriteResult) for o in out3) == 1, out3
    assert sum(isinstance(o, AccessRequestStateError) for o in out3) == 1, out3
    final = st.get_access_request(S, "R3")
    assert final is not None
    has_grant = any(t.user == "agent:three" for t in st.read_tuples(S).items)
    assert (final.state, has_grant) in ((ACTIVE, True), (DENIED, False))


def test_a_grant_is_extended_by_delete_and_write_of_one_key(st: Storage) -> None:
    _write(st, PolicyWrite(new_access_requests=[_req("R1")]))
    r1 = st.get_access_request(S, "R1")
    assert r1 is not None
    first = _activate(r1, T0)
    rev1 = _write(
        st, PolicyWrite(access_requests=[first], tuple_writes=[_grant(first, T0 + HOUR)])
    ).revision
    # a later request for the same access: its grant replaces the earlier expiry
    _write(st, PolicyWrite(new_access_requests=[_req("R2")]))
    r2 = st.get_access_request(S, "R2")
    assert r2 is not None
    second = _activate(r2, T0 + 1800)
    rev2 = _write(
        st,
        PolicyWrite(
            access_requests=[second],
            tuple_deletes=[_grant(second, None)],
            tuple_writes=[_grant(second, T0 + 1800 + HOUR)],
        ),
    ).revision
    [t] = st.read_tuples(S).items
    assert t.expires_at == T0 + 1800 + HOUR
    later = st.read_changes(S, after_revision=rev1).changes
    assert [(c.operation, c.revision, c.tuple.expires_at) for c in later] == [
        ("delete", rev2, T0 + HOUR),
        ("write", rev2, T0 + 1800 + HOUR),
    ]
    # a key twice in ONE list is still an error
    with pytest.raises(InvalidTupleError):
        _write(st, PolicyWrite(tuple_writes=[_grant(second, 1.0), _grant(second, 2.0)]))


def test_list_access_requests_filters_state_at_an_instant_and_pages(st: Storage) -> None:
    reqs = [
        _req("R1"),  # pending until T0 + 7 days
        _req("R2", beneficiary="agent:two", requester="agent:two", pending_until=T0 + 100),
        _req("R3", entitlement_id="other", object="document:x", route_approvers=("human:sam",)),
        _req("R4", state=ACTIVE, grant_starts_at=T0, grant_expires_at=T0 + 50, relation="editor"),
        _req("R5", state=DENIED, decided_at=T0, beneficiary="human:hal"),
        _req("R6", state=EXPIRED, object="folder:f"),
    ]
    _write(st, PolicyWrite(new_access_requests=reqs))

    def ids(**kw: object) -> list[str]:
        return [a.id for a in st.list_access_requests(S, **kw).items]  # type: ignore[arg-type]

    assert ids() == ["R1", "R2", "R3", "R4", "R5", "R6"]
    assert ids(state=PENDING, now=T0) == ["R1", "R2", "R3"]
    assert ids(state=PENDING, now=T0 + 100) == ["R1", "R3"]  # R2 ran out at T0 + 100
    assert ids(state=EXPIRED, now=T0 + 100) == ["R2", "R4", "R6"]
    assert ids(state=ACTIVE, now=T0 + 49) == ["R4"]
    assert ids(state=ACTIVE, now=T0 + 50) == []
    assert ids(state=DENIED, now=T0) == ["R5"]
    assert ids(beneficiary="agent:two") == ["R2"] and ids(requester="agent:two") == ["R2"]
    assert ids(entitlement_id="other") == ["R3"] and ids(object="document:x") == ["R3"]
    assert ids(relation="editor") == ["R4"]
    assert ids(object_type="document") == ["R1", "R2", "R3", "R4", "R5"]
    assert ids(object_type="folder") == ["R6"]
    assert ids(object_type="docu") == [] and ids(object_type="docu_ent") == []
    assert ids(beneficiary_kind="agent") == ["R1", "R2", "R3", "R4", "R6"]
    assert ids(beneficiary_kind="human") == ["R5"]
    assert ids(state=ACTIVE, now=T0, object_type="document", beneficiary_kind="agent") == ["R4"]
    assert ids(approver="human:sam") == ["R3"]
    assert ids(approver="human:olga") == ["R1", "R2", "R4", "R5", "R6"]
    assert ids(approver="human:ol") == []
    # the state follows AccessRequest.state_at
    for r in st.list_access_requests(S).items:
        for at in (T0, T0 + 50, T0 + 100):
            assert r.id in ids(state=r.state_at(at), now=at), (r.id, at)

    got: list[str] = []
    token = None
    while True:
        page = st.list_access_requests(
            S, state=PENDING, now=T0, page_size=2, continuation_token=token
        )
        got += [a.id for a in page.items]
        token = page.continuation_token
        if token is None:
            break
    assert got == ["R1", "R2", "R3"]
    first = st.list_access_requests(S, page_size=1)
    assert first.continuation_token is not None
    with pytest.raises(InvalidContinuationToken):
        st.list_access_requests(
            S, state=PENDING, page_size=1, continuation_token=first.continuation_token
        )
    with pytest.raises(InvalidContinuationToken):
        st.list_access_requests(S, page_size=1, continuation_token="garbage")


def test_a_token_keeps_the_instant_of_the_first_page(storage_url: str) -> None:
    clock = FixedClock(T0)
    st = open_storage(storage_url, clock=clock)
    try:
        st.create_store("governance", store_id=S)
        _write(st, PolicyWrite(new_access_requests=[
            _req("R1", pending_until=T0 + 10), _req("R2", pending_until=T0 + 10),
            _req("R3", pending_until=T0 + 20),
        ]))  # fmt: skip
        # no `now`: the storage clock, T0 + 15 (R1, R2 ran out; R3 is still pending)
        clock.set(T0 + 15)
        page = st.list_access_requests(S, state=EXPIRED, page_size=1)
        assert [a.id for a in page.items] == ["R1"] and page.continuation_token is not None
        assert [a.id for a in st.list_access_requests(S, state=PENDING).items] == ["R3"]
        # R3 runs out meanwhile: the next page still answers as of T0 + 15
        clock.set(T0 + 30)
        rest = st.list_access_requests(
            S, state=EXPIRED, page_size=1, continuation_token=page.continuation_token
        )
        assert [a.id for a in rest.items] == ["R2"] and rest.continuation_token is None
        assert [a.id for a in st.list_access_requests(S, state=EXPIRED).items] == ["R1", "R2", "R3"]
    finally:
        st.delete_store(S)
        st.close()


def test_access_requests_due(st: Storage) -> None:
    _write(st, PolicyWrite(new_access_requests=[
        _req("R1", pending_until=T0 + 10),
        _req("R2", pending_until=T0 + 20),
        _req("R3", state=ACTIVE, grant_starts_at=T0, grant_expires_at=T0 + 15),
        _req("R4", state=ACTIVE, grant_starts_at=T0, grant_expires_at=None),
        _req("R5", state=DENIED, pending_until=T0),
        _req("R6", state=EXPIRED, pending_until=T0),
    ]))  # fmt: skip
    assert [a.id for a in st.access_requests_due(S, T0 + 9)] == []
    assert [a.id for a in st.access_requests_due(S, T0 + 15)] == ["R1", "R3"]
    assert [a.id for a in st.access_requests_due(S, T0 + 1e9)] == ["R1", "R2", "R3"]
    assert [a.id for a in st.access_requests_due(S, T0 + 1e9, limit=1)] == ["R1"]
    with pytest.raises(StoreNotFoundError):
        st.access_requests_due("nope", T0)


def test_delete_store_removes_governance_rows(st: Storage) -> None:
    _write(st, PolicyWrite(new_entitlements=[_ent("roadmap")], new_access_requests=[_req("R1")]))
    st.delete_store(S)
    st.create_store("again", store_id=S)
    assert st.get_entitlement(S, "roadmap") is None
    assert st.get_access_request(S, "R1") is None
    assert (
        st.list_access_requests(S).items == [] and st.read_policy_changes(S, 0).entitlements == ()
    )
    with pytest.raises(StoreNotFoundError):
        st.get_access_request("nope", "R1")


def test_records_state_at() -> None:
    r = _req("R1", pending_until=T0 + 10)
    assert r.state_at(T0) == PENDING and r.state_at(T0 + 10) == EXPIRED
    a = _activate(r, T0)
    assert a.state_at(T0 + 3599) == ACTIVE and a.state_at(T0 + 3600) == EXPIRED
    assert dataclasses.replace(a, state="revoked").state_at(T0 + 1e9) == "revoked"
    assert _req("R2", state=DENIED).state_at(T0 + 1e9) == DENIED
    assert a.resource == "access_request:R1"
    e = _ent("x", "document:*")
    assert e.covers("document:a") and not e.covers("document:*") and not e.covers("folder:a")
    assert _ent("y").covers("document:roadmap") and not _ent("y").covers("document:other")
    rule = ApprovalRule("r", "true", "route", ("human:olga",), 2)
    assert ApprovalRule.from_json(rule.to_json()) == rule
    f = ReviewFilter(object_type="document", user_kind="agent", unused_days=30)
    assert ReviewFilter.from_json(f.to_json()) == f
    assert ReviewCampaign(S, "C1", "n", f, "beneficiary_owners", "certify", "on_close", "open",
                          "admin", T0, None).resource == "review:C1"  # fmt: skip


_REVIEW_CAMPAIGN_COLS = (
    "store_id, id, name, filter, reviewer, default_decision, apply, state, created_by,"
    " created_at, due_at, closed_at, revision"
)
_REVIEW_ITEM_COLS = (
    "store_id, campaign_id, id, subject, relation, object, request_id, reviewers,"
    " last_used_at, decision, decided_by, decided_at, comment, outcome, applied_at, revision"
)
_TIME_COLS = {
    "created_at", "updated_at", "pending_until", "decided_at", "grant_starts_at",
    "grant_expires_at", "ended_at", "due_at", "closed_at", "last_used_at", "applied_at",
}  # fmt: skip


def test_migration_0011_has_the_same_columns_on_both_backends(storage: Storage) -> None:
    wanted = {
        "entitlements": ENTITLEMENT_COLS,
        "access_requests": ACCESS_REQUEST_COLS,
        "review_campaigns": _REVIEW_CAMPAIGN_COLS,
        "review_items": _REVIEW_ITEM_COLS,
    }

    def columns(cur: object, table: str) -> list[tuple[str, str, str | None]]:
        if type(storage).__name__ == "SQLiteStorage":
            rows = cur.execute(f"PRAGMA table_info({table})").fetchall()  # type: ignore[attr-defined]
            return [(r[1], r[2].lower(), None) for r in rows]
        cur.execute(  # type: ignore[attr-defined]
            "SELECT column_name, data_type, collation_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
        return [(r[0], r[1], r[2]) for r in cur.fetchall()]  # type: ignore[attr-defined]

    def read(cur: object) -> dict[str, list[tuple[str, str, str | None]]]:
        return {t: columns(cur, t) for t in (*wanted, "ledger_webhooks")}

    found = storage._read_tx(read)  # type: ignore[attr-defined]
    sqlite = type(storage).__name__ == "SQLiteStorage"
    for table, cols in wanted.items():
        names = [c.strip() for c in cols.split(",")]
        assert [c[0] for c in found[table]] == names, table
        for name, kind, collation in found[table]:
            if name in _TIME_COLS:  # float8 in PostgreSQL (a float4 would lose seconds)
                assert kind == ("real" if sqlite else "double precision"), (table, name, kind)
            if name in ("store_id", "id", "object", "relation", "beneficiary", "subject"):
                assert collation in (None, "C"), (table, name, collation)
    assert "event_types" in [c[0] for c in found["ledger_webhooks"]]

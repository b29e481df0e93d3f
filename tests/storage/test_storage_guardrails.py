"""Guardrail sets in storage (PolicyStore, migration 0007) on SQLite and PostgreSQL: each
put is a new version (old ones kept), bumps the store revision once, commits its ledger
event in the same transaction; reads by version, newest-first pagination, deletion."""

from __future__ import annotations

import threading

import pytest

from keyplane.errors import InvalidContinuationToken, StoreNotFoundError
from keyplane.ledger.chain import canonical_json
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.policy.records import Guardrail, GuardrailSet
from keyplane.storage import Storage

S = "grd"

R1 = (Guardrail("max-chain-2", "no chain longer than 2", "forbid", "chain_length > 2"),)
R2 = (
    *R1,
    Guardrail("pii", "", "require_approval", 'resource.type == "customer_pii"', enabled=False),
)


def _event(gset: GuardrailSet) -> list[tuple[LedgerEvent, str]]:
    ev = LedgerEvent(
        id=new_event_id(),
        time=1.0,
        store=S,
        type="guardrails.updated",
        caller="system",
        revision=gset.revision,
        details={"version": gset.version},
    )
    return [(ev, canonical_json(ev).decode("utf-8"))]


@pytest.fixture
def st(storage: Storage) -> Storage:
    storage.create_store("guardrails", store_id=S)
    return storage


def test_versions_count_up_and_old_ones_are_kept(st: Storage) -> None:
    assert st.get_guardrail_set(S) is None
    one = st.put_guardrail_set(S, R1, created_by="alice")
    assert (one.store_id, one.version, one.rules, one.created_by) == (S, 1, R1, "alice")
    assert one.revision == 1 == st.current_revision(S)
    two = st.put_guardrail_set(S, R2, created_by="bob")
    assert (two.version, two.revision) == (2, 2)
    empty = st.put_guardrail_set(S, (), created_by="bob")  # no rules is a version too
    assert (empty.version, empty.rules) == (3, ())
    assert st.get_guardrail_set(S) == empty
    assert st.get_guardrail_set(S, 1) == one
    assert st.get_guardrail_set(S, 2) == two
    got = st.get_guardrail_set(S, 2)
    assert got is not None and got.rules[1].enabled is False and got.rules[0].description
    assert st.get_guardrail_set(S, 4) is None
    # the latest set is what replicas read as a policy change
    changes = st.read_policy_changes(S, 2)
    assert changes.guardrail_set == empty and changes.revision == 3
    assert st.read_policy_changes(S, 3).guardrail_set is None


def test_the_ledger_event_commits_with_the_version(st: Storage) -> None:
    gset = st.put_guardrail_set(S, R1, created_by="alice", ledger_events=_event)
    [ev] = st.read_events(S)
    assert ev.type == "guardrails.updated"
    assert ev.revision == gset.revision and ev.details == {"version": 1}


def test_a_failing_event_rolls_the_version_back(st: Storage) -> None:
    def broken(gset: GuardrailSet) -> list[tuple[LedgerEvent, str]]:
        raise RuntimeError("no ledger")

    with pytest.raises(RuntimeError):
        st.put_guardrail_set(S, R1, created_by="alice", ledger_events=broken)
    assert st.get_guardrail_set(S) is None and st.current_revision(S) == 0
    assert st.put_guardrail_set(S, R1, created_by="alice").version == 1


def test_list_pages_newest_first(st: Storage) -> None:
    for i in range(5):
        st.put_guardrail_set(S, R1 if i % 2 else R2, created_by=f"u{i}")
    page = st.list_guardrail_sets(S, page_size=2)
    assert [g.version for g in page.items] == [5, 4] and page.continuation_token
    page2 = st.list_guardrail_sets(S, page_size=2, continuation_token=page.continuation_token)
    assert [g.version for g in page2.items] == [3, 2]
    page3 = st.list_guardrail_sets(S, page_size=2, continuation_token=page2.continuation_token)
    assert [g.version for g in page3.items] == [1] and page3.continuation_token is None
    assert page3.items[0].created_by == "u0" and page3.items[0].rules == R2
    with pytest.raises(InvalidContinuationToken):
        st.list_guardrail_sets(S, page_size=2, continuation_token="bogus")
    st.create_store("other", store_id="grd2")
    with pytest.raises(InvalidContinuationToken):  # a token of another store
        st.list_guardrail_sets("grd2", page_size=2, continuation_token=page.continuation_token)
    assert st.list_guardrail_sets("grd2").items == []


def test_concurrent_puts_get_distinct_versions(st: Storage) -> None:
    errors: list[BaseException] = []
    versions: list[int] = []
    lock = threading.Lock()

    def put() -> None:
        try:
            for _ in range(5):
                v = st.put_guardrail_set(S, R1, created_by="t").version
                with lock:
                    versions.append(v)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(versions) == list(range(1, 21))
    assert st.current_revision(S) == 20


def test_unknown_store_and_deletion(st: Storage) -> None:
    with pytest.raises(StoreNotFoundError):
        st.put_guardrail_set("nope", R1, created_by="a")
    with pytest.raises(StoreNotFoundError):
        st.get_guardrail_set("nope")
    with pytest.raises(StoreNotFoundError):
        st.list_guardrail_sets("nope")
    st.put_guardrail_set(S, R1, created_by="a")
    st.delete_store(S)
    st.create_store("again", store_id=S)
    assert st.get_guardrail_set(S) is None and st.list_guardrail_sets(S).items == []
    assert st.put_guardrail_set(S, R1, created_by="a").version == 1

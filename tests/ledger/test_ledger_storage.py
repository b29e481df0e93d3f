"""The LedgerStore contract on both backends: append, read, filters, heads, checkpoints, keys."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from ledger_helpers import make_event

from keyplane.ledger.chain import GENESIS_HASH, canonical_json, chain_hash, verify_stored
from keyplane.ledger.checkpoints import LedgerKeyring
from keyplane.ledger.events import EventFilter
from keyplane.storage import Storage, open_storage


def test_append_chains_events_per_store_in_one_call(storage: Storage) -> None:
    assert storage.ledger_head("s1") == (0, GENESIS_HASH)
    batch = [make_event(1, store="s1"), make_event(2, store="s2"), make_event(3, store="s1")]
    chained = storage.append_events(batch)
    assert [e.id for e in chained] == [e.id for e in batch]  # input order
    assert [(e.store, e.seq) for e in chained] == [("s1", 1), ("s2", 1), ("s1", 2)]
    a1, b1, a2 = chained
    assert a1.prev_hash == GENESIS_HASH and b1.prev_hash == GENESIS_HASH
    assert a2.prev_hash == a1.hash
    for e in chained:
        assert e.hash == chain_hash(e.prev_hash or "", canonical_json(e))
    assert storage.ledger_head("s1") == (2, a2.hash)
    assert storage.ledger_stores() == ["s1", "s2"]
    more = storage.append_events([make_event(4, store="s1")])
    assert more[0].seq == 3 and more[0].prev_hash == a2.hash
    # read back exactly as appended (rebuilt from the stored canonical body)
    assert storage.read_events("s1") == [a1, a2, more[0]]
    assert storage.read_events("s1", after_seq=1, limit=1) == [a2]
    assert storage.read_events("s1", descending=True, limit=2) == [more[0], a2]
    assert storage.read_events("s1", descending=True, after_seq=3) == [a2, a1]
    assert storage.read_events("nope") == []
    assert storage.append_events([]) == []


def test_append_refuses_chained_or_non_json_events_atomically(storage: Storage) -> None:
    (done,) = storage.append_events([make_event(1)])
    with pytest.raises(ValueError, match="already chained"):
        storage.append_events([done])
    with pytest.raises(ValueError, match="not JSON"):
        storage.append_events([make_event(2), make_event(3, details={"x": float("nan")})])
    assert storage.ledger_head("s1")[0] == 1  # nothing of the failed batch was appended
    assert len(storage.read_events("s1")) == 1


def test_read_events_filters(storage: Storage) -> None:
    events = [
        make_event(1, outcome="allow"),
        make_event(2, outcome="deny", subject="user:bob", purpose="billing"),
        make_event(3, type="tuples.written", outcome="ok", resource="document:x"),
        make_event(4, actor_chain=("agent:a_b%", "agent:z"), caller="key:K2"),
    ]
    storage.append_events(events)
    ids = [e.id for e in events]

    def found(**kw: object) -> list[str]:
        return [e.id for e in storage.read_events("s1", filters=EventFilter(**kw))]  # type: ignore[arg-type]

    assert found() == ids
    assert found(outcome="deny") == [ids[1]]
    assert found(subject="user:bob") == [ids[1]]
    assert found(purpose="billing") == [ids[1]]
    assert found(types=("tuples.written",)) == [ids[2]]
    assert found(types=("tuples.written", "decision.check")) == ids
    assert found(resource="document:x") == [ids[2]]
    assert found(action="viewer") == ids
    assert found(request_id="req-2") == [ids[1]]
    assert found(decision_id=ids[0]) == [ids[0]]
    assert found(since=1_800_000_002.0) == ids[1:]
    assert found(until=1_800_000_002.0) == ids[:1]
    # the actor matches the caller or any member of the chain, literally (no LIKE wildcards)
    assert found(actor="agent:a_b%") == [ids[3]]
    assert found(actor="agent:z") == [ids[3]]
    assert found(actor="key:K2") == [ids[3]]
    assert found(actor="agent:a") == []
    assert found(actor="agent:aXb%") == []
    assert storage.get_event_by_decision(ids[1]) == storage.read_events("s1")[1]
    assert storage.get_event_by_decision("missing") is None


def test_the_ledger_outlives_its_store(storage: Storage) -> None:
    storage.create_store("gone", store_id="gone")
    storage.append_events([make_event(1, store="gone")])
    storage.delete_store("gone")
    assert len(storage.read_events("gone")) == 1
    storage.create_store("again", store_id="gone")
    (e,) = storage.append_events([make_event(2, store="gone")])
    assert e.seq == 2  # the same chain continues
    assert verify_stored(storage, "gone").ok


def test_checkpoints_and_keys(storage: Storage, keyring: LedgerKeyring) -> None:
    (e,) = storage.append_events([make_event(1)])
    assert e.hash is not None
    cp = keyring.sign("s1", 1, e.hash, 5.0)
    storage.write_checkpoint(cp)
    storage.write_checkpoint(replace(cp, time=6.0))  # the same seq again: ignored
    assert storage.read_checkpoints("s1") == [cp]
    assert storage.read_checkpoints("s2") == []
    (rec,) = storage.ledger_keys("s1")
    assert rec.key_id == cp.key_id and len(rec.public_key) == 32
    storage.put_ledger_key("s1", rec.key_id, b"x" * 32, b"y", 0.0)  # existing: unchanged
    assert storage.ledger_keys("s1") == [rec]
    report = verify_stored(storage, "s1")
    assert report.ok and report.last_checkpoint_seq == 1 and report.unsigned_tail == 0


def test_concurrent_appenders_on_two_storages_make_one_chain(storage_url: str) -> None:
    """Threads appending through two storage instances (as two processes would, each with
    its own connections) to the same stores: one valid, gap-free chain per store."""
    st_a, st_b = open_storage(storage_url), open_storage(storage_url)
    errors: list[BaseException] = []

    def worker(st: Storage, k: int) -> None:
        try:
            for i in range(15):
                st.append_events(
                    [make_event(k * 100 + i, store="c1"), make_event(i, store=f"c{2 + k % 2}")]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(st_a if k % 2 else st_b, k)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert st_a.ledger_head("c1")[0] == 120
        assert st_b.ledger_head("c2")[0] + st_b.ledger_head("c3")[0] == 120
        for store in ("c1", "c2", "c3"):
            report = verify_stored(st_a, store)
            assert report.ok, report
            seqs = [e.seq for e in st_b.read_events(store, limit=1000)]
            assert seqs == list(range(1, len(seqs) + 1))
    finally:
        st_a.close()
        st_b.close()


def test_a_large_batch_with_awkward_values_round_trips(storage: Storage) -> None:
    """Large batches take the bulk path (COPY on PostgreSQL): tabs, newlines, backslashes,
    quotes, NUL-free unicode and NULLs must come back byte for byte."""
    awkward = 'tab\there\nnewline \\N back\\slash "quote" zoë 🎉'
    events = [
        make_event(
            i,
            subject=awkward if i % 2 else None,
            purpose=None if i % 3 else awkward,
            actor_chain=(awkward,) if i % 5 == 0 else (),
            details={"s": awkward, "n": None, "i": i},
        )
        for i in range(300)
    ]
    chained = storage.append_events(events)
    assert storage.read_events("s1", limit=1000) == chained
    assert [e.id for e in storage.read_events("s1", filters=EventFilter(actor=awkward))] == [
        e.id for e in events[::5]
    ]
    assert verify_stored(storage, "s1").ok


def test_appends_after_another_instance_or_a_rollback_chain_from_the_real_head(
    storage_url: str,
) -> None:
    """Each storage remembers the head it last wrote and moves it only from there: after
    another instance appended, or after its own transaction rolled back, it must chain from
    the head actually stored."""
    st_a, st_b = open_storage(storage_url), open_storage(storage_url)
    try:
        st_a.append_events([make_event(1, store="h")])
        st_b.append_events([make_event(2, store="h"), make_event(3, store="h")])
        [ev] = st_a.append_events([make_event(4, store="h")])  # a's memory is stale
        assert ev.seq == 4
        good = make_event(5, store="h")
        bad = make_event(6, store="z")  # chained after "h": rolls back h's new head with it
        with pytest.raises(ValueError):
            st_a.append_encoded(
                [(good, canonical_json(good).decode()), (bad, "not the canonical json")]
            )
        assert st_b.ledger_head("h")[0] == 4
        [ev] = st_a.append_events([make_event(7, store="h")])
        assert ev.seq == 5
        report = verify_stored(st_b, "h")
        assert report.ok and report.checked == 5, report
    finally:
        st_a.close()
        st_b.close()

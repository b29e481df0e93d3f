"""The LedgerWriter on real storage: sync durability, group commit, async back-pressure,
checkpoint cadence, failure reporting."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from ledger_helpers import Raw, make_event

from keyplane.errors import StorageError
from keyplane.ledger.chain import verify_stored
from keyplane.ledger.checkpoints import Checkpoint, LedgerKeyring
from keyplane.ledger.events import LedgerEvent
from keyplane.ledger.writer import LedgerWriter
from keyplane.storage import Storage, open_storage


def _wait_for(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def test_sync_record_returns_only_after_commit(storage: Storage, storage_url: str) -> None:
    writer = LedgerWriter(storage, mode="sync")
    raw = Raw(storage_url)
    try:
        for i in range(5):
            e = make_event(i)
            writer.record(e)
            # a separate connection sees the row the moment record() returns
            rows = raw.execute("SELECT seq FROM ledger_events WHERE id = ?", (e.id,))
            assert rows == [(i + 1,)]
    finally:
        raw.close()
        writer.close()
    stats = writer.stats()
    assert (stats.recorded, stats.committed, stats.pending, stats.lost) == (5, 5, 0, 0)


def test_group_commit_many_threads_few_transactions(tmp_path: Path) -> None:
    """32 threads record while the database is write-locked by another connection; when
    the lock goes, everything queued commits in a handful of transactions."""
    db = tmp_path / "g.db"
    storage = open_storage(f"sqlite:///{db}")
    writer = LedgerWriter(storage, mode="sync", max_batch=2000)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    n_threads, per_thread = 32, 20
    barrier = threading.Barrier(n_threads + 1)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        barrier.wait()
        try:
            for i in range(per_thread):
                writer.record(make_event(k * 1000 + i))
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    barrier.wait()
    _wait_for(lambda: writer.stats().recorded >= n_threads)  # each thread has one queued
    time.sleep(0.2)
    blocker.execute("ROLLBACK")
    blocker.close()
    for t in threads:
        t.join()
    writer.close()
    total = n_threads * per_thread
    stats = writer.stats()
    assert errors == []
    assert stats.committed == total
    # one transaction per record() would be 640; with group commit the 32 callers share
    # transactions (ideally per_thread of them, one per round: allow for a loaded machine)
    assert stats.transactions <= total // 4, stats
    assert verify_stored(storage, "s1").ok
    assert storage.ledger_head("s1")[0] == total
    storage.close()


def test_async_back_pressure_blocks_and_never_drops(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    storage = open_storage(f"sqlite:///{db}", busy_timeout=0.05, max_retries=1)
    writer = LedgerWriter(storage, mode="async", async_capacity=5, retry_delay=0.01)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # stall the writer: its transactions fail and retry
    done = threading.Event()

    def producer() -> None:
        for i in range(20):
            writer.record(make_event(i))
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    _wait_for(lambda: writer.stats().blocked >= 1)
    time.sleep(0.1)
    assert not done.is_set()  # record() is blocked: the queue is full
    stats = writer.stats()
    assert stats.pending <= 5 + 5  # the queue, plus the group stuck in its transaction
    assert stats.committed == 0
    _wait_for(lambda: writer.stats().failed_transactions >= 1)  # and it keeps retrying
    blocker.execute("ROLLBACK")
    blocker.close()
    t.join(10)
    assert done.is_set()
    assert writer.flush(10)
    writer.close()
    stats = writer.stats()
    assert (stats.recorded, stats.committed, stats.pending, stats.lost) == (20, 20, 0, 0)
    assert [e.subject for e in storage.read_events("s1", limit=100)] == [
        f"user:u{i}" for i in range(20)
    ]  # in order, none lost
    storage.close()


def test_sync_failure_raises_storage_error(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    storage = open_storage(f"sqlite:///{db}", busy_timeout=0.05, max_retries=1)
    writer = LedgerWriter(storage, mode="sync")
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match="could not record"):
            writer.record(make_event(1))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    writer.record(make_event(2))  # the writer carries on once the database is back
    writer.close()
    assert [e.subject for e in storage.read_events("s1")] == ["user:u2"]
    with pytest.raises(StorageError, match="closed"):
        writer.record(make_event(3))
    storage.close()


def test_an_event_that_is_not_json_fails_only_its_caller(storage: Storage) -> None:
    writer = LedgerWriter(storage)
    with pytest.raises(ValueError):
        writer.record(make_event(1, details={"x": object()}))
    writer.record(make_event(2))
    writer.close()
    assert len(storage.read_events("s1")) == 1


def test_checkpoint_every_n_events(storage: Storage, keyring: LedgerKeyring) -> None:
    writer = LedgerWriter(
        storage, checkpoint_every_events=10, checkpoint_every_seconds=0, signer=keyring
    )
    for i in range(25):
        writer.record(make_event(i))
    _wait_for(lambda: len(storage.read_checkpoints("s1")) >= 2)
    assert [c.seq for c in storage.read_checkpoints("s1")] == [10, 20]
    report = verify_stored(storage, "s1")
    assert report.ok and report.last_checkpoint_seq == 20 and report.unsigned_tail == 5
    writer.close()  # a clean close signs the tail
    assert [c.seq for c in storage.read_checkpoints("s1")] == [10, 20, 25]
    assert verify_stored(storage, "s1").unsigned_tail == 0
    assert writer.stats().checkpoints == 3


def test_checkpoint_after_t_seconds(storage: Storage, keyring: LedgerKeyring) -> None:
    writer = LedgerWriter(
        storage, checkpoint_every_events=1000, checkpoint_every_seconds=0.2, signer=keyring
    )
    try:
        writer.record(make_event(1))
        writer.record(make_event(2))
        assert storage.read_checkpoints("s1") == []
        _wait_for(lambda: len(storage.read_checkpoints("s1")) == 1, timeout=5)
        assert storage.read_checkpoints("s1")[0].seq == 2
        time.sleep(0.3)  # nothing new: no new checkpoint
        assert len(storage.read_checkpoints("s1")) == 1
    finally:
        writer.close()


def test_record_many_is_one_group(storage: Storage) -> None:
    writer = LedgerWriter(storage)
    writer.record_many([make_event(i, store=f"m{i % 2}") for i in range(6)])
    writer.close()
    assert writer.stats().transactions == 1
    assert storage.ledger_head("m0")[0] == 3 and storage.ledger_head("m1")[0] == 3


def test_two_writers_on_two_storages_share_one_chain(storage_url: str) -> None:
    """Two "processes" (separate storages and writers) recording concurrently."""
    stores = [open_storage(storage_url) for _ in range(2)]
    writers = [LedgerWriter(st) for st in stores]

    def worker(w: LedgerWriter, k: int) -> None:
        for i in range(25):
            w.record(make_event(k * 100 + i, store="shared"))

    threads = [threading.Thread(target=worker, args=(writers[k % 2], k)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    try:
        assert stores[0].ledger_head("shared")[0] == 200
        assert verify_stored(stores[1], "shared").ok
    finally:
        for st in stores:
            st.close()


class _BrokenStorage:
    """A storage that breaks the append contract (returns events unchained): the one
    case where the writer itself cannot go on. Callers must get an error, not hang."""

    def append_encoded(
        self, items: Sequence[tuple[LedgerEvent, str]]
    ) -> list[tuple[int, str, str]]:
        return []

    def write_checkpoint(self, checkpoint: Checkpoint) -> None:  # pragma: no cover
        raise AssertionError("not reached")


def test_a_writer_that_stops_fails_its_callers_instead_of_hanging() -> None:
    writer = LedgerWriter(_BrokenStorage())
    with pytest.raises(StorageError):
        writer.record(make_event(1))
    with pytest.raises(StorageError, match="closed"):
        writer.record(make_event(2))
    writer.close()


def test_async_close_while_the_database_stays_down_says_what_was_lost(tmp_path: Path) -> None:
    db = tmp_path / "down.db"
    storage = open_storage(f"sqlite:///{db}", busy_timeout=0.02, max_retries=0)
    writer = LedgerWriter(storage, mode="async", retry_delay=0.01)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        for i in range(3):
            writer.record(make_event(i))
        with pytest.raises(StorageError, match="3 ledger events could not be written"):
            writer.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    stats = writer.stats()
    assert (stats.recorded, stats.committed, stats.lost) == (3, 0, 3)
    storage.close()

"""Migrations on open, and many threads writing (and tailing) one store at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from keyplane.graph.tuples import Tuple, TupleChange
from keyplane.storage import Storage, open_storage
from keyplane.storage.migrate import load_migrations


def _migrations_applied(url: str) -> list[int]:
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url) as conn:
            return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    import sqlite3

    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def test_migrations_apply_once(storage_url: str) -> None:
    first = open_storage(storage_url)
    sid = first.create_store("s").id
    first.write(sid, writes=[Tuple("doc:1", "viewer", "user:a")])
    first.close()
    # opening again (twice at once, even) re-applies nothing and keeps the data
    second, third = open_storage(storage_url), open_storage(storage_url)
    try:
        assert second.current_revision(sid) == 1
        assert len(third.read_tuples(sid).items) == 1
    finally:
        second.close()
        third.close()
    expected = [
        m.version for m in load_migrations("postgres" if "postgres" in storage_url else "sqlite")
    ]
    assert _migrations_applied(storage_url) == expected


def test_concurrent_writers_get_unique_gap_free_revisions(storage: Storage) -> None:
    sid = storage.create_store("s").id
    threads, per_thread = 6, 20
    stop = threading.Event()
    tailed: list[TupleChange] = []

    def tailer() -> None:
        # tails while writers commit: must never skip a change committed "late"
        after = 0
        while True:
            done = stop.is_set()
            page = storage.read_changes(sid, after_revision=after, page_size=7)
            tailed.extend(page.changes)
            after = page.last_revision
            if done and not page.has_more:
                return

    def writer(n: int) -> list[int]:
        revs = []
        for i in range(per_thread):
            revs.append(
                storage.write(
                    sid,
                    writes=[
                        Tuple(f"doc:{n}-{i}", "viewer", "user:a"),
                        Tuple(f"doc:{n}-{i}", "editor", "user:a"),
                    ],
                )
            )
        return revs

    t = threading.Thread(target=tailer)
    t.start()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(writer, range(threads)))
    stop.set()
    t.join(timeout=60)
    assert not t.is_alive()

    revs = sorted(r for rs in results for r in rs)
    total = threads * per_thread
    assert revs == list(range(1, total + 1))
    assert all(rs == sorted(rs) for rs in results)  # each thread sees its revisions rise
    assert storage.current_revision(sid) == total
    log = storage.read_changes(sid, page_size=100_000).changes
    assert len(log) == 2 * total
    assert [c.revision for c in log] == sorted(c.revision for c in log)
    assert {c.revision for c in log} == set(range(1, total + 1))
    assert tailed == log
    assert len(storage.read_tuples(sid, page_size=10_000).items) == 2 * total


def test_concurrent_readers_and_writers_share_one_storage(storage: Storage) -> None:
    sid = storage.create_store("s").id
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                storage.write(sid, writes=[Tuple(f"doc:{n}", "r", f"user:{i}")])
                storage.read_tuples(sid, object=f"doc:{n}")
                _, it = storage.snapshot(sid)
                sum(1 for _ in it)
        except BaseException as exc:
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(n,)) for n in range(5)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    assert not errors
    assert storage.current_revision(sid) == 50


def test_two_instances_on_one_database_share_revisions(storage_url: str) -> None:
    # two Storage objects = two processes' worth of connections (own writer, own pool)
    a, b = open_storage(storage_url), open_storage(storage_url)
    try:
        sid = a.create_store("s").id

        def writer(st: Storage, tag: str) -> list[int]:
            return [
                st.write(sid, writes=[Tuple(f"doc:{tag}{i}", "viewer", "user:a")])
                for i in range(25)
            ]

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(writer, st, f"{n}-") for n, st in enumerate([a, b, a, b])]
            revs = sorted(r for f in futures for r in f.result())
        assert revs == list(range(1, 101))
        assert a.current_revision(sid) == b.current_revision(sid) == 100
        log = b.read_changes(sid, page_size=1000).changes
        assert [c.revision for c in log] == list(range(1, 101))
    finally:
        a.close()
        b.close()

"""The provenance ledger's cost and capacity (issue 4 §5) — printed, never asserted.

    make bench-ledger                       # SQLite and PostgreSQL, ~2 minutes
    python bench/ledger.py --no-postgres --seconds 2 --threads 1,8

For each backend (a fresh SQLite file; a fresh schema in ``KEYPLANE_BENCH_POSTGRES_URL``,
default ``postgresql://postgres@127.0.0.1:5432/test``, dropped at the end):

1. **durable events/s** — producer threads hand decision events to the ``LedgerWriter``
   (``sync``: each waits for its commit; ``async``: fire and forget, then one flush) for
   ``--seconds``; the rate counts committed events only (the async clock stops after the
   flush).
2. **checks with the ledger off / sync / async** — 1, then 32 threads (``--threads``) call
   ``Keyplane.check`` (the embedded API: service layer, authorization, the engine and, when
   on, the ledger) for ``--seconds`` each: throughput, p50 and p99 latency. "off" is the
   same service layer with a ledger that records nothing; "engine" is the bare engine call
   (``Engine.check`` under the graph lock), the floor.
3. **lost events** — every decision id a caller received is looked up in the ledger
   after the run (must be 0), and the chains are verified.

Targets from the issue: ≥ 20,000 durable events/s on SQLite; ledger-on throughput ≥ 70%
of ledger-off; p99 added ≤ 5 ms in sync mode.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

from keyplane.config import Settings
from keyplane.embedded import Keyplane
from keyplane.ledger.chain import verify
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.service.context import Services

PG_URL = os.environ.get("KEYPLANE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MODEL = """\
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type document
  relations
    define viewer: [user, group#member]
"""
USERS = 200
DOCS = 200


class NullLedger:
    """A ledger that records nothing: the "off" baseline."""

    def record(self, event: LedgerEvent) -> None:
        pass

    def record_many(self, events: Sequence[LedgerEvent]) -> None:
        pass

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        pass


@dataclass
class Row:
    label: str
    ops: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000


# ------------------------------------------------------------------------------ backends


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="kp-bench-ledger-") as d:
        yield f"sqlite:///{Path(d) / 'ledger.db'}"


@contextmanager
def postgres_url() -> Iterator[str]:
    import psycopg

    schema = f"kp_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in PG_URL else "?"
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def open_kp(url: str, mode: str, key_file: Path) -> Keyplane:
    settings = Settings(
        database_url=url,
        poll_interval=0.0,
        ledger_mode=mode,
        master_key_file=str(key_file),
    )
    return Keyplane(Services.open(settings))


def seed(kp: Keyplane) -> None:
    kp.create_store("bench", store_id="bench")
    kp.write_model(MODEL, store="bench")
    writes = [f"group:g{u % 10}#member@user:u{u}" for u in range(USERS)]
    writes += [f"document:d{d}#viewer@group:g{d % 10}#member" for d in range(DOCS)]
    for i in range(0, len(writes), 500):
        kp.write_tuples(writes[i : i + 500], store="bench")


# ------------------------------------------------------------------------------ 1. events/s


def event(i: int) -> LedgerEvent:
    eid = new_event_id()
    return LedgerEvent(
        id=eid,
        time=time.time(),
        store="bench",
        type="decision.check",
        caller="key:01BENCH",
        subject=f"user:u{i % USERS}",
        action="viewer",
        resource=f"document:d{i % DOCS}",
        outcome="allow",
        model_id="01MODEL",
        revision=1,
        request_id=eid,
        decision_id=eid,
    )


def durable_events(kp: Keyplane, mode: str, threads: int, seconds: float) -> Row:
    ledger = kp.services.ledger
    stop = time.perf_counter() + seconds
    counts = [0] * threads

    def produce(t: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            if mode == "sync":
                ledger.record(event(n))
                n += 1
            else:  # async producers hand over small groups, as a busy server's requests do
                ledger.record_many([event(n + j) for j in range(16)])
                n += 16
        counts[t] = n

    start = time.perf_counter()
    run_threads(threads, produce)
    ledger.flush()
    elapsed = time.perf_counter() - start
    return Row(f"ledger writer, {mode}, {threads} producers", sum(counts), elapsed, [])


# ------------------------------------------------------------------------------ 2. checks


def run_threads(n: int, fn: Callable[[int], None]) -> None:
    ts = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def checks(
    label: str, ask: Callable[[str, str], str], threads: int, seconds: float, ids: list[str]
) -> Row:
    lats: list[list[float]] = [[] for _ in range(threads)]
    got: list[list[str]] = [[] for _ in range(threads)]
    stop = time.perf_counter() + seconds

    def worker(t: int) -> None:
        i = t
        lat, mine = lats[t], got[t]
        clock = time.perf_counter
        while True:
            t0 = clock()
            if t0 >= stop:
                return
            mine.append(ask(f"user:u{i % USERS}", f"document:d{(i * 7) % DOCS}"))
            lat.append(clock() - t0)
            i += threads

    start = time.perf_counter()
    run_threads(threads, worker)
    elapsed = time.perf_counter() - start
    for g in got:
        ids.extend(d for d in g if d)
    all_lat = [x for lat in lats for x in lat]
    return Row(label, len(all_lat), elapsed, all_lat)


def lost(svc: Services, ids: Sequence[str]) -> int:
    seen: set[str] = set()
    after = 0
    while True:
        page = svc.storage.read_events("bench", after_seq=after, limit=5000)
        if not page:
            break
        seen.update(e.decision_id for e in page if e.decision_id)
        after = page[-1].seq or after
    return sum(1 for d in ids if d not in seen)


def verified(svc: Services) -> str:
    out = []
    for store in svc.storage.ledger_stores():
        events: list[LedgerEvent] = []
        after = 0
        while True:
            page = svc.storage.read_events(store, after_seq=after, limit=5000)
            if not page:
                break
            events.extend(page)
            after = page[-1].seq or after
        keys = {k.key_id: k.public_key for k in svc.storage.ledger_keys(store)}
        report = verify(events, svc.storage.read_checkpoints(store), keys)
        out.append(f"{store}: {'ok' if report.ok else report.first_problem} ({report.checked})")
    return "; ".join(out)


def engine_ask(svc: Services) -> Callable[[str, str], str]:
    engine, graph = svc.graphs.engine("bench", None)

    def ask(user: str, obj: str) -> str:
        with graph.lock:
            engine.check(user, "viewer", obj)
        return ""

    return ask


def service_ask(kp: Keyplane) -> Callable[[str, str], str]:
    def ask(user: str, obj: str) -> str:
        return kp.check(user, "viewer", obj, store="bench").decision_id

    return ask


def check_table(url: str, key_file: Path, threads: int, seconds: float) -> None:
    results: dict[str, Row] = {}
    received: dict[str, list[str]] = {}
    missing: dict[str, int] = {}
    for mode in ("engine", "off", "sync", "async"):
        ids: list[str] = []
        with open_kp(url, "async" if mode == "async" else "sync", key_file) as kp:
            svc = kp.services
            if mode in ("engine", "off"):
                kp = Keyplane(replace(svc, ledger=NullLedger()))  # type: ignore[arg-type]
            kp.check("user:u0", "viewer", "document:d0", store="bench")  # warm the graph
            ask = engine_ask(svc) if mode == "engine" else service_ask(kp)
            results[mode] = checks(mode, ask, threads, seconds, ids)
            received[mode] = ids
        if mode in ("sync", "async"):
            with open_kp(url, "sync", key_file) as kp2:  # a fresh process's view, after close
                missing[mode] = lost(kp2.services, ids)
    off = results["off"]
    print(f"checks, {threads} thread(s), {seconds:.0f}s each (Keyplane.check; engine = the floor)")
    print(f"  {'ledger':<8} {'checks/s':>10} {'vs off':>7} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6}")
    for mode, r in results.items():
        print(
            f"  {mode:<8} {r.rate:>10,.0f} {r.rate / off.rate:>6.0%} {r.pct(0.50):>8.3f} "
            f"{r.pct(0.99):>8.3f} {missing.get(mode, '-'):>6}"
        )
    for mode in ("sync", "async"):
        r = results[mode]
        print(
            f"  {mode}: p99 added vs off {r.pct(0.99) - off.pct(0.99):+.3f} ms; "
            f"lost events: {missing[mode]} of {len(received[mode]):,} decision ids received"
        )


# ------------------------------------------------------------------------------ a backend


def bench_backend(name: str, url: str, args: argparse.Namespace, key_file: Path) -> None:
    print(f"\n== {name} ==")
    rows: list[Row] = []
    with open_kp(url, "sync", key_file) as kp:
        seed(kp)
    for mode in ("sync", "async"):
        with open_kp(url, mode, key_file) as kp:
            rows.append(durable_events(kp, mode, args.producers, args.seconds))
    print("durable events per second (committed; target >= 20,000 on SQLite)")
    for r in rows:
        print(f"  {r.label:<40} {r.rate:>10,.0f} /s   ({r.ops:,} events in {r.seconds:.1f}s)")

    for threads in args.threads:
        check_table(url, key_file, threads, args.seconds)
    with open_kp(url, "sync", key_file) as kp:
        print(f"chains verify: {verified(kp.services)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    p.add_argument(
        "--threads",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 32],
        help="checking threads, comma-separated runs (default 1,32)",
    )
    p.add_argument("--producers", type=int, default=32, help="event-producing threads")
    p.add_argument("--no-postgres", action="store_true")
    args = p.parse_args(argv)
    print(f"keyplane ledger benchmark — {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="kp-bench-key-") as d:
        key_file = Path(d) / "keyplane.key"
        with sqlite_url() as url:
            bench_backend("SQLite", url, args, key_file)
        if not args.no_postgres:
            try:
                cm = postgres_url()
                url = cm.__enter__()
            except Exception as exc:  # a missing server is a row, not a crash
                print(f"\n== PostgreSQL ==\n  no PostgreSQL at {PG_URL}: {exc}")
            else:
                try:
                    bench_backend("PostgreSQL", url, args, key_file)
                finally:
                    cm.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

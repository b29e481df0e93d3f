"""Keyplane's speed beside Cedar and a hand-written floor, on one synthetic organisation.

    python bench/run.py            # ~1M tuples (several minutes)
    python bench/run.py --small    # ~80k tuples (well under 2 minutes)

Prints ONE table (metric, Keyplane, Cedar, floor, ratios, target) and writes
``bench/results/latest.json``. Figures are printed, never asserted: nothing here fails on
time. See ``bench/README.md`` for what each figure measures and how to read the ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import floor as floor_mod
import gen
from keyplane_side import NOT_YET, Keyplane, Missing, guarded
from measure import Latency, Result, latencies, rss_bytes, throughput_rounds, timed

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SMALL_TUPLES = 80_000
FULL_TUPLES = 1_000_000
PG_URL = os.environ.get("KEYPLANE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 100  # checks per batch call, tuples per storage write

Triple = tuple[str, str, str]


# --------------------------------------------------------------------------- the table


@dataclass
class Row:
    label: str
    unit: str
    better: str  # "low" or "high"
    kp: Result = field(default_factory=Result.na)
    cedar: Result = field(default_factory=Result.na)
    floor: Result = field(default_factory=Result.na)
    target: str = ""
    met: Callable[[Row], bool | None] | None = None


def _fmt(r: Result, unit: str) -> str:
    if r.value is None:
        return r.note if r.note and r.note != "n/a" else "n/a"
    v = r.value
    if unit in ("checks/s", "tuples/s"):
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _ratio(a: Result, b: Result) -> str:
    if a.value is None or b.value is None or not b.value:
        return "-"
    return f"{a.value / b.value:.2f}x"


def print_table(rows: Sequence[Row], title: str) -> str:
    header = ("metric", "Keyplane", "Cedar", "floor", "KP/Cedar", "KP/floor", "target")
    body = []
    for r in rows:
        met = r.met(r) if r.met else None
        verdict = "" if met is None else ("  ok" if met else "  MISS")
        arrow = "↓" if r.better == "low" else "↑"
        body.append(
            (
                f"{r.label} ({r.unit}) {arrow}",
                _fmt(r.kp, r.unit),
                _fmt(r.cedar, r.unit),
                _fmt(r.floor, r.unit),
                _ratio(r.kp, r.cedar),
                _ratio(r.kp, r.floor),
                f"{r.target}{verdict}" if r.target else "",
            )
        )
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = [title, line]
    out.append(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    out.append(line)
    for b in body:
        out.append(
            "  ".join(
                c.ljust(w) if i in (0, 6) else c.rjust(w)
                for i, (c, w) in enumerate(zip(b, widths, strict=True))
            )
        )
    out.append(line)
    text = "\n".join(out)
    print(text)
    return text


# ------------------------------------------------------------------------ workloads


def check_sample(
    fl: floor_mod.Floor, org: gen.Org, n: int, rng: random.Random
) -> list[tuple[str, str, bool]]:
    """``n`` viewer checks on random users and documents, half allowed and half denied."""
    users = org.users[:-2]  # the two benchmark users are measured by list objects
    allowed: list[tuple[str, str, bool]] = []
    while len(allowed) < n // 2:
        u = rng.choice(users)
        vis = sorted(fl.list_viewable(u))  # sorted: set order depends on the hash seed
        allowed += [(u, d, True) for d in rng.sample(vis, min(len(vis), 10))]
    denied: list[tuple[str, str, bool]] = []
    while len(denied) < n - len(allowed[: n // 2]):
        u, d = rng.choice(users), rng.choice(org.documents)
        if not fl.can_view(u, d):
            denied.append((u, d, False))
    sample = allowed[: n // 2] + denied
    rng.shuffle(sample)
    return sample


def write_batches(org: gen.Org, count: int, rng: random.Random, tag: str) -> list[list[Triple]]:
    """``count`` batches of ``BATCH`` new tuples: documents with a parent and three grants."""
    batches = []
    for b in range(count):
        batch: list[Triple] = []
        for k in range(BATCH // 4):
            d = f"document:w{tag}-{b}-{k}"
            batch.append((d, "parent", rng.choice(org.folders)))
            batch.append((d, "viewer", rng.choice(org.users)))
            batch.append((d, "editor", rng.choice(org.users)))
            batch.append((d, "viewer", f"{rng.choice(org.groups)}#member"))
        batches.append(batch)
    return batches


def best_time(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t, out = timed(fn)
        best = min(best, t)
    return best, out


def profile(loop: Callable[[], Any], what: str, top: int = 15) -> None:
    """Print the functions ``loop`` spends its own time in (cProfile, by tottime)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    loop()
    prof.disable()
    print(f"\n--- cProfile: {what} (profiled run, slower than the timed one) ---")
    pstats.Stats(prof, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(top)


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------- memory probes


def probe(kind: str, args: argparse.Namespace) -> None:
    """Run in a fresh subprocess: RSS growth while ONE engine builds its graph."""
    scale = gen.Scale.for_tuples(args.tuples, seed=args.seed)
    gc.collect()
    if kind == "floor":
        before = rss_bytes()
        org = gen.Org()
        graph: Any = floor_mod.Floor.build(gen.generate(scale, org))
        count = org.tuples
    elif kind == "cedar":
        import cedar

        org = gen.Org()
        text, _ = cedar.entities_json(gen.generate(scale, org))
        count = org.tuples
        gc.collect()
        before = rss_bytes()
        graph = cedar.CedarGraph(text)
    else:
        kp = Keyplane(gen.MODEL_DSL)
        storage = kp.open_storage(f"sqlite:///{args.db}")
        kp.compiled()
        gc.collect()
        before = rss_bytes()
        graph = kp.load(storage, args.store)
        count = args.count
    gc.collect()
    after = rss_bytes()
    print(json.dumps({"bytes": after - before, "tuples": count, "alive": graph is not None}))


def run_probe(kind: str, args: argparse.Namespace, **extra: Any) -> Result:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", kind]
    cmd += ["--tuples", str(args.tuples), "--seed", str(args.seed)]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        if "Missing" in p.stderr:
            return Result.na(NOT_YET)
        print(f"  memory probe {kind} failed: {tail}")
        return Result.na("error")
    data = json.loads(p.stdout.strip().splitlines()[-1])
    return Result(data["bytes"] / data["tuples"])


# ----------------------------------------------------------------------------- main


def timed_by_outcome(
    call: Callable[..., Any],
    args: Sequence[tuple[Any, ...]],
    sample: Sequence[tuple[str, str, bool]],
) -> tuple[Latency, float, float]:
    """Latency over the whole sample, and p50 over its allowed and its denied halves."""
    lat = latencies(call, args)
    allowed = [a for a, s in zip(args, sample, strict=True) if s[2]]
    denied = [a for a, s in zip(args, sample, strict=True) if not s[2]]
    return lat, latencies(call, allowed).p50_us, latencies(call, denied).p50_us


def set_latency(rows: dict[str, Row], col: str, got: tuple[Latency, float, float]) -> None:
    lat, allowed, denied = got
    setattr(rows["p50"], col, Result(lat.p50_us))
    setattr(rows["p99"], col, Result(lat.p99_us))
    setattr(rows["p50_allow"], col, Result(allowed))
    setattr(rows["p50_deny"], col, Result(denied))


def make_rows(n_tuples: int, narrow: int, wide: int) -> dict[str, Row]:
    def kp_at_most(limit: float, scale: float = 1.0) -> Callable[[Row], bool | None]:
        return lambda x: None if x.kp.value is None else x.kp.value * scale <= limit

    def cps_met(x: Row) -> bool | None:
        if x.kp.value is None or x.cedar.value is None or x.floor.value is None:
            return None
        return x.kp.value >= 5 * x.cedar.value and x.kp.value >= x.floor.value / 3

    per_1m = 1e6 / n_tuples
    return {
        "load_sqlite": Row(
            "load graph from SQLite",
            "s",
            "low",
            target="≤ 15 s per 1M",
            met=kp_at_most(15, per_1m),
        ),
        "load_pg": Row("load graph from PostgreSQL", "s", "low"),
        "build": Row("build graph from memory", "s", "low"),
        "mem": Row(
            "memory per tuple, RSS delta", "B", "low", target="≤ 400 B", met=kp_at_most(400)
        ),
        "p50": Row("check p50", "µs", "low", target="≤ 15 µs", met=kp_at_most(15)),
        "p99": Row("check p99", "µs", "low", target="≤ 100 µs", met=kp_at_most(100)),
        "p50_allow": Row("check p50, allowed", "µs", "low"),
        "p50_deny": Row("check p50, denied", "µs", "low"),
        "p50_cold": Row("check p50, cold caches, 1 pass", "µs", "low"),
        "cps": Row(
            "checks/s, one thread", "checks/s", "high", target="≥ 5x Cedar, ≥ floor/3", met=cps_met
        ),
        "batch": Row(f"batch check ({BATCH}/call)", "checks/s", "high"),
        "list_narrow": Row(
            f"list objects, {narrow:,} visible", "ms", "low", target="≤ 20 ms", met=kp_at_most(20)
        ),
        "list_wide": Row(f"list objects, {wide:,} visible", "ms", "low"),
        "write_sqlite": Row(f"write SQLite, {BATCH} tuples/write", "tuples/s", "high"),
        "write_pg": Row(f"write PostgreSQL, {BATCH} tuples/write", "tuples/s", "high"),
        "bulk_sqlite": Row("bulk load into SQLite", "tuples/s", "high"),
        "bulk_pg": Row("bulk load into PostgreSQL", "tuples/s", "high"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help=f"~{SMALL_TUPLES:,} tuples")
    ap.add_argument("--tuples", type=int, default=None, help="tuple budget (default ~1M)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--checks", type=int, default=None, help="checks in the random sample")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of Keyplane checks")
    ap.add_argument("--probe", choices=("floor", "cedar", "keyplane"), help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.tuples is None:
        args.tuples = SMALL_TUPLES if args.small else FULL_TUPLES
    if args.probe:
        probe(args.probe, args)
        return
    n_checks = args.checks or (20_000 if args.tuples <= 200_000 else 50_000)
    rng = random.Random(args.seed)
    started = time.time()
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    # ---- the organisation, the floor and the check sample
    scale = gen.Scale.for_tuples(args.tuples, seed=args.seed)
    org = gen.Org()
    t_gen, triples = timed(lambda: list(gen.generate(scale, org)))
    n_tuples = len(triples)
    say(
        f"generated {n_tuples:,} tuples in {t_gen:.1f}s: {len(org.users):,} users, "
        f"{len(org.groups):,} groups, {len(org.folders):,} folders, "
        f"{len(org.documents):,} documents"
    )
    t_floor, fl = timed(lambda: floor_mod.Floor.build(triples))
    narrow_vis = fl.list_viewable(gen.NARROW_USER)
    wide_vis = fl.list_viewable(gen.WIDE_USER)
    sample = check_sample(fl, org, n_checks, rng)
    pairs = [(u, d) for u, d, _ in sample]
    kp_args = [(u, "viewer", d) for u, d, _ in sample]
    say(
        f"{len(sample):,} checks (half allowed); {gen.NARROW_USER} sees {len(narrow_vis):,} "
        f"documents, {gen.WIDE_USER} sees {len(wide_vis):,}"
    )
    r = make_rows(n_tuples, len(narrow_vis), len(wide_vis))
    rates: dict[str, Callable[[], Any]] = {}  # throughput loops, timed interleaved later

    # ---- floor
    say("floor: checks and list objects")
    r["build"].floor = Result(t_floor)
    can_view = fl.can_view
    set_latency(r, "floor", timed_by_outcome(can_view, pairs, sample))

    def floor_all() -> None:
        for u, d in pairs:
            can_view(u, d)

    rates["floor"] = floor_all
    r["list_narrow"].floor = Result(best_time(lambda: fl.list_viewable(gen.NARROW_USER))[0] * 1000)
    r["list_wide"].floor = Result(best_time(lambda: fl.list_viewable(gen.WIDE_USER))[0] * 1000)

    # ---- Cedar
    cedar_answers: list[bool] | None = None
    try:
        import cedar
    except ImportError as exc:
        print(f"  [cedar] not installed ({exc}): pip install -e '.[bench]'")
    else:
        say("cedar: entities, checks")
        report["cedarpy"] = _version("cedarpy")
        t_json, (text, n_ent) = timed(lambda: cedar.entities_json(triples))
        report["cedar_entities_json_s"] = t_json
        report["cedar_entities"] = n_ent
        t_parse, cg = timed(lambda: cedar.CedarGraph(text))
        del text
        r["build"].cedar = Result(t_parse)
        reqs = [cedar.CedarGraph.request(u, d) for u, d in pairs]
        set_latency(r, "cedar", timed_by_outcome(cg.check, [(q,) for q in reqs], sample))
        chunks = [reqs[i : i + BATCH] for i in range(0, len(reqs), BATCH)]
        cedar_answers = [a for c in chunks for a in cg.batch(c)]
        cedar_check, cedar_batch = cg.check, cg.batch

        def cedar_batches() -> None:
            for c in chunks:
                cedar_batch(c)

        def cedar_singles() -> None:
            for q in reqs:
                cedar_check(q)

        rates["cedar_batch"] = cedar_batches
        rates["cedar_single"] = cedar_singles
        del cg

    # ---- Keyplane on SQLite: bulk load, graph load, checks, list objects
    kp = Keyplane(gen.MODEL_DSL)
    tmp = Path(tempfile.mkdtemp(prefix="keyplane-bench-"))
    kp_answers: list[bool] | None = None
    kp_lists: dict[str, set[str]] = {}
    try:
        sq = SQLiteSide(kp, tmp / "bench.db")
        say("keyplane: SQLite bulk load and graph load")
        r["bulk_sqlite"].kp = guarded("bulk load SQLite", lambda: sq.bulk(triples))
        r["load_sqlite"].kp = guarded("load from SQLite", sq.load)
        r["build"].kp = guarded("build from memory", sq.build_from_memory)
        guarded("engine", sq.engine)
        gc.collect()
        if kp.engine is not None:
            say("keyplane: checks, list objects")

        def kp_agreement() -> list[bool]:
            check = kp.check_fn()
            return [bool(check(*a)) for a in kp_args]

        def kp_latency() -> Result:
            set_latency(r, "kp", timed_by_outcome(kp.check_fn(), kp_args, sample))
            return r["p50"].kp

        def kp_cold() -> Result:
            # before anything else has warmed a cache: one pass, no warm-up, a new engine
            return Result(latencies(kp.cold_check_fn(), kp_args, passes=1, warmup=0).p50_us)

        r["p50_cold"].kp = guarded("cold check latency", kp_cold)
        kp_answers = guarded_value("agreement", kp_agreement)
        guarded("check latency", kp_latency)

        def kp_rates() -> Result:
            check = kp.check_fn()

            def kp_all() -> None:
                for a in kp_args:
                    check(*a)

            rates["keyplane"] = kp_all
            batch = kp.batch_fn()
            items = kp.batch_items(kp_args)
            kchunks = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
            if [a for c in kchunks for a in batch(c)] != kp_answers:
                print("!!! WARNING: keyplane batch_check and check disagree")

            def kp_batches() -> None:
                for c in kchunks:
                    batch(c)

            rates["keyplane_batch"] = kp_batches
            return Result(0)

        guarded("checks/s", kp_rates)
        if args.profile and "keyplane" in rates:
            profile(rates["keyplane"], "Keyplane check loop over the sample")

        def kp_list(user: str) -> Result:
            lo = kp.list_fn()
            t, got = best_time(lambda: lo(user))
            kp_lists[user] = got
            return Result(t * 1000)

        r["list_narrow"].kp = guarded("list objects narrow", lambda: kp_list(gen.NARROW_USER))
        r["list_wide"].kp = guarded("list objects wide", lambda: kp_list(gen.WIDE_USER))
        if args.profile and gen.WIDE_USER in kp_lists:
            lister = kp.list_fn()
            profile(lambda: lister(gen.WIDE_USER), f"Keyplane list objects for {gen.WIDE_USER}")

        # ---- throughput, interleaved so that a noisy neighbour slows every engine alike
        say(f"throughput: {args.rounds} interleaved rounds of {', '.join(rates)}")
        best = throughput_rounds(rates, len(sample), rounds=args.rounds)
        na = Result.na(NOT_YET)
        r["cps"].floor = Result(best.get("floor"))
        r["cps"].cedar = r["batch"].cedar = Result(best.get("cedar_batch"))
        r["cps"].kp = Result(best["keyplane"]) if "keyplane" in best else na
        r["batch"].kp = Result(best["keyplane_batch"]) if "keyplane_batch" in best else na
        report["cedar_single_call_checks_per_s"] = best.get("cedar_single")
        rates.clear()  # frees Cedar's entities
        gc.collect()

        say("keyplane: SQLite writes")
        r["write_sqlite"].kp = guarded("write SQLite", lambda: sq.writes(org, rng))
        say("memory probes (subprocesses)")
        if sq.store is not None:
            r["mem"].kp = run_probe("keyplane", args, db=sq.db, store=sq.store, count=n_tuples)
        else:
            r["mem"].kp = Result.na(NOT_YET)
        sq.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r["mem"].floor = run_probe("floor", args)
    if cedar_answers is not None:
        r["mem"].cedar = run_probe("cedar", args)
    kp.engine = kp.index = None
    gc.collect()

    # ---- Keyplane on PostgreSQL
    if args.no_postgres:
        for k in ("load_pg", "write_pg", "bulk_pg"):
            r[k].kp = Result.na("skipped")
    else:
        say("keyplane: PostgreSQL bulk load, graph load, writes")
        _postgres(kp, triples, org, rng, r)

    # ---- agreement, the table, the JSON
    print()
    report["agreement"] = _agreement(
        sample, cedar_answers, kp_answers, kp_lists, narrow_vis, wide_vis
    )
    size = "--small" if args.small else f"--tuples {args.tuples:,}"
    title = (
        f"Keyplane bench — {n_tuples:,} tuples ({size}), {len(sample):,} checks, "
        f"seed {args.seed}, Python {platform.python_version()}, "
        f"cedarpy {report.get('cedarpy', '-')}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print()
    table = print_table(list(r.values()), title)
    print(
        "ratios are Keyplane ÷ reference: below 1x is better for ↓ rows (time, memory), "
        "above 1x is better for ↑ rows (rates)."
    )
    print(f"total {time.time() - started:.0f}s")
    RESULTS.mkdir(exist_ok=True)
    report.update(
        tuples=n_tuples,
        seed=args.seed,
        checks=len(sample),
        narrow_visible=len(narrow_vis),
        wide_visible=len(wide_vis),
        figures={
            k: {
                "label": v.label,
                "unit": v.unit,
                "keyplane": v.kp.value,
                "cedar": v.cedar.value,
                "floor": v.floor.value,
            }
            for k, v in r.items()
        },
        table=table,
    )
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / 'latest.json'}")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def guarded_value(label: str, fn: Callable[[], Any]) -> Any:
    """Like :func:`guarded`, for a step that returns a value (``None`` if it could not run)."""
    box: list[Any] = []

    def run() -> Result:
        box.append(fn())
        return Result(0)

    guarded(label, run)
    return box[0] if box else None


class SQLiteSide:
    """Keyplane's graph in a fresh SQLite file: the store, its load, its writes."""

    def __init__(self, kp: Keyplane, db: Path) -> None:
        self.kp = kp
        self.db = db
        self.url = f"sqlite:///{db}"
        self.storage: Any = None
        self.store: str | None = None

    def bulk(self, triples: list[Triple]) -> Result:
        self.storage = self.kp.open_storage(self.url)
        store = self.kp.create_store(self.storage, "bench")
        t, _ = timed(lambda: self.kp.bulk_load(self.storage, store, triples))
        self.store = store
        return Result(len(triples) / t)

    def _store(self) -> str:
        if self.store is None:
            raise Missing("a SQLite store holding the graph")
        return self.store

    def load(self) -> Result:
        store = self._store()
        gc.collect()
        t, index = timed(lambda: self.kp.load(self.kp.open_storage(self.url), store))
        self.kp.index = index
        return Result(t)

    def build_from_memory(self) -> Result:
        _, rows_it = self.storage.snapshot_rows(self._store())
        rows = list(rows_it)
        gc.collect()
        t, _ = timed(lambda: self.kp.new_index().load_rows(rows))
        return Result(t)

    def engine(self) -> Result:
        if self.kp.index is None:
            raise Missing("a graph loaded from SQLite")
        self.kp.make_engine(self.kp.index)
        return Result(0)

    def writes(self, org: gen.Org, rng: random.Random) -> Result:
        count = 50 if len(org.documents) < 60_000 else 100
        batches = write_batches(org, count, rng, "s")
        t = self.kp.write_batches(self.storage, self._store(), batches)
        return Result(sum(map(len, batches)) / t)

    def close(self) -> None:
        if self.storage is not None:
            self.storage.close()


def _postgres(
    kp: Keyplane, triples: list[Triple], org: gen.Org, rng: random.Random, r: dict[str, Row]
) -> None:
    """Bulk load, graph load and writes on PostgreSQL, in a schema of its own, dropped after."""
    keys = ("load_pg", "write_pg", "bulk_pg")
    try:
        import psycopg
    except ImportError:
        for k in keys:
            r[k].kp = Result.na("no psycopg")
        return
    schema = f"keyplane_bench_{os.getpid()}"
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except Exception as exc:
        print(f"  [keyplane] PostgreSQL at {PG_URL} unavailable: {exc}")
        for k in keys:
            r[k].kp = Result.na("no PostgreSQL")
        return
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    storage: Any = None
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            storage = kp.open_storage(url)
        except (Missing, ImportError) as exc:
            print(f"  [keyplane] PostgreSQL storage: {NOT_YET} ({exc})")
            for k in keys:
                r[k].kp = Result.na(NOT_YET)
            return
        store: list[str] = []

        def bulk() -> Result:
            store.append(kp.create_store(storage, "bench"))
            t, _ = timed(lambda: kp.bulk_load(storage, store[0], triples))
            return Result(len(triples) / t)

        def load() -> Result:
            if not store:
                raise Missing("a PostgreSQL store holding the graph")
            gc.collect()
            t, index = timed(lambda: kp.load(kp.open_storage(url), store[0]))
            del index
            return Result(t)

        def writes() -> Result:
            if not store:
                raise Missing("a PostgreSQL store holding the graph")
            count = 50 if len(org.documents) < 60_000 else 100
            batches = write_batches(org, count, rng, "p")
            t = kp.write_batches(storage, store[0], batches)
            return Result(sum(map(len, batches)) / t)

        r["bulk_pg"].kp = guarded("bulk load PostgreSQL", bulk)
        r["load_pg"].kp = guarded("load from PostgreSQL", load)
        gc.collect()
        r["write_pg"].kp = guarded("write PostgreSQL", writes)
    finally:
        if storage is not None:
            storage.close()
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # leave nothing behind
        admin.close()


def _agreement(
    sample: list[tuple[str, str, bool]],
    cedar_answers: list[bool] | None,
    kp_answers: list[bool] | None,
    kp_lists: dict[str, set[str]],
    narrow_vis: set[str],
    wide_vis: set[str],
) -> dict[str, Any]:
    """Floor, Cedar and Keyplane must give the same answers; a disagreement is loud."""
    truth = [s[2] for s in sample]
    out: dict[str, Any] = {}
    for name, answers in (("cedar", cedar_answers), ("keyplane", kp_answers)):
        if answers is None:
            print(f"agreement: {name} n/a")
            continue
        bad = [i for i, (a, b) in enumerate(zip(answers, truth, strict=True)) if a != b]
        out[name] = {"agree": len(truth) - len(bad), "of": len(truth)}
        print(
            f"agreement: {name} agrees with the floor on {len(truth) - len(bad):,}/{len(truth):,} checks"
        )
        for i in bad[:5]:
            u, d, want = sample[i]
            print(
                f"!!! WARNING: {name} says {answers[i]} for {u} viewer {d}; the floor says {want}"
            )
        if bad:
            print(f"!!! WARNING: {name} DISAGREES with the floor on {len(bad):,} checks")
    for user, want in ((gen.NARROW_USER, narrow_vis), (gen.WIDE_USER, wide_vis)):
        got = kp_lists.get(user)
        if got is None:
            continue
        same = got == want
        out[f"list {user}"] = {"keyplane": len(got), "floor": len(want), "same": same}
        print(
            f"agreement: keyplane list objects for {user}: {len(got):,} documents, floor {len(want):,}"
            + ("" if same else "  !!! WARNING: DIFFERENT SETS")
        )
        if not same:
            print(f"!!! WARNING: missing {sorted(want - got)[:3]}, extra {sorted(got - want)[:3]}")
    return out


if __name__ == "__main__":
    main()

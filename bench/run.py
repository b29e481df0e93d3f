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
from measure import Latency, Result, latencies, rss_bytes, throughput, timed

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help=f"~{SMALL_TUPLES:,} tuples")
    ap.add_argument("--tuples", type=int, default=None, help="tuple budget (default ~1M)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--checks", type=int, default=None, help="checks in the random sample")
    ap.add_argument("--no-postgres", action="store_true")
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

    # ---- the organisation and the floor
    scale = gen.Scale.for_tuples(args.tuples, seed=args.seed)
    org = gen.Org()
    t_gen, triples = timed(lambda: list(gen.generate(scale, org)))
    n_tuples = len(triples)
    say(
        f"generated {n_tuples:,} tuples in {t_gen:.1f}s: {len(org.users):,} users, "
        f"{len(org.groups):,} groups, {len(org.folders):,} folders, {len(org.documents):,} documents"
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

    rows = {
        "load_sqlite": Row("load graph from SQLite", "s", "low", target="≤ 15 s per 1M"),
        "load_pg": Row("load graph from PostgreSQL", "s", "low"),
        "build": Row("build graph from memory", "s", "low"),
        "mem": Row("memory per tuple, RSS delta", "B", "low", target="≤ 400 B"),
        "p50": Row("check p50", "µs", "low", target="≤ 15 µs"),
        "p99": Row("check p99", "µs", "low", target="≤ 100 µs"),
        "p50_allow": Row("check p50, allowed", "µs", "low"),
        "p50_deny": Row("check p50, denied", "µs", "low"),
        "cps": Row("checks/s, one thread", "checks/s", "high", target="≥ 5x Cedar, ≥ floor/3"),
        "batch": Row(f"batch check ({BATCH}/call)", "checks/s", "high"),
        "list_narrow": Row(
            f"list objects, {len(narrow_vis):,} visible", "ms", "low", target="≤ 20 ms"
        ),
        "list_wide": Row(f"list objects, {len(wide_vis):,} visible", "ms", "low"),
        "write_sqlite": Row(f"write SQLite, {BATCH} tuples/write", "tuples/s", "high"),
        "write_pg": Row(f"write PostgreSQL, {BATCH} tuples/write", "tuples/s", "high"),
        "bulk_sqlite": Row("bulk load into SQLite", "tuples/s", "high"),
        "bulk_pg": Row("bulk load into PostgreSQL", "tuples/s", "high"),
    }
    r = rows
    r["load_sqlite"].met = lambda x: (
        None if x.kp.value is None else x.kp.value * 1e6 / n_tuples <= 15
    )
    r["mem"].met = lambda x: None if x.kp.value is None else x.kp.value <= 400
    r["p50"].met = lambda x: None if x.kp.value is None else x.kp.value <= 15
    r["p99"].met = lambda x: None if x.kp.value is None else x.kp.value <= 100
    r["list_narrow"].met = lambda x: None if x.kp.value is None else x.kp.value <= 20

    def cps_met(x: Row) -> bool | None:
        if x.kp.value is None or x.cedar.value is None or x.floor.value is None:
            return None
        return x.kp.value >= 5 * x.cedar.value and x.kp.value >= x.floor.value / 3

    r["cps"].met = cps_met
    r["build"].floor = Result(t_floor)

    # ---- floor
    say("floor: checks and list objects")
    can_view = fl.can_view
    lat = latencies(can_view, pairs)
    r["p50"].floor, r["p99"].floor = Result(lat.p50_us), Result(lat.p99_us)
    r["p50_allow"].floor = Result(
        latencies(can_view, [p for p, s in zip(pairs, sample, strict=True) if s[2]]).p50_us
    )
    r["p50_deny"].floor = Result(
        latencies(can_view, [p for p, s in zip(pairs, sample, strict=True) if not s[2]]).p50_us
    )

    def floor_all() -> None:
        for u, d in pairs:
            can_view(u, d)

    r["cps"].floor = Result(throughput(floor_all, len(pairs)))
    r["list_narrow"].floor = Result(best_time(lambda: fl.list_viewable(gen.NARROW_USER))[0] * 1000)
    r["list_wide"].floor = Result(best_time(lambda: fl.list_viewable(gen.WIDE_USER))[0] * 1000)

    # ---- Cedar
    cedar_answers: list[bool] | None = None
    try:
        import cedar
    except ImportError as exc:
        print(f"  [cedar] not installed ({exc}): pip install -e '.[bench]'")
        cedar = None  # type: ignore[assignment]
    if cedar is not None:
        say("cedar: entities, checks, batches")
        t_json, (text, n_ent) = timed(lambda: cedar.entities_json(triples))
        report["cedar_entities_json_s"] = t_json
        t_parse, cg = timed(lambda: cedar.CedarGraph(text))
        del text
        r["build"].cedar = Result(t_parse)
        report["cedar_entities"] = n_ent
        reqs = [cedar.CedarGraph.request(u, d) for u, d in pairs]
        lat = latencies(cg.check, [(q,) for q in reqs])
        r["p50"].cedar, r["p99"].cedar = Result(lat.p50_us), Result(lat.p99_us)
        r["p50_allow"].cedar = Result(
            latencies(cg.check, [(q,) for q, s in zip(reqs, sample, strict=True) if s[2]]).p50_us
        )
        r["p50_deny"].cedar = Result(
            latencies(
                cg.check, [(q,) for q, s in zip(reqs, sample, strict=True) if not s[2]]
            ).p50_us
        )
        chunks = [reqs[i : i + BATCH] for i in range(0, len(reqs), BATCH)]

        def cedar_batches() -> None:
            for c in chunks:
                cg.batch(c)

        r["batch"].cedar = Result(throughput(cedar_batches, len(reqs)))
        r["cps"].cedar = r["batch"].cedar  # Cedar's best one-thread rate is its batch call
        report["cedar_single_call_checks_per_s"] = (
            len(reqs) / best_time(lambda: [cg.check(q) for q in reqs], 1)[0]
        )
        cedar_answers = [a for c in chunks for a in cg.batch(c)]
        del cg, reqs, chunks
        gc.collect()

    # ---- Keyplane
    kp = Keyplane(gen.MODEL_DSL)
    tmp = Path(tempfile.mkdtemp(prefix="keyplane-bench-"))
    db = tmp / "bench.db"
    sqlite_store: str | None = None
    kp_answers: list[bool] | None = None
    kp_lists: dict[str, set[str]] = {}
    try:
        say("keyplane: SQLite bulk load and graph load")
        sqlite_storage: Any = None

        def sqlite_bulk() -> Result:
            nonlocal sqlite_storage, sqlite_store
            sqlite_storage = kp.open_storage(f"sqlite:///{db}")
            sqlite_store = kp.create_store(sqlite_storage, "bench")
            t, _ = timed(lambda: kp.bulk_load(sqlite_storage, sqlite_store, triples))
            return Result(n_tuples / t)

        r["bulk_sqlite"].kp = guarded("bulk load SQLite", sqlite_bulk)

        def sqlite_load() -> Result:
            if sqlite_store is None:
                raise Missing("SQLite store")
            gc.collect()
            t, index = timed(lambda: kp.load(kp.open_storage(f"sqlite:///{db}"), sqlite_store))
            kp.index = index
            return Result(t)

        r["load_sqlite"].kp = guarded("load from SQLite", sqlite_load)

        def engine() -> Result:
            if kp.index is None:
                raise Missing("graph loaded from SQLite")
            kp.make_engine(kp.index)
            return Result(0)

        guarded("engine", engine)

        def kp_agree() -> Result:
            nonlocal kp_answers
            check = kp.check_fn()
            kp_answers = [bool(check(*a)) for a in kp_args]
            return Result(0)

        guarded("agreement", kp_agree)

        def build_from_memory() -> Result:
            if sqlite_store is None:
                raise Missing("SQLite store")
            _, rows_it = sqlite_storage.snapshot_rows(sqlite_store)
            rows_list = list(rows_it)
            gc.collect()
            t, _ = timed(lambda: kp.new_index().load_rows(rows_list))
            return Result(t)

        r["build"].kp = guarded("build from memory", build_from_memory)
        gc.collect()

        if kp.engine is not None:
            say("keyplane: checks, batches, list objects")
        r["p50"].kp = guarded("check latency", lambda: _kp_latency(kp, sample, r))

        def kp_cps() -> Result:
            check = kp.check_fn()

            def run_all() -> None:
                for a in kp_args:
                    check(*a)

            return Result(throughput(run_all, len(kp_args)))

        r["cps"].kp = guarded("checks/s", kp_cps)

        def kp_batch() -> Result:
            batch = kp.batch_fn()
            items = kp.batch_items(kp_args)
            chunks = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
            got = [a for c in chunks for a in batch(c)]
            if kp_answers is not None and got != kp_answers:
                print("!!! WARNING: keyplane batch_check and check disagree")

            def run_all() -> None:
                for c in chunks:
                    batch(c)

            return Result(throughput(run_all, len(kp_args)))

        r["batch"].kp = guarded("batch check", kp_batch)

        def kp_list(user: str) -> Result:
            lo = kp.list_fn()
            t, got = best_time(lambda: lo(user))
            kp_lists[user] = got
            return Result(t * 1000)

        r["list_narrow"].kp = guarded("list objects narrow", lambda: kp_list(gen.NARROW_USER))
        r["list_wide"].kp = guarded("list objects wide", lambda: kp_list(gen.WIDE_USER))

        def sqlite_writes() -> Result:
            if sqlite_store is None:
                raise Missing("SQLite store")
            batches = write_batches(org, 50 if n_tuples < 200_000 else 100, rng, "s")
            t = kp.write_batches(sqlite_storage, sqlite_store, batches)
            return Result(sum(map(len, batches)) / t)

        say("keyplane: SQLite writes")
        r["write_sqlite"].kp = guarded("write SQLite", sqlite_writes)

        if sqlite_store is not None:
            say("memory probes (subprocesses)")
            r["mem"].kp = run_probe("keyplane", args, db=db, store=sqlite_store, count=n_tuples)
        if sqlite_storage is not None:
            sqlite_storage.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r["mem"].floor = run_probe("floor", args)
    if "cedar" in sys.modules:
        r["mem"].cedar = run_probe("cedar", args)

    # keep only what the report needs before PostgreSQL's own load
    kp.engine = kp.index = None
    gc.collect()

    # ---- PostgreSQL
    if args.no_postgres:
        for k in ("load_pg", "write_pg", "bulk_pg"):
            r[k].kp = Result.na("skipped")
    else:
        say("keyplane: PostgreSQL bulk load, graph load, writes")
        _postgres(kp, triples, org, rng, r, n_tuples)

    # ---- agreement
    print()
    report["agreement"] = _agreement(
        sample, cedar_answers, kp_answers, kp_lists, narrow_vis, wide_vis
    )

    title = (
        f"Keyplane bench — {n_tuples:,} tuples ({'small' if args.small else 'scale ' + str(args.tuples)}), "
        f"{len(sample):,} checks, seed {args.seed}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
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


def _kp_latency(kp: Keyplane, sample: list[tuple[str, str, bool]], r: dict[str, Row]) -> Result:
    check = kp.check_fn()
    args = [(u, "viewer", d) for u, d, _ in sample]
    lat: Latency = latencies(check, args)
    r["p99"].kp = Result(lat.p99_us)
    allowed = [(u, "viewer", d) for u, d, ok in sample if ok]
    denied = [(u, "viewer", d) for u, d, ok in sample if not ok]
    r["p50_allow"].kp = Result(latencies(check, allowed).p50_us)
    r["p50_deny"].kp = Result(latencies(check, denied).p50_us)
    return Result(lat.p50_us)


def _postgres(
    kp: Keyplane,
    triples: list[Triple],
    org: gen.Org,
    rng: random.Random,
    r: dict[str, Row],
    n_tuples: int,
) -> None:
    storage: Any = None
    store: str | None = None
    try:
        storage = kp.open_storage(PG_URL)
    except (Missing, ImportError):
        for k in ("load_pg", "write_pg", "bulk_pg"):
            r[k].kp = Result.na(NOT_YET)
        return
    except Exception as exc:
        print(f"  [keyplane] PostgreSQL at {PG_URL} unavailable: {exc}")
        for k in ("load_pg", "write_pg", "bulk_pg"):
            r[k].kp = Result.na("no PostgreSQL")
        return
    try:

        def bulk() -> Result:
            nonlocal store
            store = kp.create_store(storage, "bench")
            t, _ = timed(lambda: kp.bulk_load(storage, store, triples))
            return Result(n_tuples / t)

        r["bulk_pg"].kp = guarded("bulk load PostgreSQL", bulk)

        def load() -> Result:
            if store is None:
                raise Missing("PostgreSQL store")
            gc.collect()
            t, index = timed(lambda: kp.load(storage, store))
            del index
            return Result(t)

        r["load_pg"].kp = guarded("load from PostgreSQL", load)
        gc.collect()

        def writes() -> Result:
            if store is None:
                raise Missing("PostgreSQL store")
            batches = write_batches(org, 50 if n_tuples < 200_000 else 100, rng, "p")
            t = kp.write_batches(storage, store, batches)
            return Result(sum(map(len, batches)) / t)

        r["write_pg"].kp = guarded("write PostgreSQL", writes)
    finally:
        if store is not None:
            try:
                storage.delete_store(store)  # the benchmark leaves nothing behind
            except Exception as exc:
                print(f"  [keyplane] could not delete bench store {store} from PostgreSQL: {exc}")
        storage.close()


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

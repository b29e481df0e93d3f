"""The decision point's hot path (issue 5 §6) — printed, never asserted.

    make bench-decide                     # ~1M tuples (bench/gen.py), a few minutes
    python bench/decide.py --tuples 80000 # quicker, smaller graph
    python bench/decide.py --profile      # + a cProfile of the full decision

One process, one thread, in-process (``keyplane.service`` functions, as the embedded API
calls them): the benchmark organisation of ``bench/gen.py`` bulk-loaded into a fresh
SQLite store, with its model extended by the identity types (``human``, ``agent``).
``human:alice``, ``agent:planner`` and ``agent:sub`` join the narrow benchmark user's
group chain (so each check walks a 2-level group chain then folder grants, as
``user:bench-narrow``'s do), alice delegates ``viewer`` on ``document:*`` to the planner
(one further hop allowed), which sub-delegates it to ``agent:sub``.

Rows (per-call latency over ``--decisions`` documents alice can see, 1,000 warm-up calls,
timer overhead subtracted, best of 3 passes — see ``bench/measure.py``):

* **engine check** — ``Engine.check`` alone (the floor);
* **check** — ``service.access.check`` (authorization, the engine, the ledger event);
* **decide, no chain, no guardrails** — ``service.decisions.decide`` for alice herself;
* **decide, 2-hop chain** — alice → planner → sub, no guardrails: the delegation links
  and two more graph checks;
* **decide, no chain, 3 guardrails** and **decide, 2-hop chain + 3 guardrails** — the
  issue's budget: p50 ≤ 40 µs, p99 ≤ 400 µs.

Each service row runs with the ledger **off** (a writer that records nothing: the
decision's own cost, its event still built), **on, sync** (the call returns once its event
is durable: SQLite group commit, so these rows are the commit wait) and **on, async** (the
event is queued for the writer thread, committed in groups behind the answer).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gen
from keyplane.config import Settings
from keyplane.graph.tuples import Tuple
from keyplane.ledger.events import LedgerEvent
from keyplane.ledger.writer import LedgerWriter
from keyplane.service import (
    access,
    decisions,
    delegations,
    guardrails,
    identities,
    models,
    stores,
)
from keyplane.service import tuples as tuple_ops
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from measure import Latency, latencies

STORE = "bench-decide"
ALICE, PLANNER, SUB = "human:alice", "agent:planner", "agent:sub"
CHAIN_GROUP = "group:bench-narrow-1"  # the narrow user's leaf group (gen.py)

MODEL = gen.MODEL_DSL.replace("type user\n", "type user\ntype human\ntype agent\n", 1).replace(
    "define member: [user, group#member]", "define member: [user, human, agent, group#member]"
)

GUARDRAILS = [
    {
        "id": "chain-at-most-2",
        "description": "no delegation chain longer than 2",
        "effect": "forbid",
        "expression": "chain_length > 2",
    },
    {
        "id": "agents-no-delete-in-production",
        "description": "agents may not delete in production",
        "effect": "forbid",
        "expression": "actors.exists(a, a.kind == 'agent') && action == 'delete' && "
        "has(resource.attributes.env) && resource.attributes.env == 'production'",
    },
    {
        "id": "pii-needs-purpose",
        "description": "purpose required for customer PII",
        "effect": "require_approval",
        "expression": "has(resource.attributes.pii) && resource.attributes.pii == true && "
        "purpose == ''",
    },
]


class NullLedger:
    """A ledger that records nothing: the "off" rows (changes still go to the real one)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def record(self, event: LedgerEvent) -> None:
        pass

    def record_many(self, events: Sequence[LedgerEvent]) -> None:
        pass

    def prepare(self, event: LedgerEvent) -> Any:
        return self._real.prepare(event)

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        pass


def say(msg: str) -> None:
    print(msg, flush=True)


def setup(svc: Services, caller: Caller, tuples: int, seed: int) -> list[str]:
    """Load the organisation and the identity plane; return documents alice can see."""
    stores.create_store(svc, caller, "bench", store_id=STORE)
    models.write_model(svc, caller, STORE, MODEL)
    scale = gen.Scale.for_tuples(tuples, seed=seed)
    t0 = time.perf_counter()
    triples = list(gen.generate(scale))
    svc.storage.bulk_load(STORE, (Tuple(o, r, u) for o, r, u in triples))
    say(f"  loaded {len(triples):,} tuples into SQLite in {time.perf_counter() - t0:.1f}s")
    del triples
    t0 = time.perf_counter()
    svc.graphs.engine(STORE)
    say(f"  graph in memory in {time.perf_counter() - t0:.1f}s")
    now = svc.clock.now()
    identities.create_identity(svc, caller, STORE, "human", "alice", display_name="Alice")
    for agent in ("planner", "sub"):
        identities.create_identity(svc, caller, STORE, "agent", agent, owners=(ALICE,))
    tuple_ops.write_tuples(
        svc, caller, STORE, writes=[f"{CHAIN_GROUP}#member@{n}" for n in (ALICE, PLANNER, SUB)]
    )
    scope = [{"actions": ["viewer"], "resource": "document:*"}]
    d1 = delegations.create_delegation(
        svc, caller, STORE, delegator=ALICE, delegate=PLANNER, scope=scope,
        expires_at=now + 3600, max_depth=1,
    )  # fmt: skip
    delegations.create_delegation(
        svc, caller, STORE, delegator=PLANNER, delegate=SUB, scope=scope,
        expires_at=now + 3000, parent_id=d1.id,
    )  # fmt: skip
    engine, _ = svc.graphs.engine(STORE)
    return sorted(engine.list_objects(ALICE, "viewer", "document"))


def fmt(label: str, lat: Latency, base: float, budget: str = "") -> str:
    """One row; ``base``: the engine check's p50 (the ratio stays comparable on a busy
    machine, where every figure moves together)."""
    return (
        f"  {label:<52} {lat.p50_us:>8.1f} {lat.p99_us:>9.1f} {lat.mean_us:>9.1f} "
        f"{lat.p50_us / base:>7.1f}x  {budget}"
    )


def profile(call: Callable[[], Any], what: str, top: int = 18) -> None:
    prof = cProfile.Profile()
    prof.enable()
    call()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    say(f"\n--- profile: {what} (sorted by own time) ---")
    say(out.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tuples", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--decisions", type=int, default=2000)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="kp-bench-decide-") as d:
        settings = Settings(
            database_url=f"sqlite:///{Path(d) / 'decide.db'}",
            poll_interval=0.0,
            ledger_mode="sync",
            master_key_file=str(Path(d) / "master.key"),
        )
        svc = Services.open(settings)
        caller = Caller.system_caller()
        try:
            run(svc, caller, args)
        finally:
            svc.close()


def run(svc: Services, caller: Caller, args: argparse.Namespace) -> None:
    say(f"setting up ~{args.tuples:,} tuples …")
    docs = setup(svc, caller, args.tuples, args.seed)
    rng = random.Random(args.seed)
    sample = [(d,) for d in rng.choices(docs, k=args.decisions)]
    say(f"  {ALICE} sees {len(docs):,} documents; {len(sample):,} decisions per row\n")
    engine, _ = svc.graphs.engine(STORE)
    real_ledger = svc.ledger
    null_ledger = NullLedger(real_ledger)

    def check(doc: str) -> Any:
        return access.check(svc, caller, STORE, ALICE, "viewer", doc)

    def plain(doc: str) -> Any:
        d = decisions.decide(svc, caller, STORE, ALICE, "viewer", doc)
        assert d.allowed, d
        return d

    def chained(doc: str) -> Any:
        d = decisions.decide(svc, caller, STORE, ALICE, "viewer", doc, actors=(PLANNER, SUB))
        assert d.allowed, d
        return d

    results: list[tuple[str, Latency, str]] = []

    async_ledger = LedgerWriter(
        svc.storage, mode="async", signer=svc.keyring, clock=svc.clock
    )  # a second writer on the same chains: only ever used while the sync one is idle

    def measure(label: str, fn: Callable[..., Any], budget: str = "") -> None:
        modes = (("off", null_ledger), ("on, sync", real_ledger), ("on, async", async_ledger))
        for mode, ledger in modes:
            svc.ledger = ledger  # type: ignore[assignment]
            lat = latencies(fn, sample)
            if ledger is async_ledger:
                async_ledger.flush()
            results.append((f"{label} — ledger {mode}", lat, budget if mode == "off" else ""))
            say(fmt(results[-1][0], lat, base, results[-1][2]))
        svc.ledger = real_ledger

    say(f"  {'row':<52} {'p50 µs':>8} {'p99 µs':>9} {'mean µs':>9} {'p50/eng':>8}")
    lat = latencies(lambda doc: engine.check(ALICE, "viewer", doc), sample)
    base = lat.p50_us
    results.append(("engine check (Engine.check)", lat, ""))
    say(fmt(results[-1][0], lat, base))
    measure("check (service)", check)
    measure("decide, no chain, no guardrails", plain)
    measure("decide, 2-hop chain, no guardrails", chained)
    guardrails.put_guardrails(svc, caller, STORE, GUARDRAILS)
    measure("decide, no chain, 3 guardrails", plain)
    measure("decide, 2-hop chain + 3 guardrails", chained, "budget p50 ≤ 40, p99 ≤ 400")
    fired = decisions.decide(svc, caller, STORE, ALICE, "viewer", sample[0][0],
                             actors=(PLANNER, SUB), resource_properties={"pii": True})  # fmt: skip
    say(f"\n  check: a PII resource without purpose → {fired.code} ({fired.reason_user})")

    async_ledger.close()
    if args.profile:
        svc.ledger = null_ledger  # type: ignore[assignment]
        profile(
            lambda: [chained(d) for (d,) in sample * 5],
            "decide, 2-hop chain + 3 guardrails, ledger off",
        )
        svc.ledger = real_ledger


if __name__ == "__main__":
    main()

"""Guardrail evaluation cost: three rules over one decision environment (printed, not asserted).

    .venv/bin/python bench/guardrails.py [--n 20000]

The three rules are the examples of docs/identities.md ("agents may not delete in
production", "no delegation chain longer than 2", "purpose required for customer PII"),
over a human → agent → sub-agent chain. Rows: build_env alone; evaluate on a warm chain
(the thread already converted the chain's identities) with the same request, with a new
resource each time, with resource properties, with the rules firing; a cold chain (new
identities each time: the whole environment is converted); a plain dict (no chain key).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from keyplane.policy.guardrails import build_env, compile_guardrails, parse_rules
from keyplane.policy.records import GuardrailSet, Identity

_EMPTY: Mapping[str, Any] = MappingProxyType({})

RULES = [
    {
        "id": "no-agent-delete-in-production",
        "effect": "forbid",
        "expression": 'action == "delete" && actors.exists(a, a.kind == "agent") && '
        '"env" in resource.attributes && resource.attributes.env == "production"',
    },
    {"id": "max-chain-2", "effect": "forbid", "expression": "chain_length > 2"},
    {
        "id": "pii-needs-purpose",
        "effect": "require_approval",
        "expression": 'resource.type == "customer_pii" && purpose == ""',
    },
]


@dataclass(frozen=True)
class Input:
    subject: str
    actors: tuple[str, ...]
    action: str
    resource: str
    purpose: str | None = None
    context: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    tool: str | None = None
    time: float = 1.7e9
    resource_properties: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    subject_properties: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


def identity(kind: str, iid: str, revision: int = 1, **attributes: Any) -> Identity:
    return Identity(
        "bench", kind, iid, iid, attributes, "active", (), False, "api", 0, 0, None, revision
    )


class State:
    def __init__(self, idents: dict[str, Identity]) -> None:
        self.idents = idents

    def identity(self, node: str) -> Identity | None:
        return self.idents.get(node)


def per_call(fn: Callable[[], object], n: int, repeat: int = 5) -> tuple[float, float]:
    """The best of ``repeat`` runs, µs per call (the machine is shared)."""
    best = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best.append((time.perf_counter() - t) / n * 1e6)
    return min(best), statistics.median(best)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    n = ap.parse_args().n
    chain = ("agent:planner", "agent:researcher")
    state = State(
        {
            "human:alice": identity("human", "alice", dept="eng"),
            "agent:planner": identity("agent", "planner", model="m1"),
            "agent:researcher": identity("agent", "researcher"),
        }
    )
    rules = compile_guardrails(GuardrailSet("bench", 1, parse_rules(RULES), "bench", 0.0, 1))

    def envs(make: Callable[[int], Input]) -> Callable[[], object]:
        items = [build_env(make(i), "viewer", state) for i in range(1000)]
        it = itertools.cycle(items)
        return lambda: rules.evaluate(next(it))

    inp = Input("human:alice", chain, "read", "document:r1")
    same = build_env(inp, "viewer", state)
    rows: list[tuple[str, Callable[[], object]]] = [
        ("build_env (2-hop chain)", lambda: build_env(inp, "viewer", state)),
        ("evaluate, warm chain, same request", lambda: rules.evaluate(same)),
        (
            "evaluate, warm chain, a new resource each time",
            envs(lambda i: Input("human:alice", chain, "read", f"document:r{i}")),
        ),
        (
            "evaluate, warm chain, resource properties (5 values)",
            envs(
                lambda i: Input(
                    "human:alice",
                    chain,
                    "read",
                    f"document:r{i}",
                    resource_properties={"env": f"e{i % 5}"},
                )
            ),
        ),
        (
            "evaluate, warm chain, a rule fires (delete in production)",
            envs(
                lambda i: Input(
                    "human:alice",
                    chain,
                    "delete",
                    f"document:r{i}",
                    resource_properties={"env": "production"},
                )
            ),
        ),
    ]
    cold_states = [
        State(
            {
                "human:alice": identity("human", "alice", i, dept="eng"),
                "agent:planner": identity("agent", "planner", i, model="m1"),
                "agent:researcher": identity("agent", "researcher", i),
            }
        )
        for i in range(n * 6)
    ]
    cold = iter(
        build_env(Input("human:alice", chain, "read", "document:r1"), "viewer", s)
        for s in cold_states
    )
    rows.append(("evaluate, cold chain (identities changed)", lambda: rules.evaluate(next(cold))))
    plain = dict(same)
    rows.append(("evaluate, a plain dict (no chain key)", lambda: rules.evaluate(plain)))

    print(f"3 guardrails, human → agent → agent, {n} calls, best / median of 5 runs")
    print(f"{'case':60} {'best µs':>9} {'median µs':>10}")
    for label, fn in rows:
        best, med = per_call(fn, n)
        print(f"{label:60} {best:9.2f} {med:10.2f}")


if __name__ == "__main__":
    main()

"""Timing and memory helpers shared by the benchmarks (stdlib only)."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Latency",
    "Result",
    "latencies",
    "rss_bytes",
    "throughput",
    "timed",
]


@dataclass
class Result:
    """One figure: a value (or ``None`` when not measured) and why it is missing."""

    value: float | None = None
    note: str = ""

    @classmethod
    def na(cls, why: str = "n/a") -> Result:
        return cls(None, why)


def rss_bytes() -> int:
    """This process's resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` and its result."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _timer_overhead_ns() -> int:
    pc = time.perf_counter_ns
    samples = []
    for _ in range(2000):
        t0 = pc()
        samples.append(pc() - t0)
    samples.sort()
    return samples[len(samples) // 2]


@dataclass
class Latency:
    p50_us: float
    p99_us: float
    mean_us: float


def latencies(call: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> Latency:
    """Per-call latency of ``call(*a)`` for each ``a`` (timer overhead subtracted)."""
    over = _timer_overhead_ns()
    pc = time.perf_counter_ns
    out = []
    for a in args[: min(1000, len(args))]:  # warm-up
        call(*a)
    gc.collect()
    for a in args:
        t0 = pc()
        call(*a)
        out.append(pc() - t0 - over)
    out.sort()
    n = len(out)
    return Latency(
        p50_us=out[n // 2] / 1000,
        p99_us=out[min(n - 1, (n * 99) // 100)] / 1000,
        mean_us=sum(out) / n / 1000,
    )


def throughput(run_all: Callable[[], Any], count: int, *, repeat: int = 3) -> float:
    """Operations per second: ``count`` operations per ``run_all()``, best of ``repeat``.

    Best-of is the usual choice on a shared machine: interference only ever slows a run.
    """
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        run_all()
        best = min(best, time.perf_counter() - t0)
    return count / best

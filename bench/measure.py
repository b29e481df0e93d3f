"""Timing and memory helpers shared by the benchmarks (stdlib only)."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Latency",
    "Result",
    "latencies",
    "rss_bytes",
    "throughput_rounds",
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


def latencies(
    call: Callable[..., Any],
    args: Sequence[tuple[Any, ...]],
    *,
    passes: int = 3,
    warmup: int = 1000,
) -> Latency:
    """Per-call latency of ``call(*a)`` for each ``a`` (timer overhead subtracted).

    Each percentile is the lowest over ``passes`` passes: on a shared machine another
    process can only add time, never remove it.
    """
    over = _timer_overhead_ns()
    pc = time.perf_counter_ns
    for a in args[: min(warmup, len(args))]:
        call(*a)
    best: Latency | None = None
    for _ in range(passes):
        out = []
        gc.collect()
        for a in args:
            t0 = pc()
            call(*a)
            out.append(pc() - t0 - over)
        out.sort()
        n = len(out)
        lat = Latency(
            p50_us=out[n // 2] / 1000,
            p99_us=out[min(n - 1, (n * 99) // 100)] / 1000,
            mean_us=sum(out) / n / 1000,
        )
        if best is None:
            best = lat
        else:
            best = Latency(
                min(best.p50_us, lat.p50_us),
                min(best.p99_us, lat.p99_us),
                min(best.mean_us, lat.mean_us),
            )
    assert best is not None
    return best


def throughput_rounds(
    loops: Mapping[str, Callable[[], Any]], count: int, *, rounds: int = 3
) -> dict[str, float]:
    """Operations per second of each loop (``count`` operations per call), best of ``rounds``.

    The loops are run interleaved — every loop once per round — so a noisy neighbour on a
    shared machine slows all of them alike, and best-of keeps the least disturbed run:
    interference only ever adds time.
    """
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(rounds):
        for name, loop in loops.items():
            gc.collect()
            t0 = time.perf_counter()
            loop()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: count / t for name, t in best.items()}

"""Print the conformance pass counts.

``python tests/conformance/summary.py [-v] [--runner=engine] [files...]``

Per file and per kind (check, list objects, list users; the contextual-tuple reruns and
the matrix checks run as list queries apart; expected errors counted again on their own),
then, with ``-v``, every failing assertion.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fga_harness import FILES, RUNNERS, StageResult, cases, run_case, summarize


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    runner = next((a.split("=", 1)[1] for a in argv if a.startswith("--runner=")), "engine")
    files = [a for a in argv if not a.startswith("-")] or list(FILES)
    results: list[StageResult] = []
    t0 = time.perf_counter()
    for case in cases(files):
        results.extend(run_case(case, RUNNERS[runner]))
    elapsed = time.perf_counter() - t0
    table = summarize(results)
    total_ok = total = 0
    for file, rows in table.items():
        print(f"\n{file} ({FILES[file]})")
        for bucket in sorted(rows):
            ok, n = rows[bucket]
            if bucket == "skipped stages":
                print(f"  {bucket:42} {n}")
                continue
            if bucket != "expected errors":
                total_ok += ok
                total += n
            print(f"  {bucket:42} {ok:5} / {n:<5} {'ok' if ok == n else 'FAIL'}")
    stages = [r for r in results if not r.skipped]
    green = sum(1 for r in stages if not r.failures)
    print(f"\nrunner: {runner}")
    print(f"assertions: {total_ok} / {total} passed; stages: {green} / {len(stages)} green")
    print(f"({elapsed:.1f} s)")
    if verbose:
        for r in results:
            for o in r.failures:
                mode = "+ctx" if r.mode == "ctx" else ""
                print(f"FAIL {r.file}::{r.test}::stage{r.stage}{mode} {o.label}: {o.message}")
    return 0 if total_ok == total else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""OpenFGA's conformance YAML through the in-memory engine: one pytest id per test stage.

Ids read ``<runner>:<file>::<test>::stage<N>`` (``+ctx`` for the contextual-tuple rerun); a failure
lists every failing assertion of the stage with what was expected and what came back.
``python tests/conformance/summary.py`` prints the pass counts per file and kind.
"""

from __future__ import annotations

import pytest
from fga_harness import DATA, RUNNERS, Case, cases, run_case_cached

PARAMS = [
    pytest.param(runner, case, stage, id=f"{runner}:{case.ids[stage]}")
    for runner in RUNNERS
    for case in (cases() if DATA.is_dir() else [])
    for stage in range(case.stages)
]


@pytest.mark.parametrize(("runner", "case", "stage"), PARAMS)
def test_stage(runner: str, case: Case, stage: int) -> None:
    result = run_case_cached(case, RUNNERS[runner], key=runner)[stage]
    if result.skipped:
        pytest.skip(result.skipped)
    failures = result.failures
    if failures:
        lines = [f"{len(failures)} of {len(result.outcomes)} assertions failed:"]
        lines += [f"  - {o.label}: {o.message}" for o in failures]
        pytest.fail("\n".join(lines), pytrace=False)

"""OpenFGA's conformance YAML through the in-memory engine: one pytest id per test stage.

Ids read ``<file>::<test>::stage<N>`` (``+ctx`` for the contextual-tuple rerun); a failure
lists every failing assertion of the stage with what was expected and what came back.
``python tests/conformance/summary.py`` prints the pass counts per file and kind.
"""

from __future__ import annotations

import pytest
from fga_harness import DATA, Case, EngineRunner, cases, run_case_cached

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"conformance data not found at {DATA}")

PARAMS = [
    pytest.param(case, stage, id=case.ids[stage])
    for case in (cases() if DATA.is_dir() else [])
    for stage in range(case.stages)
]


@pytest.mark.parametrize(("case", "stage"), PARAMS)
def test_stage(case: Case, stage: int) -> None:
    result = run_case_cached(case, EngineRunner)[stage]
    if result.skipped:
        pytest.skip(result.skipped)
    failures = result.failures
    if failures:
        lines = [f"{len(failures)} of {len(result.outcomes)} assertions failed:"]
        lines += [f"  - {o.label}: {o.message}" for o in failures]
        pytest.fail("\n".join(lines), pytrace=False)

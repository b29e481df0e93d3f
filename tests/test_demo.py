"""`make demo` keeps working: run it as a user would and read what it printed."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_end_to_end() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "keyplane.demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "120"},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert '"api_key": "kp_' in out  # keyplane init --output json
    assert "direct tuple group:platform#member@user:bob" in out  # CLI explain via the server
    assert "refused — permission_denied" in out  # the reader key may not write
    assert "erin editor handbook one hour later" in out and "Demo finished" in out
    # part 3: the delegation chain, a guardrail, the kill switch, provenance
    assert "a sub-delegation wider than its parent           delegation_widening" in out
    assert "anne → planner → summarizer: view q3-plan        allowed" in out
    assert "denied — purpose_not_allowed" in out and "denied — delegation_scope" in out
    assert "denied — guardrail_forbid" in out and "denied — identity_suspended" in out
    assert "delegations revoked with it                      2" in out
    assert "decision.evaluate allow" in out and "ledger verify" in out and "ok=True" in out

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
    # part 1, the MCP gateway: discovery, approval, calls with the injected secret, refusals
    assert (
        "tools/list                                       tracker__create_ticket, tracker__list_tickets"
        in out
    )
    assert "(token seen: sha256:" in out  # the tracker got the secret the agent never had
    assert "tools/call tracker__delete_project               error — tool_pending" in out
    assert "tools/call tracker__create_ticket                error — tool_disabled" in out
    assert (
        "deny mcp_tool:tracker/create_ticket" in out and "tool_disabled, arguments sha256:" in out
    )
    # part 3: the delegation chain, a guardrail, the kill switch, provenance
    assert "a sub-delegation wider than its parent           delegation_widening" in out
    assert "anne → planner → summarizer: view q3-plan        allowed" in out
    assert "denied — purpose_not_allowed" in out and "denied — delegation_scope" in out
    assert "denied — guardrail_forbid" in out and "denied — identity_suspended" in out
    assert "delegations revoked with it                      2" in out
    # part 4: a client_credentials token, an exchange, a request auto-approved, revocation
    assert "its claims                                       sub=agent:planner act=-" in out
    assert "sub=agent:planner act=agent:summarizer" in out
    assert "summarizer for planner (token): view q3-plan     allowed" in out
    assert "planner (token): view document:budget            denied — subject_lacks" in out
    assert "reason.request                                   budget-viewer for agent:planner" in out
    assert "active — auto-approved by rule low-short, 15 min" in out
    assert "planner (token): view document:budget, retried   allowed" in out
    assert "planner (revoked token): view document:budget    denied — token_invalid" in out
    assert "summarizer (token exchanged from it): view q3-plan denied — token_invalid" in out
    # part 5: effective access (own and delegated), over-privilege, exceeding, posture
    assert "agent:summarizer reaches document:q3-plan (viewer) delegation, for agent:planner" in out
    assert "flowchart LR" in out
    assert "agent:planner: grants / used / unused grants     3 / 2 / 1" in out
    assert (
        "least privilege: revoke                          document:handbook#viewer@agent:planner"
        in out
    )
    assert "agent:planner exceeds its owner human:anne" in out
    assert "NHI4 shared_secret_authentication" in out and "NHI5 unused_grants" in out
    assert "keyplane-demo-posture.html" in out
    # the ledger's verify line stays last
    assert out.index("ledger verify") > out.index("revoked token")
    assert "decision.evaluate allow" in out and "ledger verify" in out and "ok=True" in out

"""Nothing acknowledged is lost: a process recording events in sync mode is killed with
SIGKILL mid-way; every event whose ``record`` had returned is in the ledger and the chain
(with its checkpoints) verifies. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from keyplane.ledger.chain import verify_stored
from keyplane.storage import Storage

HERE = Path(__file__).parent


def test_kill_9_loses_no_acknowledged_event(
    storage: Storage, storage_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    child = subprocess.Popen(
        [sys.executable, str(HERE / "crash_child.py"), storage_url, str(tmp_path / "k.key")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    acked: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            acked.append(line.strip())
            if len(acked) >= 400:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        if child.stdout is not None:
            # acknowledged before the kill landed: read what was printed
            acked += [ln.strip() for ln in child.stdout.read().splitlines() if ln.strip()]
    assert len(acked) >= 400, child.stderr.read() if child.stderr else ""
    assert child.returncode == -signal.SIGKILL
    missing = [i for i in acked if storage.get_event_by_decision(i) is None]
    assert missing == []
    report = verify_stored(storage, "crash")
    assert report.ok, report
    assert report.last_seq >= len(acked)
    assert report.last_checkpoint_seq >= 50  # checkpoints were being written, and verify

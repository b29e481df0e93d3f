"""Issue 4 §3: nothing acknowledged is lost — ``kill -9`` a real server mid-load.

A real ``keyplane serve`` process (SQLite, then PostgreSQL) answers sustained checks from
client threads, each recording every decision id it received. The server is killed with
SIGKILL mid-way — no shutdown, no flush — and started again on the same database. Every
decision id any client received must be in the ledger, and the chain must verify
(``keyplane ledger verify``). The ledger runs in its default ``sync`` mode: an answer is
sent only after its event committed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from keyplane.storage import open_storage

STORE = "crash"
MODEL = """\
model
  schema 1.1
type user
type document
  relations
    define viewer: [user]
"""
THREADS = 6
BEFORE_KILL = 2.0  # seconds of load before the kill


def _keyplane(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyplane", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "keyplane", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"keyplane serve did not start: {err}")
        time.sleep(0.05)
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _load(url: str, key: str, received: list[str], stop: threading.Event, n: int) -> None:
    """Check until stopped or the server is gone; keep every decision id answered."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
        i = n
        while not stop.is_set():
            body = {
                "user": f"user:u{i % 50}",
                "relation": "viewer",
                "object": f"document:d{i % 40}",
            }
            try:
                r = c.post(f"/v1/stores/{STORE}/check", json=body)
            except httpx.TransportError:
                return  # killed: whatever was not answered was not acknowledged
            if r.status_code != 200:
                return
            received.append(r.json()["decision_id"])
            i += THREADS


def _ledger_decision_ids(url: str) -> set[str]:
    storage = open_storage(url)
    try:
        seen: set[str] = set()
        after = 0
        while True:
            page = storage.read_events(STORE, after_seq=after, limit=5000)
            if not page:
                return seen
            seen.update(e.decision_id for e in page if e.decision_id)
            assert page[-1].seq is not None
            after = page[-1].seq
    finally:
        storage.close()


def test_kill_9_loses_no_acknowledged_decision(storage_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KEYPLANE_DATABASE_URL": storage_url,
        "KEYPLANE_MASTER_KEY_FILE": str(tmp_path / "master.key"),
        "KEYPLANE_LEDGER_MODE": "sync",
        "KEYPLANE_LEDGER_CHECKPOINT_EVENTS": "500",
    }
    init = _keyplane("init", "--output", "json", env=env)
    assert init.returncode == 0, init.stderr
    key = json.loads(init.stdout)["api_key"]
    auth = {"Authorization": f"Bearer {key}"}

    received: list[list[str]] = [[] for _ in range(THREADS)]
    with _server(env) as (url, proc):
        with httpx.Client(base_url=url, headers=auth, timeout=10) as c:
            assert c.post("/v1/stores", json={"name": STORE, "id": STORE}).status_code == 201
            assert c.post(f"/v1/stores/{STORE}/models", json={"dsl": MODEL}).status_code == 201
            writes = [
                {"object": f"document:d{d}", "relation": "viewer", "user": f"user:u{d}"}
                for d in range(40)
            ]
            assert c.post(f"/v1/stores/{STORE}/tuples/write", json={"writes": writes}).is_success
        stop = threading.Event()
        threads = [
            threading.Thread(target=_load, args=(url, key, received[t], stop, t))
            for t in range(THREADS)
        ]
        for t in threads:
            t.start()
        time.sleep(BEFORE_KILL)
        proc.send_signal(signal.SIGKILL)  # mid-load: no shutdown, no flush
        proc.wait(timeout=30)
        for t in threads:
            t.join(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    before_kill = sum(len(r) for r in received)
    assert before_kill > 50, "the load did not get going before the kill"

    # the server starts again on the crashed database and keeps deciding
    after: list[str] = []
    with _server(env) as (url, _):
        stop = threading.Event()
        t = threading.Thread(target=_load, args=(url, key, after, stop, 0))
        t.start()
        time.sleep(0.5)
        stop.set()
        t.join(timeout=30)
    assert after

    in_ledger = _ledger_decision_ids(storage_url)
    acknowledged = [d for r in received for d in r] + after
    missing = [d for d in acknowledged if d not in in_ledger]
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged decisions lost"
    assert len(set(acknowledged)) == len(acknowledged)

    verify = _keyplane("ledger", "verify", "--store", STORE, "--output", "json", env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] and report["stores"][0]["checked"] >= len(acknowledged)

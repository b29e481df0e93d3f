"""The operator contract, end to end on a real socket: ``keyplane init --output json``
prints the first admin key, ``keyplane serve --host H --port P`` serves the REST API
(and the OpenFGA-compatible API, health and metrics) on one port with uvicorn, and stops
cleanly on SIGTERM. Real processes, real HTTP over loopback, a real key."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import MODEL, tk


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keyplane(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyplane", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    env = {
        **os.environ,
        "KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "KEYPLANE_MAX_BODY_BYTES": "4096",
    }
    init = _keyplane("init", "--output", "json", env=env)
    assert init.returncode == 0, init.stderr
    key = json.loads(init.stdout)["api_key"]
    assert key.startswith("kp_")

    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keyplane",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
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
        time.sleep(0.1)
    try:
        yield url, key, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_init_then_serve(server: tuple[str, str, subprocess.Popen[str]]) -> None:
    url, key, proc = server
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=auth, timeout=10) as c:
        assert c.get("/readyz").json()["status"] == "ok"
        assert httpx.get(f"{url}/v1/stores", timeout=5).status_code == 401  # no key

        assert c.post("/v1/stores", json={"name": "acme", "id": "acme"}).status_code == 201
        assert c.post("/v1/stores/acme/models", json={"dsl": MODEL}).status_code == 201
        r = c.post(
            "/v1/stores/acme/tuples/write",
            json={"writes": [tk("document:roadmap", "viewer", "user:anne")]},
        )
        rev = r.json()["revision"]
        r = c.post(
            "/v1/stores/acme/check",
            json={
                "user": "user:anne",
                "relation": "viewer",
                "object": "document:roadmap",
                "at_least_as_fresh": rev,
            },
        )
        assert r.json()["allowed"] is True

        # streamed NDJSON over a real socket
        with c.stream(
            "POST",
            "/v1/stores/acme/streamed-list-objects",
            json={"user": "user:anne", "relation": "viewer", "type": "document"},
        ) as s:
            assert [json.loads(line) for line in s.iter_lines() if line] == [
                {"object": "document:roadmap"}
            ]

        # a chunked body past KEYPLANE_MAX_BODY_BYTES, refused mid-stream by the server
        def chunks() -> Iterator[bytes]:
            yield b'{"name": "'
            for _ in range(8):
                yield b"x" * 1024
            yield b'"}'

        r = c.post("/v1/stores", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "limit_exceeded"

        # the OpenFGA-compatible API is on the same port
        r = c.get("/stores")
        assert r.status_code == 200 and "acme" in {s["id"] for s in r.json()["stores"]}

        metrics = c.get("/metrics").text
        assert (
            'keyplane_http_requests_total{method="POST",operation="check",status="200"} 1.0'
            in metrics
        )

    # SIGTERM: graceful shutdown, database closed, exit status 0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")

"""AuthZEN over HTTP on one server process (issue 5 §6) — printed, never asserted.

    make bench-authzen
    python bench/authzen_http.py --seconds 5 --connections 32 --batch 500

Starts ``keyplane serve`` (one uvicorn process, ledger on: ``KEYPLANE_LEDGER_MODE``, default
``sync``) on a fresh SQLite database holding a graph of ``--docs`` documents, then drives it
from this process with a lean keep-alive HTTP/1.1 client (raw asyncio streams, requests
pre-encoded, so the client costs little of the machine's CPU):

* ``evaluation``  — ``POST /access/v1/evaluation``, one decision per request: requests/s,
  p50 / p99 latency;
* ``evaluations`` — ``POST /access/v1/evaluations`` with ``--batch`` items: decisions/s.

Each is run twice: plain decisions (subject → graph), and — when the identity plane's
services are present — the same decisions through a two-hop delegation chain
(human → agent → sub-agent) with three guardrails, so their cost is visible.

Targets from the issue: ≥ 3,000 single evaluations/s with p99 ≤ 10 ms; ≥ 50,000
decisions/s through batches. ``--profile`` samples the server with py-spy (if installed)
during the single-evaluation run and prints where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from keyplane.config import Settings
from keyplane.service.auth import Caller
from keyplane.service.context import Services

MODEL = """\
model
  schema 1.1

type human
type agent
type user

type document
  relations
    define owner: [user, human]
    define viewer: [user, human, agent, user:*] or owner
"""

GUARDRAILS = [
    {"id": "no-prod-delete", "description": "agents may not delete in production",
     "effect": "forbid",
     "expression": 'chain_length > 0 && action == "delete" && '
                   'has(resource.attributes.env) && resource.attributes.env == "prod"'},
    {"id": "short-chains", "description": "no delegation chain longer than 2",
     "effect": "forbid", "expression": "chain_length > 2"},
    {"id": "pii-purpose", "description": "purpose required for customer PII",
     "effect": "forbid",
     "expression": 'has(resource.attributes.pii) && resource.attributes.pii && purpose == ""'},
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(db: str, docs: int) -> tuple[str, bool]:
    """Build the store; returns the admin key and whether the chain variant is available."""
    from keyplane.service import models, stores, tuples
    from keyplane.service.keys import bootstrap_admin

    svc = Services.open(Settings(database_url=db, poll_interval=0))
    sys_caller = Caller.system_caller()
    try:
        _, key = bootstrap_admin(svc)
        store = svc.settings.default_store
        with contextlib.suppress(Exception):  # the default store may exist already
            stores.create_store(svc, sys_caller, "bench", store_id=store)
        models.write_model(svc, sys_caller, store, MODEL)
        batch: list[dict[str, str]] = []
        for i in range(docs):
            batch.append(
                {"object": f"document:{i}", "relation": "viewer", "user": f"user:u{i % 1000}"}
            )
            batch.append({"object": f"document:{i}", "relation": "viewer", "user": "human:alice"})
            batch.append({"object": f"document:{i}", "relation": "viewer", "user": "agent:planner"})
            batch.append({"object": f"document:{i}", "relation": "viewer", "user": "agent:worker"})
            if len(batch) >= 900:
                tuples.write_tuples(svc, sys_caller, store, writes=batch)
                batch = []
        if batch:
            tuples.write_tuples(svc, sys_caller, store, writes=batch)
        chain = _chain(svc, sys_caller, store)
        return key, chain
    finally:
        svc.close()


def _chain(svc: Services, caller: Caller, store: str) -> bool:
    try:
        from keyplane.service import delegations, guardrails, identities
    except ImportError:
        return False
    now = time.time()
    identities.create_identity(svc, caller, store, "human", "alice")
    identities.create_identity(svc, caller, store, "agent", "planner", owners=("human:alice",))
    identities.create_identity(svc, caller, store, "agent", "worker", owners=("human:alice",))
    scope = [{"actions": ["viewer"], "resource": "document:*"}]
    d1 = delegations.create_delegation(svc, caller, store, delegator="human:alice",
                                       delegate="agent:planner", scope=scope,
                                       expires_at=now + 3600, max_depth=1)  # fmt: skip
    delegations.create_delegation(svc, caller, store, delegator="agent:planner",
                                  delegate="agent:worker", scope=scope, expires_at=now + 3600,
                                  parent_id=d1.id)  # fmt: skip
    guardrails.put_guardrails(svc, caller, store, GUARDRAILS)
    return True


def _request(path: str, body: dict[str, Any], key: str) -> bytes:
    raw = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
    )
    return head.encode() + raw


async def _conn(
    port: int, reqs: list[bytes], until: float, lat: list[float], bad: list[int]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.perf_counter() < until:
            req = reqs[n % len(reqs)]
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if status != 200:
                bad.append(status)
            n += 1
    finally:
        writer.close()
    return n


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(
    port: int, reqs: list[bytes], seconds: float, connections: int, server_pid: int = 0
) -> dict[str, float]:
    lat: list[float] = []
    bad: list[int] = []
    cpu0 = _cpu_seconds(server_pid) if server_pid else 0.0
    own0 = time.process_time()

    async def main() -> int:
        until = time.perf_counter() + seconds
        counts = await asyncio.gather(
            *(_conn(port, reqs, until, lat, bad) for _ in range(connections))
        )
        return sum(counts)

    t0 = time.perf_counter()
    n = asyncio.run(main())
    elapsed = time.perf_counter() - t0
    server_cpu = _cpu_seconds(server_pid) - cpu0 if server_pid else 0.0
    client_cpu = time.process_time() - own0
    lat.sort()
    if bad:
        print(f"  !! {len(bad)} non-200 answers, e.g. {bad[:3]}")
    return {
        "requests": n,
        "rps": n / elapsed,
        "p50": lat[len(lat) // 2] * 1000 if lat else 0.0,
        "p99": lat[int(len(lat) * 0.99)] * 1000 if lat else 0.0,
        # server CPU per request (µs) and share of one core; the client's share of a core
        "cpu_us": server_cpu / n * 1e6 if n else 0.0,
        "server_cores": server_cpu / elapsed,
        "client_cores": client_cpu / elapsed,
    }


def single(key: str, docs: int, chain: bool) -> list[bytes]:
    rng = random.Random(1)
    out = []
    for _ in range(2000):
        d = rng.randrange(docs)
        if chain:
            body = {"subject": {"type": "human", "id": "alice"}, "action": {"name": "viewer"},
                    "resource": {"type": "document", "id": str(d)},
                    "context": {"actors": [{"type": "agent", "id": "planner"},
                                           {"type": "agent", "id": "worker"}],
                                "purpose": "support"}}  # fmt: skip
        else:
            body = {"subject": {"type": "user", "id": f"u{d % 1000}"}, "action": {"name": "viewer"},
                    "resource": {"type": "document", "id": str(d)}}  # fmt: skip
        out.append(_request("/access/v1/evaluation", body, key))
    return out


def v1_checks(key: str, docs: int) -> list[bytes]:
    rng = random.Random(3)
    store = Settings().default_store
    out = []
    for _ in range(2000):
        d = rng.randrange(docs)
        body = {"user": f"user:u{d % 1000}", "relation": "viewer", "object": f"document:{d}"}
        out.append(_request(f"/v1/stores/{store}/check", body, key))
    return out


def batches(key: str, docs: int, chain: bool, size: int) -> list[bytes]:
    rng = random.Random(2)
    out = []
    for _ in range(20):
        items = [{"resource": {"type": "document", "id": str(rng.randrange(docs))}}
                 for _ in range(size)]  # fmt: skip
        if chain:
            body = {"subject": {"type": "human", "id": "alice"}, "action": {"name": "viewer"},
                    "context": {"actors": [{"type": "agent", "id": "planner"},
                                           {"type": "agent", "id": "worker"}],
                                "purpose": "support"}, "evaluations": items}  # fmt: skip
        else:
            body = {"subject": {"type": "user", "id": "u1"}, "action": {"name": "viewer"},
                    "evaluations": items}  # fmt: skip
        out.append(_request("/access/v1/evaluations", body, key))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--profile", action="store_true", help="sample the server with py-spy")
    ap.add_argument("--only-authzen", action="store_true", help="skip /healthz and /v1 check")
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="kp-authzen-bench-"))
    db = f"sqlite:///{tmp / 'bench.db'}"
    print(f"preparing {a.docs:,} documents ({a.docs * 4:,} tuples) …", flush=True)
    key, chain = prepare(db, a.docs)
    port = _free_port()
    env = {**os.environ, "KEYPLANE_DATABASE_URL": db, "KEYPLANE_MASTER_KEY_FILE": str(tmp / "mk")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keyplane", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)
        mode = os.environ.get("KEYPLANE_LEDGER_MODE", "sync")
        print(f"server pid {proc.pid} on :{port}, ledger {mode}, {a.connections} connections, "
              f"{a.seconds:g} s per run\n")  # fmt: skip
        print(f"machine: {os.cpu_count()} cores shared by the server and this load generator "
              f"(one asyncio process, pre-encoded keep-alive requests)\n")  # fmt: skip
        drive(port, single(key, a.docs, False), 1.0, a.connections)  # warm up
        rows: list[tuple[str, dict[str, float], int]] = []

        def run(name: str, reqs: list[bytes], conns: int, per: int = 1, spy: bool = False) -> None:
            sp = _spy(proc.pid, a.seconds, tmp) if spy else None
            rows.append((name, drive(port, reqs, a.seconds, conns, proc.pid), per))
            if sp is not None:
                sp.wait()

        if not a.only_authzen:
            run("GET /healthz", [b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"],
                a.connections)  # fmt: skip
            run("POST /v1/stores/{s}/check", v1_checks(key, a.docs), a.connections)
        variants = [False, True] if chain else [False]
        for c in variants:
            label = "2-hop chain + 3 guardrails" if c else "plain"
            run(f"evaluation ({label})", single(key, a.docs, c), a.connections,
                spy=a.profile and not c)  # fmt: skip
            run(f"evaluations x{a.batch} ({label})", batches(key, a.docs, c, a.batch),
                min(a.connections, 8), a.batch)  # fmt: skip
        if not chain:
            print("(identity plane services not present: the chain + guardrails rows are skipped)")
        print(f"{'run':<44} {'req/s':>8} {'decisions/s':>11} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'srv CPU µs/req':>14} {'srv cores':>9} {'client cores':>12}")  # fmt: skip
        for name, r, per in rows:
            print(f"{name:<44} {r['rps']:>8,.0f} {r['rps'] * per:>11,.0f} {r['p50']:>7.2f} "
                  f"{r['p99']:>7.2f} {r['cpu_us']:>14,.0f} {r['server_cores']:>9.2f} "
                  f"{r['client_cores']:>12.2f}")  # fmt: skip
        print("\ntargets: evaluation ≥ 3,000/s with p99 ≤ 10 ms; evaluations ≥ 50,000 decisions/s")
        print(
            "srv CPU µs/req: the server process's CPU (every thread) per request — what one "
            "core could serve is 1e6 / that, whatever else shares the machine"
        )
        if a.profile:
            _print_profile(tmp)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def _spy(pid: int, seconds: float, tmp: Path) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        print("(py-spy is not installed: no profile)")
        return None
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--format", "raw",
         "--output", str(tmp / "profile.txt"), "--nonblocking", "--threads"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _print_profile(tmp: Path) -> None:
    """Self time per function from py-spy's collapsed stacks (the leaf frame of each)."""
    path = tmp / "profile.txt"
    if not path.exists():
        print("(no profile was written: py-spy may lack ptrace permission)")
        return
    leaf: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        k = int(n)
        total += k
        frames = stack.split(";")
        name = frames[-1].split(" (")[0]
        leaf[name] = leaf.get(name, 0) + k
        for f in {fr.split(" (")[0] + " (" + fr.split(" (")[-1] for fr in frames}:
            incl[f] = incl.get(f, 0) + k
    print(f"\nserver profile (py-spy, {total} samples, all threads) — self time:")
    for name, k in sorted(leaf.items(), key=lambda x: -x[1])[:25]:
        print(f"  {100 * k / total:5.1f}%  {name}")
    print("inclusive (keyplane frames):")
    kp = [(f, k) for f, k in incl.items() if "keyplane" in f]
    for name, k in sorted(kp, key=lambda x: -x[1])[:25]:
        print(f"  {100 * k / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()

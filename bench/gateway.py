"""The MCP gateway (issue 9): what it adds to a tool call — printed, never asserted.

    make bench-gateway
    python bench/gateway.py --calls 1000 --seconds 4 --concurrency 8 --profile

Three processes on this machine: a downstream MCP server (``tests/gateway/downstream_server.py``,
streamable HTTP, served by uvicorn in a child process), Keyplane serving the gateway at
``/gateway/<store>/mcp`` (``keyplane serve``'s app and settings — uvloop/httptools when
importable, the graph warmed and frozen — in a child process, ledger ``KEYPLANE_LEDGER_MODE``,
default ``sync``, on a fresh SQLite file), and this process driving both with the official
``mcp`` client (``ClientSession`` over ``streamable_http_client``, one session per
connection, ``echo`` called with a short text):

* ``direct``  — the client calls the downstream server's ``echo`` itself;
* ``gateway`` — the client calls ``<server>__echo`` on the gateway with an access token from
  the token endpoint (``client_credentials``, ``resource`` = the gateway's URL); the tool is
  approved and the agent holds ``can_call`` on it; the gateway verifies the token, checks the
  kill switches, decides, records the decision, forwards over its pooled session and records
  ``gateway.tool_call``.

Sequential calls (one session; direct and gateway interleaved in ``--rounds`` rounds so
drift hits both alike) give p50 / p99 per call; ``--concurrency`` sessions for ``--seconds``
give calls/s. The *added* latency is gateway − direct at p50 and p99.

The same sequential calls are then made by a lean client (``raw`` rows: pre-encoded JSON-RPC
POSTs on one keep-alive httpx2 connection, no ``ClientSession``), whose own cost is small, so
the added latency is less blurred by the client. ``--downstream json`` makes the downstream
server answer JSON bodies instead of SSE streams (the SDK client then keeps its connection;
with SSE it opens a new one per call). Each row also gives the CPU per call of the downstream
server and of Keyplane (``/proc``, every thread).

Where the gateway's time goes: the Keyplane child times its stages (each function of
``keyplane.gateway.runtime`` and ``keyplane.gateway.http``, token verification, the decision,
ledger writes, graph catch-up, the gateway snapshot read, the pooled downstream call) and the
whole HTTP request, and reports them at the end; ``--profile`` also runs cProfile in every
thread of that process (the event loop and the worker threads ``anyio.to_thread`` uses)
during a separate sequential run and prints the top functions. The downstream call is
reported beside the gateway's own share (request time minus the downstream round trip).

What-ifs (``--what-if-calls``, 0 to skip): switches the Keyplane child turns on between runs,
each simulating one change to the gateway's code (see ``WHAT_IFS``: recording the call event
without waiting or through the fast lane's ``LedgerBridge``, the ledger in async mode, the
tools/call lane ahead of the app's middleware, the pool's forward without ``ClientSession``
on httpx2 or on a plain keep-alive asyncio connection) — measured against the same processes,
configurations interleaved round by round, with Keyplane's CPU per call, so a change's gain is
known before anyone writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import functools
import inspect
import io
import json
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
STORE = "default"
SERVER = "bench"  # the downstream server's name in the gateway
AGENT = "agent:bench-agent"
MODEL = """\
model
  schema 1.1

type human
type agent
"""
BENCH_PREFIX = "/__bench/"  # the Keyplane child's own stats routes (outside Keyplane's app)
#: what-if switches the Keyplane child can turn on between runs (each simulates one change
#: to the gateway's code, so its gain is measured before anyone writes it)
WHAT_IFS = {
    "bg-record": "the gateway.tool_call event is recorded without the answer waiting for it",
    "bridge-record": "the gateway.tool_call event recorded through the fast lane's "
    "LedgerBridge (awaited, durable, no worker-thread hop; group commit under load)",
    "ledger-async": "the ledger in async mode (events queued, not committed before the "
    "answer): what the two sync commits per call cost",
    "pre-app-lane": "tools/call POSTs answered ahead of the app's middleware stack and "
    "routing (JSON-RPC by hand, token verified on the loop, then runtime.call)",
    "raw-forward": "the pool forwards with one JSON-RPC POST on a keep-alive httpx2 client "
    "per server, not a ClientSession",
    "stream-forward": "the pool forwards with one pre-built HTTP/1.1 request on a keep-alive "
    "asyncio connection per server (no httpx2; plain http only): the HTTP client's own cost",
}
#: combinations that keep every guarantee (events durable before the answer): with the
#: forward on httpx2, and with the lean HTTP/1.1 forward
COMBOS = {
    "durable, httpx2": ("bridge-record", "pre-app-lane", "raw-forward"),
    "durable, lean": ("bridge-record", "pre-app-lane", "stream-forward"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * q))]


# =============================================================================== children


def role_downstream(ready: Path, answers: str) -> None:
    """Serve tests/gateway/downstream_server.py over streamable HTTP until terminated:
    stateful, answers as SSE streams (the SDK's default) or as JSON bodies."""
    sys.path.insert(0, str(ROOT / "tests" / "gateway"))
    sys.path.insert(0, str(ROOT / "tests"))
    import downstream_server  # type: ignore[import-not-found]

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with downstream_server.serve_downstream(json_response=answers == "json") as handle:
        ready.write_text(str(handle.url))
        stop.wait()


class Probe:
    """Stage timers and (on demand) cProfile in every thread, inside the Keyplane child."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        self.profiling = False
        self.profiles: list[cProfile.Profile] = []
        self.local = threading.local()
        self.patched: list[str] = []
        #: what-if switches (see WHAT_IFS), set through /__bench/what-if?set=a,b
        self.flags: set[str] = set()
        self.app: Any = None
        self.bridge: Any = None
        self.svc: Any = None
        self.mode0 = "sync"

    # -- timers
    def add(self, name: str, dt: float) -> None:
        with self.lock:
            self.times.setdefault(name, []).append(dt)

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        pc = time.perf_counter
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapped(*a: Any, **kw: Any) -> Any:
                t0 = pc()
                try:
                    return await fn(*a, **kw)
                finally:
                    self.add(name, pc() - t0)

            return awrapped

        @functools.wraps(fn)
        def wrapped(*a: Any, **kw: Any) -> Any:
            t0 = pc()
            try:
                return fn(*a, **kw)
            finally:
                self.add(name, pc() - t0)

        return wrapped

    def patch(self, module: str, qualname: str, label: str | None = None) -> None:
        """Time ``module.qualname`` (a function or a plain method), also where another
        ``keyplane`` module imported the function by name."""
        try:
            mod = __import__(module, fromlist=["_"])
        except Exception:
            return
        owner: Any = mod
        parts = qualname.split(".")
        for p in parts[:-1]:
            owner = getattr(owner, p, None)
            if owner is None:
                return
        raw = inspect.getattr_static(owner, parts[-1], None)
        if not inspect.isfunction(raw) or inspect.isasyncgenfunction(raw):
            return
        if getattr(raw, "_bench_timed", False) or inspect.isgeneratorfunction(raw):
            return
        label = label or f"{module.removeprefix('keyplane.')}.{qualname}"
        new = self._wrap(label, raw)
        new._bench_timed = True  # type: ignore[attr-defined]
        setattr(owner, parts[-1], new)
        if owner is mod:  # rebind copies made by `from module import fn`
            for m in list(sys.modules.values()):
                if getattr(m, "__name__", "").startswith("keyplane") and m is not mod:
                    for k, v in list(vars(m).items()):
                        if v is raw:
                            setattr(m, k, new)
        self.patched.append(label)

    def patch_module(self, module: str) -> None:
        """Time every function and method defined in ``module``."""
        try:
            mod = __import__(module, fromlist=["_"])
        except Exception:
            return
        for name, obj in list(vars(mod).items()):
            if inspect.isfunction(obj) and obj.__module__ == module:
                self.patch(module, name)
            elif inspect.isclass(obj) and obj.__module__ == module:
                for attr, raw in list(vars(obj).items()):
                    if inspect.isfunction(raw) and (attr == "__call__" or attr[:2] != "__"):
                        self.patch(module, f"{name}.{attr}")

    # -- cProfile in every thread
    def thread_profile(self) -> cProfile.Profile:
        prof = getattr(self.local, "prof", None)
        if prof is None:
            prof = cProfile.Profile()
            self.local.prof = prof
            with self.lock:
                self.profiles.append(prof)
        return prof

    def install_thread_hook(self) -> None:
        """Time each ``anyio.to_thread.run_sync`` hop; profile the worker threads."""
        import anyio.to_thread

        orig = anyio.to_thread.run_sync

        pc = time.perf_counter

        async def run_sync(func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
            """Time the hop (the wall time of the await less the function's own) and,
            while profiling, profile the function in its worker thread."""
            inner = [0.0]

            def timed(*a: Any) -> Any:
                prof = self.thread_profile() if self.profiling else None
                t0 = pc()
                if prof is not None:
                    prof.enable()
                try:
                    return func(*a)
                finally:
                    if prof is not None:
                        prof.disable()
                    inner[0] = pc() - t0

            name = getattr(func, "__name__", "")
            is_record = (
                name == "record" and getattr(func, "__module__", "") == "keyplane.service.audit"
            )  # the call's gateway.tool_call event (the decision's is recorded in _decide)
            if is_record and "bg-record" in self.flags:  # not waited for
                asyncio.get_running_loop().run_in_executor(None, func, *args)
                return None
            if is_record and "bridge-record" in self.flags:  # the fast lane's group commit
                if self.bridge is None:
                    from keyplane.api.fastpath import LedgerBridge

                    self.bridge = LedgerBridge(args[0])
                await self.bridge.record(args[1])
                return None
            t0 = pc()
            try:
                return await orig(timed, *args, **kw)
            finally:
                self.add(
                    "anyio.to_thread.run_sync: the hop (wall − function)", pc() - t0 - inner[0]
                )

        anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]
        for m in list(sys.modules.values()):
            for k, v in list(vars(m).items()) if hasattr(m, "__dict__") else ():
                if v is orig:
                    with contextlib.suppress(Exception):
                        setattr(m, k, run_sync)

    # -- the ASGI wrapper
    def wrap_app(self, app: Any) -> Any:
        pc = time.perf_counter
        self.app = app

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            path: str = scope.get("path", "")
            if path.startswith(BENCH_PREFIX):
                await self._control(path[len(BENCH_PREFIX) :], scope, receive, send)
                return
            t0 = pc()
            try:
                if (
                    "pre-app-lane" in self.flags
                    and path.startswith("/gateway/")
                    and scope.get("method") == "POST"
                ):
                    await self._bypass(scope, receive, send)
                else:
                    await app(scope, receive, send)
            finally:
                kind = "gateway" if path.startswith("/gateway/") else "other"
                self.add(f"http request {kind} (ASGI, whole)", pc() - t0)

        return asgi

    async def _bypass(self, scope: Any, receive: Any, send: Any) -> None:
        """What-if ``pre-app-lane``: a ``tools/call`` POST answered by the runtime directly
        (token verified on the loop, JSON-RPC in and out by hand); anything else goes to
        the app as usual."""
        import uuid

        from keyplane.gateway.http import _base, gateway_path
        from keyplane.service.context import request_id_var

        chunks = []
        more = True
        while more:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            more = bool(msg.get("more_body"))
        body = b"".join(chunks)
        try:
            req = json.loads(body)
        except ValueError:
            req = None
        if not (isinstance(req, dict) and req.get("method") == "tools/call"):
            sent = False

            async def replay() -> dict[str, Any]:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        endpoint = self.app.state.gateway
        svc = endpoint.services
        store_id = scope["path"].split("/")[2]
        base = _base(svc, scope)
        runtime = endpoint.gateways.runtime(store_id, base + gateway_path(store_id))
        headers = dict(scope.get("headers") or [])
        token = headers.get(b"authorization", b"").decode().partition(" ")[2].strip()
        request_id_var.set(uuid.uuid4().hex)
        verified = runtime.authenticate(token)
        keep = getattr(endpoint.gateways, "keep", None)
        if keep is not None:
            keep(runtime)
        params = req.get("params") or {}
        result = await runtime.call(
            token, params.get("name", ""), params.get("arguments"),
            meta=params.get("_meta"), verified=verified,
        )  # fmt: skip
        out = {
            "jsonrpc": "2.0",
            "id": req.get("id"),
            "result": result.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        raw = json.dumps(out, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": raw})

    def install_raw_forward(self, svc: Any) -> None:
        """What-if ``raw-forward``: the pool's call as one JSON-RPC POST on a keep-alive
        httpx2 client per server (initialized once), no ``ClientSession``."""
        import httpx2
        import mcp.types as types

        from keyplane.gateway.downstream import DownstreamPool

        orig = DownstreamPool.call_tool
        clients: dict[tuple[str, str], Any] = {}
        ids = [0]

        def answer(r: Any) -> dict[str, Any]:
            text = r.text
            if r.headers.get("content-type", "").startswith("text/event-stream"):
                text = next(ln[5:] for ln in text.splitlines() if ln.startswith("data:"))
            return dict(json.loads(text))

        async def client_for(server: Any) -> Any:
            key = (server.store_id, server.name)
            http = clients.get(key)
            if http is None:
                http = httpx2.AsyncClient(timeout=60, headers={
                    "Accept": "application/json, text/event-stream",
                    "Content-Type": "application/json"})  # fmt: skip
                init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "keyplane-gateway", "version": "1"}}}  # fmt: skip
                r = await http.post(server.url, json=init)
                sid = r.headers.get("mcp-session-id")
                if sid:
                    http.headers["mcp-session-id"] = sid
                http.headers["mcp-protocol-version"] = "2025-11-25"
                await http.post(server.url, json={"jsonrpc": "2.0",
                                                  "method": "notifications/initialized"})  # fmt: skip
                clients[key] = http
            return http

        idle: dict[tuple[str, str], list[Any]] = {}
        heads: dict[tuple[str, str], tuple[str, int, str]] = {}

        async def stream_for(server: Any) -> Any:
            """An idle keep-alive asyncio connection to ``server`` (a new one when none is
            idle: one request at a time on each) and its request head."""
            key = (server.store_id, server.name)
            if key not in heads:
                http = await client_for(server)  # the session (initialize) comes from there
                u = httpx2.URL(server.url)
                head = (
                    f"POST {u.raw_path.decode()} HTTP/1.1\r\nHost: {u.host}:{u.port}\r\n"
                    "Content-Type: application/json\r\n"
                    "Accept: application/json, text/event-stream\r\n"
                    + "".join(f"{k}: {http.headers[k]}\r\n"
                              for k in ("mcp-session-id", "mcp-protocol-version")
                              if k in http.headers)
                )  # fmt: skip
                heads[key] = (u.host, u.port or 80, head)
            host, port, head = heads[key]
            free = idle.setdefault(key, [])
            if free:
                return key, free.pop(), head
            return key, await asyncio.open_connection(host, port), head

        async def stream_post(server: Any, body: bytes) -> dict[str, Any]:
            key, (reader, writer), head = await stream_for(server)
            request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
            try:
                writer.write(request)
                raw_head = await reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                # an idle connection the server closed (its keep-alive timeout): nothing
                # of an answer arrived, so the request was not processed — once more on a
                # new connection (what httpcore does for a reused connection too)
                writer.close()
                host, port, _ = heads[key]
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                raw_head = await reader.readuntil(b"\r\n\r\n")
            fields = {}
            for line in raw_head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                fields[k.strip().lower()] = v.strip()
            if b"content-length" in fields:
                data = await reader.readexactly(int(fields[b"content-length"]))
            else:  # chunked
                parts = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    chunk = await reader.readexactly(size + 2)
                    if size == 0:
                        break
                    parts.append(chunk[:-2])
                data = b"".join(parts)
            idle[key].append((reader, writer))  # the response was read whole: reusable
            text = data.decode()
            if fields.get(b"content-type", b"").startswith(b"text/event-stream"):
                text = next(ln[5:] for ln in text.splitlines() if ln.startswith("data:"))
            return dict(json.loads(text))

        async def call_tool(pool: Any, server: Any, tool: str, arguments: Any) -> Any:
            lean = "stream-forward" in self.flags
            if not (lean or "raw-forward" in self.flags) or server.transport != "http":
                return await orig(pool, server, tool, arguments)
            ids[0] += 1
            body = json.dumps({"jsonrpc": "2.0", "id": ids[0], "method": "tools/call",
                               "params": {"name": tool, "arguments": arguments}})  # fmt: skip
            if lean:
                got = await stream_post(server, body.encode())
            else:
                http = await client_for(server)
                got = answer(await http.post(server.url, content=body))
            return types.CallToolResult.model_validate(got["result"])

        DownstreamPool.call_tool = call_tool  # type: ignore[method-assign]

    async def _control(self, what: str, scope: Any, receive: Any, send: Any) -> None:
        body: dict[str, Any] = {}
        if what == "reset":
            with self.lock:
                self.times.clear()
        elif what == "profile-start":
            with self.lock:
                self.times.clear()
                self.profiles.clear()
            self.local = threading.local()
            self.profiling = True
            self.thread_profile().enable()  # the event loop's thread
        elif what == "profile-stop":
            self.thread_profile().disable()
            self.profiling = False
            out = Path(os.environ["BENCH_PROFILE_OUT"])
            stats: pstats.Stats | None = None
            for p in self.profiles:
                with contextlib.suppress(TypeError):  # a profile that saw nothing
                    if stats is None:
                        stats = pstats.Stats(p)
                    else:
                        stats.add(p)
            if stats is not None:
                stats.dump_stats(str(out))
            body["threads"] = len(self.profiles)
        elif what.startswith("what-if"):
            query = parse_qs(scope.get("query_string", b"").decode())
            self.flags = {f for v in query.get("set", []) for f in v.split(",") if f}
            if self.svc is not None:
                self.svc.ledger.mode = "async" if "ledger-async" in self.flags else self.mode0
            body["flags"] = sorted(self.flags)
        elif what == "stats":
            with self.lock:
                body["times"] = {k: list(v) for k, v in self.times.items()}
            body["patched"] = self.patched
        raw = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": raw})


def role_keyplane(port: int, instrument: bool) -> None:
    """``keyplane serve``'s app and settings, wrapped with the probe."""
    import uvicorn

    from keyplane.api import create_app
    from keyplane.cli.serve import _stopped, _warm
    from keyplane.config import Settings
    from keyplane.embedded import Keyplane

    kp = Keyplane.open(settings=Settings.from_env())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped)
    _warm(kp.services)
    app = create_app(kp.services)
    if not any(getattr(r, "path", "").startswith("/gateway/") for r in app.router.routes):
        with contextlib.suppress(ImportError):  # before api/app.py mounts it
            from keyplane.gateway.http import mount_gateway

            mount_gateway(app, kp.services)
    probe = Probe()
    if instrument:
        for module in ("keyplane.gateway.runtime", "keyplane.gateway.http"):
            probe.patch_module(module)
        svc = kp.services
        probe.patch("keyplane.service.tokens", "verify_access_token")
        probe.patch("keyplane.service.decisions", "evaluate_unrecorded")
        probe.patch("keyplane.service.decisions", "decide")
        probe.patch("keyplane.service.audit", "record")
        probe.patch("keyplane.gateway.downstream", "DownstreamPool.call_tool")
        probe.patch("keyplane.gateway.downstream", "open_secret")
        # the SDK's share: the server side (stateless manager, per request) and the pool's
        # client side (the session's request; its HTTP exchange with the downstream server)
        probe.patch(
            "mcp.server.streamable_http_manager",
            "StreamableHTTPSessionManager.handle_request",
            "mcp SDK server: StreamableHTTPSessionManager.handle_request",
        )
        probe.patch(
            "mcp.client.session",
            "ClientSession.send_request",
            "mcp SDK client (pool): ClientSession.send_request",
        )
        probe.patch("httpx2", "AsyncClient.send", "httpx2 AsyncClient.send (pool → downstream)")
        for obj, names in (
            (svc.graphs, ("catch_up", "engine", "policy")),
            (svc.storage, ("read_gateway",)),
            (svc.ledger, ("record", "record_many")),
        ):
            cls = type(obj)
            for n in names:
                if inspect.isfunction(inspect.getattr_static(cls, n, None)):
                    probe.patch(cls.__module__, f"{cls.__qualname__}.{n}", f"{cls.__name__}.{n}")
        probe.install_thread_hook()
        probe.install_raw_forward(svc)
        probe.svc, probe.mode0 = svc, svc.ledger.mode
    try:
        uvicorn.run(
            probe.wrap_app(app),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            http="auto",
            loop="auto",
        )
    finally:
        kp.close()


# ================================================================================ set-up


def prepare(db: str, downstream_url: str) -> tuple[str, str | None, str]:
    """Store, agent with a client secret; the downstream server registered, discovered, its
    ``echo`` approved and callable by the agent. Returns (client id, secret, note)."""
    from keyplane.config import Settings
    from keyplane.service import credentials, identities, models, stores, tuples
    from keyplane.service.auth import Caller
    from keyplane.service.context import Services

    system = Caller.system_caller()
    svc = Services.open(Settings.from_env(database_url=db, poll_interval=0))
    try:
        with contextlib.suppress(Exception):  # the default store may exist already
            stores.create_store(svc, system, "bench", store_id=STORE)
        models.write_model(svc, system, STORE, MODEL)
        kind, _, name = AGENT.partition(":")
        identities.create_identity(svc, system, STORE, "human", "bench-owner")
        identities.create_identity(svc, system, STORE, kind, name, owners=("human:bench-owner",))
        _, secret = credentials.create_credential(svc, system, STORE, AGENT)
        try:
            from keyplane.service import gateway
        except ImportError:  # before the service ops: the records written directly
            return AGENT, secret, _register_in_storage(svc, downstream_url)
        server = gateway.register_server(
            svc, system, STORE, SERVER, transport="http", url=downstream_url, discover=True
        )
        if server.last_discovery_error:
            return AGENT, secret, f"discovery failed: {server.last_discovery_error}"
        gateway.update_tool(svc, system, STORE, SERVER, "echo", status="enabled")
        obj = f"mcp_tool:{SERVER}/echo"
        tuples.write_tuples(
            svc, system, STORE, writes=[{"object": obj, "relation": "caller", "user": AGENT}]
        )
        return AGENT, secret, ""
    finally:
        svc.close()


def _register_in_storage(svc: Any, downstream_url: str) -> str:
    """The server and its approved ``echo`` (with the agent's grant) written through
    ``storage.write_gateway``, its definition from the downstream server's tools/list."""
    from keyplane.gateway.records import (
        GatewayWrite,
        McpServer,
        McpTool,
        definition_digest,
        tool_object,
    )
    from keyplane.graph.tuples import Tuple

    async def echo_tool() -> Any:
        async with session(downstream_url, None) as s:
            listed = await s.list_tools()
        return next(t for t in listed.tools if t.name == "echo")

    t = asyncio.run(echo_tool())
    now = time.time()
    annotations = t.annotations.model_dump(exclude_none=True) if t.annotations else {}
    digest = definition_digest(t.description, t.input_schema, annotations, t.title)
    server = McpServer(STORE, SERVER, "http", url=downstream_url, created_at=now, updated_at=now)
    tool = McpTool(
        STORE, SERVER, "echo", title=t.title, description=t.description,
        input_schema=dict(t.input_schema or {}), annotations=annotations, digest=digest,
        status="enabled", kind="read", risk="normal", approved_digest=digest,
        approved_by="bench", approved_at=now, first_seen_at=now, last_seen_at=now,
        updated_at=now,
    )  # fmt: skip
    obj = tool_object(SERVER, "echo")
    write = GatewayWrite(
        servers=(server,),
        tools=(tool,),
        tuple_writes=(
            Tuple(obj, "server", f"mcp_server:{SERVER}"),
            Tuple(obj, "caller", AGENT),
        ),
    )
    svc.storage.write_gateway(STORE, lambda r: write)
    return ""


def fetch_token(base: str, client: str, secret: str, resource: str) -> str:
    import httpx

    auth = base64.b64encode(f"{client}:{secret}".encode()).decode()
    last = ""
    for extra in ({"resource": resource}, {}):
        r = httpx.post(
            f"{base}/stores/{STORE}/oauth2/token",
            data={"grant_type": "client_credentials", **extra},
            headers={"Authorization": f"Basic {auth}"},
            timeout=30,
        )
        if r.status_code == 200:
            return str(r.json()["access_token"])
        last = f"{r.status_code} {r.text[:200]}"
    raise SystemExit(f"no access token from the token endpoint: {last}")


# ================================================================================ driving


@contextlib.asynccontextmanager
async def session(url: str, token: str | None) -> Any:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from mcp import ClientSession

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    async with (
        http,
        streamable_http_client(url, http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as s,
    ):
        await s.initialize()
        yield s


async def echo_args(url: str, token: str | None, name: str) -> dict[str, Any]:
    """Arguments for the echo tool, from its input schema (a short string each)."""
    async with session(url, token) as s:
        listed = await s.list_tools()
    for t in listed.tools:
        if t.name == name:
            schema = t.input_schema or {}
            props = schema.get("properties") or {}
            req = schema.get("required") or list(props)[:1]
            return {k: "hello gateway" for k in req}
    raise SystemExit(f"{name} is not in tools/list at {url}: {[t.name for t in listed.tools]}")


class Target:
    def __init__(self, label: str, url: str, token: str | None, tool: str, pid: int) -> None:
        self.label, self.url, self.token, self.tool, self.pid = label, url, token, tool, pid
        self.args: dict[str, Any] = {}
        self.lat: list[float] = []
        self.errors = 0
        self.first_error = ""
        #: CPU seconds each server process used during the measured calls
        self.cpu_pids: list[int] = []
        self.cpu: dict[int, float] = {}

    def cpu_mark(self) -> dict[int, float]:
        return {p: _cpu_seconds(p) for p in self.cpu_pids}

    def cpu_add(self, mark: dict[int, float]) -> None:
        for p, c in mark.items():
            self.cpu[p] = self.cpu.get(p, 0.0) + _cpu_seconds(p) - c

    def cpu_us(self, pid: int) -> float:
        return self.cpu.get(pid, 0.0) / len(self.lat) * 1e6 if self.lat else 0.0


async def sequential(t: Target, n: int) -> None:
    pc = time.perf_counter
    async with session(t.url, t.token) as s:
        for _ in range(min(20, n)):  # warm the session
            await s.call_tool(t.tool, t.args)
        mark = t.cpu_mark()
        for _ in range(n):
            t0 = pc()
            r = await s.call_tool(t.tool, t.args)
            t.lat.append(pc() - t0)
            if r.is_error:
                t.errors += 1
                t.first_error = t.first_error or str(r.content)[:200]
        t.cpu_add(mark)


async def sequential_raw(t: Target, n: int) -> None:
    """The same calls from a lean client: pre-encoded JSON-RPC POSTs on one keep-alive
    httpx2 connection (initialize + initialized once), the answer's JSON (or its SSE
    ``data:`` line) parsed — no ``ClientSession``, so the client's share is small."""
    import httpx2

    version = "2025-11-25"
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    if t.token:
        headers["Authorization"] = f"Bearer {t.token}"

    def answer(r: Any) -> dict[str, Any]:
        text = r.text
        if r.headers.get("content-type", "").startswith("text/event-stream"):
            text = next(ln[5:] for ln in text.splitlines() if ln.startswith("data:"))
        return dict(json.loads(text))

    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"}}}  # fmt: skip
        r = await http.post(t.url, json=init)
        r.raise_for_status()
        sid = r.headers.get("mcp-session-id")
        if sid:
            http.headers["mcp-session-id"] = sid
        http.headers["mcp-protocol-version"] = version
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await http.post(t.url, json=note)
        pc = time.perf_counter
        mark = t.cpu_mark()
        for i in range(n + min(20, n)):
            if i == min(20, n):
                mark = t.cpu_mark()
            body = json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                               "params": {"name": t.tool, "arguments": t.args}}).encode()  # fmt: skip
            t0 = pc()
            r = await http.post(t.url, content=body)
            got = answer(r)
            dt = pc() - t0
            if i >= min(20, n):
                t.lat.append(dt)
            result = got.get("result") or {}
            if r.status_code != 200 or "error" in got or result.get("isError"):
                t.errors += 1
                t.first_error = t.first_error or str(got)[:200]
        t.cpu_add(mark)


async def throughput(t: Target, seconds: float, conc: int, pids: list[int]) -> dict[str, float]:
    pc = time.perf_counter
    lat: list[float] = []
    errors = 0

    async def worker(until_box: list[float], ready: asyncio.Event, go: asyncio.Event) -> int:
        nonlocal errors
        n = 0
        async with session(t.url, t.token) as s:
            await s.call_tool(t.tool, t.args)
            ready.set()
            await go.wait()
            while pc() < until_box[0]:
                t0 = pc()
                r = await s.call_tool(t.tool, t.args)
                lat.append(pc() - t0)
                errors += bool(r.is_error)
                n += 1
        return n

    until = [0.0]
    readies = [asyncio.Event() for _ in range(conc)]
    go = asyncio.Event()
    tasks = [asyncio.create_task(worker(until, readies[i], go)) for i in range(conc)]
    for e in readies:
        await e.wait()
    cpu0 = {p: _cpu_seconds(p) for p in pids}
    own0 = time.process_time()
    start = pc()
    until[0] = start + seconds
    go.set()
    counts = await asyncio.gather(*tasks)
    elapsed = pc() - start
    n = sum(counts)
    out = {
        "calls": n,
        "rate": n / elapsed,
        "p50": _pct(lat, 0.5) * 1000,
        "p99": _pct(lat, 0.99) * 1000,
        "errors": errors,
        "client_cores": (time.process_time() - own0) / elapsed,
    }
    for p in pids:
        out[f"cpu_us:{p}"] = (_cpu_seconds(p) - cpu0[p]) / n * 1e6 if n else 0.0
    return out


def _bench_get(base: str, what: str) -> dict[str, Any]:
    import httpx

    r = httpx.get(f"{base}{BENCH_PREFIX}{what}", timeout=60)
    r.raise_for_status()
    return dict(r.json())


# ================================================================================ report


def print_stages(times: dict[str, list[float]], calls: int) -> None:
    """Per stage: calls, per gateway call (mean), p50 per invocation, share of the request."""
    whole = times.get("http request gateway (ASGI, whole)", [])
    whole_mean = statistics.fmean(whole) if whole else 0.0
    down = times.get("gateway.downstream.DownstreamPool.call_tool", [])
    print(f"\n  {'stage (inclusive wall time)':<58} {'n/call':>6} {'µs/call':>8} "
          f"{'p50 µs':>8} {'p99 µs':>8} {'% req':>6}")  # fmt: skip
    rows = sorted(times.items(), key=lambda kv: -sum(kv[1]))
    for name, xs in rows:
        per_call = sum(xs) / calls * 1e6 if calls else 0.0
        share = 100 * (sum(xs) / calls) / whole_mean if whole_mean and calls else 0.0
        print(
            f"  {name[:58]:<58} {len(xs) / calls if calls else 0:>6.2f} {per_call:>8.0f} "
            f"{_pct(xs, 0.5) * 1e6:>8.0f} {_pct(xs, 0.99) * 1e6:>8.0f} {share:>6.1f}"
        )
    if whole and down:
        own = [w * 1e6 for w in whole]
        own_mean = statistics.fmean(whole) - statistics.fmean(down)
        print(
            f"\n  gateway's own share per call (HTTP request − downstream round trip): "
            f"{own_mean * 1e6:,.0f} µs mean "
            f"(request p50 {_pct(own, 0.5):,.0f} µs, downstream call p50 "
            f"{_pct(down, 0.5) * 1e6:,.0f} µs)"
        )


#: where a function's self time goes, by the first fragment its file path contains
BUCKETS = (
    ("/fastapi/", "fastapi (routing, app)"),
    ("/starlette/", "starlette"),
    ("/uvicorn/", "uvicorn (HTTP server)"),
    ("/mcp/server/", "mcp SDK, server side"),
    ("/mcp/client/", "mcp SDK, client side (pool)"),
    ("/mcp/shared/", "mcp SDK, shared (dispatcher, streams)"),
    ("/mcp_types/", "mcp SDK, types"),
    ("/httpx2/", "httpx2 (pool → downstream)"),
    ("/httpcore", "httpcore (pool → downstream)"),
    ("/anyio/", "anyio (task groups, streams, threads)"),
    ("/pydantic", "pydantic"),
    ("/keyplane/ledger/", "keyplane.ledger"),
    ("/keyplane/storage/", "keyplane.storage"),
    ("/keyplane/gateway/", "keyplane.gateway"),
    ("/keyplane/", "keyplane (other)"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
    ("/logging/", "logging"),
    ("bench/gateway.py", "bench probe (timers)"),
)


def _bucket(filename: str, func: str) -> str:
    for frag, name in BUCKETS:
        if frag in filename:
            return name
    if filename == "~":
        if "sqlite3" in func:
            return "sqlite3 (C)"
        if "lock" in func:
            return "thread locks (waits)"
        if "socket" in func or "select" in func or "epoll" in func:
            return "sockets / poll (C)"
        if "pydantic" in func:
            return "pydantic"
        return "other builtins (C)"
    return "other Python"


def print_profile(path: Path, top: int) -> None:
    if not path.exists():
        print("  (no profile written)")
        return
    raw = pstats.Stats(str(path))
    by: dict[str, float] = {}
    total = 0.0
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in raw.stats.items():  # type: ignore[attr-defined]
        b = _bucket(filename, func)
        by[b] = by.get(b, 0.0) + tt
        total += tt
    print("\n  cProfile self time by package (every thread; lock waits are worker threads idle):")
    for b, tt in sorted(by.items(), key=lambda kv: -kv[1]):
        print(f"    {100 * tt / total:5.1f}%  {b}")
    for key, title in (("tottime", "self time"), ("cumulative", "cumulative")):
        buf = io.StringIO()
        st = pstats.Stats(str(path), stream=buf)
        st.strip_dirs().sort_stats(key).print_stats(top)
        text = buf.getvalue()
        lines = text.splitlines()
        start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
        print(f"\n  cProfile, every thread of the Keyplane process — by {title} (top {top}):")
        for ln in lines[start : start + top + 1]:
            print("   " + ln[:150])


# ================================================================================ main


@contextlib.contextmanager
def child(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (this file with ``--role``); its stderr goes to ``log``, whose tail
    is printed when the run fails."""
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, __file__, *args], env=env, stderr=err)
        try:
            yield proc
        except BaseException:
            tail = log.read_text(errors="replace").splitlines()[-40:]
            if tail:
                print(f"--- {log.name} (last lines) ---", *tail, sep="\n", file=sys.stderr)
            raise
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--calls", type=int, default=600, help="sequential calls per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0, help="per throughput run")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument(
        "--downstream",
        choices=["sse", "json"],
        default="sse",
        help="the downstream server answers tools/call as an SSE stream (the SDK's default; "
        "the client opens a new connection per call) or a JSON body (keep-alive)",
    )
    ap.add_argument("--profile", action="store_true", help="cProfile the Keyplane process")
    ap.add_argument("--profile-calls", type=int, default=400)
    ap.add_argument(
        "--profile-what-if", default="", help="what-if switches on during the profiled run"
    )
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--no-instrument", action="store_true", help="no stage timers, no what-if")
    ap.add_argument(
        "--what-if-calls", type=int, default=300, help="calls per what-if round (0: none)"
    )
    ap.add_argument("--role", choices=["downstream", "keyplane"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--ready", help=argparse.SUPPRESS)
    ap.add_argument("--instrument", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "downstream":
        role_downstream(Path(a.ready), a.downstream)
        return
    if a.role == "keyplane":
        role_keyplane(a.port, a.instrument)
        return

    tmp = Path(tempfile.mkdtemp(prefix="kp-gateway-bench-"))
    try:
        run(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(a: argparse.Namespace, tmp: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    db = f"sqlite:///{tmp / 'bench.db'}"
    mode = os.environ.get("KEYPLANE_LEDGER_MODE", "sync")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "KEYPLANE_DATABASE_URL": db,
        "KEYPLANE_MASTER_KEY_FILE": str(tmp / "mk"),
        "KEYPLANE_ISSUER": base,
        "KEYPLANE_LEDGER_MODE": mode,
        "KEYPLANE_DEFAULT_STORE": STORE,
        "BENCH_PROFILE_OUT": str(tmp / "gateway.prof"),
    }
    os.environ.update({k: env[k] for k in ("KEYPLANE_MASTER_KEY_FILE", "KEYPLANE_ISSUER")})
    ready = tmp / "downstream.url"
    print(f"machine: {os.cpu_count()} cores, shared by the client (this process), Keyplane "
          f"and the downstream server (one process each); ledger {mode}, SQLite; downstream answers {a.downstream}\n")  # fmt: skip
    down_args = ["--role", "downstream", "--ready", str(ready), "--downstream", a.downstream]
    with child(down_args, env, tmp / "downstream.log") as down:
        deadline = time.time() + 60
        while not ready.exists() or not ready.read_text():
            if time.time() > deadline or down.poll() is not None:
                raise SystemExit("the downstream server did not start")
            time.sleep(0.05)
        down_url = ready.read_text().strip()
        client, secret, note = prepare(db, down_url)
        kp_args = ["--role", "keyplane", "--port", str(port)]
        if not a.no_instrument:
            kp_args.append("--instrument")
        with child(kp_args, env, tmp / "keyplane.log") as kp:
            wait_port(port, kp, "keyplane")
            asyncio.run(drive(a, base, down_url, down.pid, kp.pid, client, secret, note, tmp))


async def what_ifs(a: argparse.Namespace, base: str, gw: Target) -> None:
    """Each what-if switch alone, then all together, against the same processes: the
    lean client's sequential calls, configurations interleaved round by round."""
    configs = [
        ("baseline", ""),
        *((k, k) for k in WHAT_IFS),
        *((name, ",".join(flags)) for name, flags in COMBOS.items()),
    ]
    lat: dict[str, list[float]] = {name: [] for name, _ in configs}
    cpu: dict[str, float] = {name: 0.0 for name, _ in configs}
    errs: dict[str, int] = {}
    for _ in range(a.rounds):
        for name, flags in configs:
            await asyncio.to_thread(_bench_get, base, f"what-if?set={flags}")
            t = Target(name, gw.url, gw.token, gw.tool, gw.pid)
            t.args, t.cpu_pids = gw.args, [gw.pid]
            await sequential_raw(t, a.what_if_calls)
            lat[name].extend(t.lat)
            cpu[name] += t.cpu.get(gw.pid, 0.0)
            errs[name] = errs.get(name, 0) + t.errors
            if t.first_error:
                print(f"  !! {name}: {t.first_error}")
    await asyncio.to_thread(_bench_get, base, "what-if?set=")
    b50, b99 = _pct(lat["baseline"], 0.5), _pct(lat["baseline"], 0.99)
    print(f"\nwhat-if (simulated in the Keyplane child; lean client, {a.rounds} interleaved "
          f"rounds × {a.what_if_calls} calls each):")  # fmt: skip
    print(f"  {'':<16} {'p50 ms':>8} {'p99 ms':>8} {'Δp50 ms':>8} {'Δp99 ms':>8} "
          f"{'kp µs/call':>10} {'errors':>6}")  # fmt: skip
    for name, _ in configs:
        x = lat[name]
        print(f"  {name:<16} {_pct(x, 0.5) * 1e3:>8.3f} {_pct(x, 0.99) * 1e3:>8.3f} "
              f"{(_pct(x, 0.5) - b50) * 1e3:>+8.3f} {(_pct(x, 0.99) - b99) * 1e3:>+8.3f} "
              f"{cpu[name] / max(1, len(x)) * 1e6:>10,.0f} {errs.get(name, 0):>6}")  # fmt: skip
    for k, v in WHAT_IFS.items():
        print(f"  {k}: {v}")
    for k, flags in COMBOS.items():
        print(f"  {k}: {' + '.join(flags)}")
    print(f"  throughput, {a.concurrency} sessions, {a.seconds:g} s (SDK client):")
    for name, flags in (configs[0], configs[-2], configs[-1]):
        await asyncio.to_thread(_bench_get, base, f"what-if?set={flags}")
        r = await throughput(gw, a.seconds, a.concurrency, [gw.pid])
        print(f"    {name:<18} {r['rate']:>6,.0f} calls/s  p50 {r['p50']:.2f} ms  p99 "
              f"{r['p99']:.2f} ms  kp {r[f'cpu_us:{gw.pid}']:,.0f} µs CPU/call  "
              f"errors {r['errors']:.0f}")  # fmt: skip
    await asyncio.to_thread(_bench_get, base, "what-if?set=")


async def drive(
    a: argparse.Namespace,
    base: str,
    down_url: str,
    down_pid: int,
    kp_pid: int,
    client: str,
    secret: str | None,
    note: str,
    tmp: Path,
) -> None:
    direct = Target("direct (client → downstream)", down_url, None, "echo", down_pid)
    direct.args = await echo_args(down_url, None, "echo")
    targets = [direct]
    gw: Target | None = None
    gw_url = f"{base}/gateway/{STORE}/mcp"
    if note:
        print(f"gateway: n/a ({note})")
    elif secret is None:
        print("gateway: n/a (the agent's credential has no secret)")
    else:
        token = await asyncio.to_thread(fetch_token, base, client, secret, gw_url)
        gw = Target("gateway (client → Keyplane → downstream)", gw_url, token,
                    f"{SERVER}__echo", kp_pid)  # fmt: skip
        try:
            gw.args = await echo_args(gw_url, token, gw.tool)
            targets.append(gw)
        except Exception as exc:  # the gateway is not mounted yet, or refuses
            print(f"gateway: n/a ({type(exc).__name__}: {str(exc)[:200]})")
            gw = None
    print(f"downstream {down_url} (pid {down_pid}); gateway {gw_url} (pid {kp_pid})")
    print(f"echo arguments: {direct.args}\n")

    # sequential, interleaved rounds: the official client, then a lean one
    raws = [Target(t.label.replace(" (", " raw (", 1), t.url, t.token, t.tool, t.pid)
            for t in targets]  # fmt: skip
    for raw, t in zip(raws, targets, strict=True):
        raw.args = t.args
    for t in [*targets, *raws]:
        t.cpu_pids = [down_pid, kp_pid]
    for r in range(a.rounds):
        for t in targets:
            if t is gw and r == 0:
                await asyncio.to_thread(_bench_get, base, "reset")
            await sequential(t, a.calls)
    stage_times: dict[str, list[float]] = {}
    if gw is not None:
        stage_times = (await asyncio.to_thread(_bench_get, base, "stats")).get("times", {})
    for _ in range(a.rounds):
        for t in raws:
            if t.first_error.startswith("failed"):
                continue
            try:
                await sequential_raw(t, a.calls)
            except Exception as exc:
                t.first_error = f"failed: {type(exc).__name__}: {str(exc)[:160]}"

    print(f"sequential: one session, {a.rounds} interleaved rounds × {a.calls} calls")
    print(f"  {'':<44} {'calls/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>6} "
          f"{'down µs/call':>12} {'kp µs/call':>10}")  # fmt: skip
    for t in [*targets, *raws]:
        total = sum(t.lat) or 1.0
        print(f"  {t.label:<44} {len(t.lat) / total:>8,.0f} {_pct(t.lat, 0.5) * 1e3:>8.3f} "
              f"{_pct(t.lat, 0.9) * 1e3:>8.3f} {_pct(t.lat, 0.99) * 1e3:>8.3f} "
              f"{t.errors:>6} {t.cpu_us(down_pid):>12,.0f} {t.cpu_us(kp_pid):>10,.0f}")  # fmt: skip
        if t.first_error:
            print(f"    !! first error: {t.first_error}")
    if gw is not None:
        d50, d99 = _pct(direct.lat, 0.5), _pct(direct.lat, 0.99)
        g50, g99 = _pct(gw.lat, 0.5), _pct(gw.lat, 0.99)
        print(f"  {'added by the gateway (gateway − direct)':<44} {'':>8} "
              f"{(g50 - d50) * 1e3:>8.3f} {'':>8} {(g99 - d99) * 1e3:>8.3f}")  # fmt: skip
        rd, rg = raws
        if rd.lat and rg.lat:
            print(f"  {'added, lean client (raw gateway − raw direct)':<44} {'':>8} "
                  f"{(_pct(rg.lat, 0.5) - _pct(rd.lat, 0.5)) * 1e3:>8.3f} {'':>8} "
                  f"{(_pct(rg.lat, 0.99) - _pct(rd.lat, 0.99)) * 1e3:>8.3f}")  # fmt: skip
        print("  target: ≤ 2 ms added at p50")

    # throughput
    pids = [down_pid, kp_pid]
    print(f"\nthroughput: {a.concurrency} sessions, {a.seconds:g} s each")
    print(f"  {'':<44} {'calls/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
          f"{'down µs/call':>12} {'kp µs/call':>10} {'client cores':>12}")  # fmt: skip
    for t in targets:
        r = await throughput(t, a.seconds, a.concurrency, pids)
        print(f"  {t.label:<44} {r['rate']:>8,.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
              f"{r['errors']:>6.0f} {r[f'cpu_us:{down_pid}']:>12,.0f} "
              f"{r[f'cpu_us:{kp_pid}']:>10,.0f} {r['client_cores']:>12.2f}")  # fmt: skip
    print(
        "  µs/call: CPU (every thread) of that process per call — 1e6 / it is what one core "
        "could serve"
    )

    if gw is not None and stage_times:
        n = a.rounds * a.calls + a.rounds * min(20, a.calls)
        print(f"\nwhere the gateway's time goes (stage timers in the Keyplane process, "
              f"sequential run, {n} calls incl. warm-up):")  # fmt: skip
        print_stages(stage_times, n)

    if gw is not None and not a.no_instrument and a.what_if_calls > 0:
        await what_ifs(a, base, gw)

    if gw is not None and a.profile:
        if a.profile_what_if:
            await asyncio.to_thread(_bench_get, base, f"what-if?set={a.profile_what_if}")
        await asyncio.to_thread(_bench_get, base, "profile-start")
        prof = Target("gateway (profiled)", gw.url, gw.token, gw.tool, kp_pid)
        prof.args = gw.args
        await sequential(prof, a.profile_calls)
        got = await asyncio.to_thread(_bench_get, base, "profile-stop")
        await asyncio.to_thread(_bench_get, base, "what-if?set=")
        print(f"\nprofiled sequential run: {a.profile_calls} calls, p50 "
              f"{_pct(prof.lat, 0.5) * 1e3:.3f} ms under cProfile "
              f"({got.get('threads', 0)} threads profiled; what-if: "
              f"{a.profile_what_if or 'none'})")  # fmt: skip
        print_profile(tmp / "gateway.prof", a.top)


if __name__ == "__main__":
    main()

"""A real downstream MCP server for the gateway's tests, written with the official SDK's
high-level server (:class:`mcp.server.mcpserver.MCPServer`, ``mcp`` 2.x).

Tools (the annotations are what the gateway's proposed classification reads):

- ``echo(text)`` — ``readOnlyHint``; returns ``text``;
- ``whoami()`` — ``readOnlyHint``; returns a JSON object with what authenticated the
  request: over HTTP ``{"transport": "http", "authorization": …, "x-api-key": …,
  "headers": {every authorization / x-* header}}``; over stdio ``{"transport": "stdio",
  "env_var": $DOWNSTREAM_SECRET_ENV, "secret": the value of that variable, "keyplane_env":
  [names of KEYPLANE_* variables the process inherited]}``;
- ``create_ticket(title, body="")`` — no hints (→ write); returns ``"created ticket: <title>"``;
- ``delete_repo(repo)`` — ``destructiveHint`` (→ delete); returns ``"deleted <repo>"``.

The tool list changes between discoveries with a *tool config*, a JSON object::

    {"add": ["name" | {"name", "description"?, "annotations"?, "exit"?, "sleep"?}],
                                      # extra tools, echo-like: f(text="") -> "<name>: <text>";
                                      # "sleep": seconds before answering;
                                      # "exit": true → over stdio the process exits mid-call
     "remove": ["delete_repo"],                                     # hide base tools
     "describe": {"echo": "a new description"},                     # change descriptions
     "page_size": 2}                                                # tools/list in pages

HTTP: :meth:`DownstreamHandle.set_tools` (applied on the server's next request).
stdio: ``DOWNSTREAM_TOOLS`` (a JSON config), ``DOWNSTREAM_TOOLS_FILE`` (a JSON config file
re-read at every request, so a running process changes too), ``DOWNSTREAM_EXTRA_TOOLS``
(comma-separated names added). ``DOWNSTREAM_EVENTS_FILE``: the stdio server appends one
JSON line per request (``{"method", "tool"?, "arguments"?}``) so tests count initializes
and calls of a child process.

Run over stdio: ``python tests/gateway/downstream_server.py --stdio``.
Over HTTP, in a test: ``with serve_downstream() as ds: ds.url`` (uvicorn on
``127.0.0.1:<free port>`` in a thread, the MCP endpoint at ``/mcp``, stateful streamable
HTTP by default). Options of :func:`serve_downstream`:

- ``require={"authorization": "Bearer s3cret"}`` — every ``/mcp`` request must carry these
  exact headers, else ``401``;
- ``client_id=…, client_secret=…`` — OAuth client credentials: ``POST /token``
  (``grant_type=client_credentials``, HTTP Basic client auth) issues opaque tokens
  (``expires_in=token_ttl``); ``/mcp`` then requires ``Authorization: Bearer <live token>``;
- ``token_ttl=3600``, ``stateless=False``, ``json_response=False``, ``tools={config}``;
- ``keep_alive=5.0`` — uvicorn closes an idle keep-alive connection after this long.

:attr:`DownstreamHandle.connections` counts the TCP connections that carried ``/mcp``
requests (distinct client ports).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import anyio
from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.context import HandlerResult as _HandlerResult
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ListToolsResult, ToolAnnotations

__all__ = ["DownstreamHandle", "DownstreamState", "build_server", "serve_downstream"]

BASE_TOOLS = ("echo", "whoami", "create_ticket", "delete_repo")
DESCRIPTIONS = {
    "echo": "Echo the text back.",
    "whoami": "Report the credential this server received.",
    "create_ticket": "Create a ticket in the tracker.",
    "delete_repo": "Delete a repository for good.",
}
ANNOTATIONS: dict[str, ToolAnnotations | None] = {
    "echo": ToolAnnotations(read_only_hint=True),
    "whoami": ToolAnnotations(read_only_hint=True),
    "create_ticket": None,
    "delete_repo": ToolAnnotations(destructive_hint=True),
}


def _auth_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The authorization and ``x-*`` headers of a request, names lower-cased."""
    if headers is None:
        return {}
    out: dict[str, str] = {}
    for name, value in headers.items():
        low = name.lower()
        if low == "authorization" or low.startswith("x-"):
            out[low] = value
    return out


# -- the tools ---------------------------------------------------------------------------


def echo(text: str) -> str:
    return text


def whoami(ctx: Context) -> str:
    headers = ctx.headers
    if headers is not None:
        seen = _auth_headers(headers)
        return json.dumps(
            {
                "transport": "http",
                "authorization": seen.get("authorization"),
                "x-api-key": seen.get("x-api-key"),
                "headers": seen,
            }
        )
    var = os.environ.get("DOWNSTREAM_SECRET_ENV")
    return json.dumps(
        {
            "transport": "stdio",
            "env_var": var,
            "secret": os.environ.get(var) if var else None,
            "keyplane_env": sorted(k for k in os.environ if k.startswith("KEYPLANE_")),
        }
    )


def create_ticket(title: str, body: str = "") -> str:
    return f"created ticket: {title}"


def delete_repo(repo: str) -> str:
    return f"deleted {repo}"


_FUNCS = {
    "echo": echo,
    "whoami": whoami,
    "create_ticket": create_ticket,
    "delete_repo": delete_repo,
}


def _extra_tool(name: str, *, exits: bool = False, sleep: float = 0.0) -> Any:
    async def extra(text: str = "") -> str:
        if sleep:
            await anyio.sleep(sleep)
        if exits:
            # the stdio server dies mid-call (tests of a child that goes away)
            sys.stdout.flush()
            os._exit(3)
        return f"{name}: {text}"

    return extra


# -- state and the tool config -----------------------------------------------------------


@dataclass
class DownstreamState:
    """What the server records and the tool config it serves (shared with the test thread)."""

    config: dict[str, Any] = field(default_factory=dict)
    #: per /mcp HTTP request: its authorization and x-* headers (lower-cased names)
    seen_auth: list[dict[str, str]] = field(default_factory=list)
    #: every MCP request method received, in order (``initialize``, ``tools/list``, …)
    methods: list[str] = field(default_factory=list)
    #: every tools/call: (tool, arguments)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: per /mcp HTTP request: the client's (host, port) — one per TCP connection
    peers: list[tuple[str, int]] = field(default_factory=list)
    applied: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def initializes(self) -> int:
        return self.methods.count("initialize")


def _apply_config(
    server: MCPServer[Any], config: Mapping[str, Any], *, stdio: bool = False
) -> None:
    """Make the server's tools the base tools as modified by ``config``."""
    for tool in list(server._tool_manager.list_tools()):
        server.remove_tool(tool.name)
    removed = set(config.get("remove") or ())
    describe = dict(config.get("describe") or {})
    for name in BASE_TOOLS:
        if name in removed:
            continue
        server.add_tool(
            _FUNCS[name],
            name=name,
            description=describe.get(name, DESCRIPTIONS[name]),
            annotations=ANNOTATIONS[name],
        )
    for item in config.get("add") or ():
        spec = {"name": item} if isinstance(item, str) else dict(item)
        name = str(spec["name"])
        if name in removed or server._tool_manager.get_tool(name) is not None:
            continue
        ann = spec.get("annotations")
        server.add_tool(
            _extra_tool(
                name, exits=stdio and bool(spec.get("exit")), sleep=float(spec.get("sleep") or 0)
            ),
            name=name,
            description=describe.get(name, spec.get("description", f"Extra tool {name}.")),
            annotations=ToolAnnotations.model_validate(ann) if ann else None,
        )


def _stdio_config() -> dict[str, Any]:
    config: dict[str, Any] = {}
    raw = os.environ.get("DOWNSTREAM_TOOLS")
    if raw:
        config = dict(json.loads(raw))
    path = os.environ.get("DOWNSTREAM_TOOLS_FILE")
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            config = dict(json.load(f))
    extra = [n.strip() for n in os.environ.get("DOWNSTREAM_EXTRA_TOOLS", "").split(",")]
    if any(extra):
        config["add"] = [*(config.get("add") or ()), *(n for n in extra if n)]
    return config


def build_server(state: DownstreamState, *, stdio: bool = False) -> MCPServer[Any]:
    """The MCP server; a middleware (re)applies the tool config and records requests."""

    async def record(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> _HandlerResult:
        if stdio:
            state.config = _stdio_config()
        wanted = json.dumps(state.config, sort_keys=True)
        if state.applied != wanted:
            _apply_config(server, state.config, stdio=stdio)
            state.applied = wanted
        if ctx.request_id is not None:
            params = ctx.params if isinstance(ctx.params, Mapping) else {}
            with state.lock:
                state.methods.append(ctx.method)
                if ctx.method == "tools/call":
                    state.calls.append(
                        (str(params.get("name")), dict(params.get("arguments") or {}))
                    )
            events = os.environ.get("DOWNSTREAM_EVENTS_FILE") if stdio else None
            if events:
                line: dict[str, Any] = {"method": ctx.method}
                if ctx.method == "tools/call":
                    line["tool"] = params.get("name")
                    line["arguments"] = params.get("arguments") or {}
                with open(events, "a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
        result = await call_next(ctx)
        size = int(state.config.get("page_size") or 0)
        if ctx.method == "tools/list" and size > 0:
            # paginate: the cursor is the offset of the page
            raw = ctx.params.get("cursor") if isinstance(ctx.params, Mapping) else None
            start = int(raw or 0)
            end = start + size
            if isinstance(result, ListToolsResult):
                result = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            if isinstance(result, dict):
                tools = list(result.get("tools") or [])
                page = {**result, "tools": tools[start:end]}
                page.pop("nextCursor", None)
                if end < len(tools):
                    page["nextCursor"] = str(end)
                return page
        return result

    server: MCPServer[Any] = MCPServer(
        name="downstream",
        version="1.0.0",
        log_level="WARNING",
        warn_on_duplicate_tools=False,
        middleware=[record],
    )
    _apply_config(server, state.config, stdio=stdio)
    state.applied = json.dumps(state.config, sort_keys=True)
    return server


# -- HTTP: the front app (auth gate, token endpoint) and uvicorn in a thread ---------------


class _Front:
    """ASGI app in front of the SDK's Starlette app: records and checks auth headers on
    ``/mcp`` and serves the OAuth token endpoint ``/token``."""

    def __init__(self, handle: DownstreamHandle, inner: Any) -> None:
        self.handle, self.inner = handle, inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        h = self.handle
        if scope["path"] == "/token":
            await self._token(scope, receive, send, headers)
            return
        if scope["path"].startswith("/mcp"):
            client = scope.get("client")
            with h.state.lock:
                h.state.seen_auth.append(_auth_headers(headers))
                if client:
                    h.state.peers.append((str(client[0]), int(client[1])))
            if not h._authorized(headers):
                await _json(send, 401, {"error": "unauthorized"}, www_auth=True)
                return
        await self.inner(scope, receive, send)

    async def _token(
        self, scope: dict[str, Any], receive: Any, send: Any, headers: dict[str, str]
    ) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        h = self.handle
        scheme, _, cred = headers.get("authorization", "").partition(" ")
        client_id = client_secret = None
        if scheme.lower() == "basic":
            with suppress(ValueError):
                client_id, _, client_secret = base64.b64decode(cred).decode().partition(":")
        with h.state.lock:
            h.token_requests.append({**form, "client_id": client_id or ""})
        if h.client_id is None or scope["method"] != "POST":
            await _json(send, 404, {"error": "not_found"})
            return
        if client_id != h.client_id or client_secret != h.client_secret:
            await _json(send, 401, {"error": "invalid_client"})
            return
        if form.get("grant_type") != "client_credentials":
            await _json(send, 400, {"error": "unsupported_grant_type"})
            return
        token = "tok-" + secrets.token_hex(8)
        with h.state.lock:
            h.tokens[token] = time.time() + h.token_ttl
        await _json(
            send, 200, {"access_token": token, "token_type": "Bearer", "expires_in": h.token_ttl}
        )


async def _json(send: Any, status: int, body: Any, *, www_auth: bool = False) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if www_auth:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class DownstreamHandle:
    """A running HTTP downstream server (see :func:`serve_downstream`)."""

    def __init__(
        self,
        *,
        require: Mapping[str, str] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_ttl: int = 3600,
        stateless: bool = False,
        json_response: bool = False,
        tools: Mapping[str, Any] | None = None,
        keep_alive: float = 5.0,
    ) -> None:
        self.state = DownstreamState(config=dict(tools or {}))
        self.keep_alive = keep_alive
        self.server = build_server(self.state)
        self.require = {k.lower(): v for k, v in (require or {}).items()}
        self.client_id, self.client_secret, self.token_ttl = client_id, client_secret, token_ttl
        #: every POST /token: its form fields and the Basic client_id
        self.token_requests: list[dict[str, str]] = []
        #: live tokens issued → expiry (epoch seconds)
        self.tokens: dict[str, float] = {}
        self.stateless, self.json_response = stateless, json_response
        self.port = 0
        self._uvicorn: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # -- what tests read
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/mcp"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def seen_auth(self) -> list[dict[str, str]]:
        return self.state.seen_auth

    @property
    def methods(self) -> list[str]:
        return self.state.methods

    @property
    def initializes(self) -> int:
        return self.state.initializes

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return self.state.calls

    @property
    def connections(self) -> int:
        """How many TCP connections carried /mcp requests (distinct client ports)."""
        with self.state.lock:
            return len(set(self.state.peers))

    # -- what tests change
    def set_tools(
        self,
        *,
        add: Sequence[str | Mapping[str, Any]] = (),
        remove: Sequence[str] = (),
        describe: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> None:
        """Replace the tool config (base tools, minus ``remove``, plus ``add``, with
        ``describe`` overriding descriptions; ``tools/list`` in pages of ``page_size``);
        served from the next request on."""
        self.state.config = {
            "add": [a if isinstance(a, str) else dict(a) for a in add],
            "remove": list(remove),
            "describe": dict(describe or {}),
            "page_size": page_size,
        }

    def reset_tools(self) -> None:
        self.state.config = {}

    def revoke_tokens(self) -> None:
        """Forget every issued OAuth token (the next request with one gets 401)."""
        with self.state.lock:
            self.tokens.clear()

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        for name, value in self.require.items():
            if headers.get(name) != value:
                return False
        if self.client_id is not None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            expiry = self.tokens.get(token) if scheme.lower() == "bearer" else None
            if expiry is None or expiry < time.time():
                return False
        return True

    # -- lifecycle
    def start(self) -> None:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        app = self.server.streamable_http_app(
            stateless_http=self.stateless, json_response=self.json_response
        )
        config = uvicorn.Config(
            _Front(self, app),
            log_level="warning",
            lifespan="on",
            access_log=False,
            # open SSE streams would hold a graceful shutdown (restart, stop) for long
            timeout_graceful_shutdown=1,
            timeout_keep_alive=self.keep_alive,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("downstream uvicorn did not start")
            time.sleep(0.005)
        self._uvicorn, self._thread, self._sock = server, thread, sock

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._uvicorn = self._thread = self._sock = None

    def restart(self) -> None:
        """Stop and start again on the same port: every MCP session is gone."""
        self.stop()
        self.start()


@contextmanager
def serve_downstream(**opts: Any) -> Iterator[DownstreamHandle]:
    """A downstream server over streamable HTTP on a free loopback port (see the module
    docstring for ``opts``)."""
    handle = DownstreamHandle(**opts)
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


def stdio_command() -> list[str]:
    """The argv that runs this server over stdio."""
    return [sys.executable, os.path.abspath(__file__), "--stdio"]


if __name__ == "__main__":
    if "--stdio" not in sys.argv[1:]:
        sys.exit("usage: downstream_server.py --stdio")
    build_server(DownstreamState(config=_stdio_config()), stdio=True).run("stdio")

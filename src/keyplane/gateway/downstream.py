"""The gateway's client of downstream MCP servers (MCP 2025-06-18, "Transports": streamable
HTTP and stdio), with the server's credential injected.

The only module that decrypts a server's secret (:func:`open_secret`): the secret goes into
the transport — an HTTP header, an OAuth client-credentials token request (RFC 6749 §4.4,
``client_secret_basic``), or the environment of a stdio command — and nowhere else: not in
a record's ``to_dict``, an event, a log line, an error message or a ``repr``.

- :func:`list_tools` / :func:`list_tools_sync`: one-shot discovery (connect, initialize,
  every page of ``tools/list``, close).
- :class:`DownstreamPool`: the gateway process's persistent sessions, one per (store,
  server), reused while the server's record (its ``revision``) and sealed secret are
  unchanged, reconnected when broken.

A stdio command starts with the SDK's minimal safe environment
(:func:`mcp.client.stdio.get_default_environment`: ``HOME``, ``PATH``, …), the server's
``env`` and the secret variable — never the gateway's own environment, which holds the
master key.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
import httpx2
import mcp.types as types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from keyplane.errors import DownstreamError, KeyplaneError
from keyplane.gateway.downstream_http import HttpLane
from keyplane.gateway.records import McpServer, secret_aad
from mcp import ClientSession, StdioServerParameters, stdio_client

if TYPE_CHECKING:
    from keyplane.service.context import Services

__all__ = [
    "DownstreamError",
    "DownstreamPool",
    "list_tools",
    "list_tools_sync",
    "open_secret",
    "seal_secret",
]

#: a token is refreshed this long before the expiry its endpoint announced
TOKEN_EARLY_REFRESH_SECONDS = 30.0
#: how long a token without ``expires_in`` is kept (a 401 refreshes it sooner)
TOKEN_DEFAULT_TTL_SECONDS = 300.0
#: at most this many pages of ``tools/list``
MAX_TOOL_PAGES = 100
#: how long closing one session may take before it is cancelled
CLOSE_TIMEOUT_SECONDS = 5.0
#: JSON-RPC errors a streamable-HTTP server answers for a session it does not know: the
#: request was not processed, so sending it again on a new session is safe
_SESSION_GONE = ("session not found", "session terminated")


# -- secrets ------------------------------------------------------------------------------


def seal_secret(svc: Services, store_id: str, server: str, secret: str) -> bytes:
    """``secret`` encrypted under the master key, bound to the store and server."""
    return svc.master_key().encrypt(secret.encode(), aad=secret_aad(store_id, server))


def open_secret(svc: Services, server: McpServer) -> str | None:
    """The server's secret in clear, None when it has none. Raises the master key's
    ``ValidationError`` when the blob does not decrypt (another key, store or server)."""
    if server.encrypted_secret is None:
        return None
    return (
        svc.master_key()
        .decrypt(server.encrypted_secret, aad=secret_aad(server.store_id, server.name))
        .decode()
    )


def _secret_of(svc: Services, server: McpServer) -> str | None:
    try:
        return open_secret(svc, server)
    except KeyplaneError as exc:
        raise DownstreamError(
            f"cannot read the secret of MCP server {server.name!r}: {exc.message}",
            details={"server": server.name, "reason": "secret_unreadable"},
        ) from None


def _quiet_secret(svc: Services, server: McpServer) -> str | None:
    """The secret, to scrub it from error messages (None when unreadable)."""
    try:
        return open_secret(svc, server)
    except KeyplaneError:
        return None


def _fingerprint(server: McpServer) -> tuple[Any, ...]:
    """What a connection to ``server`` depends on: its transport, url, command, env,
    credential and sealed secret — not its revision (every discovery bumps that)."""
    blob = server.encrypted_secret
    c = server.credential
    return (
        server.transport,
        server.url,
        tuple(server.command),
        tuple(sorted(server.env.items())),
        (c.kind, c.header, c.token_url, c.client_id, c.scope, c.audience, c.env_var),
        hashlib.sha256(blob).digest() if blob is not None else b"",
    )


def _proxied(url: str | None) -> bool:
    """Whether the environment routes ``url`` through a proxy (httpx honours it; the
    direct lane does not, so such a server stays on the SDK's client)."""
    if not url:
        return False
    proxies = urllib.request.getproxies()
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


# -- OAuth client credentials --------------------------------------------------------------

_TOKEN_LOCK = threading.Lock()
#: (store, server, token_url, client_id, scope, audience, secret digest) → (token, expires)
_TOKENS: dict[tuple[str, ...], tuple[str, float]] = {}


class _ClientCredentialsAuth(httpx2.Auth):
    """Bearer auth with a token from the server's token endpoint, cached until shortly
    before it expires; a 401 from the MCP server fetches a new token and resends once."""

    requires_request_body = True

    def __init__(self, server: McpServer, secret: str, timeout: float) -> None:
        cred = server.credential
        self._server = server.name
        self._token_url = cred.token_url or ""
        self._client_id = cred.client_id or ""
        self._scope, self._audience = cred.scope, cred.audience
        self._secret = secret
        self._timeout = timeout
        self._key = (
            server.store_id,
            server.name,
            self._token_url,
            self._client_id,
            cred.scope or "",
            cred.audience or "",
            hashlib.sha256(secret.encode()).hexdigest(),
        )

    def __repr__(self) -> str:
        return f"_ClientCredentialsAuth(server={self._server!r}, token_url={self._token_url!r})"

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        request.headers["Authorization"] = f"Bearer {await self._token(refresh=False)}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self._token(refresh=True)}"
            yield request

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response]:
        raise RuntimeError("the gateway's downstream client is asynchronous")

    async def _token(self, *, refresh: bool) -> str:
        now = time.time()
        with _TOKEN_LOCK:
            cached = _TOKENS.get(self._key)
        if cached is not None and not refresh and cached[1] > now:
            return cached[0]
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        if self._audience:
            form["audience"] = self._audience
        where = {"server": self._server, "reason": "unauthorized"}
        try:
            async with httpx2.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(
                    self._token_url,
                    data=form,
                    auth=httpx2.BasicAuth(self._client_id, self._secret),
                    headers={"Accept": "application/json"},
                )
        except httpx2.HTTPError as exc:
            raise DownstreamError(
                f"MCP server {self._server!r}: token endpoint {self._token_url} unreachable: "
                f"{_scrub(_describe(exc), self._secret)}",
                details={**where, "reason": "unreachable"},
            ) from None
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            hint = f" ({str(error)[:80]})" if isinstance(error, str) else ""
            raise DownstreamError(
                f"MCP server {self._server!r}: token endpoint {self._token_url} answered "
                f"HTTP {response.status_code}{_scrub(hint, self._secret)}",
                details=where,
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise DownstreamError(
                f"MCP server {self._server!r}: token endpoint {self._token_url} "
                "answered without an access_token",
                details=where,
            )
        expires_in = body.get("expires_in")
        ttl = (
            float(expires_in)
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
            else TOKEN_DEFAULT_TTL_SECONDS
        )
        with _TOKEN_LOCK:
            _TOKENS[self._key] = (token, now + ttl - TOKEN_EARLY_REFRESH_SECONDS)
        return token


# -- connecting ----------------------------------------------------------------------------


@dataclass
class _HttpTrace:
    """The last HTTP error status the MCP endpoint answered (the SDK reports only "Server
    returned an error response")."""

    status: int | None = None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _scrub(text: str, *secrets: str | None) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for sub in exc.exceptions:
            out.extend(_leaves(sub))
        return out
    return [exc]


def _client_info() -> types.Implementation:
    from keyplane import __version__

    return types.Implementation(name="keyplane-gateway", version=__version__)


def _as_error(
    server: McpServer, exc: BaseException, secret: str | None, trace: _HttpTrace | None
) -> DownstreamError:
    """One DownstreamError for whatever connecting or talking to ``server`` raised."""
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, DownstreamError):
            return leaf
    leaf = next((x for x in leaves if not isinstance(x, anyio.get_cancelled_exc_class())), exc)
    name = server.name
    details: dict[str, Any] = {"server": name}
    if trace is not None and trace.status in (401, 403):
        details["reason"] = "unauthorized"
        message = (
            f"MCP server {name!r} refused the gateway's credential (HTTP {trace.status}); "
            "check the server's credential and secret"
        )
    elif isinstance(leaf, TimeoutError) or (
        isinstance(leaf, MCPError) and leaf.error.code == types.REQUEST_TIMEOUT
    ):
        details["reason"] = "timeout"
        message = f"MCP server {name!r} did not answer in time"
    elif isinstance(leaf, MCPError):
        details["reason"] = "protocol_error"
        details["mcp_code"] = leaf.error.code
        status = f" (HTTP {trace.status})" if trace is not None and trace.status else ""
        message = f"MCP server {name!r} answered an error{status}: {leaf.error.message}"
    elif isinstance(leaf, httpx2.HTTPError | OSError | anyio.BrokenResourceError):
        details["reason"] = "unreachable"
        where = server.url if server.transport == "http" else (server.command or ("?",))[0]
        message = f"MCP server {name!r} is unreachable ({where}): {_describe(leaf)}"
    else:
        details["reason"] = "protocol_error"
        message = f"MCP server {name!r} failed: {_describe(leaf)}"
    return DownstreamError(_scrub(message, secret), details=details)


class _WatchedRead:
    """The transport's read stream, telling the pool the moment it ends (the server closed
    the connection, a stdio child exited): calls made after that are not sent on it."""

    def __init__(self, inner: Any, on_eof: Callable[[], None]) -> None:
        self._inner, self._on_eof = inner, on_eof

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_eof()
            raise

    def __aiter__(self) -> _WatchedRead:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _WatchedRead:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._inner.aclose()


def _watch(read: Any, on_eof: Callable[[], None] | None) -> Any:
    return read if on_eof is None else _WatchedRead(read, on_eof)


@asynccontextmanager
async def _connect(
    svc: Services,
    server: McpServer,
    *,
    timeout: float,
    read_timeout: float,
    trace: _HttpTrace,
    on_eof: Callable[[], None] | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with ``server``, its credential injected."""
    secret = _secret_of(svc, server)
    cred = server.credential
    if cred.kind != "none" and secret is None:
        raise DownstreamError(
            f"MCP server {server.name!r} has credential {cred.kind!r} but no secret",
            details={"server": server.name, "reason": "misconfigured"},
        )
    if server.transport == "http":
        if not server.url:
            raise DownstreamError(
                f"MCP server {server.name!r} has no url",
                details={"server": server.name, "reason": "misconfigured"},
            )
        headers: dict[str, str] = {}
        auth: httpx2.Auth | None = None
        if cred.kind == "bearer":
            headers["Authorization"] = f"Bearer {secret}"
        elif cred.kind == "header" and cred.header:
            headers[cred.header] = str(secret)
        elif cred.kind == "oauth_client_credentials":
            auth = _ClientCredentialsAuth(server, str(secret), timeout)
        elif cred.kind != "none":
            raise DownstreamError(
                f"MCP server {server.name!r}: credential {cred.kind!r} does not fit HTTP",
                details={"server": server.name, "reason": "misconfigured"},
            )

        async def note(response: httpx2.Response) -> None:
            # the latest answer wins: a 401 the OAuth flow recovered from is forgotten
            trace.status = response.status_code if response.status_code >= 400 else None

        client = httpx2.AsyncClient(
            headers=headers,
            auth=auth,
            timeout=httpx2.Timeout(timeout, read=read_timeout),
            event_hooks={"response": [note]},
        )
        async with (
            client,
            streamable_http_client(server.url, http_client=client) as (read, write),
            ClientSession(_watch(read, on_eof), write, client_info=_client_info()) as session,
        ):
            with anyio.fail_after(timeout):
                await session.initialize()
            yield session
        return
    if server.transport == "stdio":
        if not server.command:
            raise DownstreamError(
                f"MCP server {server.name!r} has no command",
                details={"server": server.name, "reason": "misconfigured"},
            )
        env = dict(server.env)
        if cred.kind == "env" and cred.env_var:
            env[cred.env_var] = str(secret)
        elif cred.kind != "none":
            raise DownstreamError(
                f"MCP server {server.name!r}: credential {cred.kind!r} does not fit stdio",
                details={"server": server.name, "reason": "misconfigured"},
            )
        # the SDK merges env over its minimal safe environment (never os.environ)
        params = StdioServerParameters(
            command=server.command[0], args=list(server.command[1:]), env=env
        )
        async with (
            stdio_client(params) as (read, write),
            ClientSession(_watch(read, on_eof), write, client_info=_client_info()) as session,
        ):
            with anyio.fail_after(timeout):
                await session.initialize()
            yield session
        return
    raise DownstreamError(
        f"MCP server {server.name!r}: unknown transport {server.transport!r}",
        details={"server": server.name, "reason": "misconfigured"},
    )


async def _list_all(session: ClientSession) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_TOOL_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor or cursor in seen:
            break
        seen.add(cursor)
    return tools


# -- one-shot discovery --------------------------------------------------------------------


async def list_tools(
    svc: Services, server: McpServer, *, timeout: float = 15.0
) -> list[types.Tool]:
    """Every tool ``server`` lists (all pages): connect with its credential, initialize,
    list, close. Raises :class:`DownstreamError`."""
    trace = _HttpTrace()
    secret: str | None = None
    try:
        secret = _secret_of(svc, server)
        with anyio.fail_after(timeout):
            async with _connect(
                svc, server, timeout=timeout, read_timeout=timeout, trace=trace
            ) as session:
                return await _list_all(session)
    except DownstreamError:
        raise
    except Exception as exc:
        raise _as_error(server, exc, secret, trace) from None


def list_tools_sync(svc: Services, server: McpServer, *, timeout: float = 15.0) -> list[types.Tool]:
    """:func:`list_tools` for synchronous code (a worker thread with no event loop)."""
    return anyio.run(functools.partial(list_tools, svc, server, timeout=timeout))


# -- the pool ------------------------------------------------------------------------------


class _Retry(Exception):
    """The request was not processed by the server (no session, not sent): safe to resend."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause


@dataclass(eq=False)
class _Entry:
    """One persistent session, held open by a task of the pool's task group."""

    key: tuple[str, str]
    fingerprint: tuple[Any, ...]
    server: McpServer = field(repr=False)
    trace: _HttpTrace = field(default_factory=_HttpTrace)
    session: ClientSession | None = field(default=None, repr=False)
    error: BaseException | None = field(default=None, repr=False)
    ready: anyio.Event = field(default_factory=anyio.Event, repr=False)
    closing: anyio.Event = field(default_factory=anyio.Event, repr=False)
    done: anyio.Event = field(default_factory=anyio.Event, repr=False)
    calls: set[anyio.CancelScope] = field(default_factory=set, repr=False)
    #: the server ended the connection (read stream at its end)
    eof: bool = False

    @property
    def alive(self) -> bool:
        return self.session is not None and not self.eof and not self.done.is_set()

    def ended(self) -> None:
        self.eof = True
        self.closing.set()


@dataclass(eq=False, slots=True)
class _LaneEntry:
    """The direct lane to one streamable-HTTP server and what it was made for."""

    fingerprint: tuple[Any, ...]
    lane: HttpLane
    #: the record of the latest call (the same object again: nothing to compare)
    server: McpServer = field(repr=False)


class DownstreamPool:
    """Persistent sessions, one per (store, server), for the gateway process.

    Use as ``async with DownstreamPool(svc) as pool:``; every session (HTTP session,
    stdio child process) is closed on exit or by :meth:`forget`."""

    def __init__(self, svc: Services, *, call_timeout: float = 60.0) -> None:
        self._svc = svc
        self.call_timeout = call_timeout
        self.connect_timeout = 15.0
        self._entries: dict[tuple[str, str], _Entry] = {}
        #: streamable-HTTP servers: the direct lane (keyplane.gateway.downstream_http)
        self._lanes: dict[tuple[str, str], _LaneEntry] = {}
        self._locks: dict[tuple[str, str], anyio.Lock] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    def __repr__(self) -> str:
        return f"DownstreamPool(sessions={sorted(self._entries)!r})"

    async def __aenter__(self) -> DownstreamPool:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(self, *exc: object) -> None:
        tg, self._tg = self._tg, None
        if tg is None:
            return
        try:
            async with anyio.create_task_group() as closers:
                for entry in list(self._entries.values()):
                    closers.start_soon(self._close, entry)
                lanes = [got.lane for got in self._lanes.values()]
                self._lanes.clear()
                for lane in lanes:
                    closers.start_soon(_close_lane, lane)
        finally:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)

    @property
    def sessions(self) -> list[tuple[str, str]]:
        """The (store, server) pairs with an open session."""
        return sorted(
            [k for k, e in self._entries.items() if e.alive]
            + [k for k, got in self._lanes.items() if got.lane.initialized]
        )

    def lane(self, store_id: str, server: str) -> HttpLane | None:
        """The direct lane to a streamable-HTTP server, if one is open."""
        got = self._lanes.get((store_id, server))
        return got.lane if got is not None else None

    async def call_tool(
        self, server: McpServer, tool: str, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        """``tools/call`` on ``server``'s session (opened, or reopened when the server's
        record or secret changed or the session broke). A request the server did not
        process (its session is gone, the connection was refused, the child exited) is
        sent once more on a new session; one it answered never is. Raises
        :class:`DownstreamError`.

        A streamable-HTTP server is called through the direct lane
        (:class:`~keyplane.gateway.downstream_http.HttpLane`: one POST on a keep-alive
        connection per call); a stdio one (or one behind a proxy) through the SDK's
        session."""
        if server.transport == "http":
            got = self._lanes.get((server.store_id, server.name))
            # the same record object as the last call (the runtime's snapshot): unchanged
            if got is not None and got.server is server:
                return await got.lane.call_tool(tool, arguments)
            if not _proxied(server.url):
                lane = await self._lane(server)
                return await lane.call_tool(tool, arguments)
        for attempt in (0, 1):
            entry = await self._entry(server)
            try:
                return await self._call(entry, tool, arguments)
            except _Retry as retry:
                await self._close(entry)
                if attempt:
                    raise self._error(entry, retry.cause) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def forget(self, store_id: str, server: str) -> None:
        """Close the session with that server (the next call opens a new one)."""
        entry = self._entries.get((store_id, server))
        if entry is not None:
            await self._close(entry)
        got = self._lanes.pop((store_id, server), None)
        if got is not None:
            await _close_lane(got.lane)

    # -- internals

    async def _lane(self, server: McpServer) -> HttpLane:
        key = (server.store_id, server.name)
        fingerprint = _fingerprint(server)
        got = self._lanes.get(key)
        if got is not None and got.fingerprint == fingerprint:
            got.server = server
            return got.lane
        if self._tg is None:
            raise RuntimeError("DownstreamPool used outside 'async with'")
        lane = _new_lane(self._svc, server, self.connect_timeout, self.call_timeout)
        self._lanes[key] = _LaneEntry(fingerprint, lane, server)
        if got is not None:
            self._tg.start_soon(_close_lane, got.lane)
        return lane

    async def _entry(self, server: McpServer) -> _Entry:
        key = (server.store_id, server.name)
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and entry.alive and entry.fingerprint == _fingerprint(server):
                return entry
            if entry is not None:
                await self._close(entry)
            if self._tg is None:
                raise RuntimeError("DownstreamPool used outside 'async with'")
            entry = _Entry(key=key, fingerprint=_fingerprint(server), server=server)
            self._tg.start_soon(self._hold, entry)
            await entry.ready.wait()
            if entry.session is None:
                raise self._error(entry, entry.error or RuntimeError("closed"))
            self._entries[key] = entry
            return entry

    async def _hold(self, entry: _Entry) -> None:
        """The task owning one session: open it, keep it until asked to close or broken."""
        try:
            async with _connect(
                self._svc,
                entry.server,
                timeout=self.connect_timeout,
                read_timeout=max(300.0, self.call_timeout),
                trace=entry.trace,
                on_eof=entry.ended,
            ) as session:
                entry.session = session
                entry.ready.set()
                await entry.closing.wait()
        except Exception as exc:
            entry.error = exc
        finally:
            entry.done.set()
            entry.ready.set()
            for scope in list(entry.calls):
                scope.cancel()

    async def _close(self, entry: _Entry) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        entry.closing.set()
        with anyio.move_on_after(CLOSE_TIMEOUT_SECONDS + 1, shield=True):
            await entry.done.wait()

    async def _call(
        self, entry: _Entry, tool: str, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        session = entry.session
        if session is None or not entry.alive:
            raise _Retry(entry.error or RuntimeError("the server closed the connection"))
        request = types.CallToolRequest(
            params=types.CallToolRequestParams(name=tool, arguments=arguments)
        )
        result: types.CallToolResult | None = None
        scope = anyio.CancelScope()
        entry.calls.add(scope)
        try:
            with scope, anyio.fail_after(self.call_timeout + 5):
                # send_request, not call_tool: the result goes back as the server sent it,
                # without the client's output-schema validation (and its extra tools/list)
                result = await session.send_request(
                    request, types.CallToolResult, request_read_timeout_seconds=self.call_timeout
                )
        except MCPError as exc:
            if exc.error.message.strip().lower() in _SESSION_GONE:
                raise _Retry(exc) from None
            if exc.error.code == types.CONNECTION_CLOSED:
                # the session's task is ending: why decides whether the request went out
                with anyio.move_on_after(CLOSE_TIMEOUT_SECONDS):
                    await entry.done.wait()
                if _unsent(entry.error):
                    raise _Retry(entry.error or exc) from None
                if entry.error is not None:
                    raise self._error(entry, entry.error) from None
                # sent, then the server went away without answering: never resent
                raise DownstreamError(
                    f"MCP server {entry.server.name!r} closed the connection during the call",
                    details={"server": entry.server.name, "reason": "unreachable"},
                ) from None
            raise self._error(entry, exc) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            # the session's streams were closed before the request was written
            raise _Retry(exc) from None
        except Exception as exc:
            raise self._error(entry, exc) from None
        finally:
            entry.calls.discard(scope)
        if result is None:
            # the session's task ended under the call: resend only when the request
            # cannot have reached the server (its connection was refused)
            cause = entry.error or RuntimeError("the session closed during the call")
            if _unsent(entry.error):
                raise _Retry(cause)
            raise self._error(entry, cause)
        return result

    def _error(self, entry: _Entry, exc: BaseException) -> DownstreamError:
        return _as_error(entry.server, exc, _quiet_secret(self._svc, entry.server), entry.trace)


def _unsent(exc: BaseException | None) -> bool:
    """Whether the failure means the request never reached the server."""
    if exc is None:
        return False
    return any(isinstance(x, httpx2.ConnectError) for x in _leaves(exc))


def _new_lane(svc: Services, server: McpServer, connect: float, call: float) -> HttpLane:
    """The direct lane to ``server`` with its credential: the header to send, or the
    OAuth token source (the token cache of :class:`_ClientCredentialsAuth`)."""
    from keyplane import __version__

    secret = _secret_of(svc, server)
    cred = server.credential
    if cred.kind != "none" and secret is None:
        raise DownstreamError(
            f"MCP server {server.name!r} has credential {cred.kind!r} but no secret",
            details={"server": server.name, "reason": "misconfigured"},
        )
    if not server.url:
        raise DownstreamError(
            f"MCP server {server.name!r} has no url",
            details={"server": server.name, "reason": "misconfigured"},
        )
    header: tuple[str, str] | None = None
    token = None
    if cred.kind == "bearer":
        header = ("Authorization", f"Bearer {secret}")
    elif cred.kind == "header" and cred.header:
        header = (cred.header, str(secret))
    elif cred.kind == "oauth_client_credentials":
        auth = _ClientCredentialsAuth(server, str(secret), connect)

        async def token(refresh: bool) -> str:
            return await auth._token(refresh=refresh)

    elif cred.kind != "none":
        raise DownstreamError(
            f"MCP server {server.name!r}: credential {cred.kind!r} does not fit HTTP",
            details={"server": server.name, "reason": "misconfigured"},
        )
    return HttpLane(
        server.name,
        server.url,
        header=header,
        token=token,
        scrub=(secret,) if secret else (),
        connect_timeout=connect,
        call_timeout=call,
        client_version=__version__,
    )


async def _close_lane(lane: HttpLane) -> None:
    with anyio.move_on_after(CLOSE_TIMEOUT_SECONDS, shield=True):
        await lane.aclose()

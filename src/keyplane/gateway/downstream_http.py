"""The gateway's forwarding lane to a streamable-HTTP MCP server: each ``tools/call`` is
ONE HTTP/1.1 POST on a pooled keep-alive connection.

:class:`HttpLane` speaks just enough of MCP 2025-06-18 "Transports → Streamable HTTP" for
forwarding calls: it initializes once (``initialize``, keeps the ``mcp-session-id`` and the
negotiated protocol version, sends ``notifications/initialized``), then writes each call
as a pre-built header block (the injected credential included) and a JSON-RPC body on an
idle connection (``asyncio.open_connection``, TLS for ``https``), and reads the answer
whole with :class:`httptools.HttpResponseParser` — a JSON body, or an SSE stream to its
end (the message whose id is the call's) — so the connection stays reusable. The result
is validated once (``CallToolResult.model_validate``).

A request is sent a second time only when nothing can have been processed:

- ``404`` while a session id was sent: the server does not know the session (it
  restarted) — initialize again, resend;
- ``401`` with an OAuth client-credentials credential: a new token, resend;
- a connection error on a REUSED idle connection before any byte of the answer (the
  server closed it while idle: uvicorn does after 5 s) — resend on a new connection.

Anything else is a :class:`~keyplane.errors.DownstreamError`, never a resend. The module
never decrypts a secret: :mod:`keyplane.gateway.downstream` hands it the header to send
(or the OAuth token source) and the strings to scrub from messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import httptools
import mcp.types as types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from pydantic import ValidationError as PydanticValidationError

from keyplane.errors import DownstreamError

__all__ = ["HttpLane"]

#: idle connections kept per server
MAX_IDLE: Final = 16
#: an idle connection older than this is closed instead of reused (uvicorn's default
#: keep-alive timeout is 5 s: reusing one at its edge would race the server's close)
IDLE_SECONDS: Final = 4.0
#: once the answer arrived, how long the rest of an SSE stream may take before the
#: connection is given up instead of reused
SSE_TAIL_SECONDS: Final = 1.0
_READ: Final = 65536
#: the largest answer the lane reads (a tool's result with images can be large)
MAX_ANSWER_BYTES: Final = 64 << 20
_ACCEPT: Final = "application/json, text/event-stream"

#: (name, value) of the header a static credential adds
StaticHeader = tuple[str, str]
#: an OAuth token source: refresh=True asks for a new token
TokenSource = Callable[[bool], Awaitable[str]]


class _NoAnswer(Exception):
    """The connection failed before any byte of the answer arrived."""

    def __init__(self, cause: BaseException | None) -> None:
        super().__init__(type(cause).__name__ if cause is not None else "EOF")
        self.cause = cause


class _Garbled(Exception):
    """The answer is not HTTP, or not a JSON-RPC answer."""


@dataclass(slots=True)
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    #: the JSON-RPC message of the request (id matched), when the body held one
    message: dict[str, Any] | None = None


class _Parse:
    """httptools callbacks: one HTTP response, and the SSE events of its body."""

    __slots__ = (
        "_buf",
        "body",
        "complete",
        "found",
        "headers",
        "headers_done",
        "keep_alive",
        "parser",
        "rid",
        "sse",
    )

    def __init__(self, rid: int | str | None) -> None:
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.complete = False
        self.body: list[bytes] = []
        self.rid = rid
        self.sse = False
        self.found: dict[str, Any] | None = None
        self._buf = b""
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_done = True
        ctype = self.headers.get("content-type", "")
        self.sse = ctype.split(";")[0].strip().lower() == "text/event-stream"

    def on_body(self, body: bytes) -> None:
        if not self.sse:
            self.body.append(body)
            return
        self._buf += body.replace(b"\r\n", b"\n")
        while self.found is None:
            end = self._buf.find(b"\n\n")
            if end < 0:
                break
            event, self._buf = self._buf[:end], self._buf[end + 2 :]
            self._event(event)

    def on_message_complete(self) -> None:
        self.complete = True
        # llhttp answers this only until the message is done (then it resets)
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()
        if self.sse and self.found is None and self._buf.strip():
            self._event(self._buf)
            self._buf = b""

    def _event(self, raw: bytes) -> None:
        kind, data = "message", []
        for line in raw.split(b"\n"):
            name, _, value = line.partition(b":")
            value = value[1:] if value.startswith(b" ") else value
            if name == b"event":
                kind = value.decode("utf-8", "replace")
            elif name == b"data":
                data.append(value)
        if kind != "message" or not data:
            return
        try:
            msg = json.loads(b"\n".join(data))
        except ValueError:
            return  # not a JSON-RPC message: not ours
        if _answers(msg, self.rid):
            self.found = msg


def _answers(msg: Any, rid: int | str | None) -> bool:
    return (
        isinstance(msg, dict)
        and msg.get("id") == rid
        and not isinstance(msg.get("id"), bool)
        and ("result" in msg or "error" in msg)
    )


@dataclass(eq=False, slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    uses: int = 0
    #: the largest answer read (bytes on the wire)
    max_bytes: int = MAX_ANSWER_BYTES
    last_used: float = field(default_factory=time.monotonic)

    def usable(self, now: float) -> bool:
        return (
            now - self.last_used < IDLE_SECONDS
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def exchange(self, data: bytes, rid: int | str | None) -> tuple[_Reply, bool]:
        """Write one request, read its answer whole: (the reply, whether the connection
        may be reused). Raises :class:`_NoAnswer` (nothing read), :class:`_Garbled`."""
        p = _Parse(rid)
        parser = httptools.HttpResponseParser(p)
        p.parser = parser
        got = 0
        try:
            self.writer.write(data)
            await self.writer.drain()
            while not p.complete:
                if p.found is not None:
                    # the answer is in; the stream's end may lag (or never come)
                    try:
                        async with asyncio.timeout(SSE_TAIL_SECONDS):
                            chunk = await self.reader.read(_READ)
                    except TimeoutError:
                        return self._reply(p, parser), False
                else:
                    chunk = await self.reader.read(_READ)
                if not chunk:
                    if not got:
                        raise _NoAnswer(None)
                    if p.headers_done and not p.sse:
                        break  # a body delimited by the connection's end
                    if p.found is not None:
                        return self._reply(p, parser), False
                    raise _Garbled("the connection ended in the middle of the answer")
                got += len(chunk)
                if got > self.max_bytes:
                    raise _Garbled(f"the answer exceeds {self.max_bytes} bytes")
                parser.feed_data(chunk)
        except (ConnectionError, OSError) as exc:
            if not got:
                raise _NoAnswer(exc) from None
            raise
        except httptools.HttpParserError as exc:
            raise _Garbled(f"not an HTTP answer ({type(exc).__name__})") from None
        finally:
            p.parser = None  # no reference cycle
        reply = self._reply(p, parser)
        return reply, p.complete and p.keep_alive

    @staticmethod
    def _reply(p: _Parse, parser: httptools.HttpResponseParser) -> _Reply:
        return _Reply(parser.get_status_code(), p.headers, b"".join(p.body), p.found)


@dataclass(frozen=True, slots=True)
class _Target:
    host: str
    port: int
    tls: bool
    #: the request target (path and query) and the Host header
    path: str
    authority: str


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an absolute http(s) URL")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    default = 443 if tls else 80
    authority = shown if port == default else f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(host, port, tls, path, authority)


def _header_safe(value: str) -> bool:
    return "\r" not in value and "\n" not in value and "\0" not in value


def _ssl_context() -> ssl.SSLContext:
    """The trust the SDK's HTTP client (httpx2 → httpcore2) has: ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` when set, else the system's CA store — so discovery (SDK) and calls
    (this lane) trust the same servers."""
    import httpcore2

    return httpcore2.default_ssl_context()


class HttpLane:
    """The keep-alive connections and the MCP session of the gateway with one streamable
    HTTP server (see the module docstring). Safe for concurrent calls on one event loop:
    each call takes an idle connection or opens one."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        header: StaticHeader | None = None,
        token: TokenSource | None = None,
        scrub: tuple[str, ...] = (),
        connect_timeout: float = 15.0,
        call_timeout: float = 60.0,
        client_version: str = "0",
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.name = name
        self.url = url
        try:
            self._target = _target(url)
        except ValueError:
            raise self._fail("misconfigured", f"MCP server {name!r} has no usable url") from None
        if header is not None and not (_header_safe(header[0]) and _header_safe(header[1])):
            raise self._fail(
                "misconfigured", f"MCP server {name!r}: its credential cannot go in a header"
            )
        self._header = header
        self._ssl = _ssl_context() if self._target.tls else None
        self._token_source = token
        self._token: str | None = None
        self._scrub = tuple(s for s in scrub if s)
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self._client_version = client_version
        self.max_answer_bytes = max_answer_bytes
        self._idle: list[_Conn] = []
        self._busy: set[_Conn] = set()
        self._init_lock = asyncio.Lock()
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._prefix: bytes | None = None
        self._next_id = 0
        self._closed = False
        #: connections opened so far (tests, metrics)
        self.connections_opened = 0

    def __repr__(self) -> str:
        return f"HttpLane(server={self.name!r}, url={self.url!r}, idle={len(self._idle)})"

    @property
    def initialized(self) -> bool:
        return self.protocol_version is not None

    # -- the call --------------------------------------------------------------------

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """``tools/call`` on the server. Raises :class:`DownstreamError`."""
        self._next_id += 1
        rid = self._next_id
        body = _dumps(
            {
                "jsonrpc": "2.0",
                "id": rid,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }
        )
        session_retry = auth_retry = False
        while True:
            if self.protocol_version is None:
                await self._initialize()
            sid = self.session_id
            try:
                # asyncio.timeout, not wait_for: no task per call
                async with asyncio.timeout(self.call_timeout):
                    reply = await self._post(body, rid)
            except TimeoutError:
                raise self._fail(
                    "timeout", f"MCP server {self.name!r} did not answer in time"
                ) from None
            if reply.status == 404 and sid is not None and not session_retry:
                # the server does not know the session (restarted): nothing was processed
                session_retry = True
                self._drop_session(sid)
                continue
            if reply.status == 401 and self._token_source is not None and not auth_retry:
                auth_retry = True
                await self._refresh_token()
                continue
            return self._result(reply, rid)

    async def aclose(self) -> None:
        """End the session (``DELETE`` with its id, best effort) and close every
        connection."""
        self._closed = True
        if self.session_id is not None and self._prefix is not None and self._idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._delete_session(), 1.0)
        for conn in [*self._idle, *self._busy]:
            conn.close()
        self._idle.clear()
        self._busy.clear()
        self.session_id = self.protocol_version = None
        self._prefix = None

    # -- the session -------------------------------------------------------------------

    async def _initialize(self) -> None:
        async with self._init_lock:
            if self.protocol_version is not None:
                return
            try:
                await asyncio.wait_for(self._handshake(), self.connect_timeout)
            except TimeoutError:
                raise self._fail(
                    "timeout", f"MCP server {self.name!r} did not answer its initialize in time"
                ) from None

    async def _handshake(self) -> None:
        self.session_id = None
        self._prefix = None
        body = _dumps(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": LATEST_HANDSHAKE_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "keyplane-gateway", "version": self._client_version},
                },
            }
        )
        auth_retry = False
        while True:
            reply = await self._post(body, 0, handshake=True)
            if reply.status == 401 and self._token_source is not None and not auth_retry:
                auth_retry = True
                await self._refresh_token()
                continue
            break
        message = self._message(reply, 0)
        result = message.get("result")
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        if version not in HANDSHAKE_PROTOCOL_VERSIONS:
            raise self._fail(
                "protocol_error",
                f"MCP server {self.name!r} answered initialize with an unsupported protocol "
                f"version {str(version)[:40]!r}",
            )
        sid = reply.headers.get("mcp-session-id")
        if sid is not None and not (_header_safe(sid) and sid.isprintable()):
            raise self._fail("protocol_error", f"MCP server {self.name!r}: invalid session id")
        self.session_id = sid
        self.protocol_version = str(version)
        self._prefix = None
        note = _dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
        ack = await self._post(note, None)
        if ack.status >= 300:
            self.protocol_version = None
            raise self._http_error(ack)

    def _drop_session(self, sid: str | None) -> None:
        if self.session_id == sid:
            self.protocol_version = None
            self.session_id = None
            self._prefix = None

    async def _delete_session(self) -> None:
        assert self._prefix is not None
        head = self._prefix.replace(b"POST ", b"DELETE ", 1) + b"Content-Length: 0\r\n\r\n"
        conn = self._idle.pop()
        try:
            await conn.exchange(head, None)
        finally:
            conn.close()

    # -- credentials ---------------------------------------------------------------------

    async def _auth_value(self) -> tuple[str, str] | None:
        if self._token_source is not None:
            if self._token is None:
                self._token = await self._token_source(False)
                self._prefix = None
            return ("Authorization", f"Bearer {self._token}")
        return self._header

    async def _refresh_token(self) -> None:
        assert self._token_source is not None
        self._token = await self._token_source(True)
        self._prefix = None

    # -- HTTP ------------------------------------------------------------------------------

    def _prefix_bytes(self, auth: tuple[str, str] | None = None, handshake: bool = False) -> bytes:
        if self._prefix is not None and not handshake:
            return self._prefix
        t = self._target
        lines = [
            f"POST {t.path} HTTP/1.1",
            f"Host: {t.authority}",
            f"User-Agent: keyplane-gateway/{self._client_version}",
            f"Accept: {_ACCEPT}",
            "Content-Type: application/json",
        ]
        if auth is not None:
            if not (_header_safe(auth[0]) and _header_safe(auth[1])):
                raise self._fail(
                    "unauthorized", f"MCP server {self.name!r}: the token cannot go in a header"
                )
            lines.append(f"{auth[0]}: {auth[1]}")
        if not handshake:
            if self.session_id is not None:
                lines.append(f"mcp-session-id: {self.session_id}")
            if self.protocol_version is not None:
                lines.append(f"mcp-protocol-version: {self.protocol_version}")
        prefix = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        if not handshake:
            self._prefix = prefix
        return prefix

    async def _post(self, body: bytes, rid: int | str | None, *, handshake: bool = False) -> _Reply:
        """One POST and its answer; a connection error on a reused idle connection before
        any byte of the answer is retried once on a new connection."""
        auth = await self._auth_value()
        if handshake or self._prefix is None:
            prefix = self._prefix_bytes(auth, handshake)
        else:
            prefix = self._prefix
        data = prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body
        resent = False
        while True:
            conn = self._idle_conn()
            if conn is None:
                conn = await self._open()
            reused = conn.uses > 0
            conn.uses += 1
            self._busy.add(conn)
            keep = False
            try:
                reply, keep = await conn.exchange(data, rid)
            except _NoAnswer as exc:
                if reused and not resent:
                    resent = True
                    continue
                raise self._fail(
                    "unreachable",
                    f"MCP server {self.name!r} closed the connection without answering"
                    + (f" ({_describe(exc.cause)})" if exc.cause is not None else ""),
                ) from None
            except _Garbled as exc:
                raise self._fail(
                    "protocol_error", f"MCP server {self.name!r} answered garbage: {exc}"
                ) from None
            except (ConnectionError, OSError) as exc:
                raise self._fail(
                    "unreachable",
                    f"MCP server {self.name!r} broke the connection during the call: "
                    f"{_describe(exc)}",
                ) from None
            finally:
                self._busy.discard(conn)
                if keep and not self._closed and len(self._idle) < MAX_IDLE:
                    conn.last_used = time.monotonic()
                    self._idle.append(conn)
                else:
                    conn.close()
            return reply

    def _idle_conn(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None

    async def _open(self) -> _Conn:
        t = self._target
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    t.host,
                    t.port,
                    ssl=self._ssl,
                    server_hostname=t.host if t.tls else None,
                    limit=1 << 20,
                ),
                self.connect_timeout,
            )
        except TimeoutError:
            raise self._fail(
                "unreachable", f"MCP server {self.name!r} is unreachable ({self.url}): timed out"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise self._fail(
                "unreachable",
                f"MCP server {self.name!r} is unreachable ({self.url}): " + _describe(exc),
            ) from None
        self.connections_opened += 1
        return _Conn(reader, writer, max_bytes=self.max_answer_bytes)

    # -- answers ---------------------------------------------------------------------------

    def _message(self, reply: _Reply, rid: int | str) -> dict[str, Any]:
        """The JSON-RPC answer to request ``rid`` in a 200 reply."""
        if reply.status != 200:
            raise self._http_error(reply)
        msg = reply.message
        if msg is None:
            ctype = reply.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype == "application/json":
                try:
                    msg = json.loads(reply.body)
                except ValueError:
                    raise self._fail(
                        "protocol_error", f"MCP server {self.name!r} answered invalid JSON"
                    ) from None
                if not _answers(msg, rid):
                    msg = None
            if msg is None:
                raise self._fail(
                    "protocol_error",
                    f"MCP server {self.name!r} answered without a JSON-RPC response to the "
                    f"request (content type {ctype[:60]!r})",
                )
        assert msg is not None
        error = msg.get("error")
        if "result" not in msg:
            code = error.get("code") if isinstance(error, dict) else None
            text = error.get("message") if isinstance(error, dict) else None
            raise self._fail(
                "protocol_error",
                f"MCP server {self.name!r} answered an error: {str(text)[:300]}",
                mcp_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            )
        return msg

    def _result(self, reply: _Reply, rid: int) -> types.CallToolResult:
        result = self._message(reply, rid).get("result")
        try:
            return types.CallToolResult.model_validate(result, by_name=False)
        except PydanticValidationError:
            raise self._fail(
                "protocol_error", f"MCP server {self.name!r} answered an invalid tools/call result"
            ) from None

    def _http_error(self, reply: _Reply) -> DownstreamError:
        status = reply.status
        if status in (401, 403):
            return self._fail(
                "unauthorized",
                f"MCP server {self.name!r} refused the gateway's credential (HTTP {status}); "
                "check the server's credential and secret",
            )
        text = ""
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            err = json.loads(reply.body).get("error")
            if isinstance(err, dict) and isinstance(err.get("message"), str):
                text = ": " + err["message"][:300]
        return self._fail(
            "protocol_error", f"MCP server {self.name!r} answered an error (HTTP {status}){text}"
        )

    def _fail(self, reason: str, message: str, *, mcp_code: int | None = None) -> DownstreamError:
        for s in self._scrub:
            message = message.replace(s, "***")
        if self._token:
            message = message.replace(self._token, "***")
        details: dict[str, Any] = {"server": self.name, "reason": reason}
        if mcp_code is not None:
            details["mcp_code"] = mcp_code
        return DownstreamError(message, details=details)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

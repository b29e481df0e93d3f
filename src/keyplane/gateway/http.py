"""The gateway over streamable HTTP at ``/gateway/{store}/mcp`` (MCP 2025-06-18,
"Transports → Streamable HTTP" and "Authorization"), served by ``keyplane serve``.

Every HTTP request must carry a Keyplane ACCESS TOKEN of the store (``Authorization:
Bearer <JWT>`` from the store's token endpoint — not an API key) whose audience is the
gateway (its resource URL ``<base>/gateway/<store>/mcp``, RFC 8707) or the store's
issuer. It is verified on every request — so a revoked token, a suspended agent or a
revoked delegation stops the next call — and a request without a valid one is answered
``401`` with Keyplane's JSON error envelope and ``WWW-Authenticate: Bearer
resource_metadata="<base>/.well-known/oauth-protected-resource/gateway/<store>/mcp"``
(RFC 9728 §5.1), before the MCP SDK sees it. That metadata document names the store's
issuer as the authorization server, so an MCP client can find where to get a token.

The SDK's session manager runs *stateless* with JSON responses (as ``/mcp`` does,
:mod:`keyplane.mcp.http`): each POST is a complete exchange authenticated on its own.
The application's lifespan is wrapped to run the manager, the
:class:`~keyplane.gateway.downstream.DownstreamPool` (the persistent sessions to the
downstream servers) and the scheduled re-discovery.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import anyio
import anyio.to_thread
import mcp.types as types
from fastapi import FastAPI
from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types import DEFAULT_NEGOTIATED_VERSION
from mcp_types.methods import serialize_server_result
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError as PydanticValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.api.errors import envelope
from keyplane.errors import AuthenticationError, KeyplaneError, StoreNotFoundError
from keyplane.gateway.runtime import GatewayRuntime, Gateways, run_rediscovery
from keyplane.gateway.server import GatewayRequest, build_gateway_server
from keyplane.mcp.errors import error_result
from keyplane.service.context import Services, request_id_var
from keyplane.service.tokens import token_issuer
from keyplane.storage.sql import STORE_ID_RE

__all__ = [
    "GATEWAY_SCOPE_KEY",
    "GatewayEndpoint",
    "GatewayLane",
    "gateway_path",
    "metadata_path",
    "mount_gateway",
    "protected_resource_metadata",
]

GATEWAY_SCOPE_KEY = "keyplane.gateway"

log = logging.getLogger("keyplane.gateway")


def gateway_path(store_id: str) -> str:
    return f"/gateway/{store_id}/mcp"


def metadata_path(store_id: str) -> str:
    """RFC 9728 §3.1: the well-known path inserted before the resource's path."""
    return f"/.well-known/oauth-protected-resource{gateway_path(store_id)}"


def _base(svc: Services, scope: Scope) -> str:
    return (svc.settings.issuer or str(Request(scope).base_url)).rstrip("/")


def protected_resource_metadata(svc: Services, base: str, store_id: str) -> dict[str, Any]:
    """The gateway's RFC 9728 protected resource metadata."""
    return {
        "resource": base + gateway_path(store_id),
        "authorization_servers": [token_issuer(svc, store_id, base)],
        "bearer_methods_supported": ["header"],
        "scopes_supported": [],
        "resource_name": f"Keyplane MCP gateway ({store_id})",
    }


def _from_scope(ctx: ServerRequestContext[Any, Any]) -> GatewayRequest:
    request = ctx.request
    got = None if request is None else request.scope.get(GATEWAY_SCOPE_KEY)
    if not isinstance(got, GatewayRequest):  # only reachable if the endpoint is bypassed
        raise AuthenticationError("missing access token: send 'Authorization: Bearer <token>'")
    return got


class GatewayEndpoint:
    """The ASGI app serving ``/gateway/{store_id}/mcp``: the token, then the SDK."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.server = build_gateway_server(_from_scope)
        self._manager: StreamableHTTPSessionManager | None = None
        self.gateways: Gateways | None = None

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Run the SDK's session manager, the downstream pool and the re-discovery."""
        from keyplane.gateway.downstream import DownstreamPool  # local: the MCP client side

        svc = self.services
        manager = StreamableHTTPSessionManager(app=self.server, stateless=True, json_response=True)
        async with DownstreamPool(svc) as pool, manager.run(), anyio.create_task_group() as tg:
            gateways = Gateways(svc, pool)
            tg.start_soon(run_rediscovery, svc, gateways)
            self.gateways, self._manager = gateways, manager
            try:
                yield
            finally:
                self.gateways = self._manager = None
                tg.cancel_scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        store_id = str(scope.get("path_params", {}).get("store_id", ""))
        base = _base(self.services, scope)
        manager, gateways = self._manager, self.gateways
        if manager is None or gateways is None:
            down = KeyplaneError(
                "the MCP gateway is not running (application lifespan not started)"
            )
            await self._error(scope, receive, send, down, 503, base, store_id, False)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            missing = AuthenticationError(
                "missing access token: send 'Authorization: Bearer <token>' with an access "
                "token of the store's token endpoint (the resource metadata names it)"
            )
            await self._error(scope, receive, send, missing, 401, base, store_id, False)
            return
        if not STORE_ID_RE.match(store_id):
            bad = AuthenticationError("the bearer token cannot be used: no such store")
            await self._error(scope, receive, send, bad, 401, base, store_id, True)
            return
        runtime = gateways.runtime(store_id, base + gateway_path(store_id))
        version = _lane_headers(scope) if scope.get("method") == "POST" else None
        if version is not None:
            body = await _read_body(receive)
            call = _tools_call(body, version)
            if call is not None:
                await self._serve_call(scope, send, gateways, runtime, token, call, base)
                return
            receive = _replay(body, receive)
        try:
            verified = await anyio.to_thread.run_sync(runtime.authenticate, token)
        except KeyplaneError as exc:
            await self._error(scope, receive, send, exc, 401, base, store_id, True)
            return
        gateways.keep(runtime)
        req = GatewayRequest(runtime, token, verified)
        await manager.handle_request({**scope, GATEWAY_SCOPE_KEY: req}, receive, send)

    async def _serve_call(
        self,
        scope: Scope,
        send: Send,
        gateways: Gateways,
        runtime: GatewayRuntime,
        token: str,
        call: _ToolsCall,
        base: str,
    ) -> None:
        """The tools/call lane: the runtime answers the JSON-RPC request itself (token
        verification, kill switches, decision and recording in one worker-thread hop), and
        the result is shaped for the request's protocol version by the SDK's own
        serializer, as the SDK's stateless JSON transport would answer it."""
        rid = str((scope.get("state") or {}).get("request_id") or uuid.uuid4().hex)
        request_id_var.set(rid)
        try:
            result = await runtime.call(
                token, call.name, call.arguments, meta=call.meta, authenticate=True
            )
        except AuthenticationError as exc:
            await self._error(scope, _no_body, send, exc, 401, base, runtime.store_id, True)
            return
        except Exception as exc:  # the ledger could not take the decision: not forwarded
            result = error_result(exc)
        else:
            gateways.keep(runtime)
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        try:
            answer: dict[str, Any] = {
                "jsonrpc": "2.0",
                "id": call.id,
                "result": serialize_server_result("tools/call", call.version, dumped),
            }
        except (ValueError, KeyError, PydanticValidationError):
            log.exception("the gateway's tools/call result could not be serialized")
            answer = {
                "jsonrpc": "2.0",
                "id": call.id,
                "error": {"code": types.INTERNAL_ERROR, "message": "invalid tool result"},
            }
        raw = json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(raw)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})

    @staticmethod
    async def _error(
        scope: Scope,
        receive: Receive,
        send: Send,
        exc: KeyplaneError,
        status: int,
        base: str,
        store_id: str,
        invalid: bool,
    ) -> None:
        rid = str((scope.get("state") or {}).get("request_id", ""))
        headers = None
        if status == 401:
            challenge = f'Bearer resource_metadata="{base}{metadata_path(store_id)}"'
            if invalid:  # RFC 6750 §3.1: a token was presented and refused
                challenge += ', error="invalid_token"'
            headers = {"WWW-Authenticate": challenge}
        body = envelope(exc.code, exc.message, rid, exc.details or None)
        await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)


# ------------------------------------------------------------------------------ the lane


@dataclass(frozen=True, slots=True)
class _ToolsCall:
    id: str | int
    name: str
    arguments: dict[str, Any] | None
    meta: dict[str, Any] | None
    version: str


#: a request body the lane reads whole (larger ones go to the SDK, which refuses them)
_LANE_MAX_BODY: Final = 1 << 20
_PV_HEADER: Final = MCP_PROTOCOL_VERSION_HEADER.lower().encode("latin-1")


def _lane_headers(scope: Scope) -> str | None:
    """The protocol version of a POST the lane may take — JSON in, JSON accepted, a
    handshake-era protocol version (or none: the SDK's default) — else None."""
    ctype = accept = b""
    version: bytes | None = None
    # no Content-Length (a chunked body): not the lane, which reads the body whole
    length = _LANE_MAX_BODY + 1
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            ctype = value
        elif name == b"accept":
            accept = value
        elif name == _PV_HEADER:
            version = value
        elif name == b"content-length":
            length = int(value) if value.isdigit() else _LANE_MAX_BODY + 1
    if not ctype.lower().startswith(b"application/json") or length > _LANE_MAX_BODY:
        return None
    kinds = {a.split(b";")[0].strip().lower() for a in accept.split(b",")}
    if not kinds & {b"application/json", b"application/*", b"*/*"}:
        return None
    pv = DEFAULT_NEGOTIATED_VERSION if version is None else version.decode("latin-1")
    return pv if pv in HANDSHAKE_PROTOCOL_VERSIONS else None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` with the body already read given back first."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _tools_call(body: bytes, version: str) -> _ToolsCall | None:
    """A well-formed single JSON-RPC ``tools/call`` request (without a task), else None
    (the SDK validates and answers anything else)."""
    if len(body) > _LANE_MAX_BODY:
        return None
    try:
        msg = json.loads(body)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("method") != "tools/call":
        return None
    rid, params = msg.get("id"), msg.get("params")
    if msg.get("jsonrpc") != "2.0" or not isinstance(params, dict) or "task" in params:
        return None
    if isinstance(rid, bool) or not isinstance(rid, str | int):
        return None
    name, arguments, meta = params.get("name"), params.get("arguments"), params.get("_meta")
    if not isinstance(name, str):
        return None
    if arguments is not None and not isinstance(arguments, dict):
        return None
    if meta is not None and not isinstance(meta, dict):
        return None
    return _ToolsCall(rid, name, arguments, meta, version)


class GatewayLane:
    """ASGI middleware, OUTERMOST of the app's: a well-formed JSON-RPC ``tools/call`` POST
    to ``/gateway/{store}/mcp`` is answered by :meth:`GatewayEndpoint._serve_call` without
    the middleware stack and the router; everything else goes on untouched.

    What the stack does for such a request is done here: the body limit (the lane takes
    only a request whose ``Content-Length`` is within it and within the lane's own limit;
    the stack refuses the rest), the request id (``X-Request-ID`` or a new one: in the
    scope's state, the context variable the ledger events read, and the response header)
    and the metrics (the request counted and timed under the gateway route, as the
    metrics middleware would)."""

    def __init__(
        self, app: ASGIApp, endpoint: GatewayEndpoint, route: Route, max_body_bytes: int
    ) -> None:
        self.app = app
        self.endpoint = endpoint
        self.route = route
        self.limit = min(max_body_bytes, _LANE_MAX_BODY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        store_id = path[9:-4] if path.startswith("/gateway/") and path.endswith("/mcp") else ""
        ep = self.endpoint
        gateways = ep.gateways
        if not store_id or ep._manager is None or gateways is None:
            await self.app(scope, receive, send)
            return
        head = _lane_request(scope, self.limit)
        if head is None or not STORE_ID_RE.match(store_id):
            await self.app(scope, receive, send)
            return
        version, token, rid = head
        messages: list[Message] = []
        body = await _read_all(receive, messages)
        call = _tools_call(body, version) if body is not None else None
        if call is None:
            await self.app(scope, _replay_messages(messages, receive), send)
            return
        start = time.perf_counter()
        rid = (rid or uuid.uuid4().hex)[:128]
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        scope["path_params"] = {"store_id": store_id}
        scope["route"] = self.route
        status = 500
        id_header = (b"x-request-id", rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        reset = request_id_var.set(rid)
        try:
            base = _base(ep.services, scope)
            runtime = gateways.runtime(store_id, base + gateway_path(store_id))
            await ep._serve_call(scope, send_with_id, gateways, runtime, token, call, base)
        finally:
            request_id_var.reset(reset)
            app = scope.get("app")
            metrics = getattr(getattr(app, "state", None), "metrics", None)
            if metrics is not None:
                op = self.route.path
                metrics.requests.labels(op, "POST", str(status)).inc()
                metrics.latency.labels(op).observe(time.perf_counter() - start)


def _lane_request(scope: Scope, limit: int) -> tuple[str, str, str] | None:
    """(protocol version, bearer token, X-Request-ID or "") of a POST the outer lane may
    take — JSON in, JSON accepted, a handshake-era protocol version (or none), a
    ``Content-Length`` within ``limit``, a bearer token, headers not repeated — else None."""
    ctype = accept = auth = rid = None
    version: bytes | None = None
    length = -1
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            if ctype is not None:
                return None
            ctype = value
        elif name == b"accept":
            accept = value if accept is None else accept + b"," + value
        elif name == _PV_HEADER:
            if version is not None:
                return None
            version = value
        elif name == b"content-length":
            if length >= 0 or not value.isdigit():
                return None
            length = int(value)
        elif name == b"authorization":
            if auth is not None:
                return None
            auth = value
        elif name == b"x-request-id" and rid is None:
            rid = value
    if ctype is None or not ctype.lower().startswith(b"application/json"):
        return None
    if length < 0 or length > limit or auth is None or accept is None:
        return None
    kinds = {a.split(b";")[0].strip().lower() for a in accept.split(b",")}
    if not kinds & {b"application/json", b"application/*", b"*/*"}:
        return None
    scheme, _, token = auth.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    pv = DEFAULT_NEGOTIATED_VERSION if version is None else version.decode("latin-1")
    if pv not in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    return pv, token, rid.decode("latin-1") if rid is not None else ""


async def _read_all(receive: Receive, messages: list[Message]) -> bytes | None:
    """The whole body (None on a disconnect), every message kept for a replay."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay_messages(messages: list[Message], receive: Receive) -> Receive:
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


def _metadata_endpoint(services: Services) -> Any:
    async def metadata(request: Request) -> Response:
        store_id = str(request.path_params.get("store_id", ""))
        rid = str(getattr(request.state, "request_id", "") or "")
        try:
            if not STORE_ID_RE.match(store_id):
                raise StoreNotFoundError(f"store {store_id!r} not found")
            await anyio.to_thread.run_sync(services.storage.get_store, store_id)
        except KeyplaneError as exc:
            status = 404 if isinstance(exc, StoreNotFoundError) else 503
            return JSONResponse(envelope(exc.code, exc.message, rid, None), status_code=status)
        base = _base(services, request.scope)
        return JSONResponse(
            protected_resource_metadata(services, base, store_id),
            headers={"Cache-Control": "public, max-age=300"},
        )

    return metadata


def mount_gateway(app: FastAPI, services: Services) -> GatewayEndpoint:
    """Serve the gateway at ``/gateway/{store_id}/mcp`` (and its RFC 9728 metadata) on
    ``app``, running its session manager, pool and scheduler in the app's lifespan (the
    existing lifespan is wrapped, as :func:`keyplane.mcp.http.mount_mcp` does)."""
    endpoint = GatewayEndpoint(services)
    app.state.gateway = endpoint
    route = Route(
        "/gateway/{store_id}/mcp", endpoint, methods=["GET", "POST", "DELETE"],
        include_in_schema=False,
    )  # fmt: skip
    # first in the route list: matched at once, not after every other route
    app.router.routes.insert(0, route)
    # the tools/call lane ahead of the whole middleware stack (added last: outermost)
    limit = services.settings.max_body_bytes
    app.add_middleware(GatewayLane, endpoint=endpoint, route=route, max_body_bytes=limit)
    app.router.routes.append(
        Route(
            "/.well-known/oauth-protected-resource/gateway/{store_id}/mcp",
            _metadata_endpoint(services),
            methods=["GET"],
            include_in_schema=False,
        )
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with endpoint.run(), inner(a) as state:
            yield state

    app.router.lifespan_context = lifespan
    return endpoint

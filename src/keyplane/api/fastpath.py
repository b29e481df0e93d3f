"""The decision endpoints' fast lane: pure ASGI, on the event loop, no thread per request.

The hot decision endpoints — AuthZEN ``POST /access/v1/evaluation`` and ``…/evaluations``
(at the root and under ``/stores/{id}``), ``POST /v1/stores/{store}/check`` and
``…/batch-check`` — are served here without FastAPI's routing, dependency injection,
response-model validation and thread-pool hop, which cost ~20x the decision itself. Nothing
is weakened: every request is authenticated (the same API-key cache ``authenticate`` uses),
authorized and decided by the same service operation as the FastAPI route, with the same
pydantic request model; and every ledger event of the request is durable before the answer
in ``sync`` mode — the events are collected (:func:`keyplane.service.audit.deferred`) and
handed, with those of every other request in flight, to the ledger writer as one
``record_many`` from one thread (:class:`LedgerBridge`), which the request awaits.

The lane takes a request only when it can answer it exactly as the route would without
touching the database from the event loop: a JSON body the request model accepts, a bearer
key this process authenticated within the key cache's TTL (and no ``last_used_at`` write
due), a store whose graph, policy state and latest model are in memory, and no
``at_least_as_fresh`` wait. Anything else — a missing or unknown key, a malformed body, a
cold store — goes to the FastAPI route with the body replayed, which answers (and records
refusals) as always. Errors raised by the operation are rendered by the app's own exception
handlers. Big batches, and requests presenting a bearer token (AuthZEN
``subject.properties.token``: verifying one may read the store's signing keys), are
decided on a worker thread so that the loop stays responsive and never waits on the
database.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.errors import StorageError
from keyplane.ledger.events import LedgerEvent
from keyplane.service import audit
from keyplane.service.auth import SYSTEM_STORE_ID, Caller
from keyplane.service.keys import authenticate_cached

if TYPE_CHECKING:
    from keyplane.service.context import Services

__all__ = ["FastLane", "LaneStats", "LedgerBridge", "install_fast_lane"]

#: batches with more items than this are decided on a worker thread (the loop stays free)
THREAD_BATCH_ITEMS = 64
_MAX_STORE_ID = 128  # the routes' StoreId path parameter


def install_fast_lane(app: Any, services: Services) -> LaneStats:
    """Serve the decision endpoints of ``app`` (a FastAPI app) through :class:`FastLane`;
    its counters are ``app.state.fast_lane``."""
    stats = LaneStats()
    app.state.fast_lane = stats
    app.add_middleware(FastLane, services=services, bridge=LedgerBridge(services), stats=stats)
    return stats


@dataclass(slots=True)
class LaneStats:
    served: int = 0  # requests the lane answered (errors included)
    passed_on: int = 0  # decision-endpoint requests it left to the FastAPI route
    oauth: int = 0  # OAuth endpoint requests it answered (keyplane.api.oauth.serve)


# ------------------------------------------------------------------------------ the ledger


class LedgerBridge:
    """Durable recording awaited from an event loop: the events of every request waiting
    go to the ledger writer as ONE ``record_many`` call from one thread, so the writer's
    group commit is fed without a thread hop per request; the thread settles each waiting
    request's future when the call returns (sync mode: committed). A failed commit fails
    every request in it (they shared the transaction); an event that cannot be encoded
    fails only its own request. The thread ends after a few idle seconds."""

    def __init__(self, services: Services, *, idle: float = 5.0) -> None:
        self._services = services
        self._idle = idle
        self._cv = threading.Condition()
        self._pending: list[tuple[Sequence[LedgerEvent], asyncio.Future[None]]] = []
        self._running = False

    def record(self, events: Sequence[LedgerEvent]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._cv:
            self._pending.append((events, fut))
            if self._running:
                self._cv.notify()
            else:
                self._running = True
                threading.Thread(target=self._run, name="keyplane-ledger-bridge",
                                 daemon=True).start()  # fmt: skip
        return fut

    def _run(self) -> None:
        while True:
            with self._cv:
                if not self._pending:
                    self._cv.wait(self._idle)
                    if not self._pending:
                        self._running = False
                        return
                group, self._pending = self._pending, []
            errors = self._record(group)
            by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
            for (_, fut), err in zip(group, errors, strict=True):
                by_loop.setdefault(fut.get_loop(), []).append((fut, err))
            for loop, settled in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle, settled)
                except RuntimeError:  # that loop is closed: nobody is waiting any more
                    continue

    def _record(
        self, group: list[tuple[Sequence[LedgerEvent], asyncio.Future[None]]]
    ) -> list[BaseException | None]:
        ledger = self._services.ledger
        try:
            ledger.record_many([e for events, _ in group for e in events])
            return [None] * len(group)
        except StorageError as exc:  # the transaction failed: every event in it did
            return [exc] * len(group)
        except Exception:  # an event that cannot be encoded fails before anything of the
            pass  # group is queued: record each request's events apart (below)
        out: list[BaseException | None] = []
        for events, _ in group:
            try:
                ledger.record_many(events)
                out.append(None)
            except Exception as exc:
                out.append(exc)
        return out


def _settle(settled: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for fut, err in settled:
        if fut.done():
            continue
        if err is None:
            fut.set_result(None)
        else:
            fut.set_exception(err)


# ------------------------------------------------------------------------------ the lane


@dataclass(frozen=True, slots=True)
class _Route:
    """What scope["route"] says for metrics: the FastAPI route's operation id."""

    operation_id: str
    path: str


@dataclass(frozen=True, slots=True)
class _Endpoint:
    route: _Route
    model: Any  # the pydantic request model
    #: (svc, caller, store, body) -> (JSON-able answer, {outcome: count}, metrics operation)
    answer: Callable[..., tuple[Any, dict[str, int], str]]
    items: Callable[[Any], int]  # how many decisions the body asks for
    fresh: Callable[[Any], bool]  # whether it asks for at_least_as_fresh
    #: whether deciding it may read the database: then it is decided on a worker thread
    #: (a bearer token: its first verification reads the store's signing keys)
    blocking: Callable[[Any], bool]


_AUTHZEN = re.compile(r"/stores/([^/]+)/access/v1/(evaluations?)")
_V1 = re.compile(r"/v1/stores/([^/]+)/(check|batch-check)")
_OAUTH = re.compile(r"/stores/([^/]+)/oauth2/(token|introspect|revoke)")
#: the OAuth endpoints at the root: path -> the endpoint
_OAUTH_ROOT = {f"/oauth2/{e}": e for e in ("token", "introspect", "revoke")}


class FastLane:
    """ASGI middleware (innermost of the app's own): takes the decision endpoints' common
    case, passes everything else on untouched."""

    def __init__(
        self, app: ASGIApp, services: Services, bridge: LedgerBridge, stats: LaneStats
    ) -> None:
        self.app = app
        self.svc = services
        self.bridge = bridge
        self.stats = stats
        self._endpoints = _endpoints()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        oauth = _OAUTH_ROOT.get(path)
        if oauth is not None or path.startswith("/stores/"):
            m = None if oauth is not None else _OAUTH.fullmatch(path)
            if oauth is not None or m is not None:
                await self._oauth(scope, receive, send, m)
                return
        hit = self._match(path)
        if hit is None:
            await self.app(scope, receive, send)
            return
        endpoint, store = hit
        messages: list[Message] = []
        try:
            await self._serve(scope, receive, send, endpoint, store, messages)
        except _PassOn:
            self.stats.passed_on += 1
            await self.app(scope, _replay(messages, receive), send)
        else:
            self.stats.served += 1

    async def _oauth(
        self, scope: Scope, receive: Receive, send: Send, m: re.Match[str] | None
    ) -> None:
        """An OAuth endpoint (token, introspection, revocation): answered by
        :func:`keyplane.api.oauth.serve` — the very function the FastAPI route calls — without
        the router's matching of every route, the dependency injection and their thread hops
        (one hop remains: the client authentication and the grant read the database)."""
        from keyplane.api import oauth

        if m is None:
            endpoint, store, suffix = _OAUTH_ROOT[scope["path"]], None, ""
            path = scope["path"]
        else:
            store, endpoint, suffix = m.group(1), m.group(2), "_store"
            path = f"/stores/{{store_id}}/oauth2/{endpoint}"
        scope["route"] = _Route(f"oauth2_{endpoint}{suffix}", path)
        self.stats.oauth += 1
        try:
            response = await oauth.serve(self.svc, Request(scope, receive), store, endpoint)
        except Exception as exc:  # e.g. the body limit, raised while the form streams in
            await self._error(scope, receive, send, exc)
            return
        await response(scope, receive, send)

    def _match(self, path: str) -> tuple[_Endpoint, str] | None:
        ep = self._endpoints.get(path)
        if ep is not None:
            return ep, self.svc.settings.default_store
        if path.startswith("/stores/"):
            m = _AUTHZEN.fullmatch(path)
            if m is not None and len(m.group(1)) <= _MAX_STORE_ID:
                return self._endpoints[f"store:{m.group(2)}"], m.group(1)
        elif path.startswith("/v1/stores/"):
            m = _V1.fullmatch(path)
            if m is not None and len(m.group(1)) <= _MAX_STORE_ID:
                return self._endpoints[f"v1:{m.group(2)}"], m.group(1)
        return None

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        ep: _Endpoint,
        store: str,
        messages: list[Message],
    ) -> None:
        headers = _headers(scope)
        ctype = headers.get(b"content-type")
        if ctype is not None and ctype.split(b";")[0].strip().lower() != b"application/json":
            raise _PassOn
        token = _bearer(headers.get(b"authorization"))
        svc = self.svc
        caller = authenticate_cached(svc, token) if token is not None else None
        if caller is None or not (svc.graphs.warm(store) and svc.graphs.warm(SYSTEM_STORE_ID)):
            raise _PassOn
        try:
            raw = await _read_body(receive, messages)
        except Exception as exc:  # e.g. the body limit
            await self._error(scope, receive, send, exc)
            return
        if raw is None:
            raise _PassOn
        try:
            body = ep.model.model_validate_json(raw)
        except ValueError:
            raise _PassOn from None  # FastAPI gives the exact 400 (or accepts what JSON allows)
        if ep.fresh(body):
            raise _PassOn
        scope["route"] = ep.route
        state = scope.setdefault("state", {})
        state["caller"] = caller
        try:
            answer, outcomes, op = await self._decide(ep, svc, caller, store, body)
        except Exception as exc:
            await self._error(scope, receive, send, exc)
            return
        _observe(scope, op, outcomes)
        payload = _dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _decide(
        self, ep: _Endpoint, svc: Services, caller: Caller, store: str, body: Any
    ) -> tuple[Any, dict[str, int], str]:
        failure: BaseException | None = None
        result: tuple[Any, dict[str, int], str] | None = None
        with audit.deferred() as events:
            try:
                if ep.items(body) > THREAD_BATCH_ITEMS or ep.blocking(body):
                    ctx = contextvars.copy_context()  # the request id and the event sink
                    result = await asyncio.get_running_loop().run_in_executor(
                        None, ctx.run, ep.answer, svc, caller, store, body
                    )
                else:
                    result = ep.answer(svc, caller, store, body)
            except Exception as exc:
                failure = exc
        if events:
            # durable before the answer (sync mode); a refusal's or an error's event too
            await self.bridge.record(events)
        if failure is not None:
            raise failure
        assert result is not None
        return result

    async def _error(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        """Render ``exc`` with the app's exception handlers, as the route would."""
        app = scope.get("app")
        handlers: dict[Any, Any] = getattr(app, "exception_handlers", {}) or {}
        for cls in type(exc).__mro__:
            if cls is Exception:
                break
            handler = handlers.get(cls)
            if handler is not None:
                request = Request(scope, receive)
                response = handler(request, exc)
                if asyncio.iscoroutine(response):
                    response = await response
                await response(scope, receive, send)
                return
        raise exc  # ServerErrorMiddleware: the generic 500


class _PassOn(Exception):
    """This request is the FastAPI route's to answer."""


def _headers(scope: Scope) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for k, v in scope["headers"]:
        if k in (b"content-type", b"authorization"):
            if k in out:
                raise _PassOn  # repeated: let the framework's rules decide
            out[k] = v
    return out


def _bearer(value: bytes | None) -> str | None:
    """``Authorization: Bearer <key>`` as FastAPI's HTTPBearer reads it."""
    if value is None:
        return None
    try:
        text = value.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None
    scheme, _, cred = text.partition(" ")
    if scheme.lower() != "bearer" or not cred:
        return None
    return cred


async def _read_body(receive: Receive, messages: list[Message]) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        msg = await receive()
        messages.append(msg)
        if msg["type"] != "http.request":
            return None  # a disconnect: the route's machinery handles it
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body", False):
            return b"".join(chunks)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives back what the lane already read."""
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


def _dumps(value: Any) -> bytes:
    # exactly starlette's JSONResponse.render
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def _observe(scope: Scope, op: str, outcomes: dict[str, int]) -> None:
    app = scope.get("app")
    metrics = getattr(getattr(app, "state", None), "metrics", None)
    if metrics is None:
        return
    for outcome, n in outcomes.items():
        if n:
            metrics.decisions.labels(op, outcome).inc(n)


# ------------------------------------------------------------------------------ endpoints


def _endpoints() -> dict[str, _Endpoint]:
    from keyplane.api import authzen
    from keyplane.api.schemas import BatchCheckRequest, CheckRequest
    from keyplane.api.v1 import queries

    def single(_: Any) -> int:
        return 1

    def no_fresh(_: Any) -> bool:
        return False

    never = no_fresh

    def fresh(body: Any) -> bool:
        return body.at_least_as_fresh is not None

    def evaluations_items(body: Any) -> int:
        return len(body.evaluations or ())

    out: dict[str, _Endpoint] = {}
    for key, path, suffix in (
        ("", "/access/v1/", ""),
        ("store:", "/stores/{store_id}/access/v1/", "_store"),
    ):
        out[(key or path) + "evaluation"] = _Endpoint(
            _Route(f"authzen_evaluation{suffix}", path + "evaluation"),
            authzen.AuthzenEvaluationRequest,
            authzen.evaluation_answer,
            single,
            no_fresh,
            authzen.carries_token,
        )
        out[(key or path) + "evaluations"] = _Endpoint(
            _Route(f"authzen_evaluations{suffix}", path + "evaluations"),
            authzen.AuthzenEvaluationsRequest,
            authzen.evaluations_answer,
            evaluations_items,
            no_fresh,
            authzen.carries_token,
        )
    out["v1:check"] = _Endpoint(
        _Route("check", "/v1/stores/{store}/check"),
        CheckRequest,
        queries.check_answer,
        single,
        fresh,
        never,
    )
    out["v1:batch-check"] = _Endpoint(
        _Route("batch_check", "/v1/stores/{store}/batch-check"),
        BatchCheckRequest,
        queries.batch_check_answer,
        lambda body: len(body.checks),
        fresh,
        never,
    )
    return out

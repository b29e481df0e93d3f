"""Prometheus metrics: ``GET /metrics`` in the text exposition format.

Each app has its own :class:`~prometheus_client.CollectorRegistry` (two apps in one
process — tests, or a REST app beside another — never mix their numbers).

=========================================  ==========================================================
metric                                     meaning
=========================================  ==========================================================
``keyplane_http_requests_total``           requests by ``operation`` (the route's operation id,
                                           or its path template — never the raw path), ``method``
                                           and ``status``
``keyplane_http_request_duration_seconds`` latency histogram by ``operation``
``keyplane_decisions_total``               decisions by ``operation`` (``check``, ``batch_check``)
                                           and ``outcome`` (``allowed``, ``denied``, ``error``)
``keyplane_graph_tuples``                  tuples in each loaded store graph (``store``)
``keyplane_graph_revision``                the revision each loaded store graph reflects
``keyplane_graph_revision_lag``            database revision − applied revision, per store
=========================================  ==========================================================

Reading ``/metrics`` needs an API key allowed to list stores (admin, auditor, or an
all-store writer or reader): the graph metrics name every store.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.responses import error_responses
from keyplane.service import observability

__all__ = ["Metrics", "install_metrics", "observe_decisions", "router"]

# decisions take microseconds to milliseconds; writes and list calls take longer
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The app's metrics and their registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "keyplane_http_requests",
            "HTTP requests by operation, method and status.",
            ["operation", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "keyplane_http_request_duration_seconds",
            "HTTP request latency by operation.",
            ["operation"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "keyplane_decisions",
            "Access decisions by operation and outcome (allowed, denied, error).",
            ["operation", "outcome"],
            registry=r,
        )
        self.graph_tuples = Gauge(
            "keyplane_graph_tuples", "Tuples in a loaded store graph.", ["store"], registry=r
        )
        self.graph_revision = Gauge(
            "keyplane_graph_revision",
            "The revision a loaded store graph reflects.",
            ["store"],
            registry=r,
        )
        self.revision_lag = Gauge(
            "keyplane_graph_revision_lag",
            "Database revision minus the revision applied in this process, per store.",
            ["store"],
            registry=r,
        )

        # the ledger writer's own counters (issue 4 §3): a scrape shows that nothing is lost
        self.ledger = Gauge(
            "keyplane_ledger_events",
            "Ledger writer counters since start: recorded, committed, pending (acknowledged to "
            "no caller yet), lost (always 0), blocked (async back-pressure waits), "
            "transactions, failed_transactions, checkpoints, checkpoint_failures.",
            ["counter"],
            registry=r,
        )

    def set_ledger(self, stats: object) -> None:
        for name in (
            "recorded",
            "committed",
            "pending",
            "lost",
            "blocked",
            "transactions",
            "failed_transactions",
            "checkpoints",
            "checkpoint_failures",
        ):
            value = getattr(stats, name, None)
            if isinstance(value, int | float):
                self.ledger.labels(name).set(value)

    def set_graphs(self, stats: list[observability.GraphStats]) -> None:
        for g in (self.graph_tuples, self.graph_revision, self.revision_lag):
            g.clear()  # forget stores deleted (or unloaded) since the last scrape
        for s in stats:
            self.graph_tuples.labels(s.store_id).set(s.tuples)
            self.graph_revision.labels(s.store_id).set(s.applied_revision)
            if s.lag is not None:
                self.revision_lag.labels(s.store_id).set(s.lag)


def _operation(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:
        return "unmatched"  # 404s: a raw path would be unbounded label cardinality
    op = getattr(route, "operation_id", None) or getattr(route, "path", None)
    return str(op or "unmatched")


class _MetricsMiddleware:
    """Counts and times every HTTP request by the operation its route names."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            op = _operation(scope)
            self.metrics.requests.labels(op, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(op).observe(time.perf_counter() - start)


def install_metrics(app: FastAPI) -> Metrics:
    """Give ``app`` its own metrics registry and the middleware that feeds it."""
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    return metrics


def observe_decisions(request: Request, operation: str, **outcomes: int) -> None:
    """Count decisions by outcome (``allowed=``, ``denied=``, ``error=``)."""
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is None:
        return
    for outcome, n in outcomes.items():
        if n:
            metrics.decisions.labels(operation, outcome).inc(n)


router = APIRouter(tags=["operations"])

_TEXT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format.",
        "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses={**_TEXT, **error_responses()},
    summary="Prometheus metrics",
)
def metrics(request: Request, svc: ServicesDep, caller: CallerDep) -> Response:
    """Request counts and latencies per operation, decisions by outcome, graph sizes and
    revision lag per store. Needs a key allowed to list stores (admin, auditor, or an
    all-store writer or reader)."""
    m: Metrics = request.app.state.metrics
    m.set_graphs(observability.graph_stats(svc, caller))
    m.set_ledger(svc.ledger.stats())
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

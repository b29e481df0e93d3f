"""Access queries: check, batch check, expand, list objects, list users, explain.

Every query runs on the process's in-memory graph — never on the database — against the
store's latest model or the one named by ``model_id``. ``at_least_as_fresh=N`` makes the
query wait until this process has applied revision ``N`` (see :mod:`keyplane.service.graphs`).
Every result names the model id and the revision it was computed at, and carries the
``decision_id`` of the ledger event recording it (:mod:`keyplane.service.audit`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import KeyplaneError
from keyplane.graph.engine import CheckItem, Engine
from keyplane.graph.explain import Explanation
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.graphs import StoreGraph
from keyplane.service.inputs import TupleLike, check_limit, to_tuples

_log = logging.getLogger(__name__)
_PATHS_KEPT = 20  # granting paths an explain event keeps (the provenance of an allow)

__all__ = [
    "BatchItem",
    "BatchItemResult",
    "Decision",
    "ExpandTree",
    "ObjectStream",
    "UserList",
    "batch_check",
    "check",
    "expand",
    "explain",
    "list_objects",
    "list_users",
]


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to a check. Truthy when allowed."""

    allowed: bool
    model_id: str
    revision: int
    #: the id of the ledger event recording this decision (``keyplane ledger show <id>``)
    decision_id: str = field(default="", compare=False)

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True, slots=True)
class BatchItem:
    user: str
    relation: str
    object: str
    context: Mapping[str, Any] | None = None
    contextual_tuples: Sequence[TupleLike] = ()
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class BatchItemResult:
    """One batch item's answer: ``allowed``, or the ``error`` that prevented one."""

    correlation_id: str | None
    allowed: bool
    error: KeyplaneError | None = field(default=None)
    #: the id of the ledger event recording this item's decision
    decision_id: str = field(default="", compare=False)


class ObjectStream(Iterator[str]):
    """The objects a list-objects query found, iterated; ``decision_id`` names its event."""

    __slots__ = ("_items", "decision_id")

    def __init__(self, items: Iterable[str], decision_id: str = "") -> None:
        self._items = iter(items)
        self.decision_id = decision_id

    def __iter__(self) -> ObjectStream:
        return self

    def __next__(self) -> str:
        return next(self._items)


class UserList(list[str]):
    """The users a list-users query found (a list); ``decision_id`` names its event."""

    __slots__ = ("decision_id",)

    def __init__(self, items: Iterable[str] = (), decision_id: str = "") -> None:
        super().__init__(items)
        self.decision_id = decision_id


class ExpandTree(dict[str, Any]):
    """OpenFGA's expand answer, ``{"tree": {"root": …}}`` (a dict); ``decision_id`` names
    its event."""

    __slots__ = ("decision_id",)

    def __init__(self, tree: Mapping[str, Any] = {}, decision_id: str = "") -> None:
        super().__init__(tree)
        self.decision_id = decision_id


def _prepare(
    svc: Services,
    caller: Caller,
    store_id: str,
    model_id: str | None,
    at_least_as_fresh: int | None,
    contextual: Iterable[TupleLike] | None,
) -> tuple[Engine, StoreGraph, list[Any]]:
    authorize(svc, caller, Permission.QUERY, store_id)
    if at_least_as_fresh is not None:
        # catch up first (which may switch the latest model or reload a recreated store),
        # then take the engine, so the decision uses what that revision implies
        svc.graphs.wait_for(store_id, at_least_as_fresh, timeout=svc.settings.consistency_timeout)
    engine, graph = svc.graphs.engine(store_id, model_id)
    ctx = to_tuples(contextual)
    check_limit("contextual_tuples", ctx, svc.settings.max_contextual_tuples)
    return engine, graph, ctx


@audited("decision.check")
def check(
    svc: Services,
    caller: Caller,
    store_id: str,
    user: str,
    relation: str,
    object: str,
    *,
    context: Mapping[str, Any] | None = None,
    contextual_tuples: Iterable[TupleLike] | None = None,
    model_id: str | None = None,
    at_least_as_fresh: int | None = None,
) -> Decision:
    engine, graph, ctx = _prepare(
        svc, caller, store_id, model_id, at_least_as_fresh, contextual_tuples
    )
    with graph.lock:
        allowed = engine.check(user, relation, object, context=context, contextual_tuples=ctx)
        revision = graph.revision  # the revision this answer was computed at
    mid = engine.model.model_id or ""
    did = audit.decision(
        svc, caller, "decision.check", store_id, user, relation, object, allowed, mid, revision,
        context=context, contextual=ctx,
    )  # fmt: skip
    return Decision(allowed, mid, revision, did)


@audited("decision.batch_check")
def batch_check(
    svc: Services,
    caller: Caller,
    store_id: str,
    items: Sequence[BatchItem],
    *,
    model_id: str | None = None,
    at_least_as_fresh: int | None = None,
) -> list[BatchItemResult]:
    """Check many tuples at once; one item's error does not fail the others."""
    check_limit("checks", items, svc.settings.max_batch_check)
    engine, graph, _ = _prepare(svc, caller, store_id, model_id, at_least_as_fresh, None)
    out: list[BatchItemResult] = []
    with graph.lock:
        _batch(svc, engine, items, out)
        revision = graph.revision
    mid = engine.model.model_id or ""
    ids = audit.decisions(svc, caller, store_id, items, out, mid, revision)
    return [
        BatchItemResult(r.correlation_id, r.allowed, r.error, did)
        for r, did in zip(out, ids, strict=True)
    ]


def _batch(
    svc: Services, engine: Engine, items: Sequence[BatchItem], out: list[BatchItemResult]
) -> list[BatchItemResult]:
    """Validate each item, then answer the valid ones in one engine batch (items of one user
    share their resolution state); an item's error never fails the others."""
    slots: list[BatchItemResult | None] = []
    queued: list[CheckItem] = []
    for it in items:
        try:
            ctx = to_tuples(it.contextual_tuples)
            check_limit("contextual_tuples", ctx, svc.settings.max_contextual_tuples)
        except KeyplaneError as exc:
            slots.append(BatchItemResult(it.correlation_id, False, exc))
            continue
        slots.append(None)
        queued.append(
            CheckItem(it.user, it.relation, it.object, it.context, ctx, it.correlation_id)
        )
    try:
        answers = iter(engine.batch_check(queued))
        for slot in slots:
            if slot is None:
                a = next(answers)
                slot = BatchItemResult(a.correlation_id, a.allowed, a.error)
            out.append(slot)
        return out
    except Exception:  # a bug must not lose the other items' answers: answer one by one
        _log.exception("batch check failed unexpectedly; answering item by item")
    out.clear()
    pending = iter(queued)
    for slot in slots:
        if slot is not None:
            out.append(slot)
            continue
        q = next(pending)
        try:
            ok = engine.check(
                q.user,
                q.relation,
                q.object,
                context=q.context,
                contextual_tuples=q.contextual_tuples,
            )
            out.append(BatchItemResult(q.correlation_id, ok))
        except KeyplaneError as exc:
            out.append(BatchItemResult(q.correlation_id, False, exc))
        except Exception:
            _log.exception("batch check item %r failed unexpectedly", q.correlation_id)
            out.append(BatchItemResult(q.correlation_id, False, KeyplaneError("internal error")))
    return out


@audited("decision.expand")
def expand(
    svc: Services,
    caller: Caller,
    store_id: str,
    object: str,
    relation: str,
    *,
    context: Mapping[str, Any] | None = None,
    contextual_tuples: Iterable[TupleLike] | None = None,
    model_id: str | None = None,
    at_least_as_fresh: int | None = None,
) -> ExpandTree:
    engine, g, ctx = _prepare(svc, caller, store_id, model_id, at_least_as_fresh, contextual_tuples)
    with g.lock:
        tree = engine.expand(object, relation, context=context, contextual_tuples=ctx)
        revision = g.revision
    did = audit.listing(
        svc, caller, "decision.expand", store_id, subject=None, action=relation, resource=object,
        found=None, model_id=engine.model.model_id or "", revision=revision,
        context=context, contextual=ctx,
    )  # fmt: skip
    return ExpandTree(tree, did)


@audited("decision.list_objects")
def list_objects(
    svc: Services,
    caller: Caller,
    store_id: str,
    user: str,
    relation: str,
    object_type: str,
    *,
    context: Mapping[str, Any] | None = None,
    contextual_tuples: Iterable[TupleLike] | None = None,
    model_id: str | None = None,
    at_least_as_fresh: int | None = None,
) -> ObjectStream:
    """Every object of ``object_type`` the user holds ``relation`` on — complete, streamed."""
    engine, g, ctx = _prepare(svc, caller, store_id, model_id, at_least_as_fresh, contextual_tuples)
    # materialised under the graph lock: the engine's generator walks live index sets, which
    # the changelog tailer may mutate between two items of a lazily consumed stream
    with g.lock:
        found = list(
            engine.list_objects(user, relation, object_type, context=context, contextual_tuples=ctx)
        )
        revision = g.revision
    did = audit.listing(
        svc, caller, "decision.list_objects", store_id, subject=user, action=relation,
        resource=object_type, found=found, model_id=engine.model.model_id or "",
        revision=revision, context=context, contextual=ctx,
    )  # fmt: skip
    return ObjectStream(found, did)


@audited("decision.list_users")
def list_users(
    svc: Services,
    caller: Caller,
    store_id: str,
    object: str,
    relation: str,
    filters: Sequence[str],
    *,
    context: Mapping[str, Any] | None = None,
    contextual_tuples: Iterable[TupleLike] | None = None,
    model_id: str | None = None,
    at_least_as_fresh: int | None = None,
) -> UserList:
    engine, g, ctx = _prepare(svc, caller, store_id, model_id, at_least_as_fresh, contextual_tuples)
    with g.lock:
        users = engine.list_users(object, relation, filters, context=context, contextual_tuples=ctx)
        revision = g.revision
    did = audit.listing(
        svc, caller, "decision.list_users", store_id, subject=None, action=relation,
        resource=object, found=users, model_id=engine.model.model_id or "", revision=revision,
        context=context, contextual=ctx, details={"filters": list(filters)},
    )  # fmt: skip
    return UserList(users, did)


@audited("decision.explain")
def explain(
    svc: Services,
    caller: Caller,
    store_id: str,
    user: str,
    relation: str,
    object: str,
    *,
    context: Mapping[str, Any] | None = None,
    contextual_tuples: Iterable[TupleLike] | None = None,
    model_id: str | None = None,
    at_least_as_fresh: int | None = None,
) -> Explanation:
    engine, g, ctx = _prepare(svc, caller, store_id, model_id, at_least_as_fresh, contextual_tuples)
    with g.lock:
        ex = engine.explain(user, relation, object, context=context, contextual_tuples=ctx)
        revision = g.revision
    details: dict[str, Any] = {"paths": ex.paths[:_PATHS_KEPT]} if ex.allowed else {}
    if ex.error is not None:
        details["error"] = ex.error
    ex.decision_id = audit.decision(
        svc, caller, "decision.explain", store_id, user, relation, object, ex.allowed,
        engine.model.model_id or "", revision, context=context, contextual=ctx, details=details,
    )  # fmt: skip
    return ex

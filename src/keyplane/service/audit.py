"""What every service operation records in the provenance ledger (issue 4 §1).

Each operation is decorated with :func:`audited`, naming the event type it records
(``None`` for reads, which record nothing when they succeed). The decorator is the one
place that

* gives the call a request id when no surface set one (the embedded API: one per call),
* records a refusal — :class:`~keyplane.errors.PermissionDeniedError` from
  :func:`~keyplane.service.auth.authorize` — as an event of the attempted operation's type
  (``access.denied`` for a read) with outcome ``deny`` and reason ``permission_denied``,
* records any other error of a recorded operation with outcome ``error`` and the error's
  code as its reason, then re-raises it.

Successful operations record their own event with one call (these helpers take
``services`` rather than ``svc``, so the operation-finding tests do not take them for
operations): :func:`decision` (check,
explain), :func:`decisions` (batch check: one event per item), :func:`listing` (list
objects, list users, expand) or :func:`change` (tuples, models, stores, keys). In ``sync``
ledger mode these return only once the event is durable; if it cannot be recorded the
operation fails (fail closed): an answer is never given without its event.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from keyplane.errors import KeyplaneError, PermissionDeniedError
from keyplane.graph.tuples import Tuple
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.service.auth import SYSTEM_STORE_ID
from keyplane.service.context import request_id_var
from keyplane.service.inputs import to_tuple
from keyplane.storage.sql import STORE_ID_RE

if TYPE_CHECKING:
    from keyplane.service.auth import Caller
    from keyplane.service.context import Services

__all__ = [
    "DENIED_READ",
    "LIST_DETAIL_LIMIT",
    "audited",
    "change",
    "change_event",
    "change_events",
    "clip",
    "decision",
    "decisions",
    "deferred",
    "event_type_of",
    "jsonable",
    "listing",
    "record",
]

F = TypeVar("F", bound=Callable[..., Any])

#: the event type of a refused read (reads record nothing when they succeed)
DENIED_READ: Final = "access.denied"
#: list results are kept in an event's details up to this many items (the count is always kept)
LIST_DETAIL_LIMIT: Final = 1000
_MAX_FIELD = 512  # a refused or failed call's subject/resource are kept up to this length
_LEDGER_FAILED = "_keyplane_ledger_failed"


_RID_PREFIX = os.urandom(6).hex()
_rid_counter = itertools.count(1)


def _new_request_id() -> str:
    """A request id for a call no surface named (the embedded API): unique per process
    (a random prefix, then a counter) and cheap — it is on the decision path."""
    return f"{_RID_PREFIX}-{next(_rid_counter)}"


def event_type_of(fn: Callable[..., Any]) -> str | None:
    """The event type an :func:`audited` operation records (``None``: a read); raises
    AttributeError for a function that is not audited."""
    return cast(str | None, fn.__ledger_event__)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ the decorator


def audited(event_type: str | None) -> Callable[[F], F]:
    """Mark a service operation ``fn(svc, caller, ...)`` as recording ``event_type``."""

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)
        op = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"

        @functools.wraps(fn)
        def wrapper(svc: Services, caller: Caller, *args: Any, **kwargs: Any) -> Any:
            token = request_id_var.set(_new_request_id()) if request_id_var.get() is None else None
            try:
                return fn(svc, caller, *args, **kwargs)
            except PermissionDeniedError as exc:
                if not getattr(exc, _LEDGER_FAILED, False):
                    _failed(svc, caller, sig, op, event_type, args, kwargs, exc, refused=True)
                raise
            except KeyplaneError as exc:
                if event_type is not None and not getattr(exc, _LEDGER_FAILED, False):
                    _failed(svc, caller, sig, op, event_type, args, kwargs, exc, refused=False)
                raise
            finally:
                if token is not None:
                    request_id_var.reset(token)

        wrapper.__ledger_event__ = event_type  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def _failed(
    svc: Services,
    caller: Caller,
    sig: inspect.Signature,
    op: str,
    event_type: str | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    exc: KeyplaneError,
    *,
    refused: bool,
) -> None:
    try:
        bound = sig.bind_partial(svc, caller, *args, **kwargs).arguments
    except TypeError:
        bound = {}
    store = bound.get("store_id")
    obj = bound.get("object")
    if obj is None and "object_type" in bound:
        obj = bound["object_type"]
    if obj is None and "key_id" in bound:
        obj = f"key:{bound['key_id']}"
    if obj is None and op.startswith("access_requests.") and "request_id" in bound:
        obj = f"access_request:{bound['request_id']}"  # so the request's history shows it
    decision = bool(event_type and event_type.startswith("decision."))
    action = bound.get("relation") if decision else None
    user = bound.get("user")
    if decision and user is None:  # the decision point names them subject/action/resource
        user = bound.get("subject")
        action = action if action is not None else bound.get("action")
        if obj is None:
            obj = bound.get("resource")
    _emit(
        svc,
        [
            _event(
                svc,
                caller,
                event_type or DENIED_READ,
                store=_store_of(store),
                subject=_clip(user),
                action=_clip(action) or op,
                resource=_clip(obj) if obj is not None else _clip(store),
                outcome="deny" if refused else "error",
                reasons=("permission_denied",) if refused else (exc.code,),
                details={"operation": op, "message": exc.message[:_MAX_FIELD]},
            )
        ],
    )


def record(services: Services, events: Sequence[LedgerEvent]) -> None:
    """Record events an operation built itself (``decision.evaluate`` carries the actor
    chain, purpose and policy version); in sync mode durable on return."""
    _emit(services, events)


def clip(value: Any) -> str | None:
    """``value`` as text of at most 512 characters (a field of an event)."""
    return _clip(value)


def jsonable(value: Any) -> Any:
    """``value`` as canonical-JSON-safe data (what a caller passed may be any object)."""
    return _jsonable(value)


def _clip(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text[:_MAX_FIELD]


def _store_of(store_id: Any) -> str:
    """The chain an event goes to: its store's, or the system chain for calls naming none
    (or naming something that cannot be a store id)."""
    if isinstance(store_id, str) and STORE_ID_RE.match(store_id):
        return store_id
    return SYSTEM_STORE_ID


# ------------------------------------------------------------------------------ recording


def _event(
    svc: Services,
    caller: Caller,
    type: str,
    *,
    store: str,
    subject: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    outcome: str = "ok",
    reasons: tuple[str, ...] = (),
    model_id: str | None = None,
    revision: int | None = None,
    decision: bool = False,
    details: Mapping[str, Any] | None = None,
) -> LedgerEvent:
    eid = new_event_id()
    return LedgerEvent(
        id=eid,
        time=svc.clock.now(),
        store=store,
        type=type,
        caller=caller.principal,
        subject=subject,
        action=action,
        resource=resource,
        outcome=outcome,
        reasons=reasons,
        model_id=model_id or None,
        revision=revision,
        request_id=request_id_var.get(),
        decision_id=eid if decision else None,
        details=dict(details) if details else {},
    )


#: the events of the operations running in this context, when their caller records them
_deferred: ContextVar[list[LedgerEvent] | None] = ContextVar("keyplane_deferred", default=None)


@contextmanager
def deferred() -> Iterator[list[LedgerEvent]]:
    """Collect the events the operations called inside the block would record, instead of
    recording them — for a caller on an event loop that awaits their group commit rather
    than blocking a thread on it (``keyplane.api.fastpath``). The caller MUST record every
    collected event (``svc.ledger.record_many``) before it answers — also when the
    operation raised (its refusal or error event is collected too) — and must fail the
    request if that recording fails: nothing is answered that the ledger does not hold."""
    events: list[LedgerEvent] = []
    token = _deferred.set(events)
    try:
        yield events
    finally:
        _deferred.reset(token)


def _emit(svc: Services, events: Sequence[LedgerEvent]) -> None:
    """Record ``events``; in sync mode durable on return. A failure is marked on the
    exception so the decorator does not try to record it in turn. Inside :func:`deferred`
    they are collected for the caller to record."""
    sink = _deferred.get()
    if sink is not None:
        sink.extend(events)
        return
    try:
        svc.ledger.record_many(events)
    except BaseException as exc:
        setattr(exc, _LEDGER_FAILED, True)
        raise


def _query_details(
    context: Mapping[str, Any] | None, contextual: Sequence[Any] | None
) -> dict[str, Any] | None:
    """What a decision depended on besides the stored graph (to reconstruct it later)."""
    if not context and not contextual:
        return None
    out: dict[str, Any] = {}
    if context:
        out["context"] = _jsonable(context)
    if contextual:
        out["contextual_tuples"] = [_tuple_key(t) for t in contextual]
    return out


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as canonical-JSON-safe data: what a caller passed as a context may be any
    Python object (or not even a mapping, which the engine then rejects); the event keeps a
    faithful rendering rather than failing the decision."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth < 32 and isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if depth < 32 and isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value]
    return _clip(value)


def _tuple_key(t: Any) -> dict[str, Any] | str:
    if not isinstance(t, Tuple):
        try:
            t = to_tuple(t)
        except KeyplaneError:  # an invalid contextual tuple of a failed batch item
            return _clip(t) or ""
    d: dict[str, Any] = {"object": t.object, "relation": t.relation, "user": t.user}
    if getattr(t, "condition", None):
        d["condition"] = t.condition
        if t.context:
            d["context"] = _jsonable(t.context)
    if getattr(t, "expires_at", None) is not None:
        d["expires_at"] = t.expires_at
    return d


def decision(
    services: Services,
    caller: Caller,
    type: str,
    store_id: str,
    user: str,
    relation: str,
    object: str,
    allowed: bool,
    model_id: str,
    revision: int,
    *,
    context: Mapping[str, Any] | None = None,
    contextual: Sequence[Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """Record one decision (check, explain); returns its decision id."""
    extra = _query_details(context, contextual)
    if details:
        extra = {**(extra or {}), **details}
    ev = _event(
        services,
        caller,
        type,
        store=store_id,
        subject=user,
        action=relation,
        resource=object,
        outcome="allow" if allowed else "deny",
        model_id=model_id,
        revision=revision,
        decision=True,
        details=extra,
    )
    _emit(services, [ev])
    return ev.id


def decisions(
    services: Services,
    caller: Caller,
    store_id: str,
    items: Sequence[Any],
    results: Sequence[Any],
    model_id: str,
    revision: int,
) -> list[str]:
    """Record a batch check: one ``decision.batch_check`` event per item (an item's error
    is outcome ``error`` with its code); returns the decision ids in item order."""
    events = []
    for it, r in zip(items, results, strict=True):
        err: KeyplaneError | None = r.error
        extra = _query_details(it.context, list(it.contextual_tuples or ()) or None) or {}
        if it.correlation_id is not None:
            extra["correlation_id"] = it.correlation_id
        events.append(
            _event(
                services,
                caller,
                "decision.batch_check",
                store=store_id,
                subject=_clip(it.user),
                action=_clip(it.relation),
                resource=_clip(it.object),
                outcome="error" if err is not None else "allow" if r.allowed else "deny",
                reasons=(err.code,) if err is not None else (),
                model_id=model_id,
                revision=revision,
                decision=True,
                details=extra,
            )
        )
    _emit(services, events)
    return [e.id for e in events]


def listing(
    services: Services,
    caller: Caller,
    type: str,
    store_id: str,
    *,
    subject: str | None,
    action: str,
    resource: str,
    found: Sequence[str] | None,
    model_id: str,
    revision: int,
    context: Mapping[str, Any] | None = None,
    contextual: Sequence[Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """Record a list query (its count and up to :data:`LIST_DETAIL_LIMIT` results) or an
    expand; returns its decision id."""
    extra = _query_details(context, contextual) or {}
    if found is not None:
        extra["count"] = len(found)
        extra["results"] = list(found[:LIST_DETAIL_LIMIT])
        if len(found) > LIST_DETAIL_LIMIT:
            extra["truncated"] = True
    if details:
        extra.update(details)
    ev = _event(
        services,
        caller,
        type,
        store=store_id,
        subject=subject,
        action=action,
        resource=resource,
        model_id=model_id,
        revision=revision,
        decision=True,
        details=extra,
    )
    _emit(services, [ev])
    return ev.id


def change(
    services: Services,
    caller: Caller,
    type: str,
    store_id: str,
    *,
    resource: str | None = None,
    action: str | None = None,
    model_id: str | None = None,
    revision: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record a change (tuples, model, store, key). Never pass a secret in ``details``."""
    _emit(
        services,
        [
            change_event(
                services,
                caller,
                type,
                store_id,
                resource=resource,
                action=action,
                model_id=model_id,
                revision=revision,
                details=details,
            )
        ],
    )


def change_event(
    services: Services,
    caller: Caller,
    type: str,
    store_id: str,
    *,
    resource: str | None = None,
    action: str | None = None,
    model_id: str | None = None,
    revision: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> LedgerEvent:
    """The event :func:`change` records, built but not recorded — for a change whose event
    commits inside the change's own storage transaction."""
    return _event(
        services,
        caller,
        type,
        store=store_id,
        action=action,
        resource=resource if resource is not None else store_id,
        model_id=model_id,
        revision=revision,
        details=details,
    )


def change_events(
    services: Services,
    caller: Caller,
    type: str,
    store_id: str,
    *,
    resource: str | None = None,
    action: str | None = None,
    model_id: str | None = None,
    revision: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> list[tuple[LedgerEvent, str]]:
    """:func:`change_event`, redacted and encoded for a storage call's ``ledger_events``
    callback: the change and its event then commit in one transaction, so no change
    exists without its event even if the process dies right after the commit. An event
    that cannot be encoded raises here, inside the transaction, and rolls the change back."""
    ev = change_event(
        services,
        caller,
        type,
        store_id,
        resource=resource,
        action=action,
        model_id=model_id,
        revision=revision,
        details=details,
    )
    return [services.ledger.prepare(ev)]


def tuple_keys(tuples: Iterable[Any]) -> list[dict[str, Any] | str]:
    """Tuples as they appear in change events' details."""
    return [_tuple_key(t) for t in tuples]

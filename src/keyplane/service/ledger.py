"""Reading the provenance ledger: query, one decision's provenance, export, verify, keys.

Every function authorizes :data:`~keyplane.service.auth.Permission.READ_LEDGER` on the
store (admins, auditors, and writers of that store). The ledger outlives its store: an
admin or auditor can still read the events of a deleted store.

* :func:`query_events` — filters (time range, type, subject, actor anywhere in the actor
  chain, resource, action, outcome, purpose, request id, decision id) and cursor
  pagination over the store's ``seq`` (the cursor is the last ``seq`` returned).
* :func:`get_decision` — the full provenance of one decision id: the event, who called,
  on whose behalf and through which actors, the purpose, the model and policy versions,
  the revision — and for a check, the granting path (or the reasons of a denial),
  re-derived by explain with the recorded model over the graph *as it was at the recorded
  revision* (rebuilt from a snapshot and the changelog), at the decision's time. When the
  graph cannot be rebuilt (too large, the store deleted, the changelog gone) the result
  says so instead of pretending — see :class:`Provenance`.
* :func:`export_events` — a stream of lines: JSON Lines in the verifiable export format
  of :mod:`keyplane.ledger.chain` (``keyplane ledger verify --file``), or OCSF events
  (:mod:`keyplane.ledger.ocsf`).
* :func:`verify_ledger` — recompute the chain and check the signed checkpoints.
* :func:`ledger_public_keys` — the store's Ed25519 public keys, for offline verification.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from keyplane import __version__
from keyplane.clock import FixedClock
from keyplane.errors import (
    InvalidContinuationToken,
    KeyplaneError,
    NotFoundError,
    ValidationError,
)
from keyplane.graph.engine import Engine
from keyplane.graph.explain import Explanation
from keyplane.graph.index import TupleIndex
from keyplane.graph.tuples import Tuple, TupleChange
from keyplane.ledger import chain
from keyplane.ledger.chain import VerifyReport
from keyplane.ledger.checkpoints import b64decode, b64encode
from keyplane.ledger.events import EVENT_TYPES, EventFilter, LedgerEvent
from keyplane.ledger.ocsf import to_ocsf
from keyplane.ledger.redact import HMAC_PREFIX
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.inputs import MAX_REVISION, check_page_size, check_revision

__all__ = [
    "EventPage",
    "LedgerKey",
    "Provenance",
    "export_events",
    "get_decision",
    "ledger_public_keys",
    "query_events",
    "render_provenance",
    "verify_ledger",
]

ExportFormat = Literal["jsonl", "ocsf"]
EXPORT_FORMATS: tuple[str, ...] = ("jsonl", "ocsf")
OUTCOMES = ("allow", "deny", "error", "ok")

#: graphs larger than this are not rebuilt at an old revision (the path is explained on
#: the current graph instead, and the result says so)
MAX_REPLAY_TUPLES = 200_000
MAX_REPLAY_CHANGES = 100_000
_PAGE = 1000


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of events, oldest first; ``next_cursor`` is None on the last page."""

    events: list[LedgerEvent]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class LedgerKey:
    """A store's ledger signing key, public half only (Ed25519, raw 32 bytes)."""

    key_id: str
    algorithm: str
    public_key: str  # base64url, unpadded
    created_at: float

    def public_bytes(self) -> bytes:
        return b64decode(self.public_key)


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a decision was, who asked, on whose behalf, under which rules, and why.

    ``path_source`` says where ``explanation`` comes from:

    * ``"replayed_at_revision"`` — explain re-run with the recorded model over the graph
      rebuilt at the recorded revision, at the decision's time: the path that granted it;
    * ``"replayed_on_current_graph"`` — the graph could not be rebuilt at that revision
      (``note`` says why); the path shown is today's, and ``graph_moved`` says whether the
      graph changed since;
    * ``"recorded"`` — the event itself carried the path;
    * ``"none"`` — no path applies (not a check-like decision) or none could be derived.

    ``replay_matches`` is False when the replayed verdict differs from the recorded one
    (e.g. conditions whose context was HMAC-redacted in the ledger).
    """

    event: LedgerEvent
    caller: str
    subject: str | None
    actor_chain: tuple[str, ...]
    purpose: str | None
    model_id: str | None
    policy_version: str | None
    revision: int | None
    current_revision: int | None
    graph_moved: bool
    path_source: str
    explanation: dict[str, Any] | None
    replay_matches: bool | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": event_to_dict(self.event),
            "caller": self.caller,
            "subject": self.subject,
            "actor_chain": list(self.actor_chain),
            "purpose": self.purpose,
            "model_id": self.model_id,
            "policy_version": self.policy_version,
            "revision": self.revision,
            "current_revision": self.current_revision,
            "graph_moved": self.graph_moved,
            "path_source": self.path_source,
            "explanation": self.explanation,
            "replay_matches": self.replay_matches,
            "notes": list(self.notes),
        }


def event_to_dict(e: LedgerEvent) -> dict[str, Any]:
    """The event as JSON (every field, chain fields included)."""
    return e.to_dict()


# ------------------------------------------------------------------------------ query


def _cursor(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 19 or int(cursor) > MAX_REVISION:
        raise InvalidContinuationToken(
            f"invalid ledger cursor {cursor!r}: pass the next_cursor of the previous page",
            details={"cursor": cursor},
        )
    return int(cursor)


def _time(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValidationError(f"{name} must be a number of seconds since the epoch")
    return float(value)


@audited(None)
def query_events(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    since: float | None = None,
    until: float | None = None,
    types: Sequence[str] | None = None,
    subject: str | None = None,
    actor: str | None = None,
    resource: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    purpose: str | None = None,
    request_id: str | None = None,
    decision_id: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> EventPage:
    """The store's events matching every given filter, in ``seq`` order, one page.

    ``since`` ≤ time < ``until``; ``types`` any of these (a type ending in ``.*`` names a
    family, e.g. ``decision.*``); ``actor`` anywhere in the actor chain. Sensitive fields
    configured for HMAC hashing are matched by hashing the query value the same way.
    """
    authorize(svc, caller, Permission.READ_LEDGER, store_id)
    size = check_page_size(limit, svc.settings.max_page_size)
    after = _cursor(cursor)
    if outcome is not None and outcome not in OUTCOMES:
        raise ValidationError(
            f"unknown outcome {outcome!r}: one of {', '.join(OUTCOMES)}",
            details={"outcome": outcome},
        )
    filters = EventFilter(
        since=_time("since", since),
        until=_time("until", until),
        types=_types(types),
        subject=_searchable(svc, "subject", subject),
        actor=_searchable(svc, "caller", actor),
        resource=_searchable(svc, "resource", resource),
        action=action,
        outcome=outcome,
        purpose=_searchable(svc, "purpose", purpose),
        request_id=request_id,
        decision_id=decision_id,
    )
    found = svc.storage.read_events(store_id, after_seq=after, limit=size + 1, filters=filters)
    more = len(found) > size
    events = found[:size]
    nxt = str(events[-1].seq) if more and events else None
    return EventPage(events, nxt)


def _types(types: Sequence[str] | None) -> tuple[str, ...]:
    """Event types to match; ``family.*`` expands to every registered type of the family."""
    if types is None:
        return ()
    if isinstance(types, str):
        types = [types]
    out: list[str] = []
    for t in types:
        if not isinstance(t, str) or not t or len(t) > 128:
            raise ValidationError(f"invalid event type {t!r}")
        if t.endswith(".*"):
            prefix = t[:-1]
            family = [name for name in EVENT_TYPES if name.startswith(prefix)]
            if not family:
                raise ValidationError(f"no event type matches {t!r}", details={"type": t})
            out.extend(family)
        else:
            out.append(t)
    return tuple(dict.fromkeys(out))


def _searchable(svc: Services, name: str, value: str | None) -> str | None:
    """A query value as stored: HMAC-hashed when the field is configured as sensitive."""
    if value is None:
        return None
    redactor = getattr(svc, "redactor", None)
    if redactor is not None and name in redactor.fields:
        return str(redactor.hash_value(value))
    return value


# ------------------------------------------------------------------------------ one decision


@audited(None)
def get_decision(svc: Services, caller: Caller, decision_id: str) -> Provenance:
    """The full provenance of one decision (see :class:`Provenance`).

    Raises NotFoundError when no event has this decision id (or its event was pruned).
    """
    if not isinstance(decision_id, str) or not 0 < len(decision_id) <= 64:
        raise ValidationError("decision_id must be a non-empty string of at most 64 characters")
    event = svc.storage.get_event_by_decision(decision_id)
    if event is None:
        raise NotFoundError(
            f"no decision {decision_id!r} in the ledger", details={"decision_id": decision_id}
        )
    authorize(svc, caller, Permission.READ_LEDGER, event.store)
    return _provenance(svc, event)


_CHECK_LIKE = {"decision.check", "decision.batch_check", "decision.explain"}


def _provenance(svc: Services, e: LedgerEvent) -> Provenance:
    notes: list[str] = []
    current: int | None = None
    try:
        current = svc.graphs.graph(e.store).revision
    except KeyplaneError:
        notes.append(f"store {e.store!r} no longer exists: the decision cannot be replayed")
    moved = current is not None and e.revision is not None and current != e.revision

    def result(source: str, explanation: dict[str, Any] | None, matches: bool | None) -> Provenance:
        return Provenance(
            event=e,
            caller=e.caller,
            subject=e.subject,
            actor_chain=tuple(e.actor_chain),
            purpose=e.purpose,
            model_id=e.model_id,
            policy_version=e.policy_version,
            revision=e.revision,
            current_revision=current,
            graph_moved=moved,
            path_source=source,
            explanation=explanation,
            replay_matches=matches,
            notes=notes,
        )

    recorded = (e.details or {}).get("explanation")
    if isinstance(recorded, dict):
        return result("recorded", recorded, None)
    if e.type not in _CHECK_LIKE or e.outcome not in ("allow", "deny") or current is None:
        if e.type not in _CHECK_LIKE:
            notes.append(f"a {e.type} event has no single granting path")
        elif e.outcome == "error":
            notes.append("the decision failed: " + ", ".join(e.reasons))
        return result("none", None, None)
    explanation, source = _replay(svc, e, current, notes)
    matches = None
    if explanation is not None:
        matches = bool(explanation.get("allowed")) == (e.outcome == "allow")
        if not matches:
            notes.append(
                f"the replay answers {'allow' if explanation.get('allowed') else 'deny'} but "
                f"the recorded decision was {e.outcome}"
            )
    return result(source, explanation, matches)


def _context_of(e: LedgerEvent, notes: list[str]) -> tuple[dict[str, Any] | None, list[Tuple]]:
    details = e.details or {}
    ctx = details.get("context")
    if isinstance(ctx, str):  # HMAC-redacted in the ledger
        notes.append("the request context was HMAC-redacted: conditions are replayed without it")
        ctx = None
    contextual: list[Tuple] = []
    for raw in details.get("contextual_tuples") or ():
        try:
            contextual.append(Tuple.from_dict(raw) if isinstance(raw, dict) else _parse(raw))
        except (KeyplaneError, KeyError, TypeError, ValueError):
            notes.append(f"a contextual tuple could not be read back: {raw!r}")
    return (ctx if isinstance(ctx, dict) else None), contextual


def _parse(raw: Any) -> Tuple:
    from keyplane.service.inputs import to_tuple

    return to_tuple(raw)


def _replay(
    svc: Services, e: LedgerEvent, current: int, notes: list[str]
) -> tuple[dict[str, Any] | None, str]:
    """Explain the decision again: at its revision if the graph can be rebuilt there."""
    if not (e.subject and e.action and e.resource):
        notes.append("the event does not name a subject, relation and object")
        return None, "none"
    hashed = [
        name
        for name in ("subject", "action", "resource")
        if str(getattr(e, name)).startswith(HMAC_PREFIX)
    ]
    if hashed:
        notes.append(
            f"the event's {', '.join(hashed)} are HMAC-hashed (KEYPLANE_LEDGER_HMAC_FIELDS):"
            " the decision cannot be replayed"
        )
        return None, "none"
    ctx, contextual = _context_of(e, notes)
    model_id = e.model_id or None
    try:
        model = svc.graphs.model(e.store, model_id)
    except KeyplaneError as exc:
        notes.append(f"model {model_id!r} cannot be loaded ({exc.code}): no replay")
        return None, "none"
    if e.revision is not None:
        index = _index_at(svc, e.store, e.revision, notes)
        if index is not None:
            engine = Engine(
                model, index, clock=FixedClock(e.time), max_depth=svc.settings.max_depth
            )
            ex = engine.explain(
                e.subject, e.action, e.resource, context=ctx, contextual_tuples=contextual
            )
            return ex.to_dict(), "replayed_at_revision"
    engine, graph = svc.graphs.engine(e.store, model_id)
    with graph.lock:
        ex = engine.explain(
            e.subject, e.action, e.resource, context=ctx, contextual_tuples=contextual
        )
    if current != e.revision:
        notes.append(
            f"explained on the current graph (revision {current}), not at the recorded "
            f"revision {e.revision}: the path may differ from the one that granted it"
        )
    return ex.to_dict(), "replayed_on_current_graph"


def _index_at(svc: Services, store_id: str, revision: int, notes: list[str]) -> TupleIndex | None:
    """The store's tuples as of ``revision``: today's snapshot with later changes undone."""
    try:
        snap_rev, tuples = svc.storage.snapshot(store_id)
        current: dict[tuple[str, str, str], Tuple] = {}
        for t in tuples:
            current[(t.object, t.relation, t.user)] = t
            if len(current) > MAX_REPLAY_TUPLES:
                notes.append(
                    f"the store holds more than {MAX_REPLAY_TUPLES} tuples: not rebuilt at "
                    f"revision {revision}"
                )
                return None
        if snap_rev < revision:
            notes.append(f"the store's revision {snap_rev} is behind the recorded {revision}")
            return None
        changes: list[TupleChange] = []
        after = revision
        while after < snap_rev:
            page = svc.storage.read_changes(store_id, after_revision=after, page_size=_PAGE)
            changes.extend(c for c in page.changes if c.revision <= snap_rev)
            if len(changes) > MAX_REPLAY_CHANGES:
                notes.append(
                    f"more than {MAX_REPLAY_CHANGES} changes since revision {revision}: not rebuilt"
                )
                return None
            if not page.has_more or page.last_revision <= after:
                break
            after = page.last_revision
        for c in reversed(changes):
            key = (c.tuple.object, c.tuple.relation, c.tuple.user)
            if c.operation == "write":
                current.pop(key, None)
            else:
                current[key] = c.tuple
    except KeyplaneError as exc:
        notes.append(f"the graph at revision {revision} could not be rebuilt ({exc.code})")
        return None
    index = TupleIndex()
    for t in current.values():
        index.add(t)
    return index


def render_provenance(p: Provenance) -> str:
    """The provenance as text for people (``keyplane ledger show``, the MCP tool's text)."""
    e = p.event
    verdict = {"allow": "ALLOWED", "deny": "DENIED", "error": "FAILED"}.get(e.outcome, e.outcome)
    when = datetime.fromtimestamp(e.time, UTC).isoformat(timespec="milliseconds")
    lines = [
        f"{verdict}: {e.subject or '-'} {e.action or '-'} {e.resource or '-'}",
        f"  decision   {e.decision_id or e.id} ({e.type}, {when.replace('+00:00', 'Z')})",
        f"  store      {e.store}  seq {e.seq}  hash {(e.hash or '')[:16]}…",
        f"  caller     {p.caller}",
        f"  on behalf  {p.subject or '-'}"
        + (f" through {' > '.join(p.actor_chain)}" if p.actor_chain else ""),
        f"  purpose    {p.purpose or '-'}",
        f"  model      {p.model_id or '-'}  policy version {p.policy_version or '-'}",
        f"  revision   {p.revision if p.revision is not None else '-'}"
        + (f" (the graph is now at {p.current_revision})" if p.graph_moved else ""),
        f"  request    {e.request_id or '-'}",
    ]
    if e.reasons:
        lines.append(f"  reasons    {', '.join(e.reasons)}")
    ex = p.explanation
    if ex is not None:
        how = {
            "replayed_at_revision": f"replayed at revision {p.revision}",
            "replayed_on_current_graph": f"replayed on the current graph ({p.current_revision})",
            "recorded": "as recorded",
        }.get(p.path_source, p.path_source)
        lines.append(f"  why ({how}):")
        lines.extend(
            "    " + ln for ln in Explanation.from_dict(ex).render().rstrip("\n").splitlines()
        )
    for note in p.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ export


@audited(None)
def export_events(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    format: str = "jsonl",
    after_seq: int = 0,
    since: float | None = None,
) -> Iterator[str]:
    """The store's events as lines (each ending in ``\\n``), streamed page by page.

    ``jsonl``: the export format of :mod:`keyplane.ledger.chain` — the store's public keys,
    its events with their hashes, then its checkpoints — verifiable offline by
    ``keyplane ledger verify --file``. A partial export (``after_seq`` or ``since``) starts
    just after the last signed checkpoint at or before that point, so that it verifies on
    its own from that signed anchor. ``ocsf``: one OCSF event per line, from exactly that
    point. Authorization and argument errors are raised here, before the first line.
    """
    authorize(svc, caller, Permission.READ_LEDGER, store_id)
    if format not in EXPORT_FORMATS:
        raise ValidationError(
            f"unknown export format {format!r}: jsonl or ocsf", details={"format": format}
        )
    check_revision("after_seq", after_seq)  # 0..2**63-1: a sequence number the database holds
    start = after_seq
    t0 = _time("since", since)
    if t0 is not None:
        first = svc.storage.read_events(
            store_id, after_seq=after_seq, limit=1, filters=EventFilter(since=t0)
        )
        start = (first[0].seq or 1) - 1 if first else svc.storage.ledger_head(store_id)[0]
    if format == "ocsf":
        events = _all_events(svc, store_id, start)
        return (json.dumps(to_ocsf(e, product_version=__version__)) + "\n" for e in events)
    checkpoints = svc.storage.read_checkpoints(store_id)
    if start > 0:
        # begin at a signed anchor: the last checkpoint at or before the requested point
        anchors = [c.seq for c in checkpoints if c.seq <= start]
        first_kept = _first_seq(svc, store_id)
        start = max(anchors) if anchors else 0
        if start < first_kept - 1:  # pruned below the anchor: the oldest kept event
            start = first_kept - 1
    keys = {store_id: {k.key_id: k.public_bytes() for k in _public_keys(svc, store_id)}}
    kept = [c for c in checkpoints if c.seq >= start]
    return chain.export_lines(_all_events(svc, store_id, start), kept, keys)


def _first_seq(svc: Services, store_id: str) -> int:
    first = svc.storage.read_events(store_id, after_seq=0, limit=1)
    return (first[0].seq or 1) if first else 1


def _all_events(svc: Services, store_id: str, after: int) -> Iterator[LedgerEvent]:
    while True:
        page = svc.storage.read_events(store_id, after_seq=after, limit=_PAGE)
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].seq or after


# ------------------------------------------------------------------------------ verify, keys


@audited(None)
def verify_ledger(svc: Services, caller: Caller, store_id: str) -> VerifyReport:
    """Recompute the store's chain from the rows the database holds and check its signed
    checkpoints and its head (:func:`keyplane.ledger.chain.verify_stored`, what
    ``keyplane ledger verify --db`` runs): the first problem, if any. A pruned chain
    verifies from its signed anchor."""
    authorize(svc, caller, Permission.READ_LEDGER, store_id)
    return chain.verify_stored(svc.storage, store_id)


def _public_keys(svc: Services, store_id: str) -> list[LedgerKey]:
    return [
        LedgerKey(r.key_id, "Ed25519", b64encode(bytes(r.public_key)), float(r.created_at))
        for r in svc.storage.ledger_keys(store_id)
    ]


@audited(None)
def ledger_public_keys(svc: Services, caller: Caller, store_id: str) -> list[LedgerKey]:
    """The public halves of the store's ledger keys, oldest first. Never a private key."""
    authorize(svc, caller, Permission.READ_LEDGER, store_id)
    return _public_keys(svc, store_id)

"""Guardrails as service operations: put a new version, read one, list them, dry run
(issue 5 §4).

* :func:`put_guardrails` (``can_manage_policy``) validates and compiles the whole rule set
  (:func:`keyplane.policy.guardrails.parse_rules`), stores it as the store's next version
  (older versions are kept) and records ``guardrails.updated`` in the same transaction.
  The new version applies to every decision made after it (it bumps the store revision,
  so ``at_least_as_fresh`` covers it).
* :func:`get_guardrails` / :func:`list_guardrail_versions` (``can_read_identities``).
* :func:`dry_run_guardrails` (``can_query`` and ``can_read_ledger``) re-evaluates a
  candidate rule set over the last N ``decision.evaluate`` events of the store's ledger
  and reports the decisions whose answer would change.

The dry run re-evaluates **only the guardrails**: the identity, delegation and graph parts
of each recorded decision are taken as recorded (``details.before_guardrails``), because
the graph and the delegations may have changed since. A decision those parts denied stays
denied whatever the rules; one they allowed gets the candidate rules evaluated over the
recorded input — subject, actors, action, relation, resource and its properties, purpose,
context, tool, time, and each identity's kind, attributes and status as they were at
decision time. Events that cannot be re-evaluated (an item that errored, an event whose
input is HMAC-redacted in the ledger or was recorded without it) are counted as skipped,
by reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from keyplane.errors import NotFoundError, ValidationError
from keyplane.ledger.events import EventFilter, LedgerEvent
from keyplane.ledger.redact import HMAC_PREFIX
from keyplane.policy.guardrails import (
    CompiledGuardrails,
    Fired,
    build_env,
    compile_rules,
    parse_rules,
)
from keyplane.policy.records import Guardrail, GuardrailSet, Identity
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import Page

__all__ = [
    "MAX_DRY_RUN",
    "GuardrailDryRun",
    "GuardrailFlip",
    "dry_run_guardrails",
    "get_guardrails",
    "list_guardrail_versions",
    "put_guardrails",
]

_UPDATED: Final = "guardrails.updated"
_DECISION: Final = "decision.evaluate"
#: the most recorded decisions one dry run re-evaluates
MAX_DRY_RUN: Final = 10_000
_READ_BATCH: Final = 1000
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class GuardrailFlip:
    """A recorded decision whose answer the candidate rules would change."""

    event_id: str
    decision_id: str
    seq: int | None
    time: float
    subject: str
    actors: tuple[str, ...]
    action: str
    resource: str
    old_outcome: str  # "allow" | "deny"
    new_outcome: str
    old_code: str  # allowed | guardrail_forbid | approval_required
    new_code: str
    #: the candidate rules that fired (in rule order)
    rule_ids: tuple[str, ...]
    #: the rules that fired when the decision was made
    old_rule_ids: tuple[str, ...] = ()
    #: candidate rules whose evaluation failed (they fire: fail closed), and why
    errors: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GuardrailDryRun:
    """How a candidate rule set would have changed the store's last recorded decisions."""

    #: decision events read (at most ``last``)
    considered: int
    #: of those, re-evaluated (the rest are ``skipped``)
    evaluated: int
    #: decisions whose code would change (allowed, guardrail_forbid, approval_required)
    changed: int
    #: of those, allow ↔ deny
    outcome_changed: int
    #: decisions denied before the guardrails (identity, delegation, graph): kept as recorded
    denied_before_guardrails: int
    #: events not re-evaluated, by reason (``error``, ``redacted``, ``not_recorded``)
    skipped: Mapping[str, int]
    #: the guardrail version in force now (0: none)
    current_version: int
    #: one per changed decision, newest first
    flips: tuple[GuardrailFlip, ...]
    #: re-evaluations where a candidate rule failed (and so fired)
    rule_errors: int = 0


# ------------------------------------------------------------------------------ operations


@audited(_UPDATED)
def put_guardrails(
    svc: Services, caller: Caller, store_id: str, rules: Sequence[Guardrail | Mapping[str, Any]]
) -> GuardrailSet:
    """Store ``rules`` as the store's next guardrail version; returns it.

    Each rule is ``{id, description, effect, expression, enabled}`` (a
    :class:`~keyplane.policy.records.Guardrail` or its JSON object); the whole set is
    checked first (:class:`~keyplane.errors.GuardrailInvalidError`: CEL syntax or type
    error, unknown variable, unknown effect, repeated id) and nothing is stored if any
    rule fails. An empty list is a valid version (no guardrails).
    """
    authorize(svc, caller, Permission.MANAGE_POLICY, store_id)
    parsed = parse_rules(rules)

    def events(gset: GuardrailSet) -> Sequence[tuple[LedgerEvent, str]]:
        return audit.change_events(
            svc,
            caller,
            _UPDATED,
            store_id,
            revision=gset.revision,
            details={
                "version": gset.version,
                "rules": [_rule_dict(r) for r in gset.rules],
            },
        )

    gset = svc.storage.put_guardrail_set(
        store_id,
        parsed,
        created_by=caller.principal,
        created_at=svc.clock.now(),
        ledger_events=events,
    )
    svc.graphs.catch_up(store_id)
    return gset


@audited(None)
def get_guardrails(
    svc: Services, caller: Caller, store_id: str, *, version: int | None = None
) -> GuardrailSet:
    """The store's guardrail set at ``version`` (default: the latest). With no version
    ever written, the latest is an empty set with ``version`` 0."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        raise ValidationError(
            f"version must be a positive integer (got {version!r})",
            details={"field": "version", "received": repr(version)[:64]},
        )
    gset = svc.storage.get_guardrail_set(store_id, version)
    if gset is not None:
        return gset
    if version is None:
        return GuardrailSet(store_id, 0, (), "", 0.0, 0)
    raise NotFoundError(
        f"guardrail version {version} not found in store {store_id!r}",
        details={"store_id": store_id, "version": version},
    )


@audited(None)
def list_guardrail_versions(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[GuardrailSet]:
    """Every version of the store's guardrails, newest first."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    size = check_page_size(page_size, svc.settings.max_page_size)
    return svc.storage.list_guardrail_sets(
        store_id, page_size=size, continuation_token=continuation_token
    )


@audited(None)
def dry_run_guardrails(
    svc: Services,
    caller: Caller,
    store_id: str,
    rules: Sequence[Guardrail | Mapping[str, Any]],
    *,
    last: int = 1000,
) -> GuardrailDryRun:
    """Re-evaluate ``rules`` over the last ``last`` recorded decisions of the store and
    report those whose answer would change (see the module docstring for what is
    re-evaluated and what is taken as recorded). Stores nothing."""
    authorize(svc, caller, Permission.QUERY, store_id)
    authorize(svc, caller, Permission.READ_LEDGER, store_id)
    if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= MAX_DRY_RUN:
        raise ValidationError(
            f"last must be between 1 and {MAX_DRY_RUN} (got {last!r})",
            details={"field": "last", "received": repr(last)[:64]},
        )
    compiled = compile_rules(parse_rules(rules), store_id=store_id)
    current = svc.storage.get_guardrail_set(store_id)
    run = _DryRun(store_id, compiled)
    for ev in _last_decisions(svc, store_id, last):
        run.add(ev)
    return run.result(current.version if current is not None else 0)


# ------------------------------------------------------------------------------ helpers


def _rule_dict(r: Guardrail) -> dict[str, Any]:
    return {
        "id": r.id,
        "description": r.description,
        "effect": r.effect,
        "expression": r.expression,
        "enabled": r.enabled,
    }


def _last_decisions(svc: Services, store_id: str, last: int) -> list[LedgerEvent]:
    """The store's last ``last`` decision events, newest first."""
    filters = EventFilter(types=(_DECISION,))
    out: list[LedgerEvent] = []
    before = 0
    while len(out) < last:
        batch = svc.storage.read_events(
            store_id,
            after_seq=before,
            limit=min(_READ_BATCH, last - len(out)),
            filters=filters,
            descending=True,
        )
        out.extend(batch)
        if not batch or batch[-1].seq is None or batch[-1].seq <= 1:
            break
        before = batch[-1].seq
    return out[:last]


class _Recorded:
    """``identity(node)`` over the identities an event recorded (kind, attributes, status)."""

    __slots__ = ("_idents",)

    def __init__(self, store_id: str, raw: Mapping[str, Any]) -> None:
        self._idents: dict[str, Identity] = {}
        for node, rec in raw.items():
            if not isinstance(rec, Mapping):
                continue
            kind = rec.get("kind")
            attributes = rec.get("attributes")
            self._idents[node] = Identity(
                store_id=store_id,
                kind=str(kind) if kind is not None else node.partition(":")[0],
                id=node.partition(":")[2],
                display_name="",
                attributes=dict(attributes) if isinstance(attributes, Mapping) else {},
                status=str(rec.get("status", "active")),
                owners=(),
                orphaned=False,
                source="ledger",
                created_at=0.0,
                updated_at=0.0,
                last_seen=None,
                revision=-1,
            )

    def identity(self, node: str) -> Identity | None:
        return self._idents.get(node)


@dataclass(frozen=True, slots=True)
class _Input:
    """A recorded decision input (the fields ``build_env`` reads)."""

    subject: str
    actors: tuple[str, ...]
    action: str
    resource: str
    purpose: str | None
    context: Mapping[str, Any]
    tool: str | None
    time: float
    resource_properties: Mapping[str, Any]
    subject_properties: Mapping[str, Any]


def _redacted(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith(HMAC_PREFIX)
    if isinstance(value, Mapping):
        return any(_redacted(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_redacted(v) for v in value)
    return False


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _recorded_input(ev: LedgerEvent) -> tuple[_Input, str, _Recorded] | str:
    """The event's input, relation and identities, or why it cannot be re-evaluated."""
    d = ev.details or {}
    raw = d.get("input")
    if _redacted(raw) or _redacted(d.get("identities")) or _redacted(d.get("relation")):
        return "redacted"
    if not isinstance(raw, Mapping) or not isinstance(d.get("relation"), str):
        return "not_recorded"
    subject, action, resource = raw.get("subject"), raw.get("action"), raw.get("resource")
    actors = raw.get("actors") or []
    if not (
        isinstance(subject, str)
        and isinstance(action, str)
        and isinstance(resource, str)
        and isinstance(actors, list)
        and all(isinstance(a, str) for a in actors)
    ):
        return "not_recorded"
    t = raw.get("time", ev.time)
    purpose, tool = raw.get("purpose"), raw.get("tool")
    inp = _Input(
        subject,
        tuple(actors),
        action,
        resource,
        purpose if isinstance(purpose, str) else None,
        _mapping(raw.get("context")),
        tool if isinstance(tool, str) else None,
        float(t) if isinstance(t, int | float) else float(ev.time),
        _mapping(raw.get("resource_properties")),
        _mapping(raw.get("subject_properties")),
    )
    return inp, d["relation"], _Recorded(ev.store, _mapping(d.get("identities")))


def _code(fired: Sequence[Fired]) -> str:
    if any(f.effect == "forbid" for f in fired):
        return "guardrail_forbid"
    if fired:
        return "approval_required"
    return "allowed"


class _DryRun:
    def __init__(self, store_id: str, rules: CompiledGuardrails) -> None:
        self.store_id = store_id
        self.rules = rules
        self.considered = 0
        self.evaluated = 0
        self.denied_before = 0
        self.rule_errors = 0
        self.skipped: dict[str, int] = {}
        self.flips: list[GuardrailFlip] = []

    def _skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def add(self, ev: LedgerEvent) -> None:
        self.considered += 1
        if ev.outcome not in ("allow", "deny"):
            self._skip("error")
            return
        d = ev.details or {}
        before = d.get("before_guardrails")
        if before not in ("allow", "deny"):
            self._skip("not_recorded")
            return
        got = _recorded_input(ev)
        if isinstance(got, str):
            self._skip(got)
            return
        self.evaluated += 1
        if before == "deny":
            self.denied_before += 1  # the rules never ran for it, and would not now
            return
        inp, relation, idents = got
        # a plain dict: recorded identities must not share the per-chain CEL cache
        env = dict(build_env(inp, relation, idents))
        fired = self.rules.evaluate(env)
        errors = {f.rule_id: f.error for f in fired if f.error is not None}
        if errors:
            self.rule_errors += 1
        old_code = ev.reasons[0] if ev.reasons else ("allowed" if ev.outcome == "allow" else "")
        new_code = _code(fired)
        if new_code == old_code:
            return
        old_fired = d.get("fired") or []
        self.flips.append(
            GuardrailFlip(
                event_id=ev.id,
                decision_id=ev.decision_id or ev.id,
                seq=ev.seq,
                time=ev.time,
                subject=inp.subject,
                actors=inp.actors,
                action=inp.action,
                resource=inp.resource,
                old_outcome=ev.outcome,
                new_outcome="allow" if new_code == "allowed" else "deny",
                old_code=old_code,
                new_code=new_code,
                rule_ids=tuple(f.rule_id for f in fired),
                old_rule_ids=tuple(
                    str(f[0]) for f in old_fired if isinstance(f, list | tuple) and f
                ),
                errors=errors,
            )
        )

    def result(self, current_version: int) -> GuardrailDryRun:
        return GuardrailDryRun(
            considered=self.considered,
            evaluated=self.evaluated,
            changed=len(self.flips),
            outcome_changed=sum(1 for f in self.flips if f.old_outcome != f.new_outcome),
            denied_before_guardrails=self.denied_before,
            skipped=dict(self.skipped),
            current_version=current_version,
            flips=tuple(self.flips),
            rule_errors=self.rule_errors,
        )

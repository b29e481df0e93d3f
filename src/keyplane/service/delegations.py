"""Delegations: a delegator lets a delegate act on its behalf, within a scope, for some
purposes, for a while, for a number of further hops (ISSUE 5 §2, ARCHITECTURE.md
"delegation").

* A **root** delegation (no ``parent_id``): the delegator is a registered, active identity
  of any kind (a human, or an agent/workload acting for itself); the delegate a
  registered, active non-human identity; ``expires_at`` is required, in the future, and at
  most ``StorePolicy.max_delegation_seconds`` after ``not_before``.
* A **sub-delegation** (``parent_id``): the delegator is the parent's delegate; the parent
  is active, not expired and allows further hops; the child is contained in it
  (:mod:`keyplane.policy.containment`: scope, tools, purposes, validity, depth) — anything
  wider is ``delegation_widening`` naming the widening.
* ``condition``: a CEL expression over the decision input (the guardrail environment),
  checked here with :func:`keyplane.policy.guardrails.compile_expression`.

Revoking a delegation revokes everything derived from it, in one transaction, one
``delegation.revoked`` event each. All checks run inside the write transaction (after the
store revision is bumped, so a concurrent revocation or suspension is seen).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from keyplane.errors import (
    DelegationInvalidError,
    DelegationNotFoundError,
    GuardrailInvalidError,
    ValidationError,
)
from keyplane.ledger.events import LedgerEvent
from keyplane.policy.containment import check_contained, parse_scope, scope_to_json
from keyplane.policy.guardrails import compile_expression
from keyplane.policy.records import DELEGATION_STATUSES, NON_HUMAN_KINDS, Delegation, ScopeGrant
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.identities import (
    Revocation,
    check_reason,
    parse_node,
    revocation_events,
    revoke_all,
)
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import Page, PolicyTxReader, PolicyWrite
from keyplane.storage.ids import UlidGenerator

__all__ = ["create_delegation", "get_delegation", "list_delegations", "revoke_delegation"]

#: the most further hops a delegation may allow
MAX_DEPTH = 16
MAX_PURPOSES = 32
MAX_CONDITION = 4096

_ids = UlidGenerator()


def _invalid(message: str, **details: Any) -> DelegationInvalidError:
    return DelegationInvalidError(message, details=details)


def _time(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"{what} must be a time in seconds since the epoch", field=what)
    return float(value)


def _purposes(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _invalid("purposes must be a list of strings", field="purposes")
    out: list[str] = []
    for p in value:
        if not isinstance(p, str) or not p or len(p) > 128:
            raise _invalid(f"invalid purpose {p!r}", field="purposes")
        if p not in out:
            out.append(p)
    if len(out) > MAX_PURPOSES:
        raise _invalid(f"at most {MAX_PURPOSES} purposes", field="purposes")
    return tuple(out)


def _condition(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CONDITION:
        raise _invalid("condition must be a non-empty CEL expression", field="condition")
    try:
        compile_expression(value)
    except GuardrailInvalidError as exc:
        raise _invalid(
            f"invalid condition: {exc.message}", field="condition", **dict(exc.details or {})
        ) from None
    return value


def _party(r: PolicyTxReader, node: str, role: str, *, non_human: bool) -> None:
    kind, id_ = parse_node(node, what=role)
    ident = r.identity(kind, id_)
    if ident is None:
        raise _invalid(f"{role} {node!r} is not a registered identity", field=role, node=node)
    if ident.status != "active":
        raise _invalid(
            f"{role} {node!r} is {ident.status}", field=role, node=node, status=ident.status
        )
    if non_human and kind not in NON_HUMAN_KINDS:
        raise _invalid(
            f"the delegate must be a non-human identity ({', '.join(NON_HUMAN_KINDS)})",
            field=role,
            node=node,
        )


def delegation_details(d: Delegation) -> dict[str, Any]:
    return {
        "delegation_id": d.id,
        "delegator": d.delegator,
        "delegate": d.delegate,
        "parent_id": d.parent_id,
        "scope": scope_to_json(d.scope),
        "purposes": list(d.purposes),
        "not_before": d.not_before,
        "expires_at": d.expires_at,
        "max_depth": d.max_depth,
        "condition": d.condition,
    }


@audited("delegation.created")
def create_delegation(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    delegator: str,
    delegate: str,
    scope: Sequence[ScopeGrant | Mapping[str, Any]],
    expires_at: float,
    purposes: Iterable[str] = (),
    not_before: float | None = None,
    max_depth: int = 0,
    condition: str | None = None,
    parent_id: str | None = None,
) -> Delegation:
    """Grant a delegation (a root one, or a sub-delegation of ``parent_id`` contained in
    it); see the module docstring for every rule."""
    authorize(svc, caller, Permission.MANAGE_DELEGATIONS, store_id)
    parse_node(delegator, what="delegator")
    parse_node(delegate, what="delegate")
    if delegator == delegate:
        raise _invalid("an identity cannot delegate to itself", field="delegate")
    grants = parse_scope(scope)
    purp = _purposes(purposes)
    now = svc.clock.now()
    if expires_at is None:
        raise _invalid("expires_at is required", field="expires_at")
    exp = _time(expires_at, "expires_at")
    nbf = now if not_before is None else _time(not_before, "not_before")
    if (
        isinstance(max_depth, bool)
        or not isinstance(max_depth, int)
        or not 0 <= max_depth <= MAX_DEPTH
    ):
        raise _invalid(f"max_depth must be an integer in 0..{MAX_DEPTH}", field="max_depth")
    if exp <= now:
        raise _invalid("expires_at must be in the future", field="expires_at", expires_at=exp)
    if exp <= nbf:
        raise _invalid("expires_at must be after not_before", field="expires_at")
    cond = _condition(condition)
    if parent_id is not None and not isinstance(parent_id, str):
        raise ValidationError("parent_id must be a delegation id")
    made: list[Delegation] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        made.clear()
        _party(r, delegator, "delegator", non_human=False)
        _party(r, delegate, "delegate", non_human=True)
        cap = r.store_policy().max_delegation_seconds
        if exp - nbf > cap:
            raise _invalid(
                f"a delegation lasts at most {cap} s (store policy max_delegation_seconds)",
                field="expires_at", max_delegation_seconds=cap, requested=exp - nbf,
            )  # fmt: skip
        if parent_id is not None:
            parent = r.delegation(parent_id)
            if parent is None:
                raise DelegationNotFoundError(
                    f"delegation {parent_id!r} not found", details={"delegation_id": parent_id}
                )
            if parent.delegate != delegator:
                raise _invalid(
                    f"the delegator of a sub-delegation must be the parent's delegate "
                    f"({parent.delegate!r})",
                    field="delegator", parent_delegate=parent.delegate,
                )  # fmt: skip
            if parent.status != "active":
                raise _invalid("the parent delegation is revoked", field="parent_id")
            if parent.expires_at <= now:
                raise _invalid("the parent delegation has expired", field="parent_id")
            check_contained(
                parent_scope=parent.scope, parent_purposes=parent.purposes,
                parent_not_before=parent.not_before, parent_expires_at=parent.expires_at,
                parent_max_depth=parent.max_depth, scope=grants, purposes=purp,
                not_before=nbf, expires_at=exp, max_depth=max_depth,
            )  # fmt: skip
        d = Delegation(
            store_id, _ids.new(), delegator, delegate, parent_id, grants, purp, nbf, exp,
            max_depth, cond, "active", None, None, caller.principal, now, 0,
        )  # fmt: skip
        made.append(d)
        return PolicyWrite(new_delegations=[d])

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        d = made[0]
        return audit.change_events(
            svc, caller, "delegation.created", store_id, resource=f"delegation:{d.id}",
            action="delegate", revision=revision, details=delegation_details(d),
        )  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    svc.graphs.catch_up(store_id)
    return result.delegations[0]


@audited(None)
def get_delegation(svc: Services, caller: Caller, store_id: str, delegation_id: str) -> Delegation:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    found = svc.storage.get_delegation(store_id, str(delegation_id))
    if found is None:
        raise DelegationNotFoundError(
            f"delegation {delegation_id!r} not found", details={"delegation_id": delegation_id}
        )
    return found


@audited(None)
def list_delegations(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    delegator: str | None = None,
    delegate: str | None = None,
    status: str | None = None,
    parent_id: str | None = None,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[Delegation]:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    if delegator is not None:
        parse_node(delegator, what="delegator")
    if delegate is not None:
        parse_node(delegate, what="delegate")
    if status is not None and status not in DELEGATION_STATUSES:
        raise ValidationError(
            f"unknown status {status!r}: one of {', '.join(DELEGATION_STATUSES)}",
            details={"status": str(status)[:100]},
        )
    size = check_page_size(page_size, svc.settings.max_page_size)
    return svc.storage.list_delegations(
        store_id, delegator=delegator, delegate=delegate, status=status, parent_id=parent_id,
        page_size=size, continuation_token=continuation_token,
    )  # fmt: skip


@audited("delegation.revoked")
def revoke_delegation(
    svc: Services,
    caller: Caller,
    store_id: str,
    delegation_id: str,
    *,
    reason: str | None = None,
) -> list[Delegation]:
    """Revoke a delegation and every delegation derived from it, at once (one transaction,
    one ``delegation.revoked`` event each); returns them, the given one first. Revoking a
    revoked delegation returns ``[]``."""
    authorize(svc, caller, Permission.MANAGE_DELEGATIONS, store_id)
    why = check_reason(reason)
    now = svc.clock.now()
    revoked: list[Revocation] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        revoked.clear()
        d = r.delegation(str(delegation_id))
        if d is None:
            raise DelegationNotFoundError(
                f"delegation {delegation_id!r} not found",
                details={"delegation_id": delegation_id},
            )
        revoked.extend(revoke_all(r, [d], now=now, reason=why, cause="revoked"))
        return PolicyWrite(delegations=[rv.delegation for rv in revoked])

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return revocation_events(svc, caller, store_id, revision, revoked)

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    if not result.changed:
        return []
    svc.graphs.catch_up(store_id)
    return list(result.delegations)

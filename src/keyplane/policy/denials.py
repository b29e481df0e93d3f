"""How the decision point words a denial (see :mod:`keyplane.policy.decide`): the
``reason_user`` sentence a person or an agent can act on, and the machine ``reason`` dict
naming the failed conjunct and the link or rule involved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyplane.policy.decide import DecisionInput
    from keyplane.policy.records import Delegation, GuardrailSet

__all__ = [
    "CONDITION",
    "DEPTH",
    "EXPIRED",
    "NOT_YET",
    "OK",
    "PARENT",
    "PURPOSE",
    "REVOKED",
    "SCOPE",
    "TOOL",
    "asks",
    "guardrail_reason",
    "link_failure",
]

# stages a candidate delegation of a link passes, in order; a link that fails reports the
# candidate that got furthest (the most specific reason)
PARENT, REVOKED, NOT_YET, EXPIRED, SCOPE, TOOL, PURPOSE, DEPTH, CONDITION, OK = range(10)


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def asks(action: str, relation: str) -> str:
    """How a request's action reads: ``'read' (relation 'viewer')`` when it was mapped."""
    return f"'{action}'" if action == relation else f"'{action}' (relation '{relation}')"


def link_failure(
    stage: int,
    d: Delegation | None,
    k: int,
    delegator: str,
    delegate: str,
    inp: DecisionInput,
    relation: str,
    now: float,
    parent: Delegation | None,
    errors: Mapping[str, str],
) -> tuple[str, str, dict[str, Any]]:
    """(code, reason_user, reason) for link ``k`` failing at ``stage`` (``d``: the candidate
    that got furthest, None when there is none)."""
    reason: dict[str, Any] = {
        "conjunct": "delegation",
        "link": k,
        "delegator": delegator,
        "delegate": delegate,
    }
    what = f"{asks(inp.action, relation)} on {inp.resource}"
    if d is None or stage == PARENT:
        if inp.delegation_id is not None and k == len(inp.actors):
            reason.update(check="pinned", delegation_id=inp.delegation_id)
            return (
                "delegation_missing",
                f"delegation {inp.delegation_id} is not a delegation from {delegator} to "
                f"{delegate}" + (f" derived from delegation {parent.id}" if parent else ""),
                reason,
            )
        if parent is not None and d is not None:
            reason.update(check="parent", parent_id=parent.id)
            return (
                "delegation_missing",
                f"{delegate} acts for {delegator}, but no delegation from {delegator} to "
                f"{delegate} is derived from delegation {parent.id} (the link before it)",
                reason,
            )
        reason["check"] = "exists"
        return (
            "delegation_missing",
            f"{delegate} has no delegation from {delegator}, so it cannot act for "
            f"{delegator}; {delegator} can delegate {what} to {delegate}",
            reason,
        )
    reason["delegation_id"] = d.id
    via = f"{delegate} acts for {delegator} through delegation {d.id}"
    if stage == REVOKED:
        reason["check"] = "status"
        why = f" ({d.revoked_reason})" if d.revoked_reason else ""
        at = f" at {_when(d.revoked_at)}" if d.revoked_at is not None else ""
        return "delegation_revoked", f"{via}, which was revoked{at}{why}", reason
    if stage == NOT_YET:
        reason.update(check="not_before", not_before=d.not_before)
        return (
            "delegation_not_yet_valid",
            f"{via}, which is not valid before {_when(d.not_before)}",
            reason,
        )
    if stage == EXPIRED:
        reason.update(check="expires_at", expires_at=d.expires_at)
        return "delegation_expired", f"{via}, which expired at {_when(d.expires_at)}", reason
    if stage == SCOPE:
        reason.update(check="scope", action=inp.action, relation=relation, resource=inp.resource)
        return "delegation_scope", f"{via}, which does not cover {what}", reason
    if stage == TOOL:
        reason.update(check="tool", tool=inp.tool)
        return (
            "delegation_scope",
            f"{via}, which covers {what} but not through the tool '{inp.tool}'",
            reason,
        )
    if stage == PURPOSE:
        allowed = ", ".join(f"'{p}'" for p in d.purposes)
        reason.update(check="purpose", purpose=inp.purpose, purposes=list(d.purposes))
        asked = f"the purpose '{inp.purpose}'" if inp.purpose is not None else "no purpose"
        return (
            "purpose_not_allowed",
            f"{via}, which allows only the purposes {allowed}; the request names {asked}",
            reason,
        )
    if stage == DEPTH:
        hops = len(inp.actors) - k
        reason.update(check="depth", max_depth=d.max_depth, hops_after=hops)
        return (
            "delegation_scope",
            f"{via}, which allows {d.max_depth} further hop(s), but the chain goes on for {hops}",
            reason,
        )
    # CONDITION
    reason.update(check="condition", condition=d.condition)
    err = errors.get(d.id)
    if err is not None:
        reason["error"] = err
        return (
            "delegation_condition",
            f"{via}, whose condition could not be evaluated ({err}), so it does not hold",
            reason,
        )
    return (
        "delegation_condition",
        f"{via}, whose condition `{d.condition}` does not hold for this request",
        reason,
    )


def guardrail_reason(
    fired: Sequence[Any], gset: GuardrailSet, version: int
) -> tuple[str, str, dict[str, Any], tuple[tuple[str, str], ...]]:
    """(code, reason_user, reason, fired pairs) for rules that fired: a ``forbid`` wins
    over ``require_approval``."""
    pairs = tuple((f.rule_id, f.effect) for f in fired)
    forbid = next((f for f in fired if f.effect == "forbid"), None)
    hit = forbid if forbid is not None else fired[0]
    rule = next((r for r in gset.rules if r.id == hit.rule_id), None)
    desc = rule.description if rule is not None and rule.description else ""
    err = getattr(hit, "error", None)
    reason: dict[str, Any] = {
        "conjunct": "guardrail",
        "rule": hit.rule_id,
        "effect": hit.effect,
        "guardrail_version": version,
        "fired": [list(p) for p in pairs],
    }
    if desc:
        reason["description"] = desc
    if err:
        reason["error"] = str(err)
    about = f": {desc}" if desc else ""
    failed = f" (the rule could not be evaluated: {err}; it counts as firing)" if err else ""
    if forbid is not None:
        return (
            "guardrail_forbid",
            f"guardrail '{hit.rule_id}' forbids this{about}{failed}",
            reason,
            pairs,
        )
    return (
        "approval_required",
        f"guardrail '{hit.rule_id}' requires approval for this{about}{failed}; "
        "the access can be requested",
        reason,
        pairs,
    )

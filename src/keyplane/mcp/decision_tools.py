"""The decision point's MCP tools: ``decide`` — the "may I?" an agent calls before it
acts, answered with the reason in words (``reason_user``) — and ``decide_batch``.

Same rules as :mod:`keyplane.mcp.tools`: one tool, one service function; inputs and
outputs are the REST models of ``POST /v1/stores/{store}/decide`` (and ``:batch``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from keyplane.api import identity_schemas as ids
from keyplane.service import decisions
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.decisions import DecideItem

__all__ = ["DECISION_SERVICE_OF_TOOL", "DECISION_SPECS"]

Result = tuple[BaseModel, str]


def _decision_text(d: Any) -> str:
    verdict = "allowed" if d.allowed else f"denied ({d.code})"
    more = " You may request this access." if (not d.allowed and d.requestable) else ""
    return f"{verdict}: {d.reason_user}{more} (decision {d.decision_id}, revision {d.revision})"


def _decide(svc: Services, caller: Caller, store: str, a: ids.DecideRequest) -> Result:
    d = decisions.decide(
        svc,
        caller,
        store,
        a.subject,
        a.action,
        a.resource,
        actors=a.actors,
        purpose=a.purpose,
        context=a.context,
        delegation_id=a.delegation_id,
        tool=a.tool,
        model_id=a.model_id,
        at_least_as_fresh=a.at_least_as_fresh,
        resource_properties=a.resource_properties,
        subject_properties=a.subject_properties,
        token=a.token,
        token_audience=a.token_audience,
    )
    return ids.DecisionOut.from_decision(d), _decision_text(d)


def _decide_batch(svc: Services, caller: Caller, store: str, a: ids.DecideBatchRequest) -> Result:
    results = decisions.decide_batch(
        svc,
        caller,
        store,
        [
            DecideItem(
                subject=i.subject,
                action=i.action,
                resource=i.resource,
                actors=tuple(i.actors),
                purpose=i.purpose,
                context=i.context,
                delegation_id=i.delegation_id,
                tool=i.tool,
                resource_properties=i.resource_properties,
                subject_properties=i.subject_properties,
                correlation_id=i.correlation_id,
                token=i.token,
                token_audience=i.token_audience,
            )
            for i in a.items
        ],
        semantic=a.semantic,
        model_id=a.model_id,
        at_least_as_fresh=a.at_least_as_fresh,
    )
    out = ids.DecideBatchResponse(results=[ids.DecisionOut.from_decision(d) for d in results])
    lines = [
        (f"[{d.correlation_id}] " if d.correlation_id else "") + _decision_text(d)
        for d in results[:50]
    ]
    allowed = sum(d.allowed for d in results)
    head = f"{len(results)} decisions: {allowed} allowed, {len(results) - allowed} denied"
    return out, head + ("\n" + "\n".join(lines) if lines else "")


#: (name, title, description, input, output, run, writes, permission to be listed, destructive)
DECISION_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    (
        "decide",
        "May I? (decide before acting)",
        "Ask before you act: may `subject` (the person you act for), through the actor "
        "chain `actors` (the agents between them and you, nearest the subject first, you "
        "last), do `action` on `resource` for `purpose`? Checks every identity is active, "
        "every delegation link covers the action, resource, tool and purpose, the graph "
        "grants the subject and every actor, and no guardrail forbids it. Answers `allowed` "
        "and, when denied, `reason_user` (why, in words you can relay), `code` (e.g. "
        "`delegation_missing`, `guardrail_forbid`) and `requestable` (true when you can "
        "ask: `reason.request` names an entitlement to request, or `approval_required`). "
        "Do not act when it is denied. If you hold an access token from Keyplane's token endpoint, pass it as `token` instead of `subject`, `actors` "
        "and `purpose` (it carries them; a revoked or expired token is denied "
        "`token_invalid`). Example: "
        '{"subject": "human:alice", "actors": ["agent:planner"], "action": "viewer", '
        '"resource": "document:roadmap", "purpose": "planning", "tool": "read_tuples"}.',
        ids.DecideRequest,
        ids.DecisionOut,
        _decide,
        False,
        None,
        False,
    ),
    (
        "decide_batch",
        "May I? (many requests)",
        "`decide` for many requests at once, at one revision: e.g. which of these documents "
        "may I open for Alice. Each item has its own subject, actors, action, resource, "
        "purpose and an optional `correlation_id` echoed on its result; `semantic` "
        "`deny_on_first_deny` / `permit_on_first_permit` stops at the first deny / permit. "
        'Example: {"items": [{"subject": "human:alice", "actors": ["agent:planner"], '
        '"action": "viewer", "resource": "document:a", "correlation_id": "a"}, '
        '{"subject": "human:alice", "actors": ["agent:planner"], "action": "viewer", '
        '"resource": "document:b", "correlation_id": "b"}]}.',
        ids.DecideBatchRequest,
        ids.DecideBatchResponse,
        _decide_batch,
        False,
        None,
        False,
    ),
]

DECISION_SERVICE_OF_TOOL: dict[str, Any] = {
    "decide": decisions.decide,
    "decide_batch": decisions.decide_batch,
}

"""The decision calls of the HTTP SDK (see :mod:`keyplane.sdk.wire`): ``decide`` and
``decide_batch`` — one request each, decoded into the :class:`keyplane.policy.decide.Decision`
the embedded :class:`keyplane.Keyplane` returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.policy.decide import Decision as PolicyDecision
from keyplane.sdk.wire import Call, _body, make_error, seg
from keyplane.service.decisions import DecideItem

__all__ = ["decide", "decide_batch", "decision"]


def _path(store: str, rest: str) -> str:
    return f"/v1/stores/{seg(store)}{rest}"


def decision(d: Mapping[str, Any]) -> PolicyDecision:
    err = d.get("error")
    return PolicyDecision(
        decision_id=str(d.get("decision_id") or ""),
        allowed=bool(d["allowed"]),
        code=str(d["code"]),
        reason_user=str(d.get("reason_user") or ""),
        reason=dict(d.get("reason") or {}),
        requestable=bool(d.get("requestable")),
        revision=int(d.get("revision") or 0),
        model_id=str(d.get("model_id") or ""),
        guardrail_version=int(d.get("guardrail_version") or 0),
        delegation_ids=tuple(d.get("delegation_ids") or ()),
        evaluated=dict(d.get("evaluated") or {}),
        correlation_id=d.get("correlation_id"),
        error=None
        if not err
        else make_error(str(err.get("code", "")), str(err.get("message", ""))),
    )


def _decide_fields(
    subject: str | None,
    action: str,
    resource: str,
    actors: Sequence[str],
    purpose: str | None,
    context: Mapping[str, Any] | None,
    delegation_id: str | None,
    tool: str | None,
    resource_properties: Mapping[str, Any] | None,
    subject_properties: Mapping[str, Any] | None,
    token: str | None = None,
    token_audience: str | None = None,
) -> dict[str, Any]:
    return _body(
        subject=subject,
        action=action,
        resource=resource,
        actors=list(actors),
        purpose=purpose,
        context=None if context is None else dict(context),
        delegation_id=delegation_id,
        tool=tool,
        resource_properties=None if resource_properties is None else dict(resource_properties),
        subject_properties=None if subject_properties is None else dict(subject_properties),
        token=token,
        token_audience=token_audience,
    )


def decide(
    store: str,
    subject: str | None,
    action: str,
    resource: str,
    *,
    actors: Sequence[str],
    purpose: str | None,
    context: Mapping[str, Any] | None,
    delegation_id: str | None,
    tool: str | None,
    model_id: str | None,
    at_least_as_fresh: int | None,
    resource_properties: Mapping[str, Any] | None,
    subject_properties: Mapping[str, Any] | None,
    token: str | None = None,
    token_audience: str | None = None,
) -> Call[PolicyDecision]:
    body = _decide_fields(
        subject,
        action,
        resource,
        actors,
        purpose,
        context,
        delegation_id,
        tool,
        resource_properties,
        subject_properties,
        token,
        token_audience,
    )
    body.update(_body(model_id=model_id, at_least_as_fresh=at_least_as_fresh))
    # a decision has no effect to repeat (its ledger event is the caller's record)
    return Call("POST", _path(store, "/decide"), decision, body=body, idempotent=True)


def decide_batch(
    store: str,
    items: Sequence[DecideItem],
    semantic: str,
    model_id: str | None,
    at_least_as_fresh: int | None,
) -> Call[list[PolicyDecision]]:
    body = _body(
        items=[
            {
                **_decide_fields(
                    i.subject,
                    i.action,
                    i.resource,
                    i.actors,
                    i.purpose,
                    i.context,
                    i.delegation_id,
                    i.tool,
                    i.resource_properties,
                    i.subject_properties,
                    i.token,
                    i.token_audience,
                ),
                **_body(correlation_id=i.correlation_id),
            }
            for i in items
        ],
        semantic=semantic,
        model_id=model_id,
        at_least_as_fresh=at_least_as_fresh,
    )
    return Call(
        "POST",
        _path(store, "/decide:batch"),
        lambda d: [decision(x) for x in d.get("results") or []],
        body=body,
        idempotent=True,
    )

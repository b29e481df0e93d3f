"""The ledger calls of the HTTP SDK (see :mod:`keyplane.sdk.wire`): each one request and
the decoder that rebuilds the result the embedded :class:`keyplane.Keyplane` returns."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.ledger.chain import Problem, VerifyReport
from keyplane.ledger.events import LedgerEvent
from keyplane.sdk.wire import Call, _body, _params, seg
from keyplane.service.ledger import EventPage, LedgerKey, Provenance
from keyplane.service.ledger_admin import PruneResult, Webhook
from keyplane.storage.ledger_admin import Retention

__all__ = [
    "create_webhook",
    "delete_webhook",
    "export_events",
    "export_line",
    "get_decision",
    "ledger_public_keys",
    "list_webhooks",
    "prune_ledger",
    "query_events",
    "set_ledger_retention",
    "verify_ledger",
]


def _ledger(store: str, rest: str) -> str:
    return f"/v1/stores/{seg(store)}/ledger{rest}"


def _page(d: Mapping[str, Any]) -> EventPage:
    return EventPage(
        [LedgerEvent.from_dict(e) for e in d.get("events") or []], d.get("next_cursor") or None
    )


def provenance(d: Mapping[str, Any]) -> Provenance:
    return Provenance(
        event=LedgerEvent.from_dict(d["event"]),
        caller=d["caller"],
        subject=d.get("subject"),
        actor_chain=tuple(d.get("actor_chain") or ()),
        purpose=d.get("purpose"),
        model_id=d.get("model_id"),
        policy_version=d.get("policy_version"),
        revision=d.get("revision"),
        current_revision=d.get("current_revision"),
        graph_moved=bool(d.get("graph_moved")),
        path_source=str(d.get("path_source") or "none"),
        explanation=d.get("explanation"),
        replay_matches=d.get("replay_matches"),
        notes=list(d.get("notes") or []),
    )


def _report(d: Mapping[str, Any]) -> VerifyReport:
    p = d.get("first_problem")
    return VerifyReport(
        ok=bool(d["ok"]),
        store=d.get("store"),
        checked=int(d["checked"]),
        first_problem=None
        if not p
        else Problem(
            kind=p["kind"], seq=int(p["seq"]), event_id=p.get("event_id"), message=p["message"]
        ),
        last_seq=int(d.get("last_seq") or 0),
        last_checkpoint_seq=int(d.get("last_checkpoint_seq") or 0),
        unsigned_tail=int(d.get("unsigned_tail") or 0),
    )


def _keys(d: Mapping[str, Any]) -> list[LedgerKey]:
    return [
        LedgerKey(k["key_id"], k["algorithm"], k["public_key"], float(k["created_at"]))
        for k in d.get("keys") or []
    ]


def _none(_: Any) -> None:
    return None


def query_events(
    store: str,
    *,
    since: float | None,
    until: float | None,
    types: Sequence[str] | None,
    subject: str | None,
    actor: str | None,
    resource: str | None,
    action: str | None,
    outcome: str | None,
    purpose: str | None,
    request_id: str | None,
    decision_id: str | None,
    cursor: str | None,
    limit: int,
) -> Call[EventPage]:
    params = _params(
        since=since,
        until=until,
        subject=subject,
        actor=actor,
        resource=resource,
        action=action,
        outcome=outcome,
        purpose=purpose,
        request_id=request_id,
        decision_id=decision_id,
        cursor=cursor,
        limit=limit,
    )
    if types:
        params["type"] = list(types)
    return Call("GET", _ledger(store, "/events"), _page, params=params, idempotent=True)


def get_decision(decision_id: str) -> Call[Provenance]:
    return Call("GET", f"/v1/ledger/decisions/{seg(decision_id)}", provenance, idempotent=True)


def export_events(store: str, format: str, after_seq: int, since: float | None) -> Call[None]:
    """Streamed: the body is read line by line by the client."""
    return Call(
        "GET",
        _ledger(store, "/export"),
        _none,
        params=_params(format=format, after_seq=after_seq, since=since),
        idempotent=True,
    )


def export_line(line: str) -> str | None:
    """One line of an export body, newline-terminated as the embedded API yields it (None
    for a blank line); an error object the server sent mid-stream is raised."""
    if not line.strip():
        return None
    if line.startswith('{"error"'):
        from keyplane.sdk.wire import make_error

        err = json.loads(line).get("error") or {}
        raise make_error(str(err.get("code", "")), str(err.get("message", "")), err.get("details"))
    return line if line.endswith("\n") else line + "\n"


def verify_ledger(store: str) -> Call[VerifyReport]:
    return Call("GET", _ledger(store, "/verify"), _report, idempotent=True)


def ledger_public_keys(store: str) -> Call[list[LedgerKey]]:
    return Call("GET", _ledger(store, "/keys"), _keys, idempotent=True)


# ---------------------------------------------------------------------------- administration


def _retention(d: Mapping[str, Any]) -> Retention:
    return Retention(d["store"], d.get("max_age_days"), d.get("max_events"), float(d["updated_at"]))


def _prune(d: Mapping[str, Any]) -> PruneResult:
    return PruneResult(d["store"], int(d["deleted"]), d.get("anchor_seq"), d.get("first_seq"))


def webhook(d: Mapping[str, Any]) -> Webhook:
    return Webhook(
        id=d["id"],
        store=d["store"],
        url=d["url"],
        created_at=float(d["created_at"]),
        acked_seq=int(d["acked_seq"]),
        failures=int(d["failures"]),
        last_error=d.get("last_error"),
        last_attempt_at=d.get("last_attempt_at"),
        next_attempt_at=float(d["next_attempt_at"]),
        event_types=tuple(d.get("event_types") or ()),
    )


def _with_secret(d: Mapping[str, Any]) -> tuple[Webhook, str]:
    return webhook(d["webhook"]), str(d["secret"])


def _webhooks(d: Mapping[str, Any]) -> list[Webhook]:
    return [webhook(h) for h in d.get("webhooks") or []]


def set_ledger_retention(
    store: str, max_age_days: float | None, max_events: int | None
) -> Call[Retention]:
    return Call(
        "PUT",
        _ledger(store, "/retention"),
        _retention,
        body=_body(max_age_days=max_age_days, max_events=max_events),
    )


def prune_ledger(store: str) -> Call[PruneResult]:
    return Call("POST", _ledger(store, "/prune"), _prune)


def create_webhook(
    store: str,
    url: str,
    secret: str | None,
    from_start: bool,
    event_types: Sequence[str] | None = None,
) -> Call[tuple[Webhook, str]]:
    return Call(
        "POST",
        _ledger(store, "/webhooks"),
        _with_secret,
        body=_body(
            url=url,
            secret=secret,
            from_start=from_start,
            event_types=None if event_types is None else list(event_types),
        ),
    )


def list_webhooks(store: str) -> Call[list[Webhook]]:
    return Call("GET", _ledger(store, "/webhooks"), _webhooks, idempotent=True)


def delete_webhook(store: str, webhook_id: str) -> Call[None]:
    return Call("DELETE", _ledger(store, f"/webhooks/{seg(webhook_id)}"), _none)

"""Ledger events: one immutable record of something Keyplane decided or changed.

Every decision (check, batch item, list query, expand, explain) and every change (tuples,
models, stores, API keys, expiry clean-up) becomes one :class:`LedgerEvent`. The caller
builds the event (it knows the decision id it returns); storage fills in the chain fields
``seq``, ``prev_hash`` and ``hash`` when it appends the event to its store's chain (see
:mod:`keyplane.ledger.chain`).

:data:`EVENT_TYPES` is the registry of event types; ``docs/ledger.md`` documents each one
and a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyplane.storage.ids import UlidGenerator

__all__ = [
    "EVENT_TYPES",
    "OUTCOMES",
    "SYSTEM_STORE",
    "EventFilter",
    "LedgerEvent",
    "new_event_id",
]

#: the reserved store API-key and other control-plane events are chained in
SYSTEM_STORE = "_system"

#: what an event's ``outcome`` may be
OUTCOMES = ("allow", "deny", "error", "ok")

#: every event type → what it records (one line). ``docs/ledger.md`` lists each of them.
EVENT_TYPES: dict[str, str] = {
    "decision.check": "one check: may the subject have the relation on the object",
    "decision.batch_check": "one item of a batch check (one event per item)",
    "decision.list_objects": "a list-objects query: the objects the subject has the relation on",
    "decision.list_users": "a list-users query: the users holding the relation on the object",
    "decision.expand": "an expand query: the userset tree of a relation on an object",
    "decision.explain": "an explain query: why the subject has (or lacks) the relation",
    "decision.effective_access": "an effective-access query: what an identity can reach (or who reaches a resource), one page",
    "decision.evaluate": "a decision-point decision: the subject through its actor chain (one per batch item)",
    "tuples.written": "a tuple write: the keys written and deleted, and the new revision",
    "tuples.expired_removed": "expired tuples removed by the clean-up (gc)",
    "model.written": "a new authorization model version",
    "store.created": "a store was created",
    "store.deleted": "a store was deleted (its ledger is kept)",
    "key.created": "an API key was created (never its secret)",
    "key.rotated": "an API key's secret was rotated (never the secret)",
    "key.revoked": "an API key was revoked",
    "ledger.retention_set": "the store's ledger retention was set (max age in days, max events)",
    "ledger.pruned": "events older than the retention were deleted behind a signed anchor",
    "ledger.webhook_created": "a webhook subscription to the store's ledger was created",
    "ledger.webhook_deleted": "a webhook subscription to the store's ledger was deleted",
    "access.denied": "a read operation (which records nothing when allowed) was refused",
    "auth.failed": "a call's API key was refused (missing, malformed, unknown, revoked, expired…)",
    "identity.created": "an identity (human, agent, workload, service account) was registered",
    "identity.updated": "an identity's display name or attributes changed",
    "identity.owners_changed": "owners were added to or removed from a non-human identity",
    "identity.suspended": "an identity was suspended (the kill switch)",
    "identity.reactivated": "a suspended identity was made active again",
    "identity.deprovisioned": "an identity was deprovisioned (for good)",
    "identity.orphaned": "a non-human identity was left without an active owner",
    "delegation.created": "a delegation (or sub-delegation) was granted",
    "delegation.revoked": "a delegation was revoked (one event per delegation of a cascade)",
    "policy.updated": "the store policy (delegation cap, orphan handling, action map) changed",
    "guardrails.updated": "a new version of the store's guardrails was put (older ones kept)",
    "credential.created": "a client credential of a non-human identity was created",
    "credential.rotated": "a client secret was rotated (the old one valid for the overlap)",
    "credential.revoked": "a client credential was revoked",
    "credential.auth_failed": "an OAuth client failed to authenticate (coalesced)",
    "signing_key.created": "a store's first token signing key was created (on first need)",
    "signing_key.rotated": "a new token signing key became active; the old one is retiring",
    "token.issued": "an access token was issued (client credentials or token exchange; never the token)",
    "token.refused": "a token request was refused after client authentication (coalesced)",
    "token.revoked": "an access token was revoked by its jti (and every token derived from it)",
    "entitlement.created": "a requestable entitlement was created (its target, owners, risk, approval rules)",
    "entitlement.updated": "a requestable entitlement's metadata or approval rules changed",
    "entitlement.deleted": "a requestable entitlement was deleted (its grants stay until they end)",
    "access_request.created": "an access request was filed (the approval policy's rule and facts)",
    "access_request.approval": "one approver's vote on an access request (approve or deny)",
    "access_request.approved": "an access request was approved (by its policy, or the last vote needed)",
    "access_request.denied": "an access request was denied (by its policy, or an approver)",
    "access_request.cancelled": "a pending access request was withdrawn",
    "access_request.expired": "a request stayed pending too long, or its grant reached its expiry",
    "access_request.activated": "an approved request's grant was written (a tuple with expires_at)",
    "access_request.revoked": "an active grant was revoked before its expiry (its tuple deleted)",
    "review.created": "an access review campaign was opened with the items it selected",
    "review.item_decided": "a reviewer certified or revoked one item of a review",
    "review.item_applied": "a review's revocation was applied (the grant revoked or the tuple deleted)",
    "review.closed": "a review was closed: every item has its outcome (unanswered ones the default)",
    "privilege.applied": "a least-privilege recommendation was applied (as tuple revocations or as a review campaign)",
    "gateway.server_registered": "a downstream MCP server was registered with the gateway (never its secret)",
    "gateway.server_updated": "a downstream MCP server's address, command, credential or schedule changed (never the secret)",
    "gateway.server_deleted": "a downstream MCP server was removed from the gateway, with its tools",
    "gateway.tools_discovered": "a server's tools were discovered: the tools added, changed and removed",
    "gateway.tool_updated": "a gateway tool was approved, classified, disabled or enabled",
    "gateway.toolset_updated": "a toolset's tools were set (the tuples written and deleted)",
    "gateway.toolset_deleted": "a toolset was deleted (its tool tuples removed)",
    "gateway.kill_switch": "a gateway kill switch (store, server, tool or agent) was engaged or released",
    "gateway.settings_updated": "the store's gateway settings changed (recording of arguments)",
    "gateway.tools_listed": "an agent listed the gateway's tools: how many it may call, filtered by the decision point",
    "scim.created": "an identity provider created a SCIM resource (User, Group or Agent) over SCIM 2.0",
    "scim.replaced": "an identity provider replaced a SCIM resource (PUT)",
    "scim.patched": "an identity provider patched a SCIM resource (PATCH operations)",
    "scim.deleted": "an identity provider deleted a SCIM resource",
    "source.imported": "an identity source (AWS IAM, Kubernetes, GitHub) was imported: what was added, changed and removed",
    "gateway.tool_call": "an agent's tool call through the gateway: the decision, the outcome and the latency",
}

_ids = UlidGenerator()


def new_event_id() -> str:
    """A new event id: a ULID, so ids sort by time. Decisions return it as ``decision_id``."""
    return _ids.new()


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One ledger event.

    ``details`` holds type-specific data (tuple keys written, counts, list sizes…); it must
    be JSON (str keys, no NaN). It never holds a secret or a token value; fields named in
    ``KEYPLANE_LEDGER_HMAC_FIELDS`` are replaced by their HMAC before the event is stored
    (see :mod:`keyplane.ledger.redact`).

    ``seq`` (per store, gap-free from 1), ``prev_hash`` and ``hash`` are None until storage
    appends the event to its chain.
    """

    id: str
    time: float
    store: str
    type: str
    caller: str
    subject: str | None = None
    actor_chain: tuple[str, ...] = ()
    purpose: str | None = None
    action: str | None = None
    resource: str | None = None
    outcome: str = "ok"
    reasons: tuple[str, ...] = ()
    model_id: str | None = None
    policy_version: str | None = None
    revision: int | None = None
    request_id: str | None = None
    decision_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON values (tuples as lists)."""
        return {
            "id": self.id,
            "time": self.time,
            "store": self.store,
            "type": self.type,
            "caller": self.caller,
            "subject": self.subject,
            "actor_chain": list(self.actor_chain),
            "purpose": self.purpose,
            "action": self.action,
            "resource": self.resource,
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "model_id": self.model_id,
            "policy_version": self.policy_version,
            "revision": self.revision,
            "request_id": self.request_id,
            "decision_id": self.decision_id,
            "details": dict(self.details),
            "seq": self.seq,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    def chained(self, seq: int, prev_hash: str, hash: str) -> LedgerEvent:
        """This event with its chain fields set (what storage returns on append)."""
        # positional construction: several times faster than dataclasses.replace, and
        # storage calls this once per event on the ledger's hot path
        return LedgerEvent(
            self.id,
            self.time,
            self.store,
            self.type,
            self.caller,
            self.subject,
            self.actor_chain,
            self.purpose,
            self.action,
            self.resource,
            self.outcome,
            self.reasons,
            self.model_id,
            self.policy_version,
            self.revision,
            self.request_id,
            self.decision_id,
            self.details,
            seq,
            prev_hash,
            hash,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerEvent:
        """The inverse of :meth:`to_dict`. Unknown keys raise ``ValueError`` (a tampered or
        foreign record must not be silently reshaped)."""
        unknown = set(data) - _FIELDS
        if unknown:
            raise ValueError(f"unknown ledger event fields: {sorted(unknown)}")
        values = dict(data)
        values["actor_chain"] = tuple(values.get("actor_chain") or ())
        values["reasons"] = tuple(values.get("reasons") or ())
        values["details"] = dict(values.get("details") or {})
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(f"not a ledger event: {exc}") from exc


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What a ledger query may filter on; every given field must match (AND).

    ``since`` is inclusive and ``until`` exclusive (event time, epoch seconds); ``types`` an
    exact list of event types; ``actor`` matches the caller or any member of the actor chain.
    """

    since: float | None = None
    until: float | None = None
    types: tuple[str, ...] = ()
    subject: str | None = None
    actor: str | None = None
    resource: str | None = None
    action: str | None = None
    outcome: str | None = None
    purpose: str | None = None
    request_id: str | None = None
    decision_id: str | None = None


_FIELDS = frozenset(LedgerEvent.__dataclass_fields__)

"""Response bodies of the ledger endpoints (``/v1/stores/{store}/ledger/…``, ``/v1/ledger/…``).

An event is returned with every field the chain hash covers, exactly as hashed — ``time``
is therefore a number (seconds since the epoch, the float that was hashed) rather than the
RFC 3339 text other endpoints use: rewriting it would make the event unverifiable.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from keyplane.ledger.chain import VerifyReport
from keyplane.ledger.events import LedgerEvent

__all__ = [
    "CreateWebhookRequest",
    "DecisionProvenance",
    "EventPageOut",
    "LedgerEventOut",
    "LedgerKeyOut",
    "LedgerKeysOut",
    "LedgerProblem",
    "LedgerVerifyOut",
    "PruneOut",
    "RetentionOut",
    "RetentionRequest",
    "WebhookList",
    "WebhookOut",
    "WebhookWithSecret",
]


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LedgerEventOut(_Response):
    """One ledger event, every field as hashed; ``seq``, ``prev_hash`` and ``hash`` chain it."""

    id: str = Field(description="The event id (a ULID); a decision's `decision_id`.")
    time: float = Field(description="When, in seconds since the epoch (the hashed value).")
    store: str
    type: str = Field(description="The event type (see docs/ledger.md), e.g. `decision.check`.")
    caller: str = Field(description="Who called: `key:<id>` or `system`.")
    subject: str | None = Field(default=None, description="The user the decision was about.")
    actor_chain: list[str] = Field(
        default_factory=list, description="The actors acting on the subject's behalf, in order."
    )
    purpose: str | None = None
    action: str | None = Field(default=None, description="The relation or operation.")
    resource: str | None = Field(default=None, description="The object, or the store.")
    outcome: str = Field(description="`allow`, `deny`, `error` or `ok`.")
    reasons: list[str] = Field(default_factory=list, description="Error codes, on `error`.")
    model_id: str | None = None
    policy_version: str | None = None
    revision: int | None = None
    request_id: str | None = None
    decision_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    seq: int | None = Field(default=None, description="Position in the store's chain, from 1.")
    prev_hash: str | None = None
    hash: str | None = Field(default=None, description="SHA-256 over prev_hash and this event.")

    @classmethod
    def from_event(cls, e: LedgerEvent) -> LedgerEventOut:
        return cls.model_validate(e.to_dict())


class EventPageOut(_Response):
    events: list[LedgerEventOut]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to read the next page; null on the last page.",
    )


class DecisionProvenance(_Response):
    """Everything known about one decision, and the path that granted it."""

    event: LedgerEventOut
    caller: str
    subject: str | None
    actor_chain: list[str]
    purpose: str | None
    model_id: str | None
    policy_version: str | None
    revision: int | None = Field(description="The graph revision the decision was made at.")
    current_revision: int | None = Field(
        description="The store's revision now (null when the store no longer exists)."
    )
    graph_moved: bool = Field(description="The graph changed since the decision.")
    path_source: str = Field(
        description=(
            "`replayed_at_revision` (explain over the graph rebuilt at `revision`), "
            "`replayed_on_current_graph` (it could not be rebuilt: see `notes`), "
            "`recorded` or `none`."
        )
    )
    explanation: dict[str, Any] | None = Field(
        description="Explain's answer: granting `paths` when allowed, `reasons` when denied."
    )
    replay_matches: bool | None = Field(
        description="Whether the replay reached the recorded verdict (null: no replay)."
    )
    notes: list[str] = Field(description="What could not be reconstructed, and why.")


class LedgerProblem(_Response):
    kind: str = Field(
        description=(
            "`modified`, `deleted`, `inserted`, `reordered`, `bad_signature` or "
            "`checkpoint_mismatch`."
        )
    )
    seq: int = Field(description="Where the chain first goes wrong.")
    event_id: str | None
    message: str


class LedgerVerifyOut(_Response):
    ok: bool = Field(description="No problem found (an unsigned tail is not a problem).")
    store: str | None
    checked: int = Field(description="Events whose hashes were recomputed.")
    first_problem: LedgerProblem | None
    last_seq: int = Field(description="The last event verified.")
    last_checkpoint_seq: int = Field(description="The last signed checkpoint's seq (0: none).")
    unsigned_tail: int = Field(description="Events after the last checkpoint (not yet signed).")

    @classmethod
    def from_report(cls, r: VerifyReport) -> LedgerVerifyOut:
        return cls.model_validate(r.to_dict())


class LedgerKeyOut(_Response):
    key_id: str
    algorithm: str = Field(description="`Ed25519`.")
    public_key: str = Field(description="The raw 32-byte public key, base64url without padding.")
    created_at: float


class LedgerKeysOut(_Response):
    keys: list[LedgerKeyOut]


# ------------------------------------------------------------------------ administration


class RetentionRequest(_Request):
    max_age_days: float | None = Field(
        default=None, gt=0, le=1e9, description="Keep events younger than this many days."
    )
    max_events: StrictInt | None = Field(
        default=None, gt=0, le=10**15, description="Keep at most this many newest events."
    )


class RetentionOut(_Response):
    store: str
    max_age_days: float | None
    max_events: int | None
    updated_at: float


class PruneOut(_Response):
    store: str
    deleted: int = Field(description="Events deleted.")
    anchor_seq: int | None = Field(
        description="The signed checkpoint the kept chain is verified from (null: nothing due)."
    )
    first_seq: int | None = Field(description="The first event kept.")


class CreateWebhookRequest(_Request):
    url: str = Field(
        min_length=1, max_length=2048, description="Where to POST the events (http or https)."
    )
    secret: str | None = Field(
        default=None,
        min_length=24,
        max_length=256,
        description="The signing secret; one is generated (`whsec_…`) when omitted.",
    )
    from_start: bool = Field(
        default=False,
        description="Deliver the whole kept ledger; by default only events recorded from now.",
    )
    event_types: list[str] | None = Field(
        default=None,
        max_length=64,
        description=(
            "Deliver only these event types: exact types or prefixes ending in `*`"
            " (`access_request.*`); the others are skipped. Omitted or empty: every event."
        ),
    )


class WebhookOut(_Response):
    id: str
    store: str
    url: str
    created_at: float
    acked_seq: int = Field(description="The last seq the receiver acknowledged.")
    failures: int = Field(description="Consecutive failed deliveries.")
    last_error: str | None
    last_attempt_at: float | None
    next_attempt_at: float
    event_types: list[str] = Field(
        description="The event types delivered (exact or prefix `…*`); empty: every event."
    )


class WebhookWithSecret(_Response):
    webhook: WebhookOut
    secret: str = Field(description="The signing secret: shown this once, store it now.")


class WebhookList(_Response):
    webhooks: list[WebhookOut]

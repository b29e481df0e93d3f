"""Administering the ledger: retention and pruning, and webhook subscriptions.

Every function authorizes :data:`~keyplane.service.auth.Permission.MANAGE_LEDGER` on the
store (admins only: deleting audit events or streaming them out of the system is an
administrator's act) and records what it did in the store's ledger — in the change's own
transaction (the setting, the subscription or the deletion commits with its event or not at
all).

**Retention** (:func:`set_ledger_retention`): keep events younger than ``max_age_days``
and/or the newest ``max_events``. :func:`prune_ledger` applies it: it first signs a
checkpoint at the last event it will delete — the *anchor* — then deletes the events up to
it. The remaining chain still verifies (:func:`keyplane.ledger.chain.verify` resumes from
a signed anchor), online and in exports; the events after the anchor keep their seqs.
The ``ledger.pruned`` event that records the pruning is itself appended to the chain.

**Webhooks** (:func:`create_webhook`, :func:`list_webhooks`, :func:`delete_webhook`):
see :mod:`keyplane.ledger.webhooks` for delivery, retries and the signature. The secret
is returned once, by :func:`create_webhook`; it is stored encrypted under the master key.
A subscription may deliver only some event types (``event_types``: exact registered types,
or prefixes ending in ``*`` such as ``access_request.*`` — the way approvers are notified
of pending requests); the others are skipped, never held back.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from keyplane.errors import ValidationError
from keyplane.ledger.events import EVENT_TYPES
from keyplane.ledger.webhooks import secret_aad
from keyplane.service.audit import audited, change, change_events
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.storage.ids import UlidGenerator
from keyplane.storage.ledger_admin import Retention, WebhookRecord

__all__ = [
    "PruneResult",
    "Webhook",
    "create_webhook",
    "delete_webhook",
    "list_webhooks",
    "prune_ledger",
    "set_ledger_retention",
]

_ids = UlidGenerator()
_DAY = 86400.0
_MAX_URL = 2048
_MAX_EVENT_TYPES = 64
_EVENT_TYPE = re.compile(r"[a-z0-9_.]{1,128}")
_EVENT_PREFIX = re.compile(r"[a-z0-9_.]{0,127}\*")
SECRET_PREFIX = "whsec_"


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What :func:`prune_ledger` deleted: ``deleted`` events, up to the signed
    ``anchor_seq`` (None when nothing was due)."""

    store: str
    deleted: int
    anchor_seq: int | None
    first_seq: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "deleted": self.deleted,
            "anchor_seq": self.anchor_seq,
            "first_seq": self.first_seq,
        }


@dataclass(frozen=True, slots=True)
class Webhook:
    """A ledger webhook subscription as the API shows it (never its secret)."""

    id: str
    store: str
    url: str
    created_at: float
    acked_seq: int
    failures: int
    last_error: str | None
    last_attempt_at: float | None
    next_attempt_at: float
    #: exact event types or prefixes ending in ``*``; empty: every event is delivered
    event_types: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, r: WebhookRecord) -> Webhook:
        return cls(
            r.id,
            r.store,
            r.url,
            r.created_at,
            r.acked_seq,
            r.failures,
            r.last_error,
            r.last_attempt_at,
            r.next_attempt_at,
            r.event_types,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "store": self.store,
            "url": self.url,
            "created_at": self.created_at,
            "acked_seq": self.acked_seq,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_attempt_at": self.last_attempt_at,
            "next_attempt_at": self.next_attempt_at,
            "event_types": list(self.event_types),
        }


# ------------------------------------------------------------------------------ retention


def _positive(name: str, value: float | None, *, integer: bool = False) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name} must be a number", details={name: value})
    if integer and not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer", details={name: value})
    if not math.isfinite(value) or value <= 0 or value > 1e12:
        raise ValidationError(f"{name} must be positive", details={name: value})
    return value


@audited("ledger.retention_set")
def set_ledger_retention(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    max_age_days: float | None = None,
    max_events: int | None = None,
) -> Retention:
    """Set how long the store's ledger keeps events (both None: keep everything). Takes
    effect at the next :func:`prune_ledger`."""
    authorize(svc, caller, Permission.MANAGE_LEDGER, store_id)
    days = _positive("max_age_days", max_age_days)
    count = _positive("max_events", max_events, integer=True)
    return svc.storage.set_ledger_retention(
        store_id,
        max_age_days=None if days is None else float(days),
        max_events=count,
        now=svc.clock.now(),
        ledger_events=lambda rec: change_events(
            svc,
            caller,
            "ledger.retention_set",
            store_id,
            details={"max_age_days": rec.max_age_days, "max_events": rec.max_events},
        ),
    )


@audited("ledger.pruned")
def prune_ledger(svc: Services, caller: Caller, store_id: str) -> PruneResult:
    """Delete the events the store's retention no longer keeps, behind a signed anchor.

    Without a retention setting nothing is deleted. The events kept always verify: the
    anchor checkpoint (signed with the store's ledger key) pins the hash of the last
    deleted event, which the first kept event names as its ``prev_hash``.
    """
    authorize(svc, caller, Permission.MANAGE_LEDGER, store_id)
    svc.ledger.flush()
    rule = svc.storage.ledger_retention(store_id)
    head_seq, _ = svc.storage.ledger_head(store_id)
    first = svc.storage.read_events(store_id, after_seq=0, limit=1)
    first_seq = (first[0].seq or 1) if first else None
    anchor = 0
    if rule is not None and head_seq > 0:
        if rule.max_events is not None:
            anchor = max(anchor, head_seq - rule.max_events)
        if rule.max_age_days is not None:
            cutoff = svc.clock.now() - rule.max_age_days * _DAY
            keep = svc.storage.first_seq_at_or_after(store_id, cutoff)
            anchor = max(anchor, (keep - 1) if keep is not None else head_seq)
    last = svc.storage.read_events(store_id, after_seq=anchor - 1, limit=1) if anchor else []
    if first_seq is None or anchor < first_seq or not last or last[0].hash is None:
        # nothing is due: the run is recorded all the same (who pruned, and when)
        change(svc, caller, "ledger.pruned", store_id, details={"deleted": 0})
        return PruneResult(store_id, 0, None, first_seq)
    anchor_hash = last[0].hash
    svc.storage.write_checkpoint(svc.keyring.sign(store_id, anchor, anchor_hash, svc.clock.now()))
    deleted = svc.storage.prune_events(
        store_id,
        anchor + 1,
        ledger_events=lambda n: change_events(
            svc,
            caller,
            "ledger.pruned",
            store_id,
            details={"deleted": n, "anchor_seq": anchor, "anchor_hash": anchor_hash},
        ),
    )
    return PruneResult(store_id, deleted, anchor, anchor + 1)


# ------------------------------------------------------------------------------ webhooks


def _check_url(url: str) -> str:
    if not isinstance(url, str) or not 0 < len(url) <= _MAX_URL:
        raise ValidationError(f"a webhook url is 1 to {_MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError(
            f"a webhook url must be http(s)://host/…, got {url!r}", details={"url": url}
        )
    if parts.username or parts.password:
        raise ValidationError("a webhook url must not carry credentials: use the secret")
    return url


def check_event_types(event_types: Sequence[str] | None) -> tuple[str, ...]:
    """A webhook's event filter, validated: each entry an exact registered event type or a
    prefix ending in ``*`` that matches at least one (``"*"`` alone: everything); at most
    64, duplicates dropped, order kept. None or empty: every event."""
    if event_types is None:
        return ()
    if isinstance(event_types, str) or not isinstance(event_types, Sequence):
        raise ValidationError(
            "event_types is a list of event types", details={"event_types": event_types}
        )
    out: list[str] = []
    for t in event_types:
        if not isinstance(t, str):
            raise ValidationError(f"invalid event type {t!r}", details={"event_type": t})
        if _EVENT_PREFIX.fullmatch(t):
            if not any(name.startswith(t[:-1]) for name in EVENT_TYPES):
                raise ValidationError(f"no event type matches {t!r}", details={"event_type": t})
        elif not _EVENT_TYPE.fullmatch(t) or t not in EVENT_TYPES:
            raise ValidationError(
                f"unknown event type {t!r}: a registered type, or a prefix ending in '*'",
                details={"event_type": t},
            )
        if t not in out:
            out.append(t)
    if len(out) > _MAX_EVENT_TYPES:
        raise ValidationError(f"at most {_MAX_EVENT_TYPES} event types per webhook")
    return tuple(out)


@audited("ledger.webhook_created")
def create_webhook(
    svc: Services,
    caller: Caller,
    store_id: str,
    url: str,
    *,
    secret: str | None = None,
    from_start: bool = False,
    event_types: Sequence[str] | None = None,
) -> tuple[Webhook, str]:
    """Subscribe ``url`` to the store's ledger; returns the subscription and its signing
    secret (``whsec_…``, shown this once unless you chose it).

    Delivery starts with the events recorded after now, or with the first kept event when
    ``from_start``. ``event_types`` (exact types, or prefixes ending in ``*`` such as
    ``["access_request.*"]``) delivers only the matching events; the others are skipped.
    """
    authorize(svc, caller, Permission.MANAGE_LEDGER, store_id)
    _check_url(url)
    types = check_event_types(event_types)
    if secret is None:
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    elif not isinstance(secret, str) or not 24 <= len(secret) <= 256:
        raise ValidationError("a webhook secret is 24 to 256 characters")
    svc.ledger.flush()
    acked = 0 if from_start else svc.storage.ledger_head(store_id)[0]
    hook_id = _ids.new()
    sealed = svc.master_key().encrypt(secret.encode(), aad=secret_aad(hook_id))
    rec = svc.storage.create_webhook(
        hook_id,
        store_id,
        url,
        sealed,
        created_at=svc.clock.now(),
        acked_seq=acked,
        event_types=types,
        ledger_events=lambda made: change_events(
            svc,
            caller,
            "ledger.webhook_created",
            store_id,
            resource=f"webhook:{made.id}",
            details={
                "url": url,
                "from_seq": made.acked_seq + 1,
                "event_types": list(made.event_types),
            },
        ),
    )
    return Webhook.from_record(rec), secret


@audited(None)
def list_webhooks(svc: Services, caller: Caller, store_id: str) -> list[Webhook]:
    """The store's subscriptions with their delivery state (never their secrets)."""
    authorize(svc, caller, Permission.MANAGE_LEDGER, store_id)
    return [Webhook.from_record(r) for r in svc.storage.list_webhooks(store_id)]


@audited("ledger.webhook_deleted")
def delete_webhook(svc: Services, caller: Caller, store_id: str, webhook_id: str) -> None:
    """Stop streaming to a subscription (NotFoundError when the store has no such one)."""
    authorize(svc, caller, Permission.MANAGE_LEDGER, store_id)
    svc.storage.delete_webhook(
        store_id,
        webhook_id,
        ledger_events=lambda hook_id: change_events(
            svc, caller, "ledger.webhook_deleted", store_id, resource=f"webhook:{hook_id}"
        ),
    )

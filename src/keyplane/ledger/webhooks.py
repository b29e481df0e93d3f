"""Streaming the ledger to webhooks: at-least-once, signed, resumable.

A subscription names a store, a URL and a secret. The :class:`WebhookDeliverer` (a
background thread of :class:`~keyplane.service.context.Services`) POSTs the store's events
in ``seq`` order, in batches, as JSON::

    {"webhook_id": "...", "store": "...", "delivery_id": "<webhook>:<first>-<last>",
     "events": [<event with seq, prev_hash, hash>, ...]}

**Signature** (as Stripe's): header ``X-Keyplane-Signature: t=<unix seconds>,v1=<hex>``
where ``hex = HMAC-SHA256(secret, "<t>." + raw body)``. A receiver recomputes it over the
raw body with :func:`verify_signature` and rejects stale timestamps (replays).

**At least once.** The last acknowledged ``seq`` is stored per subscription in the
database and only advanced after the receiver answered 2xx: a crash, a restart or a
failed request means the same events are sent again (receivers de-duplicate on the event
``id`` or ``delivery_id``). Nothing is skipped: delivery resumes after the last
acknowledged event — on restart, or in another process.

**Retries.** A failed delivery (connection error, timeout, non-2xx) is retried with
exponential backoff — ``base * 2**(failures-1)`` seconds, capped at ``max_backoff`` —
kept in the database with the last error, so the backoff survives a restart too.

**Event types.** A subscription may name the event types it wants (``event_types``:
exact types, or prefixes ending in ``*`` such as ``access_request.*``); only matching
events are POSTed, in ``seq`` order. Filtered events still count as delivered: the
acknowledged ``seq`` moves past them (a batch with nothing to send is acknowledged without
a request), so a quiet filter never holds delivery back or resends. An empty filter sends
everything.

**Several processes.** Each delivery first claims the subscription with a lease in the
database (``claim_webhook``), so replicas sharing one database do not deliver the same
batch concurrently.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

import httpx

from keyplane.clock import Clock, SystemClock
from keyplane.errors import StorageError
from keyplane.ledger.events import LedgerEvent
from keyplane.secrets import MasterKey
from keyplane.storage.ledger_admin import WebhookRecord

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookDeliverer",
    "WebhookRecord",
    "WebhookStore",
    "event_type_matches",
    "secret_aad",
    "sign_payload",
    "verify_signature",
]

_log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Keyplane-Signature"
DELIVERY_HEADER = "X-Keyplane-Delivery"
WEBHOOK_HEADER = "X-Keyplane-Webhook"


def secret_aad(webhook_id: str) -> bytes:
    """The associated data a webhook secret is encrypted with (binds it to its row)."""
    return f"keyplane-webhook-secret/v1\n{webhook_id}".encode()


def event_type_matches(patterns: Sequence[str], event_type: str) -> bool:
    """True when ``event_type`` is one of ``patterns`` (exact types, or prefixes ending in
    ``*``); an empty ``patterns`` matches every type."""
    if not patterns:
        return True
    for p in patterns:
        if p.endswith("*"):
            if event_type.startswith(p[:-1]):
                return True
        elif event_type == p:
            return True
    return False


def sign_payload(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Keyplane-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = 300.0,
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is within
    ``tolerance`` seconds of ``now`` — what a receiver runs on every delivery."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        k, sep, v = item.strip().partition("=")
        if sep:
            parts.setdefault(k, []).append(v)
    try:
        ts = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    expected = sign_payload(secret, body, ts).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, v) for v in parts.get("v1", ()))


class WebhookStore(Protocol):
    """What the deliverer needs from storage (part of :class:`keyplane.storage.base.Storage`)."""

    def list_webhooks(self, store_id: str | None = None) -> list[WebhookRecord]: ...

    def get_webhook(self, webhook_id: str) -> WebhookRecord | None: ...

    def claim_webhook(self, webhook_id: str, owner: str, *, now: float, until: float) -> bool: ...

    def webhook_delivered(
        self, webhook_id: str, owner: str, acked_seq: int, *, now: float
    ) -> None: ...

    def webhook_failed(
        self, webhook_id: str, owner: str, error: str, *, now: float, next_attempt_at: float
    ) -> None: ...

    def read_events(
        self, store_id: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[LedgerEvent]: ...


class WebhookDeliverer:
    """Delivers every subscription's pending events; :meth:`deliver_due` is one round.

    ``start()`` runs rounds every ``interval`` seconds in a daemon thread until
    :meth:`close`. Tests call :meth:`deliver_due` directly (with a fixed clock).
    """

    def __init__(
        self,
        storage: WebhookStore,
        master_key: Callable[[], MasterKey],
        *,
        clock: Clock | None = None,
        interval: float = 1.0,
        batch_size: int = 100,
        timeout: float = 10.0,
        base_backoff: float = 1.0,
        max_backoff: float = 600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._storage = storage
        self._master_key = master_key
        self._clock = clock or SystemClock()
        self.interval = interval
        self.batch_size = batch_size
        self.timeout = timeout
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.owner = uuid.uuid4().hex
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._secrets: dict[str, str] = {}
        #: counters for metrics and tests
        self.delivered_events = 0
        self.failed_attempts = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is None and self.interval > 0:
            self._thread = threading.Thread(
                target=self._run, name="keyplane-ledger-webhooks", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1.0)
            self._thread = None
        self._http.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.deliver_due()
            except StorageError as exc:  # the database is away: the next round retries
                _log.warning("ledger webhook delivery round failed: %s", exc.message)
            except Exception:  # never let the thread die: the next round retries
                _log.exception("ledger webhook delivery round failed")

    # ------------------------------------------------------------------ one round

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1, 2, …)."""
        return float(min(self.base_backoff * 2 ** max(0, failures - 1), self.max_backoff))

    def deliver_due(self) -> int:
        """Deliver, for every subscription due now, batches until it is caught up or a
        delivery fails. Returns the number of events acknowledged in this round."""
        total = 0
        for hook in self._storage.list_webhooks():
            if self._stop.is_set():
                break
            if hook.next_attempt_at > self._clock.now():
                continue
            total += self._deliver(hook)
        return total

    def _deliver(self, hook: WebhookRecord) -> int:
        now = self._clock.now()
        if not self._storage.claim_webhook(
            hook.id, self.owner, now=now, until=now + 2 * self.timeout + 5.0
        ):
            return 0  # another process is delivering it
        fresh = self._storage.get_webhook(hook.id)  # the state as of the claim, not the listing
        if fresh is None:
            return 0  # deleted meanwhile
        hook = fresh
        acked, done = hook.acked_seq, 0
        failures = hook.failures
        while not self._stop.is_set():
            events = self._storage.read_events(hook.store, after_seq=acked, limit=self.batch_size)
            if not events:
                self._storage.webhook_delivered(hook.id, self.owner, acked, now=self._clock.now())
                return done
            last = events[-1].seq
            assert last is not None
            wanted = [e for e in events if event_type_matches(hook.event_types, e.type)]
            error = self._post(hook, wanted) if wanted else None
            now = self._clock.now()
            if error is not None:
                failures += 1
                self.failed_attempts += 1
                self._storage.webhook_failed(
                    hook.id,
                    self.owner,
                    error[:500],
                    now=now,
                    next_attempt_at=now + self.backoff(failures),
                )
                return done
            acked = last  # past the filtered events too
            failures = 0
            done += len(wanted)
            self.delivered_events += len(wanted)
            self._storage.webhook_delivered(hook.id, self.owner, acked, now=now)
        return done

    def _secret(self, hook: WebhookRecord) -> str:
        cached = self._secrets.get(hook.id)
        if cached is None:
            raw = self._master_key().decrypt(hook.encrypted_secret, aad=secret_aad(hook.id))
            cached = self._secrets[hook.id] = raw.decode()
        return cached

    def _post(self, hook: WebhookRecord, events: Sequence[LedgerEvent]) -> str | None:
        """POST one batch; None on a 2xx answer, else what went wrong."""
        first, last = events[0].seq, events[-1].seq
        delivery = f"{hook.id}:{first}-{last}"
        body = json.dumps(
            {
                "webhook_id": hook.id,
                "store": hook.store,
                "delivery_id": delivery,
                "events": [e.to_dict() for e in events],
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        try:
            secret = self._secret(hook)
        except Exception as exc:  # a secret that cannot be decrypted: retry later, loudly
            return f"cannot decrypt the webhook secret: {exc}"
        headers = {
            "content-type": "application/json",
            "user-agent": "keyplane-ledger-webhooks",
            SIGNATURE_HEADER: sign_payload(secret, body, int(self._clock.now())),
            DELIVERY_HEADER: delivery,
            WEBHOOK_HEADER: hook.id,
        }
        try:
            resp = self._http.post(hook.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= resp.status_code < 300:
            return None
        return f"HTTP {resp.status_code}: {resp.text[:200]}"

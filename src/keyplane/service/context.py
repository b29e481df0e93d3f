"""What every service function needs, bundled: settings, storage, graphs, clock, auth cache."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from keyplane.clock import Clock, SystemClock
from keyplane.config import Settings
from keyplane.ledger.checkpoints import LedgerKeyring
from keyplane.ledger.redact import HMAC_LABEL, Redactor
from keyplane.ledger.webhooks import WebhookDeliverer
from keyplane.ledger.writer import LedgerWriter
from keyplane.secrets import MasterKey, default_key_file, load_master_key
from keyplane.service.authcache import AuthCache
from keyplane.service.authfailures import AuthFailureLog
from keyplane.service.graphs import GraphRegistry
from keyplane.storage import open_storage
from keyplane.storage.base import Storage

__all__ = ["Services", "request_id_var"]

#: The id of the request being served, for the ledger's events. Each surface sets it (the
#: REST middleware from ``X-Request-Id`` or a fresh one, the MCP server per tool call); a
#: service call made with none set (the embedded API) gets a fresh id per call.
request_id_var: ContextVar[str | None] = ContextVar("keyplane_request_id", default=None)


@dataclass
class Services:
    settings: Settings
    storage: Storage
    graphs: GraphRegistry
    clock: Clock
    #: the provenance ledger: ``svc.ledger.record(event)`` (see keyplane/ledger/writer.py)
    ledger: LedgerWriter
    #: the stores' ledger signing keys (public keys for readers)
    keyring: LedgerKeyring
    #: HMAC of the configured sensitive fields (hash a search value with ``hash_value``)
    redactor: Redactor
    #: the master key (loaded on first use): encrypts ledger keys and webhook secrets
    master_key: Callable[[], MasterKey]
    #: streams the ledger to webhooks (a background thread unless the interval is 0)
    webhooks: WebhookDeliverer
    #: recently authenticated API keys and last-used throttling (see service/authcache.py)
    auth: AuthCache = field(default_factory=AuthCache)
    #: coalesces the auth.failed events of refused API keys (see service/authfailures.py)
    auth_failures: AuthFailureLog = field(default_factory=AuthFailureLog)

    @classmethod
    def open(cls, settings: Settings | None = None, *, clock: Clock | None = None) -> Services:
        settings = settings or Settings.from_env()
        clock = clock or SystemClock()
        storage = open_storage(settings.database_url)
        graphs = GraphRegistry(
            storage,
            poll_interval=settings.poll_interval,
            clock=clock,
            max_depth=settings.max_depth,
        )
        try:
            master = _master_key_source(settings)
            keyring = LedgerKeyring(storage, master, clock=clock)
            redactor = Redactor(
                settings.ledger_hmac_fields.split(","), lambda: master().derive(HMAC_LABEL)
            )
            if settings.ledger_mode not in ("sync", "async"):
                raise ValueError(
                    f"KEYPLANE_LEDGER_MODE must be sync or async, not {settings.ledger_mode!r}"
                )
            ledger = LedgerWriter(
                storage,
                mode="async" if settings.ledger_mode == "async" else "sync",
                async_capacity=settings.ledger_async_capacity,
                checkpoint_every_events=settings.ledger_checkpoint_events,
                checkpoint_every_seconds=settings.ledger_checkpoint_seconds,
                signer=keyring,
                redact=redactor if redactor.fields else None,
                clock=clock,
            )
        except BaseException:
            graphs.close()
            storage.close()
            raise
        webhooks = WebhookDeliverer(
            storage, master, clock=clock, interval=settings.ledger_webhook_interval
        )
        webhooks.start()
        svc = cls(settings, storage, graphs, clock, ledger, keyring, redactor, master, webhooks)
        # the tailer persists access requests whose time ran out (reads never wait for it)
        graphs.maintenance.append(functools.partial(_sweep_access_requests, svc))
        return svc

    def close(self) -> None:
        # drain the ledger first: every event recorded so far is committed (and the chain
        # heads signed) before the storage goes away
        try:
            self.webhooks.close()
            self.auth_failures.close()  # its pending summaries go in before the ledger drains
            # likewise the coalesced credential.auth_failed / token.refused summaries
            from keyplane.service.refusals import flush_refusals

            flush_refusals(self, force=True)
            self.ledger.close()
        finally:
            self.graphs.close()
            self.storage.close()


def _master_key_source(settings: Settings) -> Callable[[], MasterKey]:
    """The master key, loaded (the key file created) only when first needed."""
    lock = threading.Lock()
    loaded: list[MasterKey] = []

    def get() -> MasterKey:
        with lock:
            if not loaded:
                loaded.append(
                    load_master_key(
                        key=settings.master_key,
                        key_file=settings.master_key_file
                        or default_key_file(settings.database_url),
                    )
                )
            return loaded[0]

    return get


def _sweep_access_requests(svc: Services, store_id: str) -> None:
    from keyplane.service.access_requests import sweep_access_requests

    sweep_access_requests(svc, store_id)

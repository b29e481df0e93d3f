"""The embedding API: Keyplane in your own Python process.

>>> kp = Keyplane.open("sqlite:///keyplane.db")          # doctest: +SKIP
>>> kp.write_model(DSL)                                   # doctest: +SKIP
>>> rev = kp.write_tuples(["document:roadmap#viewer@user:anne"]).revision   # doctest: +SKIP
>>> kp.check("user:anne", "viewer", "document:roadmap", at_least_as_fresh=rev)  # doctest: +SKIP
Decision(allowed=True, ...)

Every method takes ``store=`` (default: the ``default`` store, created on first open) and
calls exactly one service function; the REST API, CLI and MCP server call the same ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from keyplane.clock import Clock
from keyplane.config import Settings
from keyplane.errors import StoreNotFoundError
from keyplane.graph.explain import Explanation
from keyplane.graph.tuples import Tuple
from keyplane.ledger.chain import VerifyReport
from keyplane.service import access, keys, ledger, ledger_admin, models, stores, tuples
from keyplane.service.access import (
    BatchItem,
    BatchItemResult,
    Decision,
    ExpandTree,
    ObjectStream,
    UserList,
)
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.inputs import TupleLike
from keyplane.service.keys import ApiKey
from keyplane.service.ledger import EventPage, LedgerKey, Provenance
from keyplane.service.ledger_admin import PruneResult, Webhook
from keyplane.service.tuples import WriteResult
from keyplane.storage.base import ChangesPage, ModelRecord, Page, StoreInfo
from keyplane.storage.ledger_admin import Retention

__all__ = ["Keyplane"]


class Keyplane:
    """One handle on a Keyplane database and the in-memory graphs of its stores."""

    def __init__(self, services: Services, *, caller: Caller | None = None) -> None:
        self.services = services
        # in-process embedding is trusted: whoever holds the database holds everything
        self.caller = caller or Caller.system_caller()

    @classmethod
    def open(
        cls,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        create_default_store: bool = True,
    ) -> Keyplane:
        """Open (and migrate) the database; ``database_url`` overrides ``KEYPLANE_DATABASE_URL``."""
        settings = settings or Settings.from_env(database_url=database_url)
        kp = cls(Services.open(settings, clock=clock))
        if create_default_store:
            try:
                kp.services.storage.get_store(settings.default_store)
            except StoreNotFoundError:
                stores.create_store(
                    kp.services, kp.caller, settings.default_store, store_id=settings.default_store
                )
        return kp

    def close(self) -> None:
        self.services.close()

    def __enter__(self) -> Keyplane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _store(self, store: str | None) -> str:
        return store or self.services.settings.default_store

    # stores -------------------------------------------------------------------------------

    def create_store(self, name: str, *, store_id: str | None = None) -> StoreInfo:
        return stores.create_store(self.services, self.caller, name, store_id=store_id)

    def get_store(self, store_id: str) -> StoreInfo:
        return stores.get_store(self.services, self.caller, store_id)

    def list_stores(
        self, *, page_size: int = 100, continuation_token: str | None = None
    ) -> Page[StoreInfo]:
        return stores.list_stores(
            self.services, self.caller, page_size=page_size, continuation_token=continuation_token
        )

    def delete_store(self, store_id: str) -> None:
        stores.delete_store(self.services, self.caller, store_id)

    # models -------------------------------------------------------------------------------

    def write_model(
        self, source: str | Mapping[str, Any], *, store: str | None = None
    ) -> ModelRecord:
        return models.write_model(self.services, self.caller, self._store(store), source)

    def read_model(self, model_id: str | None = None, *, store: str | None = None) -> ModelRecord:
        return models.read_model(self.services, self.caller, self._store(store), model_id)

    def list_models(
        self,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ModelRecord]:
        return models.list_models(
            self.services,
            self.caller,
            self._store(store),
            page_size=page_size,
            continuation_token=continuation_token,
        )

    # tuples -------------------------------------------------------------------------------

    def write_tuples(
        self,
        writes: Iterable[TupleLike] | None = None,
        *,
        deletes: Iterable[TupleLike] | None = None,
        store: str | None = None,
        model_id: str | None = None,
        idempotent: bool = False,
    ) -> WriteResult:
        return tuples.write_tuples(
            self.services,
            self.caller,
            self._store(store),
            writes=writes,
            deletes=deletes,
            model_id=model_id,
            idempotent=idempotent,
        )

    def delete_tuples(
        self, deletes: Iterable[TupleLike], *, store: str | None = None, idempotent: bool = False
    ) -> WriteResult:
        return tuples.write_tuples(
            self.services, self.caller, self._store(store), deletes=deletes, idempotent=idempotent
        )

    def read_tuples(
        self,
        *,
        object: str | None = None,
        relation: str | None = None,
        user: str | None = None,
        store: str | None = None,
        page_size: int = 100,
        continuation_token: str | None = None,
    ) -> Page[Tuple]:
        return tuples.read_tuples(
            self.services,
            self.caller,
            self._store(store),
            object=object,
            relation=relation,
            user=user,
            page_size=page_size,
            continuation_token=continuation_token,
        )

    def read_changes(
        self,
        *,
        after_revision: int = 0,
        store: str | None = None,
        page_size: int = 100,
        object_type: str | None = None,
    ) -> ChangesPage:
        return tuples.read_changes(
            self.services,
            self.caller,
            self._store(store),
            after_revision=after_revision,
            page_size=page_size,
            object_type=object_type,
        )

    def gc_expired(self, *, store: str | None = None) -> int:
        return tuples.gc_expired(self.services, self.caller, self._store(store))

    # access queries -----------------------------------------------------------------------

    def check(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Iterable[TupleLike] | None = None,
        store: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> Decision:
        return access.check(
            self.services,
            self.caller,
            self._store(store),
            user,
            relation,
            object,
            context=context,
            contextual_tuples=contextual_tuples,
            model_id=model_id,
            at_least_as_fresh=at_least_as_fresh,
        )

    def batch_check(
        self,
        items: Sequence[BatchItem],
        *,
        store: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> list[BatchItemResult]:
        return access.batch_check(
            self.services,
            self.caller,
            self._store(store),
            items,
            model_id=model_id,
            at_least_as_fresh=at_least_as_fresh,
        )

    def expand(
        self,
        object: str,
        relation: str,
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Iterable[TupleLike] | None = None,
        store: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> ExpandTree:
        return access.expand(
            self.services,
            self.caller,
            self._store(store),
            object,
            relation,
            context=context,
            contextual_tuples=contextual_tuples,
            model_id=model_id,
            at_least_as_fresh=at_least_as_fresh,
        )

    def list_objects(
        self,
        user: str,
        relation: str,
        object_type: str,
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Iterable[TupleLike] | None = None,
        store: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> ObjectStream:
        return access.list_objects(
            self.services,
            self.caller,
            self._store(store),
            user,
            relation,
            object_type,
            context=context,
            contextual_tuples=contextual_tuples,
            model_id=model_id,
            at_least_as_fresh=at_least_as_fresh,
        )

    def list_users(
        self,
        object: str,
        relation: str,
        filters: Sequence[str],
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Iterable[TupleLike] | None = None,
        store: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> UserList:
        return access.list_users(
            self.services,
            self.caller,
            self._store(store),
            object,
            relation,
            filters,
            context=context,
            contextual_tuples=contextual_tuples,
            model_id=model_id,
            at_least_as_fresh=at_least_as_fresh,
        )

    def explain(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Iterable[TupleLike] | None = None,
        store: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> Explanation:
        return access.explain(
            self.services,
            self.caller,
            self._store(store),
            user,
            relation,
            object,
            context=context,
            contextual_tuples=contextual_tuples,
            model_id=model_id,
            at_least_as_fresh=at_least_as_fresh,
        )

    # API keys ------------------------------------------------------------------------------

    def create_key(
        self,
        *,
        owner: str,
        roles: Sequence[str],
        expires_in: float | None = None,
        description: str = "",
    ) -> tuple[ApiKey, str]:
        """Mint a key; returns its record and the secret (``kp_…``), shown this once."""
        return keys.create_key(
            self.services,
            self.caller,
            owner=owner,
            roles=roles,
            expires_in=expires_in,
            description=description,
        )

    def list_keys(
        self, *, page_size: int = 100, continuation_token: str | None = None
    ) -> Page[ApiKey]:
        return keys.list_keys(
            self.services, self.caller, page_size=page_size, continuation_token=continuation_token
        )

    def get_key(self, key_id: str) -> ApiKey:
        return keys.get_key(self.services, self.caller, key_id)

    def rotate_key(self, key_id: str, *, overlap_seconds: float = 3600) -> tuple[ApiKey, str]:
        """A new secret for the key; the old one works for ``overlap_seconds`` more."""
        return keys.rotate_key(self.services, self.caller, key_id, overlap_seconds=overlap_seconds)

    def revoke_key(self, key_id: str) -> None:
        keys.revoke_key(self.services, self.caller, key_id)

    # ledger --------------------------------------------------------------------------------

    def query_events(
        self,
        *,
        store: str | None = None,
        since: float | None = None,
        until: float | None = None,
        types: Sequence[str] | None = None,
        subject: str | None = None,
        actor: str | None = None,
        resource: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        purpose: str | None = None,
        request_id: str | None = None,
        decision_id: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> EventPage:
        return ledger.query_events(
            self.services,
            self.caller,
            self._store(store),
            since=since,
            until=until,
            types=types,
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

    def get_decision(self, decision_id: str) -> Provenance:
        return ledger.get_decision(self.services, self.caller, decision_id)

    def export_events(
        self,
        *,
        store: str | None = None,
        format: str = "jsonl",
        after_seq: int = 0,
        since: float | None = None,
    ) -> Iterator[str]:
        """The export's lines (each ending in a newline): ``jsonl`` (verifiable) or ``ocsf``."""
        return ledger.export_events(
            self.services,
            self.caller,
            self._store(store),
            format=format,
            after_seq=after_seq,
            since=since,
        )

    def verify_ledger(self, *, store: str | None = None) -> VerifyReport:
        return ledger.verify_ledger(self.services, self.caller, self._store(store))

    def ledger_public_keys(self, *, store: str | None = None) -> list[LedgerKey]:
        return ledger.ledger_public_keys(self.services, self.caller, self._store(store))

    def set_ledger_retention(
        self,
        *,
        store: str | None = None,
        max_age_days: float | None = None,
        max_events: int | None = None,
    ) -> Retention:
        return ledger_admin.set_ledger_retention(
            self.services,
            self.caller,
            self._store(store),
            max_age_days=max_age_days,
            max_events=max_events,
        )

    def prune_ledger(self, *, store: str | None = None) -> PruneResult:
        return ledger_admin.prune_ledger(self.services, self.caller, self._store(store))

    def create_webhook(
        self,
        url: str,
        *,
        store: str | None = None,
        secret: str | None = None,
        from_start: bool = False,
    ) -> tuple[Webhook, str]:
        """Stream the store's ledger to ``url``; returns the subscription and its secret."""
        return ledger_admin.create_webhook(
            self.services,
            self.caller,
            self._store(store),
            url,
            secret=secret,
            from_start=from_start,
        )

    def list_webhooks(self, *, store: str | None = None) -> list[Webhook]:
        return ledger_admin.list_webhooks(self.services, self.caller, self._store(store))

    def delete_webhook(self, webhook_id: str, *, store: str | None = None) -> None:
        ledger_admin.delete_webhook(self.services, self.caller, self._store(store), webhook_id)

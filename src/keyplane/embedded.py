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
from keyplane.embedded_gateway import GatewayEmbedded
from keyplane.embedded_governance import GovernanceEmbedded
from keyplane.embedded_imports import ImportsEmbedded
from keyplane.embedded_posture import PostureEmbedded
from keyplane.errors import StoreNotFoundError
from keyplane.graph.explain import Explanation
from keyplane.graph.tuples import Tuple
from keyplane.ledger.chain import VerifyReport
from keyplane.policy.decide import Decision as PolicyDecision
from keyplane.policy.records import (
    Delegation,
    Guardrail,
    GuardrailSet,
    Identity,
    ScopeGrant,
    StorePolicy,
    TrustedIssuer,
)
from keyplane.service import (
    access,
    credentials,
    decisions,
    delegations,
    guardrails,
    identities,
    keys,
    ledger,
    ledger_admin,
    models,
    policies,
    signing_keys,
    stores,
    token_admin,
    tuples,
)
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
from keyplane.service.decisions import DecideItem
from keyplane.service.guardrails import GuardrailDryRun
from keyplane.service.inputs import TupleLike
from keyplane.service.keys import ApiKey
from keyplane.service.ledger import EventPage, LedgerKey, Provenance
from keyplane.service.ledger_admin import PruneResult, Webhook
from keyplane.service.signing_keys import SigningKeyInfo
from keyplane.service.token_admin import TokenRevocation
from keyplane.service.tuples import WriteResult
from keyplane.storage.base import ChangesPage, ModelRecord, Page, StoreInfo
from keyplane.storage.ledger_admin import Retention
from keyplane.tokens.clients import Credential

__all__ = ["Keyplane"]


class Keyplane(GovernanceEmbedded, PostureEmbedded, GatewayEmbedded, ImportsEmbedded):
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
        event_types: Sequence[str] | None = None,
    ) -> tuple[Webhook, str]:
        """Stream the store's ledger to ``url`` (only ``event_types``, exact or ``prefix*``,
        when given); returns the subscription and its secret."""
        return ledger_admin.create_webhook(
            self.services,
            self.caller,
            self._store(store),
            url,
            secret=secret,
            from_start=from_start,
            event_types=event_types,
        )

    def list_webhooks(self, *, store: str | None = None) -> list[Webhook]:
        return ledger_admin.list_webhooks(self.services, self.caller, self._store(store))

    def delete_webhook(self, webhook_id: str, *, store: str | None = None) -> None:
        ledger_admin.delete_webhook(self.services, self.caller, self._store(store), webhook_id)

    # identities ---------------------------------------------------------------------------

    def create_identity(
        self,
        kind: str,
        id: str,
        *,
        store: str | None = None,
        display_name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        owners: Sequence[str] = (),
        source: str = "api",
    ) -> Identity:
        """Register a human, agent, workload or service account (non-humans need an owner)."""
        return identities.create_identity(
            self.services,
            self.caller,
            self._store(store),
            kind,
            id,
            display_name=display_name,
            attributes=attributes,
            owners=owners,
            source=source,
        )

    def get_identity(
        self,
        node: str,
        *,
        store: str | None = None,
    ) -> Identity:
        return identities.get_identity(self.services, self.caller, self._store(store), node)

    def list_identities(
        self,
        *,
        store: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        owner: str | None = None,
        orphaned: bool | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Identity]:
        return identities.list_identities(
            self.services,
            self.caller,
            self._store(store),
            kind=kind,
            status=status,
            owner=owner,
            orphaned=orphaned,
            page_size=page_size,
            continuation_token=continuation_token,
        )

    def update_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        display_name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Identity:
        return identities.update_identity(
            self.services,
            self.caller,
            self._store(store),
            node,
            display_name=display_name,
            attributes=attributes,
        )

    def set_identity_owners(
        self,
        node: str,
        *,
        store: str | None = None,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Identity:
        return identities.set_identity_owners(
            self.services, self.caller, self._store(store), node, add=add, remove=remove
        )

    def suspend_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Identity:
        """The kill switch: every decision it appears in denies; its delegations are revoked."""
        return identities.suspend_identity(
            self.services, self.caller, self._store(store), node, reason=reason
        )

    def reactivate_identity(
        self,
        node: str,
        *,
        store: str | None = None,
    ) -> Identity:
        return identities.reactivate_identity(self.services, self.caller, self._store(store), node)

    def deprovision_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Identity:
        return identities.deprovision_identity(
            self.services, self.caller, self._store(store), node, reason=reason
        )

    # delegations --------------------------------------------------------------------------

    def create_delegation(
        self,
        *,
        delegator: str,
        delegate: str,
        scope: Sequence[ScopeGrant | Mapping[str, Any]],
        expires_at: float,
        store: str | None = None,
        purposes: Sequence[str] = (),
        not_before: float | None = None,
        max_depth: int = 0,
        condition: str | None = None,
        parent_id: str | None = None,
    ) -> Delegation:
        """Let ``delegate`` act for ``delegator`` within ``scope`` until ``expires_at`` (epoch seconds)."""
        return delegations.create_delegation(
            self.services,
            self.caller,
            self._store(store),
            delegator=delegator,
            delegate=delegate,
            scope=scope,
            expires_at=expires_at,
            purposes=purposes,
            not_before=not_before,
            max_depth=max_depth,
            condition=condition,
            parent_id=parent_id,
        )

    def get_delegation(
        self,
        delegation_id: str,
        *,
        store: str | None = None,
    ) -> Delegation:
        return delegations.get_delegation(
            self.services, self.caller, self._store(store), delegation_id
        )

    def list_delegations(
        self,
        *,
        store: str | None = None,
        delegator: str | None = None,
        delegate: str | None = None,
        status: str | None = None,
        parent_id: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Delegation]:
        return delegations.list_delegations(
            self.services,
            self.caller,
            self._store(store),
            delegator=delegator,
            delegate=delegate,
            status=status,
            parent_id=parent_id,
            page_size=page_size,
            continuation_token=continuation_token,
        )

    def revoke_delegation(
        self,
        delegation_id: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> list[Delegation]:
        """Revoke it and every delegation derived from it; returns them all."""
        return delegations.revoke_delegation(
            self.services, self.caller, self._store(store), delegation_id, reason=reason
        )

    # store policy -------------------------------------------------------------------------

    def get_store_policy(
        self,
        *,
        store: str | None = None,
    ) -> StorePolicy:
        return policies.get_store_policy(self.services, self.caller, self._store(store))

    def update_store_policy(
        self,
        *,
        store: str | None = None,
        max_delegation_seconds: int | None = None,
        suspend_orphans: bool | None = None,
        actions: Mapping[str, str] | None = None,
        max_credential_seconds: int | None = None,
        access_token_seconds: int | None = None,
        allow_impersonation: bool | None = None,
        token_audiences: Sequence[str] | None = None,
        trusted_issuers: Sequence[TrustedIssuer | Mapping[str, Any]] | None = None,
    ) -> StorePolicy:
        return policies.update_store_policy(
            self.services,
            self.caller,
            self._store(store),
            max_delegation_seconds=max_delegation_seconds,
            suspend_orphans=suspend_orphans,
            actions=actions,
            max_credential_seconds=max_credential_seconds,
            access_token_seconds=access_token_seconds,
            allow_impersonation=allow_impersonation,
            token_audiences=token_audiences,
            trusted_issuers=trusted_issuers,
        )

    # decisions ----------------------------------------------------------------------------

    # credentials ----------------------------------------------------------------------

    def create_credential(
        self,
        identity: str,
        *,
        store: str | None = None,
        type: str = "client_secret",
        public_jwk: Mapping[str, Any] | None = None,
        expires_at: float | None = None,
    ) -> tuple[Credential, str | None]:
        """A credential for a non-human identity: (it, the client secret — shown once)."""
        return credentials.create_credential(
            self.services, self.caller, self._store(store), identity, type=type,
            public_jwk=public_jwk, expires_at=expires_at,
        )  # fmt: skip

    def list_credentials(
        self,
        *,
        store: str | None = None,
        identity: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Credential]:
        return credentials.list_credentials(
            self.services, self.caller, self._store(store), identity=identity, status=status,
            page_size=page_size, continuation_token=continuation_token,
        )  # fmt: skip

    def get_credential(self, credential_id: str, *, store: str | None = None) -> Credential:
        return credentials.get_credential(
            self.services, self.caller, self._store(store), credential_id
        )

    def rotate_credential(
        self,
        credential_id: str,
        *,
        store: str | None = None,
        overlap_seconds: float = 3600,
    ) -> tuple[Credential, str | None]:
        """A new client secret (returned once); the old one works ``overlap_seconds`` more."""
        return credentials.rotate_credential(
            self.services, self.caller, self._store(store), credential_id,
            overlap_seconds=overlap_seconds,
        )  # fmt: skip

    def revoke_credential(
        self,
        credential_id: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Credential:
        return credentials.revoke_credential(
            self.services, self.caller, self._store(store), credential_id, reason=reason
        )

    def list_signing_keys(self, *, store: str | None = None) -> list[SigningKeyInfo]:
        return signing_keys.list_signing_keys(self.services, self.caller, self._store(store))

    def rotate_signing_key(
        self,
        *,
        store: str | None = None,
        algorithm: str = "EdDSA",
        overlap_seconds: int | None = None,
    ) -> SigningKeyInfo:
        return signing_keys.rotate_signing_key(
            self.services,
            self.caller,
            self._store(store),
            algorithm=algorithm,
            overlap_seconds=overlap_seconds,
        )

    # tokens ---------------------------------------------------------------------------

    def introspect_token(self, token: str, *, store: str | None = None) -> dict[str, Any]:
        """RFC 7662: ``{"active": true, <claims>…}`` or ``{"active": false}``."""
        return token_admin.introspect_token(self.services, self.caller, self._store(store), token)

    def revoke_token(
        self,
        token: str | None = None,
        *,
        store: str | None = None,
        jti: str | None = None,
        expires_at: float | None = None,
        reason: str | None = None,
    ) -> TokenRevocation:
        """Revoke ``token`` or the token whose id is ``jti`` (exactly one): it and every
        token exchanged from it stop verifying at once."""
        return token_admin.revoke_token(
            self.services, self.caller, self._store(store), token, jti=jti,
            expires_at=expires_at, reason=reason,
        )  # fmt: skip

    def decide(
        self,
        subject: str | None,
        action: str,
        resource: str,
        *,
        store: str | None = None,
        actors: Sequence[str] = (),
        purpose: str | None = None,
        context: Mapping[str, Any] | None = None,
        delegation_id: str | None = None,
        tool: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
        resource_properties: Mapping[str, Any] | None = None,
        subject_properties: Mapping[str, Any] | None = None,
        token: str | None = None,
        token_audience: str | None = None,
    ) -> PolicyDecision:
        """May ``subject``, through ``actors``, do ``action`` on ``resource`` for ``purpose``?
        Or give ``token`` (an access token of the store) for subject, actors and purpose."""
        return decisions.decide(
            self.services,
            self.caller,
            self._store(store),
            subject,
            action,
            resource,
            actors=actors,
            purpose=purpose,
            context=context,
            delegation_id=delegation_id,
            tool=tool,
            model_id=model_id,
            at_least_as_fresh=at_least_as_fresh,
            resource_properties=resource_properties,
            subject_properties=subject_properties,
            token=token,
            token_audience=token_audience,
        )

    def decide_batch(
        self,
        items: Sequence[DecideItem],
        *,
        store: str | None = None,
        semantic: str = "execute_all",
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> list[PolicyDecision]:
        """Many decisions at one revision; an item's error is that item's answer."""
        return decisions.decide_batch(
            self.services,
            self.caller,
            self._store(store),
            items,
            semantic=semantic,
            model_id=model_id,
            at_least_as_fresh=at_least_as_fresh,
        )

    # guardrails ---------------------------------------------------------------------------

    def put_guardrails(
        self,
        rules: Sequence[Guardrail | Mapping[str, Any]],
        *,
        store: str | None = None,
    ) -> GuardrailSet:
        """Store ``rules`` as the next guardrail version (admin)."""
        return guardrails.put_guardrails(self.services, self.caller, self._store(store), rules)

    def get_guardrails(
        self,
        *,
        store: str | None = None,
        version: int | None = None,
    ) -> GuardrailSet:
        return guardrails.get_guardrails(
            self.services, self.caller, self._store(store), version=version
        )

    def list_guardrail_versions(
        self,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[GuardrailSet]:
        return guardrails.list_guardrail_versions(
            self.services,
            self.caller,
            self._store(store),
            page_size=page_size,
            continuation_token=continuation_token,
        )

    def dry_run_guardrails(
        self,
        rules: Sequence[Guardrail | Mapping[str, Any]],
        *,
        store: str | None = None,
        last: int = 1000,
    ) -> GuardrailDryRun:
        """How ``rules`` would have changed the last ``last`` recorded decisions."""
        return guardrails.dry_run_guardrails(
            self.services, self.caller, self._store(store), rules, last=last
        )

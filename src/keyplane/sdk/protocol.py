"""The one interface every way of talking to Keyplane from Python satisfies.

:class:`KeyplaneAPI` is what the embedded :class:`keyplane.Keyplane` and the HTTP
:class:`keyplane.Client` have in common — the same method names, keyword arguments and
result types — so code written against it (the CLI is) runs in-process or against a
server unchanged. :class:`AsyncKeyplaneAPI` is its coroutine twin, which
:class:`keyplane.AsyncClient` satisfies. mypy checks both claims at the bottom of this
module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

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
from keyplane.sdk.gateway_api import AsyncGatewayAPI, GatewayAPI
from keyplane.sdk.governance_api import AsyncGovernanceAPI, GovernanceAPI
from keyplane.sdk.imports_api import AsyncImportsAPI, ImportsAPI
from keyplane.sdk.posture_api import AsyncPostureAPI, PostureAPI
from keyplane.sdk.wire import AsyncObjectStream
from keyplane.service.access import (
    BatchItem,
    BatchItemResult,
    Decision,
    ExpandTree,
    ObjectStream,
    UserList,
)
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

__all__ = ["AsyncKeyplaneAPI", "KeyplaneAPI"]


class KeyplaneAPI(GovernanceAPI, PostureAPI, GatewayAPI, ImportsAPI, Protocol):
    """Stores, models, tuples and access queries; ``store=None`` means the default store."""

    def close(self) -> None: ...

    # stores
    def create_store(self, name: str, *, store_id: str | None = None) -> StoreInfo: ...

    def get_store(self, store_id: str) -> StoreInfo: ...

    def list_stores(
        self, *, page_size: int = 100, continuation_token: str | None = None
    ) -> Page[StoreInfo]: ...

    def delete_store(self, store_id: str) -> None: ...

    # models
    def write_model(
        self, source: str | Mapping[str, Any], *, store: str | None = None
    ) -> ModelRecord: ...

    def read_model(
        self, model_id: str | None = None, *, store: str | None = None
    ) -> ModelRecord: ...

    def list_models(
        self,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ModelRecord]: ...

    # tuples
    def write_tuples(
        self,
        writes: Iterable[TupleLike] | None = None,
        *,
        deletes: Iterable[TupleLike] | None = None,
        store: str | None = None,
        model_id: str | None = None,
        idempotent: bool = False,
    ) -> WriteResult: ...

    def delete_tuples(
        self, deletes: Iterable[TupleLike], *, store: str | None = None, idempotent: bool = False
    ) -> WriteResult: ...

    def read_tuples(
        self,
        *,
        object: str | None = None,
        relation: str | None = None,
        user: str | None = None,
        store: str | None = None,
        page_size: int = 100,
        continuation_token: str | None = None,
    ) -> Page[Tuple]: ...

    def read_changes(
        self,
        *,
        after_revision: int = 0,
        store: str | None = None,
        page_size: int = 100,
        object_type: str | None = None,
    ) -> ChangesPage: ...

    def gc_expired(self, *, store: str | None = None) -> int: ...

    # access queries
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
    ) -> Decision: ...

    def batch_check(
        self,
        items: Sequence[BatchItem],
        *,
        store: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> list[BatchItemResult]: ...

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
    ) -> ExpandTree: ...

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
    ) -> ObjectStream: ...

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
    ) -> UserList: ...

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
    ) -> Explanation: ...

    # API keys (admin)
    def create_key(
        self,
        *,
        owner: str,
        roles: Sequence[str],
        expires_in: float | None = None,
        description: str = "",
    ) -> tuple[ApiKey, str]: ...

    def list_keys(
        self, *, page_size: int = 100, continuation_token: str | None = None
    ) -> Page[ApiKey]: ...

    def get_key(self, key_id: str) -> ApiKey: ...

    def rotate_key(self, key_id: str, *, overlap_seconds: float = 3600) -> tuple[ApiKey, str]: ...

    def revoke_key(self, key_id: str) -> None: ...

    # ledger
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
    ) -> EventPage: ...

    def get_decision(self, decision_id: str) -> Provenance: ...

    def export_events(
        self,
        *,
        store: str | None = None,
        format: str = "jsonl",
        after_seq: int = 0,
        since: float | None = None,
    ) -> Iterator[str]: ...

    def verify_ledger(self, *, store: str | None = None) -> VerifyReport: ...

    def ledger_public_keys(self, *, store: str | None = None) -> list[LedgerKey]: ...

    def set_ledger_retention(
        self,
        *,
        store: str | None = None,
        max_age_days: float | None = None,
        max_events: int | None = None,
    ) -> Retention: ...

    def prune_ledger(self, *, store: str | None = None) -> PruneResult: ...

    def create_webhook(
        self,
        url: str,
        *,
        store: str | None = None,
        secret: str | None = None,
        from_start: bool = False,
        event_types: Sequence[str] | None = None,
    ) -> tuple[Webhook, str]: ...

    def list_webhooks(self, *, store: str | None = None) -> list[Webhook]: ...

    def delete_webhook(self, webhook_id: str, *, store: str | None = None) -> None: ...

    # identities
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
    ) -> Identity: ...

    def get_identity(
        self,
        node: str,
        *,
        store: str | None = None,
    ) -> Identity: ...

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
    ) -> Page[Identity]: ...

    def update_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        display_name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Identity: ...

    def set_identity_owners(
        self,
        node: str,
        *,
        store: str | None = None,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Identity: ...

    def suspend_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Identity: ...

    def reactivate_identity(
        self,
        node: str,
        *,
        store: str | None = None,
    ) -> Identity: ...

    def deprovision_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Identity: ...

    # delegations
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
    ) -> Delegation: ...

    def get_delegation(
        self,
        delegation_id: str,
        *,
        store: str | None = None,
    ) -> Delegation: ...

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
    ) -> Page[Delegation]: ...

    def revoke_delegation(
        self,
        delegation_id: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> list[Delegation]: ...

    # store policy
    def get_store_policy(
        self,
        *,
        store: str | None = None,
    ) -> StorePolicy: ...

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
    ) -> StorePolicy: ...

    # decisions
    # credentials
    def create_credential(
        self,
        identity: str,
        *,
        store: str | None = None,
        type: str = "client_secret",
        public_jwk: Mapping[str, Any] | None = None,
        expires_at: float | None = None,
    ) -> tuple[Credential, str | None]: ...

    def list_credentials(
        self,
        *,
        store: str | None = None,
        identity: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Credential]: ...

    def get_credential(self, credential_id: str, *, store: str | None = None) -> Credential: ...

    def rotate_credential(
        self,
        credential_id: str,
        *,
        store: str | None = None,
        overlap_seconds: float = 3600,
    ) -> tuple[Credential, str | None]: ...

    def revoke_credential(
        self,
        credential_id: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Credential: ...

    def list_signing_keys(self, *, store: str | None = None) -> list[SigningKeyInfo]: ...

    def rotate_signing_key(
        self,
        *,
        store: str | None = None,
        algorithm: str = "EdDSA",
        overlap_seconds: int | None = None,
    ) -> SigningKeyInfo: ...

    # tokens
    def introspect_token(self, token: str, *, store: str | None = None) -> dict[str, Any]: ...

    def revoke_token(
        self,
        token: str | None = None,
        *,
        store: str | None = None,
        jti: str | None = None,
        expires_at: float | None = None,
        reason: str | None = None,
    ) -> TokenRevocation: ...

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
    ) -> PolicyDecision: ...

    def decide_batch(
        self,
        items: Sequence[DecideItem],
        *,
        store: str | None = None,
        semantic: str = "execute_all",
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> list[PolicyDecision]: ...

    # guardrails
    def put_guardrails(
        self,
        rules: Sequence[Guardrail | Mapping[str, Any]],
        *,
        store: str | None = None,
    ) -> GuardrailSet: ...

    def get_guardrails(
        self,
        *,
        store: str | None = None,
        version: int | None = None,
    ) -> GuardrailSet: ...

    def list_guardrail_versions(
        self,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[GuardrailSet]: ...

    def dry_run_guardrails(
        self,
        rules: Sequence[Guardrail | Mapping[str, Any]],
        *,
        store: str | None = None,
        last: int = 1000,
    ) -> GuardrailDryRun: ...


class AsyncKeyplaneAPI(
    AsyncGovernanceAPI, AsyncPostureAPI, AsyncGatewayAPI, AsyncImportsAPI, Protocol
):
    """:class:`KeyplaneAPI` with every method a coroutine (``list_objects`` resolves to an
    async iterator: ``async for o in await client.list_objects(...)``)."""

    async def aclose(self) -> None: ...

    async def create_store(self, name: str, *, store_id: str | None = None) -> StoreInfo: ...

    async def get_store(self, store_id: str) -> StoreInfo: ...

    async def list_stores(
        self, *, page_size: int = 100, continuation_token: str | None = None
    ) -> Page[StoreInfo]: ...

    async def delete_store(self, store_id: str) -> None: ...

    async def write_model(
        self, source: str | Mapping[str, Any], *, store: str | None = None
    ) -> ModelRecord: ...

    async def read_model(
        self, model_id: str | None = None, *, store: str | None = None
    ) -> ModelRecord: ...

    async def list_models(
        self,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ModelRecord]: ...

    async def write_tuples(
        self,
        writes: Iterable[TupleLike] | None = None,
        *,
        deletes: Iterable[TupleLike] | None = None,
        store: str | None = None,
        model_id: str | None = None,
        idempotent: bool = False,
    ) -> WriteResult: ...

    async def delete_tuples(
        self, deletes: Iterable[TupleLike], *, store: str | None = None, idempotent: bool = False
    ) -> WriteResult: ...

    async def read_tuples(
        self,
        *,
        object: str | None = None,
        relation: str | None = None,
        user: str | None = None,
        store: str | None = None,
        page_size: int = 100,
        continuation_token: str | None = None,
    ) -> Page[Tuple]: ...

    async def read_changes(
        self,
        *,
        after_revision: int = 0,
        store: str | None = None,
        page_size: int = 100,
        object_type: str | None = None,
    ) -> ChangesPage: ...

    async def gc_expired(self, *, store: str | None = None) -> int: ...

    async def check(
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
    ) -> Decision: ...

    async def batch_check(
        self,
        items: Sequence[BatchItem],
        *,
        store: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> list[BatchItemResult]: ...

    async def expand(
        self,
        object: str,
        relation: str,
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Iterable[TupleLike] | None = None,
        store: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> ExpandTree: ...

    async def list_objects(
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
    ) -> AsyncObjectStream: ...

    async def list_users(
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
    ) -> UserList: ...

    async def explain(
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
    ) -> Explanation: ...

    # API keys (admin)
    async def create_key(
        self,
        *,
        owner: str,
        roles: Sequence[str],
        expires_in: float | None = None,
        description: str = "",
    ) -> tuple[ApiKey, str]: ...

    async def list_keys(
        self, *, page_size: int = 100, continuation_token: str | None = None
    ) -> Page[ApiKey]: ...

    async def get_key(self, key_id: str) -> ApiKey: ...

    async def rotate_key(
        self, key_id: str, *, overlap_seconds: float = 3600
    ) -> tuple[ApiKey, str]: ...

    async def revoke_key(self, key_id: str) -> None: ...

    # ledger
    async def query_events(
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
    ) -> EventPage: ...

    async def get_decision(self, decision_id: str) -> Provenance: ...

    async def export_events(
        self,
        *,
        store: str | None = None,
        format: str = "jsonl",
        after_seq: int = 0,
        since: float | None = None,
    ) -> AsyncIterator[str]: ...

    async def verify_ledger(self, *, store: str | None = None) -> VerifyReport: ...

    async def ledger_public_keys(self, *, store: str | None = None) -> list[LedgerKey]: ...

    async def set_ledger_retention(
        self,
        *,
        store: str | None = None,
        max_age_days: float | None = None,
        max_events: int | None = None,
    ) -> Retention: ...

    async def prune_ledger(self, *, store: str | None = None) -> PruneResult: ...

    async def create_webhook(
        self,
        url: str,
        *,
        store: str | None = None,
        secret: str | None = None,
        from_start: bool = False,
        event_types: Sequence[str] | None = None,
    ) -> tuple[Webhook, str]: ...

    async def list_webhooks(self, *, store: str | None = None) -> list[Webhook]: ...

    async def delete_webhook(self, webhook_id: str, *, store: str | None = None) -> None: ...

    # identities
    async def create_identity(
        self,
        kind: str,
        id: str,
        *,
        store: str | None = None,
        display_name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        owners: Sequence[str] = (),
        source: str = "api",
    ) -> Identity: ...

    async def get_identity(
        self,
        node: str,
        *,
        store: str | None = None,
    ) -> Identity: ...

    async def list_identities(
        self,
        *,
        store: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        owner: str | None = None,
        orphaned: bool | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Identity]: ...

    async def update_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        display_name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Identity: ...

    async def set_identity_owners(
        self,
        node: str,
        *,
        store: str | None = None,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Identity: ...

    async def suspend_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Identity: ...

    async def reactivate_identity(
        self,
        node: str,
        *,
        store: str | None = None,
    ) -> Identity: ...

    async def deprovision_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Identity: ...

    # delegations
    async def create_delegation(
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
    ) -> Delegation: ...

    async def get_delegation(
        self,
        delegation_id: str,
        *,
        store: str | None = None,
    ) -> Delegation: ...

    async def list_delegations(
        self,
        *,
        store: str | None = None,
        delegator: str | None = None,
        delegate: str | None = None,
        status: str | None = None,
        parent_id: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Delegation]: ...

    async def revoke_delegation(
        self,
        delegation_id: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> list[Delegation]: ...

    # store policy
    async def get_store_policy(
        self,
        *,
        store: str | None = None,
    ) -> StorePolicy: ...

    async def update_store_policy(
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
    ) -> StorePolicy: ...

    # decisions
    # credentials
    async def create_credential(
        self,
        identity: str,
        *,
        store: str | None = None,
        type: str = "client_secret",
        public_jwk: Mapping[str, Any] | None = None,
        expires_at: float | None = None,
    ) -> tuple[Credential, str | None]: ...

    async def list_credentials(
        self,
        *,
        store: str | None = None,
        identity: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Credential]: ...

    async def get_credential(
        self, credential_id: str, *, store: str | None = None
    ) -> Credential: ...

    async def rotate_credential(
        self,
        credential_id: str,
        *,
        store: str | None = None,
        overlap_seconds: float = 3600,
    ) -> tuple[Credential, str | None]: ...

    async def revoke_credential(
        self,
        credential_id: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Credential: ...

    async def list_signing_keys(self, *, store: str | None = None) -> list[SigningKeyInfo]: ...

    async def rotate_signing_key(
        self,
        *,
        store: str | None = None,
        algorithm: str = "EdDSA",
        overlap_seconds: int | None = None,
    ) -> SigningKeyInfo: ...

    # tokens
    async def introspect_token(self, token: str, *, store: str | None = None) -> dict[str, Any]: ...

    async def revoke_token(
        self,
        token: str | None = None,
        *,
        store: str | None = None,
        jti: str | None = None,
        expires_at: float | None = None,
        reason: str | None = None,
    ) -> TokenRevocation: ...

    async def decide(
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
    ) -> PolicyDecision: ...

    async def decide_batch(
        self,
        items: Sequence[DecideItem],
        *,
        store: str | None = None,
        semantic: str = "execute_all",
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> list[PolicyDecision]: ...

    # guardrails
    async def put_guardrails(
        self,
        rules: Sequence[Guardrail | Mapping[str, Any]],
        *,
        store: str | None = None,
    ) -> GuardrailSet: ...

    async def get_guardrails(
        self,
        *,
        store: str | None = None,
        version: int | None = None,
    ) -> GuardrailSet: ...

    async def list_guardrail_versions(
        self,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[GuardrailSet]: ...

    async def dry_run_guardrails(
        self,
        rules: Sequence[Guardrail | Mapping[str, Any]],
        *,
        store: str | None = None,
        last: int = 1000,
    ) -> GuardrailDryRun: ...


if TYPE_CHECKING:  # mypy proves each implementation satisfies its protocol
    from keyplane.embedded import Keyplane
    from keyplane.sdk.async_client import AsyncClient
    from keyplane.sdk.client import Client

    def _embedded(kp: Keyplane) -> KeyplaneAPI:
        return kp

    def _client(c: Client) -> KeyplaneAPI:
        return c

    def _async_client(c: AsyncClient) -> AsyncKeyplaneAPI:
        return c

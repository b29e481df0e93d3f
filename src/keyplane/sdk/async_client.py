"""``keyplane.AsyncClient``: :class:`keyplane.Client` for asyncio — the same methods,
arguments, results and errors, each a coroutine.

>>> async with AsyncClient("http://127.0.0.1:8080", api_key="kp_…") as kp:  # doctest: +SKIP
...     decision = await kp.check("user:anne", "viewer", "document:roadmap")
...     async for doc in await kp.list_objects("user:anne", "viewer", "document"):
...         print(doc)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from keyplane.errors import TransportError
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
from keyplane.sdk import (
    credentials_wire,
    decision_wire,
    identity_wire,
    ledger_wire,
    signing_keys_wire,
    tokens_wire,
    wire,
)
from keyplane.sdk.client import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    RETRYABLE,
    backoff,
    decode_json,
    headers_for,
    transport_error,
)
from keyplane.sdk.gateway_api import AsyncGatewayClient
from keyplane.sdk.governance_api import AsyncGovernanceClient
from keyplane.sdk.imports_api import AsyncImportsClient
from keyplane.sdk.posture_api import AsyncPostureClient
from keyplane.sdk.wire import Call
from keyplane.service.access import BatchItem, BatchItemResult, Decision, ExpandTree, UserList
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

__all__ = ["AsyncClient"]

R = TypeVar("R")


class AsyncClient(
    AsyncGovernanceClient, AsyncPostureClient, AsyncGatewayClient, AsyncImportsClient
):
    """A Keyplane server for asyncio code; see :class:`keyplane.Client` for the arguments."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        default_store: str = "default",
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.default_store = default_store
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            headers=headers_for(api_key, headers),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"AsyncClient({self.url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------------- plumbing

    def _store(self, store: str | None) -> str:
        return store or self.default_store

    def _timeout_for(self, call: Call[Any]) -> Any:
        """The client's timeout, or the call's floor when it needs longer."""
        if call.min_timeout is None or self.timeout is None:
            return httpx.USE_CLIENT_DEFAULT
        return max(self.timeout, call.min_timeout)

    async def _response(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
        attempts = 1 + (self.retries if call.idempotent else 0)
        for attempt in range(attempts):
            request = self._http.build_request(
                call.method,
                call.path,
                params=call.params or None,
                json=call.body,
                headers=call.headers or None,
                timeout=self._timeout_for(call),
            )
            try:
                resp = await self._http.send(request, stream=stream)
            except RETRYABLE as exc:
                if attempt + 1 < attempts:
                    await asyncio.sleep(backoff(attempt))
                    continue
                raise transport_error(self.url, exc, self.timeout) from exc
            except httpx.HTTPError as exc:
                raise transport_error(self.url, exc, self.timeout) from exc
            if resp.status_code >= 400:
                try:
                    content = await resp.aread()
                except httpx.HTTPError as exc:
                    raise transport_error(self.url, exc, self.timeout) from exc
                finally:
                    await resp.aclose()
                raise wire.error_from_response(resp.status_code, content, resp.headers)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, call: Call[R]) -> R:
        return call.decode(decode_json(self.url, await self._response(call)))

    async def _ndjson(self, resp: httpx.Response) -> AsyncIterator[str]:
        try:
            async for line in resp.aiter_lines():
                obj = wire.ndjson_object(line)
                if obj is not None:
                    yield obj
        except httpx.HTTPError as exc:
            raise transport_error(self.url, exc, self.timeout) from exc
        except (ValueError, KeyError) as exc:
            raise TransportError(f"unreadable list-objects stream from {self.url}: {exc}") from exc
        finally:
            await resp.aclose()

    # ---------------------------------------------------------------------- stores

    async def create_store(self, name: str, *, store_id: str | None = None) -> StoreInfo:
        return await self._send(wire.create_store(name, store_id))

    async def get_store(self, store_id: str) -> StoreInfo:
        return await self._send(wire.get_store(store_id))

    async def list_stores(
        self, *, page_size: int = 100, continuation_token: str | None = None
    ) -> Page[StoreInfo]:
        return await self._send(wire.list_stores(page_size, continuation_token))

    async def delete_store(self, store_id: str) -> None:
        await self._send(wire.delete_store(store_id))

    # ---------------------------------------------------------------------- models

    async def write_model(
        self, source: str | Mapping[str, Any], *, store: str | None = None
    ) -> ModelRecord:
        return await self._send(wire.write_model(self._store(store), source))

    async def read_model(
        self, model_id: str | None = None, *, store: str | None = None
    ) -> ModelRecord:
        return await self._send(wire.read_model(self._store(store), model_id))

    async def list_models(
        self,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ModelRecord]:
        return await self._send(wire.list_models(self._store(store), page_size, continuation_token))

    # ---------------------------------------------------------------------- tuples

    async def write_tuples(
        self,
        writes: Iterable[TupleLike] | None = None,
        *,
        deletes: Iterable[TupleLike] | None = None,
        store: str | None = None,
        model_id: str | None = None,
        idempotent: bool = False,
    ) -> WriteResult:
        return await self._send(
            wire.write_tuples(self._store(store), writes, deletes, model_id, idempotent)
        )

    async def delete_tuples(
        self, deletes: Iterable[TupleLike], *, store: str | None = None, idempotent: bool = False
    ) -> WriteResult:
        return await self._send(
            wire.write_tuples(self._store(store), None, deletes, None, idempotent)
        )

    async def read_tuples(
        self,
        *,
        object: str | None = None,
        relation: str | None = None,
        user: str | None = None,
        store: str | None = None,
        page_size: int = 100,
        continuation_token: str | None = None,
    ) -> Page[Tuple]:
        return await self._send(
            wire.read_tuples(
                self._store(store), object, relation, user, page_size, continuation_token
            )
        )

    async def read_changes(
        self,
        *,
        after_revision: int = 0,
        store: str | None = None,
        page_size: int = 100,
        object_type: str | None = None,
    ) -> ChangesPage:
        return await self._send(
            wire.read_changes(self._store(store), after_revision, page_size, object_type)
        )

    async def gc_expired(self, *, store: str | None = None) -> int:
        """Delete expired tuples (they already stopped granting); how many were removed."""
        return await self._send(wire.gc_expired(self._store(store)))

    # ---------------------------------------------------------------------- queries

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
    ) -> Decision:
        return await self._send(
            wire.check(
                self._store(store),
                user,
                relation,
                object,
                context=context,
                contextual_tuples=contextual_tuples,
                model_id=model_id,
                at_least_as_fresh=at_least_as_fresh,
            )
        )

    async def batch_check(
        self,
        items: Sequence[BatchItem],
        *,
        store: str | None = None,
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> list[BatchItemResult]:
        return await self._send(
            wire.batch_check(self._store(store), items, model_id, at_least_as_fresh)
        )

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
    ) -> ExpandTree:
        return await self._send(
            wire.expand(
                self._store(store),
                object,
                relation,
                context=context,
                contextual_tuples=contextual_tuples,
                model_id=model_id,
                at_least_as_fresh=at_least_as_fresh,
            )
        )

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
    ) -> wire.AsyncObjectStream:
        """Streams the server's NDJSON answer: ``async for o in await c.list_objects(…)``.

        Errors before the first object raise when awaited."""
        call = wire.list_objects(
            self._store(store),
            user,
            relation,
            object_type,
            context=context,
            contextual_tuples=contextual_tuples,
            model_id=model_id,
            at_least_as_fresh=at_least_as_fresh,
        )
        resp = await self._response(call, stream=True)
        return wire.AsyncObjectStream(
            self._ndjson(resp), resp.headers.get(wire.DECISION_ID_HEADER, "")
        )

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
    ) -> UserList:
        return await self._send(
            wire.list_users(
                self._store(store),
                object,
                relation,
                filters,
                context=context,
                contextual_tuples=contextual_tuples,
                model_id=model_id,
                at_least_as_fresh=at_least_as_fresh,
            )
        )

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
    ) -> Explanation:
        return await self._send(
            wire.explain(
                self._store(store),
                user,
                relation,
                object,
                context=context,
                contextual_tuples=contextual_tuples,
                model_id=model_id,
                at_least_as_fresh=at_least_as_fresh,
            )
        )

    # ---------------------------------------------------------------------- API keys

    async def create_key(
        self,
        *,
        owner: str,
        roles: Sequence[str],
        expires_in: float | None = None,
        description: str = "",
    ) -> tuple[ApiKey, str]:
        """Mint a key; returns its record and the secret (``kp_…``), shown this once."""
        return await self._send(wire.create_key(owner, roles, expires_in, description))

    async def list_keys(
        self, *, page_size: int = 100, continuation_token: str | None = None
    ) -> Page[ApiKey]:
        return await self._send(wire.list_keys(page_size, continuation_token))

    async def get_key(self, key_id: str) -> ApiKey:
        return await self._send(wire.get_key(key_id))

    async def rotate_key(self, key_id: str, *, overlap_seconds: float = 3600) -> tuple[ApiKey, str]:
        """A new secret for the key; the old one works for ``overlap_seconds`` more."""
        return await self._send(wire.rotate_key(key_id, overlap_seconds))

    async def revoke_key(self, key_id: str) -> None:
        await self._send(wire.revoke_key(key_id))

    # ---------------------------------------------------------------------- ledger

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
    ) -> EventPage:
        return await self._send(
            ledger_wire.query_events(
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
        )

    async def get_decision(self, decision_id: str) -> Provenance:
        return await self._send(ledger_wire.get_decision(decision_id))

    async def export_events(
        self,
        *,
        store: str | None = None,
        format: str = "jsonl",
        after_seq: int = 0,
        since: float | None = None,
    ) -> AsyncIterator[str]:
        """Streams the export's lines: ``async for line in await c.export_events(…)``.

        Errors before the first line raise when awaited."""
        call = ledger_wire.export_events(self._store(store), format, after_seq, since)
        return self._lines(await self._response(call, stream=True))

    async def _lines(self, resp: httpx.Response) -> AsyncIterator[str]:
        try:
            async for line in resp.aiter_lines():
                text = ledger_wire.export_line(line)
                if text is not None:
                    yield text
        except httpx.HTTPError as exc:
            raise transport_error(self.url, exc, self.timeout) from exc
        finally:
            await resp.aclose()

    async def verify_ledger(self, *, store: str | None = None) -> VerifyReport:
        return await self._send(ledger_wire.verify_ledger(self._store(store)))

    async def ledger_public_keys(self, *, store: str | None = None) -> list[LedgerKey]:
        return await self._send(ledger_wire.ledger_public_keys(self._store(store)))

    async def set_ledger_retention(
        self,
        *,
        store: str | None = None,
        max_age_days: float | None = None,
        max_events: int | None = None,
    ) -> Retention:
        return await self._send(
            ledger_wire.set_ledger_retention(self._store(store), max_age_days, max_events)
        )

    async def prune_ledger(self, *, store: str | None = None) -> PruneResult:
        return await self._send(ledger_wire.prune_ledger(self._store(store)))

    async def create_webhook(
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
        return await self._send(
            ledger_wire.create_webhook(self._store(store), url, secret, from_start, event_types)
        )

    async def list_webhooks(self, *, store: str | None = None) -> list[Webhook]:
        return await self._send(ledger_wire.list_webhooks(self._store(store)))

    async def delete_webhook(self, webhook_id: str, *, store: str | None = None) -> None:
        await self._send(ledger_wire.delete_webhook(self._store(store), webhook_id))

    # ---------------------------------------------------------------------- identities

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
    ) -> Identity:
        """Register a human, agent, workload or service account (non-humans need an owner)."""
        return await self._send(
            identity_wire.create_identity(
                self._store(store), kind, id, display_name, attributes, owners, source
            )
        )

    async def get_identity(
        self,
        node: str,
        *,
        store: str | None = None,
    ) -> Identity:
        return await self._send(identity_wire.get_identity(self._store(store), node))

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
    ) -> Page[Identity]:
        return await self._send(
            identity_wire.list_identities(
                self._store(store), kind, status, owner, orphaned, page_size, continuation_token
            )
        )

    async def update_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        display_name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Identity:
        return await self._send(
            identity_wire.update_identity(self._store(store), node, display_name, attributes)
        )

    async def set_identity_owners(
        self,
        node: str,
        *,
        store: str | None = None,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Identity:
        return await self._send(
            identity_wire.set_identity_owners(self._store(store), node, add, remove)
        )

    async def suspend_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Identity:
        """The kill switch: every decision it appears in denies; its delegations are revoked."""
        return await self._send(identity_wire.suspend_identity(self._store(store), node, reason))

    async def reactivate_identity(
        self,
        node: str,
        *,
        store: str | None = None,
    ) -> Identity:
        return await self._send(identity_wire.reactivate_identity(self._store(store), node))

    async def deprovision_identity(
        self,
        node: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Identity:
        return await self._send(
            identity_wire.deprovision_identity(self._store(store), node, reason)
        )

    # ---------------------------------------------------------------------- delegations

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
    ) -> Delegation:
        """Let ``delegate`` act for ``delegator`` within ``scope`` until ``expires_at`` (epoch seconds)."""
        return await self._send(
            identity_wire.create_delegation(
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
        )

    async def get_delegation(
        self,
        delegation_id: str,
        *,
        store: str | None = None,
    ) -> Delegation:
        return await self._send(identity_wire.get_delegation(self._store(store), delegation_id))

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
    ) -> Page[Delegation]:
        return await self._send(
            identity_wire.list_delegations(
                self._store(store),
                delegator,
                delegate,
                status,
                parent_id,
                page_size,
                continuation_token,
            )
        )

    async def revoke_delegation(
        self,
        delegation_id: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> list[Delegation]:
        """Revoke it and every delegation derived from it; returns them all."""
        return await self._send(
            identity_wire.revoke_delegation(self._store(store), delegation_id, reason)
        )

    # ---------------------------------------------------------------------- store policy

    async def get_store_policy(
        self,
        *,
        store: str | None = None,
    ) -> StorePolicy:
        return await self._send(identity_wire.get_store_policy(self._store(store)))

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
    ) -> StorePolicy:
        return await self._send(
            identity_wire.update_store_policy(
                self._store(store),
                max_delegation_seconds,
                suspend_orphans,
                actions,
                max_credential_seconds,
                access_token_seconds,
                allow_impersonation,
                token_audiences,
                trusted_issuers,
            )
        )

    # ---------------------------------------------------------------------- signing keys

    # credentials ----------------------------------------------------------------------

    async def create_credential(
        self,
        identity: str,
        *,
        store: str | None = None,
        type: str = "client_secret",
        public_jwk: Mapping[str, Any] | None = None,
        expires_at: float | None = None,
    ) -> tuple[Credential, str | None]:
        return await self._send(
            credentials_wire.create_credential(
                self._store(store), identity, type, public_jwk, expires_at
            )
        )

    async def list_credentials(
        self,
        *,
        store: str | None = None,
        identity: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Credential]:
        return await self._send(
            credentials_wire.list_credentials(
                self._store(store), identity, status, page_size, continuation_token
            )
        )

    async def get_credential(self, credential_id: str, *, store: str | None = None) -> Credential:
        return await self._send(credentials_wire.get_credential(self._store(store), credential_id))

    async def rotate_credential(
        self,
        credential_id: str,
        *,
        store: str | None = None,
        overlap_seconds: float = 3600,
    ) -> tuple[Credential, str | None]:
        return await self._send(
            credentials_wire.rotate_credential(self._store(store), credential_id, overlap_seconds)
        )

    async def revoke_credential(
        self,
        credential_id: str,
        *,
        store: str | None = None,
        reason: str | None = None,
    ) -> Credential:
        return await self._send(
            credentials_wire.revoke_credential(self._store(store), credential_id, reason)
        )

    async def list_signing_keys(self, *, store: str | None = None) -> list[SigningKeyInfo]:
        return await self._send(signing_keys_wire.list_signing_keys(self._store(store)))

    async def rotate_signing_key(
        self,
        *,
        store: str | None = None,
        algorithm: str = "EdDSA",
        overlap_seconds: int | None = None,
    ) -> SigningKeyInfo:
        return await self._send(
            signing_keys_wire.rotate_signing_key(self._store(store), algorithm, overlap_seconds)
        )

    # ---------------------------------------------------------------------- tokens

    async def introspect_token(self, token: str, *, store: str | None = None) -> dict[str, Any]:
        """RFC 7662: ``{"active": true, <claims>…}`` or ``{"active": false}``."""
        return await self._send(tokens_wire.introspect_token(self._store(store), token))

    async def revoke_token(
        self,
        token: str | None = None,
        *,
        store: str | None = None,
        jti: str | None = None,
        expires_at: float | None = None,
        reason: str | None = None,
    ) -> TokenRevocation:
        """Revoke ``token`` or the token whose id is ``jti`` (exactly one)."""
        return await self._send(
            tokens_wire.revoke_token(self._store(store), token, jti, expires_at, reason)
        )

    # ---------------------------------------------------------------------- decisions

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
    ) -> PolicyDecision:
        """May ``subject``, through ``actors``, do ``action`` on ``resource`` for ``purpose``?
        Or give ``token`` (an access token of the store) for subject, actors and purpose."""
        return await self._send(
            decision_wire.decide(
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
        )

    async def decide_batch(
        self,
        items: Sequence[DecideItem],
        *,
        store: str | None = None,
        semantic: str = "execute_all",
        model_id: str | None = None,
        at_least_as_fresh: int | None = None,
    ) -> list[PolicyDecision]:
        """Many decisions at one revision; an item's error is that item's answer."""
        return await self._send(
            decision_wire.decide_batch(
                self._store(store), items, semantic, model_id, at_least_as_fresh
            )
        )

    # ---------------------------------------------------------------------- guardrails

    async def put_guardrails(
        self,
        rules: Sequence[Guardrail | Mapping[str, Any]],
        *,
        store: str | None = None,
    ) -> GuardrailSet:
        """Store ``rules`` as the next guardrail version (admin)."""
        return await self._send(identity_wire.put_guardrails(self._store(store), rules))

    async def get_guardrails(
        self,
        *,
        store: str | None = None,
        version: int | None = None,
    ) -> GuardrailSet:
        return await self._send(identity_wire.get_guardrails(self._store(store), version))

    async def list_guardrail_versions(
        self,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[GuardrailSet]:
        return await self._send(
            identity_wire.list_guardrail_versions(self._store(store), page_size, continuation_token)
        )

    async def dry_run_guardrails(
        self,
        rules: Sequence[Guardrail | Mapping[str, Any]],
        *,
        store: str | None = None,
        last: int = 1000,
    ) -> GuardrailDryRun:
        """How ``rules`` would have changed the last ``last`` recorded decisions."""
        return await self._send(identity_wire.dry_run_guardrails(self._store(store), rules, last))

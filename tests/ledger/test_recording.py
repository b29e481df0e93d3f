"""Issue 4 §1: every service operation records exactly its event(s) — permits, denials,
refusals and errors — and every decision's id reaches the caller on every surface.

The table below names what each operation records. It is checked against the operations
the service layer exports (the same discovery as tests/test_surface_parity.py): a new
operation without a row here fails, and so does one whose ``@audited`` type disagrees.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import keyplane.service as service_pkg
import keyplane.service.imports as imports
import keyplane.service.scim as scim_svc
from importers.demo_importer import register_demo
from keyplane.api import create_app
from keyplane.config import Settings
from keyplane.errors import KeyplaneError, PermissionDeniedError
from keyplane.gateway.records import GatewayWrite, McpServer, McpTool, definition_digest
from keyplane.governance.records import (
    AccessRequest,
    Entitlement,
    ReviewCampaign,
    ReviewFilter,
    ReviewItem,
)
from keyplane.graph.tuples import Tuple
from keyplane.ledger.events import EVENT_TYPES, EventFilter, LedgerEvent
from keyplane.policy.records import Delegation, Identity, ScopeGrant
from keyplane.scim.schemas import USER as SCIM_USER
from keyplane.service import (
    access,
    access_requests,
    audit,
    credentials,
    decisions,
    delegations,
    effective,
    entitlements,
    gateway,
    gateway_usage,
    guardrails,
    identities,
    keys,
    ledger,
    ledger_admin,
    models,
    observability,
    policies,
    posture,
    privilege,
    reviews,
    signing_keys,
    stores,
    token_admin,
    tokens,
    tuples,
)
from keyplane.service.access import BatchItem
from keyplane.service.auth import SYSTEM_STORE_ID, Caller
from keyplane.service.context import Services, request_id_var
from keyplane.service.decisions import DecideItem
from keyplane.storage.base import PolicyWrite, ScimResource, ScimWrite
from keyplane.storage.ids import ULID_RE
from keyplane.tokens.clients import Credential, CredentialRecord

S = "s"
_GUARDRAIL = {"id": "max-chain-2", "effect": "forbid", "expression": "chain_length > 2"}
MODEL = """\
model
  schema 1.1
type user
type document
  relations
    define viewer: [user, agent]
    define editor: [user]
type agent
"""
INTERNAL = {
    "auth.authorize",
    "system.allowed",
    # the gateway's decision: it records the event itself, with the arguments redacted
    "decisions.evaluate_unrecorded",
}


def _operations() -> Iterator[tuple[str, Callable[..., Any]]]:
    for info in pkgutil.iter_modules(service_pkg.__path__):
        mod = importlib.import_module(f"keyplane.service.{info.name}")
        for name, fn in vars(mod).items():
            if (
                inspect.isfunction(fn)
                and fn.__module__ == mod.__name__
                and not name.startswith("_")
                and list(inspect.signature(fn).parameters)[:2] == ["svc", "caller"]
                and f"{info.name}.{name}" not in INTERNAL
            ):
                yield f"{info.name}.{name}", fn


OPERATIONS = dict(_operations())
register_demo()  # the test-only importer the imports.import_source row uses


@dataclass
class World:
    svc: Services
    caller: Caller
    victim_key: str


Call = Callable[[World], Any]

# operation -> (a call that succeeds, the event types it records in order)
TABLE: dict[str, tuple[Call, list[str]]] = {
    "stores.create_store": (lambda w: stores.create_store(w.svc, w.caller, "n"), ["store.created"]),
    "stores.get_store": (lambda w: stores.get_store(w.svc, w.caller, S), []),
    "stores.list_stores": (lambda w: stores.list_stores(w.svc, w.caller), []),
    "stores.delete_store": (
        lambda w: stores.delete_store(w.svc, w.caller, S),
        ["store.deleted"],
    ),
    "models.write_model": (
        lambda w: models.write_model(w.svc, w.caller, S, MODEL),
        ["model.written"],
    ),
    "models.read_model": (lambda w: models.read_model(w.svc, w.caller, S), []),
    "models.list_models": (lambda w: models.list_models(w.svc, w.caller, S), []),
    "tuples.write_tuples": (
        lambda w: tuples.write_tuples(
            w.svc, w.caller, S, writes=["document:b#viewer@user:bob"], idempotent=True
        ),
        ["tuples.written"],
    ),
    "tuples.read_tuples": (lambda w: tuples.read_tuples(w.svc, w.caller, S), []),
    "tuples.read_changes": (lambda w: tuples.read_changes(w.svc, w.caller, S), []),
    "tuples.gc_expired": (
        lambda w: tuples.gc_expired(w.svc, w.caller, S),
        ["tuples.expired_removed"],
    ),
    "access.check": (
        lambda w: access.check(w.svc, w.caller, S, "user:anne", "viewer", "document:a"),
        ["decision.check"],
    ),
    "access.batch_check": (
        lambda w: access.batch_check(
            w.svc,
            w.caller,
            S,
            [
                BatchItem("user:anne", "viewer", "document:a"),
                BatchItem("user:anne", "nope", "document:a"),
            ],
        ),
        ["decision.batch_check", "decision.batch_check"],
    ),
    "access.expand": (
        lambda w: access.expand(w.svc, w.caller, S, "document:a", "viewer"),
        ["decision.expand"],
    ),
    "access.list_objects": (
        lambda w: list(access.list_objects(w.svc, w.caller, S, "user:anne", "viewer", "document")),
        ["decision.list_objects"],
    ),
    "access.list_users": (
        lambda w: access.list_users(w.svc, w.caller, S, "document:a", "viewer", ["user"]),
        ["decision.list_users"],
    ),
    "access.explain": (
        lambda w: access.explain(w.svc, w.caller, S, "user:anne", "viewer", "document:a"),
        ["decision.explain"],
    ),
    "decisions.decide": (
        lambda w: decisions.decide(w.svc, w.caller, S, "user:anne", "viewer", "document:a"),
        ["decision.evaluate"],
    ),
    "decisions.decide_batch": (
        lambda w: decisions.decide_batch(
            w.svc,
            w.caller,
            S,
            [
                DecideItem("user:anne", "viewer", "document:a"),
                DecideItem("user:anne", "nope", "document:a"),
            ],
        ),
        ["decision.evaluate", "decision.evaluate"],
    ),
    "identities.create_identity": (
        lambda w: identities.create_identity(w.svc, w.caller, S, "human", "carol"),
        ["identity.created"],
    ),
    "identities.get_identity": (
        lambda w: identities.get_identity(w.svc, w.caller, S, "agent:bot"),
        [],
    ),
    "identities.list_identities": (
        lambda w: identities.list_identities(w.svc, w.caller, S),
        [],
    ),
    "identities.update_identity": (
        lambda w: identities.update_identity(w.svc, w.caller, S, "agent:bot", display_name="B"),
        ["identity.updated"],
    ),
    "identities.set_identity_owners": (
        lambda w: identities.set_identity_owners(
            w.svc, w.caller, S, "agent:bot", add=["group:eng#member"]
        ),
        ["identity.owners_changed"],
    ),
    "identities.suspend_identity": (
        lambda w: identities.suspend_identity(w.svc, w.caller, S, "agent:bot"),
        ["identity.suspended", "delegation.revoked"],
    ),
    "identities.reactivate_identity": (
        lambda w: identities.reactivate_identity(w.svc, w.caller, S, "agent:sleepy"),
        ["identity.reactivated"],
    ),
    "identities.deprovision_identity": (
        lambda w: identities.deprovision_identity(w.svc, w.caller, S, "human:alice"),
        ["identity.deprovisioned", "identity.orphaned", "identity.orphaned", "delegation.revoked"],
    ),
    "delegations.create_delegation": (
        lambda w: delegations.create_delegation(
            w.svc,
            w.caller,
            S,
            delegator="human:alice",
            delegate="agent:bot",
            scope=[{"actions": ["viewer"], "resource": "document:*"}],
            expires_at=w.svc.clock.now() + 60,
        ),
        ["delegation.created"],
    ),
    "delegations.get_delegation": (
        lambda w: delegations.get_delegation(w.svc, w.caller, S, "D1"),
        [],
    ),
    "delegations.list_delegations": (
        lambda w: delegations.list_delegations(w.svc, w.caller, S),
        [],
    ),
    "delegations.revoke_delegation": (
        lambda w: delegations.revoke_delegation(w.svc, w.caller, S, "D1"),
        ["delegation.revoked"],
    ),
    "policies.get_store_policy": (lambda w: policies.get_store_policy(w.svc, w.caller, S), []),
    "signing_keys.list_signing_keys": (
        lambda w: signing_keys.list_signing_keys(w.svc, w.caller, S),
        [],
    ),
    "signing_keys.rotate_signing_key": (
        lambda w: signing_keys.rotate_signing_key(w.svc, w.caller, S),
        ["signing_key.rotated"],
    ),
    "policies.update_store_policy": (
        lambda w: policies.update_store_policy(w.svc, w.caller, S, suspend_orphans=True),
        ["policy.updated"],
    ),
    "keys.create_key": (
        lambda w: keys.create_key(w.svc, w.caller, owner="o", roles=["reader"]),
        ["key.created"],
    ),
    "keys.list_keys": (lambda w: keys.list_keys(w.svc, w.caller), []),
    "keys.get_key": (lambda w: keys.get_key(w.svc, w.caller, w.victim_key), []),
    "keys.rotate_key": (
        lambda w: keys.rotate_key(w.svc, w.caller, w.victim_key),
        ["key.rotated"],
    ),
    "keys.revoke_key": (
        lambda w: keys.revoke_key(w.svc, w.caller, w.victim_key),
        ["key.revoked"],
    ),
    "observability.graph_stats": (lambda w: observability.graph_stats(w.svc, w.caller), []),
    "ledger.query_events": (lambda w: ledger.query_events(w.svc, w.caller, S), []),
    "ledger.get_decision": (
        lambda w: ledger.get_decision(w.svc, w.caller, _a_decision(w.svc)),
        [],
    ),
    "ledger.export_events": (lambda w: list(ledger.export_events(w.svc, w.caller, S)), []),
    "ledger.verify_ledger": (lambda w: ledger.verify_ledger(w.svc, w.caller, S), []),
    "ledger.ledger_public_keys": (lambda w: ledger.ledger_public_keys(w.svc, w.caller, S), []),
    "ledger_admin.set_ledger_retention": (
        lambda w: ledger_admin.set_ledger_retention(w.svc, w.caller, S, max_events=10**6),
        ["ledger.retention_set"],
    ),
    "ledger_admin.prune_ledger": (
        lambda w: ledger_admin.prune_ledger(w.svc, w.caller, S),
        ["ledger.pruned"],
    ),
    "ledger_admin.create_webhook": (
        lambda w: ledger_admin.create_webhook(w.svc, w.caller, S, "https://siem.example/in"),
        ["ledger.webhook_created"],
    ),
    "ledger_admin.list_webhooks": (lambda w: ledger_admin.list_webhooks(w.svc, w.caller, S), []),
    "ledger_admin.delete_webhook": (
        lambda w: ledger_admin.delete_webhook(w.svc, w.caller, S, _a_webhook(w.svc)),
        ["ledger.webhook_deleted"],
    ),
    "guardrails.put_guardrails": (
        lambda w: guardrails.put_guardrails(w.svc, w.caller, S, [_GUARDRAIL]),
        ["guardrails.updated"],
    ),
    "guardrails.get_guardrails": (lambda w: guardrails.get_guardrails(w.svc, w.caller, S), []),
    "guardrails.list_guardrail_versions": (
        lambda w: guardrails.list_guardrail_versions(w.svc, w.caller, S),
        [],
    ),
    "guardrails.dry_run_guardrails": (
        lambda w: guardrails.dry_run_guardrails(w.svc, w.caller, S, [_GUARDRAIL]),
        [],
    ),
    "credentials.create_credential": (
        lambda w: credentials.create_credential(w.svc, w.caller, S, "agent:bot"),
        ["credential.created"],
    ),
    "credentials.list_credentials": (
        lambda w: credentials.list_credentials(w.svc, w.caller, S),
        [],
    ),
    "credentials.get_credential": (
        lambda w: credentials.get_credential(w.svc, w.caller, S, _a_credential(w.svc)),
        [],
    ),
    "credentials.rotate_credential": (
        lambda w: credentials.rotate_credential(w.svc, w.caller, S, _a_credential(w.svc)),
        ["credential.rotated"],
    ),
    "credentials.revoke_credential": (
        lambda w: credentials.revoke_credential(w.svc, w.caller, S, _a_credential(w.svc)),
        ["credential.revoked"],
    ),
    # introspection is not an event (a refused one is access.denied)
    "token_admin.introspect_token": (
        lambda w: token_admin.introspect_token(w.svc, w.caller, S, "not.a.token"),
        [],
    ),
    "token_admin.revoke_token": (
        lambda w: token_admin.revoke_token(w.svc, w.caller, S, jti="J-admin", reason="leaked"),
        ["token.revoked"],
    ),
    "tokens.revoke_token_id": (
        lambda w: tokens.revoke_token_id(w.svc, w.caller, S, "J-id", reason="leaked"),
        ["token.revoked"],
    ),
    "entitlements.create_entitlement": (
        lambda w: entitlements.create_entitlement(
            w.svc,
            w.caller,
            S,
            "new",
            object="document:n",
            relation="viewer",
            owners=["human:alice"],
        ),
        ["entitlement.created"],
    ),
    "entitlements.get_entitlement": (
        lambda w: entitlements.get_entitlement(w.svc, w.caller, S, _an_entitlement(w.svc)),
        [],
    ),
    "entitlements.list_entitlements": (
        lambda w: entitlements.list_entitlements(w.svc, w.caller, S),
        [],
    ),
    "entitlements.update_entitlement": (
        lambda w: entitlements.update_entitlement(
            w.svc, w.caller, S, _an_entitlement(w.svc), risk="high"
        ),
        ["entitlement.updated"],
    ),
    "entitlements.delete_entitlement": (
        lambda w: entitlements.delete_entitlement(w.svc, w.caller, S, _an_entitlement(w.svc)),
        ["entitlement.deleted"],
    ),
    "access_requests.create_access_request": (
        lambda w: access_requests.create_access_request(
            w.svc, w.caller, S, _an_entitlement(w.svc), requester="agent:bot"
        ),
        ["access_request.created"],
    ),
    "access_requests.get_access_request": (
        lambda w: access_requests.get_access_request(w.svc, w.caller, S, _a_request(w.svc)),
        [],
    ),
    "access_requests.list_access_requests": (
        lambda w: access_requests.list_access_requests(w.svc, w.caller, S),
        [],
    ),
    "access_requests.get_access_request_history": (
        lambda w: access_requests.get_access_request_history(w.svc, w.caller, S, _a_request(w.svc)),
        [],
    ),
    "access_requests.cancel_access_request": (
        lambda w: access_requests.cancel_access_request(
            w.svc, w.caller, S, _a_request(w.svc), requester="agent:bot"
        ),
        ["access_request.cancelled"],
    ),
    "access_requests.approve_access_request": (
        lambda w: access_requests.approve_access_request(
            w.svc, w.caller, S, _a_request(w.svc), approver="human:alice"
        ),
        ["access_request.approval", "access_request.approved", "access_request.activated"],
    ),
    "access_requests.deny_access_request": (
        lambda w: access_requests.deny_access_request(
            w.svc, w.caller, S, _a_request(w.svc), approver="human:alice"
        ),
        ["access_request.approval", "access_request.denied"],
    ),
    "access_requests.revoke_access_request": (
        lambda w: access_requests.revoke_access_request(
            w.svc, w.caller, S, _a_request(w.svc, active=True), reason="done"
        ),
        ["access_request.revoked"],
    ),
    "reviews.create_review": (
        lambda w: reviews.create_review(w.svc, w.caller, S, name="r", filter={"source": "tuples"}),
        ["review.created"],
    ),
    "reviews.get_review": (lambda w: reviews.get_review(w.svc, w.caller, S, _a_review(w.svc)), []),
    "reviews.list_reviews": (lambda w: reviews.list_reviews(w.svc, w.caller, S), []),
    "reviews.list_review_items": (
        lambda w: reviews.list_review_items(w.svc, w.caller, S, _a_review(w.svc)),
        [],
    ),
    "reviews.review_report": (
        lambda w: reviews.review_report(w.svc, w.caller, S, _a_review(w.svc)),
        [],
    ),
    "reviews.decide_review_item": (
        lambda w: reviews.decide_review_item(
            w.svc, w.caller, S, _a_review(w.svc), 1, "certify", reviewer="human:alice"
        ),
        ["review.item_decided"],
    ),
    "reviews.close_review": (
        lambda w: reviews.close_review(w.svc, w.caller, S, _a_review(w.svc)),
        ["review.closed"],
    ),
    # governance analytics (issue 8): one event per page of effective access; the posture
    # reads record nothing; applying a recommendation records its change (here: the review
    # campaign) and then privilege.applied
    "effective.effective_access": (
        lambda w: effective.effective_access(w.svc, w.caller, S, "user:anne"),
        ["decision.effective_access"],
    ),
    "effective.who_can_access": (
        lambda w: effective.who_can_access(w.svc, w.caller, S, "document:a"),
        ["decision.effective_access"],
    ),
    "privilege.over_privilege": (
        lambda w: privilege.over_privilege(w.svc, w.caller, S, "agent:bot"),
        [],
    ),
    "privilege.agents_exceeding_owners": (
        lambda w: privilege.agents_exceeding_owners(w.svc, w.caller, S),
        [],
    ),
    "privilege.apply_privilege_recommendation": (
        lambda w: privilege.apply_privilege_recommendation(
            w.svc, w.caller, S, _an_unused_grant(w.svc), mode="review", reviewer="human:alice"
        ),
        ["review.created", "privilege.applied"],
    ),
    "posture.nhi_inventory": (lambda w: posture.nhi_inventory(w.svc, w.caller, S), []),
    "posture.posture_report": (lambda w: posture.posture_report(w.svc, w.caller, S), []),
    # the gateway's tool usage (issue 9): a posture read, records nothing
    "gateway_usage.tool_usage": (lambda w: gateway_usage.tool_usage(w.svc, w.caller, S), []),
    # the MCP gateway's administration (issue 9): reads record nothing, each change its
    # gateway.* event (registering without discovery: only gateway.server_registered)
    "gateway.register_server": (
        lambda w: gateway.register_server(
            w.svc, w.caller, S, "new", transport="http", url=_UNREACHABLE, discover=False
        ),
        ["gateway.server_registered"],
    ),
    "gateway.update_server": (
        lambda w: gateway.update_server(
            w.svc, w.caller, S, _a_gateway(w.svc), description="changed"
        ),
        ["gateway.server_updated"],
    ),
    "gateway.get_server": (
        lambda w: gateway.get_server(w.svc, w.caller, S, _a_gateway(w.svc)),
        [],
    ),
    "gateway.list_servers": (lambda w: gateway.list_servers(w.svc, w.caller, S), []),
    "gateway.delete_server": (
        lambda w: gateway.delete_server(w.svc, w.caller, S, _a_gateway(w.svc)),
        ["gateway.server_deleted"],
    ),
    # an unreachable server: the discovery is recorded with its error
    "gateway.discover_tools": (
        lambda w: gateway.discover_tools(w.svc, w.caller, S, _a_gateway(w.svc)),
        ["gateway.tools_discovered"],
    ),
    "gateway.list_tools": (lambda w: gateway.list_tools(w.svc, w.caller, S), []),
    "gateway.get_tool": (
        lambda w: gateway.get_tool(w.svc, w.caller, S, _a_gateway(w.svc), "echo"),
        [],
    ),
    "gateway.update_tool": (
        lambda w: gateway.update_tool(
            w.svc, w.caller, S, _a_gateway(w.svc), "echo", status="enabled", risk="normal"
        ),
        ["gateway.tool_updated"],
    ),
    "gateway.put_toolset": (
        lambda w: gateway.put_toolset(w.svc, w.caller, S, "ops", [f"{_a_gateway(w.svc)}/echo"]),
        ["gateway.toolset_updated"],
    ),
    "gateway.list_toolsets": (lambda w: gateway.list_toolsets(w.svc, w.caller, S), []),
    "gateway.delete_toolset": (
        lambda w: gateway.delete_toolset(w.svc, w.caller, S, _a_toolset(w.svc)),
        ["gateway.toolset_deleted"],
    ),
    "gateway.set_kill_switch": (
        lambda w: gateway.set_kill_switch(w.svc, w.caller, S, level="store", reason="drill"),
        ["gateway.kill_switch"],
    ),
    "gateway.get_gateway_settings": (
        lambda w: gateway.get_gateway_settings(w.svc, w.caller, S),
        [],
    ),
    "gateway.update_gateway_settings": (
        lambda w: gateway.update_gateway_settings(w.svc, w.caller, S, record_arguments=True),
        ["gateway.settings_updated"],
    ),
    # SCIM 2.0 (issue 10): reads record nothing; each change its scim.* event, then the
    # identity-plane events of its projection, in the same transaction
    "scim.scim_create": (
        lambda w: scim_svc.scim_create(
            w.svc, w.caller, S, "User", {"userName": "new@example.com"}, base_url=_SCIM
        ),
        ["scim.created", "identity.created"],
    ),
    "scim.scim_get": (
        lambda w: scim_svc.scim_get(
            w.svc, w.caller, S, "User", _a_scim_user(w.svc), base_url=_SCIM
        ),
        [],
    ),
    "scim.scim_list": (
        lambda w: scim_svc.scim_list(w.svc, w.caller, S, "User", base_url=_SCIM),
        [],
    ),
    "scim.scim_replace": (
        lambda w: scim_svc.scim_replace(
            w.svc,
            w.caller,
            S,
            "User",
            _a_scim_user(w.svc),
            {"userName": "scimmy@example.com", "title": "Engineer"},
            base_url=_SCIM,
        ),
        ["scim.replaced", "identity.updated"],
    ),
    "scim.scim_patch": (
        lambda w: scim_svc.scim_patch(
            w.svc,
            w.caller,
            S,
            "User",
            _a_scim_user(w.svc),
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Engineer"}],
            },
            base_url=_SCIM,
        ),
        ["scim.patched", "identity.updated"],
    ),
    "scim.scim_delete": (
        lambda w: scim_svc.scim_delete(w.svc, w.caller, S, "User", _a_scim_user(w.svc)),
        ["scim.deleted", "identity.deprovisioned"],
    ),
    # identity source imports (issue 10), with the test-only importer `demo`: the model's
    # new types, each batch's identity and tuple events, then source.imported at the end
    "imports.import_source": (
        lambda w: imports.import_source(
            w.svc, w.caller, S, "demo", {"org": "acme", "users": [{"login": "zed"}]}
        ),
        ["model.written", "identity.created", "tuples.written", "source.imported"],
    ),
    "imports.list_imports": (lambda w: imports.list_imports(w.svc, w.caller, S), []),
}

_SCIM = f"https://keyplane.example/scim/v2/{S}"


def _a_scim_user(svc: Services) -> str:
    """SCIM User ``scimmy`` (human:scimmy), written straight to storage (no event)."""
    if svc.storage.get_scim(S, "User", "scimmy") is None:
        now = svc.clock.now()
        data = {"schemas": [SCIM_USER], "id": "scimmy", "userName": "scimmy@example.com"}
        res = ScimResource(S, "User", "scimmy", None, "scimmy@example.com", "human:scimmy",
                           data, 1, now, now)  # fmt: skip
        attrs = {"userName": "scimmy@example.com", "emails": [], "active": True,
                 "links": {"scim": "scimmy"}}  # fmt: skip
        ident = Identity(S, "human", "scimmy", "scimmy@example.com", attrs, "active", (), False,
                         "scim", now, now, None, 0)  # fmt: skip
        svc.storage.write_scim(
            S, lambda r: ScimWrite([res], (), PolicyWrite(new_identities=[ident]))
        )
        svc.graphs.catch_up(S)
    return "scimmy"


#: a loopback port nothing listens on: discovery fails at once (connection refused)
_UNREACHABLE = "http://127.0.0.1:1/mcp"


def _a_gateway(svc: Services) -> str:
    """Server ``srv`` (unreachable) with a pending tool ``echo`` in toolset ``triage``,
    written straight to storage (no event); its name."""
    if "srv" not in svc.storage.read_gateway(S).servers:
        now = svc.clock.now()
        server = McpServer(S, "srv", "http", url=_UNREACHABLE, created_at=now, updated_at=now)
        tool = McpTool(S, "srv", "echo", digest=definition_digest("Echo.", {}, {}),
                       first_seen_at=now, last_seen_at=now, updated_at=now)  # fmt: skip
        links = (
            Tuple(tool.object, "server", server.node),
            Tuple(tool.object, "toolset", "toolset:triage"),
        )
        svc.storage.write_gateway(
            S, lambda r: GatewayWrite(servers=(server,), tools=(tool,), tuple_writes=links)
        )
        svc.graphs.catch_up(S)
    return "srv"


def _a_toolset(svc: Services) -> str:
    """Toolset ``triage`` (holding srv/echo; see :func:`_a_gateway`)."""
    _a_gateway(svc)
    return "triage"


def _a_decision(svc: Services) -> str:
    """The decision the world made (see :func:`world`)."""
    found = svc.storage.read_events(S, limit=1, filters=EventFilter(types=("decision.check",)))
    return found[0].id


def _a_credential(svc: Services) -> str:
    """A client secret of agent:bot, written straight to storage (no event)."""
    now = svc.clock.now()
    cred = Credential(S, f"C{next(_credential_ids)}", "agent:bot", "client_secret", "active",
                      now + 3600, "system", now)  # fmt: skip
    svc.storage.write_credential(S, lambda r: (CredentialRecord(cred, "0" * 64), True))
    return cred.id


_credential_ids = itertools.count()


def _an_entitlement(svc: Services) -> str:
    """An entitlement of agent-requestable viewer on a document of its own, routed to its
    owner human:alice, written straight to storage (no event)."""
    n = next(_entitlement_ids)
    now = svc.clock.now()
    e = Entitlement(S, f"e{n}", f"document:e{n}", "viewer", "", ("human:alice",), "medium",
                    3600, True, (), "active", "system", now, now, 0)  # fmt: skip
    svc.storage.write_policy(S, lambda r: PolicyWrite(new_entitlements=[e]))
    svc.graphs.catch_up(S)
    return e.id


def _a_request(svc: Services, *, active: bool = False) -> str:
    """A request of agent:bot for its own entitlement, pending on human:alice (or active,
    with its grant), written straight to storage (no event)."""
    ent = _an_entitlement(svc)
    now = svc.clock.now()
    rid = f"Q{next(_entitlement_ids):025d}"
    r = AccessRequest(
        S, rid, ent, f"document:{ent}", "viewer", "agent:bot", "agent:bot", "system", 600, "",
        "", "active" if active else "pending", now, now + 86400, ("human:alice",), 1, None,
        (), now if active else None, now if active else None,
        now + 600 if active else None,
    )  # fmt: skip
    grant = [Tuple(f"document:{ent}", "viewer", "agent:bot", expires_at=now + 600)]
    svc.storage.write_policy(
        S,
        lambda rd: PolicyWrite(new_access_requests=[r], tuple_writes=grant if active else ()),
    )
    svc.graphs.catch_up(S)
    return rid


_entitlement_ids = itertools.count()


def _a_review(svc: Services) -> str:
    """An open review of user:anne's viewer on document:a (reviewer human:alice), written
    straight to storage (no event)."""
    rid = f"R{next(_review_ids):025d}"
    c = ReviewCampaign(S, rid, rid, ReviewFilter(source="tuples"), "human:alice", "certify",
                       "on_close", "open", "system", svc.clock.now(), None)  # fmt: skip
    item = ReviewItem(S, rid, 1, "user:anne", "viewer", "document:a", None, ("human:alice",), None)
    svc.storage.create_review(S, c, [item])  # type: ignore[attr-defined]
    return rid


_review_ids = itertools.count()


def _an_unused_grant(svc: Services) -> str:
    """agent:bot, given viewer on document:unused — written straight to storage (no
    event) and never used: the recommendation revokes it."""
    svc.storage.write(S, writes=[Tuple("document:unused", "viewer", "agent:bot")])
    svc.graphs.catch_up(S)
    return "agent:bot"


def _a_webhook(svc: Services) -> str:
    """The webhook the world subscribed (see :func:`world`)."""
    return svc.storage.list_webhooks(S)[0].id


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    s = Services.open(Settings(database_url=f"sqlite:///{tmp_path / 'kp.db'}", poll_interval=0))
    try:
        yield s
    finally:
        s.close()


def _seed_identities(svc: Services) -> None:
    """Identities and a delegation for the identity operations, written without events."""

    def who(kind: str, id_: str, owners: tuple[str, ...] = (), status: str = "active") -> Identity:
        return Identity(S, kind, id_, id_, {}, status, owners, False, "api", 1.0, 1.0, None, 0)

    now = svc.clock.now()
    grant = (ScopeGrant(("viewer",), "document:*"),)
    root = Delegation(
        S, "D1", "human:alice", "agent:bot", None, grant, (), now, now + 60, 0, None, "active",
        None, None, "system", now, 0,
    )  # fmt: skip
    svc.storage.write_policy(
        S,
        lambda r: PolicyWrite(
            new_identities=[
                who("human", "alice"),
                who("agent", "bot", ("human:alice",)),
                who("agent", "sleepy", ("human:alice",), "suspended"),
            ],
            new_delegations=[root],
        ),
    )
    svc.graphs.catch_up(S)


@pytest.fixture
def world(svc: Services) -> World:
    system = Caller.system_caller()
    stores.create_store(svc, system, "s", store_id=S)
    models.write_model(svc, system, S, MODEL)
    tuples.write_tuples(svc, system, S, writes=["document:a#viewer@user:anne"])
    victim, _ = keys.create_key(svc, system, owner="victim", roles=["reader"])
    access.check(svc, system, S, "user:anne", "viewer", "document:a")  # for get_decision
    _seed_identities(svc)
    ledger_admin.create_webhook(svc, system, S, "https://siem.example/hook")  # delete_webhook
    return World(svc, system, victim.id)


def _heads(svc: Services) -> dict[str, int]:
    svc.ledger.flush()
    return {s: svc.storage.ledger_head(s)[0] for s in svc.storage.ledger_stores()}


def _new_events(svc: Services, before: dict[str, int]) -> list[LedgerEvent]:
    svc.ledger.flush()
    out: list[LedgerEvent] = []
    for store in svc.storage.ledger_stores():
        out.extend(svc.storage.read_events(store, after_seq=before.get(store, 0), limit=1000))
    return sorted(out, key=lambda e: e.id)


#: operations whose own event comes after the events of the changes they make
RECORDED_LAST = {
    "imports.import_source": (
        "the model, identities and tuples are written (and recorded) batch by batch, then "
        "source.imported records the whole import"
    ),
    "privilege.apply_privilege_recommendation": (
        "the revocation (tuples.written) or the campaign (review.created) is recorded "
        "first, then privilege.applied says which recommendation it applied"
    ),
}


def _own_type(op: str, expected: list[str]) -> str | None:
    """The type an operation declares (and records when refused): its first event's, or
    its last one's for the operations of :data:`RECORDED_LAST`; None for a read."""
    if not expected:
        return None
    return expected[-1] if op in RECORDED_LAST else expected[0]


def test_every_operation_has_a_row() -> None:
    assert set(TABLE) == set(OPERATIONS), (
        "a service operation was added or removed: say which events it records in TABLE"
    )


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_operation_is_audited_with_its_type(op: str) -> None:
    declared = audit.event_type_of(OPERATIONS[op])  # AttributeError: not @audited
    expected = TABLE[op][1]
    assert declared == _own_type(op, expected)
    assert declared is None or declared in EVENT_TYPES


@pytest.mark.parametrize("op", sorted(TABLE))
def test_operation_records_exactly_its_events(op: str, world: World) -> None:
    call, expected = TABLE[op]
    before = _heads(world.svc)
    rid = "req-" + op
    token = request_id_var.set(rid)
    try:
        result = call(world)
    finally:
        request_id_var.reset(token)
    events = _new_events(world.svc, before)
    assert [e.type for e in events] == expected
    for e in events:
        assert e.caller == "system" and e.request_id == rid
        assert e.outcome in ("allow", "deny", "error", "ok")
        if e.type.startswith("decision."):
            assert e.decision_id == e.id and e.store == S and e.model_id and e.revision
        if e.type.startswith("key."):
            assert e.store == SYSTEM_STORE_ID and e.resource and e.resource.startswith("key:")
    # the decision ids handed back are the events' ids
    if op == "access.check":
        assert result.decision_id == events[0].id and events[0].outcome == "allow"
        assert (events[0].subject, events[0].action, events[0].resource) == (
            "user:anne",
            "viewer",
            "document:a",
        )
    if op == "access.batch_check":
        assert [r.decision_id for r in result] == [e.id for e in events]
        assert [e.outcome for e in events] == ["allow", "error"]
        assert events[1].reasons == (result[1].error.code,)
    if op in ("decisions.decide", "decisions.decide_batch"):
        answers = result if isinstance(result, list) else [result]
        assert [d.decision_id for d in answers] == [e.id for e in events]
        assert events[0].reasons == ("allowed",)
        assert events[0].policy_version == "guardrails:0"
    if op == "decisions.decide_batch":
        assert events[1].outcome == "error" and events[1].reasons == (result[1].code,)
    if op == "access.list_users":
        assert result.decision_id == events[0].id
        assert events[0].details["count"] == 1 and events[0].details["results"] == ["user:anne"]
    if op == "access.explain":
        assert result.decision_id == events[0].id and events[0].details["paths"]
    if op == "access.expand":
        assert result.decision_id == events[0].id
    if op == "tuples.write_tuples":
        assert events[0].revision == result.revision
        assert events[0].details["written"] == [
            {"object": "document:b", "relation": "viewer", "user": "user:bob"}
        ]
    if op in ("keys.create_key", "keys.rotate_key"):
        secret = result[1]
        assert secret not in repr([e.to_dict() for e in events])  # never the secret


def test_list_objects_returns_its_decision_id(world: World) -> None:
    found = access.list_objects(world.svc, world.caller, S, "user:anne", "viewer", "document")
    assert list(found) == ["document:a"] and ULID_RE.match(found.decision_id)
    ev = world.svc.storage.get_event_by_decision(found.decision_id)
    assert ev is not None and ev.details["results"] == ["document:a"]
    assert ev.details["count"] == 1 and ev.resource == "document"


@pytest.mark.parametrize("op", sorted(TABLE))
def test_refusal_is_recorded_once(op: str, world: World) -> None:
    """A key without roles is refused everything; each refusal is one ``deny`` event of the
    attempted operation's type (``access.denied`` for reads)."""
    _, token = keys.create_key(world.svc, world.caller, owner="nobody", roles=[])
    nobody = keys.authenticate(world.svc, token)
    call, expected = TABLE[op]
    before = _heads(world.svc)
    with pytest.raises(PermissionDeniedError):
        call(World(world.svc, nobody, world.victim_key))
    events = _new_events(world.svc, before)
    assert [e.type for e in events] == [_own_type(op, expected) or audit.DENIED_READ]
    (e,) = events
    assert e.outcome == "deny" and e.reasons == ("permission_denied",)
    assert e.caller == nobody.principal and e.details["operation"] == op
    assert e.decision_id is None and e.request_id  # a request id even on the embedded path


def test_errors_are_recorded_with_their_code(world: World) -> None:
    before = _heads(world.svc)
    with pytest.raises(KeyplaneError) as info:
        access.check(world.svc, world.caller, S, "user:anne", "nope", "document:a")
    with pytest.raises(KeyplaneError) as info2:
        tuples.write_tuples(world.svc, world.caller, S, writes=["document:a#viewer@user:anne"])
    events = _new_events(world.svc, before)
    assert [(e.type, e.outcome, e.reasons) for e in events] == [
        ("decision.check", "error", (info.value.code,)),
        ("tuples.written", "error", (info2.value.code,)),
    ]
    assert events[0].subject == "user:anne" and events[0].action == "nope"


def test_request_id_is_fresh_per_embedded_call(world: World) -> None:
    a = access.check(world.svc, world.caller, S, "user:anne", "viewer", "document:a")
    b = access.check(world.svc, world.caller, S, "user:anne", "viewer", "document:a")
    ea = world.svc.storage.get_event_by_decision(a.decision_id)
    eb = world.svc.storage.get_event_by_decision(b.decision_id)
    assert ea and eb and ea.request_id and eb.request_id and ea.request_id != eb.request_id
    assert request_id_var.get() is None  # reset after the call


def test_a_decision_is_not_returned_when_its_event_cannot_be_recorded(world: World) -> None:
    """Fail closed: with the ledger unable to commit, the check raises."""
    world.svc.ledger.close()
    with pytest.raises(KeyplaneError):
        access.check(world.svc, world.caller, S, "user:anne", "viewer", "document:a")


def test_sync_event_is_durable_when_the_decision_returns(world: World) -> None:
    d = access.check(world.svc, world.caller, S, "user:anne", "viewer", "document:a")
    # no flush: in sync mode the event committed before check returned
    ev = world.svc.storage.get_event_by_decision(d.decision_id)
    assert ev is not None and ev.seq is not None and ev.hash


# ---------------------------------------------------------------------------- surfaces


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_rest_responses_carry_decision_ids_and_request_ids(world: World) -> None:
    _, admin = keys.create_key(world.svc, world.caller, owner="admin", roles=["admin"])
    app = create_app(world.svc)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://kp",
        headers={"Authorization": f"Bearer {admin}"},
    ) as c:
        q = {"user": "user:anne", "relation": "viewer", "object": "document:a"}
        r = await c.post(f"/v1/stores/{S}/check", json=q, headers={"x-request-id": "rid-1"})
        ev = world.svc.storage.get_event_by_decision(r.json()["decision_id"])
        assert ev is not None and ev.request_id == "rid-1" and ev.caller.startswith("key:")
        ids = [r.json()["decision_id"]]
        for path, body in [
            ("explain", q),
            ("expand", {"object": "document:a", "relation": "viewer"}),
            ("list-objects", {"user": "user:anne", "relation": "viewer", "type": "document"}),
            ("list-users", {"object": "document:a", "relation": "viewer", "filters": ["user"]}),
        ]:
            r = await c.post(f"/v1/stores/{S}/{path}", json=body)
            assert r.status_code == 200, r.text
            ids.append(r.json()["decision_id"])
        r = await c.post(f"/v1/stores/{S}/batch-check", json={"checks": [q, q]})
        ids.extend(item["decision_id"] for item in r.json()["results"])
        r = await c.post(
            f"/v1/stores/{S}/streamed-list-objects",
            json={"user": "user:anne", "relation": "viewer", "type": "document"},
        )
        ids.append(r.headers["x-decision-id"])
        # a request refused by the service layer is recorded with the request's id
        r = await c.post(f"/v1/stores/{S}/tuples/write", json={"writes": [
            {"object": "document:a", "relation": "viewer", "user": "user:anne"}
        ]}, headers={"x-request-id": "rid-conflict"})  # fmt: skip
        assert r.status_code == 409
    assert len(set(ids)) == len(ids) == 8
    for did in ids:
        ev = world.svc.storage.get_event_by_decision(did)
        assert ev is not None and ev.decision_id == did and ev.request_id
    errors = world.svc.storage.read_events(S, limit=1000)
    assert any(e.request_id == "rid-conflict" and e.outcome == "error" for e in errors)


def test_event_types_are_known() -> None:
    used = {t for _, types in TABLE.values() for t in types} | {audit.DENIED_READ}
    assert used <= set(EVENT_TYPES)

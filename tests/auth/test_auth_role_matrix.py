"""The role matrix: each role can do exactly its operations, at the service layer.

Two tables drive everything:

* ``ALLOWED`` — for every :class:`~keyplane.service.auth.Permission`, the roles granted it
  on store ``S`` (``writer:S`` / ``reader:S`` are keys scoped to ``S``; ``writer:O`` is a
  writer of *another* store). A Permission without a row fails
  :func:`test_every_permission_has_a_row`.
* ``OPERATIONS`` — every service operation (a function ``fn(svc, caller, …)`` in
  ``keyplane.service.*``) with the permission it needs and a call exercising it on ``S``.
  An operation without an entry fails :func:`test_every_service_operation_is_in_the_matrix`.

For every role × operation the call must succeed when the table allows it and raise
:class:`~keyplane.errors.PermissionDeniedError` when it does not — nothing else. Real keys,
real authentication, Keyplane's engine deciding on the system model; SQLite and PostgreSQL.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from auth_helpers import MODEL, SYSTEM

import keyplane.service
import keyplane.service.imports as imports
import keyplane.service.scim as scim_svc
from importers.demo_importer import register_demo
from keyplane.errors import PermissionDeniedError
from keyplane.gateway.records import GatewayWrite, McpTool, definition_digest
from keyplane.graph.tuples import Tuple
from keyplane.service import (
    access,
    access_requests,
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
from keyplane.service.auth import PERMISSIONS, Caller, Permission
from keyplane.service.context import Services
from keyplane.service.decisions import DecideItem
from keyplane.service.keys import authenticate, create_key

S, O = "store-s", "store-o"  # noqa: E741  (the store under test, and another one)

ROLES: dict[str, tuple[str, ...]] = {
    "admin": ("admin",),
    "auditor": ("auditor",),
    "writer": ("writer",),
    "reader": ("reader",),
    "writer:S": (f"writer:{S}",),
    "reader:S": (f"reader:{S}",),
    "writer:O": (f"writer:{O}",),
    "provisioner:S": (f"provisioner:{S}",),
    "no roles": (),
}

_ON_S = {"admin", "auditor", "writer", "reader", "writer:S", "reader:S"}
ALLOWED: dict[str, set[str]] = {
    Permission.CREATE_STORE: {"admin"},
    Permission.LIST_STORES: {"admin", "auditor", "writer", "reader"},
    Permission.MANAGE_KEYS: {"admin"},
    Permission.READ_STORE: _ON_S,
    Permission.QUERY: _ON_S,
    Permission.READ_TUPLES: _ON_S,
    Permission.READ_CHANGES: {"admin", "auditor", "writer", "writer:S"},
    Permission.WRITE_TUPLES: {"admin", "writer", "writer:S"},
    Permission.WRITE_MODEL: {"admin", "writer", "writer:S"},
    Permission.DELETE_STORE: {"admin"},
    Permission.READ_LEDGER: {"admin", "auditor", "writer", "writer:S"},
    Permission.MANAGE_LEDGER: {"admin"},
    Permission.READ_IDENTITIES: _ON_S,
    Permission.MANAGE_IDENTITIES: {"admin", "writer", "writer:S"},
    Permission.MANAGE_DELEGATIONS: {"admin", "writer", "writer:S"},
    Permission.MANAGE_POLICY: {"admin"},
    Permission.MANAGE_CREDENTIALS: {"admin", "writer", "writer:S"},
    Permission.MANAGE_ENTITLEMENTS: {"admin"},
    Permission.REQUEST_ACCESS: {"admin", "writer", "writer:S"},
    Permission.APPROVE_REQUESTS: {"admin", "writer", "writer:S"},
    Permission.MANAGE_REVIEWS: {"admin"},
    Permission.READ_POSTURE: {"admin", "auditor", "writer", "writer:S"},
    Permission.READ_GATEWAY: _ON_S,
    Permission.MANAGE_GATEWAY: {"admin"},
    Permission.PROVISION: {"admin", "provisioner:S"},
    Permission.IMPORT_SOURCES: {"admin", "writer", "writer:S"},
}


@dataclass
class World:
    svc: Services
    caller: Caller
    victim_key: str  # a key the caller may try to rotate or revoke
    n: itertools.count  # type: ignore[type-arg]
    decision_id: str = ""  # a decision in S's ledger
    webhook_id: str = ""  # a webhook on S the caller may try to delete


Op = Callable[[World], Any]
_GUARDRAIL = {"id": "max-chain-2", "effect": "forbid", "expression": "chain_length > 2"}
_ids = itertools.count()
_SCOPE = [{"actions": ["viewer"], "resource": "document:plan"}]


def _fresh_agent(w: World) -> str:
    """An agent owned by human:alice, created by the system caller (a target to act on)."""
    ident = identities.create_identity(
        w.svc, SYSTEM, S, "agent", f"target-{next(w.n)}", owners=["human:alice"]
    )
    return ident.node


def _fresh_granted_agent(w: World) -> str:
    """A fresh agent with one grant it never used (a recommendation to apply)."""
    node = _fresh_agent(w)
    tuples.write_tuples(w.svc, SYSTEM, S, writes=[f"document:plan#viewer@{node}"])
    return node


def _fresh_delegation(w: World) -> str:
    d = delegations.create_delegation(
        w.svc,
        SYSTEM,
        S,
        delegator="human:alice",
        delegate="agent:bot",
        scope=_SCOPE,
        expires_at=w.svc.clock.now() + 3600,
    )
    return d.id


def _fresh_credential(w: World) -> str:
    cred, _ = credentials.create_credential(w.svc, SYSTEM, S, "agent:bot")
    return cred.id


def _fresh_entitlement(w: World) -> str:
    """An entitlement on a document of its own (so its requests never meet another's),
    routed to human:alice (no rules: the entitlement's owners), agents may request it."""
    n = next(w.n)
    e = entitlements.create_entitlement(
        w.svc, SYSTEM, S, f"e{n}", object=f"document:p{n}", relation="viewer",
        owners=["human:alice"], agents_may_request=True,
    )  # fmt: skip
    return e.id


def _fresh_request(w: World, *, active: bool = False) -> str:
    """A pending request of agent:bot (approved by human:alice when ``active``)."""
    r = access_requests.create_access_request(
        w.svc, SYSTEM, S, _fresh_entitlement(w), requester="agent:bot"
    )
    if active:
        r = access_requests.approve_access_request(w.svc, SYSTEM, S, r.id, approver="human:alice")
    return r.id


def _fresh_review(w: World) -> str:
    """An open review of S's direct tuples on documents (user:anne's viewer), reviewer
    human:alice."""
    c = reviews.create_review(
        w.svc,
        SYSTEM,
        S,
        name=f"r{next(w.n)}",
        filter={"source": "tuples", "object_type": "document"},
        reviewer="human:alice",
    )
    return c.id


register_demo()  # the test-only importer the imports.import_source row uses

_SCIM = f"https://keyplane.example/scim/v2/{S}"


def _fresh_scim_user(w: World) -> str:
    """A SCIM User provisioned by the system caller; its SCIM id."""
    made = scim_svc.scim_create(
        w.svc, SYSTEM, S, "User", {"userName": f"f{next(w.n)}@example.com"}, base_url=_SCIM
    )
    return str(made["id"])


#: a loopback port nothing listens on: a discovery fails at once (and is still a success)
_UNREACHABLE = "http://127.0.0.1:1/mcp"


def _fresh_server(w: World) -> str:
    """A downstream server registered by the system caller (not discovered)."""
    name = f"srv{next(w.n)}"
    gateway.register_server(
        w.svc, SYSTEM, S, name, transport="http", url=_UNREACHABLE, discover=False
    )
    return name


def _gateway_tool(w: World) -> tuple[str, str]:
    """A fresh server with a pending tool ``echo`` (written straight to storage: tools
    come from discovery)."""
    server = _fresh_server(w)
    now = w.svc.clock.now()
    tool = McpTool(S, server, "echo", digest=definition_digest("Echo.", {}, {}),
                   first_seen_at=now, last_seen_at=now, updated_at=now)  # fmt: skip
    link = Tuple(tool.object, "server", f"mcp_server:{server}")
    w.svc.storage.write_gateway(S, lambda r: GatewayWrite(tools=(tool,), tuple_writes=(link,)))
    w.svc.graphs.catch_up(S)
    return server, "echo"


def _fresh_toolset(w: World) -> str:
    server, tool = _gateway_tool(w)
    name = f"ts{next(w.n)}"
    gateway.put_toolset(w.svc, SYSTEM, S, name, [f"{server}/{tool}"])
    return name


# operation name → (permission, call). Destructive calls come last (dicts keep order).
OPERATIONS: dict[str, tuple[str, Op]] = {
    "stores.list_stores": (Permission.LIST_STORES, lambda w: stores.list_stores(w.svc, w.caller)),
    "stores.get_store": (Permission.READ_STORE, lambda w: stores.get_store(w.svc, w.caller, S)),
    "stores.create_store": (
        Permission.CREATE_STORE,
        lambda w: stores.create_store(w.svc, w.caller, "new", store_id=f"new-{next(w.n)}"),
    ),
    "models.read_model": (Permission.READ_STORE, lambda w: models.read_model(w.svc, w.caller, S)),
    "models.list_models": (
        Permission.READ_STORE,
        lambda w: models.list_models(w.svc, w.caller, S),
    ),
    "models.write_model": (
        Permission.WRITE_MODEL,
        lambda w: models.write_model(w.svc, w.caller, S, MODEL),
    ),
    "tuples.read_tuples": (
        Permission.READ_TUPLES,
        lambda w: tuples.read_tuples(w.svc, w.caller, S),
    ),
    "tuples.read_changes": (
        Permission.READ_CHANGES,
        lambda w: tuples.read_changes(w.svc, w.caller, S),
    ),
    "tuples.write_tuples": (
        Permission.WRITE_TUPLES,
        lambda w: tuples.write_tuples(
            w.svc, w.caller, S, writes=[f"document:d{next(w.n)}#owner@user:anne"]
        ),
    ),
    "tuples.gc_expired": (Permission.WRITE_TUPLES, lambda w: tuples.gc_expired(w.svc, w.caller, S)),
    "access.check": (
        Permission.QUERY,
        lambda w: access.check(w.svc, w.caller, S, "user:anne", "viewer", "document:plan"),
    ),
    "access.batch_check": (
        Permission.QUERY,
        lambda w: access.batch_check(
            w.svc, w.caller, S, [BatchItem("user:anne", "viewer", "document:plan")]
        ),
    ),
    "decisions.decide": (
        Permission.QUERY,
        lambda w: decisions.decide(w.svc, w.caller, S, "user:anne", "viewer", "document:plan"),
    ),
    "decisions.decide_batch": (
        Permission.QUERY,
        lambda w: decisions.decide_batch(
            w.svc, w.caller, S, [DecideItem("user:anne", "viewer", "document:plan")]
        ),
    ),
    "access.expand": (
        Permission.QUERY,
        lambda w: access.expand(w.svc, w.caller, S, "document:plan", "viewer"),
    ),
    "access.list_objects": (
        Permission.QUERY,
        lambda w: list(access.list_objects(w.svc, w.caller, S, "user:anne", "viewer", "document")),
    ),
    "access.list_users": (
        Permission.QUERY,
        lambda w: access.list_users(w.svc, w.caller, S, "document:plan", "viewer", ["user"]),
    ),
    "access.explain": (
        Permission.QUERY,
        lambda w: access.explain(w.svc, w.caller, S, "user:anne", "viewer", "document:plan"),
    ),
    "observability.graph_stats": (
        Permission.LIST_STORES,
        lambda w: observability.graph_stats(w.svc, w.caller),
    ),
    "keys.list_keys": (Permission.MANAGE_KEYS, lambda w: keys.list_keys(w.svc, w.caller)),
    "keys.get_key": (Permission.MANAGE_KEYS, lambda w: keys.get_key(w.svc, w.caller, w.victim_key)),
    "keys.create_key": (
        Permission.MANAGE_KEYS,
        lambda w: keys.create_key(w.svc, w.caller, owner="new", roles=[f"reader:{S}"]),
    ),
    "keys.rotate_key": (
        Permission.MANAGE_KEYS,
        lambda w: keys.rotate_key(w.svc, w.caller, w.victim_key),
    ),
    "keys.revoke_key": (
        Permission.MANAGE_KEYS,
        lambda w: keys.revoke_key(w.svc, w.caller, w.victim_key),
    ),
    "ledger.query_events": (
        Permission.READ_LEDGER,
        lambda w: ledger.query_events(w.svc, w.caller, S),
    ),
    "ledger.get_decision": (
        Permission.READ_LEDGER,
        lambda w: ledger.get_decision(w.svc, w.caller, w.decision_id),
    ),
    "ledger.export_events": (
        Permission.READ_LEDGER,
        lambda w: list(ledger.export_events(w.svc, w.caller, S)),
    ),
    "ledger.verify_ledger": (
        Permission.READ_LEDGER,
        lambda w: ledger.verify_ledger(w.svc, w.caller, S),
    ),
    "ledger.ledger_public_keys": (
        Permission.READ_LEDGER,
        lambda w: ledger.ledger_public_keys(w.svc, w.caller, S),
    ),
    "ledger_admin.list_webhooks": (
        Permission.MANAGE_LEDGER,
        lambda w: ledger_admin.list_webhooks(w.svc, w.caller, S),
    ),
    "ledger_admin.create_webhook": (
        Permission.MANAGE_LEDGER,
        lambda w: ledger_admin.create_webhook(w.svc, w.caller, S, "https://siem.example/in"),
    ),
    "ledger_admin.set_ledger_retention": (
        Permission.MANAGE_LEDGER,
        lambda w: ledger_admin.set_ledger_retention(w.svc, w.caller, S, max_events=1000),
    ),
    "ledger_admin.prune_ledger": (
        Permission.MANAGE_LEDGER,
        lambda w: ledger_admin.prune_ledger(w.svc, w.caller, S),
    ),
    "ledger_admin.delete_webhook": (
        Permission.MANAGE_LEDGER,
        lambda w: ledger_admin.delete_webhook(w.svc, w.caller, S, w.webhook_id),
    ),
    "identities.get_identity": (
        Permission.READ_IDENTITIES,
        lambda w: identities.get_identity(w.svc, w.caller, S, "agent:bot"),
    ),
    "identities.list_identities": (
        Permission.READ_IDENTITIES,
        lambda w: identities.list_identities(w.svc, w.caller, S),
    ),
    "identities.create_identity": (
        Permission.MANAGE_IDENTITIES,
        lambda w: identities.create_identity(
            w.svc, w.caller, S, "agent", f"a{next(w.n)}", owners=["human:alice"]
        ),
    ),
    "identities.update_identity": (
        Permission.MANAGE_IDENTITIES,
        lambda w: identities.update_identity(
            w.svc, w.caller, S, "agent:bot", display_name=f"Bot {next(w.n)}"
        ),
    ),
    "identities.set_identity_owners": (
        Permission.MANAGE_IDENTITIES,
        lambda w: identities.set_identity_owners(
            w.svc, w.caller, S, "agent:bot", add=[f"human:o{next(w.n)}"]
        ),
    ),
    "identities.suspend_identity": (
        Permission.MANAGE_IDENTITIES,
        lambda w: identities.suspend_identity(w.svc, w.caller, S, _fresh_agent(w)),
    ),
    "identities.reactivate_identity": (
        Permission.MANAGE_IDENTITIES,
        lambda w: identities.reactivate_identity(
            w.svc,
            w.caller,
            S,
            identities.suspend_identity(w.svc, SYSTEM, S, _fresh_agent(w)).node,
        ),
    ),
    "identities.deprovision_identity": (
        Permission.MANAGE_IDENTITIES,
        lambda w: identities.deprovision_identity(w.svc, w.caller, S, _fresh_agent(w)),
    ),
    "delegations.get_delegation": (
        Permission.READ_IDENTITIES,
        lambda w: delegations.get_delegation(w.svc, w.caller, S, _fresh_delegation(w)),
    ),
    "delegations.list_delegations": (
        Permission.READ_IDENTITIES,
        lambda w: delegations.list_delegations(w.svc, w.caller, S),
    ),
    "delegations.create_delegation": (
        Permission.MANAGE_DELEGATIONS,
        lambda w: delegations.create_delegation(
            w.svc,
            w.caller,
            S,
            delegator="human:alice",
            delegate="agent:bot",
            scope=_SCOPE,
            expires_at=w.svc.clock.now() + 3600,
        ),
    ),
    "delegations.revoke_delegation": (
        Permission.MANAGE_DELEGATIONS,
        lambda w: delegations.revoke_delegation(w.svc, w.caller, S, _fresh_delegation(w)),
    ),
    "policies.get_store_policy": (
        Permission.READ_IDENTITIES,
        lambda w: policies.get_store_policy(w.svc, w.caller, S),
    ),
    "policies.update_store_policy": (
        Permission.MANAGE_POLICY,
        lambda w: policies.update_store_policy(
            w.svc, w.caller, S, max_delegation_seconds=3600 + next(w.n)
        ),
    ),
    "guardrails.get_guardrails": (
        Permission.READ_IDENTITIES,
        lambda w: guardrails.get_guardrails(w.svc, w.caller, S),
    ),
    "guardrails.list_guardrail_versions": (
        Permission.READ_IDENTITIES,
        lambda w: guardrails.list_guardrail_versions(w.svc, w.caller, S),
    ),
    # needs can_query and can_read_ledger: every role with the second has the first
    "guardrails.dry_run_guardrails": (
        Permission.READ_LEDGER,
        lambda w: guardrails.dry_run_guardrails(w.svc, w.caller, S, [_GUARDRAIL]),
    ),
    "guardrails.put_guardrails": (
        Permission.MANAGE_POLICY,
        lambda w: guardrails.put_guardrails(w.svc, w.caller, S, [_GUARDRAIL]),
    ),
    "signing_keys.list_signing_keys": (
        Permission.READ_IDENTITIES,
        lambda w: signing_keys.list_signing_keys(w.svc, w.caller, S),
    ),
    "signing_keys.rotate_signing_key": (
        Permission.MANAGE_POLICY,
        lambda w: signing_keys.rotate_signing_key(w.svc, w.caller, S),
    ),
    "credentials.create_credential": (
        Permission.MANAGE_CREDENTIALS,
        lambda w: credentials.create_credential(w.svc, w.caller, S, "agent:bot"),
    ),
    "credentials.list_credentials": (
        Permission.READ_IDENTITIES,
        lambda w: credentials.list_credentials(w.svc, w.caller, S),
    ),
    "credentials.get_credential": (
        Permission.READ_IDENTITIES,
        lambda w: credentials.get_credential(w.svc, w.caller, S, _fresh_credential(w)),
    ),
    "credentials.rotate_credential": (
        Permission.MANAGE_CREDENTIALS,
        lambda w: credentials.rotate_credential(w.svc, w.caller, S, _fresh_credential(w)),
    ),
    "credentials.revoke_credential": (
        Permission.MANAGE_CREDENTIALS,
        lambda w: credentials.revoke_credential(w.svc, w.caller, S, _fresh_credential(w)),
    ),
    # a token that does not verify: inactive / nothing revoked, once authorized
    "token_admin.introspect_token": (
        Permission.READ_IDENTITIES,
        lambda w: token_admin.introspect_token(w.svc, w.caller, S, "not.a.token"),
    ),
    "token_admin.revoke_token": (
        Permission.MANAGE_CREDENTIALS,
        lambda w: token_admin.revoke_token(w.svc, w.caller, S, "not.a.token"),
    ),
    "tokens.revoke_token_id": (
        Permission.MANAGE_CREDENTIALS,
        lambda w: tokens.revoke_token_id(w.svc, w.caller, S, f"jti-{next(w.n)}"),
    ),
    "entitlements.create_entitlement": (
        Permission.MANAGE_ENTITLEMENTS,
        lambda w: entitlements.create_entitlement(
            w.svc,
            w.caller,
            S,
            f"c{next(w.n)}",
            object="document:plan",
            relation="viewer",
            owners=["human:alice"],
        ),
    ),
    "entitlements.list_entitlements": (
        Permission.READ_IDENTITIES,
        lambda w: entitlements.list_entitlements(w.svc, w.caller, S),
    ),
    "entitlements.get_entitlement": (
        Permission.READ_IDENTITIES,
        lambda w: entitlements.get_entitlement(w.svc, w.caller, S, _fresh_entitlement(w)),
    ),
    "entitlements.update_entitlement": (
        Permission.MANAGE_ENTITLEMENTS,
        lambda w: entitlements.update_entitlement(
            w.svc, w.caller, S, _fresh_entitlement(w), description="changed"
        ),
    ),
    "entitlements.delete_entitlement": (
        Permission.MANAGE_ENTITLEMENTS,
        lambda w: entitlements.delete_entitlement(w.svc, w.caller, S, _fresh_entitlement(w)),
    ),
    "access_requests.create_access_request": (
        Permission.REQUEST_ACCESS,
        lambda w: access_requests.create_access_request(
            w.svc, w.caller, S, _fresh_entitlement(w), requester="agent:bot"
        ),
    ),
    "access_requests.list_access_requests": (
        Permission.READ_IDENTITIES,
        lambda w: access_requests.list_access_requests(w.svc, w.caller, S),
    ),
    "access_requests.get_access_request": (
        Permission.READ_IDENTITIES,
        lambda w: access_requests.get_access_request(w.svc, w.caller, S, _fresh_request(w)),
    ),
    "access_requests.get_access_request_history": (
        Permission.READ_IDENTITIES,
        lambda w: access_requests.get_access_request_history(w.svc, w.caller, S, _fresh_request(w)),
    ),
    "access_requests.cancel_access_request": (
        Permission.REQUEST_ACCESS,
        lambda w: access_requests.cancel_access_request(
            w.svc, w.caller, S, _fresh_request(w), requester="agent:bot"
        ),
    ),
    "access_requests.approve_access_request": (
        Permission.APPROVE_REQUESTS,
        lambda w: access_requests.approve_access_request(
            w.svc, w.caller, S, _fresh_request(w), approver="human:alice"
        ),
    ),
    "access_requests.deny_access_request": (
        Permission.APPROVE_REQUESTS,
        lambda w: access_requests.deny_access_request(
            w.svc, w.caller, S, _fresh_request(w), approver="human:alice"
        ),
    ),
    "access_requests.revoke_access_request": (
        Permission.APPROVE_REQUESTS,
        lambda w: access_requests.revoke_access_request(
            w.svc, w.caller, S, _fresh_request(w, active=True), reason="done"
        ),
    ),
    "reviews.create_review": (
        Permission.MANAGE_REVIEWS,
        lambda w: reviews.create_review(w.svc, w.caller, S, name=f"r{next(w.n)}"),
    ),
    "reviews.get_review": (
        Permission.READ_IDENTITIES,
        lambda w: reviews.get_review(w.svc, w.caller, S, _fresh_review(w)),
    ),
    "reviews.list_reviews": (
        Permission.READ_IDENTITIES,
        lambda w: reviews.list_reviews(w.svc, w.caller, S),
    ),
    "reviews.list_review_items": (
        Permission.READ_IDENTITIES,
        lambda w: reviews.list_review_items(w.svc, w.caller, S, _fresh_review(w)),
    ),
    "reviews.review_report": (
        Permission.READ_IDENTITIES,
        lambda w: reviews.review_report(w.svc, w.caller, S, _fresh_review(w)),
    ),
    "reviews.decide_review_item": (
        Permission.MANAGE_REVIEWS,
        lambda w: reviews.decide_review_item(
            w.svc, w.caller, S, _fresh_review(w), 1, "certify", reviewer="human:alice"
        ),
    ),
    "reviews.close_review": (
        Permission.MANAGE_REVIEWS,
        lambda w: reviews.close_review(w.svc, w.caller, S, _fresh_review(w)),
    ),
    "effective.effective_access": (
        Permission.QUERY,
        lambda w: effective.effective_access(w.svc, w.caller, S, "user:anne"),
    ),
    "effective.who_can_access": (
        Permission.QUERY,
        lambda w: effective.who_can_access(w.svc, w.caller, S, "document:plan"),
    ),
    "privilege.over_privilege": (
        Permission.READ_POSTURE,
        lambda w: privilege.over_privilege(w.svc, w.caller, S, "agent:bot"),
    ),
    "privilege.agents_exceeding_owners": (
        Permission.READ_POSTURE,
        lambda w: privilege.agents_exceeding_owners(w.svc, w.caller, S),
    ),
    "posture.nhi_inventory": (
        Permission.READ_POSTURE,
        lambda w: posture.nhi_inventory(w.svc, w.caller, S),
    ),
    "posture.posture_report": (
        Permission.READ_POSTURE,
        lambda w: posture.posture_report(w.svc, w.caller, S),
    ),
    "gateway_usage.tool_usage": (
        Permission.READ_POSTURE,
        lambda w: gateway_usage.tool_usage(w.svc, w.caller, S),
    ),
    # mode="review" needs can_manage_reviews (and can_read_posture, which every holder of
    # the first has); mode="revoke" needs can_write_tuples instead (tests/posture_surfaces)
    "privilege.apply_privilege_recommendation": (
        Permission.MANAGE_REVIEWS,
        lambda w: privilege.apply_privilege_recommendation(
            w.svc, w.caller, S, _fresh_granted_agent(w), mode="review", reviewer="human:alice"
        ),
    ),
    "gateway.list_servers": (
        Permission.READ_GATEWAY,
        lambda w: gateway.list_servers(w.svc, w.caller, S),
    ),
    "gateway.get_server": (
        Permission.READ_GATEWAY,
        lambda w: gateway.get_server(w.svc, w.caller, S, _fresh_server(w)),
    ),
    "gateway.list_tools": (
        Permission.READ_GATEWAY,
        lambda w: gateway.list_tools(w.svc, w.caller, S),
    ),
    "gateway.get_tool": (
        Permission.READ_GATEWAY,
        lambda w: gateway.get_tool(w.svc, w.caller, S, *_gateway_tool(w)),
    ),
    "gateway.list_toolsets": (
        Permission.READ_GATEWAY,
        lambda w: gateway.list_toolsets(w.svc, w.caller, S),
    ),
    "gateway.get_gateway_settings": (
        Permission.READ_GATEWAY,
        lambda w: gateway.get_gateway_settings(w.svc, w.caller, S),
    ),
    "gateway.register_server": (
        Permission.MANAGE_GATEWAY,
        lambda w: gateway.register_server(
            w.svc,
            w.caller,
            S,
            f"new{next(w.n)}",
            transport="http",
            url=_UNREACHABLE,
            discover=False,
        ),
    ),
    "gateway.update_server": (
        Permission.MANAGE_GATEWAY,
        lambda w: gateway.update_server(
            w.svc, w.caller, S, _fresh_server(w), description="changed"
        ),
    ),
    "gateway.discover_tools": (
        Permission.MANAGE_GATEWAY,
        lambda w: gateway.discover_tools(w.svc, w.caller, S, _fresh_server(w)),
    ),
    "gateway.update_tool": (
        Permission.MANAGE_GATEWAY,
        lambda w: gateway.update_tool(w.svc, w.caller, S, *_gateway_tool(w), status="enabled"),
    ),
    "gateway.put_toolset": (
        Permission.MANAGE_GATEWAY,
        lambda w: gateway.put_toolset(
            w.svc, w.caller, S, f"ts{next(w.n)}", ["/".join(_gateway_tool(w))]
        ),
    ),
    "gateway.set_kill_switch": (
        Permission.MANAGE_GATEWAY,
        lambda w: gateway.set_kill_switch(
            w.svc, w.caller, S, level="agent", target="agent:bot", engaged=True
        ),
    ),
    "gateway.update_gateway_settings": (
        Permission.MANAGE_GATEWAY,
        lambda w: gateway.update_gateway_settings(
            w.svc, w.caller, S, record_arguments=bool(next(w.n) % 2)
        ),
    ),
    "gateway.delete_toolset": (
        Permission.MANAGE_GATEWAY,
        lambda w: gateway.delete_toolset(w.svc, w.caller, S, _fresh_toolset(w)),
    ),
    "gateway.delete_server": (
        Permission.MANAGE_GATEWAY,
        lambda w: gateway.delete_server(w.svc, w.caller, S, _fresh_server(w)),
    ),
    # SCIM 2.0 (issue 10): the identity provider's key (provisioner:<store>) and admins
    "scim.scim_create": (
        Permission.PROVISION,
        lambda w: scim_svc.scim_create(
            w.svc, w.caller, S, "User", {"userName": f"u{next(w.n)}@example.com"}, base_url=_SCIM
        ),
    ),
    "scim.scim_get": (
        Permission.PROVISION,
        lambda w: scim_svc.scim_get(
            w.svc, w.caller, S, "User", _fresh_scim_user(w), base_url=_SCIM
        ),
    ),
    "scim.scim_list": (
        Permission.PROVISION,
        lambda w: scim_svc.scim_list(w.svc, w.caller, S, "User", base_url=_SCIM),
    ),
    "scim.scim_replace": (
        Permission.PROVISION,
        lambda w: scim_svc.scim_replace(
            w.svc,
            w.caller,
            S,
            "User",
            _fresh_scim_user(w),
            {"userName": f"r{next(w.n)}"},
            base_url=_SCIM,
        ),
    ),
    "scim.scim_patch": (
        Permission.PROVISION,
        lambda w: scim_svc.scim_patch(
            w.svc,
            w.caller,
            S,
            "User",
            _fresh_scim_user(w),
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Engineer"}],
            },
            base_url=_SCIM,
        ),
    ),
    "scim.scim_delete": (
        Permission.PROVISION,
        lambda w: scim_svc.scim_delete(w.svc, w.caller, S, "User", _fresh_scim_user(w)),
    ),
    # identity source imports (issue 10), with the test-only importer `demo`
    "imports.import_source": (
        Permission.IMPORT_SOURCES,
        lambda w: imports.import_source(
            w.svc, w.caller, S, "demo", {"org": f"o{next(w.n)}", "users": [{"login": "zed"}]}
        ),
    ),
    "imports.list_imports": (
        Permission.READ_IDENTITIES,
        lambda w: imports.list_imports(w.svc, w.caller, S),
    ),
    "stores.delete_store": (
        Permission.DELETE_STORE,
        lambda w: stores.delete_store(w.svc, w.caller, S),
    ),
}


def test_every_permission_has_a_row() -> None:
    assert set(ALLOWED) == set(PERMISSIONS), (
        "a Permission was added or removed: give it a row in ALLOWED (who may use it)"
    )
    for roles in ALLOWED.values():
        assert roles <= set(ROLES)
    assert {perm for perm, _ in OPERATIONS.values()} == set(PERMISSIONS), (
        "every permission must be exercised by at least one operation"
    )


def _service_operations() -> set[str]:
    """Every ``fn(svc, caller, …)`` exported by a ``keyplane.service`` module."""
    found: set[str] = set()
    for info in pkgutil.iter_modules(keyplane.service.__path__):
        mod = importlib.import_module(f"keyplane.service.{info.name}")
        for name in getattr(mod, "__all__", ()):
            fn = getattr(mod, name)
            if not inspect.isfunction(fn):
                continue
            params = list(inspect.signature(fn).parameters)
            if params[:2] == ["svc", "caller"]:
                found.add(f"{info.name}.{name}")
    return found


#: functions shaped like operations that are not operations: the authorization decision itself
NOT_OPERATIONS = {
    "auth.authorize": "raises unless the caller holds a permission: the check, not an operation",
    "system.allowed": "the system model's decision behind authorize",
    "decisions.evaluate_unrecorded": (
        "the gateway's decision: it records the event itself, with the arguments redacted"
    ),
}


def test_every_service_operation_is_in_the_matrix() -> None:
    missing = _service_operations() - set(OPERATIONS) - set(NOT_OPERATIONS)
    assert not missing, f"add these operations to OPERATIONS (and so to the matrix): {missing}"
    assert set(OPERATIONS) <= _service_operations()


def _world(svc: Services, roles: tuple[str, ...]) -> World:
    for sid in (S, O):
        stores.create_store(svc, SYSTEM, sid, store_id=sid)
        models.write_model(svc, SYSTEM, sid, MODEL)
        tuples.write_tuples(svc, SYSTEM, sid, writes=["document:plan#viewer@user:anne"])
    identities.create_identity(svc, SYSTEM, S, "human", "alice")
    identities.create_identity(svc, SYSTEM, S, "agent", "bot", owners=["human:alice"])
    _, secret = create_key(svc, SYSTEM, owner="subject", roles=roles)
    victim, _ = create_key(svc, SYSTEM, owner="victim", roles=[f"reader:{S}"])
    decision = access.check(svc, SYSTEM, S, "user:anne", "viewer", "document:plan")
    hook, _ = ledger_admin.create_webhook(svc, SYSTEM, S, "https://siem.example/hook")
    return World(
        svc, authenticate(svc, secret), victim.id, itertools.count(), decision.decision_id, hook.id
    )


@pytest.mark.parametrize("role", list(ROLES))
def test_role_can_do_exactly_its_operations(svc: Services, role: str) -> None:
    world = _world(svc, ROLES[role])
    wrong: list[str] = []
    for name, (permission, call) in OPERATIONS.items():
        expected = role in ALLOWED[permission]
        try:
            call(world)
            got = True
        except PermissionDeniedError:
            got = False
        if got != expected:
            wrong.append(
                f"{name} ({permission}): expected {'allow' if expected else 'deny'}, "
                f"got {'allow' if got else 'deny'}"
            )
    assert not wrong, f"role {role!r}:\n  " + "\n  ".join(wrong)


def test_read_only_callers_are_refused_every_write(svc: Services) -> None:
    world = _world(svc, ("admin",))
    world.caller = world.caller.with_read_only()
    for permission, call in OPERATIONS.values():
        writes = permission in {
            Permission.CREATE_STORE,
            Permission.MANAGE_KEYS,
            Permission.WRITE_TUPLES,
            Permission.WRITE_MODEL,
            Permission.DELETE_STORE,
            Permission.MANAGE_LEDGER,
            Permission.MANAGE_IDENTITIES,
            Permission.MANAGE_DELEGATIONS,
            Permission.MANAGE_POLICY,
            Permission.MANAGE_CREDENTIALS,
            Permission.MANAGE_ENTITLEMENTS,
            Permission.REQUEST_ACCESS,
            Permission.APPROVE_REQUESTS,
            Permission.MANAGE_REVIEWS,
            Permission.MANAGE_GATEWAY,
            Permission.PROVISION,  # SCIM reads too: the provisioning protocol is a write role
            Permission.IMPORT_SOURCES,
        }
        if writes:
            with pytest.raises(PermissionDeniedError):
                call(world)
        else:
            call(world)

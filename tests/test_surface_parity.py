"""Surface parity: every service operation is on REST, the SDK, the CLI and MCP — or is
listed here with the reason it is not. Adding a service function without exposing it (or
saying why) fails this test."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main

import keyplane.service as service_pkg
from keyplane.api import create_app
from keyplane.cli.main import app as cli_app
from keyplane.config import Settings
from keyplane.mcp import NOT_EXPOSED, SERVICE_OF_TOOL
from keyplane.sdk import AsyncClient, Client
from keyplane.service.context import Services

# Functions shaped fn(svc, caller, ...) that are not operations callers invoke.
INTERNAL = {
    "auth.authorize": "the authorization step every operation runs first",
    "system.allowed": "the system model's decision, used by authorize",
    "decisions.evaluate_unrecorded": (
        "the gateway's decision: it records the event itself, with the arguments redacted"
    ),
}

_SCIM_WHY = (
    "SCIM is the identity provider's protocol; people and agents use the identity operations"
)

# operation -> CLI command (None: not on the CLI, with the reason in CLI_WHY)
CLI = {
    "stores.create_store": "store create",
    "stores.get_store": "store get",
    "stores.list_stores": "store list",
    "stores.delete_store": "store delete",
    "models.write_model": "model write",
    "models.read_model": "model get",
    "models.list_models": "model list",
    "tuples.write_tuples": "tuple write",
    "tuples.read_tuples": "tuple read",
    "tuples.read_changes": "tuple changes",
    "tuples.gc_expired": "tuple gc",
    "access.check": "check",
    "access.batch_check": None,
    "access.expand": "expand",
    "access.list_objects": "list-objects",
    "access.list_users": "list-users",
    "access.explain": "explain",
    "keys.create_key": "key create",
    "keys.list_keys": "key list",
    "keys.get_key": "key get",
    "keys.rotate_key": "key rotate",
    "keys.revoke_key": "key revoke",
    "observability.graph_stats": None,
    "ledger.query_events": "ledger events",
    "ledger.get_decision": "ledger show",
    "ledger.export_events": "ledger export",
    "ledger.verify_ledger": "ledger verify",
    "ledger.ledger_public_keys": "ledger keys",
    "ledger_admin.set_ledger_retention": "ledger retention",
    "ledger_admin.prune_ledger": "ledger prune",
    "ledger_admin.create_webhook": "ledger webhook create",
    "ledger_admin.list_webhooks": "ledger webhook list",
    "ledger_admin.delete_webhook": "ledger webhook delete",
    "identities.create_identity": "identity create",
    "identities.get_identity": "identity get",
    "identities.list_identities": "identity list",
    "identities.update_identity": "identity update",
    "identities.set_identity_owners": "identity owners",
    "identities.suspend_identity": "identity suspend",
    "identities.reactivate_identity": "identity reactivate",
    "identities.deprovision_identity": "identity deprovision",
    "delegations.create_delegation": "delegation create",
    "delegations.get_delegation": "delegation get",
    "delegations.list_delegations": "delegation list",
    "delegations.revoke_delegation": "delegation revoke",
    "policies.get_store_policy": "policy get",
    "policies.update_store_policy": "policy set",
    "guardrails.put_guardrails": "guardrails put",
    "guardrails.get_guardrails": "guardrails get",
    "guardrails.list_guardrail_versions": "guardrails versions",
    "guardrails.dry_run_guardrails": "guardrails dry-run",
    "decisions.decide": "decide",
    "decisions.decide_batch": None,
    "signing_keys.list_signing_keys": "signing-key list",
    "signing_keys.rotate_signing_key": "signing-key rotate",
    "credentials.create_credential": "credential create",
    "credentials.list_credentials": "credential list",
    "credentials.get_credential": "credential get",
    "credentials.rotate_credential": "credential rotate",
    "credentials.revoke_credential": "credential revoke",
    "token_admin.introspect_token": "token introspect",
    "token_admin.revoke_token": "token revoke",
    "tokens.revoke_token_id": "token revoke",
    "entitlements.create_entitlement": "entitlement create",
    "entitlements.list_entitlements": "entitlement list",
    "entitlements.get_entitlement": "entitlement get",
    "entitlements.update_entitlement": "entitlement update",
    "entitlements.delete_entitlement": "entitlement delete",
    "access_requests.create_access_request": "request create",
    "access_requests.list_access_requests": "request list",
    "access_requests.get_access_request": "request get",
    "access_requests.get_access_request_history": "request history",
    "access_requests.approve_access_request": "request approve",
    "access_requests.deny_access_request": "request deny",
    "access_requests.cancel_access_request": "request cancel",
    "access_requests.revoke_access_request": "request revoke",
    "reviews.create_review": "review create",
    "reviews.list_reviews": "review list",
    "reviews.get_review": "review get",
    "reviews.list_review_items": "review items",
    "reviews.decide_review_item": "review decide",
    "reviews.close_review": "review close",
    "reviews.review_report": "review report",
    "effective.effective_access": "access effective",
    "effective.who_can_access": "access holders",
    "privilege.over_privilege": "posture over-privilege",
    "privilege.apply_privilege_recommendation": "posture apply",
    "privilege.agents_exceeding_owners": "posture exceeding",
    "posture.nhi_inventory": "posture inventory",
    "posture.posture_report": "posture report",
    "gateway_usage.tool_usage": "posture tools",
    "gateway.register_server": "gateway server add",
    "gateway.update_server": "gateway server update",
    "gateway.get_server": "gateway server get",
    "gateway.list_servers": "gateway server list",
    "gateway.delete_server": "gateway server delete",
    "gateway.discover_tools": "gateway server discover",
    "gateway.list_tools": "gateway tool list",
    "gateway.get_tool": "gateway tool get",
    "gateway.update_tool": "gateway tool approve",  # and disable, enable, classify
    "gateway.put_toolset": "gateway toolset put",
    "gateway.list_toolsets": "gateway toolset list",
    "gateway.delete_toolset": "gateway toolset delete",
    "gateway.set_kill_switch": "gateway kill",
    "gateway.get_gateway_settings": "gateway settings get",
    "gateway.update_gateway_settings": "gateway settings set",
    "scim.scim_create": None,
    "scim.scim_get": None,
    "scim.scim_replace": None,
    "scim.scim_patch": None,
    "scim.scim_delete": None,
    "scim.scim_list": None,
    "imports.import_source": "import aws",  # and kubernetes, github, source
    "imports.list_imports": "import list",
}
CLI_WHY = {
    "access.batch_check": "a shell loops over `keyplane check`; batches are for programs (SDK, REST)",
    "observability.graph_stats": "an operator reads it from /metrics (Prometheus)",
    "decisions.decide_batch": "a shell loops over `keyplane decide`; batches are for programs (SDK, REST, MCP)",
    "scim.scim_create": _SCIM_WHY,
    "scim.scim_get": _SCIM_WHY,
    "scim.scim_replace": _SCIM_WHY,
    "scim.scim_patch": _SCIM_WHY,
    "scim.scim_delete": _SCIM_WHY,
    "scim.scim_list": _SCIM_WHY,
}

# operation -> REST operation id, where it differs from the function name
REST_ID = {"observability.graph_stats": "metrics", "tokens.revoke_token_id": "revoke_token"}
# operation -> SDK method, where it differs; None = not in the SDK
SDK = {
    "observability.graph_stats": None,
    "tokens.revoke_token_id": "revoke_token",
    "scim.scim_create": None,
    "scim.scim_get": None,
    "scim.scim_replace": None,
    "scim.scim_patch": None,
    "scim.scim_delete": None,
    "scim.scim_list": None,
}
SDK_WHY = {
    "observability.graph_stats": "scraped from /metrics by Prometheus, not called",
    "scim.scim_create": _SCIM_WHY,
    "scim.scim_get": _SCIM_WHY,
    "scim.scim_replace": _SCIM_WHY,
    "scim.scim_patch": _SCIM_WHY,
    "scim.scim_delete": _SCIM_WHY,
    "scim.scim_list": _SCIM_WHY,
}
# operation -> the operation whose surfaces also serve it (the same route, method, command
# and tool, with other arguments): revoking by jti is revoke_token({"jti": …})
VIA = {"tokens.revoke_token_id": "token_admin.revoke_token"}


def _operations() -> Iterator[str]:
    for info in pkgutil.iter_modules(service_pkg.__path__):
        mod = importlib.import_module(f"keyplane.service.{info.name}")
        for name, fn in vars(mod).items():
            if (
                inspect.isfunction(fn)
                and fn.__module__ == mod.__name__
                and not name.startswith("_")
            ):
                params = list(inspect.signature(fn).parameters)
                if params[:2] == ["svc", "caller"]:
                    op = f"{info.name}.{name}"
                    if op not in INTERNAL:
                        yield op


OPERATIONS = sorted(_operations())


@pytest.fixture(scope="module")
def rest_ids(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    db = tmp_path_factory.mktemp("parity") / "kp.db"
    svc = Services.open(Settings(database_url=f"sqlite:///{db}", poll_interval=0.0))
    try:
        spec = create_app(svc).openapi()
    finally:
        svc.close()
    return {
        op["operationId"]
        for path in spec["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }


def _cli_commands() -> set[str]:
    found: set[str] = set()

    def walk(group: object, prefix: str) -> None:
        for name, cmd in group.commands.items():  # type: ignore[attr-defined]
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix}{name} ")
            else:
                found.add(f"{prefix}{name}")

    walk(typer.main.get_command(cli_app), "")
    return found


def test_operations_were_found() -> None:
    assert len(OPERATIONS) >= 20
    assert set(CLI) == set(OPERATIONS), "update the CLI table for new or removed operations"


@pytest.mark.parametrize("op", OPERATIONS)
def test_on_rest(op: str, rest_ids: set[str]) -> None:
    assert REST_ID.get(op, op.split(".")[1]) in rest_ids


@pytest.mark.parametrize("op", OPERATIONS)
def test_on_sdk(op: str) -> None:
    method = SDK.get(op, op.split(".")[1])
    if method is None:
        assert SDK_WHY.get(op)
        return
    assert callable(getattr(Client, method, None)), f"Client.{method} missing"
    assert callable(getattr(AsyncClient, method, None)), f"AsyncClient.{method} missing"


@pytest.mark.parametrize("op", OPERATIONS)
def test_on_cli(op: str) -> None:
    command = CLI[op]
    if command is None:
        assert CLI_WHY.get(op)
        return
    assert command in _cli_commands()


@pytest.mark.parametrize("op", OPERATIONS)
def test_on_mcp(op: str) -> None:
    exposed = {
        f"{fn.__module__.rsplit('.', 1)[1]}.{fn.__name__}" for fn in SERVICE_OF_TOOL.values()
    }
    area = op.split(".")[0]
    op = VIA.get(op, op)
    assert op in exposed or op in NOT_EXPOSED or f"{area}.*" in NOT_EXPOSED, (
        f"{op} is neither an MCP tool nor listed in keyplane.mcp.NOT_EXPOSED with a reason"
    )


def test_parity_table_is_documented() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "surfaces.md").read_text()
    for op in OPERATIONS:
        assert f"`{op}`" in text, f"{op} missing from docs/surfaces.md"

"""Ledger events as OCSF events (Open Cybersecurity Schema Framework, schema 1.1.0).

A SIEM that speaks OCSF (Amazon Security Lake, Splunk, Sentinel, …) ingests the export of
``export_events(format="ocsf")`` without a custom parser. Each event type maps to the
closest OCSF class (:data:`OCSF_CLASSES`; the table is in ``docs/ledger.md``, "OCSF
mapping", and a test keeps both complete):

* decisions (``decision.*``) → **API Activity** (class 6003, category 6 Application
  Activity), activity *Read* (2): a decision reads the authorization state and changes
  nothing. The verdict is ``actor.authorizations[0].decision`` (``Allow``/``Deny``) with the
  model as its ``policy``; ``status_id`` says whether the call itself succeeded (an
  engine error is *Failure*).
* store, model and graph changes → **Entity Management** (3004): Create/Update/Delete of
  the managed ``entity`` (a store, a model version, the store's relationship graph).
* API key changes → **Account Change** (3001): Create, Password Change (a rotated secret),
  Disable (revoked).
* refused API keys (``auth.failed``) → **Authentication** (3002), activity *Logon* (1),
  status *Failure* with the reason as ``status_code``; the key id (never the secret) is the
  ``user``, the client address ``src_endpoint.ip``, and a coalesced event's number of
  refusals is OCSF's ``count`` (with ``start_time``/``end_time`` for the window).
* a type without a row of its own takes its family's class (:data:`OCSF_FAMILIES`, e.g.
  any ``decision.*`` is API Activity); anything else → **Base Event** (class 0), activity
  *Other* (99) — never dropped.

Nothing Keyplane knows is lost in the mapping: ``unmapped.keyplane`` carries the event's
own fields verbatim, including ``seq``, ``prev_hash`` and ``hash`` — an OCSF record can be
matched, by id and hash, to the verifiable JSON Lines export of the same ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent

__all__ = ["OCSF_CLASSES", "OCSF_FAMILIES", "OCSF_VERSION", "OcsfClass", "ocsf_class", "to_ocsf"]

OCSF_VERSION = "1.1.0"


@dataclass(frozen=True, slots=True)
class OcsfClass:
    """Where one event type lands in OCSF."""

    class_uid: int
    class_name: str
    category_uid: int
    category_name: str
    activity_id: int
    activity_name: str
    #: for Entity Management: the kind of entity the event manages
    entity_type: str | None = None

    @property
    def type_uid(self) -> int:
        return self.class_uid * 100 + self.activity_id


def _api(activity: str = "Read") -> OcsfClass:
    ids = {"Read": 2, "Other": 99}
    return OcsfClass(6003, "API Activity", 6, "Application Activity", ids[activity], activity)


def _entity(activity: str, entity_type: str) -> OcsfClass:
    ids = {"Create": 1, "Read": 2, "Update": 3, "Delete": 4}
    return OcsfClass(
        3004,
        "Entity Management",
        3,
        "Identity & Access Management",
        ids[activity],
        activity,
        entity_type,
    )


def _account(activity: str) -> OcsfClass:
    ids = {"Create": 1, "Enable": 2, "Password Change": 3, "Disable": 5, "Delete": 6, "Other": 99}
    return OcsfClass(
        3001, "Account Change", 3, "Identity & Access Management", ids[activity], activity
    )


BASE_EVENT = OcsfClass(0, "Base Event", 0, "Uncategorized", 99, "Other")
AUTHENTICATION = OcsfClass(3002, "Authentication", 3, "Identity & Access Management", 1, "Logon")
#: an OAuth access token requested (issued, or refused: a deny is a Failure)
TOKEN_REQUEST = OcsfClass(
    3002, "Authentication", 3, "Identity & Access Management", 4, "Service Ticket Request"
)

#: event type → OCSF class and activity (types not listed map to :data:`BASE_EVENT`)
OCSF_CLASSES: dict[str, OcsfClass] = {
    "decision.check": _api(),
    "decision.batch_check": _api(),
    "decision.list_objects": _api(),
    "decision.list_users": _api(),
    "decision.effective_access": _api(),
    "decision.expand": _api(),
    "decision.explain": _api(),
    "decision.evaluate": _api(),
    "access.denied": _api(),
    "store.created": _entity("Create", "store"),
    "store.deleted": _entity("Delete", "store"),
    "model.written": _entity("Create", "authorization_model"),
    "tuples.written": _entity("Update", "relationship_graph"),
    "tuples.expired_removed": _entity("Delete", "relationship_tuples"),
    "key.created": _account("Create"),
    "key.rotated": _account("Password Change"),
    "key.revoked": _account("Disable"),
    "auth.failed": AUTHENTICATION,
    "ledger.pruned": _entity("Delete", "ledger_events"),
    "ledger.retention_set": _entity("Update", "ledger_retention"),
    "ledger.webhook_created": _entity("Create", "ledger_webhook"),
    "ledger.webhook_deleted": _entity("Delete", "ledger_webhook"),
    "identity.created": _account("Create"),
    "identity.updated": _account("Other"),
    "identity.owners_changed": _account("Other"),
    "identity.suspended": _account("Disable"),
    "identity.reactivated": _account("Enable"),
    "identity.deprovisioned": _account("Delete"),
    "identity.orphaned": _account("Other"),
    "delegation.created": _entity("Create", "delegation"),
    "delegation.revoked": _entity("Delete", "delegation"),
    "policy.updated": _entity("Update", "store_policy"),
    "guardrails.updated": _entity("Update", "guardrails"),
    "credential.created": _entity("Create", "client_credential"),
    "credential.rotated": _entity("Update", "client_credential"),
    "credential.revoked": _entity("Delete", "client_credential"),
    "credential.auth_failed": AUTHENTICATION,
    "signing_key.created": _entity("Create", "signing_key"),
    "signing_key.rotated": _entity("Update", "signing_key"),
    "token.issued": TOKEN_REQUEST,
    "token.refused": TOKEN_REQUEST,
    "token.revoked": _entity("Delete", "access_token"),
    "entitlement.created": _entity("Create", "entitlement"),
    "entitlement.updated": _entity("Update", "entitlement"),
    "entitlement.deleted": _entity("Delete", "entitlement"),
    "access_request.created": _entity("Create", "access_request"),
    "access_request.approval": _entity("Update", "access_request"),
    "access_request.approved": _entity("Update", "access_request"),
    "access_request.denied": _entity("Update", "access_request"),
    "access_request.cancelled": _entity("Update", "access_request"),
    "access_request.expired": _entity("Update", "access_request"),
    "access_request.activated": _entity("Update", "access_request"),
    "access_request.revoked": _entity("Update", "access_request"),
    "review.created": _entity("Create", "access_review"),
    "review.item_decided": _entity("Update", "access_review"),
    "review.item_applied": _entity("Update", "access_review"),
    "review.closed": _entity("Update", "access_review"),
    "privilege.applied": _entity("Update", "least_privilege"),
    "gateway.server_registered": _entity("Create", "mcp_server"),
    "gateway.server_updated": _entity("Update", "mcp_server"),
    "gateway.server_deleted": _entity("Delete", "mcp_server"),
    "gateway.tools_discovered": _entity("Update", "mcp_tool"),
    "gateway.tool_updated": _entity("Update", "mcp_tool"),
    "gateway.toolset_updated": _entity("Update", "toolset"),
    "gateway.toolset_deleted": _entity("Delete", "toolset"),
    "gateway.kill_switch": _entity("Update", "gateway_kill_switch"),
    "gateway.settings_updated": _entity("Update", "gateway_settings"),
    "scim.created": _entity("Create", "scim_resource"),
    "scim.replaced": _entity("Update", "scim_resource"),
    "scim.patched": _entity("Update", "scim_resource"),
    "scim.deleted": _entity("Delete", "scim_resource"),
    "source.imported": _entity("Update", "identity_source"),
    "gateway.tools_listed": _api(),
    "gateway.tool_call": _api(),
}


#: event type families → their class, for types without a row of their own
OCSF_FAMILIES: dict[str, OcsfClass] = {
    "decision.": _api(),
    "access.": _api(),
    "store.": _entity("Update", "store"),
    "model.": _entity("Update", "authorization_model"),
    "tuples.": _entity("Update", "relationship_graph"),
    "ledger.": _entity("Update", "ledger"),
    "key.": OcsfClass(3001, "Account Change", 3, "Identity & Access Management", 99, "Other"),
    "auth.": AUTHENTICATION,
}


def ocsf_class(event_type: str) -> OcsfClass:
    """The OCSF class of an event type: its row, else its family's, else Base Event."""
    cls = OCSF_CLASSES.get(event_type)
    if cls is not None:
        return cls
    family = event_type.partition(".")[0] + "."
    return OCSF_FAMILIES.get(family, BASE_EVENT)


def _keyplane_fields(e: LedgerEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "store": e.store,
        "type": e.type,
        "seq": e.seq,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
        "caller": e.caller,
        "subject": e.subject,
        "actor_chain": list(e.actor_chain),
        "purpose": e.purpose,
        "action": e.action,
        "resource": e.resource,
        "outcome": e.outcome,
        "reasons": list(e.reasons),
        "model_id": e.model_id,
        "policy_version": e.policy_version,
        "revision": e.revision,
        "request_id": e.request_id,
        "decision_id": e.decision_id,
        "details": dict(e.details),
    }


def _resource(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    kind, sep, _ = value.partition(":")
    out: dict[str, Any] = {"uid": value, "name": value}
    if sep:
        out["type"] = kind
    return out


def to_ocsf(e: LedgerEvent, *, product_version: str = "") -> dict[str, Any]:
    """One ledger event as one OCSF event (a JSON-ready dict)."""
    cls = ocsf_class(e.type)
    # an authentication that was refused failed; elsewhere a deny is a successful answer
    failed = e.outcome == "error" or (cls.class_uid == 3002 and e.outcome == "deny")
    out: dict[str, Any] = {
        "class_uid": cls.class_uid,
        "class_name": cls.class_name,
        "category_uid": cls.category_uid,
        "category_name": cls.category_name,
        "activity_id": cls.activity_id,
        "activity_name": cls.activity_name,
        "type_uid": cls.type_uid,
        "type_name": f"{cls.class_name}: {cls.activity_name}",
        "time": round(e.time * 1000),  # OCSF timestamps are epoch milliseconds
        "severity_id": 1,
        "severity": "Informational",
        "status_id": 2 if failed else 1,
        "status": "Failure" if failed else "Success",
        "metadata": {
            "version": OCSF_VERSION,
            "uid": e.id,
            "log_name": f"keyplane-ledger/{e.store}",
            "correlation_uid": e.request_id,
            "product": {
                "name": "Keyplane",
                "vendor_name": "Keyplane",
                "version": product_version,
                "feature": {"name": "ledger"},
            },
        },
        "actor": {
            "user": {"uid": e.caller, "name": e.caller},
        },
        "unmapped": {"keyplane": _keyplane_fields(e)},
    }
    if e.actor_chain:
        out["actor"]["invoked_by"] = " > ".join(e.actor_chain)
    if failed and e.reasons:
        out["status_code"] = e.reasons[0]
        out["status_detail"] = ", ".join(e.reasons)
    if cls.class_uid == 6003:
        _api_fields(out, e)
    elif cls.class_uid == 3004:
        _entity_fields(out, e, cls)
    elif cls.class_uid == 3002:
        _authentication_fields(out, e)
    elif cls.class_uid == 3001:
        kind = "Identity" if e.type.startswith("identity.") else "API key"
        out["user"] = {"uid": e.resource or e.subject or "", "type": kind}
    out["message"] = _message(e)
    return out


def _api_fields(out: dict[str, Any], e: LedgerEvent) -> None:
    operation = e.type.partition(".")[2]
    out["api"] = {
        "operation": operation,
        "service": {"name": "keyplane"},
        "request": {"uid": e.request_id or e.id},
    }
    out["src_endpoint"] = {}  # required by the class; Keyplane does not record addresses
    resources = [r for r in (_resource(e.resource),) if r is not None]
    if resources:
        out["resources"] = resources
    if e.outcome in ("allow", "deny"):
        out["actor"]["authorizations"] = [
            {
                "decision": "Allow" if e.outcome == "allow" else "Deny",
                "policy": {
                    "uid": e.model_id or "",
                    "name": "authorization model",
                    "version": e.policy_version or "",
                },
            }
        ]
    if e.subject:
        # the user the question was about (the caller asked on their behalf)
        out["api"]["request"]["data"] = {"subject": e.subject, "relation": e.action}


def _authentication_fields(out: dict[str, Any], e: LedgerEvent) -> None:
    details: Mapping[str, Any] = e.details or {}
    token = e.type.startswith("token.")
    client = token or e.type.startswith("credential.")
    kind = "OAuth client" if client else "API key"
    # a token event's subject is the token's (maybe a person): the client is its caller
    who = e.caller if token else e.subject
    out["user"] = {"uid": who or "", "name": who or "unknown", "type": kind}
    if token:
        out["auth_protocol"] = "OAuth 2.0 token endpoint"
    else:
        out["auth_protocol"] = "OAuth client authentication" if client else "Bearer API key"
    out["auth_protocol_id"] = 99  # Other
    out["is_remote"] = True
    remote = details.get("remote")
    out["src_endpoint"] = {"ip": remote} if isinstance(remote, str) and remote else {}
    surface = details.get("surface")
    out["service"] = {"name": f"keyplane {surface}" if surface else "keyplane"}
    count = details.get("count")
    if isinstance(count, int):
        out["count"] = count
    first, last = details.get("first_time"), details.get("last_time")
    if isinstance(first, int | float) and isinstance(last, int | float):
        out["start_time"] = round(first * 1000)
        out["end_time"] = round(last * 1000)


def _entity_fields(out: dict[str, Any], e: LedgerEvent, cls: OcsfClass) -> None:
    entity: dict[str, Any] = {
        "uid": e.resource or e.store,
        "name": e.resource or e.store,
        "type": cls.entity_type or "",
    }
    out["entity"] = entity
    details: Mapping[str, Any] = e.details or {}
    if details:
        out["entity_result"] = {**entity, "data": dict(details)}


def _message(e: LedgerEvent) -> str:
    who = e.caller or "?"
    if e.type.startswith("decision."):
        verdict = {"allow": "allowed", "deny": "denied", "error": "failed"}.get(
            e.outcome or "", e.outcome or ""
        )
        return f"{e.type}: {e.subject} {e.action} {e.resource} {verdict} (asked by {who})"
    if e.type == "auth.failed":
        count = (e.details or {}).get("count", 1)
        reason = e.reasons[0] if e.reasons else "refused"
        return f"auth.failed: {reason} ({e.subject or 'no key id'}) on {e.resource} x{count}"
    return f"{e.type} on {e.resource or e.store} by {who}"

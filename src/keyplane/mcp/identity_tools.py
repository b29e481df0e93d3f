"""MCP tools of the identity plane (issue 5): identities, delegations, the store policy,
guardrails and the decision point — among them ``decide``, the "may I?" an agent calls
before it acts, answered with the reason in words (``reason_user``).

Same rules as :mod:`keyplane.mcp.tools`: one tool, one service function; inputs are the
REST request models (plus ``store``, and the path parameters as fields), outputs the REST
response models. Write tools carry the permission a key needs for them to be listed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from keyplane.api import identity_schemas as ids
from keyplane.policy.records import ScopeGrant
from keyplane.service import delegations, identities, policies
from keyplane.service.auth import Caller, Permission
from keyplane.service.context import Services

__all__ = ["IDENTITY_NOT_EXPOSED", "IDENTITY_SERVICE_OF_TOOL", "IDENTITY_SPECS"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _node(what: str = "The identity") -> Any:
    return Field(
        min_length=3,
        max_length=512,
        description=f"{what}: its graph node `kind:id`, e.g. `agent:planner`.",
        examples=["agent:planner"],
    )


# ------------------------------------------------------------------ arguments


class GetIdentityArgs(_Args):
    """One identity by its node."""

    node: str = _node()


class ListIdentitiesArgs(_Args):
    """The store's identities matching every given filter."""

    kind: ids.IdentityKind | None = Field(default=None, description="Only this kind.")
    status: ids.IdentityStatus | None = Field(default=None, description="Only this status.")
    owner: str | None = Field(
        default=None, max_length=512, description="Only those this owner answers for."
    )
    orphaned: bool | None = Field(default=None, description="Only orphaned (or owned) ones.")
    page_size: int = Field(default=50, ge=1, description="At most this many (capped).")
    continuation_token: str | None = Field(
        default=None, description="The previous page's `continuation_token`, to read on."
    )


class UpdateIdentityArgs(ids.UpdateIdentityRequest):
    node: str = _node()


class SetOwnersArgs(ids.OwnersRequest):
    node: str = _node()


class SuspendIdentityArgs(ids.ReasonRequest):
    node: str = _node("The identity to suspend")


class ReactivateIdentityArgs(_Args):
    node: str = _node("The suspended identity")


class DeprovisionIdentityArgs(ids.ReasonRequest):
    node: str = _node("The identity to deprovision")


class GetDelegationArgs(_Args):
    delegation_id: str = Field(min_length=1, max_length=64, description="The delegation id.")


class ListDelegationsArgs(_Args):
    """The store's delegations matching every given filter."""

    delegator: str | None = Field(default=None, max_length=512, description="Given by this one.")
    delegate: str | None = Field(default=None, max_length=512, description="Held by this one.")
    status: Literal["active", "revoked"] | None = None
    parent_id: str | None = Field(
        default=None, max_length=64, description="Only those derived from this delegation."
    )
    page_size: int = Field(default=50, ge=1, description="At most this many (capped).")
    continuation_token: str | None = None


class RevokeDelegationArgs(ids.ReasonRequest):
    delegation_id: str = Field(min_length=1, max_length=64, description="The delegation id.")


class GetStorePolicyArgs(_Args):
    """The store policy (no arguments but `store`)."""


# ------------------------------------------------------------------ runners

Result = tuple[BaseModel, str]


def _identity_text(verb: str, i: Any) -> str:
    owners = ", ".join(i.owners) or "none"
    orphan = ", orphaned" if i.orphaned else ""
    return f"{verb}{i.node} ({i.display_name}): {i.status}{orphan}; owners {owners}; revision {i.revision}"


def _create_identity(
    svc: Services, caller: Caller, store: str, a: ids.CreateIdentityRequest
) -> Result:
    i = identities.create_identity(
        svc,
        caller,
        store,
        a.kind,
        a.id,
        display_name=a.display_name,
        attributes=a.attributes,
        owners=a.owners,
        source=a.source,
    )
    return ids.IdentityOut.from_identity(i), _identity_text("created ", i)


def _get_identity(svc: Services, caller: Caller, store: str, a: GetIdentityArgs) -> Result:
    i = identities.get_identity(svc, caller, store, a.node)
    return ids.IdentityOut.from_identity(i), _identity_text("", i)


def _list_identities(svc: Services, caller: Caller, store: str, a: ListIdentitiesArgs) -> Result:
    page = identities.list_identities(
        svc,
        caller,
        store,
        kind=a.kind,
        status=a.status,
        owner=a.owner,
        orphaned=a.orphaned,
        page_size=a.page_size,
        continuation_token=a.continuation_token,
    )
    out = ids.IdentityList(
        identities=[ids.IdentityOut.from_identity(i) for i in page.items],
        continuation_token=page.continuation_token,
    )
    lines = [f"{i.node} {i.status}" + (" orphaned" if i.orphaned else "") for i in page.items[:50]]
    text = f"{len(page.items)} identities" + (":\n" + "\n".join(lines) if lines else "")
    if page.continuation_token:
        text += "\n(more: pass continuation_token)"
    return out, text


def _update_identity(svc: Services, caller: Caller, store: str, a: UpdateIdentityArgs) -> Result:
    i = identities.update_identity(
        svc, caller, store, a.node, display_name=a.display_name, attributes=a.attributes
    )
    return ids.IdentityOut.from_identity(i), _identity_text("updated ", i)


def _set_owners(svc: Services, caller: Caller, store: str, a: SetOwnersArgs) -> Result:
    i = identities.set_identity_owners(svc, caller, store, a.node, add=a.add, remove=a.remove)
    return ids.IdentityOut.from_identity(i), _identity_text("owners changed: ", i)


def _suspend(svc: Services, caller: Caller, store: str, a: SuspendIdentityArgs) -> Result:
    i = identities.suspend_identity(svc, caller, store, a.node, reason=a.reason)
    return ids.IdentityOut.from_identity(i), _identity_text("suspended ", i)


def _reactivate(svc: Services, caller: Caller, store: str, a: ReactivateIdentityArgs) -> Result:
    i = identities.reactivate_identity(svc, caller, store, a.node)
    return ids.IdentityOut.from_identity(i), _identity_text("reactivated ", i)


def _deprovision(svc: Services, caller: Caller, store: str, a: DeprovisionIdentityArgs) -> Result:
    i = identities.deprovision_identity(svc, caller, store, a.node, reason=a.reason)
    return ids.IdentityOut.from_identity(i), _identity_text("deprovisioned ", i)


def timestamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _delegation_text(verb: str, d: Any) -> str:
    scope = "; ".join(f"{','.join(g.actions)} on {g.resource}" for g in d.scope)
    purposes = ", ".join(d.purposes) or "any purpose"
    return (
        f"{verb}delegation {d.id}: {d.delegator} → {d.delegate} ({d.status}); {scope}; "
        f"{purposes}; until {timestamp(d.expires_at)}"
    )


def _create_delegation(
    svc: Services, caller: Caller, store: str, a: ids.CreateDelegationRequest
) -> Result:
    d = delegations.create_delegation(
        svc,
        caller,
        store,
        delegator=a.delegator,
        delegate=a.delegate,
        scope=[ScopeGrant(tuple(g.actions), g.resource, tuple(g.tools)) for g in a.scope],
        expires_at=ids.ts(a.expires_at),  # type: ignore[arg-type]
        purposes=tuple(a.purposes),
        not_before=ids.ts(a.not_before),
        max_depth=a.max_depth,
        condition=a.condition,
        parent_id=a.parent_id,
    )
    return ids.DelegationOut.from_delegation(d), _delegation_text("created ", d)


def _get_delegation(svc: Services, caller: Caller, store: str, a: GetDelegationArgs) -> Result:
    d = delegations.get_delegation(svc, caller, store, a.delegation_id)
    return ids.DelegationOut.from_delegation(d), _delegation_text("", d)


def _list_delegations(svc: Services, caller: Caller, store: str, a: ListDelegationsArgs) -> Result:
    page = delegations.list_delegations(
        svc,
        caller,
        store,
        delegator=a.delegator,
        delegate=a.delegate,
        status=a.status,
        parent_id=a.parent_id,
        page_size=a.page_size,
        continuation_token=a.continuation_token,
    )
    out = ids.DelegationList(
        delegations=[ids.DelegationOut.from_delegation(d) for d in page.items],
        continuation_token=page.continuation_token,
    )
    lines = [f"{d.id} {d.delegator} → {d.delegate} {d.status}" for d in page.items[:50]]
    text = f"{len(page.items)} delegations" + (":\n" + "\n".join(lines) if lines else "")
    if page.continuation_token:
        text += "\n(more: pass continuation_token)"
    return out, text


def _revoke_delegation(
    svc: Services, caller: Caller, store: str, a: RevokeDelegationArgs
) -> Result:
    revoked = delegations.revoke_delegation(svc, caller, store, a.delegation_id, reason=a.reason)
    out = ids.RevokeDelegationResponse(
        revoked=[ids.DelegationOut.from_delegation(d) for d in revoked]
    )
    return out, f"revoked {len(revoked)} delegation(s): " + ", ".join(d.id for d in revoked)


def _get_store_policy(svc: Services, caller: Caller, store: str, a: GetStorePolicyArgs) -> Result:
    p = policies.get_store_policy(svc, caller, store)
    actions = ", ".join(f"{k} → {v}" for k, v in sorted(p.actions.items())) or "none"
    return ids.StorePolicyOut.from_policy(p), (
        f"delegations last at most {p.max_delegation_seconds} s; orphans "
        f"{'suspended' if p.suspend_orphans else 'kept active'}; actions: {actions}; "
        f"access tokens last {p.access_token_seconds} s; impersonation "
        f"{'allowed' if p.allow_impersonation else 'refused'}; "
        f"{len(p.trusted_issuers)} trusted issuer(s)"
    )


# ------------------------------------------------------------------ the catalogue

_M = Permission.MANAGE_IDENTITIES
_D = Permission.MANAGE_DELEGATIONS

#: (name, title, description, input, output, run, writes, permission to be listed, destructive)
IDENTITY_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    (
        "get_identity",
        "Get an identity",
        "Read one identity (a human, agent, workload or service account) by its node "
        "`kind:id`: display name, attributes, status (`active`, `suspended`, "
        "`deprovisioned`), owners, whether it is orphaned. Example: "
        '{"node": "agent:planner"}.',
        GetIdentityArgs,
        ids.IdentityOut,
        _get_identity,
        False,
        None,
        False,
    ),
    (
        "list_identities",
        "List identities",
        "List the store's identities, filtered by `kind`, `status`, `owner` or `orphaned`; "
        "paginated. Use it to find the agents a person owns or the orphaned ones. Example: "
        '{"kind": "agent", "owner": "human:alice"}.',
        ListIdentitiesArgs,
        ids.IdentityList,
        _list_identities,
        False,
        None,
        False,
    ),
    (
        "get_delegation",
        "Get a delegation",
        "Read one delegation by id: who delegated to whom, the scope (actions on resources, "
        "tools), purposes, validity window, depth, condition, status. Example: "
        '{"delegation_id": "01JD7Q2W8V0M6X4J3N5P9R1T2Y"}.',
        GetDelegationArgs,
        ids.DelegationOut,
        _get_delegation,
        False,
        None,
        False,
    ),
    (
        "list_delegations",
        "List delegations",
        "List the store's delegations, filtered by `delegator`, `delegate`, `status` or "
        "`parent_id`; paginated. Use it to see what you (an agent) were delegated, and by "
        'whom. Example: {"delegate": "agent:planner", "status": "active"}.',
        ListDelegationsArgs,
        ids.DelegationList,
        _list_delegations,
        False,
        None,
        False,
    ),
    (
        "get_store_policy",
        "Get the store policy",
        "Read the store policy: the longest a delegation may last "
        "(`max_delegation_seconds`), whether orphaned non-human identities are suspended, "
        "and the action → relation map `decide` uses. Example: {}.",
        GetStorePolicyArgs,
        ids.StorePolicyOut,
        _get_store_policy,
        False,
        None,
        False,
    ),
    (
        "create_identity",
        "Create an identity",
        "Register a human, agent, workload or service account as a node of the graph. An "
        "agent, workload or service account needs at least one owner (a human or a group "
        "such as `group:eng#member`). Only listed for keys that may manage identities. "
        'Example: {"kind": "agent", "id": "summarizer", "owners": ["human:alice"], '
        '"attributes": {"model": "small"}}.',
        ids.CreateIdentityRequest,
        ids.IdentityOut,
        _create_identity,
        True,
        _M,
        False,
    ),
    (
        "update_identity",
        "Update an identity",
        "Change an identity's display name and/or replace its attributes (attributes are "
        "seen by guardrails and delegation conditions). Example: "
        '{"node": "agent:summarizer", "attributes": {"model": "large"}}.',
        UpdateIdentityArgs,
        ids.IdentityOut,
        _update_identity,
        True,
        _M,
        False,
    ),
    (
        "set_identity_owners",
        "Change an identity's owners",
        "Add and remove owners of an identity in one change; a non-human identity keeps at "
        'least one. Example: {"node": "agent:summarizer", "add": ["human:bob"], '
        '"remove": ["human:alice"]}.',
        SetOwnersArgs,
        ids.IdentityOut,
        _set_owners,
        True,
        _M,
        False,
    ),
    (
        "suspend_identity",
        "Suspend an identity (kill switch)",
        "Stop an identity at once: every decision in which it appears — as subject or "
        "anywhere in an actor chain — denies from now on, and every delegation it gave or "
        "holds is revoked with everything derived from them. Use it on an agent that "
        'misbehaves. Example: {"node": "agent:summarizer", "reason": "looping on deletes"}.',
        SuspendIdentityArgs,
        ids.IdentityOut,
        _suspend,
        True,
        _M,
        True,
    ),
    (
        "reactivate_identity",
        "Reactivate an identity",
        "Let a suspended identity act again (its revoked delegations stay revoked: create "
        'new ones). A deprovisioned identity cannot be reactivated. Example: {"node": '
        '"agent:summarizer"}.',
        ReactivateIdentityArgs,
        ids.IdentityOut,
        _reactivate,
        True,
        _M,
        False,
    ),
    (
        "deprovision_identity",
        "Deprovision an identity",
        "Retire an identity for good (irreversible). Non-human identities it alone owned "
        "become orphaned (and suspended when the store policy says so). Example: "
        '{"node": "human:carol", "reason": "left the company"}.',
        DeprovisionIdentityArgs,
        ids.IdentityOut,
        _deprovision,
        True,
        _M,
        True,
    ),
    (
        "create_delegation",
        "Delegate to an agent",
        "Let `delegate` act on behalf of `delegator` for the grants in `scope` (actions on "
        "one object `type:id` or a whole type `type:*`, optionally naming MCP tools), for "
        "`purposes`, until `expires_at` (required; capped by the store policy). To hand "
        "part of your own delegation to a sub-agent, pass its id as `parent_id`: the new "
        "one must be contained in it (anything wider fails with `delegation_widening`, "
        "naming what). Example: "
        '{"delegator": "human:alice", "delegate": "agent:planner", "scope": '
        '[{"actions": ["viewer"], "resource": "document:roadmap"}], '
        '"purposes": ["planning"], "expires_at": "2030-01-01T12:00:00Z", "max_depth": 1}.',
        ids.CreateDelegationRequest,
        ids.DelegationOut,
        _create_delegation,
        True,
        _D,
        False,
    ),
    (
        "revoke_delegation",
        "Revoke a delegation",
        "Revoke a delegation and every delegation derived from it, at once; returns all of "
        'them. Example: {"delegation_id": "01JD7Q2W8V0M6X4J3N5P9R1T2Y", "reason": "done"}.',
        RevokeDelegationArgs,
        ids.RevokeDelegationResponse,
        _revoke_delegation,
        True,
        _D,
        True,
    ),
]

IDENTITY_SERVICE_OF_TOOL: dict[str, Any] = {
    "get_identity": identities.get_identity,
    "list_identities": identities.list_identities,
    "create_identity": identities.create_identity,
    "update_identity": identities.update_identity,
    "set_identity_owners": identities.set_identity_owners,
    "suspend_identity": identities.suspend_identity,
    "reactivate_identity": identities.reactivate_identity,
    "deprovision_identity": identities.deprovision_identity,
    "get_delegation": delegations.get_delegation,
    "list_delegations": delegations.list_delegations,
    "create_delegation": delegations.create_delegation,
    "revoke_delegation": delegations.revoke_delegation,
    "get_store_policy": policies.get_store_policy,
}

IDENTITY_NOT_EXPOSED: dict[str, str] = {
    "policies.update_store_policy": (
        "the store policy bounds delegations (their length, what orphans may do): set by "
        "people (REST, CLI, SDK), never by an agent it bounds"
    ),
}

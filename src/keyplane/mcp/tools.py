"""Keyplane's MCP tools: one tool, one service function.

Each tool's input schema is the REST API's request model (:mod:`keyplane.api.schemas`) plus
a ``store`` argument, and its output schema is the REST response model, so an agent sees
exactly the contract a REST client sees. Descriptions are written for the agent: what the
tool answers, when to call it, what the inputs mean, and an example.

A tool's ``run`` is synchronous (the service layer is); the server calls it in a worker
thread with the caller it authenticated, and the service function authorizes that caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import mcp.types as types
from pydantic import BaseModel, ConfigDict, Field, create_model

from keyplane.api import ledger_schemas as ls
from keyplane.api import schemas as s
from keyplane.mcp.credential_tools import (
    CREDENTIAL_NOT_EXPOSED,
    CREDENTIAL_SERVICE_OF_TOOL,
    CREDENTIAL_SPECS,
)
from keyplane.mcp.decision_tools import DECISION_SERVICE_OF_TOOL, DECISION_SPECS
from keyplane.mcp.gateway_tools import (
    GATEWAY_NOT_EXPOSED,
    GATEWAY_SERVICE_OF_TOOL,
    GATEWAY_SPECS,
)
from keyplane.mcp.governance_tools import (
    GOVERNANCE_NOT_EXPOSED,
    GOVERNANCE_SERVICE_OF_TOOL,
    GOVERNANCE_SPECS,
)
from keyplane.mcp.guardrail_tools import (
    GUARDRAIL_NOT_EXPOSED,
    GUARDRAIL_SERVICE_OF_TOOL,
    GUARDRAIL_SPECS,
)
from keyplane.mcp.identity_tools import (
    IDENTITY_NOT_EXPOSED,
    IDENTITY_SERVICE_OF_TOOL,
    IDENTITY_SPECS,
)
from keyplane.mcp.import_tools import (
    IMPORT_NOT_EXPOSED,
    IMPORT_SERVICE_OF_TOOL,
    IMPORT_SPECS,
)
from keyplane.mcp.posture_tools import (
    POSTURE_NOT_EXPOSED,
    POSTURE_SERVICE_OF_TOOL,
    POSTURE_SPECS,
)
from keyplane.mcp.signing_key_tools import (
    SIGNING_KEY_NOT_EXPOSED,
    SIGNING_KEY_SERVICE_OF_TOOL,
    SIGNING_KEY_SPECS,
)
from keyplane.mcp.token_tools import TOKEN_NOT_EXPOSED, TOKEN_SERVICE_OF_TOOL, TOKEN_SPECS
from keyplane.service import access, ledger, models, tuples
from keyplane.service.access import BatchItem
from keyplane.service.auth import Caller, Permission
from keyplane.service.context import Services

__all__ = [
    "NOT_EXPOSED",
    "READ_TOOLS",
    "SERVICE_OF_TOOL",
    "WRITE_TOOLS",
    "ToolSpec",
    "build_tools",
]

#: run(services, caller, store_id, validated arguments) -> (result model, short text)
Runner = Callable[[Services, Caller, str, Any], tuple[BaseModel, str]]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One MCP tool: its name, agent-facing description, schemas and service call."""

    name: str
    title: str
    description: str
    input: type[BaseModel]
    output: type[BaseModel]
    run: Runner
    writes: bool = False
    #: the permission (on the server's default store) a key needs to see a write tool listed
    permission: str = Permission.WRITE_TUPLES
    destructive: bool = False

    def to_mcp(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.input.model_json_schema(),
            output_schema=self.output.model_json_schema(mode="serialization"),
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=not self.writes,
                destructive_hint=self.name == "delete_tuples" or self.destructive,
                idempotent_hint=not self.writes,
                open_world_hint=False,
            ),
        )


# ------------------------------------------------------------------ inputs without a REST body
# (the REST API takes these as query parameters; the fields mirror them one for one)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadTuplesArgs(_Args):
    """Stored tuples matching every given filter."""

    object: str | None = Field(
        default=None,
        max_length=s.MAX_OBJECT,
        description="Only tuples on this object: `type:id`, or `type:` for every object of a type.",
        examples=["document:roadmap"],
    )
    relation: str | None = Field(
        default=None, max_length=s.MAX_RELATION, description="Only tuples with this relation."
    )
    user: str | None = Field(
        default=None,
        max_length=s.MAX_USER,
        description="Only tuples for this user: `type:id`, `type:*`, `type:id#relation` or `type:`.",
    )
    page_size: int = Field(default=100, ge=1, description="At most this many tuples (capped).")
    continuation_token: str | None = Field(
        default=None, description="The previous page's `continuation_token`, to read on."
    )


class ReadChangesArgs(_Args):
    """The store's changelog after a revision."""

    after_revision: int = Field(
        default=0, ge=0, description="Changes after this revision (0: from the beginning)."
    )
    page_size: int = Field(default=100, ge=1, description="About this many changes per page.")
    object_type: str | None = Field(
        default=None, max_length=s.MAX_TYPE, description="Only changes on objects of this type."
    )


class ReadModelArgs(_Args):
    """One authorization model version."""

    model_id: str | None = Field(
        default=None, max_length=s.MAX_ID, description="The version to read; the latest if omitted."
    )


class DeleteTuplesArgs(_Args):
    """Tuples to remove, atomically."""

    # the same fields as the REST write body's, descriptions included
    deletes: list[s.TupleKey] = Field(
        min_length=1, description=s.WriteRequest.model_fields["deletes"].description
    )
    idempotent: bool = Field(
        default=False, description=s.WriteRequest.model_fields["idempotent"].description
    )


# ------------------------------------------------------------------ runners


def _check(svc: Services, caller: Caller, store: str, a: s.CheckRequest) -> tuple[BaseModel, str]:
    d = access.check(
        svc,
        caller,
        store,
        a.user,
        a.relation,
        a.object,
        context=a.context,
        contextual_tuples=a.contextual(),
        model_id=a.model_id,
        at_least_as_fresh=a.at_least_as_fresh,
    )
    verdict = "allowed" if d.allowed else "denied"
    has = "has" if d.allowed else "does not have"
    return (
        s.CheckResponse(
            allowed=d.allowed, model_id=d.model_id, revision=d.revision, decision_id=d.decision_id
        ),
        f"{verdict}: {a.user} {has} {a.relation} on {a.object} (revision {d.revision}, "
        f"decision {d.decision_id})",
    )


def _batch_check(
    svc: Services, caller: Caller, store: str, a: s.BatchCheckRequest
) -> tuple[BaseModel, str]:
    items = [
        BatchItem(
            c.user,
            c.relation,
            c.object,
            context=c.context,
            contextual_tuples=[t.to_dict() for t in c.contextual_tuples or ()],
            correlation_id=c.correlation_id,
        )
        for c in a.checks
    ]
    results = access.batch_check(
        svc, caller, store, items, model_id=a.model_id, at_least_as_fresh=a.at_least_as_fresh
    )
    out = s.BatchCheckResponse(
        results=[
            s.BatchCheckItemResult(
                correlation_id=r.correlation_id,
                allowed=r.allowed,
                error=None
                if r.error is None
                else s.BatchItemError(code=r.error.code, message=r.error.message),
                decision_id=r.decision_id,
            )
            for r in results
        ]
    )
    allowed = sum(r.allowed for r in results)
    failed = sum(r.error is not None for r in results)
    return out, (
        f"{len(results)} checks: {allowed} allowed, {len(results) - allowed - failed} denied, "
        f"{failed} errors"
    )


def _listing(kind: str, items: list[str]) -> str:
    shown = ", ".join(items[:20]) + (f", … ({len(items) - 20} more)" if len(items) > 20 else "")
    return f"{len(items)} {kind}" + (f": {shown}" if items else "")


def _list_objects(
    svc: Services, caller: Caller, store: str, a: s.ListObjectsRequest
) -> tuple[BaseModel, str]:
    found = access.list_objects(
        svc,
        caller,
        store,
        a.user,
        a.relation,
        a.type,
        context=a.context,
        contextual_tuples=a.contextual(),
        model_id=a.model_id,
        at_least_as_fresh=a.at_least_as_fresh,
    )
    objects = list(found)
    return s.ListObjectsResponse(objects=objects, decision_id=found.decision_id), _listing(
        "objects", objects
    )


def _list_users(
    svc: Services, caller: Caller, store: str, a: s.ListUsersRequest
) -> tuple[BaseModel, str]:
    users = access.list_users(
        svc,
        caller,
        store,
        a.object,
        a.relation,
        a.filters,
        context=a.context,
        contextual_tuples=a.contextual(),
        model_id=a.model_id,
        at_least_as_fresh=a.at_least_as_fresh,
    )
    return s.ListUsersResponse(users=users, decision_id=users.decision_id), _listing("users", users)


def _expand(svc: Services, caller: Caller, store: str, a: s.ExpandRequest) -> tuple[BaseModel, str]:
    tree = access.expand(
        svc,
        caller,
        store,
        a.object,
        a.relation,
        context=a.context,
        contextual_tuples=a.contextual(),
        model_id=a.model_id,
        at_least_as_fresh=a.at_least_as_fresh,
    )
    # the engine answers OpenFGA's whole expand body, {"tree": {"root": …}}
    return (
        s.ExpandResponse(tree=tree["tree"], decision_id=tree.decision_id),
        f"userset tree of {a.object}#{a.relation} (one level deep)",
    )


def _explain(
    svc: Services, caller: Caller, store: str, a: s.ExplainRequest
) -> tuple[BaseModel, str]:
    ex = access.explain(
        svc,
        caller,
        store,
        a.user,
        a.relation,
        a.object,
        context=a.context,
        contextual_tuples=a.contextual(),
        model_id=a.model_id,
        at_least_as_fresh=a.at_least_as_fresh,
    )
    out = s.ExplainResponse.model_validate({**ex.to_dict(), "decision_id": ex.decision_id})
    return out, ex.render().rstrip("\n")


def _read_tuples(
    svc: Services, caller: Caller, store: str, a: ReadTuplesArgs
) -> tuple[BaseModel, str]:
    page = tuples.read_tuples(
        svc,
        caller,
        store,
        object=a.object,
        relation=a.relation,
        user=a.user,
        page_size=a.page_size,
        continuation_token=a.continuation_token,
    )
    out = s.TupleList(
        tuples=[s.TupleKey.from_tuple(t) for t in page.items],
        continuation_token=page.continuation_token,
    )
    text = _listing("tuples", [f"{t.object}#{t.relation}@{t.user}" for t in page.items])
    if page.continuation_token:
        text += " (more: pass continuation_token)"
    return out, text


def _read_changes(
    svc: Services, caller: Caller, store: str, a: ReadChangesArgs
) -> tuple[BaseModel, str]:
    page = tuples.read_changes(
        svc,
        caller,
        store,
        after_revision=a.after_revision,
        page_size=a.page_size,
        object_type=a.object_type,
    )
    out = s.ChangesResponse(
        changes=[s.Change.from_change(c) for c in page.changes],
        last_revision=page.last_revision,
        has_more=page.has_more,
    )
    more = "; more after it" if page.has_more else ""
    return out, f"{len(page.changes)} changes up to revision {page.last_revision}{more}"


def _read_model(
    svc: Services, caller: Caller, store: str, a: ReadModelArgs
) -> tuple[BaseModel, str]:
    rec = models.read_model(svc, caller, store, a.model_id)
    dsl = models.render_model(rec, "dsl")
    return s.Model.from_record(rec, dsl), f"model {rec.id}:\n{dsl}"


def _write_tuples(
    svc: Services, caller: Caller, store: str, a: s.WriteRequest
) -> tuple[BaseModel, str]:
    r = tuples.write_tuples(
        svc,
        caller,
        store,
        writes=[t.to_dict() for t in a.writes],
        deletes=[t.to_dict() for t in a.deletes],
        model_id=a.model_id,
        idempotent=a.idempotent,
    )
    return (
        s.WriteResponse(revision=r.revision, written=r.written, deleted=r.deleted),
        f"wrote {r.written}, deleted {r.deleted} at revision {r.revision}",
    )


def _delete_tuples(
    svc: Services, caller: Caller, store: str, a: DeleteTuplesArgs
) -> tuple[BaseModel, str]:
    r = tuples.write_tuples(
        svc, caller, store, deletes=[t.to_dict() for t in a.deletes], idempotent=a.idempotent
    )
    return (
        s.WriteResponse(revision=r.revision, written=r.written, deleted=r.deleted),
        f"deleted {r.deleted} at revision {r.revision}",
    )


class QueryLedgerArgs(_Args):
    """Ledger events matching every given filter, oldest first."""

    since: float | None = Field(
        default=None, description="Only events at or after this time (seconds since the epoch)."
    )
    until: float | None = Field(
        default=None, description="Only events before this time (seconds since the epoch)."
    )
    types: list[str] | None = Field(
        default=None,
        description="Event types, e.g. `decision.check`; `decision.*` names every decision.",
    )
    subject: str | None = Field(
        default=None, max_length=1024, description="The subject asked about."
    )
    actor: str | None = Field(
        default=None, max_length=1024, description="An actor anywhere in the actor chain."
    )
    resource: str | None = Field(default=None, max_length=1024, description="The object.")
    action: str | None = Field(
        default=None, max_length=1024, description="The relation or operation."
    )
    outcome: Literal["allow", "deny", "error", "ok"] | None = Field(
        default=None, description="Only this outcome."
    )
    purpose: str | None = Field(default=None, max_length=1024)
    request_id: str | None = Field(default=None, max_length=1024)
    decision_id: str | None = Field(default=None, max_length=64)
    cursor: str | None = Field(
        default=None, max_length=32, description="The previous page's `next_cursor`."
    )
    limit: int = Field(default=50, ge=1, description="Events per page (capped).")


class GetDecisionArgs(_Args):
    """One decision, by the `decision_id` a check (or other query) returned."""

    decision_id: str = Field(min_length=1, max_length=64, description="The decision id.")


def _query_ledger(
    svc: Services, caller: Caller, store: str, a: QueryLedgerArgs
) -> tuple[BaseModel, str]:
    page = ledger.query_events(
        svc,
        caller,
        store,
        since=a.since,
        until=a.until,
        types=a.types,
        subject=a.subject,
        actor=a.actor,
        resource=a.resource,
        action=a.action,
        outcome=a.outcome,
        purpose=a.purpose,
        request_id=a.request_id,
        decision_id=a.decision_id,
        cursor=a.cursor,
        limit=a.limit,
    )
    out = ls.EventPageOut(
        events=[ls.LedgerEventOut.from_event(e) for e in page.events], next_cursor=page.next_cursor
    )
    lines = [
        f"#{e.seq} {e.type} {e.outcome}: {e.subject or ''} {e.action or ''} {e.resource or ''}"
        f" (by {e.caller}, id {e.id})".replace("  ", " ")
        for e in page.events[:20]
    ]
    text = f"{len(page.events)} events" + (":\n" + "\n".join(lines) if lines else "")
    if len(page.events) > 20:
        text += f"\n… ({len(page.events) - 20} more in the structured result)"
    if page.next_cursor:
        text += f"\n(more: pass cursor {page.next_cursor!r})"
    return out, text


def _get_decision(
    svc: Services, caller: Caller, store: str, a: GetDecisionArgs
) -> tuple[BaseModel, str]:
    p = ledger.get_decision(svc, caller, a.decision_id)
    return ls.DecisionProvenance.model_validate(p.to_dict()), ledger.render_provenance(p)


# ------------------------------------------------------------------ descriptions

_FRESH = (
    " After writing tuples, pass the write's `revision` as `at_least_as_fresh` so the answer "
    "reflects your write."
)

_SPECS: list[tuple[str, str, str, type[BaseModel], type[BaseModel], Runner, bool]] = [
    (
        "check",
        "Check a permission",
        "Answer one yes/no authorization question: does `user` hold `relation` on `object`? "
        "Call it before acting on a resource on someone's behalf. Returns `allowed`, plus "
        "the model version and store revision the decision used. Use `explain` to learn why, "
        "`batch_check` for many questions at once." + _FRESH + " Example: "
        '{"user": "user:anne", "relation": "viewer", "object": "document:roadmap"}.',
        s.CheckRequest,
        s.CheckResponse,
        _check,
        False,
    ),
    (
        "batch_check",
        "Check many permissions",
        "Answer many yes/no authorization questions in one call (e.g. which of these "
        "documents may the user open?). Each item has its own user, relation and object and "
        "an optional `correlation_id` echoed in its result; one item's error does not fail "
        "the others (its result carries `error`). Example: "
        '{"checks": [{"user": "user:anne", "relation": "viewer", "object": "document:a", '
        '"correlation_id": "a"}, {"user": "user:anne", "relation": "editor", '
        '"object": "document:a", "correlation_id": "b"}]}.',
        s.BatchCheckRequest,
        s.BatchCheckResponse,
        _batch_check,
        False,
    ),
    (
        "list_objects",
        "List accessible objects",
        "List every object of one type on which `user` holds `relation` — e.g. all documents "
        "Anne can view. Use it to filter or search what a user may see; the list is "
        "complete, not paginated. Example: "
        '{"user": "user:anne", "relation": "viewer", "type": "document"}.',
        s.ListObjectsRequest,
        s.ListObjectsResponse,
        _list_objects,
        False,
    ),
    (
        "list_users",
        "List users with access",
        "List who holds `relation` on `object` — e.g. every user who can edit a document, or "
        "every group whose members can. `filters` names the kinds of users to return: a type "
        "(`user`) or a userset (`group#member`). A result `type:*` means every object of "
        "that type. Example: "
        '{"object": "document:roadmap", "relation": "editor", "filters": ["user"]}.',
        s.ListUsersRequest,
        s.ListUsersResponse,
        _list_users,
        False,
    ),
    (
        "expand",
        "Expand a relation",
        "Show how `relation` on `object` is made up, one level deep, as OpenFGA's userset "
        "tree: direct users, usersets (e.g. `group:eng#member`) and the computed and "
        "tuple-to-userset rewrites the model defines. Use it to inspect or debug sharing; "
        "to answer a yes/no question use `check`, to ask why use `explain`. Example: "
        '{"object": "document:roadmap", "relation": "viewer"}.',
        s.ExpandRequest,
        s.ExpandResponse,
        _expand,
        False,
    ),
    (
        "explain",
        "Explain a decision",
        "Explain why `user` does or does not hold `relation` on `object`. When allowed: the "
        "granting paths, each the chain of steps from the object to the user (e.g. viewer ← "
        "editor ← member of group:eng). When denied: why each branch failed (no tuple, a "
        "condition false, an expired tuple, an exclusion). Call it to justify a decision to "
        "a person or to find the missing relationship. Example: "
        '{"user": "user:anne", "relation": "viewer", "object": "document:roadmap"}.',
        s.ExplainRequest,
        s.ExplainResponse,
        _explain,
        False,
    ),
    (
        "read_tuples",
        "Read stored tuples",
        "Read the relationship tuples stored in the store (`object#relation@user`), "
        "filtered by object, relation and/or user; paginated. Use it to see which "
        "relationships exist as facts — for effective access (inherited through groups or "
        "parents) use `check` or `list_objects` instead. Example: "
        '{"object": "document:roadmap"} or {"user": "user:anne", "object": "document:"}.',
        ReadTuplesArgs,
        s.TupleList,
        _read_tuples,
        False,
    ),
    (
        "read_changes",
        "Read the changelog",
        "Read the store's changelog: every tuple written or deleted after `after_revision`, "
        "in commit order, with the revision and time of each change. Use it to audit "
        "recent changes or to follow the store; call again with `last_revision` while "
        "`has_more` is true. Needs a writer, auditor or admin key. Example: "
        '{"after_revision": 0, "object_type": "document"}.',
        ReadChangesArgs,
        s.ChangesResponse,
        _read_changes,
        False,
    ),
    (
        "read_model",
        "Read the authorization model",
        "Read the store's authorization model (the latest version, or `model_id`) as OpenFGA "
        "DSL and JSON: the types, their relations and how relations derive from each other, "
        "and conditions. Call it first to learn which types, relations and user formats "
        "the other tools accept. Example: {}.",
        ReadModelArgs,
        s.Model,
        _read_model,
        False,
    ),
    (
        "query_ledger",
        "Query the audit ledger",
        "Search the store's tamper-evident provenance ledger: every decision (check, batch "
        "item, list query, explain) and every change (tuples, models, stores, keys), with who "
        "called, the subject, the outcome and the decision id. Filter by time range "
        "(`since`/`until`, seconds since the epoch), `types`, `subject`, `actor`, `resource`, "
        "`action`, `outcome`, `purpose`, `request_id` or `decision_id`; page with "
        "`next_cursor`. Use `get_decision` for one decision's full provenance. Needs an "
        "auditor or admin key (or a writer key of the store). Example: "
        '{"subject": "user:anne", "types": ["decision.*"], "outcome": "deny"}.',
        QueryLedgerArgs,
        ls.EventPageOut,
        _query_ledger,
        False,
    ),
    (
        "get_decision",
        "Explain a past decision",
        "Reconstruct one past decision from the ledger by its `decision_id`: who asked, about "
        "which subject, through which actors and for which purpose, the model and policy "
        "versions and graph revision it used, and the path that granted it (explain replayed "
        "over the graph as it was at that revision) or why it was denied. `notes` says "
        "honestly what could not be reconstructed. The `store` argument is not needed: the "
        "decision id names its store. Example: "
        '{"decision_id": "01JD7Q2W8V0M6X4J3N5P9R1T2Y"}.',
        GetDecisionArgs,
        ls.DecisionProvenance,
        _get_decision,
        False,
    ),
    (
        "write_tuples",
        "Write tuples",
        "Grant access by writing relationship tuples (and optionally delete others) in one "
        "atomic change: all of it happens or none. Each written tuple must fit the model "
        "(read it with `read_model`). Writing an existing tuple or deleting a missing one "
        "fails unless `idempotent` is true. Returns the new `revision`; pass it as "
        "`at_least_as_fresh` to queries that must see the change. Only listed for keys "
        "that may write. Example: "
        '{"writes": [{"object": "document:roadmap", "relation": "viewer", '
        '"user": "user:anne"}]}.',
        s.WriteRequest,
        s.WriteResponse,
        _write_tuples,
        True,
    ),
    (
        "delete_tuples",
        "Delete tuples",
        "Revoke access by deleting relationship tuples, atomically. Deleting a tuple that "
        "does not exist fails unless `idempotent` is true. Access granted some other way "
        "(a group, a parent folder) remains: `explain` shows the paths. Returns the new "
        "`revision`. Only listed for keys that may write. Example: "
        '{"deletes": [{"object": "document:roadmap", "relation": "viewer", '
        '"user": "user:anne"}]}.',
        DeleteTuplesArgs,
        s.WriteResponse,
        _delete_tuples,
        True,
    ),
]

#: The service function each tool calls (for the surface-parity test).
SERVICE_OF_TOOL: dict[str, Callable[..., Any]] = {
    "check": access.check,
    "batch_check": access.batch_check,
    "list_objects": access.list_objects,
    "list_users": access.list_users,
    "expand": access.expand,
    "explain": access.explain,
    "read_tuples": tuples.read_tuples,
    "read_changes": tuples.read_changes,
    "read_model": models.read_model,
    "write_tuples": tuples.write_tuples,
    "delete_tuples": tuples.write_tuples,
    "query_ledger": ledger.query_events,
    "get_decision": ledger.get_decision,
    **GUARDRAIL_SERVICE_OF_TOOL,
    **DECISION_SERVICE_OF_TOOL,
    **IDENTITY_SERVICE_OF_TOOL,
    **SIGNING_KEY_SERVICE_OF_TOOL,
    **CREDENTIAL_SERVICE_OF_TOOL,
    **TOKEN_SERVICE_OF_TOOL,
    **GOVERNANCE_SERVICE_OF_TOOL,
    **POSTURE_SERVICE_OF_TOOL,
    **GATEWAY_SERVICE_OF_TOOL,
    **IMPORT_SERVICE_OF_TOOL,
}

#: Service operations deliberately not offered to agents, and why.
NOT_EXPOSED: dict[str, str] = {
    "stores.create_store": "administration: stores are provisioned by operators, not agents",
    "stores.delete_store": "administration, and irreversible",
    "stores.get_store": "agents name a store; read_model already fails on an unknown one",
    "stores.list_stores": "administration: an agent works in the stores it is given",
    "models.write_model": "changing the model changes every decision; an operator's act",
    "models.list_models": "agents use the latest model or one a result named (read_model)",
    "tuples.gc_expired": "maintenance: expired tuples already stop granting",
    "keys.*": "credentials are never handed to or minted by agents",
    "observability.graph_stats": "operator telemetry, scraped from /metrics",
    "ledger.export_events": "bulk export is for SIEMs and auditors' tools (REST, CLI), not an agent's context",
    "ledger.verify_ledger": "verification is run by auditors offline (keyplane ledger verify), not trusted to an agent",
    "ledger.ledger_public_keys": "keys are fetched by verifiers (REST, CLI), not agents",
    "ledger_admin.*": "deleting or streaming out the audit trail is an administrator's act, never an agent's",
    **GUARDRAIL_NOT_EXPOSED,
    **IDENTITY_NOT_EXPOSED,
    **SIGNING_KEY_NOT_EXPOSED,
    **CREDENTIAL_NOT_EXPOSED,
    **TOKEN_NOT_EXPOSED,
    **GOVERNANCE_NOT_EXPOSED,
    **POSTURE_NOT_EXPOSED,
    **GATEWAY_NOT_EXPOSED,
    **IMPORT_NOT_EXPOSED,
    "scim.*": "SCIM is the identity provider's protocol; people and agents use the identity operations",
}

#: the identity plane's tools (issue 5), in modules of their own; each entry also names the
#: permission a key needs to see it listed (write tools) and whether it is destructive
_PLANE_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    *DECISION_SPECS,
    *GUARDRAIL_SPECS,
    *IDENTITY_SPECS,
    *SIGNING_KEY_SPECS,
    *CREDENTIAL_SPECS,
    *TOKEN_SPECS,
    *GOVERNANCE_SPECS,
    *POSTURE_SPECS,
    *GATEWAY_SPECS,
    *IMPORT_SPECS,
]

READ_TOOLS: tuple[str, ...] = tuple(n for n, *_rest, w in _SPECS if not w) + tuple(
    p[0] for p in _PLANE_SPECS if not p[6]
)
WRITE_TOOLS: tuple[str, ...] = tuple(n for n, *_rest, w in _SPECS if w) + tuple(
    p[0] for p in _PLANE_SPECS if p[6]
)


def _with_store(model: type[BaseModel], default_store: str) -> type[BaseModel]:
    """``model`` plus the ``store`` argument every tool takes."""
    store_field: Any = (
        str | None,
        Field(
            default=None,
            min_length=1,
            max_length=s.MAX_ID,
            description=f"The store (tenant) to use; `{default_store}` when omitted.",
        ),
    )
    return create_model(model.__name__, __base__=model, __doc__=model.__doc__, store=store_field)


def build_tools(default_store: str) -> dict[str, ToolSpec]:
    """Every tool, by name, for a server whose default store is ``default_store``."""
    tools = {
        name: ToolSpec(name, title, desc, _with_store(inp, default_store), out, run, writes)
        for name, title, desc, inp, out, run, writes in _SPECS
    }
    for name, title, desc, inp, out, run, writes, permission, destructive in _PLANE_SPECS:
        tools[name] = ToolSpec(
            name,
            title,
            desc,
            _with_store(inp, default_store),
            out,
            run,
            writes,
            permission or Permission.WRITE_TUPLES,
            destructive,
        )
    return tools

"""``keyplane identity …``, ``keyplane delegation …`` and ``keyplane policy …`` — the
identity plane from the command line (issue 5).

Like every command: the local database (``--db``) or a server (``--url`` + ``--api-key``)
through :class:`keyplane.sdk.KeyplaneAPI`; a table or lines for people, ``--json`` (or
``--output json``) for scripts; errors as ``error[<code>]: <message>``, exit status 1.
An identity is named by its graph node, ``kind:id`` (``agent:planner``).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    all_pages,
    connect,
    emit_json,
    err,
    out,
    table,
    timestamp,
    wants_json,
)
from keyplane.policy.records import Delegation, Identity, ScopeGrant, StorePolicy

__all__ = [
    "delegation_app",
    "identity_app",
    "identity_json",
    "parse_json_object",
    "policy_app",
    "show_table",
]

identity_app = typer.Typer(
    help="Identities: humans, agents, workloads and service accounts (create, list, suspend…).",
    no_args_is_help=True,
)
delegation_app = typer.Typer(
    help="Delegations: who may act for whom, within which scope, until when.",
    no_args_is_help=True,
)
policy_app = typer.Typer(
    help="The store policy: delegation cap, orphan suspension, action map.", no_args_is_help=True
)

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept in the ledger).")]


# ---------------------------------------------------------------------------- helpers


def parse_json_object(raw: str | None, option: str) -> dict[str, Any] | None:
    """``raw`` as a JSON object (usage error, exit 2, otherwise)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        err.print(
            f"error[validation_error]: {option} is not valid JSON: {exc}",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(2) from None
    if not isinstance(value, dict):
        err.print(
            f"error[validation_error]: {option} must be a JSON object",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(2)
    return value


def parse_time(raw: str, option: str) -> float:
    """RFC 3339 (``2026-11-28T14:00:00Z``) or seconds since the epoch."""
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        err.print(
            f"error[validation_error]: {option} must be RFC 3339 or epoch seconds: {raw!r}",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(2) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def parse_grant(raw: str) -> ScopeGrant:
    """``ACTIONS@RESOURCE[#TOOLS]``: ``viewer,read@document:roadmap#check,read_tuples``."""
    actions, sep, rest = raw.partition("@")
    resource, _, tools = rest.partition("#")
    if not sep or not actions.strip() or not resource.strip():
        err.print(
            f"error[validation_error]: --grant {raw!r}: write ACTIONS@RESOURCE[#TOOLS], e.g. "
            "viewer,read@document:roadmap or viewer@document:*#read_tuples",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(2)
    return ScopeGrant(
        tuple(a.strip() for a in actions.split(",") if a.strip()),
        resource.strip(),
        tuple(t.strip() for t in tools.split(",") if t.strip()),
    )


def show_table(t: Table) -> None:
    """A table on a terminal fits it; piped or captured, rows stay whole (no truncation)."""
    (out if out.is_terminal else Console(width=10_000)).print(t)


def _when(ts: float | None) -> str:
    return "" if ts is None else timestamp(ts)


def identity_json(i: Identity) -> dict[str, Any]:
    return {
        "kind": i.kind,
        "id": i.id,
        "node": i.node,
        "display_name": i.display_name,
        "attributes": i.attributes,
        "status": i.status,
        "owners": list(i.owners),
        "orphaned": i.orphaned,
        "source": i.source,
        "created_at": i.created_at,
        "updated_at": i.updated_at,
        "last_seen": i.last_seen,
        "revision": i.revision,
    }


def delegation_json(d: Delegation) -> dict[str, Any]:
    return {
        "id": d.id,
        "delegator": d.delegator,
        "delegate": d.delegate,
        "parent_id": d.parent_id,
        "scope": [
            {"actions": list(g.actions), "resource": g.resource, "tools": list(g.tools)}
            for g in d.scope
        ],
        "purposes": list(d.purposes),
        "not_before": d.not_before,
        "expires_at": d.expires_at,
        "max_depth": d.max_depth,
        "condition": d.condition,
        "status": d.status,
        "revoked_at": d.revoked_at,
        "revoked_reason": d.revoked_reason,
        "created_by": d.created_by,
        "created_at": d.created_at,
        "revision": d.revision,
    }


def policy_json(p: StorePolicy) -> dict[str, Any]:
    return {
        "max_delegation_seconds": p.max_delegation_seconds,
        "suspend_orphans": p.suspend_orphans,
        "actions": dict(p.actions),
        "revision": p.revision,
        "max_credential_seconds": p.max_credential_seconds,
        "access_token_seconds": p.access_token_seconds,
        "allow_impersonation": p.allow_impersonation,
        "token_audiences": list(p.token_audiences),
        "trusted_issuers": [t.to_json() for t in p.trusted_issuers],
    }


def _status(status: str) -> str:
    color = {"active": "green", "suspended": "yellow", "revoked": "yellow"}.get(status, "red")
    return f"[{color}]{status}[/{color}]"


def _show_identity(i: Identity, as_json: bool, verb: str | None = None) -> None:
    if as_json:
        emit_json(identity_json(i))
        return
    if verb:
        out.print(f"{verb} [bold]{escape(i.node)}[/bold] (revision {i.revision})", highlight=False)
    rows = [
        ("node", i.node),
        ("name", i.display_name),
        ("status", _status(i.status) + (" [red](orphaned)[/red]" if i.orphaned else "")),
        ("owners", ", ".join(i.owners) or "(none)"),
        ("attributes", json.dumps(i.attributes, sort_keys=True) if i.attributes else ""),
        ("source", i.source),
        ("created", _when(i.created_at)),
        ("updated", _when(i.updated_at)),
        ("last seen", _when(i.last_seen) or "never"),
        ("revision", str(i.revision)),
    ]
    for name, value in rows:
        shown = value if name == "status" else escape(value)
        out.print(f"{name:>10}: {shown}", highlight=False)


def _grants(d: Delegation) -> str:
    return "; ".join(
        f"{','.join(g.actions)}@{g.resource}" + (f"#{','.join(g.tools)}" if g.tools else "")
        for g in d.scope
    )


def _show_delegation(d: Delegation, as_json: bool, verb: str | None = None) -> None:
    if as_json:
        emit_json(delegation_json(d))
        return
    if verb:
        out.print(f"{verb} delegation [bold]{d.id}[/bold] (revision {d.revision})", highlight=False)
    rows = [
        ("id", d.id),
        ("from", d.delegator),
        ("to", d.delegate),
        ("parent", d.parent_id or ""),
        ("scope", _grants(d)),
        ("purposes", ", ".join(d.purposes) or "(any)"),
        ("valid", f"{_when(d.not_before)} → {_when(d.expires_at)}"),
        ("max depth", str(d.max_depth)),
        ("condition", d.condition or ""),
        ("status", _status(d.status)),
        ("revoked", f"{_when(d.revoked_at)} {d.revoked_reason or ''}".strip()),
        ("created by", d.created_by),
    ]
    for name, value in rows:
        shown = value if name == "status" else escape(value)
        out.print(f"{name:>10}: {shown}", highlight=False)


# ---------------------------------------------------------------------------- identities


@identity_app.command("create")
def identity_create(
    kind: Annotated[str, typer.Argument(help="human, agent, workload or service_account.")],
    id: Annotated[str, typer.Argument(help="The bare id (the node is KIND:ID).")],
    owner: Annotated[
        list[str] | None,
        typer.Option(
            "--owner", "-o", help="An owner (repeatable): human:alice or group:eng#member."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    attributes: Annotated[
        str | None, typer.Option("--attributes", "-a", help="Attributes as a JSON object.")
    ] = None,
    source: Annotated[str, typer.Option("--source", help="Where it comes from.")] = "api",
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Create an identity; agents, workloads and service accounts need an --owner."""
    attrs = parse_json_object(attributes, "--attributes")
    with connect(db, url, api_key) as kp:
        i = kp.create_identity(
            kind,
            id,
            store=store,
            display_name=name,
            attributes=attrs,
            owners=owner or (),
            source=source,
        )
    _show_identity(i, wants_json(as_json, output), "Created")


@identity_app.command("get")
def identity_get(
    node: Annotated[str, typer.Argument(help="The identity, KIND:ID.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Show one identity."""
    with connect(db, url, api_key) as kp:
        i = kp.get_identity(node, store=store)
    _show_identity(i, wants_json(as_json, output))


@identity_app.command("list")
def identity_list(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="active, suspended or deprovisioned.")
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only those of this owner.")] = None,
    orphaned: Annotated[
        bool | None,
        typer.Option("--orphaned/--owned", help="Only orphaned (or only owned) identities."),
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Every identity matching the filters (all pages)."""
    with connect(db, url, api_key) as kp:
        found: list[Identity] = all_pages(
            lambda token: kp.list_identities(
                store=store,
                kind=kind,
                status=status,
                owner=owner,
                orphaned=orphaned,
                page_size=1000,
                continuation_token=token,
            )
        )
    if wants_json(as_json, output):
        emit_json({"identities": [identity_json(i) for i in found]})
        return
    t = table("node", "name", "status", "owners", "source", "updated")
    for i in found:
        t.add_row(
            escape(i.node),
            escape(i.display_name),
            _status(i.status) + (" (orphaned)" if i.orphaned else ""),
            escape(", ".join(i.owners)),
            escape(i.source),
            _when(i.updated_at),
        )
    show_table(t)


@identity_app.command("update")
def identity_update(
    node: Annotated[str, typer.Argument(help="The identity, KIND:ID.")],
    name: Annotated[str | None, typer.Option("--name", help="New display name.")] = None,
    attributes: Annotated[
        str | None,
        typer.Option("--attributes", "-a", help="New attributes (a JSON object; replaces all)."),
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Change an identity's display name and/or attributes."""
    attrs = parse_json_object(attributes, "--attributes")
    with connect(db, url, api_key) as kp:
        i = kp.update_identity(node, store=store, display_name=name, attributes=attrs)
    _show_identity(i, wants_json(as_json, output), "Updated")


@identity_app.command("owners")
def identity_owners(
    node: Annotated[str, typer.Argument(help="The identity, KIND:ID.")],
    add: Annotated[
        list[str] | None, typer.Option("--add", help="Owner to add (repeatable).")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Owner to remove (repeatable).")
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Add and remove owners in one change (a non-human identity keeps at least one)."""
    with connect(db, url, api_key) as kp:
        i = kp.set_identity_owners(node, store=store, add=add or (), remove=remove or ())
    _show_identity(i, wants_json(as_json, output), "Owners of")


@identity_app.command("suspend")
def identity_suspend(
    node: Annotated[str, typer.Argument(help="The identity, KIND:ID.")],
    reason: ReasonOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The kill switch: every decision it appears in denies at once; its delegations are
    revoked."""
    with connect(db, url, api_key) as kp:
        i = kp.suspend_identity(node, store=store, reason=reason)
    _show_identity(i, wants_json(as_json, output), "Suspended")


@identity_app.command("reactivate")
def identity_reactivate(
    node: Annotated[str, typer.Argument(help="The identity, KIND:ID.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Reactivate a suspended identity (revoked delegations stay revoked)."""
    with connect(db, url, api_key) as kp:
        i = kp.reactivate_identity(node, store=store)
    _show_identity(i, wants_json(as_json, output), "Reactivated")


@identity_app.command("deprovision")
def identity_deprovision(
    node: Annotated[str, typer.Argument(help="The identity, KIND:ID.")],
    reason: ReasonOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Deprovision an identity for good; what it alone owned is flagged orphaned."""
    with connect(db, url, api_key) as kp:
        i = kp.deprovision_identity(node, store=store, reason=reason)
    _show_identity(i, wants_json(as_json, output), "Deprovisioned")


# ---------------------------------------------------------------------------- delegations


@delegation_app.command("create")
def delegation_create(
    delegator: Annotated[str, typer.Option("--from", help="Who delegates (KIND:ID).")],
    delegate: Annotated[str, typer.Option("--to", help="Who acts on their behalf (KIND:ID).")],
    grant: Annotated[
        list[str],
        typer.Option(
            "--grant",
            "-g",
            help="ACTIONS@RESOURCE[#TOOLS] (repeatable), e.g. viewer,read@document:roadmap or "
            "viewer@document:*#read_tuples.",
        ),
    ],
    expires_in: Annotated[
        float | None, typer.Option("--expires-in", help="Seconds from now until it expires.")
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="When it expires (RFC 3339 or epoch).")
    ] = None,
    purpose: Annotated[
        list[str] | None, typer.Option("--purpose", "-p", help="A purpose (repeatable).")
    ] = None,
    not_before: Annotated[
        str | None, typer.Option("--not-before", help="When it starts (RFC 3339 or epoch).")
    ] = None,
    max_depth: Annotated[
        int, typer.Option("--max-depth", help="Further hops the delegate may sub-delegate.")
    ] = 0,
    condition: Annotated[
        str | None, typer.Option("--condition", help="A CEL expression that must hold.")
    ] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="Derive it from this delegation id.")
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Let --to act for --from on the --grant scopes until --expires-in/--expires-at."""
    scope = [parse_grant(g) for g in grant]
    if (expires_in is None) == (expires_at is None):
        err.print(
            "error[validation_error]: give exactly one of --expires-in or --expires-at",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(2)
    until = (
        time.time() + expires_in
        if expires_in is not None
        else parse_time(expires_at or "", "--expires-at")
    )
    start = None if not_before is None else parse_time(not_before, "--not-before")
    with connect(db, url, api_key) as kp:
        d = kp.create_delegation(
            delegator=delegator,
            delegate=delegate,
            scope=scope,
            expires_at=until,
            store=store,
            purposes=purpose or (),
            not_before=start,
            max_depth=max_depth,
            condition=condition,
            parent_id=parent,
        )
    _show_delegation(d, wants_json(as_json, output), "Created")


@delegation_app.command("get")
def delegation_get(
    delegation_id: str,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Show one delegation."""
    with connect(db, url, api_key) as kp:
        d = kp.get_delegation(delegation_id, store=store)
    _show_delegation(d, wants_json(as_json, output))


@delegation_app.command("list")
def delegation_list(
    delegator: Annotated[str | None, typer.Option("--from", help="Given by this identity.")] = None,
    delegate: Annotated[str | None, typer.Option("--to", help="Held by this identity.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="active or revoked.")] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="Derived from this delegation.")
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Every delegation matching the filters (all pages)."""
    with connect(db, url, api_key) as kp:
        found: list[Delegation] = all_pages(
            lambda token: kp.list_delegations(
                store=store,
                delegator=delegator,
                delegate=delegate,
                status=status,
                parent_id=parent,
                page_size=1000,
                continuation_token=token,
            )
        )
    if wants_json(as_json, output):
        emit_json({"delegations": [delegation_json(d) for d in found]})
        return
    t = table("id", "from", "to", "scope", "purposes", "expires", "status", "parent")
    for d in found:
        t.add_row(
            d.id,
            escape(d.delegator),
            escape(d.delegate),
            escape(_grants(d)),
            escape(", ".join(d.purposes) or "(any)"),
            _when(d.expires_at),
            _status(d.status),
            d.parent_id or "",
        )
    show_table(t)


@delegation_app.command("revoke")
def delegation_revoke(
    delegation_id: str,
    reason: ReasonOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Revoke a delegation and every delegation derived from it, at once."""
    with connect(db, url, api_key) as kp:
        revoked = kp.revoke_delegation(delegation_id, store=store, reason=reason)
    if wants_json(as_json, output):
        emit_json({"revoked": [delegation_json(d) for d in revoked]})
        return
    out.print(f"Revoked {len(revoked)} delegation(s):", highlight=False)
    for d in revoked:
        out.print(f"  {d.id} {d.delegator} → {d.delegate}", highlight=False, markup=False)


# ---------------------------------------------------------------------------- store policy


def _show_policy(p: StorePolicy, as_json: bool) -> None:
    if as_json:
        emit_json(policy_json(p))
        return
    out.print(f"max delegation: {p.max_delegation_seconds} s", highlight=False)
    out.print(f"suspend orphans: {'yes' if p.suspend_orphans else 'no'}", highlight=False)
    out.print(f"max credential: {p.max_credential_seconds} s", highlight=False)
    out.print(f"access token lifetime: {p.access_token_seconds} s", highlight=False)
    out.print(
        f"impersonation: {'allowed' if p.allow_impersonation else 'refused'}", highlight=False
    )
    out.print(
        "token audiences: " + (", ".join(p.token_audiences) or "any"),
        highlight=False,
        markup=False,
    )
    out.print("trusted issuers:" + ("" if p.trusted_issuers else " (none)"))
    for t in p.trusted_issuers:
        keys = t.jwks_uri or f"{len((t.jwks or {}).get('keys', []))} inline key(s)"
        out.print(
            f"  {t.issuer} → {t.subject_kind}:<{t.subject_claim}> (aud {t.audience}; keys: {keys})",
            highlight=False,
            markup=False,
        )
    out.print("actions:" + ("" if p.actions else " (none: an action is a relation)"))
    for action, relation in sorted(p.actions.items()):
        out.print(f"  {action} → {relation}", highlight=False, markup=False)
    out.print(f"revision: {p.revision}", highlight=False)


@policy_app.command("get")
def policy_get(
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Show the store policy."""
    with connect(db, url, api_key) as kp:
        p = kp.get_store_policy(store=store)
    _show_policy(p, wants_json(as_json, output))


@policy_app.command("set")
def policy_set(
    max_delegation_seconds: Annotated[
        int | None, typer.Option("--max-delegation-seconds", help="The longest a delegation lasts.")
    ] = None,
    suspend_orphans: Annotated[
        bool | None,
        typer.Option(
            "--suspend-orphans/--keep-orphans",
            help="Suspend non-human identities whose last owner is deprovisioned.",
        ),
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action",
            help="ACTION=RELATION (repeatable; replaces the whole map), e.g. read=viewer.",
        ),
    ] = None,
    clear_actions: Annotated[
        bool, typer.Option("--clear-actions", help="Empty the action map.")
    ] = False,
    max_credential_seconds: Annotated[
        int | None,
        typer.Option("--max-credential-seconds", help="The longest a client credential lasts."),
    ] = None,
    access_token_seconds: Annotated[
        int | None,
        typer.Option(
            "--access-token-seconds",
            help="The lifetime of issued access tokens (60 … KEYPLANE_TOKEN_MAX_TTL).",
        ),
    ] = None,
    allow_impersonation: Annotated[
        bool | None,
        typer.Option(
            "--allow-impersonation/--refuse-impersonation",
            help="Whether a token exchange without actor_token may be granted.",
        ),
    ] = None,
    token_audience: Annotated[
        list[str] | None,
        typer.Option(
            "--token-audience",
            help="An audience tokens may be issued for (repeatable; replaces the whole list).",
        ),
    ] = None,
    clear_token_audiences: Annotated[
        bool,
        typer.Option("--clear-token-audiences", help="Allow any audience again."),
    ] = False,
    trusted_issuers: Annotated[
        str | None,
        typer.Option(
            "--trusted-issuers",
            help="A JSON file (- for stdin) holding the list of trusted issuers, each "
            '{"issuer", "jwks" or "jwks_uri", "audience", "subject_kind"?, '
            '"subject_claim"?, "algorithms"?}; replaces the whole list ([] clears it).',
        ),
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Change the store policy (only what is given)."""
    actions: dict[str, str] | None = {} if clear_actions else None
    for raw in action or ():
        name, sep, relation = raw.partition("=")
        if not sep or not name.strip() or not relation.strip():
            err.print(
                f"error[validation_error]: --action {raw!r}: write ACTION=RELATION",
                highlight=False,
                markup=False,
            )
            raise typer.Exit(2)
        actions = actions or {}
        actions[name.strip()] = relation.strip()
    audiences: list[str] | None = [] if clear_token_audiences else None
    if token_audience:
        audiences = list(token_audience)
    issuers = None if trusted_issuers is None else _issuers_file(trusted_issuers)
    with connect(db, url, api_key) as kp:
        p = kp.update_store_policy(
            store=store,
            max_delegation_seconds=max_delegation_seconds,
            suspend_orphans=suspend_orphans,
            actions=actions,
            max_credential_seconds=max_credential_seconds,
            access_token_seconds=access_token_seconds,
            allow_impersonation=allow_impersonation,
            token_audiences=audiences,
            trusted_issuers=issuers,
        )
    _show_policy(p, wants_json(as_json, output))


def _issuers_file(path: str) -> list[dict[str, Any]]:
    """The JSON list of trusted issuers in ``path`` (``-``: stdin); exit 2 when unreadable."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        value = json.loads(text)
    except (OSError, ValueError) as exc:
        err.print(
            f"error[validation_error]: --trusted-issuers {path}: {exc}",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(2) from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        err.print(
            f"error[validation_error]: --trusted-issuers {path}: a JSON list of objects",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(2)
    return value

"""``keyplane access|posture …`` — governance analytics from the command line (issue 8):
effective access (``access effective``, ``access holders``), drawn as Graphviz DOT or
Mermaid; over-privilege and its recommendation (``posture over-privilege``, ``posture
apply``), agents exceeding their owners (``posture exceeding``), the NHI inventory
(``posture inventory``), the posture report (``posture report``: text, JSON or a
self-contained HTML page) and the MCP gateway's tool usage (``posture tools``).

Like every command: the local database (``--db``) or a server (``--url`` + ``--api-key``);
a table for people, JSON for scripts (the REST API's JSON: the records' ``to_dict``).
"""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    UrlOpt,
    all_pages,
    connect,
    emit_json,
    err,
    out,
    table,
    timestamp,
)
from keyplane.cli.identities import show_table
from keyplane.governance.posture import (
    AccessEntry,
    ExcessAccess,
    NhiInventoryItem,
    OverPrivilege,
)
from keyplane.graph import draw

__all__ = ["access_app", "posture_app"]

access_app = typer.Typer(
    help="Effective access: everything an identity can reach, or everyone who can reach a "
    "resource, with the paths that grant it (drawn as Graphviz DOT or Mermaid on request).",
    no_args_is_help=True,
)
posture_app = typer.Typer(
    help="Non-human identity posture: over-privilege and least-privilege recommendations, "
    "agents exceeding their owners, the NHI inventory, the posture report and the MCP "
    "gateway's tool usage.",
    no_args_is_help=True,
)

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]
WindowOpt = Annotated[
    int, typer.Option("--window-days", min=1, max=3650, help="The usage window, in days.")
]
PageOpt = Annotated[
    int,
    typer.Option("--page-size", min=1, help="Entries fetched per request (one ledger event each)."),
]
PathsOpt = Annotated[
    bool, typer.Option("--paths/--no-paths", help="Include the paths that grant each entry.")
]
DelegatedOpt = Annotated[
    bool,
    typer.Option("--delegated/--no-delegated", help="Include access exercised by delegation."),
]


class AccessFormat(StrEnum):
    table = "table"
    json = "json"
    dot = "dot"
    mermaid = "mermaid"


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    html = "html"


FormatOpt = Annotated[
    AccessFormat | None,
    typer.Option(
        "--format", "-f", help="table (default), json, dot (Graphviz) or mermaid (flowchart)."
    ),
]


def _say(text: str) -> None:
    out.print(text, highlight=False, markup=False)


def _when(ts: float | None) -> str:
    return "" if ts is None else timestamp(ts)


def _days(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 86400:.0f}d"


def _path_summary(paths: tuple[Any, ...]) -> str:
    """The first granting path in one line: the tuples it goes through, object first."""
    if not paths:
        return ""
    steps = paths[0] if isinstance(paths[0], list | tuple) else [paths[0]]
    parts = [
        str(s.get("tuple") or s.get("at") or s.get("kind", ""))
        for s in steps
        if isinstance(s, dict)
    ]
    more = f"  (+{len(paths) - 1} more)" if len(paths) > 1 else ""
    return " → ".join(parts) + more


def _show_access(entries: list[AccessEntry], fmt: AccessFormat, as_json: bool, title: str) -> None:
    if as_json or fmt is AccessFormat.json:
        emit_json([e.to_dict() for e in entries])
        return
    if fmt in (AccessFormat.dot, AccessFormat.mermaid):
        drawn = (
            draw.access_dot(entries, title=title)
            if fmt is AccessFormat.dot
            else draw.access_mermaid(entries, title=title)
        )
        sys.stdout.write(drawn if drawn.endswith("\n") else drawn + "\n")
        return
    t = table("user", "relation", "object", "via", "path")
    for e in entries:
        via = e.via if e.on_behalf_of is None else f"{e.via} for {e.on_behalf_of}"
        t.add_row(e.user, e.relation, e.object, via, _path_summary(e.paths))
    show_table(t)
    err.print(f"{len(entries)} entries", highlight=False, markup=False)


# ---------------------------------------------------------------------------- access


@access_app.command("effective")
def access_effective(
    identity: Annotated[str, typer.Argument(help="The identity, e.g. agent:planner.")],
    object_type: Annotated[
        str | None, typer.Option("--object-type", "-t", help="Only objects of this type.")
    ] = None,
    relation: Annotated[
        str | None, typer.Option("--relation", "-r", help="Only this relation.")
    ] = None,
    paths: PathsOpt = True,
    delegated: DelegatedOpt = True,
    page_size: PageOpt = 500,
    fmt: FormatOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything IDENTITY can reach, with paths (and what it exercises for a delegator)."""
    with connect(db, url, api_key) as kp:
        entries = list(
            kp.iter_effective_access(
                identity, store=store, object_type=object_type, relation=relation,
                include_paths=paths, include_delegated=delegated, page_size=page_size,
            )
        )  # fmt: skip
    _show_access(entries, fmt or AccessFormat.table, as_json, f"effective access of {identity}")


@access_app.command("holders")
def access_holders(
    object: Annotated[str, typer.Argument(help="The resource, e.g. document:roadmap.")],
    relation: Annotated[
        str | None, typer.Option("--relation", "-r", help="Only this relation.")
    ] = None,
    user_type: Annotated[
        str | None, typer.Option("--user-type", "-u", help="Only users of this type, e.g. agent.")
    ] = None,
    paths: PathsOpt = True,
    delegated: DelegatedOpt = True,
    page_size: PageOpt = 500,
    fmt: FormatOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everyone who can reach OBJECT, with paths — and agents acting for a holder."""
    with connect(db, url, api_key) as kp:
        entries = list(
            kp.iter_who_can_access(
                object, store=store, relation=relation, user_type=user_type,
                include_paths=paths, include_delegated=delegated, page_size=page_size,
            )
        )  # fmt: skip
    _show_access(entries, fmt or AccessFormat.table, as_json, f"who can access {object}")


# ---------------------------------------------------------------------------- over-privilege


def _show_over_privilege(o: OverPrivilege) -> None:
    _say(
        f"{o.identity}: {len(o.grants)} grants, {len(o.used)} permissions used of "
        f"{o.effective_total} reachable ({o.unused_total} unused), window "
        f"{_when(o.since)} .. {_when(o.until)}"
    )
    t = table("grant", "covers", "reaches", "expires", "recommendation")
    keep = set(o.keep)
    for g in o.grants:
        t.add_row(
            g.tuple_key, str(g.covers), str(g.reaches), _when(g.expires_at),
            "keep" if g.tuple_key in keep else "revoke",
        )  # fmt: skip
    show_table(t)
    if o.used:
        u = table("used: object", "relation", "uses", "last used")
        for p in o.used:
            u.add_row(p.object, p.relation, str(p.uses), _when(p.last_used_at))
        show_table(u)
    if o.uncovered:
        _say(
            "used but no longer granted: "
            + ", ".join(f"{p.relation} on {p.object}" for p in o.uncovered)
        )


@posture_app.command("over-privilege")
def posture_over_privilege(
    identity: Annotated[str, typer.Argument(help="The identity, e.g. agent:planner.")],
    window_days: WindowOpt = 90,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Unused permissions listed.")] = 1000,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """IDENTITY's grants versus its use in the window, and the least-privilege advice."""
    with connect(db, url, api_key) as kp:
        o = kp.over_privilege(identity, store=store, window_days=window_days, limit=limit)
    if as_json:
        emit_json(o.to_dict())
        return
    _show_over_privilege(o)


class Mode(StrEnum):
    review = "review"
    revoke = "revoke"


@posture_app.command("apply")
def posture_apply(
    identity: Annotated[str, typer.Argument(help="The identity, e.g. agent:planner.")],
    mode: Annotated[
        Mode,
        typer.Option("--mode", help="review (open a review campaign) or revoke (delete now)."),
    ] = Mode.review,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    window_days: WindowOpt = 90,
    reviewer: Annotated[
        str, typer.Option("--reviewer", help="For review: beneficiary_owners, a human or group.")
    ] = "beneficiary_owners",
    due_at: Annotated[
        float | None, typer.Option("--due-at", help="For review: seconds since the epoch.")
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke the grants IDENTITY's recommendation leaves out, or put them to a review."""
    # the list shown is the list applied: it goes back as `expected`, so a recommendation
    # that changed in between is refused (recommendation_changed), never applied unseen
    with connect(db, url, api_key) as kp:
        o = kp.over_privilege(identity, store=store, window_days=window_days, limit=1)
        if o.revoke and not yes:
            verb = "Revoke" if mode is Mode.revoke else "Put to review"
            _say(f"{verb} {len(o.revoke)} grant(s) of {identity}:")
            for t in o.revoke:
                _say(f"  {t}")
            if not typer.confirm("Proceed?", default=False, err=True):
                err.print("Nothing applied.", highlight=False, markup=False)
                raise typer.Exit(1)
        a = kp.apply_privilege_recommendation(
            identity, store=store, mode=mode.value, window_days=window_days,
            expected=list(o.revoke), reviewer=reviewer, due_at=due_at,
        )  # fmt: skip
    if as_json:
        emit_json(a.to_dict())
        return
    if a.mode == "revoke":
        _say(f"Revoked {len(a.tuples)} grant(s) of {a.identity} at revision {a.revision}")
    else:
        _say(f"Review {a.review_id} opened for {len(a.tuples)} grant(s) of {a.identity}")
    for t in a.tuples:
        _say(f"  {t}")


@posture_app.command("exceeding")
def posture_exceeding(
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Excess entries listed each.")] = 100,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Agents that reach what one of their owners or delegators does not."""
    with connect(db, url, api_key) as kp:
        found: list[ExcessAccess] = all_pages(
            lambda t: kp.agents_exceeding_owners(
                store=store, agent=agent, limit=limit, page_size=200, continuation_token=t
            )
        )
    if as_json:
        emit_json([e.to_dict() for e in found])
        return
    t = table("agent", "principal", "as", "excess", "examples")
    for e in found:
        examples = ", ".join(f"{p.relation} on {p.object}" for p in e.excess[:3])
        t.add_row(e.agent, e.principal, e.relationship, str(e.excess_total), examples)
    show_table(t)


@posture_app.command("inventory")
def posture_inventory(
    kind: Annotated[
        str | None, typer.Option("--kind", help="agent, workload or service_account.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="active, suspended or deprovisioned.")
    ] = None,
    window_days: WindowOpt = 90,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every non-human identity: owners, status, credentials, last seen, delegations."""
    with connect(db, url, api_key) as kp:
        found: list[NhiInventoryItem] = all_pages(
            lambda t: kp.nhi_inventory(
                store=store, kind=kind, status=status, window_days=window_days,
                page_size=500, continuation_token=t,
            )
        )  # fmt: skip
    if as_json:
        emit_json([i.to_dict() for i in found])
        return
    t = table(
        "identity", "status", "owners", "creds", "oldest", "never used", "unused 90d",
        "last seen", "delegations", "env",
    )  # fmt: skip
    for i in found:
        owners = ", ".join(i.owners) or ("(orphaned)" if i.orphaned else "")
        t.add_row(
            i.identity, i.status, owners, str(i.credential_count),
            _days(i.oldest_credential_age), str(i.never_used), str(i.unused_90),
            _when(i.last_seen), str(i.delegations_held), i.environment or "",
        )  # fmt: skip
    show_table(t)


@posture_app.command("report")
def posture_report(
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="text (default), json or html.")
    ] = ReportFormat.text,
    file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the report to this file.")
    ] = None,
    window_days: WindowOpt = 90,
    long_lived_days: Annotated[
        int, typer.Option("--long-lived-days", min=1, help="Longer-lived secrets are findings.")
    ] = 90,
    inventory: Annotated[
        bool, typer.Option("--inventory/--no-inventory", help="Include the inventory.")
    ] = True,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The NHI posture report (OWASP NHI Top 10 findings) as text, JSON or an HTML page."""
    from keyplane.governance import report as render

    with connect(db, url, api_key) as kp:
        r = kp.posture_report(
            store=store, window_days=window_days, long_lived_days=long_lived_days,
            include_inventory=inventory,
        )  # fmt: skip
    if as_json:
        fmt = ReportFormat.json
    if fmt is ReportFormat.json:
        text = render.render_json(r)
    elif fmt is ReportFormat.html:
        text = render.render_html(r)
    else:
        to_terminal = file is None and out.is_terminal
        text = render.render_text(r, width=out.width if to_terminal else 100, color=to_terminal)
    if file is not None:
        file.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        err.print(
            f"Wrote {fmt.value} report to {file} ({len(r.findings)} findings)",
            highlight=False,
            markup=False,
        )
        return
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@posture_app.command("tools")
def posture_tools(
    window_days: Annotated[
        int | None,
        typer.Option(
            "--window-days", min=1, max=3650, help="The window: the last N days (default 90)."
        ),
    ] = None,
    since: Annotated[
        float | None, typer.Option("--since", help="Window start, seconds since the epoch.")
    ] = None,
    until: Annotated[
        float | None, typer.Option("--until", help="Window end, seconds since the epoch.")
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The MCP gateway's tools: calls, last use, agents, never-used and dangerous tools."""
    if window_days is not None:
        if since is not None:
            err.print("give --window-days or --since, not both", highlight=False, markup=False)
            raise typer.Exit(2)
        since = (until if until is not None else time.time()) - window_days * 86400.0
    with connect(db, url, api_key) as kp:
        r = kp.tool_usage(store=store, since=since, until=until)
    if as_json:
        emit_json(r.to_dict())
        return
    _say(
        f"{len(r.tools)} tools, {r.allowed} calls allowed and {r.denied} denied, window "
        f"{_when(r.since)} .. {_when(r.until)}"
    )
    t = table("tool", "status", "kind", "risk", "allowed", "denied", "last used", "agents")
    for x in r.tools:
        t.add_row(
            x.ref, x.status, x.kind or "", x.risk or "", str(x.allowed), str(x.denied),
            _when(x.last_used_at), ", ".join(x.agents),
        )  # fmt: skip
    show_table(t)
    if r.agents:
        a = table("agent", "calls", "denied", "last used", "tools used", "dangerous (unused *)")
        for g in r.agents:
            unused = set(g.unused_dangerous_tools)
            a.add_row(
                g.identity, str(g.calls), str(g.denied), _when(g.last_used_at),
                ", ".join(g.tools),
                ", ".join(d + ("*" if d in unused else "") for d in g.dangerous_tools),
            )  # fmt: skip
        show_table(a)
    _say("never used: " + (", ".join(r.never_used) or "none"))

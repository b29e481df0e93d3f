"""``keyplane entitlement|request|review …`` — access governance from the command line
(issue 7): requestable entitlements, access requests (file, approve, deny, cancel, revoke,
history) and review campaigns.

Like every command: the local database (``--db``) or a server (``--url`` + ``--api-key``);
a table or a few lines for people, ``--json`` for scripts (the REST API's JSON). An
identity acting is named (``--requester``, ``--approver``, ``--reviewer``) or given by its
access token (``--token``; ``-`` reads it from standard input).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

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
from keyplane.cli.identities import show_table
from keyplane.governance.records import AccessRequest, Entitlement, ReviewCampaign, ReviewItem
from keyplane.ledger.events import LedgerEvent

__all__ = ["entitlement_app", "request_app", "review_app"]

entitlement_app = typer.Typer(
    help="Requestable entitlements: a relation on an object (or a type) with owners, risk, "
    "a maximum duration and an approval policy.",
    no_args_is_help=True,
)
request_app = typer.Typer(
    help="Access requests: ask for an entitlement, approve or deny, cancel, revoke a grant.",
    no_args_is_help=True,
)
review_app = typer.Typer(
    help="Access review campaigns: certify or revoke standing grants.", no_args_is_help=True
)

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Your access token instead of naming yourself ('-': read it from stdin).",
        show_default=False,
    ),
]
CommentOpt = Annotated[str | None, typer.Option("--comment", help="Recorded with the decision.")]


def _when(ts: float | None) -> str:
    return "" if ts is None else timestamp(ts)


def _say(text: str) -> None:
    out.print(text, highlight=False, markup=False)


def _token(token: str | None) -> str | None:
    if token == "-":
        token = sys.stdin.readline().strip()
        if not token:
            raise typer.BadParameter("no token on standard input", param_hint="--token")
    return token


# JSON output is the REST API's (the pydantic models are imported when needed: the CLI
# does not load the HTTP layer to start)


def _ent_json(e: Entitlement) -> dict[str, Any]:
    from keyplane.api.governance_schemas import EntitlementOut

    return EntitlementOut.from_entitlement(e).model_dump(mode="json")


def _req_json(r: AccessRequest) -> dict[str, Any]:
    from keyplane.api.governance_schemas import AccessRequestOut

    return AccessRequestOut.from_request(r).model_dump(mode="json")


def _review_json(c: ReviewCampaign) -> dict[str, Any]:
    from keyplane.api.governance_schemas import ReviewOut

    return ReviewOut.from_review(c).model_dump(mode="json")


def _item_json(i: ReviewItem) -> dict[str, Any]:
    from keyplane.api.governance_schemas import ReviewItemOut

    return ReviewItemOut.from_item(i).model_dump(mode="json")


def _event_json(e: LedgerEvent) -> dict[str, Any]:
    from keyplane.api.ledger_schemas import LedgerEventOut

    return LedgerEventOut.from_event(e).model_dump(mode="json")


def _lines(d: dict[str, Any]) -> None:
    for k, v in d.items():
        if v is not None and v != [] and v != "":
            _say(f"{k}: {json.dumps(v) if isinstance(v, list | dict) else v}")


# ---------------------------------------------------------------------------- entitlements


def _approval(value: str | None) -> list[dict[str, Any]] | None:
    """--approval: a JSON list of rules, inline or in a file."""
    if value is None:
        return None
    try:
        text = value if value.lstrip().startswith("[") else Path(value).read_text()
        rules = json.loads(text)
    except (OSError, ValueError) as exc:
        err.print(f"error[validation_error]: --approval: {exc}", markup=False)
        raise typer.Exit(2) from None
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        err.print("error[validation_error]: --approval: a JSON list of rules", markup=False)
        raise typer.Exit(2)
    return rules


ApprovalOpt = Annotated[
    str | None,
    typer.Option(
        "--approval",
        help='The approval policy: a JSON list of rules, inline or a file — e.g. \'[{"id": '
        '"low", "when": "entitlement.risk == \\"low\\"", "outcome": "approve"}]\'.',
    ),
]


def _show_entitlement(e: Entitlement, as_json: bool, what: str) -> None:
    if as_json:
        emit_json(_ent_json(e))
        return
    _say(
        f"{what} entitlement {e.id}: {e.relation} on {e.object} ({e.risk} risk, at most "
        f"{e.max_duration_seconds} s, {e.status})"
    )


@entitlement_app.command("create")
def entitlement_create(
    entitlement_id: Annotated[str, typer.Argument(help="Its id, e.g. roadmap-viewer.")],
    object: Annotated[
        str, typer.Option("--object", help="type:id, or type:* (the request names the object).")
    ],
    relation: Annotated[str, typer.Option("--relation", help="The relation granted.")],
    owner: Annotated[
        list[str],
        typer.Option("--owner", help="An owner (human:bob, group:sec#member); repeatable."),
    ],
    description: Annotated[str, typer.Option("--description")] = "",
    risk: Annotated[str, typer.Option("--risk", help="low, medium, high or critical.")] = "medium",
    max_duration: Annotated[
        int, typer.Option("--max-duration", help="The longest grant, in seconds.")
    ] = 3600,
    agents_may_request: Annotated[
        bool, typer.Option("--agents-may-request", help="Agents may ask for it.")
    ] = False,
    approval: ApprovalOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Create a requestable entitlement."""
    rules = _approval(approval) or []
    with connect(db, url, api_key) as kp:
        e = kp.create_entitlement(
            entitlement_id, object, relation, store=store, owners=owner,
            description=description, risk=risk, max_duration_seconds=max_duration,
            agents_may_request=agents_may_request, approval=rules,
            status="disabled" if disabled else "active",
        )  # fmt: skip
    _show_entitlement(e, wants_json(as_json, output), "Created")


@entitlement_app.command("list")
def entitlement_list(
    status: Annotated[str | None, typer.Option("--status", help="active or disabled.")] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The store's entitlements."""
    with connect(db, url, api_key) as kp:
        found: list[Entitlement] = all_pages(
            lambda token: kp.list_entitlements(
                store=store, status=status, page_size=1000, continuation_token=token
            )
        )
    if wants_json(as_json, output):
        emit_json([_ent_json(e) for e in found])
        return
    t = table("id", "object", "relation", "risk", "max s", "agents", "owners", "status")
    for e in found:
        t.add_row(
            e.id, e.object, e.relation, e.risk, str(e.max_duration_seconds),
            "yes" if e.agents_may_request else "no", ", ".join(e.owners), e.status,
        )  # fmt: skip
    show_table(t)


@entitlement_app.command("get")
def entitlement_get(
    entitlement_id: Annotated[str, typer.Argument(help="The entitlement id.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """One entitlement, with its approval policy."""
    with connect(db, url, api_key) as kp:
        e = kp.get_entitlement(entitlement_id, store=store)
    if wants_json(as_json, output):
        emit_json(_ent_json(e))
        return
    _lines(_ent_json(e))


@entitlement_app.command("update")
def entitlement_update(
    entitlement_id: Annotated[str, typer.Argument(help="The entitlement id.")],
    description: Annotated[str | None, typer.Option("--description")] = None,
    owner: Annotated[
        list[str] | None, typer.Option("--owner", help="Replace the owners; repeatable.")
    ] = None,
    risk: Annotated[str | None, typer.Option("--risk")] = None,
    max_duration: Annotated[int | None, typer.Option("--max-duration")] = None,
    agents_may_request: Annotated[
        bool | None, typer.Option("--agents-may-request/--no-agents-may-request")
    ] = None,
    approval: ApprovalOpt = None,
    status: Annotated[str | None, typer.Option("--status", help="active or disabled.")] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Change what is given (--approval replaces the policy as a whole)."""
    rules = _approval(approval)
    with connect(db, url, api_key) as kp:
        e = kp.update_entitlement(
            entitlement_id, store=store, description=description, owners=owner or None,
            risk=risk, max_duration_seconds=max_duration,
            agents_may_request=agents_may_request, approval=rules, status=status,
        )  # fmt: skip
    _show_entitlement(e, wants_json(as_json, output), "Updated")


@entitlement_app.command("delete")
def entitlement_delete(
    entitlement_id: Annotated[str, typer.Argument(help="The entitlement id.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Delete an entitlement (grants already given run until they end)."""
    with connect(db, url, api_key) as kp:
        kp.delete_entitlement(entitlement_id, store=store)
    if wants_json(as_json, output):
        emit_json({"deleted": entitlement_id})
        return
    _say(f"Deleted entitlement {entitlement_id}")


# ---------------------------------------------------------------------------- requests


def _show_request(r: AccessRequest, as_json: bool) -> None:
    if as_json:
        emit_json(_req_json(r))
        return
    _say(
        f"{r.id}: {r.state} — {r.relation} on {r.object} for {r.beneficiary} "
        f"(asked by {r.requester}, entitlement {r.entitlement_id})"
    )
    if r.state == "pending":
        _say(
            f"Waiting for {r.required} approval(s) from {', '.join(r.route_approvers)} "
            f"until {_when(r.pending_until)}."
        )
    if r.grant_expires_at is not None and r.state == "active":
        _say(f"Granted until {_when(r.grant_expires_at)}.")


Common = Annotated[str, typer.Argument(help="The access request id.")]


@request_app.command("create")
def request_create(
    entitlement: Annotated[str, typer.Argument(help="The entitlement id.")],
    duration: Annotated[
        int | None,
        typer.Option("--duration", help="Seconds of access asked for (default: one hour)."),
    ] = None,
    object: Annotated[
        str | None, typer.Option("--object", help="The object (for a type:* entitlement).")
    ] = None,
    requester: Annotated[
        str | None, typer.Option("--requester", help="Who asks, e.g. agent:planner.")
    ] = None,
    beneficiary: Annotated[
        str | None, typer.Option("--beneficiary", help="For whom (default: the requester).")
    ] = None,
    token: TokenOpt = None,
    purpose: Annotated[str | None, typer.Option("--purpose")] = None,
    justification: Annotated[str | None, typer.Option("--justification", help="Why.")] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Request access: the approval policy answers at once (active, denied or pending)."""
    token = _token(token)
    with connect(db, url, api_key) as kp:
        r = kp.create_access_request(
            entitlement, store=store, object=object, requester=requester, token=token,
            beneficiary=beneficiary, duration_seconds=duration, purpose=purpose,
            justification=justification,
        )  # fmt: skip
    _show_request(r, wants_json(as_json, output))


@request_app.command("list")
def request_list(
    state: Annotated[str | None, typer.Option("--state", help="e.g. pending, active.")] = None,
    entitlement: Annotated[str | None, typer.Option("--entitlement")] = None,
    beneficiary: Annotated[str | None, typer.Option("--beneficiary")] = None,
    requester: Annotated[str | None, typer.Option("--requester")] = None,
    approver: Annotated[
        str | None, typer.Option("--approver", help="Only those routed to this approver.")
    ] = None,
    object: Annotated[str | None, typer.Option("--object")] = None,
    relation: Annotated[str | None, typer.Option("--relation")] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The store's access requests matching every filter."""
    with connect(db, url, api_key) as kp:
        found: list[AccessRequest] = all_pages(
            lambda t: kp.list_access_requests(
                store=store,
                state=state,
                entitlement_id=entitlement,
                beneficiary=beneficiary,
                requester=requester,
                approver=approver,
                object=object,
                relation=relation,
                page_size=1000,
                continuation_token=t,
            )
        )
    if wants_json(as_json, output):
        emit_json([_req_json(r) for r in found])
        return
    t = table("id", "state", "entitlement", "object", "relation", "for", "by", "until")
    for r in found:
        until = r.grant_expires_at if r.state == "active" else r.pending_until
        t.add_row(
            r.id, r.state, r.entitlement_id, r.object, r.relation, r.beneficiary,
            r.requester, _when(until) if r.state in ("active", "pending") else "",
        )  # fmt: skip
    show_table(t)


@request_app.command("get")
def request_get(
    request_id: Common,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """One access request."""
    with connect(db, url, api_key) as kp:
        r = kp.get_access_request(request_id, store=store)
    if wants_json(as_json, output):
        emit_json(_req_json(r))
        return
    _lines(_req_json(r))


@request_app.command("history")
def request_history(
    request_id: Common,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The request and its ledger events: who asked, why, who approved, when it ended."""
    with connect(db, url, api_key) as kp:
        r, events = kp.get_access_request_history(request_id, store=store)
    if wants_json(as_json, output):
        emit_json({"access_request": _req_json(r), "events": [_event_json(e) for e in events]})
        return
    _show_request(r, False)
    t = table("time", "event", "caller", "details")
    for e in events:
        t.add_row(timestamp(e.time), e.type, e.caller, json.dumps(dict(e.details), default=str))
    show_table(t)


def _decide(verb: str, request_id: str, approver: str | None, token: str | None,
            comment: str | None, store: str, db: str | None, url: str | None,
            api_key: str | None, as_json: bool) -> None:  # fmt: skip
    token = _token(token)
    with connect(db, url, api_key) as kp:
        fn = kp.approve_access_request if verb == "approve" else kp.deny_access_request
        r = fn(request_id, store=store, approver=approver, token=token, comment=comment)
    _show_request(r, as_json)


ApproverOpt = Annotated[
    str | None, typer.Option("--approver", help="Who decides (a human), e.g. human:bob.")
]


@request_app.command("approve")
def request_approve(
    request_id: Common,
    approver: ApproverOpt = None,
    token: TokenOpt = None,
    comment: CommentOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Approve a pending request (with enough approvals the grant is written at once)."""
    _decide("approve", request_id, approver, token, comment, store, db, url, api_key,
            wants_json(as_json, output))  # fmt: skip


@request_app.command("deny")
def request_deny(
    request_id: Common,
    approver: ApproverOpt = None,
    token: TokenOpt = None,
    comment: CommentOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Deny a pending request."""
    _decide("deny", request_id, approver, token, comment, store, db, url, api_key,
            wants_json(as_json, output))  # fmt: skip


@request_app.command("cancel")
def request_cancel(
    request_id: Common,
    requester: Annotated[str | None, typer.Option("--requester", help="Who cancels.")] = None,
    token: TokenOpt = None,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Withdraw a pending request."""
    token = _token(token)
    with connect(db, url, api_key) as kp:
        r = kp.cancel_access_request(
            request_id, store=store, requester=requester, token=token, reason=reason
        )
    _show_request(r, wants_json(as_json, output))


@request_app.command("revoke")
def request_revoke(
    request_id: Common,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who revokes it, e.g. human:bob.")
    ] = None,
    token: TokenOpt = None,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """End an active grant now."""
    with connect(db, url, api_key) as kp:
        r = kp.revoke_access_request(
            request_id, store=store, actor=actor, token=_token(token), reason=reason
        )
    _show_request(r, wants_json(as_json, output))


# ---------------------------------------------------------------------------- reviews


ReviewArg = Annotated[str, typer.Argument(help="The review campaign id.")]


def _show_review(c: ReviewCampaign, as_json: bool, what: str) -> None:
    if as_json:
        emit_json(_review_json(c))
        return
    _say(f"{what} review {c.id} ({c.name}): {c.state}, reviewer rule {c.reviewer}")


@review_app.command("create")
def review_create(
    name: Annotated[str, typer.Argument(help="The campaign's name.")],
    object_type: Annotated[str | None, typer.Option("--object-type")] = None,
    relation: Annotated[str | None, typer.Option("--relation")] = None,
    user_kind: Annotated[str | None, typer.Option("--user-kind", help="e.g. agent.")] = None,
    source: Annotated[
        str, typer.Option("--source", help="grants (access-request grants) or tuples.")
    ] = "grants",
    unused_days: Annotated[
        int | None, typer.Option("--unused-days", help="Only grants unused this many days.")
    ] = None,
    reviewer: Annotated[
        str,
        typer.Option(
            "--reviewer", help="beneficiary_owners, entitlement_owners, a human or group."
        ),
    ] = "beneficiary_owners",
    default_decision: Annotated[
        str, typer.Option("--default-decision", help="certify or revoke, for unanswered items.")
    ] = "certify",
    apply: Annotated[str, typer.Option("--apply", help="on_close or immediately.")] = "on_close",
    due_at: Annotated[
        float | None, typer.Option("--due-at", help="Seconds since the epoch.")
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Create a review campaign (its items are selected now)."""
    flt: dict[str, Any] = {"source": source}
    for k, v in (
        ("object_type", object_type), ("relation", relation), ("user_kind", user_kind),
        ("unused_days", unused_days),
    ):  # fmt: skip
        if v is not None:
            flt[k] = v
    with connect(db, url, api_key) as kp:
        c = kp.create_review(
            name, store=store, filter=flt, reviewer=reviewer,
            default_decision=default_decision, apply=apply, due_at=due_at,
        )  # fmt: skip
    _show_review(c, wants_json(as_json, output), "Created")


@review_app.command("list")
def review_list(
    state: Annotated[str | None, typer.Option("--state", help="open or closed.")] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The store's review campaigns."""
    with connect(db, url, api_key) as kp:
        found: list[ReviewCampaign] = all_pages(
            lambda t: kp.list_reviews(
                store=store, state=state, page_size=1000, continuation_token=t
            )
        )
    if wants_json(as_json, output):
        emit_json([_review_json(c) for c in found])
        return
    t = table("id", "name", "state", "reviewer", "default", "apply", "due")
    for c in found:
        t.add_row(c.id, c.name, c.state, c.reviewer, c.default_decision, c.apply, _when(c.due_at))
    show_table(t)


@review_app.command("get")
def review_get(
    review_id: ReviewArg,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """One review campaign."""
    with connect(db, url, api_key) as kp:
        c = kp.get_review(review_id, store=store)
    if wants_json(as_json, output):
        emit_json(_review_json(c))
        return
    _lines(_review_json(c))


def _items_table(items: list[ReviewItem]) -> None:
    t = table("item", "user", "relation", "object", "reviewers", "last used", "decision", "outcome")
    for i in items:
        t.add_row(
            str(i.id), i.user, i.relation, i.object, ", ".join(i.reviewers),
            _when(i.last_used_at), i.decision or "", i.outcome or "",
        )  # fmt: skip
    show_table(t)


@review_app.command("items")
def review_items(
    review_id: ReviewArg,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The campaign's items."""
    with connect(db, url, api_key) as kp:
        found: list[ReviewItem] = all_pages(
            lambda t: kp.list_review_items(
                review_id, store=store, page_size=1000, continuation_token=t
            )
        )
    if wants_json(as_json, output):
        emit_json([_item_json(i) for i in found])
        return
    _items_table(found)


@review_app.command("decide")
def review_decide(
    review_id: ReviewArg,
    item_id: Annotated[int, typer.Argument(help="The item number.")],
    decision: Annotated[str, typer.Argument(help="certify or revoke.")],
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", help="Who decides (a human), e.g. human:bob.")
    ] = None,
    token: TokenOpt = None,
    comment: CommentOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Certify or revoke one item, as one of its reviewers."""
    token = _token(token)
    with connect(db, url, api_key) as kp:
        i = kp.decide_review_item(
            review_id, item_id, decision, store=store, reviewer=reviewer, token=token,
            comment=comment,
        )  # fmt: skip
    if wants_json(as_json, output):
        emit_json(_item_json(i))
        return
    _say(f"Item {i.id} ({i.user} {i.relation} {i.object}): {i.decision} by {i.decided_by}")


@review_app.command("close")
def review_close(
    review_id: ReviewArg,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Close: unanswered items take the default; revocations are applied."""
    with connect(db, url, api_key) as kp:
        c = kp.close_review(review_id, store=store)
    _show_review(c, wants_json(as_json, output), "Closed")


@review_app.command("report")
def review_report(
    review_id: ReviewArg,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Every item of the campaign with its outcome."""
    with connect(db, url, api_key) as kp:
        c, items = kp.review_report(review_id, store=store)
    if wants_json(as_json, output):
        emit_json({"review": _review_json(c), "items": [_item_json(i) for i in items]})
        return
    _show_review(c, False, "Report of")
    _items_table(items)

"""``/v1/stores/{store}/…`` governance analytics (issue 8): effective access (an identity's
and a resource's), over-privilege and its recommendation, agents that exceed their
owners, the non-human identity inventory, the posture report and the MCP gateway's tool
usage.

A thin surface over :mod:`keyplane.service.effective`, :mod:`keyplane.service.privilege`,
:mod:`keyplane.service.posture` and :mod:`keyplane.service.gateway_usage`. The two access listings page like every listing,
stream every page as NDJSON when asked with ``Accept: application/x-ndjson`` (one entry a
line, each page recorded by its own ledger event), and draw the page as Graphviz DOT or
Mermaid with ``format=dot|mermaid`` (:mod:`keyplane.graph.draw`). The posture report is
JSON, a terminal text report or a self-contained HTML page with ``format=text|html``
(:mod:`keyplane.governance.report`). See ``docs/posture.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.errors import envelope, request_id_of
from keyplane.api.identity_schemas import IdentityKind
from keyplane.api.posture_schemas import (
    AccessEntryOut,
    AccessList,
    ApplyPrivilegeRequest,
    ExcessAccessList,
    ExcessAccessOut,
    NhiInventoryItemOut,
    NhiInventoryList,
    OverPrivilegeOut,
    PostureReportOut,
    PrivilegeAppliedOut,
    ToolUsageOut,
)
from keyplane.api.schemas import MAX_ID, MAX_OBJECT, MAX_RELATION, MAX_TYPE, MAX_USER
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.api.v1.queries import DECISION_ID_HEADER
from keyplane.errors import KeyplaneError
from keyplane.governance.posture import AccessEntry
from keyplane.graph import draw
from keyplane.service import effective, gateway_usage, posture, privilege
from keyplane.storage.base import Page

__all__ = ["CONTINUATION_HEADER", "NDJSON", "router"]

router = APIRouter(prefix="/stores/{store}", tags=["posture"])

NDJSON = "application/x-ndjson"
#: a drawing is one page; this header carries the token of the next one
CONTINUATION_HEADER = "X-Continuation-Token"

QUERY_ERRORS = error_responses(422)
DOT = "text/vnd.graphviz; charset=utf-8"
MERMAID = "text/plain; charset=utf-8"

DrawFormat = Annotated[
    Literal["json", "dot", "mermaid"],
    Query(
        description="`json` (default), or the page drawn as Graphviz `dot` or a Mermaid "
        f"`flowchart` (the next page's token in the `{CONTINUATION_HEADER}` header)."
    ),
]
Paths = Annotated[bool, Query(description="Include the granting paths of each entry.")]
Delegated = Annotated[
    bool, Query(description="Include access exercised through active delegations.")
]
Kind = Annotated[
    IdentityKind, Path(description="`human`, `agent`, `workload` or `service_account`.")
]
Id = Annotated[str, Path(min_length=1, max_length=MAX_ID, description="The identity's bare id.")]
WindowDays = Annotated[
    int, Query(ge=1, le=3650, description="The usage window: the last this many days.")
]


def _listing_responses(what: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: JSON, NDJSON (every page) or a drawing (one page)."""
    return {
        200: {
            "description": f"One page of {what} (JSON); every page as NDJSON (one entry a "
            f"line) with `Accept: {NDJSON}`; the page drawn with `format=dot|mermaid`.",
            "content": {
                "application/json": {"schema": AccessList.model_json_schema()},
                NDJSON: {"schema": AccessEntryOut.model_json_schema()},
                "text/vnd.graphviz": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
            "headers": {
                CONTINUATION_HEADER: {
                    "description": "On a drawing: the next page's continuation token.",
                    "schema": {"type": "string"},
                }
            },
        },
        **QUERY_ERRORS,
    }


def _wants_ndjson(request: Request) -> bool:
    return NDJSON in request.headers.get("accept", "")


def _answer(
    request: Request,
    fetch: Callable[[str | None], Page[AccessEntry]],
    token: str | None,
    fmt: str,
    title: str,
) -> Any:
    """One page as JSON or a drawing, or (NDJSON asked) every page from ``token`` on.

    The first page is fetched before answering, so a bad input or a refusal is the usual
    error envelope with its status, not a broken stream."""
    first = fetch(token)
    decision_id = getattr(first, "decision_id", "") or None  # effective.AccessPage
    id_header = {DECISION_ID_HEADER: decision_id} if decision_id else {}
    if _wants_ndjson(request):
        rid = request_id_of(request)

        def lines() -> Iterator[str]:
            page = first
            while True:
                for e in page.items:
                    yield json.dumps(e.to_dict()) + "\n"
                if page.continuation_token is None:
                    return
                try:
                    page = fetch(page.continuation_token)
                except KeyplaneError as exc:
                    # the 200 is sent: a failure after it is the stream's last line (the
                    # error envelope), so a reader never takes a cut stream for the whole
                    yield json.dumps(envelope(exc.code, exc.message, rid, dict(exc.details)))
                    yield "\n"
                    return

        # the header names the first page's event; each page has its own in the ledger
        return StreamingResponse(lines(), media_type=NDJSON, headers=id_header)
    if fmt in ("dot", "mermaid"):
        headers = dict(id_header)
        if first.continuation_token:
            headers[CONTINUATION_HEADER] = first.continuation_token
        if fmt == "dot":
            text = draw.access_dot(first.items, title=title)
            return Response(text, media_type=DOT, headers=headers)
        text = draw.access_mermaid(first.items, title=title)
        return Response(text, media_type=MERMAID, headers=headers)
    return JSONResponse(
        AccessList(
            entries=[AccessEntryOut.of(e) for e in first.items],
            continuation_token=first.continuation_token,
            decision_id=decision_id,
        ).model_dump(mode="json"),
        headers=id_header,
    )


@router.get(
    "/effective-access",
    operation_id="effective_access",
    response_model=AccessList,
    responses=_listing_responses("what the identity can reach"),
    summary="Everything an identity can reach",
)
def effective_access(
    store: StoreId,
    request: Request,
    svc: ServicesDep,
    caller: CallerDep,
    identity: Annotated[
        str,
        Query(
            min_length=3,
            max_length=MAX_USER,
            description="The identity's graph node, e.g. `agent:planner` or `user:anne`.",
        ),
    ],
    object_type: Annotated[
        str | None, Query(max_length=MAX_TYPE, description="Only objects of this type.")
    ] = None,
    relation: Annotated[
        str | None, Query(max_length=MAX_RELATION, description="Only this relation.")
    ] = None,
    paths: Paths = True,
    delegated: Delegated = True,
    page_size: PageSize = 100,
    continuation_token: Token = None,
    format: DrawFormat = "json",
) -> Any:
    """Every (object, relation) `identity` holds over the store's latest model, with the
    paths that grant each — and, for an agent, what it exercises for a delegator under an
    active delegation (`via: delegation`). Each page is recorded in the ledger
    (`decision.effective_access`)."""

    def fetch(token: str | None) -> Page[AccessEntry]:
        return effective.effective_access(
            svc, caller, store, identity, object_type=object_type, relation=relation,
            include_paths=paths, include_delegated=delegated, page_size=page_size,
            continuation_token=token,
        )  # fmt: skip

    return _answer(request, fetch, continuation_token, format, f"effective access of {identity}")


@router.get(
    "/resource-access",
    operation_id="who_can_access",
    response_model=AccessList,
    responses=_listing_responses("who can reach the object"),
    summary="Everyone who can reach a resource",
)
def who_can_access(
    store: StoreId,
    request: Request,
    svc: ServicesDep,
    caller: CallerDep,
    object: Annotated[
        str,
        Query(min_length=3, max_length=MAX_OBJECT, description="The object, `type:id`."),
    ],
    relation: Annotated[
        str | None, Query(max_length=MAX_RELATION, description="Only this relation.")
    ] = None,
    user_type: Annotated[
        str | None,
        Query(max_length=MAX_TYPE, description="Only users of this type, e.g. `agent`."),
    ] = None,
    paths: Paths = True,
    delegated: Delegated = True,
    page_size: PageSize = 100,
    continuation_token: Token = None,
    format: DrawFormat = "json",
) -> Any:
    """Every concrete user (of every type the model allows) holding a relation on `object`,
    with paths — and the agents acting for a holder under a covering delegation. Each page
    is recorded in the ledger (`decision.effective_access`)."""

    def fetch(token: str | None) -> Page[AccessEntry]:
        return effective.who_can_access(
            svc, caller, store, object, relation=relation, user_type=user_type,
            include_paths=paths, include_delegated=delegated, page_size=page_size,
            continuation_token=token,
        )  # fmt: skip

    return _answer(request, fetch, continuation_token, format, f"who can access {object}")


@router.get(
    "/identities/{kind}/{id}/over-privilege",
    operation_id="over_privilege",
    responses=error_responses(),
    summary="Granted versus used, and a least-privilege recommendation",
)
def over_privilege(
    store: StoreId,
    kind: Kind,
    id: Id,
    svc: ServicesDep,
    caller: CallerDep,
    window_days: WindowDays = 90,
    limit: Annotated[
        int, Query(ge=1, le=100_000, description="At most this many unused permissions listed.")
    ] = 1000,
) -> OverPrivilegeOut:
    """The identity's grants with what of the observed use (allowed decisions in the
    window) each covers, its unused grants and permissions, and the smallest set of grants
    found that still covers every use (`recommendation.keep`; `revoke` is the rest)."""
    o = privilege.over_privilege(
        svc, caller, store, f"{kind}:{id}", window_days=window_days, limit=limit
    )
    return OverPrivilegeOut.of(o)


@router.post(
    "/identities/{kind}/{id}/over-privilege:apply",
    operation_id="apply_privilege_recommendation",
    responses=error_responses(409),
    summary="Apply the least-privilege recommendation",
)
def apply_privilege_recommendation(
    store: StoreId,
    kind: Kind,
    id: Id,
    body: ApplyPrivilegeRequest,
    svc: ServicesDep,
    caller: CallerDep,
) -> PrivilegeAppliedOut:
    """Revoke the recommendation's grants now (`mode: revoke`) or open a review campaign of
    exactly those grants (`mode: review`, the default). With `expected` (the revoke list
    you saw) a changed recommendation is a 409 `recommendation_changed` and nothing is
    written; nothing to revoke is a 400."""
    a = privilege.apply_privilege_recommendation(
        svc, caller, store, f"{kind}:{id}", mode=body.mode, window_days=body.window_days,
        expected=body.expected, reviewer=body.reviewer, due_at=body.due_at,
    )  # fmt: skip
    return PrivilegeAppliedOut.model_validate(a.to_dict())


@router.get(
    "/posture/exceeding-owners",
    operation_id="agents_exceeding_owners",
    responses=error_responses(),
    summary="Agents that reach more than their owners or delegators",
)
def agents_exceeding_owners(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    agent: Annotated[
        str | None, Query(max_length=MAX_USER, description="Only this agent, e.g. `agent:x`.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=100_000, description="At most this many excess entries each.")
    ] = 100,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> ExcessAccessList:
    """Each agent compared with each active owner and each delegator of an active
    delegation to it: what the agent reaches that the principal does not."""
    page = privilege.agents_exceeding_owners(
        svc, caller, store, agent=agent, limit=limit, page_size=page_size,
        continuation_token=continuation_token,
    )  # fmt: skip
    return ExcessAccessList(
        agents=[ExcessAccessOut.of(e) for e in page.items],
        continuation_token=page.continuation_token,
    )


@router.get(
    "/posture/inventory",
    operation_id="nhi_inventory",
    responses=error_responses(),
    summary="The non-human identity inventory",
)
def nhi_inventory(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    kind: Annotated[
        Literal["agent", "workload", "service_account"] | None,
        Query(description="Only this kind."),
    ] = None,
    status: Annotated[
        Literal["active", "suspended", "deprovisioned"] | None,
        Query(description="Only this status."),
    ] = None,
    window_days: WindowDays = 90,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> NhiInventoryList:
    """Every agent, workload and service account with its owners, status, credentials
    (count, oldest, next expiry, never used, unused for 30/90 days), last seen and the
    delegations it holds."""
    page = posture.nhi_inventory(
        svc, caller, store, kind=kind, status=status, window_days=window_days,
        page_size=page_size, continuation_token=continuation_token,
    )  # fmt: skip
    return NhiInventoryList(
        identities=[NhiInventoryItemOut.of(i) for i in page.items],
        continuation_token=page.continuation_token,
    )


@router.get(
    "/posture/report",
    operation_id="posture_report",
    response_model=PostureReportOut,
    responses={
        200: {
            "description": "The report as JSON; a self-contained HTML page (inline CSS and "
            "SVG charts, no external URL) with `format=html`; a terminal report with "
            "`format=text`.",
            "content": {
                "application/json": {"schema": PostureReportOut.model_json_schema()},
                "text/html": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        },
        **error_responses(),
    },
    summary="The NHI posture report",
)
def posture_report(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    window_days: WindowDays = 90,
    long_lived_days: Annotated[
        int, Query(ge=1, le=3650, description="A credential living longer is long-lived.")
    ] = 90,
    inventory: Annotated[bool, Query(description="Include the inventory.")] = True,
    format: Annotated[
        Literal["json", "html", "text"], Query(description="`json`, `html` or `text`.")
    ] = "json",
) -> Any:
    """The inventory, the findings (each mapped to the OWASP Non-Human Identities Top 10,
    with evidence and fix, most severe first), the visibility score, and the over-privilege
    and agents-exceeding-owners summaries behind the NHI5 findings."""
    r = posture.posture_report(
        svc, caller, store, window_days=window_days, long_lived_days=long_lived_days,
        include_inventory=inventory,
    )  # fmt: skip
    if format == "html":
        from keyplane.governance import report

        # the page fetches nothing and runs only its own script: say so to the browser
        return HTMLResponse(
            report.render_html(r),
            headers={"Content-Security-Policy": report.HTML_CONTENT_SECURITY_POLICY},
        )
    if format == "text":
        from keyplane.governance import report

        return PlainTextResponse(report.render_text(r))
    return PostureReportOut.of(r)


@router.get(
    "/posture/tools",
    operation_id="tool_usage",
    responses=error_responses(),
    summary="The MCP gateway's tools and their use",
)
def tool_usage(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    since: Annotated[
        float | None,
        Query(
            description="Window start, seconds since the epoch (default: 90 days before `until`)."
        ),
    ] = None,
    until: Annotated[
        float | None,
        Query(description="Window end, seconds since the epoch, included (default: now)."),
    ] = None,
) -> ToolUsageOut:
    """Per gateway tool: status, classification, calls allowed and denied in the window,
    last use and the agents that called it; per acting identity: its calls, the tools it
    used and the enabled dangerous tools it may call; the enabled tools never used — from
    the window's `gateway.tool_call` ledger events and the graph."""
    return ToolUsageOut.of(gateway_usage.tool_usage(svc, caller, store, since=since, until=until))

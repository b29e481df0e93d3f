"""Wire form of governance analytics (issue 8): effective access, over-privilege, agents
exceeding their owners, the NHI inventory, the posture report and the MCP gateway's tool
usage — each call one request
and the decoder that rebuilds the record the embedded :class:`keyplane.Keyplane` returns
(the records' own ``from_dict``: the REST API answers with their ``to_dict``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.governance.posture import (
    AccessEntry,
    ExcessAccess,
    NhiInventoryItem,
    OverPrivilege,
    PostureReport,
)
from keyplane.governance.tool_usage import ToolUsageReport
from keyplane.sdk.wire import Call, _body, _params, make_error, seg
from keyplane.service.effective import AccessPage
from keyplane.service.privilege import PrivilegeApplied
from keyplane.storage.base import Page

__all__ = [
    "NDJSON",
    "access_entry",
    "agents_exceeding_owners",
    "apply_privilege_recommendation",
    "effective_access",
    "nhi_inventory",
    "over_privilege",
    "posture_report",
    "tool_usage",
    "who_can_access",
]

NDJSON = "application/x-ndjson"
#: a whole-store analysis (the bench organisation's report: under a minute) may take this long
ANALYSIS_TIMEOUT = 300.0


def _path(store: str, rest: str) -> str:
    return f"/v1/stores/{seg(store)}{rest}"


def _identity_path(store: str, identity: str, rest: str) -> str:
    """``agent:planner`` → ``/identities/agent/planner…`` (a node without a kind is sent
    as is, and the server refuses it as it would in-process)."""
    kind, sep, ident = identity.partition(":")
    if not sep:
        kind, ident = identity, ""
    return _path(store, f"/identities/{seg(kind)}/{seg(ident)}{rest}")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _access_page(d: Mapping[str, Any]) -> Page[AccessEntry]:
    return AccessPage(
        [AccessEntry.from_dict(e) for e in d.get("entries") or ()],
        d.get("continuation_token") or None,
        decision_id=str(d.get("decision_id") or ""),
    )


def access_entry(line: str | bytes) -> AccessEntry | None:
    """One line of a streamed (NDJSON) listing → the entry (None for a blank line). A
    failure after the stream began is its last line, the error envelope: raised here as
    the :mod:`keyplane.errors` class it names."""
    text = line.decode() if isinstance(line, bytes) else line
    if not text.strip():
        return None
    d = json.loads(text)
    if "error" in d and "user" not in d:
        err = d["error"]
        raise make_error(
            str(err.get("code", "")), str(err.get("message", "")), err.get("details"),
            request_id=err.get("request_id"),
        )  # fmt: skip
    return AccessEntry.from_dict(d)


def effective_access(
    store: str,
    identity: str,
    *,
    object_type: str | None,
    relation: str | None,
    include_paths: bool,
    include_delegated: bool,
    page_size: int,
    continuation_token: str | None,
) -> Call[Page[AccessEntry]]:
    return Call(
        "GET",
        _path(store, "/effective-access"),
        _access_page,
        params=_params(
            identity=identity,
            object_type=object_type,
            relation=relation,
            paths=_flag(include_paths),
            delegated=_flag(include_delegated),
            page_size=page_size,
            continuation_token=continuation_token,
        ),
        idempotent=True,
    )


def who_can_access(
    store: str,
    object: str,
    *,
    relation: str | None,
    user_type: str | None,
    include_paths: bool,
    include_delegated: bool,
    page_size: int,
    continuation_token: str | None,
) -> Call[Page[AccessEntry]]:
    return Call(
        "GET",
        _path(store, "/resource-access"),
        _access_page,
        params=_params(
            object=object,
            relation=relation,
            user_type=user_type,
            paths=_flag(include_paths),
            delegated=_flag(include_delegated),
            page_size=page_size,
            continuation_token=continuation_token,
        ),
        idempotent=True,
    )


def over_privilege(store: str, identity: str, window_days: int, limit: int) -> Call[OverPrivilege]:
    return Call(
        "GET",
        _identity_path(store, identity, "/over-privilege"),
        OverPrivilege.from_dict,
        params=_params(window_days=window_days, limit=limit),
        idempotent=True,
        min_timeout=ANALYSIS_TIMEOUT,
    )


def apply_privilege_recommendation(
    store: str,
    identity: str,
    *,
    mode: str,
    window_days: int,
    expected: Sequence[str] | None,
    reviewer: str,
    due_at: float | None,
) -> Call[PrivilegeApplied]:
    return Call(
        "POST",
        _identity_path(store, identity, "/over-privilege:apply"),
        PrivilegeApplied.from_dict,
        body=_body(
            mode=mode,
            window_days=window_days,
            expected=None if expected is None else list(expected),
            reviewer=reviewer,
            due_at=due_at,
        ),
        min_timeout=ANALYSIS_TIMEOUT,
    )


def agents_exceeding_owners(
    store: str, agent: str | None, limit: int, page_size: int, token: str | None
) -> Call[Page[ExcessAccess]]:
    def decode(d: Mapping[str, Any]) -> Page[ExcessAccess]:
        return Page(
            [ExcessAccess.from_dict(e) for e in d.get("agents") or ()],
            d.get("continuation_token") or None,
        )

    return Call(
        "GET",
        _path(store, "/posture/exceeding-owners"),
        decode,
        params=_params(agent=agent, limit=limit, page_size=page_size, continuation_token=token),
        idempotent=True,
        min_timeout=ANALYSIS_TIMEOUT,
    )


def nhi_inventory(
    store: str,
    kind: str | None,
    status: str | None,
    window_days: int,
    page_size: int,
    token: str | None,
) -> Call[Page[NhiInventoryItem]]:
    def decode(d: Mapping[str, Any]) -> Page[NhiInventoryItem]:
        return Page(
            [NhiInventoryItem.from_dict(i) for i in d.get("identities") or ()],
            d.get("continuation_token") or None,
        )

    return Call(
        "GET",
        _path(store, "/posture/inventory"),
        decode,
        params=_params(
            kind=kind,
            status=status,
            window_days=window_days,
            page_size=page_size,
            continuation_token=token,
        ),
        idempotent=True,
        min_timeout=ANALYSIS_TIMEOUT,
    )


def posture_report(
    store: str, window_days: int, long_lived_days: int, include_inventory: bool
) -> Call[PostureReport]:
    return Call(
        "GET",
        _path(store, "/posture/report"),
        PostureReport.from_dict,
        params=_params(
            window_days=window_days,
            long_lived_days=long_lived_days,
            inventory=_flag(include_inventory),
        ),
        idempotent=True,
        min_timeout=ANALYSIS_TIMEOUT,
    )


def tool_usage(store: str, since: float | None, until: float | None) -> Call[ToolUsageReport]:
    return Call(
        "GET",
        _path(store, "/posture/tools"),
        ToolUsageReport.from_dict,
        params=_params(since=since, until=until),
        idempotent=True,
        min_timeout=ANALYSIS_TIMEOUT,
    )

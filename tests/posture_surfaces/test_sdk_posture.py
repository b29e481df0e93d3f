"""Governance analytics in the Python SDK (issue 8): the HTTP Client and AsyncClient,
against a real server, answer like the embedded Keyplane on the same organisation — typed
records, the same errors; the ``iter_*`` generators walk every page (one streamed request
over HTTP)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from posture_helpers import PLANNER_GRANTS, Live

from keyplane import AsyncClient, Keyplane
from keyplane.errors import (
    InvalidContinuationToken,
    PermissionDeniedError,
    RecommendationChangedError,
    TypeNotFoundError,
)
from keyplane.governance.posture import AccessEntry, PostureReport
from keyplane.sdk.protocol import KeyplaneAPI
from keyplane.service.effective import AccessPage
from keyplane.service.privilege import PrivilegeApplied


def _entries(es: list[AccessEntry]) -> list[tuple[Any, ...]]:
    # delegation ids differ between two databases; everything else must match
    return [
        (e.user, e.relation, e.object, e.via, e.on_behalf_of, bool(e.delegation_id)) for e in es
    ]


def _answers(kp: KeyplaneAPI) -> dict[str, Any]:
    """What the seeded organisation looks like through one implementation."""
    out: dict[str, Any] = {}
    out["effective"] = _entries(list(kp.iter_effective_access("agent:planner", page_size=2)))
    out["effective_docs"] = _entries(
        kp.effective_access("agent:planner", object_type="document", include_paths=False).items
    )
    out["holders"] = _entries(list(kp.iter_who_can_access("document:roadmap", page_size=1)))
    o = kp.over_privilege("agent:planner", window_days=30)
    out["over"] = (
        o.identity,
        sorted(g.tuple_key for g in o.grants),
        [(u.object, u.relation, u.uses) for u in o.used],
        o.keep,
        sorted(o.revoke),
        o.effective_total,
    )
    ex = kp.agents_exceeding_owners().items
    out["exceeding"] = sorted((e.agent, e.principal, e.relationship, e.excess_total) for e in ex)
    inv = kp.nhi_inventory().items
    out["inventory"] = [(i.identity, i.kind, i.status, i.owners, i.credential_count) for i in inv]
    r = kp.posture_report(window_days=30)
    out["report"] = (
        sorted((f.code, f.owasp, f.severity, f.identity) for f in r.findings),
        r.visibility.to_dict(),
        r.counts,
        len(r.inventory),
    )
    return out


def test_client_answers_like_embedded(live: Live, embedded: Keyplane) -> None:
    with live.client() as c:
        got = _answers(c)
    want = _answers(embedded)
    for key in want:
        assert got[key] == want[key], key
    assert {g for g in got["over"][1]} == PLANNER_GRANTS


def test_iterators_walk_every_page(live: Live) -> None:
    with live.client() as c:
        pages: list[AccessEntry] = []
        token: str | None = None
        while True:
            page = c.effective_access("agent:planner", page_size=1, continuation_token=token)
            assert len(page.items) <= 1
            # each page names its own ledger event
            assert isinstance(page, AccessPage) and page.decision_id
            assert c.get_decision(page.decision_id).event.type == "decision.effective_access"
            pages += page.items
            token = page.continuation_token
            if token is None:
                break
        streamed = list(c.iter_effective_access("agent:planner", page_size=1))
        assert streamed == pages  # paths and all: the records round-trip
        assert len(streamed) > 3


def test_errors_are_the_same_classes(live: Live, embedded: Keyplane) -> None:
    with live.client() as c:
        for kp in (c, embedded):
            with pytest.raises(TypeNotFoundError):
                kp.effective_access("agent:planner", object_type="nope")
            with pytest.raises(TypeNotFoundError):  # a stream fails before its first entry
                next(iter(kp.iter_effective_access("agent:planner", object_type="nope")))
            with pytest.raises(InvalidContinuationToken):
                kp.who_can_access("document:roadmap", continuation_token="nope")
            with pytest.raises(RecommendationChangedError):
                kp.apply_privilege_recommendation(
                    "agent:planner", expected=["document:x#viewer@agent:planner"]
                )
    with live.client("reader") as reader, pytest.raises(PermissionDeniedError):
        reader.posture_report()


def test_apply_returns_the_record(live: Live, embedded: Keyplane) -> None:
    with live.client() as c:
        for kp in (c, embedded):
            o = kp.over_privilege("agent:planner")
            a = kp.apply_privilege_recommendation("agent:planner", mode="revoke", expected=o.revoke)
            assert isinstance(a, PrivilegeApplied)
            assert a.mode == "revoke" and set(a.tuples) == set(o.revoke) and a.revision
            assert kp.over_privilege("agent:planner").revoke == ()


def test_async_client(live: Live, embedded: Keyplane) -> None:
    async def main() -> dict[str, Any]:
        async with AsyncClient(live.url, live.keys["admin"]) as ac:
            streamed = [e async for e in ac.iter_effective_access("agent:planner", page_size=2)]
            holders = [e async for e in ac.iter_who_can_access("document:roadmap")]
            page = await ac.effective_access("agent:planner", object_type="document")
            report = await ac.posture_report(window_days=30)
            assert isinstance(report, PostureReport)
            with pytest.raises(TypeNotFoundError):
                [e async for e in ac.iter_effective_access("agent:planner", object_type="x")]
            over = await ac.over_privilege("agent:planner", window_days=30)
            inv = await ac.nhi_inventory(kind="agent")
            ex = await ac.agents_exceeding_owners(agent="agent:planner")
            return {
                "effective": _entries(streamed),
                "holders": _entries(holders),
                "docs": _entries(page.items),
                "findings": sorted((f.code, f.identity) for f in report.findings),
                "revoke": sorted(over.revoke),
                "inventory": [i.identity for i in inv.items],
                "exceeding": sorted((e.agent, e.principal) for e in ex.items),
            }

    got = asyncio.run(main())
    assert got["effective"] == _entries(list(embedded.iter_effective_access("agent:planner")))
    assert got["holders"] == _entries(list(embedded.iter_who_can_access("document:roadmap")))
    docs = embedded.effective_access("agent:planner", object_type="document").items
    assert got["docs"] == _entries(docs)
    report = embedded.posture_report(window_days=30)
    assert got["findings"] == sorted((f.code, f.identity) for f in report.findings)
    assert got["revoke"] == sorted(embedded.over_privilege("agent:planner", window_days=30).revoke)
    assert got["inventory"] == ["agent:helper", "agent:planner"]
    assert ("agent:planner", "human:alice") in got["exceeding"]


def test_whole_store_analyses_outwait_a_short_client_timeout(live: Live) -> None:
    """A report over a large store takes longer than a query: the SDK waits for it at least
    ANALYSIS_TIMEOUT whatever the client's timeout — queries keep the client's."""
    from keyplane import Client
    from keyplane.errors import TransportError

    with Client(live.url, live.keys["admin"], timeout=1e-6, retries=0) as c:
        with pytest.raises(TransportError):
            c.effective_access("agent:planner")
        assert c.posture_report(window_days=30).findings
        assert c.over_privilege("agent:planner").revoke


def test_a_stream_that_fails_after_it_began_raises() -> None:
    """A failure after the 200 is the stream's last line, the error envelope (the server
    cannot change its status any more): the SDK raises it rather than end the listing
    early as if it were complete."""
    import json

    from keyplane.errors import StoreNotFoundError
    from keyplane.sdk.posture_wire import access_entry

    entry = {"user": "agent:a", "relation": "viewer", "object": "document:1", "via": "graph"}
    assert access_entry(json.dumps(entry)) == AccessEntry("agent:a", "viewer", "document:1")
    assert access_entry("  ") is None
    line = json.dumps({"error": {"code": "store_not_found", "message": "gone", "request_id": "r1"}})
    with pytest.raises(StoreNotFoundError) as info:
        access_entry(line.encode())
    assert info.value.request_id == "r1"

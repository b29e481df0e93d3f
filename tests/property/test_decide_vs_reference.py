"""The decision point's delegation links against an obviously-correct reference (random
delegation sets over a few parties, random times, scopes, purposes, tools, depths and
pins): the reference enumerates every possible chain of delegations; ``decide`` must allow
exactly when one exists, return one of them, and otherwise name the first link no chain
prefix gets past."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from keyplane.policy.decide import DecisionInput, decide
from keyplane.policy.records import Delegation, ScopeGrant, StorePolicy
from keyplane.policy.state import PolicyState
from keyplane.storage.base import PolicyChanges

NOW = 1_000.0
PARTIES = ("human:a", "agent:b", "agent:c", "agent:d")
LINK_CODES = {
    "delegation_missing",
    "delegation_expired",
    "delegation_not_yet_valid",
    "delegation_revoked",
    "delegation_scope",
    "purpose_not_allowed",
}

grants = st.builds(
    ScopeGrant,
    actions=st.sampled_from([("viewer", "editor")] * 3 + [("viewer",), ("read",), ("editor",)]),
    resource=st.sampled_from(["doc:*"] * 4 + ["doc:1", "doc:2", "folder:*"]),
    tools=st.sampled_from([(), (), ("t1",), ("t1", "t2")]),
)


@st.composite
def cases(draw: Any) -> tuple[list[str], list[Delegation]]:
    """An actor chain and delegations, most of them along the chain (so that whole chains,
    and near misses, are common), parents mostly the delegator's own delegations."""
    actors = draw(st.lists(st.sampled_from(PARTIES[1:]), min_size=1, max_size=3, unique=True))
    links = list(itertools.pairwise(("human:a", *actors)))
    out: list[Delegation] = []
    for n in range(draw(st.integers(0, 9))):
        if draw(st.integers(0, 9)) < 8:
            delegator, delegate = draw(st.sampled_from(links))
        else:
            delegator, delegate = draw(st.sampled_from(list(itertools.permutations(PARTIES, 2))))
        held = [d for d in out if d.delegate == delegator]
        parent = None
        if out and draw(st.booleans()):
            parent = draw(st.sampled_from(held if held and draw(st.integers(0, 4)) else out))
        nb = draw(st.sampled_from([NOW - 100] * 5 + [NOW, NOW + 1]))
        out.append(
            Delegation(
                "s", f"D{n:02d}", delegator, delegate, parent.id if parent else None,
                tuple(draw(st.lists(grants, min_size=1, max_size=2))),
                draw(st.sampled_from([()] * 4 + [("p1",), ("p1", "p2")])),
                nb, draw(st.sampled_from([NOW] + [NOW + 100] * 5)),
                draw(st.integers(0, 2)), None,
                draw(st.sampled_from(["active"] * 6 + ["revoked"])), None, None,
                "key:t", float(n), 1,
            )
        )  # fmt: skip
    return actors, out


def _valid(d: Delegation, k: int, n: int, inp: DecisionInput, relation: str) -> bool:
    rtype = inp.resource.split(":")[0]
    covered = any(
        (g.resource == inp.resource or g.resource == f"{rtype}:*")
        and (inp.action in g.actions or relation in g.actions)
        and (inp.tool is None or not g.tools or inp.tool in g.tools)
        for g in d.scope
    )
    return (
        d.status == "active"
        and d.not_before <= inp.time < d.expires_at
        and covered
        and (not d.purposes or inp.purpose in d.purposes)
        and n - k <= d.max_depth
    )


def _prefixes(dels: list[Delegation], inp: DecisionInput, relation: str) -> list[list[tuple]]:
    """prefixes[k]: every valid chain of delegations for links 1..k (k from 0)."""
    n = len(inp.actors)
    out: list[list[tuple]] = [[()]]
    parties = (inp.subject, *inp.actors)
    for k in range(1, n + 1):
        nxt = []
        for prefix in out[-1]:
            for d in dels:
                if (d.delegator, d.delegate) != (parties[k - 1], parties[k]):
                    continue
                if k > 1 and d.parent_id != prefix[-1].id:
                    continue
                if k == n and inp.delegation_id is not None and d.id != inp.delegation_id:
                    continue
                if _valid(d, k, n, inp, relation):
                    nxt.append((*prefix, d))
        out.append(nxt)
    return out


@settings(max_examples=600, deadline=None)
@given(
    case=cases(),
    action=st.sampled_from(["viewer", "viewer", "read", "editor"]),
    resource=st.sampled_from(["doc:1", "doc:2"]),
    purpose=st.sampled_from([None, "p1", "p1", "p2"]),
    tool=st.sampled_from([None, None, "t1", "t3"]),
    pin=st.sampled_from([None, None, None, "D00", "D01", "D02", "D03"]),
)
def test_links_match_the_reference(
    case: tuple[list[str], list[Delegation]],
    action: str,
    resource: str,
    purpose: str | None,
    tool: str | None,
    pin: str | None,
) -> None:
    actors, dels = case
    policy = StorePolicy("s", actions={"read": "viewer"})
    state = PolicyState.empty("s").advanced(PolicyChanges((), tuple(dels), None, policy, 1))
    inp = DecisionInput("human:a", tuple(actors), action, resource, purpose, {}, tool, pin, NOW)
    relation = policy.actions.get(action, action)
    v = decide(inp, lambda u, r, o: True, state)
    prefixes = _prefixes(dels, inp, relation)
    full = prefixes[len(actors)]
    event("allowed" if full else f"denied at link {v.reason.get('link')} of {len(actors)}")
    if full:
        assert v.allowed, (v.code, v.reason)
        assert v.delegation_ids in {tuple(d.id for d in chain) for chain in full}
    else:
        first = next(k for k in range(1, len(actors) + 1) if not prefixes[k])
        assert not v.allowed and v.code in LINK_CODES, v
        assert v.reason["link"] == first, (v.reason, first)
        # the links that held are a valid prefix
        assert len(v.delegation_ids) == first - 1
        assert v.delegation_ids in {tuple(d.id for d in p) for p in prefixes[first - 1]}

"""Over-privilege (issue 8 §2): what an identity was granted versus what it exercised, the
least-privilege recommendation and applying it, and agents that reach more than their
owners or delegators.

**Grants, effective access, use.** A *grant* of ``X`` is a tuple whose user is exactly
``X`` (``document:1#viewer@agent:x``, ``group:eng#member@agent:x``), read from the
in-memory tuple index — expired ones left out, and those on identity nodes (the owner
tuples ``agent:y#owner@human:alice`` the identity plane manages). Wildcard tuples
(``agent:*``) are public, not grants, and usersets naming ``X``'s own node
(``agent:x#rel``) are not grants either.
Its *effective access* is every ``(object, relation)`` with ``check(X, relation, object)``
true over every type and relation of the store's latest model. *Use* is an allowed
decision in the ledger within ``[since, until]`` — ``decision.evaluate`` (the decision
point; its action is mapped to a relation by the store policy's action map *as it is
now*), ``decision.check`` and ``decision.batch_check`` (the action is the relation) — whose
subject is ``X`` or whose actor chain contains ``X`` (an agent acting for a human uses the
permission as much as the human does: the decision checked both). :func:`usage` reads
the whole window once with one aggregate query (:meth:`LedgerStore.ledger_usage
<keyplane.storage.base.LedgerStore.ledger_usage>`); :class:`Usage` answers per node.
Ledger fields redacted with ``KEYPLANE_LEDGER_HMAC_FIELDS`` are matched by hashing our
side's values (the identity, the candidate actions and relations, the objects of its
effective access) the same way — never by un-hashing; a used object that is not in the
effective access any more stays hashed in ``uncovered``.

**The least-privilege method** (:func:`analyze`). The question "which grants can go?" is
answered on the real graph, not on a copy: a check runs for ``X`` itself over a view of
the index in which some of ``X``'s grants are hidden (:class:`_Masked` wraps the index's
getters; nothing is written, nothing else is hidden), so every path the model allows —
groups, parents, rewrites, intersections, exclusions, other tuples about ``X`` — is taken
exactly as a decision would take it.

1. ``U``: the used permissions ``X`` still holds — listed in its effective access, or
   undecidable without the context they were used under (a conditional grant); the rest
   are ``uncovered``: access since removed. ``B`` ⊆ ``U``: those still held with *every*
   grant hidden (public access, paths that do not go through a grant) — no grant is
   needed for them.
2. Coverage of a grant ``g``: the permissions of ``U − B`` held with *only* ``g``
   visible, together with those lost when ``g`` *alone* is hidden (so both grants of an
   intersection count, and two grants reaching the same use both count). A grant covering
   nothing is an *unused grant*.
3. Greedy set cover over the single-grant coverage picks ``keep``; then ``keep`` is
   verified *together* (one check per permission with only ``keep`` visible). When it
   falls short — a use that needs two grants at once (an intersection) — grants are added
   one at a time, the one restoring most first; if none restores anything alone, every
   grant is kept and the next step takes away what is not needed.
4. Redundant grants are removed from ``keep`` (fewest covered first) while the rest still
   covers everything. ``revoke`` = grants − ``keep``.

Limits: the recommendation is minimal (no grant of ``keep`` can go alone) but, like any
greedy cover, not always the minimum. Use is what the ledger recorded in the window: a
permission exercised only outside it looks unused, and a decision with contextual tuples
or context counts as use of the stored graph. Conditional grants are checked without a
request context: a check that cannot be decided (a condition missing its parameters, the
depth limit) counts as *held* — the conservative side, so a grant a use may have needed
is kept. ``reaches`` counts the permissions a grant opens on its own — enumerated from
the identity's side with only that grant visible, less what it holds with none — up to
:data:`REACH_CAP`.

**Exceeding** (:func:`exceeding`): each agent's effective access is compared with each
*active* owner (a human owner that is suspended or deprovisioned is left to the posture
findings; a group owner ``group:x#member`` is checked as the userset — what the group as
such holds, not what one member holds) and each delegator of an active delegation to it
(one entry per delegator): the ``(object, relation)`` the agent has and the principal
lacks (``check(principal, relation, object)`` false; one that cannot be decided is not
counted). A small effective access is checked entry by entry; a larger one is compared
with the principal's own listing of each type and relation involved, listed once per run
and shared by every agent the principal owns or delegates to.

**Cost.** :func:`usage` is one aggregate over the window (on SQLite it reads each event's
row: ~12 s for a month of 1M decisions on the bench machine under load). A single
identity's, ``usage(node=X)``, reads only the events whose subject is ``X`` or one of the
delegators upstream of ``X`` (through the subject index): a decision naming ``X`` in its
actor chain went through delegations to ``X`` (decisions made before the store was
deleted and created again are not found that way). :func:`analyze` costs the
identity's effective access plus a few masked checks per grant and used permission;
:func:`exceeding` the agents' effective access plus the principals' listings.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from keyplane.errors import (
    KeyplaneError,
    NothingToApplyError,
    RecommendationChangedError,
    ValidationError,
)
from keyplane.governance.posture import ExcessAccess, GrantUse, OverPrivilege, PermissionUse
from keyplane.graph.check import ALLOW
from keyplane.graph.engine import CheckItem, Engine
from keyplane.graph.index import TupleIndex, Val, View, values_of
from keyplane.graph.listing import _reverse
from keyplane.graph.tuples import Tuple, parse_tuple, user_error
from keyplane.policy.records import IDENTITY_KINDS
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.effective import iter_effective
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import Page, UsageRow
from keyplane.storage.paging import decode_token, encode_token

__all__ = [
    "DECISION_TYPES",
    "MODES",
    "PrivilegeApplied",
    "Usage",
    "agents_exceeding_owners",
    "analyze",
    "apply_privilege_recommendation",
    "exceeding",
    "over_privilege",
    "usage",
]

#: the ledger events whose allowed outcome is a use
DECISION_TYPES: Final = ("decision.evaluate", "decision.check", "decision.batch_check")
#: how a recommendation is applied
MODES: Final = ("review", "revoke")
DAY: Final = 86400.0
MAX_WINDOW_DAYS: Final = 3650
MAX_LIMIT: Final = 100_000
#: ``GrantUse.reaches`` stops counting here
REACH_CAP: Final = 250
#: what the identity holds with no grant at all is enumerated up to this many (``reaches``
#: subtracts it)
REACH_BUDGET: Final = 20_000
_EVALUATE: Final = "decision.evaluate"


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class PrivilegeApplied:
    """A recommendation applied to ``identity``: the grants (tuple keys) revoked at
    ``revision`` (``mode="revoke"``) or put to review in campaign ``review_id``
    (``mode="review"``), computed over the usage window ``[since, until]``."""

    identity: str
    mode: str
    tuples: tuple[str, ...]
    since: float
    until: float
    revision: int | None = None
    review_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "mode": self.mode,
            "tuples": list(self.tuples),
            "since": self.since,
            "until": self.until,
            "revision": self.revision,
            "review_id": self.review_id,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PrivilegeApplied:
        rev = d.get("revision")
        return cls(
            identity=str(d["identity"]),
            mode=str(d["mode"]),
            tuples=tuple(str(t) for t in d.get("tuples") or ()),
            since=float(d["since"]),
            until=float(d["until"]),
            revision=None if rev is None else int(rev),
            review_id=d.get("review_id"),
        )


# ------------------------------------------------------------------------------ usage

_Perm = tuple[str, str]  # (object, relation)
_Seen = dict[_Perm, list[float]]  # -> [uses, last_used_at]


class Usage:
    """Allowed decisions in ``[since, until]``, aggregated per node: :meth:`of` gives what
    one node used. Built by :func:`usage` from one :meth:`ledger_usage` query.

    Keys are kept as stored: a node that is an event's subject is looked up by its HMAC
    when ``subject`` is redacted (actor chains are never redacted); objects stay hashed
    when ``resource`` is (:func:`analyze` resolves them against the identity's effective
    access); a hashed action is resolved against the model's relations and the action
    map's names."""

    __slots__ = ("_actors", "_hash", "_subjects", "rows", "since", "until")

    def __init__(
        self,
        since: float,
        until: float,
        rows: Iterable[UsageRow],
        *,
        relation_of: Mapping[str, str] | None = None,
        hash_subject: Callable[[str], str] | None = None,
        hash_value: Callable[[str], str] | None = None,
        action_names: Iterable[str] = (),
        hashed_actions: bool = False,
    ) -> None:
        self.since = since
        self.until = until
        #: the aggregate rows it was built from (as stored), for other readers of the window
        self.rows: Sequence[UsageRow] = rows if isinstance(rows, Sequence) else list(rows)
        self._hash = hash_subject  # node -> its stored subject form (None: stored clear)
        self._subjects: dict[str, _Seen] = {}
        self._actors: dict[str, _Seen] = {}
        actions = dict(relation_of or {})
        clear: dict[str, str] = {}
        if hashed_actions and hash_value is not None:
            clear = {hash_value(a): a for a in (*action_names, *actions)}
        for r in self.rows:
            action = r.action
            if action is None or r.resource is None:
                continue
            action = clear.get(action, action)
            rel = actions.get(action, action) if r.type == _EVALUATE else action
            key = (r.resource, rel)
            if r.subject is not None:
                _add(self._subjects, r.subject, key, r.uses, r.last_at)
            for a in dict.fromkeys(r.actors):  # a node twice in one chain: one use
                if a != r.subject:
                    _add(self._actors, a, key, r.uses, r.last_at)

    def of(self, node: str) -> dict[_Perm, tuple[int, float]]:
        """``(object, relation) -> (uses, last_used_at)`` of ``node`` in the window (as
        the subject or in the actor chain)."""
        out: dict[_Perm, tuple[int, float]] = {}
        stored = node if self._hash is None else self._hash(node)
        for table, key in ((self._subjects, stored), (self._actors, node)):
            for perm, (n, last) in table.get(key, {}).items():
                had = out.get(perm)
                out[perm] = (int(n), last) if had is None else (had[0] + int(n), max(had[1], last))
        return out

    def last_used(self, node: str) -> float | None:
        """The time of ``node``'s newest allowed decision in the window, or None."""
        seen = self.of(node)
        return max((last for _, last in seen.values()), default=None)

    def __len__(self) -> int:
        return len(self._subjects) + len(self._actors)


def _add(table: dict[str, _Seen], node: str, key: _Perm, n: int, last: float) -> None:
    seen = table.get(node)
    if seen is None:
        seen = table[node] = {}
    had = seen.get(key)
    if had is None:
        seen[key] = [float(n), last]
    else:
        had[0] += n
        if last > had[1]:
            had[1] = last


def usage(
    svc: Services, store_id: str, since: float, until: float, *, node: str | None = None
) -> Usage:
    """Every allowed decision of the store in ``[since, until]``, aggregated (one query);
    with ``node``, only that node's (as the subject or in the actor chain) — what one
    identity's report needs, without aggregating everyone's."""
    svc.ledger.flush()  # async ledger mode: count every decision answered so far
    fields = svc.redactor.fields
    hash_value = svc.redactor.hash_value if fields else None
    state = svc.graphs.policy(store_id)
    subject = upstream = None
    if node is not None:
        stored = hash_value if hash_value is not None and "subject" in fields else (lambda v: v)
        subject = stored(node)
        # an allowed decision with node in its actor chain went through a delegation to
        # it: its subject is a delegator upstream of node — read only those subjects'
        # events (indexed) instead of scanning the window for actor chains
        upstream = [stored(d) for d in sorted(_upstream(state.delegations(), node))]
    # the window includes its end: a decision recorded at the very instant of the report
    # (a coarse or fixed clock, a report right after the decision) is use
    rows = svc.storage.ledger_usage(
        store_id, since=since, until=math.nextafter(until, math.inf), types=DECISION_TYPES,
        subject=subject, actor=node,
        actor_subjects=upstream,
    )  # fmt: skip
    policy = state.policy
    names: list[str] = []
    if "action" in fields:
        try:
            model = svc.graphs.model(store_id)
            names = sorted({r for rels in model.types.values() for r in rels})
        except KeyplaneError:  # no model yet: nothing can be held anyway
            names = []
    return Usage(
        since, until, rows,
        relation_of=policy.actions or {},
        hash_subject=hash_value if "subject" in fields else None,
        hash_value=hash_value,
        action_names=names,
        hashed_actions="action" in fields,
    )  # fmt: skip


def _upstream(delegations: Iterable[Any], node: str) -> set[str]:
    """Every node that delegated to ``node``, directly or through a chain of delegations
    (any status: a revoked delegation was valid when its decisions were made)."""
    to: dict[str, set[str]] = {}
    for d in delegations:
        to.setdefault(d.delegate, set()).add(d.delegator)
    found: set[str] = set()
    todo = [node]
    while todo:
        for up in to.get(todo.pop(), ()):
            if up not in found and up != node:
                found.add(up)
                todo.append(up)
    return found


# ------------------------------------------------------------------------------ the masked graph


class _WithoutUser:
    """A ``{object: users}`` map of one relation with ``user`` taken out of ``objects``."""

    __slots__ = ("base", "objects", "user")

    def __init__(self, base: Mapping[str, Val], objects: frozenset[str], user: str) -> None:
        self.base, self.objects, self.user = base, objects, user

    def get(self, key: str, default: Any = None) -> Any:
        v = self.base.get(key)
        if v is None or key not in self.objects:
            return default if v is None else v
        return _minus(v, (self.user,), default)


class _WithoutObjects:
    """A ``{user: objects}`` reverse map with ``objects`` taken out of ``user``'s entry."""

    __slots__ = ("base", "objects", "user")

    def __init__(self, base: Mapping[str, Val], objects: frozenset[str], user: str) -> None:
        self.base, self.objects, self.user = base, objects, user

    def get(self, key: str, default: Any = None) -> Any:
        v = self.base.get(key)
        if v is None or key != self.user:
            return default if v is None else v
        return _minus(v, self.objects, default)


def _minus(v: Val, gone: Iterable[str], default: Any) -> Any:
    rest = set(values_of(v)).difference(gone)
    if not rest:
        return default
    return next(iter(rest)) if len(rest) == 1 else rest


class _Masked:
    """Checks for ``node`` on the store's index with some of its grants hidden.

    Plain grants live in ``fwd`` (object → users) and ``rev`` (user → objects); expiring
    or conditional ones in ``special`` and ``rev_special``. Hiding wraps those getters;
    usersets (``fus``, ``up``, ``up_us``) never hold a grant of a concrete node."""

    def __init__(self, engine: Engine, node: str, grants: Sequence[Tuple]) -> None:
        self.engine = engine
        self.node = node
        self.grants = tuple(grants)
        self.index: TupleIndex = engine.index
        self.nodes = engine._checker.nodes  # the compiled check functions (engine internals)

    def view(self, keep: Iterable[Tuple]) -> View:
        kept = set(keep)
        plain: dict[str, set[str]] = {}
        special: set[tuple[str, str]] = set()
        special_rev: dict[tuple[str, str, str], set[str]] = {}
        for g in self.grants:
            if g in kept:
                continue
            otype = g.object.partition(":")[0]
            if g.condition is None and g.expires_at is None:
                plain.setdefault(f"{otype}#{g.relation}", set()).add(g.object)
            else:
                special.add((g.object, g.relation))
                special_rev.setdefault((self.node, otype, g.relation), set()).add(g.object)
        ix, node = self.index, self.node
        hidden = {k: frozenset(v) for k, v in plain.items()}
        hidden_rev = {k: frozenset(v) for k, v in special_rev.items()}

        # per-relation maps: a shallow copy of the outer dict with the hidden relations'
        # maps wrapped, so a lookup stays one C-level dict get (the index's outer dicts
        # only gain keys, under the graph lock this runs under)
        fwd_maps: dict[str, Any] = dict(ix.fwd)
        rev_maps: dict[str, Any] = dict(ix.rev)
        for rk, h in hidden.items():
            if rk in fwd_maps:
                fwd_maps[rk] = _WithoutUser(fwd_maps[rk], h, node)
            if rk in rev_maps:
                rev_maps[rk] = _WithoutObjects(rev_maps[rk], h, node)

        def spec(key: tuple[str, str]) -> dict[str, Any] | None:
            d = ix.special.get(key)
            if d is None or key not in special or node not in d:
                return d
            rest = {u: e for u, e in d.items() if u != node}
            return rest or None

        def rev_spec(key: tuple[str, str, str]) -> Val | None:
            v = ix.rev_special.get(key)
            h = hidden_rev.get(key) if v is not None else None
            return v if h is None or v is None else _minus(v, h, None)

        return View(
            fwd_maps.get, ix.fus.get, spec, rev_maps.get, rev_spec, ix.up.get, ix.up_us.get,
            bool(ix.special),
        )  # fmt: skip

    def reach(self, keep: Iterable[Tuple], cap: int, skip: set[_Perm]) -> set[_Perm]:
        """Up to ``cap`` permissions ``node`` holds with only ``keep`` visible, leaving out
        ``skip`` — enumerated from the user's side (list objects' reverse walk) over every
        type and relation, stopping at the cap."""
        engine = self.engine
        view = self.view(keep)
        r = engine.request(self.node, view=view)
        model = engine.model
        out: set[_Perm] = set()
        for otype in sorted(model.types):
            for rel in sorted(model.types[otype]):
                try:
                    for obj in _reverse(engine, model, r, view, rel, otype):
                        p = (obj, rel)
                        if p not in skip:
                            out.add(p)
                            if len(out) >= cap:
                                return out
                except KeyplaneError:  # a condition needing context, the depth limit
                    continue
        return out

    def holds(self, keep: Iterable[Tuple], perms: Iterable[_Perm]) -> set[_Perm]:
        """The ``perms`` ``node`` holds with only the grants ``keep`` visible. A check that
        cannot be decided (a condition without its context, the depth limit) counts as
        held — the conservative side for a recommendation; a permission the model does not
        have (or an object still hashed) is not held."""
        engine = self.engine
        r = engine.request(self.node, view=self.view(keep))
        nodes = self.nodes
        out: set[_Perm] = set()
        for perm in perms:
            obj, rel = perm
            try:
                otype = engine._object_relation(obj, rel)
            except KeyplaneError:
                continue
            try:
                if nodes[otype][rel](r, obj, 0) == ALLOW:
                    out.add(perm)
            except KeyplaneError:
                out.add(perm)
        return out


def _grants(engine: Engine, node: str, now: float) -> list[Tuple]:
    """The unexpired tuples whose user is exactly ``node``, by key — except those on
    identity nodes (``agent:x#owner@human:alice``: the identity plane manages them, as
    access reviews leave them out too)."""
    ix = engine.index
    out: list[Tuple] = []
    for rk, m in ix.rev.items():
        objs = m.get(node)
        if objs is None:
            continue
        otype, _, rel = rk.partition("#")
        if otype in IDENTITY_KINDS:
            continue
        out.extend(Tuple(o, rel, node) for o in values_of(objs))
    if ix.rev_special:
        # looked up per type and relation of the model: iterating rev_special would walk
        # every expiring or conditional edge of the store for each identity
        for otype, rels in engine.model.types.items():
            if otype in IDENTITY_KINDS:
                continue
            for rel in rels:
                objs = ix.rev_special.get((node, otype, rel))
                if objs is None:
                    continue
                for o in values_of(objs):
                    e = (ix.special.get((o, rel)) or {}).get(node)
                    if e is None or (e[5] is not None and e[5] <= now):
                        continue
                    out.append(Tuple(o, rel, node, e[3], e[4], e[5]))
    out.sort(key=lambda t: (t.object, t.relation))
    return out


def _key(t: Tuple) -> str:
    return f"{t.object}#{t.relation}@{t.user}"


# ------------------------------------------------------------------------------ effective access


#: each identity's effective access, computed once per report when shared by its caller
EffectiveCache = dict[str, list[tuple[str, str]]]


def _effective(
    svc: Services, store_id: str, node: str, cache: EffectiveCache | None = None
) -> list[_Perm]:
    """``node``'s effective access, ordered by (object type, relation, object)
    (:func:`keyplane.service.effective.iter_effective`); with ``cache``, computed once for
    every analysis that shares it (the posture report's over-privilege and exceeding)."""
    if cache is not None and node in cache:
        return cache[node]
    found = list(iter_effective(svc, store_id, node))
    if cache is not None:
        cache[node] = found
    return found


# ------------------------------------------------------------------------------ analysis


def analyze(
    svc: Services,
    store_id: str,
    node: str,
    use: Usage,
    *,
    since: float,
    until: float,
    limit: int = 1000,
    effective_cache: EffectiveCache | None = None,
) -> OverPrivilege:
    """Granted versus exercised for ``node`` (no authorization: the operations and the
    posture report call it). See the module docstring for the method. ``effective_cache``:
    see :func:`_effective`."""
    engine, graph = svc.graphs.engine(store_id)
    now = svc.clock.now()
    seen = use.of(node)
    with graph.lock:
        grants = _grants(engine, node, now)
        effective = _effective(svc, store_id, node, effective_cache)
        if not grants and not seen:  # nothing granted, nothing used: only the listing
            return _result(node, since, until, [], {}, {}, effective, (), (), [], limit)
        eff = set(effective)
        if seen and svc.redactor.fields and "resource" in svc.redactor.fields:
            seen = _resolve(svc, seen, effective)
        m = _Masked(engine, node, grants)
        held = {p: v for p, v in seen.items() if p in eff}
        # not listed: no longer held, or undecidable without a request context (a
        # conditional grant used under one) — the latter counts as held
        maybe = [p for p in seen if p not in eff]
        if maybe:
            for p in m.holds(grants, maybe):
                held[p] = seen[p]
        uncovered = sorted(p for p in seen if p not in held)
        covers: dict[Tuple, set[_Perm]] = {g: set() for g in grants}
        keep: list[Tuple] = []
        if held and grants:
            base = m.holds((), held)
            targets = set(held) - base
            if targets:
                everything = set(grants)
                single: dict[Tuple, set[_Perm]] = {}
                for g in grants:
                    single[g] = m.holds((g,), targets)
                    lost = (
                        targets - m.holds(everything - {g}, targets) if len(grants) > 1 else targets
                    )
                    covers[g] = single[g] | lost
                keep = _cover(m, grants, single, covers, targets)
        reaches = _reaches(m, grants)
    return _result(
        node, since, until, grants, covers, reaches, effective, keep, uncovered,
        [(p, seen[p]) for p in sorted(held)], limit, seen,
    )  # fmt: skip


def _cover(
    m: _Masked,
    grants: Sequence[Tuple],
    single: Mapping[Tuple, set[_Perm]],
    covers: Mapping[Tuple, set[_Perm]],
    targets: set[_Perm],
) -> list[Tuple]:
    """The grants to keep so that ``targets`` stay held (steps 3 and 4 of the method);
    ``single[g]``: the targets held with only ``g``."""
    order = {g: i for i, g in enumerate(grants)}
    remaining = set(targets)
    keep: list[Tuple] = []
    while remaining:
        best = max(grants, key=lambda g: (len(single[g] & remaining), -order[g]))
        gain = single[best] & remaining
        if not gain or best in keep:
            break
        keep.append(best)
        remaining -= gain
    held = m.holds(keep, targets)
    while held != targets:  # a use that needs grants together (an intersection)
        rest = [g for g in grants if g not in keep]
        gains = [(len(m.holds([*keep, g], targets) - held), -order[g], g) for g in rest]
        best_gain = max(gains, default=None)
        if best_gain is None or best_gain[0] == 0:
            keep = list(grants)  # none restores anything alone: keep all, then prune
            break
        keep.append(best_gain[2])
        held = m.holds(keep, targets)
    # prune: drop what the others make redundant, the least covering first
    for g in sorted(keep, key=lambda g: (len(covers[g]), -order[g])):
        rest = [k for k in keep if k != g]
        if m.holds(rest, targets) == targets:
            keep = rest
    return sorted(keep, key=lambda g: order[g])


def _reaches(m: _Masked, grants: Sequence[Tuple]) -> dict[Tuple, int]:
    """Per grant, how many permissions it opens on its own (beyond what ``node`` holds
    with no grant at all), counted up to :data:`REACH_CAP`."""
    if not grants:
        return {}
    base = m.reach((), REACH_BUDGET, set())  # public access and non-grant paths
    return {g: len(m.reach((g,), REACH_CAP, base)) for g in grants}


def _resolve(
    svc: Services, seen: dict[_Perm, tuple[int, float]], effective: Sequence[_Perm]
) -> dict[_Perm, tuple[int, float]]:
    """Used permissions whose object is stored as an HMAC, matched by hashing the objects
    of the effective access (unmatched ones stay hashed)."""
    hv = svc.redactor.hash_value
    clear = {hv(o): o for o in {o for o, _ in effective}}
    out: dict[_Perm, tuple[int, float]] = {}
    for (obj, rel), v in seen.items():
        p = (clear.get(obj, obj), rel)
        had = out.get(p)
        out[p] = v if had is None else (had[0] + v[0], max(had[1], v[1]))
    return out


def _result(
    node: str,
    since: float,
    until: float,
    grants: Sequence[Tuple],
    covers: Mapping[Tuple, set[_Perm]],
    reaches: Mapping[Tuple, int],
    effective: Sequence[_Perm],
    keep: Sequence[Tuple],
    uncovered: Sequence[_Perm],
    used: Sequence[tuple[_Perm, tuple[int, float]]],
    limit: int,
    seen: Mapping[_Perm, tuple[int, float]] | None = None,
) -> OverPrivilege:
    used_set = {p for p, _ in used}
    unused = [p for p in effective if p not in used_set]
    kept = set(keep)
    seen = seen or {}
    return OverPrivilege(
        identity=node,
        since=since,
        until=until,
        grants=tuple(
            GrantUse(_key(g), len(covers.get(g, ())), reaches.get(g, 0), g.expires_at)
            for g in grants
        ),
        used=tuple(PermissionUse(o, r, n, last) for (o, r), (n, last) in used),
        unused=tuple(PermissionUse(o, r) for o, r in unused[:limit]),
        unused_total=len(unused),
        effective_total=len(effective),
        keep=tuple(_key(g) for g in grants if g in kept),
        revoke=tuple(_key(g) for g in grants if g not in kept),
        uncovered=tuple(PermissionUse(o, r, *seen[(o, r)]) for o, r in uncovered),
    )


# ------------------------------------------------------------------------------ exceeding


def _agents(svc: Services, store_id: str, agents: Sequence[str] | None) -> list[str]:
    if agents is not None:
        return sorted(set(agents))
    policy = svc.graphs.policy(store_id)
    return sorted(i.node for i in policy.identities() if i.kind == "agent")


def _principals(
    svc: Services, store_id: str, agent: str, now: float
) -> list[tuple[str, str, str | None]]:
    """``(relationship, principal, delegation_id)`` to compare ``agent`` with: its active
    owners, then the delegators of active delegations to it (one per delegator)."""
    policy = svc.graphs.policy(store_id)
    out: list[tuple[str, str, str | None]] = []
    ident = policy.identity(agent)
    if ident is not None:
        for o in sorted(set(ident.owners)):
            if "#" not in o:
                owner = policy.identity(o)
                if owner is not None and owner.status != "active":
                    continue
            out.append(("owner", o, None))
    delegators: dict[str, str] = {}
    for d in policy.delegations():
        if (
            d.delegate == agent
            and d.status == "active"
            and d.not_before <= now < d.expires_at
            and (d.delegator not in delegators or d.id < delegators[d.delegator])
        ):
            delegators[d.delegator] = d.id
    out.extend(("delegator", p, delegators[p]) for p in sorted(delegators))
    return out


class _Holdings:
    """What principals hold, per ``(object type, relation)``, listed once per exceeding
    run and shared by every agent they own or delegate to (a human typically owns
    several). Past :data:`_HOLDINGS_MAX` objects the cache starts over (bounded memory)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sets: dict[tuple[str, str, str], frozenset[str] | None] = {}
        self.size = 0

    def of(self, principal: str, otype: str, rel: str) -> frozenset[str] | None:
        """The objects of ``otype`` on which ``principal`` holds ``rel`` (None: it could
        not be listed — a condition needing context, the depth limit)."""
        key = (principal, otype, rel)
        if key in self.sets:
            return self.sets[key]
        try:
            found: frozenset[str] | None = frozenset(
                self.engine.list_objects(principal, rel, otype)
            )
        except KeyplaneError:
            found = None
        if self.size > _HOLDINGS_MAX:
            self.sets.clear()
            self.size = 0
        self.sets[key] = found
        self.size += len(found or ())
        return found

    def lacks(self, principal: str, effective: Sequence[_Perm]) -> list[_Perm]:
        """The entries of ``effective`` ``principal`` does not hold (one that cannot be
        decided is not counted). A few entries are checked one by one; more are compared
        with the principal's listing of each type and relation involved."""
        engine = self.engine
        if len(effective) <= _CHECK_FEW:
            answers = engine.batch_check([CheckItem(principal, r, o) for o, r in effective])
            return [
                p for p, a in zip(effective, answers, strict=True)
                if not a.allowed and a.error is None
            ]  # fmt: skip
        out: list[_Perm] = []
        for (otype, rel), perms in itertools.groupby(
            effective, key=lambda p: (p[0].partition(":")[0], p[1])
        ):
            held = self.of(principal, otype, rel)
            if held is not None:
                out.extend(p for p in perms if p[0] not in held)
        return out


#: up to this many entries, an agent's access is checked entry by entry for a principal
_CHECK_FEW: Final = 64
_HOLDINGS_MAX: Final = 2_000_000


def _excess_of(
    svc: Services,
    store_id: str,
    agent: str,
    limit: int,
    now: float,
    held: _Holdings,
    cache: EffectiveCache | None,
) -> list[ExcessAccess]:
    principals = _principals(svc, store_id, agent, now)
    if not principals:
        return []
    _, graph = svc.graphs.engine(store_id)
    found: list[ExcessAccess] = []
    with graph.lock:
        effective = _effective(svc, store_id, agent, cache)
        if not effective:
            return []
        for relationship, principal, did in principals:
            excess = held.lacks(principal, effective)
            if excess:
                found.append(
                    ExcessAccess(
                        agent, principal, relationship,
                        tuple(PermissionUse(o, r) for o, r in excess[:limit]), len(excess), did,
                    )
                )  # fmt: skip
    return found


def exceeding(
    svc: Services,
    store_id: str,
    *,
    agents: Sequence[str] | None = None,
    limit: int = 100,
    errors: dict[str, KeyplaneError] | None = None,
    effective_cache: EffectiveCache | None = None,
) -> list[ExcessAccess]:
    """Every agent (identities of kind ``agent``, or ``agents``) that reaches what an
    active owner or a delegator lacks, sorted by agent (no authorization).

    ``errors``: when given, an agent whose access cannot be computed (the graph around it
    exceeds the resolution limits: ``resolution_too_complex``) is recorded there and the
    others are still compared — a whole-store report is not lost to one agent; without
    it the error propagates."""
    now = svc.clock.now()
    engine, _ = svc.graphs.engine(store_id)
    held = _Holdings(engine)
    out: list[ExcessAccess] = []
    for a in _agents(svc, store_id, agents):
        try:
            out.extend(_excess_of(svc, store_id, a, limit, now, held, effective_cache))
        except KeyplaneError as exc:
            if errors is None:
                raise
            errors[a] = exc
    return out


#: agents_exceeding_owners' pages: the whole list computed once per query and state, kept
#: briefly so the next pages are slices of it
_PAGES: dict[tuple[Any, ...], tuple[float, list[ExcessAccess]]] = {}
_PAGES_TTL: Final = 60.0
_PAGES_MAX: Final = 8
_PAGES_LOCK = threading.Lock()


def _exceeding_cached(
    svc: Services, store_id: str, agents: Sequence[str] | None, limit: int, *, fresh: bool
) -> list[ExcessAccess]:
    engine, graph = svc.graphs.engine(store_id)
    policy = svc.graphs.policy(store_id)
    key = (
        id(svc), store_id, engine.model.model_id, graph.revision, policy.revision,
        tuple(agents or ()), limit,
    )  # fmt: skip
    now = time.monotonic()
    with _PAGES_LOCK:
        hit = _PAGES.get(key)
    if hit is not None and not fresh and now - hit[0] < _PAGES_TTL:
        return hit[1]
    found = exceeding(svc, store_id, agents=agents, limit=limit)
    with _PAGES_LOCK:  # surfaces call from several threads
        for k in [k for k, (t, _) in _PAGES.items() if now - t >= _PAGES_TTL]:
            del _PAGES[k]
        if len(_PAGES) >= _PAGES_MAX:
            _PAGES.clear()
        _PAGES[key] = (now, found)
    return found


# ------------------------------------------------------------------------------ inputs


def _invalid(message: str, field: str, **details: Any) -> ValidationError:
    return ValidationError(message, details={"field": field, **details})


def _node(identity: Any) -> str:
    why = user_error(identity)
    if why is None and ("#" in identity or identity.endswith(":*")):
        why = "a concrete node 'type:id' (not a userset or a wildcard)"
    if why is not None:
        raise _invalid(f"invalid identity {str(identity)[:200]!r}: {why}", "identity")
    return str(identity)


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(f"{field} must be an integer in {low}..{high}", field)
    return value


def _window(svc: Services, window_days: Any) -> tuple[float, float]:
    days = _int(window_days, "window_days", 1, MAX_WINDOW_DAYS)
    until = svc.clock.now()
    return until - days * DAY, until


def _expected(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _invalid("expected must be a list of tuple keys", "expected")
    keys: list[str] = []
    for v in value:
        try:
            t = parse_tuple(v) if isinstance(v, str) else None
        except KeyplaneError:
            t = None
        if t is None:
            raise _invalid(f"expected: {str(v)[:200]!r} is not a tuple key", "expected")
        keys.append(_key(t))
    return keys


def _prepare(svc: Services, store_id: str) -> None:
    svc.storage.current_revision(store_id)  # a missing store is store_not_found, first
    svc.graphs.catch_up(store_id)


# ------------------------------------------------------------------------------ operations


@audited(None)
def over_privilege(
    svc: Services,
    caller: Caller,
    store_id: str,
    identity: str,
    *,
    window_days: int = 90,
    limit: int = 1000,
) -> OverPrivilege:
    """Granted versus exercised for ``identity`` over the last ``window_days`` days, with
    the least-privilege recommendation (see the module docstring)."""
    authorize(svc, caller, Permission.READ_POSTURE, store_id)
    node = _node(identity)
    lim = _int(limit, "limit", 0, MAX_LIMIT)
    since, until = _window(svc, window_days)
    _prepare(svc, store_id)
    use = usage(svc, store_id, since, until, node=node)
    return analyze(svc, store_id, node, use, since=since, until=until, limit=lim)


@audited("privilege.applied")
def apply_privilege_recommendation(
    svc: Services,
    caller: Caller,
    store_id: str,
    identity: str,
    *,
    mode: str = "review",
    window_days: int = 90,
    expected: Sequence[str] | None = None,
    reviewer: str = "beneficiary_owners",
    due_at: float | None = None,
) -> PrivilegeApplied:
    """Apply ``identity``'s recommendation: revoke its ``revoke`` grants now
    (``mode="revoke"``, needs ``can_write_tuples``; one ``tuples.written``) or open a
    review campaign whose items are exactly those grants (``mode="review"``, needs
    ``can_manage_reviews``; ``review.created``, reviewers by ``reviewer``, due
    ``due_at``); then ``privilege.applied``. With ``expected`` (the revoke list the caller
    saw) a recommendation that has changed is refused (``recommendation_changed``); an
    empty one is refused too (``nothing_to_apply``). Nothing is written when refused."""
    authorize(svc, caller, Permission.READ_POSTURE, store_id)
    if mode not in MODES:
        raise _invalid(f"mode must be one of {', '.join(MODES)}", "mode")
    authorize(
        svc, caller,
        Permission.WRITE_TUPLES if mode == "revoke" else Permission.MANAGE_REVIEWS, store_id,
    )  # fmt: skip
    node = _node(identity)
    since, until = _window(svc, window_days)
    want = _expected(expected)
    if due_at is not None and (
        isinstance(due_at, bool) or not isinstance(due_at, int | float) or not math.isfinite(due_at)
    ):
        raise _invalid("due_at must be a time in seconds since the epoch", "due_at")
    _prepare(svc, store_id)
    use = usage(svc, store_id, since, until, node=node)
    rec = analyze(svc, store_id, node, use, since=since, until=until, limit=0)
    revoke = rec.revoke
    if want is not None and sorted(set(want)) != sorted(revoke):
        raise RecommendationChangedError(
            f"the recommendation for {node} has changed since it was read: review it again",
            details={"identity": node, "expected": sorted(set(want)), "current": list(revoke)},
        )
    if not revoke:
        raise NothingToApplyError(
            f"the recommendation for {node} revokes nothing: every grant covers observed use",
            details={"identity": node, "grants": len(rec.grants)},
        )
    revision: int | None = None
    review_id: str | None = None
    if mode == "revoke":
        from keyplane.service import tuples

        result = tuples.write_tuples(
            svc, caller, store_id, deletes=[parse_tuple(k) for k in revoke]
        )
        revision = result.revision
    else:
        from keyplane.service import reviews

        campaign = reviews.create_review(
            svc, caller, store_id,
            name=f"least privilege: {node}"[: reviews.MAX_NAME],
            filter={"source": "tuples", "user": node, "tuples": list(revoke)},
            reviewer=reviewer, due_at=due_at,
        )  # fmt: skip
        review_id = campaign.id
    done = PrivilegeApplied(node, mode, revoke, since, until, revision, review_id)
    details: dict[str, Any] = {
        "mode": mode,
        "window": {"since": since, "until": until},
        "tuples": list(revoke),
    }
    if revision is not None:
        details["revision"] = revision
    if review_id is not None:
        details["review_id"] = review_id
    ev = audit.change_event(
        svc, caller, "privilege.applied", store_id, resource=node, action=mode,
        revision=revision, details=details,
    )  # fmt: skip
    audit.record(svc, [replace(ev, subject=node)])
    return done


@audited(None)
def agents_exceeding_owners(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    agent: str | None = None,
    limit: int = 100,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[ExcessAccess]:
    """Agents whose effective access exceeds an active owner's or a delegator's, sorted
    by agent, then owners before delegators, then principal; ``limit`` excess entries per
    item (``excess_total`` counts them all). ``agent``: only that one."""
    authorize(svc, caller, Permission.READ_POSTURE, store_id)
    agents = None if agent is None else [_node(agent)]
    lim = _int(limit, "limit", 0, MAX_LIMIT)
    size = check_page_size(page_size, svc.settings.max_page_size)
    query = ("exceeding", store_id, agent, lim)
    after: tuple[str, ...] | None = None
    if continuation_token is not None:
        after = tuple(str(k) for k in decode_token(continuation_token, query, 4))
    _prepare(svc, store_id)
    items: list[ExcessAccess] = []

    def pos(e: ExcessAccess) -> tuple[str, ...]:
        return (e.agent, "0" if e.relationship == "owner" else "1", e.principal,
                e.delegation_id or "")  # fmt: skip

    # a first page computes afresh; the next ones reuse its list while nothing changed
    for e in _exceeding_cached(svc, store_id, agents, lim, fresh=after is None):
        if after is not None and pos(e) <= after:
            continue
        if len(items) == size:
            return Page(items, encode_token(query, pos(items[-1])))
        items.append(e)
    return Page(items, None)

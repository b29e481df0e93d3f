"""Over-privilege (issue 8 §2): what an identity was granted versus what it exercised, the
least-privilege recommendation and applying it, and agents that reach more than their
owners or delegators.

**Grants, effective access, use.** A *grant* of ``X`` is a tuple whose user is exactly
``X`` (``document:1#viewer@agent:x``, ``group:eng#member@agent:x``), read from the
in-memory tuple index (expired ones, and those on identity nodes such as the owner tuples
``agent:y#owner@human:alice`` the identity plane manages, left out). Wildcard tuples (``agent:*``) are public,
not grants, and usersets naming ``X``'s own node (``agent:x#rel``) are not grants either.
Its *effective access* is every ``(object, relation)`` with ``check(X, relation, object)``
true over every type and relation of the store's latest model. *Use* is an allowed
decision in the ledger within ``[since, until)`` — ``decision.evaluate`` (the decision
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

1. ``U``: the used permissions ``X`` still holds (the rest are ``uncovered``: access
   since removed). ``B`` ⊆ ``U``: those still held with *every* grant hidden (public
   access, paths that do not go through a grant) — no grant is needed for them.
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
is kept. ``reaches`` counts at most :data:`REACH_CAP` permissions of the effective access
reached through the grant alone, looking at no more than :data:`REACH_BUDGET` checks per
identity (beyond that it is a lower bound).

**Exceeding** (:func:`exceeding`): each agent's effective access is compared with each
*active* owner (a human owner that is suspended or deprovisioned is left to the posture
findings; a group owner ``group:x#member`` is checked as the userset — what the group as
such holds, not what one member holds) and each delegator of an active delegation to it
(one entry per delegator): the ``(object, relation)`` the agent has and the principal
lacks (``check(principal, relation, object)`` false; one that cannot be decided is not
counted).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from keyplane.graph.tuples import Tuple, parse_tuple, user_error
from keyplane.policy.records import IDENTITY_KINDS
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
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
REACH_CAP: Final = 1000
#: the most checks :func:`analyze` spends counting ``reaches`` for one identity
REACH_BUDGET: Final = 20_000
_EVALUATE: Final = "decision.evaluate"


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class PrivilegeApplied:
    """A recommendation applied to ``identity``: the grants (tuple keys) revoked at
    ``revision`` (``mode="revoke"``) or put to review in campaign ``review_id``
    (``mode="review"``), computed over the usage window ``[since, until)``."""

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
    """Allowed decisions in ``[since, until)``, aggregated per node: :meth:`of` gives what
    one node used. Built by :func:`usage` from one :meth:`ledger_usage` query.

    Keys are kept as stored: a node that is an event's subject is looked up by its HMAC
    when ``subject`` is redacted (actor chains are never redacted); objects stay hashed
    when ``resource`` is (:func:`analyze` resolves them against the identity's effective
    access); a hashed action is resolved against the model's relations and the action
    map's names."""

    __slots__ = ("_actors", "_hash", "_subjects", "since", "until")

    def __init__(
        self,
        since: float,
        until: float,
        rows: Iterable[UsageRow],
        *,
        relation_of: Mapping[str, str] | None = None,
        hash_subject: Any = None,
        hash_value: Any = None,
        action_names: Iterable[str] = (),
        hashed_actions: bool = False,
    ) -> None:
        self.since = since
        self.until = until
        self._hash = hash_subject  # node -> its stored subject form (None: stored clear)
        self._subjects: dict[str, _Seen] = {}
        self._actors: dict[str, _Seen] = {}
        actions = dict(relation_of or {})
        clear: dict[str, str] = {}
        if hashed_actions and hash_value is not None:
            clear = {hash_value(a): a for a in (*action_names, *actions)}
        for r in rows:
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


def usage(svc: Services, store_id: str, since: float, until: float) -> Usage:
    """Every allowed decision of the store in ``[since, until)``, aggregated (one query)."""
    svc.ledger.flush()  # async ledger mode: count every decision answered so far
    rows = svc.storage.ledger_usage(store_id, since=since, until=until, types=DECISION_TYPES)
    policy = svc.graphs.policy(store_id).policy
    fields = svc.redactor.fields
    hash_value = svc.redactor.hash_value if fields else None
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

        def fwd(rk: str) -> Mapping[str, Val] | None:
            m = ix.fwd.get(rk)
            h = hidden.get(rk)
            return m if m is None or h is None else _WithoutUser(m, h, node)  # type: ignore[return-value]

        def revr(rk: str) -> Mapping[str, Val] | None:
            m = ix.rev.get(rk)
            h = hidden.get(rk)
            return m if m is None or h is None else _WithoutObjects(m, h, node)  # type: ignore[return-value]

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
            fwd, ix.fus.get, spec, revr, rev_spec, ix.up.get, ix.up_us.get, bool(ix.special)
        )

    def holds(self, keep: Iterable[Tuple], perms: Iterable[_Perm]) -> set[_Perm]:
        """The ``perms`` ``node`` holds with only the grants ``keep`` visible. A check that
        cannot be decided counts as held (the conservative side for a recommendation)."""
        engine = self.engine
        r = engine.request(self.node, view=self.view(keep))
        nodes = self.nodes
        out: set[_Perm] = set()
        for perm in perms:
            obj, rel = perm
            try:
                otype = engine._object_relation(obj, rel)
                if nodes[otype][rel](r, obj, 0) == ALLOW:
                    out.add(perm)
            except KeyplaneError:
                out.add(perm)
        return out

    def count(
        self, keep: Iterable[Tuple], perms: Iterable[_Perm], cap: int, budget: int
    ) -> tuple[int, int]:
        """How many of ``perms`` are held with only ``keep`` (up to ``cap``), spending at
        most ``budget`` checks; returns (count, checks spent)."""
        engine = self.engine
        r = engine.request(self.node, view=self.view(keep))
        nodes = self.nodes
        n = spent = 0
        for obj, rel in perms:
            if n >= cap or spent >= budget:
                break
            spent += 1
            try:
                otype = engine._object_relation(obj, rel)
                if nodes[otype][rel](r, obj, 0) == ALLOW:
                    n += 1
            except KeyplaneError:
                continue
        return n, spent


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
        for (user, otype, rel), objs in ix.rev_special.items():
            if user != node or otype in IDENTITY_KINDS:
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


def _effective(svc: Services, store_id: str, engine: Engine, node: str) -> list[_Perm]:
    """``node``'s effective access, ordered by (object type, relation, object): H1's
    :func:`keyplane.service.effective.iter_effective` when present, else list objects
    over every type and relation of the model."""
    try:  # looked up at run time: the module may not exist in this build
        mod = importlib.import_module("keyplane.service.effective")
    except ImportError:
        mod = None
    iter_effective = getattr(mod, "iter_effective", None)
    if iter_effective is not None:
        return [(str(o), str(r)) for o, r in iter_effective(svc, store_id, node)]
    out: list[_Perm] = []
    types = engine.model.types
    for otype in sorted(types):
        for rel in sorted(types[otype]):
            try:
                found = sorted(engine.list_objects(node, rel, otype))
            except KeyplaneError:  # e.g. a condition that needs a request context
                continue
            out.extend((o, rel) for o in found)
    return out


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
) -> OverPrivilege:
    """Granted versus exercised for ``node`` (no authorization: the operations and the
    posture report call it). See the module docstring for the method."""
    engine, graph = svc.graphs.engine(store_id)
    now = svc.clock.now()
    seen = use.of(node)
    with graph.lock:
        grants = _grants(engine, node, now)
        effective = _effective(svc, store_id, engine, node)
        if not grants and not seen:  # nothing granted, nothing used: only the listing
            return _result(node, since, until, [], {}, {}, effective, (), (), [], limit)
        eff = set(effective)
        if seen and svc.redactor.fields and "resource" in svc.redactor.fields:
            seen = _resolve(svc, seen, effective)
        held = {p: v for p, v in seen.items() if p in eff}
        uncovered = sorted(p for p in seen if p not in eff)
        m = _Masked(engine, node, grants)
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
        reaches = _reaches(m, grants, effective)
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


def _reaches(m: _Masked, grants: Sequence[Tuple], effective: Sequence[_Perm]) -> dict[Tuple, int]:
    out: dict[Tuple, int] = {}
    budget = REACH_BUDGET
    if not grants or not effective:
        return {g: 0 for g in grants}
    base = m.holds((), effective) if len(effective) <= REACH_BUDGET // 2 else set()
    rest = [p for p in effective if p not in base]
    budget -= len(effective) if base else 0
    # an equal share per grant, so one grant reaching little cannot starve the others
    share = max(REACH_CAP, budget // len(grants))
    for g in grants:
        out[g] = m.count((g,), rest, REACH_CAP, share)[0]
    return out


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


def _excess_of(
    svc: Services, store_id: str, agent: str, limit: int, now: float
) -> Iterator[ExcessAccess]:
    principals = _principals(svc, store_id, agent, now)
    if not principals:
        return
    engine, graph = svc.graphs.engine(store_id)
    with graph.lock:
        effective = _effective(svc, store_id, engine, agent)
        if not effective:
            return
        found: list[ExcessAccess] = []
        for relationship, principal, did in principals:
            answers = engine.batch_check([CheckItem(principal, r, o) for o, r in effective])
            # a check that cannot be decided is not counted as excess
            excess = [
                p
                for p, a in zip(effective, answers, strict=True)
                if not a.allowed and a.error is None
            ]
            if excess:
                found.append(
                    ExcessAccess(
                        agent, principal, relationship,
                        tuple(PermissionUse(o, r) for o, r in excess[:limit]), len(excess), did,
                    )
                )  # fmt: skip
    yield from found


def exceeding(
    svc: Services, store_id: str, *, agents: Sequence[str] | None = None, limit: int = 100
) -> list[ExcessAccess]:
    """Every agent (identities of kind ``agent``, or ``agents``) that reaches what an
    active owner or a delegator lacks, sorted by agent (no authorization)."""
    now = svc.clock.now()
    out: list[ExcessAccess] = []
    for a in _agents(svc, store_id, agents):
        out.extend(_excess_of(svc, store_id, a, limit, now))
    return out


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
    return analyze(svc, store_id, node, usage(svc, store_id, since, until), since=since,
                   until=until, limit=lim)  # fmt: skip


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
    rec = analyze(svc, store_id, node, usage(svc, store_id, since, until), since=since,
                  until=until, limit=0)  # fmt: skip
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
    now = svc.clock.now()
    items: list[ExcessAccess] = []

    def pos(e: ExcessAccess) -> tuple[str, ...]:
        return (e.agent, "0" if e.relationship == "owner" else "1", e.principal,
                e.delegation_id or "")  # fmt: skip

    for a in _agents(svc, store_id, agents):
        if after is not None and a < after[0]:
            continue
        for e in _excess_of(svc, store_id, a, lim, now):
            if after is not None and pos(e) <= after:
                continue
            if len(items) == size:
                return Page(items, encode_token(query, pos(items[-1])))
            items.append(e)
    return Page(items, None)

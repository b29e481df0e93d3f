"""List objects and list users — OpenFGA's ListObjects and ListUsers over the index.

**List objects** walks the graph *from the user's side* (OpenFGA's "reverse expand"):
starting from the user (and its type's wildcard), it follows reverse edges — a tuple
``o#r@user``, a userset tuple ``o2#r2@o#r``, a tuple-to-userset parent edge, a computed
relation on the same object — only into ``(type, relation)`` pairs from which the target
relation can be reached at all (pruned once per model and target). A path made only of
unions, computed usersets and tuple-to-usersets *proves* membership, so the object is
yielded at once; a path through an intersection or an exclusion only makes the object a
*candidate*, which is settled by a check at the end (sharing one memo). Results stream
out as found, without repeats. Conditions on traversed edges are evaluated on the way; an
evaluation error fails the request, as in the reference (its reverse expansion,
``pkg/server/commands/reverseexpand/reverse_expand.go``, joins condition errors and
``commands/list_objects.go`` returns them), even when check would allow some object through
another path. Depth is bounded as check bounds it: a node more userset or tuple-to-userset
hops from the user than ``max_depth`` (25) fails the request with 2002, as the reference's
``ErrResolutionDepthExceeded`` does, so every object listed is one check allows.

**List users** expands ``object#relation`` *downwards* into sets of subjects matching
the filters (``user``, ``group#member``) with set algebra per rewrite: union, intersection
and difference, where a typed wildcard ``user:*`` stands for every user (so
``[user:*] but not blocked`` still lists ``user:*``, as OpenFGA does). Results computed
while a cycle was open are not memoized.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from keyplane.errors import (
    RelationNotFoundError,
    TypeNotFoundError,
    ValidationError,
)
from keyplane.graph.check import ALLOW, Req, _depth_error, eval_condition
from keyplane.graph.compiled import CompiledModel, RelationInfo, Rewrite
from keyplane.graph.index import Edge, View, values_of
from keyplane.graph.tuples import Tuple, object_error

__all__ = ["ReversePlan", "list_objects", "list_users"]

Node = tuple[str, str]  # (object, relation)
ConsumerRow = tuple[
    tuple[tuple[str, bool], ...],
    tuple[tuple[str, str, bool, RelationInfo, bool], ...],
    tuple[tuple[str, str, str, bool, RelationInfo, bool, str], ...],
]


# -- the reverse plan of a model -------------------------------------------------------------


class ReversePlan:
    """For each ``(type, relation)``, who consumes it — computed once per model.

    ``computed[(T, R)]`` → [(R2, exact)] : ``T#R`` feeds ``T#R2`` on the same object;
    ``usersets[(T, R)]`` → [(T2, R2, exact)] : ``T2#R2`` allows the userset ``T#R``;
    ``ttu[(T, R)]`` → [(T2, R2, tupleset, exact)] : ``R2: R from tupleset`` on T2 with a T parent;
    ``direct[kind]`` → [(T2, R2, exact)] : ``T2#R2`` allows the user kind directly.
    ``exact`` is false when the path to the leaf crosses an intersection or a difference.
    """

    def __init__(self, model: CompiledModel) -> None:
        self.model = model
        self.computed: dict[Node, list[tuple[str, bool]]] = {}
        self.usersets: dict[Node, list[tuple[str, str, bool]]] = {}
        self.ttu: dict[Node, list[tuple[str, str, str, bool]]] = {}
        self.direct: dict[str, list[tuple[str, str, bool]]] = {}
        self._relevant: dict[Node, frozenset[Node]] = {}
        self._consumers: dict[Node, dict[Node, ConsumerRow]] = {}
        for tname, rels in model.types.items():
            for rname, info in rels.items():
                self._leaves(tname, rname, info, info.rewrite, True)

    def _leaves(self, t: str, r: str, info: RelationInfo, rw: Rewrite, exact: bool) -> None:
        op = rw[0]
        if op == "this":
            for kind in set(info.plain) | set(info.conditional):
                if "#" in kind:
                    ut, _, ur = kind.partition("#")
                    self.usersets.setdefault((ut, ur), []).append((t, r, exact))
                else:
                    self.direct.setdefault(kind, []).append((t, r, exact))
        elif op == "computed":
            self.computed.setdefault((t, rw[1]), []).append((r, exact))
        elif op == "ttu":
            ts = self.model.types[t][rw[1]]
            for kind in set(ts.plain) | set(ts.conditional):
                if "#" in kind or kind.endswith(":*"):
                    continue
                if rw[2] in self.model.types.get(kind, {}):
                    self.ttu.setdefault((kind, rw[2]), []).append((t, r, rw[1], exact))
        elif op == "union":
            for c in rw[1]:
                self._leaves(t, r, info, c, exact)
        elif op == "intersection":
            for c in rw[1]:
                self._leaves(t, r, info, c, False)
        elif op == "difference":
            self._leaves(t, r, info, rw[1], False)

    def consumers(self, target: Node) -> dict[Node, ConsumerRow]:
        """Per reached ``(type, relation)``, its consumers that can lead to ``target``:
        (computed, userset, tuple-to-userset) rows with the model lookups done."""
        got = self._consumers.get(target)
        if got is not None:
            return got
        relevant = self.relevant(target)
        types = self.model.types
        out: dict[Node, ConsumerRow] = {}
        for node in set(self.computed) | set(self.usersets) | set(self.ttu):
            t, rel = node
            comp = tuple((r2, ex) for r2, ex in self.computed.get(node, ()) if (t, r2) in relevant)
            kind = f"{t}#{rel}"
            uss = tuple(
                (t2, r2, ex, types[t2][r2], kind in types[t2][r2].plain)
                for t2, r2, ex in self.usersets.get(node, ())
                if (t2, r2) in relevant
            )
            ttus = tuple(
                (t2, r2, ts, ex, types[t2][ts], t in types[t2][ts].plain, f"{t2}#{ts}")
                for t2, r2, ts, ex in self.ttu.get(node, ())
                if (t2, r2) in relevant
            )
            if comp or uss or ttus:
                out[node] = (comp, uss, ttus)
        self._consumers[target] = out
        return out

    def relevant(self, target: Node) -> frozenset[Node]:
        """Every (type, relation) from which ``target`` can be reached."""
        got = self._relevant.get(target)
        if got is not None:
            return got
        # invert the consumer maps: consumer -> producers
        producers: dict[Node, set[Node]] = {}
        for (t, r), lst in self.computed.items():
            for r2, _ in lst:
                producers.setdefault((t, r2), set()).add((t, r))
        for (t, r), lst2 in self.usersets.items():
            for t2, r2, _ in lst2:
                producers.setdefault((t2, r2), set()).add((t, r))
        for (t, r), lst3 in self.ttu.items():
            for t2, r2, _, _ in lst3:
                producers.setdefault((t2, r2), set()).add((t, r))
        seen = {target}
        stack = [target]
        while stack:
            n = stack.pop()
            for p in producers.get(n, ()):
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        out = frozenset(seen)
        self._relevant[target] = out
        return out


def _plan(model: CompiledModel) -> ReversePlan:
    plan = model._reverse_plan
    if plan is None:
        plan = model._reverse_plan = ReversePlan(model)
    return plan  # type: ignore[no-any-return]


def _edge_ok(info: RelationInfo, e: Edge, r: Req, obj: str, rel: str, user: str) -> bool:
    """Whether a conditional/expiring edge counts now (raises ConditionError)."""
    exp = e[5]
    if exp is not None and exp <= r.now:
        return False
    cond = e[3]
    if not info.allows(e[2], cond):
        return False
    if cond:
        return eval_condition(r, e, obj, rel, user)
    return True


# -- list objects ------------------------------------------------------------------------------


def list_objects(
    engine: Any,
    user: str,
    relation: str,
    object_type: str,
    *,
    context: Mapping[str, Any] | None = None,
    contextual_tuples: Sequence[Tuple] = (),
) -> Iterator[str]:
    model: CompiledModel = engine.model
    model.relation(object_type, relation)  # 2021 / 2022
    view = engine.view(contextual_tuples)
    req = engine.request(user, context=context, view=view)
    return _reverse(engine, model, req, view, relation, object_type)


def _reverse(
    engine: Any, model: CompiledModel, r: Req, view: View, relation: str, object_type: str
) -> Iterator[str]:
    plan = _plan(model)
    target = (object_type, relation)
    relevant = plan.relevant(target)
    table = plan.consumers(target)
    leaf = target not in table  # the target relation feeds no other relevant relation
    has_special = view.has_special
    up = view.up
    rev = view.rev
    revr = view.revr
    rev_special = view.rev_special
    special = view.special
    types = model.types
    max_depth = r.max_depth
    # node -> exact? and node -> distance from the user (userset and tuple-to-userset hops,
    # as check counts its dispatches). A 0-1 breadth-first walk: a computed relation (0 hops)
    # goes to the front of the queue, a hop (1) to the back, so nodes leave the queue in
    # order of distance and a node's distance is final when it does. A node is processed
    # again only when it becomes exact or nearer.
    state: dict[Node, bool] = {}
    dist: dict[Node, int] = {}
    queue: deque[tuple[str, str, str, bool, int]] = deque()  # (obj, type, rel, exact, hops)
    emitted: set[str] = set()
    candidates: list[str] = []
    cur = 0  # the distance of the node being expanded

    def reach(obj: str, t: str, rel: str, exact: bool, d: int) -> None:
        key = (obj, rel)
        prev = state.get(key)
        if prev is not None:
            pd = dist[key]
            if d >= pd and (prev or not exact):
                return
            d = min(d, pd)
            exact = exact or prev
        state[key] = exact
        dist[key] = d
        if d <= cur:
            queue.appendleft((obj, t, rel, exact, d))
        else:
            queue.append((obj, t, rel, exact, d))

    def direct_into(subject: str, kind: str, exact_in: bool) -> None:
        for t2, r2, ex in plan.direct.get(kind, ()):
            if (t2, r2) not in relevant:
                continue
            info = types[t2][r2]
            if kind in info.plain:
                for o in values_of(rev((subject, t2, r2))):
                    reach(o, t2, r2, exact_in and ex, 0)
            for o in values_of(rev_special((subject, t2, r2))):
                sp = special((o, r2))
                e = sp.get(subject) if sp else None
                if e is not None and _edge_ok(info, e, r, o, r2, subject):
                    reach(o, t2, r2, exact_in and ex, 0)

    u = r.u
    if r.is_userset:
        uobj, _, urel = u.partition("#")
        reach(uobj, uobj.partition(":")[0], urel, True, 0)
        direct_into(u, r.ukind, True)
    else:
        direct_into(u, r.ukind, True)
        if r.uwkind:
            direct_into(r.uw, r.uwkind, True)

    while queue or candidates:
        if not queue:
            # settle candidates reached only through intersections / exclusions
            node = engine._checker.table(r)[object_type][relation]
            for o in candidates:
                if o not in emitted and state.get((o, relation)) is False:
                    emitted.add(o)
                    if node(r, o, 0) == ALLOW:
                        yield o
            candidates = []
            continue
        obj, t, rel, exact, d = queue.popleft()
        if state.get((obj, rel)) != exact or dist[(obj, rel)] != d:
            continue  # superseded by an exact or a nearer visit
        if d >= max_depth:
            # as check (and the reference's reverse expansion, 2002): a path this long is
            # beyond the resolution depth, whatever else was found
            raise _depth_error(max_depth)
        cur = d
        if t == object_type and rel == relation:
            if exact:
                if obj not in emitted:
                    emitted.add(obj)
                    yield obj
            else:
                candidates.append(obj)
        cons = table.get((t, rel))
        if cons is None:
            continue
        comp, uss, ttus = cons
        for r2, ex in comp:
            reach(obj, t, r2, exact and ex, d)
        d1 = d + 1
        if uss:
            subject = f"{obj}#{rel}"
            for t2, r2, ex, info, plain_ok in uss:
                if plain_ok:
                    upm = up((t2, r2, rel))
                    if upm is not None:
                        for o in values_of(upm.get(obj)):
                            reach(o, t2, r2, exact and ex, d1)
                if has_special:
                    for o in values_of(rev_special((subject, t2, r2))):
                        sp = special((o, r2))
                        e = sp.get(subject) if sp else None
                        if e is not None and _edge_ok(info, e, r, o, r2, subject):
                            reach(o, t2, r2, exact and ex, d1)
        for t2, r2, ts, ex, tsinfo, plain_ok, tsrel in ttus:
            if plain_ok:
                rv = revr(tsrel)
                if rv is not None:
                    if (
                        exact
                        and ex
                        and t2 == object_type
                        and r2 == relation
                        and leaf
                        and d1 < max_depth
                    ):
                        # children proven to hold the target relation, feeding nothing
                        # else: stream them straight out (the common list-objects hop)
                        for o in values_of(rv.get(obj)):
                            if o not in emitted:
                                emitted.add(o)
                                state[(o, r2)] = True
                                if dist.get((o, r2), d1) >= d1:
                                    dist[(o, r2)] = d1
                                yield o
                    else:
                        for o in values_of(rv.get(obj)):
                            reach(o, t2, r2, exact and ex, d1)
            if has_special:
                for o in values_of(rev_special((obj, t2, ts))):
                    sp = special((o, ts))
                    e = sp.get(obj) if sp else None
                    if e is not None and _edge_ok(tsinfo, e, r, o, ts, obj):
                        reach(o, t2, r2, exact and ex, d1)


# -- list users --------------------------------------------------------------------------------


def list_users(
    engine: Any,
    object: str,
    relation: str,
    filters: Sequence[str],
    *,
    context: Mapping[str, Any] | None = None,
    contextual_tuples: Sequence[Tuple] = (),
) -> list[str]:
    model: CompiledModel = engine.model
    why = object_error(object)
    if why is not None:
        raise ValidationError(
            f"invalid 'object' field {object!r}: {why}", details={"object": object}
        )
    otype = object.partition(":")[0]
    model.relation(otype, relation)
    if not filters:
        raise ValidationError("list users needs at least one user filter")
    ftypes: set[str] = set()
    fsets: set[str] = set()
    for f in filters:
        ft, _, fr = f.partition("#")
        if ft not in model.types:
            raise TypeNotFoundError(f"type '{ft}' not found", details={"type": ft})
        if fr:
            if fr not in model.types[ft]:
                raise RelationNotFoundError(
                    f"relation '{ft}#{fr}' not found", details={"type": ft, "relation": fr}
                )
            fsets.add(f)
        else:
            ftypes.add(ft)
    view = engine.view(contextual_tuples)
    lu = _Lister(model, view, ftypes, fsets, context, engine.clock.now(), engine.max_depth)
    got, _ = lu.expand(object, otype, relation, 0)
    return got.render()


class USet:
    """A set of subjects where ``wild[type]`` = the excluded ids means "every ``type`` object
    except these" (the typed wildcard, possibly minus some users)."""

    __slots__ = ("items", "wild")

    def __init__(self, items: set[str] | None = None, wild: dict[str, set[str]] | None = None):
        self.items: set[str] = items if items is not None else set()
        self.wild: dict[str, set[str]] = wild if wild is not None else {}

    def covers(self, x: str) -> bool:
        if x in self.items:
            return True
        if "#" in x:
            return False
        t = x.partition(":")[0]
        ex = self.wild.get(t)
        return ex is not None and x not in ex and not x.endswith(":*")

    def union(self, o: USet) -> USet:
        items = self.items | o.items
        wild: dict[str, set[str]] = {}
        for t in set(self.wild) | set(o.wild):
            a, b = self.wild.get(t), o.wild.get(t)
            ex = (a & b) if (a is not None and b is not None) else (a if b is None else b)
            assert ex is not None
            wild[t] = {x for x in ex if x not in items}
        return USet(items, wild)

    def intersect(self, o: USet) -> USet:
        items = {x for x in self.items if o.covers(x) or (x.endswith(":*") and o.has_wild(x))}
        items |= {x for x in o.items if self.covers(x) or (x.endswith(":*") and self.has_wild(x))}
        wild = {t: self.wild[t] | o.wild[t] for t in self.wild if t in o.wild}
        return USet(items, wild)

    def has_wild(self, x: str) -> bool:
        return x[:-2] in self.wild

    def subtract(self, o: USet) -> USet:
        items = set()
        for x in self.items:
            if x.endswith(":*"):
                if x[:-2] in o.wild or x in o.items:
                    continue
                items.add(x)
            elif not o.covers(x):
                items.add(x)
        wild: dict[str, set[str]] = {}
        for t, ex in self.wild.items():
            oex = o.wild.get(t)
            if oex is not None:
                # every t except ex, minus every t except oex = oex minus ex
                items.update(x for x in oex if x not in ex)
                continue
            wild[t] = ex | {x for x in o.items if x.partition(":")[0] == t and "#" not in x}
        return USet(items, wild)

    def render(self) -> list[str]:
        out = {x for x in self.items if not (x.endswith(":*") and x[:-2] in self.wild)}
        out.update(f"{t}:*" for t in self.wild)
        return sorted(out)


_EMPTY = USet()


class _Lister:
    def __init__(
        self,
        model: CompiledModel,
        view: View,
        ftypes: set[str],
        fsets: set[str],
        context: Mapping[str, Any] | None,
        now: float,
        max_depth: int,
    ) -> None:
        self.model = model
        self.view = view
        self.ftypes = ftypes
        self.fsets = fsets
        self.max_depth = max_depth
        self.memo: dict[Node, USet] = {}
        self.open: set[Node] = set()
        # a Req only to evaluate conditions with the request's context
        self.req = Req("-:-", "-", "-", False, view, context, now, model.conditions, max_depth)

    def expand(self, obj: str, t: str, rel: str, depth: int) -> tuple[USet, bool]:
        """(subjects, complete); incomplete when a cycle was open below."""
        key = (obj, rel)
        got = self.memo.get(key)
        if got is not None:
            return got, True
        if depth >= self.max_depth:
            raise _depth_error(self.max_depth)
        if key in self.open:
            return _EMPTY, False
        self.open.add(key)
        try:
            info = self.model.types[t][rel]
            res, complete = self._rw(obj, t, info, info.rewrite, depth)
        finally:
            self.open.discard(key)
        if f"{t}#{rel}" in self.fsets:
            res = res.union(USet({f"{obj}#{rel}"}))
        if complete:
            self.memo[key] = res
        return res, complete

    def _rw(
        self, obj: str, t: str, info: RelationInfo, rw: Rewrite, depth: int
    ) -> tuple[USet, bool]:
        op = rw[0]
        if op == "this":
            return self._direct(obj, info, depth)
        if op == "computed":
            return self.expand(obj, t, rw[1], depth)
        if op == "ttu":
            return self._ttu(obj, t, rw[1], rw[2], depth)
        kids = rw[1] if op != "difference" else (rw[1], rw[2])
        parts = [self._rw(obj, t, info, c, depth) for c in kids]
        complete = all(p[1] for p in parts)
        out = parts[0][0]
        for p, _ in parts[1:]:
            if op == "union":
                out = out.union(p)
            elif op == "intersection":
                out = out.intersect(p)
            else:
                out = out.subtract(p)
        return out, complete

    def _direct(self, obj: str, info: RelationInfo, depth: int) -> tuple[USet, bool]:
        v = self.view
        key = (obj, info.name)
        out = USet()
        complete = True
        for u in values_of(v.plain(key)):
            kind = _kind_of(u)
            if kind in info.plain:
                self._add_plain(u, kind, out)
        us = v.usersets(key)
        if us:
            for u, e in us.items():
                if e[2] in info.plain:
                    complete = self._add_userset(u, e, out, depth) and complete
        sp = v.special(key)
        if sp:
            for u, e in sp.items():
                if not e[1] and e[2].partition(":")[0] not in self.ftypes:
                    continue  # cannot contribute: not even evaluated (as the reference)
                if not _edge_ok(info, e, self.req, obj, info.name, u):
                    continue
                if e[1]:
                    complete = self._add_userset(u, e, out, depth) and complete
                else:
                    self._add_plain(u, e[2], out)
        return out, complete

    def _add_plain(self, u: str, kind: str, out: USet) -> None:
        if kind.endswith(":*"):
            t = kind[:-2]
            if t in self.ftypes:
                out.wild.setdefault(t, set())
                out.items.add(u)
        elif kind in self.ftypes:
            out.items.add(u)

    def _add_userset(self, u: str, e: Edge, out: USet, depth: int) -> bool:
        ut = e[0].partition(":")[0]
        if ut not in self.model.types or e[1] not in self.model.types[ut]:
            return True
        sub, complete = self.expand(e[0], ut, e[1], depth + 1)
        merged = out.union(sub)
        out.items, out.wild = merged.items, merged.wild
        if e[2] in self.fsets:
            out.items.add(u)
        return complete

    def _ttu(self, obj: str, t: str, tupleset: str, computed: str, depth: int) -> tuple[USet, bool]:
        v = self.view
        ts = self.model.types[t][tupleset]
        key = (obj, tupleset)
        out = USet()
        complete = True
        parents: list[str] = [p for p in values_of(v.plain(key)) if _kind_of(p) in ts.plain]
        sp = v.special(key)
        if sp:
            for p, e in sp.items():
                if not e[1] and _edge_ok(ts, e, self.req, obj, tupleset, p):
                    parents.append(p)
        for p in parents:
            pt = p.partition(":")[0]
            if p.endswith(":*") or computed not in self.model.types.get(pt, {}):
                continue
            sub, c = self.expand(p, pt, computed, depth + 1)
            out = out.union(sub)
            complete = complete and c
        return out, complete


def _kind_of(u: str) -> str:
    head, _, rel = u.partition("#")
    t, _, i = head.partition(":")
    if rel:
        return f"{t}#{rel}"
    return f"{t}:*" if i == "*" else t

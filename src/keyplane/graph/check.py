"""Check: is ``user`` related to ``object`` by ``relation``? — OpenFGA schema 1.1 semantics.

Every ``(type, relation)`` of a model is compiled once into a *node*: a closure that
resolves ``object#relation`` for the user of the current request. Nodes call each other
directly (a computed userset is a plain function call, a tuple-to-userset finds the
parent's node by the parent's type prefix) so that resolution never interprets the
model's JSON, allocates nothing but a memo key (on relations that lie on a cycle), raises
no exceptions and logs nothing on the common path. Three kinds of node:

* a relation that lies on a cycle of the model's relation graph (``viewer from parent`` on
  ``folder``) is wrapped with the per-request memo, which doubles as the set of
  ``object#relation`` being resolved on the current path (cycle detection);
* a relation on no cycle *is* its rewrite's closure — no wrapper, no memo: it cannot be
  re-entered, and the depth limit is enforced where dispatches happen;
* a *recursive direct* relation (``group#member: [user, group#member]``) is answered from
  the user's side: the first visit walks up the reverse index (user → groups → parent
  groups ...) once per request, every later visit is a set lookup, and the ``this`` of
  other relations tests ``group:x`` against that set inline.

A node answers one of three ints, mirroring OpenFGA's ``ResolveCheckResponse``:
``ALLOW`` (1); ``DENY`` (0), not allowed and independent of any cycle; ``CYCLE`` (2), not
allowed because the path came back to an ``object#relation`` being resolved (OpenFGA's
``CycleDetected``): a union keeps looking, an intersection or exclusion with a cyclic
operand answers "not allowed", and such answers are never memoized.

Errors (a condition whose parameters are missing, the depth limit) are exceptions combined
as the reference combines its concurrent branches (``internal/graph/check.go``): a union is
allowed if any branch is, and fails only if none allows and one failed; an intersection is
denied if any branch denies; an exclusion is denied if its base denies or its subtract
allows; otherwise the error wins — an error surfaces only when the answer depends on it.

Depth: as in OpenFGA only *dispatches* (following a userset or a tuple-to-userset edge)
count, a computed userset does not; reaching ``max_depth`` (25) raises
:class:`ResolutionTooComplexError` (2002). The user-side walk measures exact path lengths
when a path could be that long, so a member found too deep still gets 2002; a *non*-member
of a group nested deeper than the limit gets "denied" where the reference's top-down walk
would report 2002 (documented deviation, only reachable with 25+ levels of nesting).

Tuples that do not fit the model version being evaluated (their user kind or condition is
not allowed by the relation's type restrictions) are ignored, as OpenFGA's read filter does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from keyplane.errors import KeyplaneError, ResolutionTooComplexError, ValidationError
from keyplane.graph.compiled import CompiledModel, RelationInfo, Rewrite
from keyplane.graph.index import Edge, View, values_of
from keyplane.graph.tuples import user_error

__all__ = ["ALLOW", "CYCLE", "DENY", "Checker", "Req", "checker_for", "parse_request_user"]

DENY = 0
ALLOW = 1
CYCLE = 2
OPEN = 3  # memo marker: being resolved on the current path

NodeFn = Callable[["Req", str, int], int]


class Req:
    """The state of one resolution: the user, the graph view, the context, the memo."""

    __slots__ = (
        "closures",
        "conds",
        "ctx",
        "fus",
        "fwd",
        "has_special",
        "is_userset",
        "max_depth",
        "memo",
        "now",
        "rev_special",
        "revr",
        "special",
        "u",
        "ukind",
        "up",
        "up_us",
        "uw",
        "uwkind",
    )

    def __init__(
        self,
        user: str,
        ukind: str,
        utype: str,
        is_userset: bool,
        view: View,
        ctx: Mapping[str, Any] | None,
        now: float,
        conds: Mapping[str, Any],
        max_depth: int,
        memo: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self.u = user
        self.ukind = ukind
        self.uw = utype + ":*"
        # a typed wildcard grants objects of its type, never a userset of that type
        self.uwkind = "" if is_userset else self.uw
        self.is_userset = is_userset
        self.fwd = view.fwd
        self.fus = view.fus
        self.special = view.special
        self.ctx = ctx
        self.now = now
        self.conds = conds
        self.max_depth = max_depth
        self.memo: dict[tuple[str, str], int] = {} if memo is None else memo
        self.has_special = view.has_special
        self.revr = view.revr
        self.rev_special = view.rev_special
        self.up = view.up
        self.up_us = view.up_us
        self.closures: dict[tuple[str, str], Any] | None = None
        if is_userset:
            # OpenFGA: Check(group:1#member@group:1#member) is always true.
            obj, _, rel = user.partition("#")
            self.memo[(obj, rel)] = ALLOW


def parse_request_user(model: CompiledModel, user: str) -> tuple[str, str, str]:
    """Validate a request's user; returns (type, kind, user). Raises ValidationError (2000)."""
    why = user_error(user)  # the syntax rule writes use: anything writable is queryable
    if why is not None:
        raise ValidationError(f"invalid 'user' field {user!r}: {why}", details={"user": user})
    head, _, urel = user.partition("#")
    utype, _, uid = head.partition(":")
    rels = model.types.get(utype)
    if rels is None:
        raise ValidationError(
            f"type '{utype}' not found", details={"type": utype, "reason": "type_not_found"}
        )
    if urel:
        if urel not in rels:
            raise ValidationError(
                f"relation '{utype}#{urel}' not found",
                details={"type": utype, "relation": urel, "reason": "relation_not_found"},
            )
        return utype, f"{utype}#{urel}", user
    if uid == "*":
        return utype, f"{utype}:*", user
    return utype, utype, user


def _depth_error(max_depth: int) -> ResolutionTooComplexError:
    return ResolutionTooComplexError(
        f"resolution exceeded the maximum depth of {max_depth}",
        details={"max_depth": max_depth},
    )


def eval_condition(r: Req, e: Edge, obj: str, rel: str, user: str) -> bool:
    """Evaluate an edge's condition (raises ConditionError); an unknown condition is false."""
    c = r.conds.get(e[3]) if e[3] else None
    if c is None:
        return False
    ok: bool = c.evaluate(e[4], r.ctx, tuple_key=f"{obj}#{rel}@{user}")
    return ok


class Checker:
    """The compiled nodes of one model: ``nodes[type][relation](req, object, depth)``."""

    def __init__(self, model: CompiledModel, *, wrap_all: bool = False) -> None:
        self.model = model
        self.nodes: dict[str, dict[str, NodeFn]] = {t: {} for t in model.types}
        self._safe: Checker | None = self if wrap_all else None
        #: recursive relations ("group#member") -> the user's cached member set of it
        self._members: dict[str, Callable[[Req], set[str]]] = {}
        #: request user -> parse_request_user(...) result (users repeat; validation is pure)
        self.users: dict[str, tuple[str, str, str]] = {}
        deps = {
            (t, r): _deps(model, info)
            for t, rels in model.types.items()
            for r, info in rels.items()
        }
        cyclic = set(deps) if wrap_all else _cyclic(deps)
        #: nodes that need the memo/cycle wrapper (those on a cycle of the relation graph)
        self.cyclic = cyclic
        cells: dict[tuple[str, str], list[NodeFn]] = {}
        for (t, r), _ in deps.items():
            info = model.types[t][r]
            if _is_recursive_direct(info):
                node, members = _make_recursive(info)
                self.nodes[t][r] = node
                self._members[f"{t}#{r}"] = members
            elif (t, r) in cyclic:
                cell: list[NodeFn] = []
                cells[(t, r)] = cell
                self.nodes[t][r] = _make_node(r, cell)
        # Nodes on no cycle are their body itself (no wrapper): compile them dependencies
        # first, so every reference they hold is already final.
        done: set[tuple[str, str]] = set()

        def build(n: tuple[str, str]) -> None:
            if n in done:
                return
            done.add(n)
            for d in deps[n]:
                build(d)
            if n[1] not in self.nodes[n[0]]:
                info = model.types[n[0]][n[1]]
                self.nodes[n[0]][n[1]] = self._compile(info, info.rewrite)

        for n in deps:
            build(n)
        for (t, r), cell in cells.items():
            info = model.types[t][r]
            cell.append(self._compile(info, info.rewrite))

    def table(self, r: Req) -> dict[str, dict[str, NodeFn]]:
        """The nodes to resolve ``r`` with. A userset user (``group:x#member``) needs the
        memo on every node, because the memo is where "a userset is a member of itself"
        is recorded; every other user gets the lean table."""
        if not r.is_userset:
            return self.nodes
        if self._safe is None:
            self._safe = Checker(self.model, wrap_all=True)
        return self._safe.nodes

    def _compile(self, info: RelationInfo, rw: Rewrite) -> NodeFn:
        op = rw[0]
        if op == "this":
            return _make_direct(info, self._kind_nodes(info), self._members)
        if op == "computed":
            return self.nodes[info.type][rw[1]]
        if op == "ttu":
            return self._make_ttu(info, rw[1], rw[2])
        if op == "union":
            return _make_union([self._compile(info, c) for c in rw[1]])
        if op == "intersection":
            return _make_intersection([self._compile(info, c) for c in rw[1]])
        if op == "difference":
            return _make_difference(self._compile(info, rw[1]), self._compile(info, rw[2]))
        raise AssertionError(f"unknown rewrite {op}")  # pragma: no cover - compile validates

    def _kind_nodes(self, info: RelationInfo) -> dict[str, NodeFn]:
        """Userset kinds this relation allows (``group#member``) → that userset's node."""
        out: dict[str, NodeFn] = {}
        for kind in set(info.plain) | set(info.conditional):
            t, sep, r = kind.partition("#")
            if sep and r in self.nodes.get(t, {}):
                out[kind] = self.nodes[t][r]
        return out

    def _make_ttu(self, info: RelationInfo, tupleset: str, computed: str) -> NodeFn:
        ts = self.model.types[info.type][tupleset]
        targets: list[tuple[str, str, str, NodeFn]] = []  # (prefix, wildcard, kind, node)
        for kind in sorted(set(ts.plain) | set(ts.conditional)):
            if "#" in kind or kind.endswith(":*"):
                continue
            node = self.nodes.get(kind, {}).get(computed)
            if node is not None:
                targets.append((kind + ":", kind + ":*", kind, node))
        plain_targets = tuple(t for t in targets if t[2] in ts.plain)
        all_targets = {t[2]: t[3] for t in targets}
        ts_plain = ts.plain
        ts_cond = ts.conditional
        relkey = sys.intern(f"{info.type}#{tupleset}")
        return _ttu_closure(relkey, tupleset, plain_targets, all_targets, ts_plain, ts_cond)


def _deps(model: CompiledModel, info: RelationInfo) -> set[tuple[str, str]]:
    """The (type, relation) nodes a relation's rewrite refers to."""
    out: set[tuple[str, str]] = set()
    stack = [info.rewrite]
    while stack:
        rw = stack.pop()
        op = rw[0]
        if op == "this":
            for kind in set(info.plain) | set(info.conditional):
                t, sep, r = kind.partition("#")
                if sep and r in model.types.get(t, {}):
                    out.add((t, r))
        elif op == "computed":
            out.add((info.type, rw[1]))
        elif op == "ttu":
            ts = model.types[info.type][rw[1]]
            for kind in set(ts.plain) | set(ts.conditional):
                if "#" not in kind and rw[2] in model.types.get(kind, {}):
                    out.add((kind, rw[2]))
        elif op in ("union", "intersection"):
            stack.extend(rw[1])
        else:
            stack.extend((rw[1], rw[2]))
    return out


def _cyclic(deps: dict[tuple[str, str], set[tuple[str, str]]]) -> set[tuple[str, str]]:
    """Nodes from which the node itself can be reached again."""
    out: set[tuple[str, str]] = set()
    for start in deps:
        seen: set[tuple[str, str]] = set()
        stack = list(deps[start])
        while stack:
            n = stack.pop()
            if n == start:
                out.add(start)
                break
            if n not in seen:
                seen.add(n)
                stack.extend(deps.get(n, ()))
    return out


def _is_recursive_direct(info: RelationInfo) -> bool:
    """``define member: [user, user:*, group#member]`` on ``group``: direct only, no
    conditions, and the only userset it admits is itself."""
    if info.rewrite != ("this",) or info.conditional:
        return False
    own = f"{info.type}#{info.name}"
    usersets = [k for k in info.plain if "#" in k]
    return bool(usersets) and all(k == own for k in usersets)


def _make_recursive(info: RelationInfo) -> tuple[NodeFn, Callable[[Req], set[str]]]:
    """Membership in a recursive direct relation, answered from the user's side.

    Top-down, ``group:root#member`` would visit every nested group below the root; instead
    the first visit of the request walks *up* from the user through the reverse index
    (``user -> groups -> their parent groups ...``) into a set of usersets
    (``group:x#member``), and every later visit — or a ``[group#member]`` grant tested by
    another relation's ``this`` — is a set lookup. Only when a path could be long enough
    for the depth limit does a second walk record distances (the number of dispatches the
    top-down walk would need), so 2002 is raised as OpenFGA would when the user is a
    member. A cycle simply ends the walk.
    """
    t, rel = info.type, info.name
    ckey = (t, rel)
    dkey = (t, rel + "#")
    own = f"{t}#{rel}"
    user_kinds = frozenset(k for k in info.plain if "#" not in k)

    suffix = "#" + rel

    def walk(r: Req) -> dict[str, int]:
        rv = r.revr(own) or _NOTHING
        special = r.has_special
        dist: dict[str, int] = {}
        frontier: list[str] = []
        if r.is_userset:
            if r.ukind == own:
                g0 = r.u.partition("#")[0]
                dist[g0] = 0
                frontier.append(g0)
        else:
            starts = []
            if r.ukind in user_kinds:
                starts.append(r.u)
            if r.uwkind in user_kinds:
                starts.append(r.uw)
            for subj in starts:
                v = rv.get(subj)
                if special:
                    v = _with_special(r, v, subj, t, rel)
                if v is not None:
                    for g in (v,) if v.__class__ is str else v:
                        if g not in dist:
                            dist[g] = 1
                            frontier.append(g)
        d = 1
        up = r.up((t, rel, rel))
        if up is None and not special:
            return dist
        get = up.get if up is not None else _none
        while frontier:
            d += 1
            nxt: list[str] = []
            for g in frontier:
                v = get(g)
                if special:
                    v = _with_special(r, v, g + suffix, t, rel)
                if v is None:
                    continue
                if v.__class__ is str:
                    if v not in dist:
                        dist[v] = d
                        nxt.append(v)
                else:
                    for p in v:
                        if p not in dist:
                            dist[p] = d
                            nxt.append(p)
            frontier = nxt
        return dist

    def members(r: Req) -> set[str]:
        """Every group the user is in, as usersets (``group:x#member``): the walk without
        distances — a set and a stack, on strings the index already holds."""
        special = r.has_special
        seen: set[str] = set()
        stack: list[str] = []
        if r.is_userset:
            if r.ukind == own:
                stack.append(r.u)
        else:
            for subj, ok in ((r.u, r.ukind in user_kinds), (r.uw, r.uwkind in user_kinds)):
                if not ok:
                    continue
                v = (r.revr(own) or _NOTHING).get(subj)
                if special:
                    v = _with_special(r, v, subj, t, rel)
                if v is not None:
                    if v.__class__ is str:
                        stack.append(v + suffix)
                    else:
                        stack.extend([g + suffix for g in v])
        upm = r.up_us(own)
        get = upm.get if upm is not None else _none
        pop, push, extend, add = stack.pop, stack.append, stack.extend, seen.add
        while stack:
            gs = pop()
            if gs in seen:
                continue
            add(gs)
            v = get(gs)
            if special:
                extra = r.rev_special((gs, t, rel))
                if extra is not None:
                    v = set(values_of(v))
                    v.update(o + suffix for o in _with_special(r, None, gs, t, rel) or ())
            if v is not None:
                if v.__class__ is str:
                    push(v)
                else:
                    extend(v)
        return seen

    def cached_us(r: Req) -> set[str]:
        cls = r.closures
        if cls is None:
            cls = r.closures = {}
        cl: set[str] | None = cls.get(ckey)
        if cl is None:
            cl = cls[ckey] = members(r)
        return cl

    def node(r: Req, obj: str, depth: int) -> int:
        if depth >= r.max_depth:
            raise _depth_error(r.max_depth)
        cl = cached_us(r)
        if obj + suffix not in cl:
            return DENY
        if depth + len(cl) - 1 >= r.max_depth:
            # the path to obj might be long enough to exceed the limit: measure it
            cls: dict[tuple[str, str], Any] = r.closures  # type: ignore[assignment]
            dist = cls.get(dkey)
            if dist is None:
                dist = cls[dkey] = walk(r)
            d = dist[obj]
            if d > 1 and depth + d - 1 >= r.max_depth:
                raise _depth_error(r.max_depth)
        return ALLOW

    return node, cached_us


def _no_members(r: Req) -> set[str]:
    return set()


_NO_EDGES: dict[str, Edge] = {}
_NOTHING: dict[str, Any] = {}


def _none(key: str) -> None:
    return None


def _with_special(r: Req, v: Any, subj: str, t: str, rel: str) -> Any:
    """``v`` plus the objects of unconditional expiring ``o#rel@subj`` edges still valid."""
    extra = r.rev_special((subj, t, rel))
    if extra is None:
        return v
    out = set(values_of(v))
    for o in values_of(extra):
        sp = r.special((o, rel))
        e = sp.get(subj) if sp else None
        if e is not None and not e[3] and (e[5] is None or e[5] > r.now):
            out.add(o)
    return out


def _make_node(rel: str, cell: list[NodeFn]) -> NodeFn:
    # The memo doubles as the set of nodes being resolved on the current path (OPEN), so a
    # visit costs one dict lookup and one store; answers that hit a cycle are not kept.
    def node(r: Req, obj: str, depth: int) -> int:
        key = (obj, rel)
        memo = r.memo
        res = memo.get(key)
        if res is not None:
            if res != OPEN:
                return res
            if depth >= r.max_depth:
                raise _depth_error(r.max_depth)
            return CYCLE
        if depth >= r.max_depth:
            raise _depth_error(r.max_depth)
        memo[key] = OPEN
        try:
            res = cell[0](r, obj, depth)
        except BaseException:
            del memo[key]
            raise
        if res == CYCLE:
            del memo[key]
        else:
            memo[key] = res
        return res

    return node


def _make_direct(
    info: RelationInfo,
    kind_nodes: dict[str, NodeFn],
    recursive: Mapping[str, Callable[[Req], set[str]]],
) -> NodeFn:
    rel = info.name
    plain_kinds = info.plain
    cond_kinds = info.conditional
    plain_usersets = {k: f for k, f in kind_nodes.items() if k in plain_kinds}
    has_usersets = bool(plain_usersets)
    relkey = sys.intern(f"{info.type}#{rel}")
    has_wild = any(k.endswith(":*") for k in plain_kinds)
    # userset kinds answered by a recursive relation's member set: test membership inline
    inline = {k: recursive[k] for k in plain_usersets if k in recursive}
    kind1, members1 = next(iter(inline.items())) if len(inline) == 1 else ("", _no_members)
    only1 = bool(kind1) and len(plain_usersets) == 1

    def direct(r: Req, obj: str, depth: int) -> int:
        ukind = r.ukind
        s: Any = None
        if ukind in plain_kinds:
            if r.is_userset:
                per0 = r.fus(relkey)
                us0 = per0.get(obj) if per0 is not None else None
                if us0 is not None and r.u in us0:
                    return ALLOW
            else:
                fw = r.fwd(relkey)
                if fw is not None:
                    s = fw.get(obj)
                    if s is not None:
                        if s.__class__ is str:
                            if s == r.u:
                                return ALLOW
                        elif r.u in s:
                            return ALLOW
        if has_wild and r.uwkind in plain_kinds:
            if s is None:
                fw = r.fwd(relkey)
                s = fw.get(obj) if fw is not None else None
            if s is not None:
                if s.__class__ is str:
                    if s == r.uw:
                        return ALLOW
                elif r.uw in s:
                    return ALLOW
        res = DENY
        err: KeyplaneError | None = None
        if has_usersets:
            per = r.fus(relkey)
            us = per.get(obj) if per is not None else None
            if us is not None:
                d1 = depth + 1
                maxd = r.max_depth
                skip1 = False
                if kind1 and d1 < maxd:
                    # the recursive userset kind (group#member): one C-level set test
                    cl = members1(r)
                    if d1 + len(cl) - 1 < maxd:
                        if not cl.isdisjoint(us):
                            return ALLOW
                        if only1:
                            us = _NO_EDGES
                        skip1 = True
                for u, e in us.items():
                    k = e[2]
                    if skip1 and k == kind1:
                        continue
                    f = plain_usersets.get(k)
                    if f is None:
                        continue
                    if d1 >= maxd:
                        err = _depth_error(maxd)
                        continue
                    if inline:
                        m = inline.get(k)
                        if m is not None:
                            ms = m(r)
                            if u not in ms:
                                continue
                            if d1 + len(ms) - 1 < maxd:
                                return ALLOW
                    try:
                        x = f(r, e[0], d1)
                    except KeyplaneError as exc:
                        err = exc
                        continue
                    if x == ALLOW:
                        return ALLOW
                    if x == CYCLE:
                        res = CYCLE
        sp = r.special((obj, rel)) if r.has_special else None
        if sp is not None:
            for user, e in sp.items():
                exp = e[5]
                if exp is not None and exp <= r.now:
                    continue
                kind = e[2]
                cond = e[3]
                if cond:
                    ck = cond_kinds.get(kind)
                    if ck is None or cond not in ck:
                        continue
                elif kind not in plain_kinds:
                    continue
                hit = user == r.u or kind == r.uwkind
                g: NodeFn | None = None
                if not hit:
                    if not e[1]:
                        continue
                    g = kind_nodes.get(kind)
                    if g is None:
                        continue
                try:
                    if cond and not eval_condition(r, e, obj, rel, user):
                        continue
                    if g is None:
                        return ALLOW
                    if depth + 1 >= r.max_depth:
                        raise _depth_error(r.max_depth)
                    x = g(r, e[0], depth + 1)
                except KeyplaneError as exc:
                    err = exc
                    continue
                if x == ALLOW:
                    return ALLOW
                if x == CYCLE:
                    res = CYCLE
        if err is not None:
            raise err
        return res

    return direct


def _ttu_closure(
    relkey: str,
    tupleset: str,
    plain_targets: tuple[tuple[str, str, str, NodeFn], ...],
    all_targets: dict[str, NodeFn],
    ts_plain: frozenset[str],
    ts_cond: dict[str, frozenset[str]],
) -> NodeFn:
    def ttu(r: Req, obj: str, depth: int) -> int:
        res = DENY
        err: KeyplaneError | None = None
        d1 = depth + 1
        fw = r.fwd(relkey)
        s = fw.get(obj) if fw is not None else None
        if s is not None:
            parents: Any = (s,) if s.__class__ is str else s
            for p in parents:
                for prefix, wild, _k, f in plain_targets:
                    if p.startswith(prefix) and p != wild:
                        if d1 >= r.max_depth:
                            err = _depth_error(r.max_depth)
                            break
                        try:
                            x = f(r, p, d1)
                        except KeyplaneError as exc:
                            err = exc
                            break
                        if x == ALLOW:
                            return ALLOW
                        if x == CYCLE:
                            res = CYCLE
                        break
        sp = r.special((obj, tupleset)) if r.has_special else None
        if sp is not None:
            for user, e in sp.items():
                exp = e[5]
                if exp is not None and exp <= r.now:
                    continue
                kind = e[2]
                if e[1]:
                    continue
                tf = all_targets.get(kind)
                if tf is None:
                    continue
                cond = e[3]
                if cond:
                    ck = ts_cond.get(kind)
                    if ck is None or cond not in ck:
                        continue
                elif kind not in ts_plain:
                    continue
                try:
                    if cond and not eval_condition(r, e, obj, tupleset, user):
                        continue
                    if d1 >= r.max_depth:
                        raise _depth_error(r.max_depth)
                    x = tf(r, e[0], d1)
                except KeyplaneError as exc:
                    err = exc
                    continue
                if x == ALLOW:
                    return ALLOW
                if x == CYCLE:
                    res = CYCLE
        if err is not None:
            raise err
        return res

    return ttu


def _make_union(children: list[NodeFn]) -> NodeFn:
    kids = tuple(children)

    def union(r: Req, obj: str, depth: int) -> int:
        res = DENY
        err: KeyplaneError | None = None
        for c in kids:
            try:
                x = c(r, obj, depth)
            except KeyplaneError as exc:
                err = exc
                continue
            if x == ALLOW:
                return ALLOW
            if x == CYCLE:
                res = CYCLE
        if err is not None:
            raise err
        return res

    return union


def _make_intersection(children: list[NodeFn]) -> NodeFn:
    kids = tuple(children)

    def intersection(r: Req, obj: str, depth: int) -> int:
        err: KeyplaneError | None = None
        for c in kids:
            try:
                x = c(r, obj, depth)
            except KeyplaneError as exc:
                err = exc
                continue
            if x != ALLOW:
                return x
        if err is not None:
            raise err
        return ALLOW

    return intersection


def _make_difference(base: NodeFn, subtract: NodeFn) -> NodeFn:
    def difference(r: Req, obj: str, depth: int) -> int:
        berr: KeyplaneError | None = None
        try:
            b = base(r, obj, depth)
            if b != ALLOW:
                return b
        except KeyplaneError as exc:
            berr = exc
        try:
            s = subtract(r, obj, depth)
        except KeyplaneError as exc:
            raise berr or exc from None
        if s == CYCLE:
            return CYCLE
        if s == ALLOW:
            return DENY
        if berr is not None:
            raise berr
        return ALLOW

    return difference


def checker_for(model: CompiledModel) -> Checker:
    """The model's compiled checker, built on first use and cached on the model."""
    c = model._engine_cache
    if c is None:
        c = model._engine_cache = Checker(model)
    return c  # type: ignore[no-any-return]

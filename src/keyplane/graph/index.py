"""The in-memory tuple index of one store: the graph every decision reads.

The index is shared by every model version of a store and knows nothing about models: it
is a set of edges, arranged so that the commonest question — "is this user directly in
``object#relation``?" — is one dict lookup and one set membership test.

Layout (all strings interned with :func:`sys.intern`, so a user or object named by
thousands of tuples is stored once):

``plain[(object, relation)]``
    unconditional, non-expiring edges to plain users and typed wildcards
    (``user:anne``, ``user:*``). The value is a ``str`` while there is a single edge and
    becomes a ``set`` from the second one on: most ``(object, relation)`` keys hold exactly
    one user (a document's parent, its owner), and a one-element set costs ~200 bytes
    where a reference to an interned string costs 8.
``usersets[(object, relation)]``
    unconditional, non-expiring userset edges: ``{"group:eng#member": (obj, rel, kind)}``,
    pre-split so that resolution never parses strings.
``special[(object, relation)]``
    edges with a condition or an expiry, of any user kind:
    ``{user: (user_obj, user_rel, kind, condition, context, expires_at)}``. Kept apart so
    the unconditional fast path never pays for them.
``rev[(user, object_type, relation)]`` / ``rev_special[...]``
    the reverse edges of plain users and wildcards (user → objects, same str-or-set
    values), for list objects, which walks the graph from the user's side.
``up[(object_type, relation, userset_relation)][userset_object]``
    the reverse userset edges, one small dict per relation: ``up[("group", "member",
    "member")]["group:eng"]`` holds the groups ``group:eng#member`` is a member of. Walking
    a user's nested groups upwards is then one lookup per group on an interned string,
    with no key to build — the same cost as a hand-written ``member_of`` dict.

Concurrency: one writer, many readers. :meth:`TupleIndex.add`, :meth:`~TupleIndex.remove`
and :meth:`~TupleIndex.apply` never mutate a set or dict a reader may be iterating: they
build the new value and swap it in (copy-on-write, a single reference store under the
GIL), so checks running in other threads see either the old or the new edge set, never a
broken one. :meth:`~TupleIndex.load_rows` mutates in place and is meant for building an
index before it serves.

Expired edges are not removed by a timer: readers compare ``expires_at`` with their clock,
and :meth:`TupleIndex.purge_expired` drops them whenever the owner wants the memory back.

:class:`Overlay` is a per-request view that adds contextual tuples on top of an index
without touching it: same getters, merged answers, built in microseconds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from keyplane.graph.tuples import Tuple

__all__ = ["Edge", "Overlay", "TupleIndex", "edge_tuple"]

_intern = sys.intern

# (user_object, user_relation, kind, condition, context, expires_at)
Edge = tuple[str, str, str, str | None, Mapping[str, Any] | None, float | None]
Key = tuple[str, str]
RKey = tuple[str, str, str]
Val = str | set[str]


def _kind(utype: str, uid: str, urel: str) -> str:
    if urel:
        return _intern(f"{utype}#{urel}")
    if uid == "*":
        return _intern(f"{utype}:*")
    return utype


def _add(d: dict[Any, Val], key: Any, val: str) -> bool:
    cur = d.get(key)
    if cur is None:
        d[key] = val
        return True
    if cur.__class__ is str:
        if cur == val:
            return False
        d[key] = {cur, val}  # type: ignore[arg-type]
        return True
    if val in cur:
        return False
    new = set(cur)  # copy-on-write: readers may be iterating ``cur`` right now
    new.add(val)
    d[key] = new
    return True


def _discard(d: dict[Any, Val], key: Any, val: str) -> bool:
    cur = d.get(key)
    if cur is None:
        return False
    if cur.__class__ is str:
        if cur != val:
            return False
        del d[key]
        return True
    if val not in cur:
        return False
    if len(cur) == 2:
        d[key] = next(x for x in cur if x != val)
    else:
        d[key] = {x for x in cur if x != val}  # copy-on-write
    return True


def values_of(v: Val | None) -> Iterable[str]:
    """Iterate a str-or-set index value."""
    if v is None:
        return ()
    if v.__class__ is str:
        return (v,)  # type: ignore[return-value]
    return v


def edge_tuple(obj: str, rel: str, user: str, edge: Edge | None) -> Tuple:
    """Rebuild the :class:`Tuple` of an edge (for explain and expand)."""
    if edge is None:
        return Tuple(obj, rel, user)
    return Tuple(obj, rel, user, edge[3], edge[4], edge[5])


class TupleIndex:
    """All tuples of one store, indexed for check, list objects, list users and expand."""

    __slots__ = (
        "_count",
        "_view",
        "plain",
        "rev",
        "rev_special",
        "revision",
        "special",
        "up",
        "up_us",
        "us_count",
        "usersets",
    )

    def __init__(self) -> None:
        self.plain: dict[Key, Val] = {}
        self.usersets: dict[Key, dict[str, Edge]] = {}
        self.special: dict[Key, dict[str, Edge]] = {}
        self.rev: dict[RKey, Val] = {}
        self.rev_special: dict[RKey, Val] = {}
        self.up: dict[RKey, dict[str, Val]] = {}
        #: (object_type, relation) -> {"group:eng#member": "group:all#member" | {...}}: the
        #: same userset edges, userset to userset, for walking nested groups on strings
        #: that already exist (no concatenation per step)
        self.up_us: dict[Key, dict[str, Val]] = {}
        #: (object_type, relation) -> how many unconditional userset edges it has, so that a
        #: relation without any (a document's viewers are users) skips the usersets lookup
        self.us_count: dict[Key, int] = {}
        self.revision: int = 0
        self._count = 0
        self._view: View | None = None

    def __len__(self) -> int:
        return self._count

    # -- writes ----------------------------------------------------------------------------

    def add(self, t: Tuple) -> None:
        """Insert or replace the edge with ``t``'s key (condition and expiry are attributes)."""
        otype, _, _oid = t.object.partition(":")
        head, _, urel = t.user.partition("#")
        utype, _, uid = head.partition(":")
        self._insert(
            otype,
            t.object,
            t.relation,
            t.user,
            utype,
            uid,
            urel,
            t.condition,
            t.context,
            t.expires_at,
        )

    def _insert(
        self,
        otype: str,
        obj: str,
        rel: str,
        user: str,
        utype: str,
        uid: str,
        urel: str,
        cond: str | None,
        ctx: Mapping[str, Any] | None,
        exp: float | None,
    ) -> None:
        obj = _intern(obj)
        rel = _intern(rel)
        user = _intern(user)
        otype = _intern(otype)
        key = (obj, rel)
        self._remove_key(key, otype, user)
        if cond or exp is not None:
            uobj = _intern(f"{utype}:{uid}") if urel else user
            edge: Edge = (uobj, _intern(urel), _kind(utype, uid, urel), cond or None, ctx, exp)
            sp = dict(self.special.get(key) or {})  # copy-on-write
            sp[user] = edge
            self.special[key] = sp
            if self._view is not None:
                self._view.has_special = True
            _add(self.rev_special, (user, otype, rel), obj)
        elif urel:
            us = dict(self.usersets.get(key) or {})  # copy-on-write
            us[user] = (
                _intern(f"{utype}:{uid}"),
                _intern(urel),
                _kind(utype, uid, urel),
                None,
                None,
                None,
            )
            self.usersets[key] = us
            trk = (otype, rel)
            self.us_count[trk] = self.us_count.get(trk, 0) + 1
            ukey = (otype, rel, us[user][1])
            up = self.up.get(ukey)
            if up is None:
                self.up[ukey] = up = {}
            _add(up, us[user][0], obj)
            upu = self.up_us.get(trk)
            if upu is None:
                self.up_us[trk] = upu = {}
            _add(upu, user, _intern(f"{obj}#{rel}"))
        else:
            _add(self.plain, key, user)
            _add(self.rev, (user, otype, rel), obj)
        self._count += 1

    def _remove_key(self, key: Key, otype: str, user: str) -> bool:
        found = False
        if _discard(self.plain, key, user):
            found = True
        else:
            us = self.usersets.get(key)
            if us is not None and user in us:
                e = us[user]
                trk = (otype, key[1])
                self.us_count[trk] = self.us_count.get(trk, 1) - 1
                up = self.up.get((otype, key[1], e[1]))
                if up is not None:
                    _discard(up, e[0], key[0])
                upu = self.up_us.get(trk)
                if upu is not None:
                    _discard(upu, user, f"{key[0]}#{key[1]}")
                if len(us) == 1:
                    del self.usersets[key]
                else:
                    self.usersets[key] = {u: x for u, x in us.items() if u != user}
                return self._removed()
        if found:
            _discard(self.rev, (user, otype, key[1]), key[0])
        else:
            sp = self.special.get(key)
            if sp is not None and user in sp:
                if len(sp) == 1:
                    del self.special[key]
                else:
                    self.special[key] = {u: e for u, e in sp.items() if u != user}
                _discard(self.rev_special, (user, otype, key[1]), key[0])
                found = True
        if found:
            self._count -= 1
        return found

    def _removed(self) -> bool:
        self._count -= 1
        return True

    def remove(self, t: Tuple) -> None:
        """Remove the edge with ``t``'s key; a missing edge is not an error."""
        self._remove_key((t.object, t.relation), t.object.partition(":")[0], t.user)

    def apply(self, writes: Iterable[Tuple], deletes: Iterable[Tuple]) -> None:
        """Apply one committed write: deletes first, then writes (as OpenFGA orders them)."""
        for t in deletes:
            self.remove(t)
        for t in writes:
            self.add(t)

    def load_rows(
        self,
        rows: Iterable[tuple[str, str, str, str, str, str, str | None, str | None, float | None]],
    ) -> int:
        """Bulk-load raw storage rows; returns how many rows were read.

        A row is ``(object_type, object_id, relation, user_type, user_id, user_relation or '',
        condition_name, context_json, expires_at)``. The common row (no condition, no expiry,
        no userset) takes a dedicated path with no function call per row.
        """
        plain = self.plain
        rev = self.rev
        intern = _intern
        n = 0
        added = 0
        for ot, oid, rel, ut, uid, urel, cond, ctxj, exp in rows:
            n += 1
            if urel or cond or exp is not None:
                ctx = json.loads(ctxj) if ctxj else None
                before = self._count
                self._insert(
                    ot,
                    f"{ot}:{oid}",
                    rel,
                    f"{ut}:{uid}#{urel}" if urel else f"{ut}:{uid}",
                    ut,
                    uid,
                    urel,
                    cond,
                    ctx,
                    exp,
                )
                added += self._count - before
                self._count = before
                continue
            obj = intern(f"{ot}:{oid}")
            rel = intern(rel)
            user = intern(f"{ut}:{uid}")
            key = (obj, rel)
            cur = plain.get(key)
            if cur is None:
                plain[key] = user
            elif cur.__class__ is str:
                if cur == user:
                    continue
                plain[key] = {cur, user}  # type: ignore[arg-type]
            elif user in cur:
                continue
            else:
                cur.add(user)  # type: ignore[union-attr]
            rkey = (user, intern(ot), rel)
            rcur = rev.get(rkey)
            if rcur is None:
                rev[rkey] = obj
            elif rcur.__class__ is str:
                rev[rkey] = {rcur, obj}  # type: ignore[arg-type]
            else:
                rcur.add(obj)  # type: ignore[union-attr]
            added += 1
        self._count += added
        return n

    def purge_expired(self, now: float) -> int:
        """Drop edges whose ``expires_at`` is at or before ``now``; returns how many."""
        doomed = [
            (key, user)
            for key, sp in self.special.items()
            for user, e in sp.items()
            if e[5] is not None and e[5] <= now
        ]
        for (obj, rel), user in doomed:
            self._remove_key((obj, rel), obj.partition(":")[0], user)
        return len(doomed)

    # -- reads -----------------------------------------------------------------------------

    def iter_tuples(self) -> Iterator[Tuple]:
        """Every edge as a Tuple (for tests, dumps and the reference evaluator)."""
        for (obj, rel), v in self.plain.items():
            for u in values_of(v):
                yield Tuple(obj, rel, u)
        for (obj, rel), us in self.usersets.items():
            for u in us:
                yield Tuple(obj, rel, u)
        for (obj, rel), sp in self.special.items():
            for u, e in sp.items():
                yield Tuple(obj, rel, u, e[3], e[4], e[5])

    # getters shared with Overlay (the engine calls these through a View)
    def view(self) -> View:
        """The getters of this index (cached: the dicts are never replaced)."""
        v = self._view
        if v is None:
            v = self._view = View(
                self.plain.get,
                self.usersets.get,
                self.special.get,
                self.rev.get,
                self.rev_special.get,
                bool(self.special),
                self.up.get,
                self.us_count.get,
                self.up_us.get,
            )
        return v


class View:
    """The five getters the engine reads the graph through (an index, or an overlay)."""

    __slots__ = (
        "has_special",
        "plain",
        "rev",
        "rev_special",
        "special",
        "up",
        "up_us",
        "us_count",
        "usersets",
    )

    def __init__(
        self,
        plain: Callable[[Key], Val | None],
        usersets: Callable[[Key], dict[str, Edge] | None],
        special: Callable[[Key], dict[str, Edge] | None],
        rev: Callable[[RKey], Val | None],
        rev_special: Callable[[RKey], Val | None],
        has_special: bool = True,
        up: Callable[[RKey], Mapping[str, Val] | None] | None = None,
        us_count: Callable[[Key], int | None] | None = None,
        up_us: Callable[[Key], Mapping[str, Val] | None] | None = None,
    ) -> None:
        self.has_special = has_special  # False: no conditional/expiring edge anywhere
        self.up = up or (lambda key: None)
        # None means "unknown": callers must then look the usersets up
        self.us_count = us_count or (lambda key: 1)
        self.up_us = up_us or (lambda key: None)
        self.plain = plain
        self.usersets = usersets
        self.special = special
        self.rev = rev
        self.rev_special = rev_special


class Overlay:
    """Contextual tuples laid over a base index for one request; the base is never mutated."""

    def __init__(self, base: TupleIndex, tuples: Iterable[Tuple]) -> None:
        self.base = base
        self.extra = TupleIndex()
        for t in tuples:
            self.extra.add(t)

    def view(self) -> View:
        b, x = self.base, self.extra
        return View(
            _merge_val(b.plain.get, x.plain.get),
            _merge_dict(b.usersets.get, x.usersets.get),
            _merge_dict(b.special.get, x.special.get),
            _merge_val(b.rev.get, x.rev.get),
            _merge_val(b.rev_special.get, x.rev_special.get),
            bool(b.special) or bool(x.special),
            _merge_map(b.up.get, x.up.get),
            lambda k: (b.us_count.get(k) or 0) + (x.us_count.get(k) or 0),
            _merge_map(b.up_us.get, x.up_us.get),  # type: ignore[arg-type]
        )


def _merge_val(
    base: Callable[[Any], Val | None], extra: Callable[[Any], Val | None]
) -> Callable[[Any], Val | None]:
    def get(key: Any) -> Val | None:
        e = extra(key)
        if e is None:
            return base(key)
        b = base(key)
        if b is None:
            return e
        out = set(values_of(b))
        out.update(values_of(e))
        return out

    return get


def _merge_dict(
    base: Callable[[Key], dict[str, Edge] | None], extra: Callable[[Key], dict[str, Edge] | None]
) -> Callable[[Key], dict[str, Edge] | None]:
    def get(key: Key) -> dict[str, Edge] | None:
        e = extra(key)
        if e is None:
            return base(key)
        b = base(key)
        if b is None:
            return e
        out = dict(b)
        out.update(e)
        return out

    return get


class _MergedMap:
    """Read-only ``get`` over two str-or-set valued maps (base and contextual)."""

    __slots__ = ("base", "extra")

    def __init__(self, base: Mapping[str, Val], extra: Mapping[str, Val]) -> None:
        self.base = base
        self.extra = extra

    def get(self, key: str, default: Val | None = None) -> Val | None:
        e = self.extra.get(key)
        b = self.base.get(key)
        if e is None:
            return default if b is None else b
        if b is None:
            return e
        out = set(values_of(b))
        out.update(values_of(e))
        return out


def _merge_map(
    base: Callable[[RKey], Mapping[str, Val] | None],
    extra: Callable[[RKey], Mapping[str, Val] | None],
) -> Callable[[RKey], Mapping[str, Val] | None]:
    def get(key: RKey) -> Mapping[str, Val] | None:
        e = extra(key)
        if e is None:
            return base(key)
        b = base(key)
        if b is None:
            return e
        return _MergedMap(b, e)  # type: ignore[return-value]

    return get

"""The in-memory tuple index of one store: the graph every decision reads.

The index is shared by every model version of a store and knows nothing about models: it
is a set of edges, arranged so that the commonest question — "is this user directly in
``object#relation``?" — is one dict lookup and one set membership test.

Layout (all strings interned with :func:`sys.intern`, so a user or object named by
thousands of tuples is stored once). Most maps are *per relation*: one dict for each
``"type#relation"`` (a :data:`RelKey`), keyed by plain strings. Compared with one big dict
keyed by ``(object, relation)`` tuples this builds no key tuple per lookup, keeps each
dict small enough to stay warm, and stores no 64-byte tuple per key.

``fwd["document#viewer"][object]``
    unconditional, non-expiring edges to plain users and typed wildcards
    (``user:anne``, ``user:*``). The value is a ``str`` while there is a single edge and
    becomes a ``set`` from the second one on: most keys hold exactly one user (a
    document's parent, its owner), and a one-element set costs ~200 bytes where a
    reference to an interned string costs 8.
``fus["folder#viewer"][object]``
    unconditional, non-expiring userset edges: ``{"group:eng#member": edge}``, each edge
    pre-split (:data:`Edge`) so that resolution never parses strings. A relation with no
    userset edge at all has no entry, and check skips the lookup.
``special[(object, relation)]``
    edges with a condition or an expiry, of any user kind: ``{user: edge}``. Kept apart so
    the unconditional fast path never pays for them.
``rev["document#viewer"][user]`` / ``rev_special[(user, object_type, relation)]``
    the reverse edges of plain users and wildcards (user → objects, str-or-set values),
    for list objects, which walks the graph from the user's side.
``up[(object_type, relation, userset_relation)][userset_object]`` and
``up_us["group#member"]["group:eng#member"]``
    the reverse userset edges: the objects, and the ``object#relation`` usersets, that a
    userset is directly in. Walking a user's nested groups upwards is one lookup per group
    on a string the index already holds — the cost of a hand-written ``member_of`` dict.

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

__all__ = ["Edge", "Overlay", "TupleIndex", "View", "values_of"]

_intern = sys.intern

# (user_object, user_relation, kind, condition, context, expires_at)
Edge = tuple[str, str, str, str | None, Mapping[str, Any] | None, float | None]
Key = tuple[str, str]
RKey = tuple[str, str, str]
RelKey = str  # "object_type#relation", interned
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
        d[key] = {cur, val}
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
        return (v,)
    return v


class TupleIndex:
    """All tuples of one store, indexed for check, list objects, list users and expand."""

    __slots__ = (
        "_count",
        "_relkeys",
        "_view",
        "fus",
        "fwd",
        "rev",
        "rev_special",
        "revision",
        "special",
        "up",
        "up_us",
    )

    def __init__(self) -> None:
        self.fwd: dict[RelKey, dict[str, Val]] = {}
        self.fus: dict[RelKey, dict[str, dict[str, Edge]]] = {}
        self.special: dict[Key, dict[str, Edge]] = {}
        self.rev: dict[RelKey, dict[str, Val]] = {}
        self.rev_special: dict[RKey, Val] = {}
        self.up: dict[RKey, dict[str, Val]] = {}
        self.up_us: dict[RelKey, dict[str, Val]] = {}
        self.revision: int = 0
        self._count = 0
        self._view: View | None = None
        self._relkeys: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        return self._count

    def _relkey(self, otype: str, rel: str) -> str:
        rk = self._relkeys.get((otype, rel))
        if rk is None:
            rk = self._relkeys[(otype, rel)] = _intern(f"{otype}#{rel}")
        return rk

    # -- writes ----------------------------------------------------------------------------

    def add(self, t: Tuple) -> None:
        """Insert or replace the edge with ``t``'s key (condition and expiry are attributes)."""
        otype = t.object.partition(":")[0]
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
        rk = self._relkey(otype, rel)
        self._remove_key(obj, rel, otype, rk, user)
        if cond or exp is not None:
            key = (obj, rel)
            uobj = _intern(f"{utype}:{uid}") if urel else user
            edge: Edge = (uobj, _intern(urel), _kind(utype, uid, urel), cond or None, ctx, exp)
            sp = dict(self.special.get(key) or {})  # copy-on-write
            sp[user] = edge
            self.special[key] = sp
            if self._view is not None:
                self._view.has_special = True
            _add(self.rev_special, (user, otype, rel), obj)
        elif urel:
            e: Edge = (
                _intern(f"{utype}:{uid}"),
                _intern(urel),
                _kind(utype, uid, urel),
                None,
                None,
                None,
            )
            per = self.fus.get(rk)
            if per is None:
                self.fus[rk] = per = {}
            us = dict(per.get(obj) or {})  # copy-on-write
            us[user] = e
            per[obj] = us
            _add(_sub(self.up, (otype, rel, e[1])), e[0], obj)
            _add(_sub(self.up_us, rk), user, _intern(f"{obj}#{rel}"))
        else:
            _add(_sub(self.fwd, rk), obj, user)
            _add(_sub(self.rev, rk), user, obj)
        self._count += 1

    def _remove_key(self, obj: str, rel: str, otype: str, rk: str, user: str) -> bool:
        fw = self.fwd.get(rk)
        if fw is not None and _discard(fw, obj, user):
            _discard(self.rev[rk], user, obj)
            self._count -= 1
            return True
        per = self.fus.get(rk)
        us = per.get(obj) if per is not None else None
        if us is not None and user in us:
            e = us[user]
            up = self.up.get((otype, rel, e[1]))
            if up is not None:
                _discard(up, e[0], obj)
            upu = self.up_us.get(rk)
            if upu is not None:
                _discard(upu, user, f"{obj}#{rel}")
            if len(us) == 1:
                del per[obj]  # type: ignore[union-attr]
            else:
                per[obj] = {u: x for u, x in us.items() if u != user}  # type: ignore[index]
            self._count -= 1
            return True
        key = (obj, rel)
        sp = self.special.get(key)
        if sp is not None and user in sp:
            if len(sp) == 1:
                del self.special[key]
            else:
                self.special[key] = {u: x for u, x in sp.items() if u != user}
            _discard(self.rev_special, (user, otype, rel), obj)
            self._count -= 1
            return True
        return False

    def remove(self, t: Tuple) -> None:
        """Remove the edge with ``t``'s key; a missing edge is not an error."""
        otype = t.object.partition(":")[0]
        self._remove_key(t.object, t.relation, otype, self._relkey(otype, t.relation), t.user)

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
        intern = _intern
        tables: dict[tuple[str, str], tuple[dict[str, Val], dict[str, Val]]] = {}
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
            pair = tables.get((ot, rel))
            if pair is None:
                rk = self._relkey(intern(ot), intern(rel))
                pair = tables[(ot, rel)] = (_sub(self.fwd, rk), _sub(self.rev, rk))
            fw, rv = pair
            obj = intern(f"{ot}:{oid}")
            user = intern(f"{ut}:{uid}")
            cur = fw.get(obj)
            if cur is None:
                fw[obj] = user
            elif cur.__class__ is str:
                if cur == user:
                    continue
                fw[obj] = {cur, user}
            elif user in cur:
                continue
            else:
                cur.add(user)  # type: ignore[union-attr]
            rcur = rv.get(user)
            if rcur is None:
                rv[user] = obj
            elif rcur.__class__ is str:
                rv[user] = {rcur, obj}
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
            otype = obj.partition(":")[0]
            self._remove_key(obj, rel, otype, self._relkey(otype, rel), user)
        return len(doomed)

    # -- reads -----------------------------------------------------------------------------

    def iter_tuples(self) -> Iterator[Tuple]:
        """Every edge as a Tuple (for tests, dumps and the reference evaluator)."""
        for rk, fw in self.fwd.items():
            rel = rk.partition("#")[2]
            for obj, v in fw.items():
                for u in values_of(v):
                    yield Tuple(obj, rel, u)
        for rk, per in self.fus.items():
            rel = rk.partition("#")[2]
            for obj, us in per.items():
                for u in us:
                    yield Tuple(obj, rel, u)
        for (obj, rel), sp in self.special.items():
            for u, e in sp.items():
                yield Tuple(obj, rel, u, e[3], e[4], e[5])

    def view(self) -> View:
        """The getters of this index (cached: the dicts are never replaced)."""
        v = self._view
        if v is None:
            v = self._view = View(
                self.fwd.get,
                self.fus.get,
                self.special.get,
                self.rev.get,
                self.rev_special.get,
                self.up.get,
                self.up_us.get,
                bool(self.special),
            )
        return v


def _sub(d: dict[Any, Any], key: Any) -> dict[str, Any]:
    sub = d.get(key)
    if sub is None:
        sub = d[key] = {}
    return sub


_NOTHING: Mapping[str, Any] = {}


class View:
    """The getters the engine reads the graph through (an index, or an overlay).

    ``fwd``, ``fus``, ``revr``, ``up_us`` take a ``"type#relation"`` key and return that
    relation's map (or None); ``plain``, ``usersets`` and ``rev`` are the same data
    addressed by ``(object, relation)`` / ``(user, type, relation)``, for callers off the
    hot path.
    """

    __slots__ = (
        "fus",
        "fwd",
        "has_special",
        "plain",
        "rev",
        "rev_special",
        "revr",
        "special",
        "up",
        "up_us",
        "usersets",
    )

    def __init__(
        self,
        fwd: Callable[[RelKey], Mapping[str, Val] | None],
        fus: Callable[[RelKey], Mapping[str, dict[str, Edge]] | None],
        special: Callable[[Key], dict[str, Edge] | None],
        revr: Callable[[RelKey], Mapping[str, Val] | None],
        rev_special: Callable[[RKey], Val | None],
        up: Callable[[RKey], Mapping[str, Val] | None],
        up_us: Callable[[RelKey], Mapping[str, Val] | None],
        has_special: bool = True,
    ) -> None:
        self.fwd = fwd
        self.fus = fus
        self.special = special
        self.revr = revr
        self.rev_special = rev_special
        self.up = up
        self.up_us = up_us
        self.has_special = has_special  # False: no conditional/expiring edge anywhere

        def plain(key: Key) -> Val | None:
            return (fwd(f"{key[0].partition(':')[0]}#{key[1]}") or _NOTHING).get(key[0])

        def usersets(key: Key) -> dict[str, Edge] | None:
            return (fus(f"{key[0].partition(':')[0]}#{key[1]}") or _NOTHING).get(key[0])

        def rev(key: RKey) -> Val | None:
            return (revr(f"{key[1]}#{key[2]}") or _NOTHING).get(key[0])

        self.plain = plain
        self.usersets = usersets
        self.rev = rev


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
            _merge_map(b.fwd.get, x.fwd.get),
            _merge_map(b.fus.get, x.fus.get, _MergedEdges),
            _merge_dict(b.special.get, x.special.get),
            _merge_map(b.rev.get, x.rev.get),
            _merge_val(b.rev_special.get, x.rev_special.get),
            _merge_map(b.up.get, x.up.get),
            _merge_map(b.up_us.get, x.up_us.get),
            bool(b.special) or bool(x.special),
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

    def __init__(self, base: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
        self.base = base
        self.extra = extra

    def get(self, key: str, default: Any = None) -> Any:
        e = self.extra.get(key)
        b = self.base.get(key)
        if e is None:
            return default if b is None else b
        if b is None:
            return e
        out = set(values_of(b))
        out.update(values_of(e))
        return out


class _MergedEdges(_MergedMap):
    """Read-only ``get`` over two ``{object: {user: edge}}`` maps."""

    __slots__ = ()

    def get(self, key: str, default: Any = None) -> Any:
        e = self.extra.get(key)
        b = self.base.get(key)
        if e is None:
            return default if b is None else b
        if b is None:
            return e
        out = dict(b)
        out.update(e)
        return out


def _merge_map(
    base: Callable[[Any], Mapping[str, Any] | None],
    extra: Callable[[Any], Mapping[str, Any] | None],
    merged: type[_MergedMap] = _MergedMap,
) -> Callable[[Any], Mapping[str, Any] | None]:
    def get(key: Any) -> Mapping[str, Any] | None:
        e = extra(key)
        if e is None:
            return base(key)
        b = base(key)
        if b is None:
            return e
        return merged(b, e)  # type: ignore[return-value]

    return get

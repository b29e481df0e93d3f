"""Effective access (issue 8 §1): everything an identity can reach, and everyone who can
reach a resource, each with the paths that grant it — including what an agent exercises
for someone else through a delegation.

**Identity side** (:func:`effective_access`). The *effective access* of a node ``X`` is every
``(object, relation)`` for which ``check(X, relation, object)`` is true, over every type and
relation of the store's latest model. It is computed with the engine's own list objects,
once per ``(type, relation)`` pair the node's kind can reach at all (the model's reverse
plan prunes the others once per model, :class:`_ModelPlan`), so nothing here re-implements
the graph's semantics: groups and nesting, computed relations, tuple-to-usersets, typed
wildcards, intersections and exclusions are the engine's. Expired tuples never count.

**Conditions.** Effective access is asked without a request context. A conditional tuple
whose condition is decided by the tuple's own context counts when it holds; one whose
condition needs request parameters (``in_hours`` needing ``hour``) cannot be decided, and
is treated as *not granting* — where a plain check without context would fail with
``condition_error``, the listing leaves that grant out instead of failing whole (a store
with one such tuple would otherwise have no listable effective access at all). The grant
is still a grant: over-privilege reports see it among the identity's tuples. See
:class:`_Decided`.

**Delegated entries** (``include_delegated``): for each active delegation (status active,
``not_before <= now < expires_at``, neither party suspended or deprovisioned) whose
delegate is the identity, the ``(object, relation)`` the delegator holds AND the identity
holds AND a grant of the delegation's scope covers (its ``actions`` name the relation, or
an action the store's action map turns into it; its ``resource`` is the object or
``type:*`` — the decision point's own :func:`keyplane.policy.decide._covers`) is listed
again with ``via="delegation"``, ``on_behalf_of`` the delegator and the delegation id, right
after the identity's own entry. This is exactly the one-link chain the decision point
(:mod:`keyplane.policy.decide`) would allow, except that what depends on the request — a
delegation's ``purposes``, its ``condition``, the ``tools`` a scope grant names, and
guardrails — is not evaluated here: a delegated entry says the delegation *can* be used
for it, not that every request would be allowed.

**Resource side** (:func:`who_can_access`): the engine's list users for every relation of the
object's type (or one), filtered to every type the model lets be a user (or one), so the
entries are concrete users and typed wildcards (``agent:*``: everybody of the type); then
the agents acting for a holder under a covering delegation (who hold it themselves).

**Order and pages.** Identity side by ``(object_type, relation, object)``, resource side by
``(relation, user)``; an own entry before its delegated ones (by delegator, then delegation
id). A continuation token is the position of the last entry returned (base64 JSON,
:mod:`keyplane.storage.paging`) bound to the query, so a page resumes exactly after it — no
duplicate, no gap — and a token from another query or tampered with is refused
(``invalid_continuation_token``). Paths (:mod:`keyplane.graph.explain`; for a delegated
entry, the delegator's) are computed for the returned page only.

Every page records one ``decision.effective_access`` event (direction, count, up to 1,000
result keys, the filters), as list objects records its own.

:func:`iter_effective` is the unauthorized inner loop of the over-privilege and posture
reports: ``(object, relation)`` pairs, sorted, no paths, no delegation.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from keyplane.errors import (
    ConditionError,
    InvalidContinuationToken,
    RelationNotFoundError,
    TypeNotFoundError,
    ValidationError,
)
from keyplane.governance.posture import AccessEntry
from keyplane.graph.check import parse_request_user
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.engine import Engine
from keyplane.graph.index import Edge, TupleIndex, View
from keyplane.graph.listing import _plan
from keyplane.graph.tuples import object_error
from keyplane.policy.decide import _covers
from keyplane.policy.denials import OK
from keyplane.policy.records import Delegation
from keyplane.policy.state import PolicyState
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.graphs import StoreGraph
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import Page
from keyplane.storage.paging import decode_token, encode_token

__all__ = ["AccessPage", "effective_access", "iter_effective", "who_can_access"]

_EVENT: Final = "decision.effective_access"
_GRAPH, _DELEGATION = 0, 1  # an entry's rank among those of one (object, relation, user)

Pair = tuple[str, str]  # (object type, relation)


@dataclass(frozen=True, slots=True)
class AccessPage(Page[AccessEntry]):
    """A page of access entries, and the id of the ledger event that recorded it."""

    decision_id: str = ""


# ------------------------------------------------------------------------------ the model plan


class _ModelPlan:
    """What effective access needs of one compiled model, computed once per model: the
    sorted ``(type, relation)`` pairs, for each user kind the pairs it can reach at all
    (from the list-objects reverse plan), and the types that can be users."""

    def __init__(self, model: CompiledModel) -> None:
        self.model = model
        self.pairs: tuple[Pair, ...] = tuple(
            sorted((t, r) for t, rels in model.types.items() for r in rels)
        )
        kinds: set[str] = set()
        for rels in model.types.values():
            for info in rels.values():
                if info.is_tupleset:
                    continue  # a parent link (document#parent@folder:f): not someone
                kinds.update(info.plain)
                kinds.update(info.conditional)
        #: types that can be a (concrete or wildcard) user of a relation other than a
        #: tuple-to-userset's parent link — who can hold something — sorted
        self.user_types: tuple[str, ...] = tuple(
            sorted({k.partition(":")[0] for k in kinds if "#" not in k})
        )
        self._reachable: dict[tuple[str, str, str], tuple[Pair, ...]] = {}

    def reachable(self, utype: str, ukind: str, user: str) -> tuple[Pair, ...]:
        """The pairs a user of this kind can hold — every other pair's list objects is
        empty whatever the tuples (the reverse plan has no path from the kind to it)."""
        userset = "#" in ukind
        key = (utype, ukind, ukind if not userset else user.partition("#")[2])
        got = self._reachable.get(key)
        if got is not None:
            return got
        plan = _plan(self.model)
        entries: set[Pair] = {(t, r) for t, r, _ in plan.direct.get(ukind, ())}
        if userset:
            entries.add((utype, key[2]))  # the userset reaches its own relation
        else:
            entries.update((t, r) for t, r, _ in plan.direct.get(f"{utype}:*", ()))
        out = tuple(p for p in self.pairs if entries and not entries.isdisjoint(plan.relevant(p)))
        self._reachable[key] = out
        return out


_PLANS: weakref.WeakKeyDictionary[CompiledModel, _ModelPlan] = weakref.WeakKeyDictionary()


def _model_plan(model: CompiledModel) -> _ModelPlan:
    got = _PLANS.get(model)
    if got is None:
        got = _PLANS[model] = _ModelPlan(model)
    return got


# ------------------------------------------------------------------------------ conditions


class _Decided:
    """A stand-in for a store's :class:`~keyplane.graph.index.TupleIndex` whose view leaves
    out the conditional edges that cannot be decided without a request context (a missing
    parameter, or a tuple context that does not convert): the engine then answers as if
    such a grant did not apply, instead of raising ``condition_error`` for the whole
    listing. Every other edge — conditions the tuple's own context decides included — is
    the index's own, so where the plain engine answers, this one answers the same."""

    def __init__(self, index: TupleIndex, model: CompiledModel) -> None:
        self.index = index
        self.model = model

    def view(self) -> View:
        base = self.index.view()
        if not base.has_special:
            return base
        special = base.special
        conds = self.model.conditions
        seen: dict[tuple[str, str], dict[str, Edge] | None] = {}

        def decided(key: tuple[str, str]) -> dict[str, Edge] | None:
            if key in seen:
                return seen[key]
            sp = special(key)
            if not sp:
                seen[key] = sp
                return sp
            drop = [
                u
                for u, e in sp.items()
                if e[3] and not _decidable(conds.get(e[3]), e, f"{key[0]}#{key[1]}@{u}")
            ]
            out = {u: e for u, e in sp.items() if u not in drop} if drop else sp
            seen[key] = out
            return out

        return View(
            base.fwd, base.fus, decided, base.revr, base.rev_special, base.up, base.up_us, True
        )


def _decidable(cond: Any, e: Edge, tuple_key: str) -> bool:
    if cond is None:
        return True  # an undefined condition: the engine itself counts it false
    try:
        cond.evaluate(e[4], None, tuple_key=tuple_key)
    except ConditionError:
        return False
    return True


#: a continued page reuses its query's listing for this long (seconds), if the graph's
#: revision did not move: paging through 70,000 entries must not list them 700 times
_SNAPSHOT_SECONDS: Final = 60.0
_SNAPSHOTS_KEPT: Final = 32
_snapshots: dict[tuple[Any, ...], tuple[weakref.ref[StoreGraph], float, list[str]]] = {}
_snapshots_lock = threading.Lock()


@dataclass(slots=True)
class _Reader:
    """The engine of one call, and its condition-lenient twin (built on first need).

    With ``now`` set (the paged operations), each listing is kept as a snapshot keyed by
    the graph, model and revision, and a *continued* page (``continued``) of the same
    query reuses it for :data:`_SNAPSHOT_SECONDS` — so the pages of one listing come from
    one computation (a grant expiring meanwhile may show until the snapshot ages out); a
    first page always lists afresh."""

    engine: Engine
    graph: StoreGraph
    now: float | None = None
    continued: bool = False
    _lenient: Engine | None = None

    def _snapshot(self, key: tuple[str, ...], compute: Callable[[], list[str]]) -> list[str]:
        if self.now is None:
            return compute()
        g = self.graph
        with g.lock:
            full = (id(g), self.engine.model.model_id, g.revision, *key)
            got = _snapshots.get(full)
            if (
                self.continued
                and got is not None
                and got[0]() is g
                and 0 <= self.now - got[1] <= _SNAPSHOT_SECONDS
            ):
                return got[2]
            value = compute()
        with _snapshots_lock:
            _snapshots.pop(full, None)
            while len(_snapshots) >= _SNAPSHOTS_KEPT:
                _snapshots.pop(next(iter(_snapshots)))
            _snapshots[full] = (weakref.ref(g), self.now, value)
        return value

    @property
    def lenient(self) -> Engine:
        if self._lenient is None:
            e = self.engine
            idx = cast(TupleIndex, _Decided(self.graph.index, e.model))
            self._lenient = Engine(e.model, idx, clock=e.clock, max_depth=e.max_depth)
        return self._lenient

    def objects(self, node: str, relation: str, object_type: str) -> list[str]:
        """list objects, materialised under the graph lock (the tailer may mutate the
        index sets a lazy stream walks), sorted."""

        def compute() -> list[str]:
            with self.graph.lock:
                try:
                    found = list(self.engine.list_objects(node, relation, object_type))
                except ConditionError:
                    found = list(self.lenient.list_objects(node, relation, object_type))
            found.sort()
            return found

        return self._snapshot(("objects", node, relation, object_type), compute)

    def users(self, object: str, relation: str, filters: Sequence[str]) -> list[str]:
        def compute() -> list[str]:
            with self.graph.lock:
                try:
                    return self.engine.list_users(object, relation, filters)
                except ConditionError:
                    return self.lenient.list_users(object, relation, filters)

        return self._snapshot(("users", object, relation, *filters), compute)

    def check(self, user: str, relation: str, object: str) -> bool:
        with self.graph.lock:
            try:
                return self.engine.check(user, relation, object)
            except ConditionError:
                return self.lenient.check(user, relation, object)

    def paths(self, user: str, relation: str, object: str) -> tuple[Any, ...]:
        with self.graph.lock:
            return tuple(self.lenient.explain(user, relation, object).paths)


# ------------------------------------------------------------------------------ delegations


class _Delegations:
    """The active delegations of one call's policy snapshot, with the relation → action
    names inverse of the store's action map (a scope may name either)."""

    def __init__(self, state: PolicyState, now: float) -> None:
        self.state = state
        self.active = sorted(
            (d for d in state.delegations() if self._live(d, now)),
            key=lambda d: (d.delegator, d.id),
        )
        self._actions: dict[str, list[str]] = {}
        for action, rel in state.policy.actions.items():
            self._actions.setdefault(rel, []).append(action)

    def _live(self, d: Delegation, now: float) -> bool:
        if d.status != "active" or not d.not_before <= now < d.expires_at:
            return False
        for node in (d.delegator, d.delegate):
            i = self.state.identity(node)
            if i is not None and i.status != "active":
                return False  # the decision point denies any chain through it
        return True

    def to(self, delegate: str) -> list[Delegation]:
        return [d for d in self.active if d.delegate == delegate]

    def covers(self, d: Delegation, relation: str, object: str) -> bool:
        """Whether a grant of ``d``'s scope covers ``relation`` on ``object`` — by the
        relation itself or by an action mapped to it (the decision point's own test)."""
        if _covers(d, relation, relation, object, None) == OK:
            return True
        return any(
            _covers(d, a, relation, object, None) == OK for a in self._actions.get(relation, ())
        )


# ------------------------------------------------------------------------------ validation


def _node(model: CompiledModel, node: object, field: str) -> tuple[str, str] | None:
    """``(type, kind)`` of a query node; None when it is well formed but of a type the
    model does not have (it can reach nothing). Malformed → ValidationError; a wildcard
    is refused (effective access is of someone)."""
    if not isinstance(node, str):
        raise ValidationError(f"{field} must be a string", details={"field": field})
    try:
        utype, ukind, _ = parse_request_user(model, node)
    except ValidationError as exc:
        if exc.details.get("reason") == "type_not_found":
            return None
        raise
    if ukind.endswith(":*"):
        raise ValidationError(
            f"{field} {node!r} is a wildcard; name one identity",
            details={"field": field, field: node},
        )
    return utype, ukind


def _pairs(model: CompiledModel, object_type: str | None, relation: str | None) -> list[Pair]:
    """The pairs a query covers; an unknown type or relation is the graph's own error."""
    if object_type is not None:
        if relation is not None:
            model.relation(object_type, relation)
            return [(object_type, relation)]
        if object_type not in model.types:
            raise TypeNotFoundError(
                f"type '{object_type}' not found", details={"type": object_type}
            )
        return [(object_type, r) for r in sorted(model.types[object_type])]
    if relation is not None:
        found = [p for p in _model_plan(model).pairs if p[1] == relation]
        if not found:
            raise RelationNotFoundError(
                f"relation '{relation}' not found in any type", details={"relation": relation}
            )
        return found
    return list(_model_plan(model).pairs)


def _position(token: str | None, query: Sequence[object]) -> tuple[str, ...] | None:
    if token is None:
        return None
    key = decode_token(token, query, 6)
    if not all(isinstance(v, str) for v in key):
        raise InvalidContinuationToken("invalid continuation token")
    return tuple(cast(list[str], key))


# ------------------------------------------------------------------------------ identity side


def iter_effective(
    svc: Services,
    store_id: str,
    node: str,
    *,
    object_type: str | None = None,
    relation: str | None = None,
) -> Iterator[tuple[str, str]]:
    """Every ``(object, relation)`` ``node`` holds, sorted by (object type, relation,
    object); no authorization, no paths, no delegations, nothing recorded — the inner
    loop of the over-privilege and posture reports. A node of a type the model does not
    have holds nothing."""
    engine, graph = svc.graphs.engine(store_id)
    model = engine.model
    pairs = _pairs(model, object_type, relation)
    kind = _node(model, node, "identity")
    if kind is None:
        return
    reach = set(_model_plan(model).reachable(kind[0], kind[1], node))
    reader = _Reader(engine, graph)
    for t, r in pairs:
        if (t, r) in reach:
            for obj in reader.objects(node, r, t):
                yield obj, r


@audited(_EVENT)
def effective_access(
    svc: Services,
    caller: Caller,
    store_id: str,
    identity: str,
    *,
    object_type: str | None = None,
    relation: str | None = None,
    include_paths: bool = True,
    include_delegated: bool = True,
    page_size: int = 100,
    continuation_token: str | None = None,
) -> AccessPage:
    """One page of what ``identity`` can reach (see the module docstring)."""
    authorize(svc, caller, Permission.QUERY, store_id)
    size = check_page_size(page_size, svc.settings.max_page_size)
    engine, graph = svc.graphs.engine(store_id)
    model = engine.model
    pairs = _pairs(model, object_type, relation)
    kind = _node(model, identity, "identity")
    query = ("effective_access", store_id, identity, object_type, relation, include_delegated)
    after = _position(continuation_token, query)
    now = svc.clock.now()
    reader = _Reader(engine, graph, now, continuation_token is not None)
    revision = graph.revision
    delegs = _Delegations(svc.graphs.policy(store_id), now) if include_delegated else None
    mine = delegs.to(identity) if delegs is not None else []
    page: list[tuple[tuple[str, ...], AccessEntry]] = []
    more = False
    if kind is not None:
        reach = set(_model_plan(model).reachable(kind[0], kind[1], identity))
        for t, r in pairs:
            if (t, r) not in reach or (after is not None and (t, r) < (after[0], after[1])):
                continue
            objs = reader.objects(identity, r, t)
            start = 0
            if after is not None and (t, r) == (after[0], after[1]):
                start = bisect.bisect_left(objs, after[2])  # resume at the last object
            for obj in objs[start:]:
                group = [((t, r, obj, str(_GRAPH), "", ""), AccessEntry(identity, r, obj))]
                for d in mine:
                    if (
                        delegs is not None
                        and delegs.covers(d, r, obj)
                        and reader.check(d.delegator, r, obj)
                    ):
                        entry = AccessEntry(
                            identity, r, obj, via="delegation", on_behalf_of=d.delegator,
                            delegation_id=d.id,
                        )  # fmt: skip
                        group.append(((t, r, obj, str(_DELEGATION), d.delegator, d.id), entry))
                for key, entry in group:
                    if after is not None and key <= after:
                        continue
                    if len(page) == size:
                        more = True
                        break
                    page.append((key, entry))
                if more:
                    break
            if more:
                break
    items = [_with_paths(reader, e) for _, e in page] if include_paths else [e for _, e in page]
    token = encode_token(query, list(page[-1][0])) if more else None
    did = audit.listing(
        svc, caller, _EVENT, store_id, subject=identity, action=relation or "*",
        resource=object_type or "*", found=[_result_key(e) for e in items],
        model_id=model.model_id or "", revision=revision,
        details={"direction": "identity", "filters": {
            "object_type": object_type, "relation": relation,
            "include_delegated": include_delegated, "include_paths": include_paths,
            "page_size": size, "continued": continuation_token is not None,
        }},
    )  # fmt: skip
    return AccessPage(items, token, did)


def _with_paths(reader: _Reader, e: AccessEntry) -> AccessEntry:
    who = e.on_behalf_of if e.via == "delegation" and e.on_behalf_of else e.user
    return AccessEntry(
        e.user, e.relation, e.object, e.via, reader.paths(who, e.relation, e.object),
        e.on_behalf_of, e.delegation_id,
    )  # fmt: skip


def _result_key(e: AccessEntry) -> str:
    """An entry in an event's ``results``: its tuple key, a delegated one suffixed with
    the delegator and the delegation (``document:1#viewer@agent:x for human:a (01J…)``)."""
    key = f"{e.object}#{e.relation}@{e.user}"
    if e.via == "delegation":
        key += f" for {e.on_behalf_of} ({e.delegation_id})"
    return key


# ------------------------------------------------------------------------------ resource side


@audited(_EVENT)
def who_can_access(
    svc: Services,
    caller: Caller,
    store_id: str,
    object: str,
    *,
    relation: str | None = None,
    user_type: str | None = None,
    include_paths: bool = True,
    include_delegated: bool = True,
    page_size: int = 100,
    continuation_token: str | None = None,
) -> AccessPage:
    """One page of who can reach ``object`` (see the module docstring)."""
    authorize(svc, caller, Permission.QUERY, store_id)
    size = check_page_size(page_size, svc.settings.max_page_size)
    engine, graph = svc.graphs.engine(store_id)
    model = engine.model
    why = object_error(object)
    if why is not None or object.endswith(":*"):
        raise ValidationError(
            f"invalid 'object' field {object!r}: {why or 'name one object, not a wildcard'}",
            details={"object": object},
        )
    otype = object.partition(":")[0]
    rels = [r for _, r in _pairs(model, otype, relation)]
    plan = _model_plan(model)
    if user_type is not None:
        if user_type not in model.types:
            raise TypeNotFoundError(f"type '{user_type}' not found", details={"type": user_type})
        filters: tuple[str, ...] = (user_type,)
    else:
        filters = plan.user_types
    query = ("who_can_access", store_id, object, relation, user_type, include_delegated)
    after = _position(continuation_token, query)
    now = svc.clock.now()
    reader = _Reader(engine, graph, now, continuation_token is not None)
    revision = graph.revision
    delegs = _Delegations(svc.graphs.policy(store_id), now) if include_delegated else None
    page: list[tuple[tuple[str, ...], AccessEntry]] = []
    more = False
    for r in rels:
        if not filters or (after is not None and r < after[0]):
            continue
        rows: list[tuple[tuple[str, ...], AccessEntry]] = [
            ((r, u, str(_GRAPH), "", "", ""), AccessEntry(u, r, object))
            for u in reader.users(object, r, filters)
        ]
        if delegs is not None:
            for d in delegs.active:
                if user_type is not None and d.delegate.partition(":")[0] != user_type:
                    continue
                if (
                    delegs.covers(d, r, object)
                    and reader.check(d.delegator, r, object)
                    and reader.check(d.delegate, r, object)
                ):
                    entry = AccessEntry(
                        d.delegate, r, object, via="delegation", on_behalf_of=d.delegator,
                        delegation_id=d.id,
                    )  # fmt: skip
                    rows.append(((r, d.delegate, str(_DELEGATION), d.delegator, d.id, ""), entry))
        rows.sort(key=lambda kv: kv[0])
        for key, entry in rows:
            if after is not None and key <= after:
                continue
            if len(page) == size:
                more = True
                break
            page.append((key, entry))
        if more:
            break
    items = [_with_paths(reader, e) for _, e in page] if include_paths else [e for _, e in page]
    token = encode_token(query, list(page[-1][0])) if more else None
    did = audit.listing(
        svc, caller, _EVENT, store_id, subject=None, action=relation or "*", resource=object,
        found=[_result_key(e) for e in items], model_id=model.model_id or "", revision=revision,
        details={"direction": "resource", "filters": {
            "relation": relation, "user_type": user_type,
            "include_delegated": include_delegated, "include_paths": include_paths,
            "page_size": size, "continued": continuation_token is not None,
        }},
    )  # fmt: skip
    return AccessPage(items, token, did)

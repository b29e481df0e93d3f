"""Access reviews (ISSUE 7 §5): campaigns that select standing access, reviewers who
certify or revoke it, revocations that are applied, and a report of every outcome.

* :func:`create_review` selects the items when the campaign is created: access-request
  grants that are active now (``filter.source="grants"``, the default) or every direct,
  unexpired tuple of the graph (``"tuples"``; a tuple that is an active grant is linked to
  its request), narrowed by ``object_type``, ``relation``, ``user_kind`` (the type of the
  user's node), ``user`` (exactly one graph user), ``tuples`` (named tuple keys, each of
  which must be selected: how a least-privilege recommendation is put to review — see
  :mod:`keyplane.service.privilege`) and ``unused_days``. Usage comes from the ledger: an item's
  ``last_used_at`` is the time of the last allowed ``decision.evaluate`` whose resource is
  the object and whose subject — or a member of whose actor chain — is the user;
  ``unused_days=N`` keeps only items with none in the last N days. Tuples on identity nodes
  (owners, managed by the identity plane) are never selected.
* Reviewers are assigned per item by the campaign's rule: ``beneficiary_owners`` (the
  owners of the user's identity), ``entitlement_owners`` (the owners of the grant's
  entitlement, or of an entitlement matching the tuple), a human node, or a group userset
  (``group:sec#member``). The item's own user is never one of its reviewers. An item
  without reviewers can only take the default.
* :func:`decide_review_item`: the reviewer is named (``reviewer=``), given by a Keyplane
  access token (``token=``: its newest actor, else its subject) or, with neither, is the
  identity the caller's API key is bound to; a key bound to an identity acts only as it. The reviewer must be a registered, active human, not the
  item's own user, and one of the item's reviewers (directly or through the graph for a
  group). A decision may change until it is applied or the campaign closes.
* Revocations are applied when the campaign closes (``apply="on_close"``) or when the
  revoke is decided (``"immediately"``): a grant's access request is revoked through
  :func:`keyplane.service.access_requests.revoke_access_request` (its own transaction and
  ``access_request.revoked`` event; the grant tuple goes with it), a plain tuple is deleted
  through :func:`keyplane.service.tuples.write_tuples` (``tuples.written``); then the item
  is marked applied with a ``review.item_applied`` event. A close that fails half-way
  leaves the campaign open and can be repeated: what was applied stays applied.
* :func:`close_review`: unanswered items follow ``default_decision``; every item gets its
  outcome (certified, revoked, defaulted_certify, defaulted_revoke); ``review.closed``.

Every change commits with its ledger event (``review.created``, ``review.item_decided``,
``review.item_applied``, ``review.closed``; resource ``review:<id>``) in one transaction.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, cast

from keyplane.errors import (
    AccessRequestNotFoundError,
    AccessRequestStateError,
    ApprovalNotAllowedError,
    KeyplaneError,
    ReviewNotFoundError,
    ReviewStateError,
    ValidationError,
)
from keyplane.governance.records import (
    REVIEW_APPLY,
    REVIEW_DECISIONS,
    REVIEW_SOURCES,
    REVIEW_STATES,
    ReviewCampaign,
    ReviewFilter,
    ReviewItem,
)
from keyplane.graph.tuples import Tuple, parse_tuple, user_error
from keyplane.ledger.events import EventFilter, LedgerEvent
from keyplane.policy.records import IDENTITY_KINDS
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.identities import parse_node
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import Page
from keyplane.storage.ids import UlidGenerator
from keyplane.storage.reviews_sql import ReviewChange, ReviewStore, ReviewWrite

__all__ = [
    "ReviewReport",
    "close_review",
    "create_review",
    "decide_review_item",
    "get_review",
    "last_used",
    "list_review_items",
    "list_reviews",
    "review_report",
]

#: the most items a campaign may select
MAX_ITEMS = 10_000
MAX_NAME = 200
MAX_COMMENT = 2048
MAX_UNUSED_DAYS = 3650
DAY = 86400.0
_DECISION = "decision.evaluate"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,253}$")
_RULES = ("beneficiary_owners", "entitlement_owners")
_READ = 500

_ids = UlidGenerator()


class ReviewReport(NamedTuple):
    """Every item of a campaign with its outcome (None while the campaign is open and the
    item not yet applied)."""

    campaign: ReviewCampaign
    items: list[ReviewItem]

    @property
    def counts(self) -> dict[str, int]:
        """How many items have each outcome (``pending``: none yet)."""
        out: dict[str, int] = {}
        for i in self.items:
            key = i.outcome or "pending"
            out[key] = out.get(key, 0) + 1
        return out


def _store(svc: Services) -> ReviewStore:
    # the SQL backends implement ReviewStore through ReviewsSQLMixin (storage/reviews_sql.py)
    return cast(ReviewStore, svc.storage)


def _invalid(message: str, **details: Any) -> ValidationError:
    return ValidationError(message, details=details)


def _not_found(review_id: str) -> ReviewNotFoundError:
    return ReviewNotFoundError(
        f"review {review_id!r} not found", details={"review_id": str(review_id)[:100]}
    )


# ------------------------------------------------------------------------------ inputs


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise _invalid(f"{what} must be a type or relation name", field=what)
    return value


def _filter(value: ReviewFilter | Mapping[str, Any] | None) -> ReviewFilter:
    if value is None:
        return ReviewFilter()
    if isinstance(value, ReviewFilter):
        value = value.to_json()
    if not isinstance(value, Mapping):
        raise _invalid("filter must be an object", field="filter")
    known = {"object_type", "relation", "user_kind", "source", "unused_days", "user", "tuples"}
    unknown = sorted(set(value) - known)
    if unknown:
        raise _invalid(f"unknown filter fields: {', '.join(map(str, unknown))}", field="filter")
    source = value.get("source") or "grants"
    if source not in REVIEW_SOURCES:
        raise _invalid(f"filter.source must be one of {', '.join(REVIEW_SOURCES)}", field="source")
    unused = value.get("unused_days")
    if unused is not None and (
        isinstance(unused, bool)
        or not isinstance(unused, int)
        or not 1 <= unused <= MAX_UNUSED_DAYS
    ):
        raise _invalid(
            f"filter.unused_days must be an integer in 1..{MAX_UNUSED_DAYS}", field="unused_days"
        )
    out: dict[str, Any] = {"source": source, "unused_days": unused}
    for key in ("object_type", "relation", "user_kind"):
        v = value.get(key)
        out[key] = None if v is None else _name(v, f"filter.{key}")
    user = value.get("user")
    if user is not None:
        why = user_error(user) if isinstance(user, str) else "not a string"
        if why is not None:
            raise _invalid(f"filter.user must be a graph user: {why}", field="user")
        out["user"] = user
    out["tuples"] = _tuple_keys(value.get("tuples"))
    return ReviewFilter(**out)


def _tuple_keys(value: Any) -> tuple[str, ...]:
    """``filter.tuples``: distinct tuple keys ``object#relation@user``, in the given order."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _invalid("filter.tuples must be a list of tuple keys", field="tuples")
    if len(value) > MAX_ITEMS:
        raise _too_many()
    keys: dict[str, None] = {}
    for v in value:
        try:
            t = parse_tuple(v) if isinstance(v, str) else None
        except KeyplaneError:
            t = None
        if t is None or t.condition is not None:
            raise _invalid(
                f"filter.tuples: {str(v)[:200]!r} is not a tuple key object#relation@user",
                field="tuples",
            )
        keys[f"{t.object}#{t.relation}@{t.user}"] = None
    return tuple(keys)


def _userset(spec: str) -> tuple[str, str, str] | None:
    """``type:id#relation`` → (type, id, relation), else None."""
    head, sep, rel = spec.partition("#")
    t, sep2, i = head.partition(":")
    if sep and sep2 and t and i and rel and _NAME_RE.match(t) and _NAME_RE.match(rel):
        return t, i, rel
    return None


def _reviewer_rule(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 300:
        raise _invalid("reviewer must be a rule, a human node or a group", field="reviewer")
    if value in _RULES:
        return value
    if "#" in value:
        if _userset(value) is None:
            raise _invalid(f"invalid reviewer group {value!r}", field="reviewer")
        return value
    kind, _ = parse_node(value, what="reviewer")
    if kind != "human":
        raise _invalid("a reviewer is a human (agents never review)", field="reviewer")
    return value


def _time(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"{what} must be a time in seconds since the epoch", field=what)
    return float(value)


def _item_id(value: Any) -> int:
    if isinstance(value, str) and value.isdigit() and len(value) <= 9:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid("item_id must be a positive integer", field="item_id")
    return value


def _review_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise _invalid("review_id must be a review id", field="review_id")
    return value


# ------------------------------------------------------------------------------ selection


@dataclass(frozen=True, slots=True)
class _Candidate:
    user: str
    relation: str
    object: str
    request_id: str | None
    entitlement_id: str | None


def _kind(user: str) -> str:
    return user.partition(":")[0]


def _type(obj: str) -> str:
    return obj.partition(":")[0]


def _active_grants(svc: Services, store_id: str, f: ReviewFilter, now: float) -> Iterator[Any]:
    """The access requests whose grant is active at ``now`` matching the filter (in SQL)."""
    token: str | None = None
    while True:
        page = svc.storage.list_access_requests(
            store_id, state="active", relation=f.relation, object_type=f.object_type,
            beneficiary_kind=f.user_kind, now=now, page_size=_READ, continuation_token=token,
        )  # fmt: skip
        yield from page.items
        token = page.continuation_token
        if token is None:
            return


def _direct_tuples(svc: Services, store_id: str, f: ReviewFilter, now: float) -> Iterator[Tuple]:
    token: str | None = None
    obj = None if f.object_type is None else f"{f.object_type}:"
    user = None if f.user_kind is None else f"{f.user_kind}:"
    if f.user is not None and (f.user_kind is None or _kind(f.user) == f.user_kind):
        user = f.user  # exactly this user (read_tuples matches type:id[#rel] exactly)
    while True:
        page = svc.storage.read_tuples(
            store_id, object=obj, relation=f.relation, user=user, page_size=_READ,
            continuation_token=token,
        )  # fmt: skip
        for t in page.items:
            if t.expires_at is not None and t.expires_at <= now:
                continue  # stopped granting already
            if _type(t.object) in IDENTITY_KINDS:
                continue  # owners of identities: the identity plane manages them
            yield t
        token = page.continuation_token
        if token is None:
            return


def _too_many() -> ValidationError:
    return _invalid(
        f"a review selects at most {MAX_ITEMS} items: narrow the filter", field="filter"
    )


def _matches(f: ReviewFilter, user: str, relation: str, obj: str) -> bool:
    """The checks of ``f`` SQL did not make (``user``, ``tuples``)."""
    if f.user is not None and user != f.user:
        return False
    return not f.tuples or f"{obj}#{relation}@{user}" in f.tuples


def _candidates(svc: Services, store_id: str, f: ReviewFilter, now: float) -> list[_Candidate]:
    out = _select(svc, store_id, f, now)
    if f.tuples:
        # named one by one: each must be selected (a current tuple, or an active grant);
        # the items follow the order the tuples were named in
        by_key = {f"{c.object}#{c.relation}@{c.user}": c for c in out}
        missing = [k for k in f.tuples if k not in by_key]
        if missing:
            what = "an active grant" if f.source == "grants" else "a current tuple"
            raise _invalid(
                f"filter.tuples names {len(missing)} tuple(s) that are not {what} matching "
                f"the filter: {', '.join(missing[:5])}",
                field="tuples", missing=missing[:100],
            )  # fmt: skip
        out = [by_key[k] for k in f.tuples]
    return out


def _select(svc: Services, store_id: str, f: ReviewFilter, now: float) -> list[_Candidate]:
    out: list[_Candidate] = []
    if f.source == "grants":
        for r in _active_grants(svc, store_id, f, now):
            if not _matches(f, r.beneficiary, r.relation, r.object):
                continue
            out.append(_Candidate(r.beneficiary, r.relation, r.object, r.id, r.entitlement_id))
            if len(out) > MAX_ITEMS:
                raise _too_many()
        return out
    grants = {
        (r.object, r.relation, r.beneficiary): r
        for r in _active_grants(svc, store_id, ReviewFilter(), now)
    }
    for t in _direct_tuples(svc, store_id, f, now):
        if not _matches(f, t.user, t.relation, t.object):
            continue
        r = grants.get(t.key)
        if r is not None and t.expires_at == r.grant_expires_at:
            out.append(_Candidate(t.user, t.relation, t.object, r.id, r.entitlement_id))
        else:
            out.append(_Candidate(t.user, t.relation, t.object, None, None))
        if len(out) > MAX_ITEMS:
            raise _too_many()
    return out


def _searchable(svc: Services, name: str, value: str) -> str:
    redactor = svc.redactor
    if name in redactor.fields:
        return str(redactor.hash_value(value))
    return value


def last_used(
    svc: Services, store_id: str, user: str, object: str, *, since: float | None = None
) -> float | None:
    """When ``user`` last used ``object``: the time of the newest allowed
    ``decision.evaluate`` on that resource whose subject is the user or whose actor chain
    contains it (at or after ``since``), or None. Two indexed reads of the ledger."""
    base = EventFilter(
        since=since, types=(_DECISION,), outcome="allow",
        resource=_searchable(svc, "resource", object),
    )  # fmt: skip
    found: list[float] = []
    for f in (
        replace(base, subject=_searchable(svc, "subject", user)),
        replace(base, actor=_searchable(svc, "caller", user)),
    ):
        events = svc.storage.read_events(store_id, limit=1, filters=f, descending=True)
        if events:
            found.append(events[0].time)
    return max(found) if found else None


class _Reviewers:
    """Resolves the reviewer rule for each item (entitlements read once each)."""

    def __init__(self, svc: Services, store_id: str, rule: str) -> None:
        self.svc, self.store_id, self.rule = svc, store_id, rule
        self._owners: dict[str | tuple[str, str], tuple[str, ...]] = {}

    def _entitlement_owners(self, c: _Candidate) -> tuple[str, ...]:
        st = self.svc.storage
        if c.entitlement_id is not None:
            key: str | tuple[str, str] = c.entitlement_id
            if key not in self._owners:
                e = st.get_entitlement(self.store_id, c.entitlement_id)
                self._owners[key] = () if e is None else tuple(e.owners)
            return self._owners[key]
        key = (c.object, c.relation)
        if key not in self._owners:
            owners: list[str] = []
            for obj in (c.object, f"{_type(c.object)}:*"):
                page = st.list_entitlements(
                    self.store_id, status="active", object=obj, relation=c.relation, page_size=50
                )
                for e in page.items:
                    owners.extend(o for o in e.owners if o not in owners)
            self._owners[key] = tuple(owners)
        return self._owners[key]

    def of(self, c: _Candidate) -> tuple[str, ...]:
        if self.rule == "beneficiary_owners":
            ident = None
            if _kind(c.user) in IDENTITY_KINDS and "#" not in c.user:
                ident = self.svc.graphs.identity(self.store_id, c.user)
            found = () if ident is None else tuple(ident.owners)
        elif self.rule == "entitlement_owners":
            found = self._entitlement_owners(c)
        else:
            found = (self.rule,)
        # the item's own user never reviews it
        return tuple(r for r in found if r != c.user)


# ------------------------------------------------------------------------------ operations


def _campaign_details(c: ReviewCampaign) -> dict[str, Any]:
    return {
        "review_id": c.id,
        "name": c.name,
        "filter": c.filter.to_json(),
        "reviewer": c.reviewer,
        "default_decision": c.default_decision,
        "apply": c.apply,
        "due_at": c.due_at,
    }


def _item_details(i: ReviewItem) -> dict[str, Any]:
    return {
        "item_id": i.id,
        "user": i.user,
        "relation": i.relation,
        "object": i.object,
        "request_id": i.request_id,
    }


@audited("review.created")
def create_review(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    name: str,
    filter: ReviewFilter | Mapping[str, Any] | None = None,
    reviewer: str = "beneficiary_owners",
    default_decision: str = "certify",
    apply: str = "on_close",
    due_at: float | None = None,
) -> ReviewCampaign:
    """Open a campaign: select its items now (see the module docstring), assign their
    reviewers and record ``review.created`` with them, in one transaction."""
    authorize(svc, caller, Permission.MANAGE_REVIEWS, store_id)
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise _invalid(
            f"name must be a non-empty string of at most {MAX_NAME} characters", field="name"
        )
    f = _filter(filter)
    rule = _reviewer_rule(reviewer)
    if default_decision not in REVIEW_DECISIONS:
        raise _invalid(
            f"default_decision must be one of {', '.join(REVIEW_DECISIONS)}",
            field="default_decision",
        )
    if apply not in REVIEW_APPLY:
        raise _invalid(f"apply must be one of {', '.join(REVIEW_APPLY)}", field="apply")
    now = svc.clock.now()
    due = _time(due_at, "due_at")
    if due is not None and due <= now:
        raise _invalid("due_at must be in the future", field="due_at")
    svc.storage.current_revision(store_id)  # a missing store is store_not_found, first
    # usage counts every decision answered so far (in async ledger mode some may still be
    # on their way to the database)
    svc.ledger.flush()
    svc.graphs.catch_up(store_id)  # owners as stored now
    since = None if f.unused_days is None else now - f.unused_days * DAY
    reviewers = _Reviewers(svc, store_id, rule)
    review_id = _ids.new()
    items: list[ReviewItem] = []
    for c in _candidates(svc, store_id, f, now):
        used = last_used(svc, store_id, c.user, c.object)
        if since is not None and used is not None and used >= since:
            continue  # exercised within the window
        item = ReviewItem(
            store_id, review_id, len(items) + 1, c.user, c.relation, c.object, c.request_id,
            reviewers.of(c), used,
        )  # fmt: skip
        items.append(item)
    campaign = ReviewCampaign(
        store_id, review_id, name, f, rule, default_decision, apply, "open", caller.principal,
        now, due,
    )  # fmt: skip

    def events(made: ReviewChange) -> list[tuple[LedgerEvent, str]]:
        details = _campaign_details(made.campaign)
        details["items"] = [
            {**_item_details(i), "reviewers": list(i.reviewers), "last_used_at": i.last_used_at}
            for i in made.items
        ]
        return audit.change_events(
            svc, caller, "review.created", store_id, resource=made.campaign.resource,
            action="review", revision=made.revision, details=details,
        )  # fmt: skip

    return _store(svc).create_review(store_id, campaign, items, ledger_events=events).campaign


@audited(None)
def get_review(svc: Services, caller: Caller, store_id: str, review_id: str) -> ReviewCampaign:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    found = _store(svc).get_review(store_id, _review_id(review_id))
    if found is None:
        raise _not_found(review_id)
    return found


@audited(None)
def list_reviews(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    state: str | None = None,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[ReviewCampaign]:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    if state is not None and state not in REVIEW_STATES:
        raise _invalid(f"state must be one of {', '.join(REVIEW_STATES)}", field="state")
    size = check_page_size(page_size, svc.settings.max_page_size)
    return _store(svc).list_reviews(
        store_id, state=state, page_size=size, continuation_token=continuation_token
    )


@audited(None)
def list_review_items(
    svc: Services,
    caller: Caller,
    store_id: str,
    review_id: str,
    *,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[ReviewItem]:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    st = _store(svc)
    if st.get_review(store_id, _review_id(review_id)) is None:
        raise _not_found(review_id)
    size = check_page_size(page_size, svc.settings.max_page_size)
    return st.list_review_items(
        store_id, review_id, page_size=size, continuation_token=continuation_token
    )


def _all_items(svc: Services, store_id: str, review_id: str) -> list[ReviewItem]:
    out: list[ReviewItem] = []
    token: str | None = None
    while True:
        page = _store(svc).list_review_items(
            store_id, review_id, page_size=_READ, continuation_token=token
        )
        out.extend(page.items)
        token = page.continuation_token
        if token is None:
            return out


def _acting_identity(
    svc: Services, caller: Caller, store_id: str, reviewer: str | None, token: str | None
) -> str:
    """The identity deciding: ``reviewer``, or the token's newest actor (else subject), or
    — neither given — the identity the caller's API key is bound to."""
    bound = caller.owner if caller.owner and _kind(caller.owner) in IDENTITY_KINDS else None
    if reviewer is not None and token is not None:
        raise _invalid("name the reviewer (reviewer=) or present its token (token=), not both")
    if token is not None:
        from keyplane.service.tokens import verify_access_token  # heavy module: on use
        from keyplane.tokens.errors import TokenInvalid

        if not isinstance(token, str):
            raise _invalid("token must be an access token", field="token")
        try:
            vt = verify_access_token(svc, store_id, token)
        except TokenInvalid as exc:
            raise ApprovalNotAllowedError(
                f"the token does not identify a reviewer: {exc.reason}",
                details={"reason": "token_invalid", "token_error": exc.reason},
            ) from None
        iss = vt.claims.get("iss")
        if not isinstance(iss, str) or iss not in vt.audience:  # minted for another audience
            raise ApprovalNotAllowedError(
                "the token was not obtained for Keyplane",
                details={"reason": "token_invalid", "token_error": "wrong_audience"},
            )
        node = vt.actors[-1] if vt.actors else vt.subject
    elif reviewer is not None:
        parse_node(reviewer, what="reviewer")
        node = reviewer
    elif bound is not None:
        node = bound
    else:
        raise _invalid(
            "name the reviewer (reviewer=), present its access token (token=), or call with "
            "an API key bound to the reviewer"
        )
    if bound is not None and bound != node:
        raise ApprovalNotAllowedError(
            f"this API key is bound to {bound} and acts only as it",
            details={"reviewer": node, "key_owner": bound, "reason": "key_bound"},
        )
    return node


def _check_reviewer(svc: Services, store_id: str, node: str, item: ReviewItem) -> None:
    def refuse(message: str, why: str) -> ApprovalNotAllowedError:
        return ApprovalNotAllowedError(
            message, details={"reviewer": node, "item_id": item.id, "reason": why}
        )

    kind, id_ = parse_node(node, what="reviewer")
    if kind != "human":
        raise refuse(
            f"{node} may not review: only humans review access (never an agent)", "not_human"
        )
    if node == item.user:
        raise refuse(f"{node} may not review its own access", "own_access")
    ident = svc.storage.get_identity(store_id, kind, id_)
    if ident is None or ident.status != "active":
        raise refuse(f"{node} is not a registered, active identity", "not_active")
    if node in item.reviewers:
        return
    engine, _ = svc.graphs.engine(store_id)
    for spec in item.reviewers:
        us = _userset(spec)
        if us is None:
            continue
        try:
            member = engine.check(node, us[2], f"{us[0]}:{us[1]}")
        except KeyplaneError:  # a group type or relation the model no longer has
            member = False
        if member:
            return
    raise refuse(f"{node} is not among the reviewers of item {item.id}", "not_reviewer")


def _open(c: ReviewCampaign) -> None:
    if c.state != "open":
        raise ReviewStateError(
            f"review {c.id!r} is {c.state}", details={"review_id": c.id, "state": c.state}
        )


@audited("review.item_decided")
def decide_review_item(
    svc: Services,
    caller: Caller,
    store_id: str,
    review_id: str,
    item_id: int | str,
    decision: str,
    *,
    reviewer: str | None = None,
    token: str | None = None,
    comment: str | None = None,
) -> ReviewItem:
    """Certify or revoke one item (see the module docstring for who may). With
    ``apply="immediately"`` a revoke is applied before this returns; the item returned
    then carries its outcome ``revoked`` and ``applied_at``."""
    authorize(svc, caller, Permission.MANAGE_REVIEWS, store_id)
    rid, iid = _review_id(review_id), _item_id(item_id)
    if decision not in REVIEW_DECISIONS:
        raise _invalid(f"decision must be one of {', '.join(REVIEW_DECISIONS)}", field="decision")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise _invalid(
            f"comment must be a string of at most {MAX_COMMENT} characters", field="comment"
        )
    node = _acting_identity(svc, caller, store_id, reviewer, token)
    st = _store(svc)
    campaign = st.get_review(store_id, rid)
    if campaign is None:
        raise _not_found(rid)
    item = st.get_review_item(store_id, rid, iid)
    if item is None:
        raise ReviewNotFoundError(
            f"review {rid!r} has no item {iid}", details={"review_id": rid, "item_id": iid}
        )
    _check_reviewer(svc, store_id, node, item)
    now = svc.clock.now()

    def plan(c: ReviewCampaign, items: Sequence[ReviewItem]) -> ReviewWrite:
        _open(c)
        if not items:
            raise ReviewNotFoundError(f"review {rid!r} has no item {iid}")
        it = items[0]
        if it.outcome is not None:
            raise ReviewStateError(
                f"item {iid} was already applied ({it.outcome})",
                details={"review_id": rid, "item_id": iid, "outcome": it.outcome},
            )
        return ReviewWrite(
            items=[replace(it, decision=decision, decided_by=node, decided_at=now, comment=comment)]
        )

    def events(made: ReviewChange) -> list[tuple[LedgerEvent, str]]:
        it = made.items[0]
        details = {
            "review_id": rid, **_item_details(it), "decision": decision, "reviewer": node,
            "comment": comment,
        }  # fmt: skip
        return audit.change_events(
            svc, caller, "review.item_decided", store_id, resource=made.campaign.resource,
            action="review", revision=made.revision, details=details,
        )  # fmt: skip

    made = st.change_review(store_id, rid, plan, item_ids=[iid], ledger_events=events)
    decided = made.items[0]
    if made.campaign.apply == "immediately" and decision == "revoke":
        return _apply(svc, caller, store_id, made.campaign, decided, "revoked")
    return decided


def _revoke(
    svc: Services, caller: Caller, store_id: str, c: ReviewCampaign, item: ReviewItem
) -> str:
    """Take the access away; returns how: ``access_request_revoked``, ``tuple_deleted``
    or ``already_ended`` (the grant had expired or been revoked meanwhile)."""
    reason = f"review {c.id} item {item.id}"
    if item.request_id is not None:
        from keyplane.service import access_requests

        # the review's decision is the authority: the revocation runs as the review's tool
        # (no acting identity), not as the identity a reviewer's key is bound to — who may
        # be a reviewer without being one of the request's approvers
        tool = replace(caller, owner=None)
        try:
            access_requests.revoke_access_request(
                svc, tool, store_id, item.request_id, reason=reason
            )
        except (AccessRequestStateError, AccessRequestNotFoundError):
            return "already_ended"
        return "access_request_revoked"
    from keyplane.service import tuples

    result = tuples.write_tuples(
        svc, caller, store_id, deletes=[Tuple(item.object, item.relation, item.user)],
        idempotent=True,
    )  # fmt: skip
    return "tuple_deleted" if result.deleted else "already_ended"


def _apply(
    svc: Services,
    caller: Caller,
    store_id: str,
    campaign: ReviewCampaign,
    item: ReviewItem,
    outcome: str,
) -> ReviewItem:
    """Revoke the item's access, then mark it applied (``review.item_applied``)."""
    how = _revoke(svc, caller, store_id, campaign, item)
    now = svc.clock.now()

    def plan(c: ReviewCampaign, items: Sequence[ReviewItem]) -> ReviewWrite:
        if not items or items[0].outcome is not None:
            return ReviewWrite()  # applied meanwhile: nothing more to record
        return ReviewWrite(items=[replace(items[0], outcome=outcome, applied_at=now)])

    def events(made: ReviewChange) -> list[tuple[LedgerEvent, str]]:
        it = made.items[0]
        details = {"review_id": c_id, **_item_details(it), "outcome": outcome, "applied": how}
        return audit.change_events(
            svc, caller, "review.item_applied", store_id, resource=made.campaign.resource,
            action="revoke", revision=made.revision, details=details,
        )  # fmt: skip

    c_id = campaign.id
    made = _store(svc).change_review(
        store_id, campaign.id, plan, item_ids=[item.id], ledger_events=events
    )
    return made.items[0]


def _outcome(item: ReviewItem, default: str) -> str:
    if item.decision == "certify":
        return "certified"
    if item.decision == "revoke":
        return "revoked"
    return "defaulted_certify" if default == "certify" else "defaulted_revoke"


def _revokes(outcome: str) -> bool:
    return outcome in ("revoked", "defaulted_revoke")


class _Unapplied(Exception):
    """A revoke decided while the campaign was closing: apply it, then close again."""


@audited("review.closed")
def close_review(svc: Services, caller: Caller, store_id: str, review_id: str) -> ReviewCampaign:
    """Close the campaign: every revoke (decided, or the default for unanswered items) is
    applied, then every item gets its outcome and the campaign ``closed`` (``review.closed``
    with the count of each outcome), in one transaction."""
    authorize(svc, caller, Permission.MANAGE_REVIEWS, store_id)
    rid = _review_id(review_id)
    for _ in range(5):
        closed = _close_once(svc, caller, store_id, rid)
        if closed is not None:
            return closed
    raise ReviewStateError(
        f"review {rid!r} kept changing while closing: try again", details={"review_id": rid}
    )


def _close_once(svc: Services, caller: Caller, store_id: str, rid: str) -> ReviewCampaign | None:
    """Apply the revocations due, then close in one transaction; None when a revoke was
    decided meanwhile (it must be applied first: try again)."""
    st = _store(svc)
    campaign = st.get_review(store_id, rid)
    if campaign is None:
        raise _not_found(rid)
    _open(campaign)
    for item in _all_items(svc, store_id, rid):
        outcome = _outcome(item, campaign.default_decision)
        if item.outcome is None and _revokes(outcome):
            _apply(svc, caller, store_id, campaign, item, outcome)
    now = svc.clock.now()
    counts: dict[str, int] = {}

    def plan(c: ReviewCampaign, items: Sequence[ReviewItem]) -> ReviewWrite:
        _open(c)
        counts.clear()
        changed: list[ReviewItem] = []
        for it in items:
            outcome = it.outcome
            if outcome is None:
                outcome = _outcome(it, c.default_decision)
                if _revokes(outcome):
                    raise _Unapplied
                changed.append(replace(it, outcome=outcome))
            counts[outcome] = counts.get(outcome, 0) + 1
        return ReviewWrite(replace(c, state="closed", closed_at=now), changed)

    def events(made: ReviewChange) -> list[tuple[LedgerEvent, str]]:
        details = {"review_id": rid, "outcomes": dict(counts)}
        return audit.change_events(
            svc, caller, "review.closed", store_id, resource=made.campaign.resource,
            action="review", revision=made.revision, details=details,
        )  # fmt: skip

    try:
        return st.change_review(store_id, rid, plan, ledger_events=events).campaign
    except _Unapplied:
        return None


@audited(None)
def review_report(svc: Services, caller: Caller, store_id: str, review_id: str) -> ReviewReport:
    """The campaign and every item with its decision, reviewer and outcome."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    rid = _review_id(review_id)
    campaign = _store(svc).get_review(store_id, rid)
    if campaign is None:
        raise _not_found(rid)
    return ReviewReport(campaign, _all_items(svc, store_id, rid))

"""Access requests (issue 7 §2-§4): an identity asks for an entitlement, for itself or
for an identity it owns; the entitlement's approval policy (CEL,
:mod:`keyplane.governance.approval`) approves it at once, denies it, or routes it to
approvers (N of M); an approved request writes a time-bound grant — the tuple
``<object>#<relation>@<beneficiary>`` with ``expires_at`` — which stops granting at its
expiry with no job running, and can be revoked early.

**Who acts.** Callers are API keys. ``requester=`` / ``approver=`` / ``actor=`` name the
identity node that acts, or ``token=`` (a Keyplane access token of the store,
:func:`keyplane.service.tokens.verify_access_token`) stands for it: the newest actor of
its chain if any, else its subject. When the caller's API key ``owner`` is an identity
node (``human:alice``, ``agent:bot``), the key acts only as that identity: naming
another is refused (``permission_denied``; ``approval_not_allowed`` for an approver);
such a key may also name nobody (it is then the identity).

**Requests** (``can_request_access``). The requester asks for itself or for an identity
it owns (``<beneficiary>#owner@<requester>`` holds in the graph, directly or through a
group); both are registered and active; a non-human requester or beneficiary only for an
entitlement with ``agents_may_request``; the entitlement is active, the object falls under
it (one object, or any object of its type — then ``object`` is required), the duration is
at most its ``max_duration_seconds`` (default: the smaller of 3600 and that maximum), and
the grant is a tuple the model allows. An identical grant without expiry already there is
``not_requestable`` (``reason`` ``already_granted``). A request routed to approvers of whom
fewer than ``required`` distinct humans other than the requester and the beneficiary could
ever approve (groups expanded through the graph) is ``not_requestable`` (``reason``
``no_eligible_approver``) rather than left pending to expire. Every refusal is
``not_requestable`` with ``details.reason``.

**Approvals** (``can_approve_requests``). An approver is a human identity, neither the
requester nor the beneficiary, among the request's ``route_approvers`` (resolved at
filing: ``beneficiary_owners`` → the beneficiary's owners, ``entitlement_owners`` → the
entitlement's owners, a group through graph membership); else ``approval_not_allowed``.
``required`` distinct approvals approve it (the grant is written in the same transaction,
so the request goes ``approved`` → ``active`` at once); one deny denies it.

**States** — pending → approved | denied | cancelled | expired (still pending at
``pending_until``, 7 days); approved → active → expired (at ``grant_expires_at``) |
revoked. Time-based states are computed on read (every read returns
``state_at(now)``); :func:`sweep_access_requests` persists them and records their
``access_request.expired`` events. Every transition is one ledger event (resource
``access_request:<id>``) committed with the change; :func:`get_access_request_history`
returns the request and all of them in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final, NamedTuple

from keyplane.errors import (
    AccessRequestNotFoundError,
    AccessRequestStateError,
    ApprovalNotAllowedError,
    EntitlementNotFoundError,
    KeyplaneError,
    NotRequestableError,
    PermissionDeniedError,
    ValidationError,
)
from keyplane.governance.approval import (
    Outcome,
    approval_env,
    evaluate_approval,
    node_value,
)
from keyplane.governance.records import (
    ACTIVE,
    APPROVED,
    CANCELLED,
    DEFAULT_PENDING_SECONDS,
    DENIED,
    EXPIRED,
    PENDING,
    REQUEST_STATES,
    REVOKED,
    AccessRequest,
    Approval,
    Entitlement,
)
from keyplane.graph.tuples import Tuple, object_error
from keyplane.ledger.events import EventFilter, LedgerEvent
from keyplane.policy.records import IDENTITY_KINDS, Identity
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.identities import parse_node
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import Page, PolicyTxReader, PolicyWrite
from keyplane.storage.ids import UlidGenerator
from keyplane.tokens.errors import TokenInvalid

__all__ = [
    "AccessRequestHistory",
    "approve_access_request",
    "cancel_access_request",
    "create_access_request",
    "deny_access_request",
    "get_access_request",
    "get_access_request_history",
    "list_access_requests",
    "request_details",
    "revoke_access_request",
    "sweep_access_requests",
]

DEFAULT_DURATION: Final = 3600
MAX_TEXT: Final = 2048
MAX_HISTORY: Final = 1000
_OWNER: Final = "owner"

_ids = UlidGenerator()


class AccessRequestHistory(NamedTuple):
    """A request (its state as of now) and every ledger event about it, oldest first."""

    request: AccessRequest
    events: list[LedgerEvent]


# ------------------------------------------------------------------------------ helpers


def _refuse(message: str, reason: str, **details: Any) -> NotRequestableError:
    return NotRequestableError(message, details={"reason": reason, **details})


def _not_found(request_id: Any) -> AccessRequestNotFoundError:
    return AccessRequestNotFoundError(
        f"access request {request_id!r} not found"[:300],
        details={"request_id": str(request_id)[:100]},
    )


def _state_error(req: AccessRequest, state: str, wanted: str) -> AccessRequestStateError:
    return AccessRequestStateError(
        f"access request {req.id} is {state}; {wanted}",
        details={"request_id": req.id, "state": state},
    )


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValidationError(
            f"{field} must be a string of at most {MAX_TEXT} characters", details={"field": field}
        )
    return value


def _is_identity_node(value: str | None) -> bool:
    if not value:
        return False
    kind, sep, rest = value.partition(":")
    return bool(sep) and kind in IDENTITY_KINDS and bool(rest)


def _acting(
    svc: Services,
    caller: Caller,
    store_id: str,
    named: str | None,
    token: str | None,
    role: str,
    refused: type[PermissionDeniedError],
) -> str | None:
    """The identity node acting as ``role``: ``named``, or the token's (its newest actor,
    else its subject), or the caller key's owner when that is an identity. A key bound to
    an identity acts only as it (``refused`` otherwise). None when nothing names one."""
    if named is not None:
        parse_node(named, what=role)
    from_token: str | None = None
    if token is not None:
        from keyplane.service.tokens import verify_access_token

        if not isinstance(token, str) or not token:
            raise ValidationError("token must be a non-empty string", details={"field": "token"})
        try:
            vt = verify_access_token(svc, store_id, token)
        except TokenInvalid as exc:
            raise refused(
                f"the token does not verify ({exc.reason})",
                details={"reason": "token_invalid", "token_reason": exc.reason},
            ) from None
        iss = vt.claims.get("iss")
        if not isinstance(iss, str) or iss not in vt.audience:
            raise refused(
                "the token was not obtained for Keyplane",
                details={"reason": "token_invalid", "token_reason": "wrong_audience"},
            )
        from_token = vt.actors[-1] if vt.actors else vt.subject
        if named is not None and named != from_token:
            raise ValidationError(
                f"{role} {named!r} does not agree with the token's identity ({from_token!r})",
                details={"field": role, "reason": "token_mismatch"},
            )
    bound = caller.owner if _is_identity_node(caller.owner) else None
    who = named or from_token or bound
    if who is not None and bound is not None and who != bound:
        raise refused(
            f"this API key is bound to {bound} and acts only as it, not as {who}",
            details={"reason": "key_bound", "bound_to": bound, role: who},
        )
    return who


def _check(svc: Services, store_id: str, user: str, relation: str, obj: str) -> bool:
    """A graph check on the store's latest model; False when it cannot be asked (an
    unknown type or relation)."""
    engine, graph = svc.graphs.engine(store_id)
    try:
        with graph.lock:
            return bool(engine.check(user, relation, obj))
    except KeyplaneError:
        return False


def _owns(svc: Services, store_id: str, owner: str, node: str) -> bool:
    """Whether ``owner`` owns the identity ``node`` (``node#owner@owner``, groups too)."""
    if node.partition(":")[0] == "human":
        return False
    return _check(svc, store_id, owner, _OWNER, node)


def _in_spec(svc: Services, store_id: str, node: str, spec: str) -> bool:
    """Whether identity ``node`` is the approver spec (a node, or a group's members)."""
    if spec == node:
        return True
    if spec.startswith("group:") and spec.endswith("#member"):
        return _check(svc, store_id, node, "member", spec[: -len("#member")])
    return False


def _active_identity(
    r: PolicyTxReader | None, svc: Services, store_id: str, node: str, role: str
) -> Identity:
    kind, id_ = parse_node(node, what=role)
    ident = (
        r.identity(kind, id_) if r is not None else svc.storage.get_identity(store_id, kind, id_)
    )
    if ident is None:
        raise _refuse(f"{role} {node} is not a registered identity", "unregistered", **{role: node})
    if ident.status != "active":
        raise _refuse(
            f"{role} {node} is {ident.status}", "inactive", status=ident.status, **{role: node}
        )
    return ident


def _grant(req: AccessRequest, expires_at: float) -> Tuple:
    return Tuple(req.object, req.relation, req.beneficiary, expires_at=expires_at)


def _stored_tuple(svc: Services, store_id: str, obj: str, relation: str, user: str) -> Tuple | None:
    page = svc.storage.read_tuples(store_id, object=obj, relation=relation, user=user, page_size=1)
    for t in page.items:
        if t.key == (obj, relation, user):
            return t
    return None


def _grant_writes(
    r: PolicyTxReader, req: AccessRequest, expires_at: float
) -> tuple[list[Tuple], list[Tuple]]:
    """(writes, deletes) granting ``req`` until ``expires_at``, read in the transaction:
    nothing when a grant lasting as long (or without expiry) is there; a shorter previous
    grant is replaced (deleted and written again in the same write)."""
    cur = r.tuple(req.object, req.relation, req.beneficiary)
    new = _grant(req, expires_at)
    if cur is None:
        return [new], []
    if cur.expires_at is None or cur.expires_at >= expires_at or cur.condition:
        return [], []
    return [new], [cur]


def request_details(req: AccessRequest, **extra: Any) -> dict[str, Any]:
    """A request as its ledger events carry it."""
    out: dict[str, Any] = {
        "access_request": req.id,
        "entitlement_id": req.entitlement_id,
        "object": req.object,
        "relation": req.relation,
        "beneficiary": req.beneficiary,
        "requester": req.requester,
        "duration_seconds": req.duration_seconds,
        "purpose": req.purpose,
        "justification": req.justification,
        "state": req.state,
        "route_approvers": list(req.route_approvers),
        "required": req.required,
        "rule_id": req.rule_id,
        "approvals": [a.to_json() for a in req.approvals],
        "pending_until": req.pending_until,
        "grant_starts_at": req.grant_starts_at,
        "grant_expires_at": req.grant_expires_at,
    }
    out.update(extra)
    return out


def _events(
    svc: Services,
    caller: Caller,
    store_id: str,
    revision: int,
    items: Sequence[tuple[str, AccessRequest, dict[str, Any]]],
) -> list[tuple[LedgerEvent, str]]:
    out: list[tuple[LedgerEvent, str]] = []
    for type_, req, extra in items:
        out.extend(
            audit.change_events(
                svc, caller, type_, store_id, resource=req.resource,
                action=type_.rpartition(".")[2], revision=revision,
                details=request_details(req, **extra),
            )
        )  # fmt: skip
    return out


def _activation(
    req: AccessRequest, now: float, writes: list[Tuple], deletes: list[Tuple]
) -> tuple[AccessRequest, AccessRequest, list[tuple[str, AccessRequest, dict[str, Any]]]]:
    """The approved request, the active one, and the two events."""
    approved = replace(req, state=APPROVED, decided_at=now)
    active = replace(
        approved,
        state=ACTIVE,
        grant_starts_at=now,
        grant_expires_at=now + req.duration_seconds,
    )
    grant = _grant(active, now + req.duration_seconds)
    evs = [
        ("access_request.approved", approved, {}),
        (
            "access_request.activated",
            active,
            {
                "tuple": str(grant),
                "expires_at": grant.expires_at,
                "written": [str(t) for t in writes],
                "replaced": [str(t) for t in deletes],
            },
        ),
    ]
    return approved, active, evs


def _now_view(req: AccessRequest, now: float) -> AccessRequest:
    state = req.state_at(now)
    return req if state == req.state else replace(req, state=state)


def _read(r: PolicyTxReader, request_id: str) -> AccessRequest:
    req = r.access_request(str(request_id))
    if req is None:
        raise _not_found(request_id)
    return req


def _facts(
    svc: Services,
    store_id: str,
    obj: str,
    relation: str,
    requester: str,
    beneficiary: str,
    b_ident: Identity,
) -> dict[str, bool]:
    owner_holds = any(_check(svc, store_id, o, relation, obj) for o in b_ident.owners)
    return {
        "owner_holds": owner_holds,
        "requester_holds": _check(svc, store_id, requester, relation, obj),
        "beneficiary_holds": _check(svc, store_id, beneficiary, relation, obj),
        "requester_is_owner": requester != beneficiary
        and _owns(svc, store_id, requester, beneficiary),
        "requester_is_agent": requester.partition(":")[0] != "human",
    }


def _resolve(outcome: Outcome, ent: Entitlement, b_ident: Identity) -> tuple[str, ...]:
    out: list[str] = []
    for spec in outcome.approvers:
        if spec == "beneficiary_owners":
            got: Sequence[str] = b_ident.owners
        elif spec == "entitlement_owners":
            got = ent.owners
        else:
            got = (spec,)
        for g in got:
            if g not in out:
                out.append(g)
    return tuple(out) or ent.owners


def _group_humans(svc: Services, store_id: str, group: str) -> tuple[list[str], bool]:
    """The human members of ``group`` per the graph (nested groups too), and whether every
    human is one (a ``human:*`` member). No one when the graph cannot be asked."""
    engine, graph = svc.graphs.engine(store_id)
    try:
        with graph.lock:
            users = engine.list_users(group, "member", ["human"])
    except KeyplaneError:
        return [], False
    return [u for u in users if u.startswith("human:") and u != "human:*"], "human:*" in users


def _eligible(
    svc: Services, store_id: str, approvers: Sequence[str], required: int, exclude: set[str]
) -> int:
    """How many distinct humans could approve a request routed to ``approvers``: the human
    nodes named and the human members of the groups named (expanded through the graph),
    neither the requester nor the beneficiary (``exclude``). Registration and status are not
    asked here (an approver is checked when it votes). A group with a ``human:*`` member
    counts as ``required`` (anyone may be one)."""
    found: set[str] = set()
    for spec in approvers:
        if spec.startswith("group:") and spec.endswith("#member"):
            members, everyone = _group_humans(svc, store_id, spec[: -len("#member")])
            if everyone:
                return max(required, len(found))
        elif spec.partition(":")[0] == "human":
            members = [spec]
        else:
            members = []  # an agent, a workload, a service account: never approves
        found.update(m for m in members if m not in exclude)
    return len(found)


# ------------------------------------------------------------------------------ operations


@audited("access_request.created")
def create_access_request(
    svc: Services,
    caller: Caller,
    store_id: str,
    entitlement_id: str,
    *,
    object: str | None = None,
    beneficiary: str | None = None,
    requester: str | None = None,
    token: str | None = None,
    duration_seconds: int | None = None,
    purpose: str | None = None,
    justification: str | None = None,
) -> AccessRequest:
    """File a request for ``entitlement_id`` (see the module docstring for every rule).
    Returns it as decided by the approval policy: ``active`` (auto-approved: the grant is
    written), ``denied``, or ``pending`` (routed to ``route_approvers``)."""
    authorize(svc, caller, Permission.REQUEST_ACCESS, store_id)
    who = _acting(svc, caller, store_id, requester, token, "requester", PermissionDeniedError)
    if who is None:
        raise ValidationError(
            "requester is required (or a token that names it, or an API key bound to an identity)",
            details={"field": "requester"},
        )
    ben = who if beneficiary is None else beneficiary
    parse_node(ben, what="beneficiary")
    why = _text(purpose, "purpose")
    just = _text(justification, "justification")
    svc.graphs.catch_up(store_id)
    ent = svc.storage.get_entitlement(store_id, str(entitlement_id))
    if ent is None:
        raise EntitlementNotFoundError(
            f"entitlement {entitlement_id!r} not found"[:300],
            details={"entitlement_id": str(entitlement_id)[:100]},
        )
    if ent.status != "active":
        raise _refuse(f"entitlement {ent.id} is {ent.status}", "entitlement_disabled")
    obj = _object(ent, object)
    dur = _request_duration(ent, duration_seconds)
    r_ident = _active_identity(None, svc, store_id, who, "requester")
    b_ident = r_ident if ben == who else _active_identity(None, svc, store_id, ben, "beneficiary")
    if ben != who and not _owns(svc, store_id, who, ben):
        raise _refuse(
            f"{who} may request only for itself or for an identity it owns; it does not own {ben}",
            "not_owner",
            requester=who,
            beneficiary=ben,
        )
    if not ent.agents_may_request:
        for node, ident in (("requester", r_ident), ("beneficiary", b_ident)):
            if ident.kind != "human":
                raise _refuse(
                    f"entitlement {ent.id} may not be requested by or for an agent "
                    f"({node} {ident.node} is a {ident.kind})",
                    "agents_not_allowed",
                    **{node: ident.node},
                )
    grant = Tuple(obj, ent.relation, ben, expires_at=svc.clock.now() + dur)
    try:
        svc.graphs.model(store_id).validate_tuple(grant)
    except KeyplaneError as exc:
        raise _refuse(
            f"the grant {grant} is not a tuple the model allows: {exc.message}",
            "model_disallows",
        ) from None
    existing = _stored_tuple(svc, store_id, obj, ent.relation, ben)
    if existing is not None and existing.expires_at is None:
        raise _refuse(
            f"{ben} already holds {ent.relation} on {obj} without expiry", "already_granted"
        )
    now = svc.clock.now()
    facts = _facts(svc, store_id, obj, ent.relation, who, ben, b_ident)
    env = approval_env(
        entitlement=ent, object=obj, relation=ent.relation, duration_seconds=dur,
        purpose=why, justification=just, requester=node_value(who, r_ident),
        beneficiary=node_value(ben, b_ident), facts=facts, now=now,
    )  # fmt: skip
    outcome = evaluate_approval(ent.approval, env)
    approvers = _resolve(outcome, ent, b_ident) if outcome.outcome == "route" else ()
    if outcome.outcome == "route":
        eligible = _eligible(svc, store_id, approvers, outcome.required, {who, ben})
        if eligible < outcome.required:
            raise _refuse(
                f"the request would be routed to {', '.join(approvers)} for "
                f"{outcome.required} approval(s), but only {eligible} human(s) other than "
                "the requester and the beneficiary could approve it",
                "no_eligible_approver",
                approvers=list(approvers),
                required=outcome.required,
                eligible=eligible,
            )
    base = AccessRequest(
        store_id, _ids.new(), ent.id, obj, ent.relation, ben, who, caller.principal, dur, why,
        just, PENDING, now, now + DEFAULT_PENDING_SECONDS, approvers,
        outcome.required if outcome.outcome == "route" else 1, outcome.rule_id,
    )  # fmt: skip
    made: list[AccessRequest] = []
    evs: list[tuple[str, AccessRequest, dict[str, Any]]] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        made.clear()
        evs.clear()
        cur = r.entitlement(ent.id)
        if cur is None or cur.status != "active":
            raise _refuse(f"entitlement {ent.id} is no longer active", "entitlement_disabled")
        _active_identity(r, svc, store_id, who, "requester")
        _active_identity(r, svc, store_id, ben, "beneficiary")
        extra: dict[str, Any] = {"facts": facts}
        if outcome.error is not None:
            extra["rule_error"] = outcome.error
        evs.append(("access_request.created", base, extra))
        held = r.tuple(obj, ent.relation, ben)
        if held is not None and held.expires_at is None:
            raise _refuse(
                f"{ben} already holds {ent.relation} on {obj} without expiry", "already_granted"
            )
        if outcome.outcome == "approve":
            writes, deletes = _grant_writes(r, base, now + dur)
            _, active, more = _activation(base, now, writes, deletes)
            evs.extend(more)
            made.append(active)
            return PolicyWrite(
                new_access_requests=[active], tuple_writes=writes, tuple_deletes=deletes
            )
        if outcome.outcome == "deny":
            denied = replace(base, state=DENIED, decided_at=now)
            evs.append(("access_request.denied", denied, {"by": "policy"}))
            made.append(denied)
            return PolicyWrite(new_access_requests=[denied])
        made.append(base)
        return PolicyWrite(new_access_requests=[base])

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return _events(svc, caller, store_id, revision, evs)

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    svc.graphs.catch_up(store_id)
    return replace(made[0], revision=result.revision)


def _object(ent: Entitlement, obj: Any) -> str:
    if obj is None:
        if ent.wildcard:
            raise _refuse(
                f"entitlement {ent.id} covers every object of type '{ent.object_type}': "
                "name the object",
                "object_required",
            )
        return ent.object
    if not isinstance(obj, str) or object_error(obj) is not None:
        raise ValidationError(f"invalid object {obj!r}"[:300], details={"field": "object"})
    if not ent.covers(obj):
        raise _refuse(
            f"{obj} is not covered by entitlement {ent.id} ({ent.object})",
            "object_mismatch",
            object=obj,
        )
    return obj


def _request_duration(ent: Entitlement, value: Any) -> int:
    if value is None:
        return min(DEFAULT_DURATION, ent.max_duration_seconds)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            "duration_seconds must be a positive integer", details={"field": "duration_seconds"}
        )
    if value > ent.max_duration_seconds:
        raise _refuse(
            f"duration {value} s exceeds the entitlement's maximum of {ent.max_duration_seconds} s",
            "duration_exceeded",
            max_duration_seconds=ent.max_duration_seconds,
            duration_seconds=value,
        )
    return value


@audited(None)
def get_access_request(
    svc: Services, caller: Caller, store_id: str, request_id: str
) -> AccessRequest:
    """The request, its state as of now."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    found = svc.storage.get_access_request(store_id, str(request_id))
    if found is None:
        raise _not_found(request_id)
    return _now_view(found, svc.clock.now())


@audited(None)
def list_access_requests(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    state: str | None = None,
    beneficiary: str | None = None,
    requester: str | None = None,
    entitlement_id: str | None = None,
    approver: str | None = None,
    object: str | None = None,
    relation: str | None = None,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[AccessRequest]:
    """Requests by id (filing order), each as of now; ``state`` is the state now
    (``pending`` excludes those past ``pending_until``), ``approver`` an exact entry of
    ``route_approvers`` (``human:bob``, ``group:sec#member``)."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    if state is not None and state not in REQUEST_STATES:
        raise ValidationError(
            f"unknown state {state!r}: one of {', '.join(REQUEST_STATES)}",
            details={"state": str(state)[:100]},
        )
    if beneficiary is not None:
        parse_node(beneficiary, what="beneficiary")
    if requester is not None:
        parse_node(requester, what="requester")
    size = check_page_size(page_size, svc.settings.max_page_size)
    now = svc.clock.now()
    page = svc.storage.list_access_requests(
        store_id, state=state, beneficiary=beneficiary, requester=requester,
        entitlement_id=entitlement_id, approver=approver, object=object, relation=relation,
        now=now, page_size=size,
        continuation_token=continuation_token,
    )  # fmt: skip
    return replace(page, items=[_now_view(x, now) for x in page.items])


@audited("access_request.cancelled")
def cancel_access_request(
    svc: Services,
    caller: Caller,
    store_id: str,
    request_id: str,
    *,
    requester: str | None = None,
    token: str | None = None,
    reason: str | None = None,
) -> AccessRequest:
    """Withdraw a pending request: by its requester, its beneficiary or an owner of the
    beneficiary (or a caller acting as no identity, an admin's tool)."""
    authorize(svc, caller, Permission.REQUEST_ACCESS, store_id)
    who = _acting(svc, caller, store_id, requester, token, "requester", PermissionDeniedError)
    why = _text(reason, "reason")
    now = svc.clock.now()
    made: list[AccessRequest] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        made.clear()
        req = _read(r, request_id)
        if (
            who is not None
            and who not in (req.requester, req.beneficiary)
            and not _owns(svc, store_id, who, req.beneficiary)
        ):
            raise PermissionDeniedError(
                f"{who} neither filed access request {req.id} nor benefits from it, nor owns "
                f"{req.beneficiary}",
                details={"reason": "not_requester", "request_id": req.id},
            )
        state = req.state_at(now)
        if state != PENDING:
            raise _state_error(req, state, "only a pending request can be cancelled")
        new = replace(
            req, state=CANCELLED, decided_at=now, ended_at=now,
            ended_by=who or caller.principal, end_reason=why or None,
        )  # fmt: skip
        made.append(new)
        return PolicyWrite(access_requests=[new])

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return _events(svc, caller, store_id, revision,
                       [("access_request.cancelled", made[0], {"reason": why})])  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    return replace(made[0], revision=result.revision)


def _approver_check(svc: Services, store_id: str, req: AccessRequest, approver: str) -> None:
    """Raise unless ``approver`` may decide ``req`` (see the module docstring)."""
    kind = approver.partition(":")[0]
    if kind != "human":
        raise ApprovalNotAllowedError(
            f"{approver} is a {kind}: only a human identity approves access requests",
            details={"reason": "not_human", "approver": approver},
        )
    if approver in (req.requester, req.beneficiary):
        raise ApprovalNotAllowedError(
            f"{approver} filed or benefits from access request {req.id}: nobody approves "
            "their own request",
            details={"reason": "self_approval", "approver": approver},
        )
    ident = svc.storage.get_identity(store_id, "human", approver[6:])
    if ident is None or ident.status != "active":
        raise ApprovalNotAllowedError(
            f"{approver} is not a registered, active identity",
            details={"reason": "inactive", "approver": approver},
        )
    if not any(_in_spec(svc, store_id, approver, s) for s in req.route_approvers):
        raise ApprovalNotAllowedError(
            f"{approver} is not among the approvers of access request {req.id} "
            f"({', '.join(req.route_approvers) or 'none'})",
            details={"reason": "not_an_approver", "approver": approver,
                     "route_approvers": list(req.route_approvers)},
        )  # fmt: skip


def _vote(
    svc: Services,
    caller: Caller,
    store_id: str,
    request_id: str,
    decision: str,
    approver: str | None,
    token: str | None,
    comment: str | None,
) -> AccessRequest:
    who = _acting(svc, caller, store_id, approver, token, "approver", ApprovalNotAllowedError)
    if who is None:
        raise ValidationError(
            "approver is required (or a token that names it, or an API key bound to it)",
            details={"field": "approver"},
        )
    note = _text(comment, "comment")
    svc.graphs.catch_up(store_id)
    pre = svc.storage.get_access_request(store_id, str(request_id))
    if pre is None:
        raise _not_found(request_id)
    _approver_check(svc, store_id, pre, who)
    now = svc.clock.now()
    made: list[AccessRequest] = []
    evs: list[tuple[str, AccessRequest, dict[str, Any]]] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        made.clear()
        evs.clear()
        req = _read(r, request_id)
        state = req.state_at(now)
        if state != PENDING:
            raise _state_error(req, state, f"only a pending request can be {decision}d")
        if any(a.approver == who for a in req.approvals):
            raise AccessRequestStateError(
                f"{who} has already decided access request {req.id}",
                details={"request_id": req.id, "reason": "already_voted"},
            )
        vote = Approval(who, decision, note, now, caller.principal)
        voted = replace(req, approvals=(*req.approvals, vote))
        evs.append(("access_request.approval", voted, {"approver": who, "decision": decision,
                                                       "comment": note}))  # fmt: skip
        if decision == "deny":
            denied = replace(voted, state=DENIED, decided_at=now)
            evs.append(("access_request.denied", denied, {"by": who}))
            made.append(denied)
            return PolicyWrite(access_requests=[denied])
        if len({a.approver for a in voted.approvals_by("approve")}) < voted.required:
            made.append(voted)
            return PolicyWrite(access_requests=[voted])
        writes, deletes = _grant_writes(r, voted, now + voted.duration_seconds)
        _, active, more = _activation(voted, now, writes, deletes)
        evs.extend(more)
        made.append(active)
        return PolicyWrite(access_requests=[active], tuple_writes=writes, tuple_deletes=deletes)

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return _events(svc, caller, store_id, revision, evs)

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    svc.graphs.catch_up(store_id)
    return replace(made[0], revision=result.revision)


@audited("access_request.approval")
def approve_access_request(
    svc: Services,
    caller: Caller,
    store_id: str,
    request_id: str,
    *,
    approver: str | None = None,
    token: str | None = None,
    comment: str | None = None,
) -> AccessRequest:
    """Approve a pending request as ``approver`` (a human among its route approvers, not
    its requester or beneficiary). The ``required``-th distinct approval writes the grant
    (the request is returned ``active``); before that it stays ``pending``."""
    authorize(svc, caller, Permission.APPROVE_REQUESTS, store_id)
    return _vote(svc, caller, store_id, request_id, "approve", approver, token, comment)


@audited("access_request.approval")
def deny_access_request(
    svc: Services,
    caller: Caller,
    store_id: str,
    request_id: str,
    *,
    approver: str | None = None,
    token: str | None = None,
    comment: str | None = None,
) -> AccessRequest:
    """Deny a pending request as ``approver`` (same rules as approving): one deny denies."""
    authorize(svc, caller, Permission.APPROVE_REQUESTS, store_id)
    return _vote(svc, caller, store_id, request_id, "deny", approver, token, comment)


@audited("access_request.revoked")
def revoke_access_request(
    svc: Services,
    caller: Caller,
    store_id: str,
    request_id: str,
    *,
    actor: str | None = None,
    token: str | None = None,
    reason: str | None = None,
) -> AccessRequest:
    """End an active grant early: its tuple is deleted (unless a later grant replaced it)
    and the request is ``revoked``. An acting identity must be the requester, the
    beneficiary or one of its owners, an owner of the entitlement or one of the request's
    approvers; a caller acting as no identity (an admin's or a review's tool) may revoke
    any."""
    authorize(svc, caller, Permission.APPROVE_REQUESTS, store_id)
    who = _acting(svc, caller, store_id, actor, token, "actor", PermissionDeniedError)
    why = _text(reason, "reason")
    svc.graphs.catch_up(store_id)
    pre = svc.storage.get_access_request(store_id, str(request_id))
    if pre is None:
        raise _not_found(request_id)
    if who is not None and who not in (pre.requester, pre.beneficiary):
        ent = svc.storage.get_entitlement(store_id, pre.entitlement_id)
        specs = (*pre.route_approvers, *(ent.owners if ent is not None else ()))
        if not _owns(svc, store_id, who, pre.beneficiary) and not any(
            _in_spec(svc, store_id, who, s) for s in specs
        ):
            raise PermissionDeniedError(
                f"{who} may not revoke access request {pre.id}",
                details={"reason": "not_allowed", "request_id": pre.id},
            )
    now = svc.clock.now()
    made: list[AccessRequest] = []
    made_deletes: list[Tuple] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        made.clear()
        req = _read(r, request_id)
        state = req.state_at(now)
        if state != ACTIVE:
            raise _state_error(req, state, "only an active grant can be revoked")
        cur = r.tuple(req.object, req.relation, req.beneficiary)
        deletes = (
            [cur]
            if cur is not None and cur.expires_at is not None
            and cur.expires_at == req.grant_expires_at
            else []
        )  # fmt: skip
        new = replace(
            req, state=REVOKED, ended_at=now, ended_by=who or caller.principal,
            end_reason=why or None,
        )  # fmt: skip
        made.append(new)
        made_deletes.clear()
        made_deletes.extend(deletes)
        return PolicyWrite(access_requests=[new], tuple_deletes=deletes)

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return _events(svc, caller, store_id, revision, [(
            "access_request.revoked", made[0],
            {"reason": why, "deleted": [str(t) for t in made_deletes]},
        )])  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    svc.graphs.catch_up(store_id)
    return replace(made[0], revision=result.revision)


@audited(None)
def get_access_request_history(
    svc: Services, caller: Caller, store_id: str, request_id: str
) -> AccessRequestHistory:
    """The request (as of now) and every ledger event about it (resource
    ``access_request:<id>``), oldest first: who asked and why, the policy's outcome, each
    approver's vote, the grant, how it ended."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    found = svc.storage.get_access_request(store_id, str(request_id))
    if found is None:
        raise _not_found(request_id)
    events = svc.storage.read_events(
        store_id, limit=MAX_HISTORY, filters=EventFilter(resource=found.resource)
    )
    return AccessRequestHistory(_now_view(found, svc.clock.now()), list(events))


def sweep_access_requests(svc: Services, store_id: str) -> list[AccessRequest]:
    """Persist the time-based transitions due now (pending past ``pending_until``, active
    past ``grant_expires_at`` → ``expired``) and record their ``access_request.expired``
    events (caller ``system``), in one transaction. Reads never depend on it: they compute
    the state. Returns the requests it expired."""
    now = svc.clock.now()
    due = svc.storage.access_requests_due(store_id, now)
    if not due:
        return []
    system = Caller.system_caller()
    made: list[AccessRequest] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        made.clear()
        for d in due:
            req = r.access_request(d.id)
            if req is None or req.state_at(now) != EXPIRED or req.state == EXPIRED:
                continue
            was = req.state
            ended = req.pending_until if was == PENDING else req.grant_expires_at
            made.append(
                replace(req, state=EXPIRED, ended_at=ended, ended_by="system",
                        end_reason="pending_timeout" if was == PENDING else "grant_expired")
            )  # fmt: skip
        return PolicyWrite(access_requests=list(made))

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return _events(svc, system, store_id, revision,
                       [("access_request.expired", x, {"end_reason": x.end_reason})
                        for x in made])  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    if not result.changed:
        return []
    return [replace(x, revision=result.revision) for x in made]

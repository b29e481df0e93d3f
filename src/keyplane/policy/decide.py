"""The decision point: may this subject, through this actor chain, do this action on this
resource, for this purpose — and if not, why (issue 5 §3; ARCHITECTURE.md "The decision").

::

    allow(S, [A1..An], X, R, P, C) =
          every registered identity among S, A1..An is active
      AND each link S→A1→…→An is an active delegation (A(i-1) → Ai, derived from link i-1's
          delegation), valid now, covering (X, R), the tool, P, its condition, within depth
      AND graph(S, X, R) AND graph(Ai, X, R) for each actor (no confused deputy)
      AND no guardrail fires (forbid → deny; require_approval → a requestable deny)

The conjuncts are evaluated in that order and the first failure wins: a suspended identity
is reported before a missing delegation, a missing delegation before a missing graph
permission (the cheap in-memory policy lookups come before the graph walks).

:func:`decide` is pure: it reads one immutable :class:`~keyplane.policy.state.PolicyState`
snapshot, asks the graph through the ``check(user, relation, object) -> bool`` callable it
is given and evaluates compiled CEL (guardrails, delegation conditions). It records
nothing; :mod:`keyplane.service.decisions` wraps it with authorization, freshness and the
ledger event.

A denial carries a machine ``code`` (:data:`CODES`), a ``reason_user`` sentence a person
or an agent can act on, a ``reason`` dict naming the failed conjunct and the identity,
link or rule involved, and ``requestable``: whether the caller can act on the denial by
asking. A graph denial (``subject_lacks_permission``, ``actor_lacks_permission``) for
which an active entitlement grants the missing relation carries ``reason["request"]``
(:func:`request_hint`): the entitlement, object, relation, beneficiary and maximum
duration — what an access request (issue 7) is filed with. ``requestable`` is true only
then, or for ``approval_required`` (a ``require_approval`` guardrail fired); every other
denial, a graph denial with no matching entitlement included, is not requestable
(:data:`REQUESTABLE`: the codes that can be).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

from keyplane.errors import ValidationError
from keyplane.policy.denials import (
    CONDITION,
    DEPTH,
    EXPIRED,
    NOT_YET,
    OK,
    PARENT,
    PURPOSE,
    REVOKED,
    SCOPE,
    TOOL,
    asks,
    guardrail_reason,
    link_failure,
)

if TYPE_CHECKING:
    from keyplane.governance.records import Entitlement
    from keyplane.policy.records import Delegation, GuardrailSet, Identity, StorePolicy

__all__ = [
    "ALLOWED",
    "CODES",
    "REQUESTABLE",
    "CheckFn",
    "Decision",
    "DecisionInput",
    "PolicyView",
    "Verdict",
    "decide",
    "relation_for",
    "request_hint",
]

ALLOWED: Final = "allowed"

#: every code a decision can carry (``allowed`` when it allows); the ``token_*`` codes come
#: from the service, for a request that presents a bearer token (keyplane.service.decisions)
CODES: Final = (
    ALLOWED,
    "token_invalid",
    "token_scope",
    "identity_suspended",
    "identity_deprovisioned",
    "delegation_missing",
    "delegation_expired",
    "delegation_not_yet_valid",
    "delegation_revoked",
    "delegation_scope",
    "purpose_not_allowed",
    "delegation_condition",
    "subject_lacks_permission",
    "actor_lacks_permission",
    "guardrail_forbid",
    "approval_required",
)

#: denials that can be requestable (issue 7): ``approval_required`` always is; a graph
#: denial only when an active entitlement matches and it carries ``reason["request"]``
REQUESTABLE: Final = frozenset(
    {
        "subject_lacks_permission",
        "actor_lacks_permission",
        "approval_required",
    }
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})

#: ``check(user, relation, object) -> bool`` on the store's graph (the engine's check)
CheckFn = Callable[[str, str, str], bool]


class PolicyView(Protocol):
    """What the decision reads of a store's policy state (``keyplane.policy.state.PolicyState``)."""

    @property
    def revision(self) -> int: ...

    @property
    def guardrails(self) -> GuardrailSet | None: ...

    @property
    def policy(self) -> StorePolicy: ...

    def identity(self, node: str) -> Identity | None: ...

    def delegations_between(self, delegator: str, delegate: str) -> Sequence[Delegation]: ...

    def delegation(self, delegation_id: str) -> Delegation | None: ...

    def entitlements_on(self, object: str, relation: str) -> Sequence[Entitlement]:
        """Entitlements (issue 7) whose ``object`` is exactly ``object`` (one object or
        ``type:*``) for ``relation``."""
        ...


class Fired(Protocol):
    @property
    def rule_id(self) -> str: ...

    @property
    def effect(self) -> str: ...


class Guardrails(Protocol):
    """Compiled guardrails (``keyplane.policy.guardrails.CompiledGuardrails``)."""

    def evaluate(self, env: Mapping[str, Any]) -> Sequence[Any]: ...


#: ``env_for(input, relation, state) -> dict`` — the CEL environment of a decision
EnvBuilder = Callable[["DecisionInput", str, PolicyView], Mapping[str, Any]]
#: ``condition(text, env) -> (holds, error message or None)`` — a delegation condition
ConditionFn = Callable[[str, Mapping[str, Any]], tuple[bool, str | None]]


class DecisionInput(NamedTuple):
    """One question. ``actors``: A1 acts directly for the subject … An is the caller making
    the request (RFC 8693 ``act`` nests the other way: newest outermost). A named tuple:
    one is built per decision."""

    subject: str
    actors: tuple[str, ...]
    action: str
    resource: str
    purpose: str | None = None
    context: Mapping[str, Any] = _EMPTY
    tool: str | None = None
    #: pins the last link of the chain to this delegation
    delegation_id: str | None = None
    time: float = 0.0
    #: AuthZEN ``resource.properties`` / ``subject.properties``: seen by guardrails and
    #: conditions (``resource.attributes``; the subject's are laid over its identity's)
    resource_properties: Mapping[str, Any] = _EMPTY
    subject_properties: Mapping[str, Any] = _EMPTY


class Verdict(NamedTuple):
    """What :func:`decide` concludes (the service adds the decision id, revision, model).
    A named tuple: built on every decision, it must be cheap."""

    allowed: bool
    code: str
    reason_user: str
    reason: Mapping[str, Any]
    requestable: bool
    relation: str
    delegation_ids: tuple[str, ...] = ()
    guardrail_version: int = 0
    #: guardrail rules that fired, ``(rule_id, effect)`` in rule order
    fired: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Decision:
    """The answer of the decision point. Truthy when allowed.

    Not frozen: one is built per decision, and a frozen dataclass's ``__init__`` costs
    four times as much (``object.__setattr__`` per field) — treat it as read-only."""

    decision_id: str
    allowed: bool
    code: str
    reason_user: str
    reason: Mapping[str, Any]
    requestable: bool
    revision: int
    model_id: str
    guardrail_version: int
    delegation_ids: tuple[str, ...]
    #: what was evaluated: the relation, the chain, the rules that fired
    evaluated: Mapping[str, Any] = field(default_factory=dict)
    #: a batch item's label, echoed
    correlation_id: str | None = None
    #: a batch item that could not be decided (``allowed`` false, ``code`` the error's code)
    error: Exception | None = field(default=None, compare=False)

    def __bool__(self) -> bool:
        return self.allowed


# ------------------------------------------------------------------------------ helpers


def relation_for(policy: StorePolicy, action: str) -> str:
    """The relation an action asks for: the store's action map, else the action itself."""
    actions = policy.actions
    return actions.get(action, action) if actions else action


def _deny(
    code: str,
    user: str,
    reason: dict[str, Any],
    relation: str,
    ids: tuple[str, ...] = (),
    version: int = 0,
    fired: tuple[tuple[str, str], ...] = (),
) -> Verdict:
    # requestable: what the caller can act on — an approval to ask for, or an entitlement
    # to request (reason["request"], set by the graph denials only when one matches)
    requestable = code == "approval_required" or "request" in reason
    return Verdict(False, code, user, reason, requestable, relation, ids, version, fired)


_IDENTITY_KINDS: Final = frozenset({"human", "agent", "workload", "service_account"})


def request_hint(
    state: PolicyView, identity: str, relation: str, resource: str
) -> dict[str, Any] | None:
    """What to file for a graph denial (issue 7): the first active entitlement granting
    ``relation`` on ``resource`` (the object itself, else its type's ``type:*``) that
    ``identity`` may request (an identity kind; a non-human one only when the entitlement
    lets agents request) — ``{"entitlement", "object", "relation", "beneficiary",
    "max_duration_seconds"}`` — or None. Two dict look-ups, on the deny path only."""
    kind = identity.partition(":")[0]
    if kind not in _IDENTITY_KINDS:
        return None
    on = state.entitlements_on
    for obj in (resource, resource.partition(":")[0] + ":*"):
        for e in on(obj, relation):
            if e.status != "active" or (kind != "human" and not e.agents_may_request):
                continue
            return {
                "entitlement": e.id,
                "object": resource,
                "relation": relation,
                "beneficiary": identity,
                "max_duration_seconds": e.max_duration_seconds,
            }
    return None


def _covers(d: Delegation, action: str, relation: str, resource: str, tool: str | None) -> int:
    """OK when a grant of ``d`` covers the action (or its relation) on the resource (the
    object, or every object of its type: ``type:*``) and the tool; else SCOPE or TOOL."""
    best = SCOPE
    for g in d.scope:
        gr = g.resource
        # "document:*" covers "document:q3": the grant's type prefix, colon included
        if gr != resource and not (gr[-2:] == ":*" and resource.startswith(gr[:-1])):
            continue
        acts = g.actions
        if action not in acts and relation not in acts:
            continue
        if tool is not None and g.tools and tool not in g.tools:
            best = TOOL
            continue
        return OK
    return best


class _Chain:
    """Per-decision state: the lazily built CEL environment."""

    __slots__ = ("env", "env_for", "inp", "relation", "state")

    def __init__(
        self, inp: DecisionInput, relation: str, state: PolicyView, env_for: EnvBuilder | None
    ) -> None:
        self.inp = inp
        self.relation = relation
        self.state = state
        self.env_for = env_for
        self.env: Mapping[str, Any] | None = None

    def environment(self) -> Mapping[str, Any]:
        env = self.env
        if env is None:
            if self.env_for is None:
                raise RuntimeError("a CEL environment builder is required for conditions")
            env = self.env = self.env_for(self.inp, self.relation, self.state)
        return env


def _stage(
    d: Delegation,
    k: int,
    n: int,
    inp: DecisionInput,
    relation: str,
    now: float,
    chain: _Chain,
    condition: ConditionFn | None,
    errors: dict[str, str],
) -> int:
    """How far delegation ``d``, as link ``k`` of ``n``, gets through the link checks."""
    if d.status != "active":
        return REVOKED
    if now < d.not_before:
        return NOT_YET
    if now >= d.expires_at:
        return EXPIRED
    covered = _covers(d, inp.action, relation, inp.resource, inp.tool)
    if covered != OK:
        return covered
    if d.purposes and inp.purpose not in d.purposes:
        return PURPOSE
    if n - k > d.max_depth:  # the hops after this link exceed what it allows
        return DEPTH
    if d.condition:
        if condition is None:
            errors[d.id] = "no condition evaluator"
            return CONDITION
        ok, err = condition(d.condition, chain.environment())
        if err is not None:
            errors[d.id] = err
        if not ok:
            return CONDITION
    return OK


# ------------------------------------------------------------------------------ the decision


def decide(
    inp: DecisionInput,
    check: CheckFn,
    state: PolicyView,
    guardrails: Guardrails | None = None,
    *,
    env_for: EnvBuilder | None = None,
    condition: ConditionFn | None = None,
    relation: str | None = None,
) -> Verdict:
    """Decide ``inp`` (see the module docstring for the order of the conjuncts).

    ``check`` asks the graph; ``guardrails`` are the compiled rules of
    ``state.guardrails`` (None: no rules); ``env_for`` builds the CEL environment (only
    when a condition or a guardrail needs it); ``condition`` evaluates a delegation's
    condition in it; ``relation`` overrides the action map (already resolved by the
    caller). Graph errors (an unknown type or relation) propagate.
    """
    if relation is None:
        relation = relation_for(state.policy, inp.action)
    subject = inp.subject
    actors = inp.actors
    gset = state.guardrails
    version = gset.version if gset is not None else 0

    # 1. no identity in the chain is suspended or deprovisioned
    ident = state.identity
    for pos, node in enumerate((subject, *actors) if actors else (subject,)):
        i = ident(node)
        if i is not None and i.status != "active":  # one dict lookup per identity
            role = "subject" if pos == 0 else "actor"
            verb = "deprovisioned" if i.status == "deprovisioned" else "suspended"
            return _deny(
                f"identity_{verb}",
                f"{node} ({role}) is {verb}, so nothing it takes part in is allowed",
                {
                    "conjunct": "identity",
                    "identity": node,
                    "role": role,
                    "position": pos,
                    "status": i.status,
                },
                relation,
                version=version,
            )

    # 2. every link of the chain is a delegation that holds now
    chain = _Chain(inp, relation, state, env_for) if actors or guardrails is not None else None
    ids: tuple[str, ...] = ()
    n = len(actors)
    if n:
        assert chain is not None
        ids_or_denial = _links(inp, relation, state, chain, condition)
        if isinstance(ids_or_denial, Verdict):
            return ids_or_denial
        ids = ids_or_denial
    elif inp.delegation_id is not None:
        raise ValidationError(
            "'delegation_id' pins the last link of the actor chain, but the request names no "
            "actors",
            details={"field": "delegation_id"},
        )

    # 3. the subject, and each actor too, hold the relation on the resource
    resource = inp.resource
    if not check(subject, relation, resource):
        reason: dict[str, Any] = {
            "conjunct": "graph",
            "role": "subject",
            "identity": subject,
            "relation": relation,
            "resource": resource,
        }
        hint = request_hint(state, subject, relation, resource)
        if hint is not None:
            reason["request"] = hint
        return _deny(
            "subject_lacks_permission",
            f"{subject} does not have {asks(inp.action, relation)} on {resource}",
            reason,
            relation,
            ids,
            version,
        )
    for pos, a in enumerate(actors, 1):
        if not check(a, relation, resource):
            on_behalf = subject if pos == 1 else actors[pos - 2]
            a_reason: dict[str, Any] = {
                "conjunct": "graph",
                "role": "actor",
                "identity": a,
                "position": pos,
                "relation": relation,
                "resource": resource,
            }
            a_hint = request_hint(state, a, relation, resource)
            if a_hint is not None:
                a_reason["request"] = a_hint
            return _deny(
                "actor_lacks_permission",
                f"{a} acts for {on_behalf} but does not itself have "
                f"{asks(inp.action, relation)} on {resource}; every actor in the chain "
                "must hold the permission too",
                a_reason,
                relation,
                ids,
                version,
            )

    # 4. no guardrail forbids it, none asks for approval
    if chain is not None and guardrails is not None and gset is not None and gset.rules:
        fired = guardrails.evaluate(chain.environment())
        if fired:
            code, user, reason, pairs = guardrail_reason(fired, gset, version)
            return _deny(code, user, reason, relation, ids, version, pairs)

    through = f", acting through {' → '.join(actors)}" if actors else ""
    return Verdict(
        True,
        ALLOWED,
        f"{subject} has {asks(inp.action, relation)} on {resource}{through}",
        {},
        False,
        relation,
        ids,
        version,
    )


def _links(
    inp: DecisionInput,
    relation: str,
    state: PolicyView,
    chain: _Chain,
    condition: ConditionFn | None,
) -> tuple[str, ...] | Verdict:
    """The delegation ids of the chain's links, or the denial of the first link that fails.

    Link k may be made by any of the delegations between its two parties that passes the
    checks and (for k > 1) is derived from a passing delegation of link k-1; the chosen
    chain is the newest passing last link and its ancestors."""
    actors = inp.actors
    n = len(actors)
    now = inp.time
    action, resource, tool, purpose = inp.action, inp.resource, inp.tool, inp.purpose
    between = state.delegations_between
    prev_ok: list[Delegation] = []
    levels: list[list[Delegation]] = []
    delegator = inp.subject
    for k in range(1, n + 1):
        delegate = actors[k - 1]
        pinned = inp.delegation_id if k == n else None
        ok: list[Delegation] = []
        # link k > 1 must derive from a passing delegation of link k-1
        parent_id = prev_ok[0].id if len(prev_ok) == 1 else None
        parent_ids = {d.id for d in prev_ok} if len(prev_ok) > 1 else None
        for d in between(delegator, delegate):
            if pinned is not None and d.id != pinned:
                continue
            if k > 1 and (
                d.parent_id != parent_id if parent_ids is None else d.parent_id not in parent_ids
            ):
                continue
            # the common case inline (no condition); a condition goes through _stage
            if d.condition is None:
                passes = (
                    d.status == "active"
                    and d.not_before <= now < d.expires_at
                    and (not d.purposes or purpose in d.purposes)
                    and n - k <= d.max_depth
                    and _covers(d, action, relation, resource, tool) == OK
                )
            else:
                passes = _stage(d, k, n, inp, relation, now, chain, condition, {}) == OK
            if passes:
                ok.append(d)
        if not ok:
            return _link_denial(inp, relation, state, chain, condition, k, prev_ok, levels)
        levels.append(ok)
        prev_ok = ok
        delegator = delegate
    if n == 1:
        return (ok[0].id if len(ok) == 1 else max(ok, key=_created).id,)
    return _trace(levels)


def _trace(levels: list[list[Delegation]]) -> tuple[str, ...]:
    """The chain through ``levels`` (each link's passing delegations, each derived from one
    of the level before): the newest of the last level, then back through its ancestors."""
    if not levels:
        return ()
    last = levels[-1]
    d = last[0] if len(last) == 1 else max(last, key=_created)
    out = [d.id]
    for k in range(len(levels) - 2, -1, -1):
        pid = d.parent_id
        for p in levels[k]:  # holds the parent: each level derives from the one before
            if p.id == pid:
                d = p
                break
        out.append(d.id)
    out.reverse()
    return tuple(out)


def _link_denial(
    inp: DecisionInput,
    relation: str,
    state: PolicyView,
    chain: _Chain,
    condition: ConditionFn | None,
    k: int,
    prev_ok: list[Delegation],
    levels: list[list[Delegation]],
) -> Verdict:
    """The denial of link ``k``, none of whose delegations passed: the candidate that got
    furthest through the checks names the reason (ties: the newest)."""
    actors = inp.actors
    n = len(actors)
    delegator = inp.subject if k == 1 else actors[k - 2]
    delegate = actors[k - 1]
    pinned = inp.delegation_id if k == n else None
    parent_ids = {d.id for d in prev_ok}
    errors: dict[str, str] = {}
    best_stage = -1
    best: Delegation | None = None
    for d in state.delegations_between(delegator, delegate):
        if pinned is not None and d.id != pinned:
            continue
        if k > 1 and d.parent_id not in parent_ids:
            stage = PARENT
        else:
            stage = _stage(d, k, n, inp, relation, inp.time, chain, condition, errors)
        if stage > best_stage or (
            stage == best_stage and best is not None and d.created_at > best.created_at
        ):
            best_stage, best = stage, d
    parent = max(prev_ok, key=_created) if prev_ok else None
    code, user, reason = link_failure(
        best_stage, best, k, delegator, delegate, inp, relation, inp.time, parent, errors
    )
    prior = _trace(levels)
    gset = state.guardrails
    return _deny(code, user, reason, relation, prior, gset.version if gset else 0)


def _created(d: Delegation) -> float:
    return d.created_at

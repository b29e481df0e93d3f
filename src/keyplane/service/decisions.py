"""The decision point as a service operation: decide and decide batch (issue 5 §3, §5).

``decide`` answers "may ``subject``, through the actor chain ``actors``, do ``action`` on
``resource`` for ``purpose``?" with the whole chain checked (identities, delegation
links, graph for the subject and every actor, guardrails — see
:mod:`keyplane.policy.decide`). It runs on the process's in-memory graph and policy state,
exactly as :func:`keyplane.service.access.check` does: the store's latest model or
``model_id``, and ``at_least_as_fresh=N`` waits until revision ``N`` (tuples, identities,
delegations, guardrails and the store policy share the store's revision counter).

Every answer is one ``decision.evaluate`` ledger event carrying the chain (``actor_chain``),
the purpose, the code, the guardrail version and the delegation ids, and in ``details``
the whole input — context, resource and subject properties, and each identity's kind,
attributes and status at decision time — so a guardrail dry run can re-evaluate it.

A bearer ``token`` (an RFC 9068 access token of the store, issued by its token endpoint)
may stand for the subject, the actor chain (its RFC 8693 ``act`` claim), the purpose and
the pinned delegation: it is verified by
:func:`keyplane.service.tokens.verify_access_token` (signature, expiry, audience, and the
live state of everything it was issued under — its jti and parents not revoked, its
client credentials not revoked, every identity active, its delegation chain active), and
a token that fails is a DENY with code ``token_invalid`` (never an exception: it fails
closed; the reason is in the answer's ``reason`` and the event, the token itself never
is — the event keeps its ``jti``). Values passed beside the token must agree with it
(else ``validation_error``). A token whose resource scopes (``document:q3#read``,
:mod:`keyplane.tokens.scopes`) do not cover the action on the resource denies with
``token_scope``. Without ``token_audience`` the token's ``aud`` must name its issuer (the
token was obtained for Keyplane itself); a resource server deciding for a token obtained
for it passes its own audience.

``decide_batch`` follows the AuthZEN 1.0 ``evaluations_semantic`` options:
``execute_all`` answers every item; ``deny_on_first_deny`` and ``permit_on_first_permit``
evaluate in order and stop at the first item that denies (or errors) / permits — that
item is the last one returned, the items after it are neither evaluated nor recorded.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from keyplane.errors import KeyplaneError, ValidationError
from keyplane.graph.engine import CheckItem, Engine, check_context
from keyplane.graph.tuples import object_error, user_error
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.policy import guardrails as _guardrails
from keyplane.policy.decide import (
    CheckFn,
    Decision,
    DecisionInput,
    Verdict,
    relation_for,
)
from keyplane.policy.decide import (
    decide as _decide,
)
from keyplane.policy.records import Identity
from keyplane.policy.state import PolicyState
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services, request_id_var
from keyplane.service.inputs import check_limit
from keyplane.service.tokens import VerifiedToken, verify_access_token
from keyplane.tokens.errors import TokenInvalid

__all__ = [
    "SEMANTICS",
    "TOKEN_INVALID",
    "TOKEN_SCOPE",
    "DecideItem",
    "Decision",
    "decide",
    "decide_batch",
    "evaluate_unrecorded",
]

#: AuthZEN 1.0 ``evaluations_semantic`` values
SEMANTICS: Final = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
_EVENT: Final = "decision.evaluate"
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class DecideItem:
    """One question of a batch: the arguments of :func:`decide`, plus a label. ``subject``
    may be None when ``token`` gives it."""

    subject: str | None
    action: str
    resource: str
    actors: Sequence[str] = ()
    purpose: str | None = None
    context: Mapping[str, Any] | None = None
    delegation_id: str | None = None
    tool: str | None = None
    resource_properties: Mapping[str, Any] | None = None
    subject_properties: Mapping[str, Any] | None = None
    correlation_id: str | None = None
    token: str | None = None
    token_audience: str | None = None

    def __repr__(self) -> str:  # never print the token
        return (
            f"DecideItem(subject={self.subject!r}, action={self.action!r}, "
            f"resource={self.resource!r}, actors={self.actors!r}, "
            f"token={'<redacted>' if self.token is not None else None})"
        )


# ------------------------------------------------------------------------------ operations


@audited(_EVENT)
def decide(
    svc: Services,
    caller: Caller,
    store_id: str,
    subject: str | None,
    action: str,
    resource: str,
    *,
    actors: Sequence[str] = (),
    purpose: str | None = None,
    context: Mapping[str, Any] | None = None,
    delegation_id: str | None = None,
    tool: str | None = None,
    model_id: str | None = None,
    at_least_as_fresh: int | None = None,
    resource_properties: Mapping[str, Any] | None = None,
    subject_properties: Mapping[str, Any] | None = None,
    token: str | None = None,
    token_audience: str | None = None,
) -> Decision:
    """Decide one request through the whole chain; see the module docstring. ``subject``
    may be None when ``token`` (a bearer access token of the store) gives it."""
    ev = _Evaluator(svc, caller, store_id, model_id, at_least_as_fresh)
    # an invalid input raises (and the decorator records it as an error event)
    inp, relation, tok, verdict = ev.prepare(
        subject, action, resource, actors, purpose, context, delegation_id, tool,
        resource_properties, subject_properties, token, token_audience,
    )  # fmt: skip
    if verdict is None:
        verdict = ev.run(inp, relation, None)
    e = _event(ev, None, inp, verdict, None, tok)
    audit.record(svc, (e,))
    return _answer(ev, e, None, verdict)


def evaluate_unrecorded(
    svc: Services,
    caller: Caller,
    store_id: str,
    subject: str | None,
    action: str,
    resource: str,
    *,
    actors: Sequence[str] = (),
    purpose: str | None = None,
    context: Mapping[str, Any] | None = None,
    delegation_id: str | None = None,
    tool: str | None = None,
    model_id: str | None = None,
    at_least_as_fresh: int | None = None,
    resource_properties: Mapping[str, Any] | None = None,
    subject_properties: Mapping[str, Any] | None = None,
    token: str | None = None,
    token_audience: str | None = None,
    default_purpose: str | None = None,
) -> tuple[Decision, LedgerEvent]:
    """:func:`decide` without recording: the answer and its ``decision.evaluate`` event,
    which the caller MUST record before acting on the answer (the MCP gateway records it
    itself, with the call's arguments replaced by their digest, before it forwards the
    call). Not audited: an invalid input raises and records nothing.

    ``default_purpose``: the purpose a request declares beside a ``token`` that carries
    none (the gateway's ``keyplane/purpose`` request meta); a token's own purpose wins."""
    ev = _Evaluator(svc, caller, store_id, model_id, at_least_as_fresh)
    inp, relation, tok, verdict = ev.prepare(
        subject, action, resource, actors, purpose, context, delegation_id, tool,
        resource_properties, subject_properties, token, token_audience,
        default_purpose=default_purpose,
    )  # fmt: skip
    if verdict is None:
        verdict = ev.run(inp, relation, None)
    e = _event(ev, None, inp, verdict, None, tok)
    return _answer(ev, e, None, verdict), e


@audited(_EVENT)
def decide_batch(
    svc: Services,
    caller: Caller,
    store_id: str,
    items: Sequence[DecideItem],
    *,
    semantic: str = "execute_all",
    model_id: str | None = None,
    at_least_as_fresh: int | None = None,
) -> list[Decision]:
    """Decide many requests at one revision; an item's error is that item's answer
    (``allowed`` false, ``code`` and ``error`` the error) and never fails the others."""
    if semantic not in SEMANTICS:
        raise ValidationError(
            f"semantic must be one of {', '.join(SEMANTICS)} (got {semantic!r})",
            details={"field": "semantic", "received": repr(semantic)},
        )
    check_limit("items", items, svc.settings.max_batch_check)
    ev = _Evaluator(svc, caller, store_id, model_id, at_least_as_fresh)
    stop_on = semantic != "deny_on_first_deny"  # the outcome that ends a short-circuit
    short = semantic != "execute_all"
    events: list[LedgerEvent] = []
    answers: list[tuple[DecideItem, Verdict | None, KeyplaneError | None]] = []
    now = svc.clock.now()
    # validate every item first (and verify its token: a token that fails is a denial)
    prepared: list[
        tuple[
            DecideItem, DecisionInput | None, str, KeyplaneError | None, Verdict | None,
            _Token | None,
        ]
    ] = []  # fmt: skip
    wanted: dict[tuple[str, str, str], None] = {}
    for it in items:
        tok: _Token | None = None
        try:
            if not isinstance(it, DecideItem):
                raise ValidationError(
                    f"a batch item must be a DecideItem, not {type(it).__name__}",
                    details={"field": "items"},
                )
            inp, relation, tok, pre = ev.prepare(
                it.subject, it.action, it.resource, it.actors, it.purpose, it.context,
                it.delegation_id, it.tool, it.resource_properties, it.subject_properties,
                it.token, it.token_audience, now,
            )  # fmt: skip
        except KeyplaneError as exc:
            prepared.append((it, None, "", exc, None, tok))
            continue
        prepared.append((it, inp, relation, None, pre, tok))
        if pre is None and not short and not inp.context:
            # every item will be decided: ask the graph now
            wanted[(inp.subject, relation, inp.resource)] = None
            for a in inp.actors:
                wanted[(a, relation, inp.resource)] = None
    with ev.graph.lock:  # one revision for the whole batch
        graph_answers = _Answers(ev.engine, wanted) if wanted else None
        for it, got, relation, err, pre, tok in prepared:
            if pre is not None:
                verdict = pre
            elif got is not None:
                try:
                    verdict = ev.run(got, relation, graph_answers)
                except KeyplaneError as exc:
                    err = exc
            if err is not None or got is None:
                assert err is not None
                events.append(_event(ev, it, None, None, err, tok))
                answers.append((it, None, err))
                if short and not stop_on:
                    break
                continue
            inp = got
            events.append(_event(ev, it, inp, verdict, None, tok))
            answers.append((it, verdict, None))
            if short and verdict.allowed is stop_on:
                break
    audit.record(svc, events)
    return [_answer(ev, e, it, v, err) for e, (it, v, err) in zip(events, answers, strict=True)]


# ------------------------------------------------------------------------------ the evaluator


class _Evaluator:
    """One request's view: the caller authorized, the engine, graph, policy state and
    compiled guardrails taken once (a batch decides all its items at one revision)."""

    __slots__ = (
        "caller",
        "engine",
        "graph",
        "guardrails",
        "model_id",
        "revision",
        "state",
        "store_id",
        "svc",
    )

    def __init__(
        self,
        svc: Services,
        caller: Caller,
        store_id: str,
        model_id: str | None,
        at_least_as_fresh: int | None,
    ) -> None:
        authorize(svc, caller, Permission.QUERY, store_id)
        if at_least_as_fresh is not None:
            svc.graphs.wait_for(
                store_id, at_least_as_fresh, timeout=svc.settings.consistency_timeout
            )
        self.svc = svc
        self.caller = caller
        self.store_id = store_id
        self.engine, self.graph = svc.graphs.engine(store_id, model_id)
        self.model_id = self.engine.model.model_id or ""
        self.state: PolicyState = svc.graphs.policy(store_id)
        gset = self.state.guardrails
        self.guardrails = (
            _guardrails.compile_guardrails(gset) if gset is not None and gset.rules else None
        )
        self.revision = self.graph.revision

    def prepare(
        self,
        subject: str | None,
        action: str,
        resource: str,
        actors: Sequence[str],
        purpose: str | None,
        context: Mapping[str, Any] | None,
        delegation_id: str | None,
        tool: str | None,
        resource_properties: Mapping[str, Any] | None,
        subject_properties: Mapping[str, Any] | None,
        token: str | None,
        token_audience: str | None,
        now: float | None = None,
        *,
        default_purpose: str | None = None,
    ) -> tuple[DecisionInput, str, _Token | None, Verdict | None]:
        """Validate one request (raises for a malformed one) and verify its token: the
        input, the relation, the token's view, and the verdict when the token alone
        decides it (``token_invalid``, ``token_scope``; else None: :meth:`run` decides)."""
        if now is None:
            now = self.svc.clock.now()
        tok: _Token | None = None
        if token is not None or token_audience is not None:
            tok = _verify(self, token, token_audience)
            vt = tok.verified
            if vt is None:  # fails closed: a denial, whatever else the request says
                return _token_denial(self, tok, subject, action, resource, actors,
                                     purpose, tool, delegation_id, now)  # fmt: skip
            subject, actors, purpose, delegation_id = _from_token(
                vt, subject, actors, purpose, delegation_id
            )
            if purpose is None:
                purpose = default_purpose
        elif subject is None:
            raise ValidationError(
                "'subject' is required (or a 'token' that names it)", details={"field": "subject"}
            )
        inp, relation = _input(
            self.engine, self.state, now, subject, action, resource, actors, purpose, context,
            delegation_id, tool, resource_properties, subject_properties,
        )  # fmt: skip
        if tok is not None and tok.verified is not None:
            return inp, relation, tok, _scope_denial(tok.verified, inp, relation)
        return inp, relation, tok, None

    def run(self, inp: DecisionInput, relation: str, answers: _Answers | None) -> Verdict:
        """The pure decision of a validated input; ``answers``: graph checks a batch made
        up front (any other is asked of the engine)."""
        engine = self.engine
        context = inp.context
        check: CheckFn
        if answers is not None and not context:
            check = answers.check
        elif context:
            eng_check = engine.check

            def check(user: str, rel: str, obj: str) -> bool:
                return eng_check(user, rel, obj, context=context)

        else:
            check = engine.check
        with self.graph.lock:
            verdict = _decide(
                inp,
                check,
                self.state,
                self.guardrails,
                env_for=_guardrails.build_env,
                condition=_guardrails.evaluate_condition,
                relation=relation,
            )
            self.revision = self.graph.revision
        return verdict


class _Answers:
    """A batch's context-free graph checks, asked of the engine at once
    (``Engine.batch_check`` resolves each user's checks with one shared state, so a
    subject or an agent deciding on many resources walks its groups once)."""

    __slots__ = ("engine", "found")

    def __init__(self, engine: Engine, wanted: dict[tuple[str, str, str], None]) -> None:
        self.engine = engine
        keys = list(wanted)
        outcomes = engine.batch_check([CheckItem(u, r, o) for u, r, o in keys])
        self.found = dict(zip(keys, outcomes, strict=True))

    def check(self, user: str, relation: str, object: str) -> bool:
        got = self.found.get((user, relation, object))
        if got is None:  # not asked up front
            return self.engine.check(user, relation, object)
        if got.error is not None:
            raise got.error
        return got.allowed


def _answer(
    ev: _Evaluator,
    e: LedgerEvent,
    it: DecideItem | None,
    v: Verdict | None,
    err: KeyplaneError | None = None,
) -> Decision:
    cid = it.correlation_id if it is not None else None
    if v is None:
        assert err is not None
        return Decision(
            e.id, False, err.code, err.message, {"error": err.to_dict()}, False, ev.revision,
            ev.model_id, 0, (), {}, cid, err,
        )  # fmt: skip
    return Decision(
        e.id, v.allowed, v.code, v.reason_user, v.reason, v.requestable, ev.revision,
        ev.model_id, v.guardrail_version, v.delegation_ids,
        {"relation": v.relation, "fired": [list(f) for f in v.fired]} if v.fired
        else {"relation": v.relation, "fired": []},
        cid,
    )  # fmt: skip


# ------------------------------------------------------------------------------ input


def _input(
    engine: Engine,
    state: PolicyState,
    now: float,
    subject: str,
    action: str,
    resource: str,
    actors: Sequence[str],
    purpose: str | None,
    context: Mapping[str, Any] | None,
    delegation_id: str | None,
    tool: str | None,
    resource_properties: Mapping[str, Any] | None,
    subject_properties: Mapping[str, Any] | None,
) -> tuple[DecisionInput, str]:
    """Validate one request; returns the decision input and the relation it asks for."""
    # users and objects the engine has validated before (its own caches) skip the regexes
    users = engine._checker.users
    if subject.__class__ is not str or subject not in users:
        _user("subject", subject)
    if actors:
        if isinstance(actors, str):
            raise ValidationError(
                "'actors' is a list of identities (A1 acts for the subject, the last one is "
                "the caller), not a string",
                details={"field": "actors"},
            )
        actors = tuple(actors)
        for a in actors:
            if a.__class__ is not str or a not in users:
                _user("actors", a)
    else:
        actors = ()
    if not isinstance(action, str) or not action:
        raise ValidationError("'action' must be a non-empty string", details={"field": "action"})
    rtype = engine._objects.get(resource) if resource.__class__ is str else None
    if rtype is None:
        why = object_error(resource)
        if why is not None:
            raise ValidationError(
                f"invalid 'resource' {resource!r}: {why}", details={"field": "resource"}
            )
        rtype = resource.partition(":")[0]
    rels = engine.model.types.get(rtype)
    if rels is None:
        raise ValidationError(
            f"type '{rtype}' not found",
            details={"type": rtype, "reason": "type_not_found", "field": "resource"},
        )
    relation = relation_for(state.policy, action)
    if relation not in rels:
        mapped = (
            f" (mapped by the store's action map to '{relation}')" if relation != action else ""
        )
        raise ValidationError(
            f"action '{action}'{mapped} is not a relation of type '{rtype}'; name a relation "
            "or map the action to one in the store policy",
            details={"action": action, "relation": relation, "type": rtype,
                     "reason": "relation_not_found", "field": "action"},
        )  # fmt: skip
    if purpose is not None and purpose.__class__ is not str:
        raise ValidationError("'purpose' must be a string", details={"field": "purpose"})
    if tool is not None and tool.__class__ is not str:
        raise ValidationError("'tool' must be a string", details={"field": "tool"})
    if delegation_id is not None and delegation_id.__class__ is not str:
        raise ValidationError(
            "'delegation_id' must be a string", details={"field": "delegation_id"}
        )
    if context is not None:
        check_context(context)
    inp = DecisionInput(
        subject,
        actors,
        action,
        resource,
        purpose,
        context if context is not None else _EMPTY,
        tool,
        delegation_id,
        now,
        _props("resource_properties", resource_properties),
        _props("subject_properties", subject_properties),
    )
    return inp, relation


def _user(field: str, value: object) -> None:
    why = user_error(value)
    if why is not None:
        raise ValidationError(
            f"invalid '{field}' entry {value!r}: {why}",
            details={"field": field, "received": repr(value)[:200]},
        )


def _props(field: str, value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError(
            f"'{field}' must be an object with string keys", details={"field": field}
        )
    return value


# ------------------------------------------------------------------------------ tokens

TOKEN_INVALID: Final = "token_invalid"
TOKEN_SCOPE: Final = "token_scope"
_MAX_TOKEN = 8192  # the verifier refuses longer ones; a claimed jti is read only below it

#: TokenInvalid reasons (keyplane.service.tokens) in words; anything else: "it failed
#: verification" (the forgeries: malformed, wrong_typ, alg_not_allowed, unknown_kid, …)
_TOKEN_WORDS: Final = {
    "expired": "it has expired",
    "not_yet_valid": "it is not valid yet",
    "wrong_audience": "it was not obtained for this audience",
    "token_revoked": "it has been revoked",
    "parent_token_revoked": "a token it was exchanged from has been revoked",
    "credential_revoked": "a client credential it was obtained with has been revoked",
    "identity_suspended": "an identity it names is suspended",
    "identity_deprovisioned": "an identity it names is deprovisioned",
    "delegation_revoked": "a delegation it was issued under has been revoked",
    "delegation_expired": "a delegation it was issued under has expired",
    "delegation_missing": "a delegation it was issued under does not exist",
    "unknown_store": "it is not a token of this store",
}


@dataclass(frozen=True, slots=True)
class _Token:
    """A request's token as the decision sees it: verified, or why not. Never the token."""

    jti: str | None
    verified: VerifiedToken | None
    reason: str | None = None

    def details(self) -> dict[str, Any]:
        """What the decision event keeps of it."""
        vt = self.verified
        if vt is None:
            out: dict[str, Any] = {"verified": False, "reason": self.reason}
            if self.jti is not None:
                out["jti"] = self.jti  # as claimed: the token did not verify
            return out
        got: dict[str, Any] = {"jti": vt.jti, "client_id": vt.client_id}
        if vt.scope is not None:
            got["scope"] = sorted(vt.scope)
        return got


def _verify(ev: _Evaluator, token: object, audience: object) -> _Token:
    """Verify ``token`` (one call that fails closed: any :class:`TokenInvalid` is a
    ``_Token`` without ``verified``); a malformed argument is a ``validation_error``."""
    if not isinstance(token, str) or not token:
        raise ValidationError(
            "'token' must be a non-empty string (a bearer access token)"
            + ("; 'token_audience' needs a 'token'" if token is None else ""),
            details={"field": "token"},
        )
    if audience is not None and (not isinstance(audience, str) or not audience):
        raise ValidationError(
            "'token_audience' must be a non-empty string", details={"field": "token_audience"}
        )
    try:
        vt = verify_access_token(ev.svc, ev.store_id, token, audience=audience)
    except TokenInvalid as exc:
        return _Token(_claimed_jti(token), None, exc.reason)
    if audience is None:
        # no audience named: the token must have been obtained for Keyplane itself
        iss = vt.claims.get("iss")
        if not isinstance(iss, str) or iss not in vt.audience:
            return _Token(vt.jti, None, "wrong_audience")
    return _Token(vt.jti, vt)


def _claimed_jti(token: str) -> str | None:
    """The ``jti`` a token that failed verification claims (for the ledger), if readable."""
    parts = token.split(".")
    if len(token) > _MAX_TOKEN or len(parts) != 3:
        return None
    seg = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
    except (ValueError, binascii.Error):
        return None
    jti = claims.get("jti") if isinstance(claims, dict) else None
    return audit.clip(jti) if isinstance(jti, str) and jti else None


def _from_token(
    vt: VerifiedToken,
    subject: str | None,
    actors: Sequence[str],
    purpose: str | None,
    delegation_id: str | None,
) -> tuple[str, tuple[str, ...], str | None, str | None]:
    """Subject, actors, purpose and pinned delegation from a verified token; values the
    request also gives must be the token's."""

    def differs(field: str, given: object, own: object) -> ValidationError:
        return ValidationError(
            f"'{field}' {given!r} does not agree with the token's ({own!r}); give the token "
            f"alone, or the same {field}",
            details={"field": field, "reason": "token_mismatch"},
        )

    if subject is not None and subject != vt.subject:
        raise differs("subject", subject, vt.subject)
    if actors:
        given = actors if isinstance(actors, str) else tuple(actors)
        if given != vt.actors:
            raise differs("actors", given if isinstance(given, str) else list(given),
                          list(vt.actors))  # fmt: skip
    if purpose is not None and purpose != vt.purpose:
        raise differs("purpose", purpose, vt.purpose)
    if delegation_id is not None and delegation_id != vt.delegation_id:
        raise differs("delegation_id", delegation_id, vt.delegation_id)
    return vt.subject, vt.actors, vt.purpose, vt.delegation_id


def _token_denial(
    ev: _Evaluator,
    tok: _Token,
    subject: str | None,
    action: object,
    resource: object,
    actors: Sequence[str],
    purpose: str | None,
    tool: str | None,
    delegation_id: str | None,
    now: float,
) -> tuple[DecisionInput, str, _Token, Verdict]:
    """The denial of a request whose token failed verification (``token_invalid``)."""
    if not isinstance(action, str) or not action:
        raise ValidationError("'action' must be a non-empty string", details={"field": "action"})
    if not isinstance(resource, str) or object_error(resource) is not None:
        raise ValidationError(
            f"invalid 'resource' {resource!r}: {object_error(resource) or 'not a string'}",
            details={"field": "resource"},
        )
    relation = relation_for(ev.state.policy, action)
    reason = tok.reason or "invalid"
    words = _TOKEN_WORDS.get(reason, "it failed verification")
    verdict = Verdict(
        False,
        TOKEN_INVALID,
        f"the bearer token cannot be used: {words}",
        {"conjunct": "token", "check": "valid", "reason": reason, "jti": tok.jti},
        False,
        relation,
    )
    inp = DecisionInput(
        subject if isinstance(subject, str) else "",
        tuple(a for a in actors if isinstance(a, str)) if not isinstance(actors, str) else (),
        action,
        resource,
        purpose if isinstance(purpose, str) else None,
        _EMPTY,
        tool if isinstance(tool, str) else None,
        delegation_id if isinstance(delegation_id, str) else None,
        now,
    )
    return inp, relation, tok, verdict


def _scope_denial(vt: VerifiedToken, inp: DecisionInput, relation: str) -> Verdict | None:
    """``token_scope`` when the token's resource scopes cover neither the action nor its
    relation on the resource (opaque scopes are for resource servers to enforce)."""
    if vt.scope is None:
        return None
    if vt.allows_scope(inp.action, inp.resource) or (
        relation != inp.action and vt.allows_scope(relation, inp.resource)
    ):
        return None
    return Verdict(
        False,
        TOKEN_SCOPE,
        f"the bearer token's scope does not cover '{inp.action}' on {inp.resource}",
        {"conjunct": "token", "check": "scope", "jti": vt.jti, "scope": sorted(vt.scope)},
        False,
        relation,
    )


# ------------------------------------------------------------------------------ the event


_ChainRecords = tuple[tuple[Identity | None, ...], dict[str, Any]]
#: (store, subject, actors) → the identity records last seen for it, and their event form
_CHAINS: dict[tuple[str, str, tuple[str, ...]], _ChainRecords] = {}
_CHAINS_SIZE: Final = 65_536


def _identities(ev: _Evaluator, inp: DecisionInput) -> dict[str, Any]:
    """The registered identities of the subject and actors as an event keeps them (kind,
    attributes, status), built once per chain while its identity records stay the same
    (events never mutate their details; redaction copies them); each is noted as seen
    (``last_seen``, written in batches by the registry)."""
    lookup = ev.state.identity
    subject, actors = inp.subject, inp.actors
    found = (lookup(subject), *map(lookup, actors)) if actors else (lookup(subject),)
    key = (ev.store_id, subject, actors)
    hit = _CHAINS.get(key)
    if hit is not None and hit[0] == found:  # the same records (compared by identity first)
        out = hit[1]
    else:
        out = {}
        for node, i in zip((subject, *actors), found, strict=True):
            if i is not None:
                out[node] = {
                    "kind": i.kind,
                    "attributes": audit.jsonable(i.attributes),
                    "status": i.status,
                }
        if len(_CHAINS) >= _CHAINS_SIZE:
            _CHAINS.clear()
        _CHAINS[key] = (found, out)
    seen = ev.svc.graphs.note_seen  # a dict look-up each; the registry batches the writes
    for node in out:
        seen(ev.store_id, node, inp.time)
    return out


def _event(
    ev: _Evaluator,
    it: DecideItem | None,
    inp: DecisionInput | None,
    v: Verdict | None,
    err: KeyplaneError | None,
    tok: _Token | None = None,
) -> LedgerEvent:
    """The ``decision.evaluate`` event of one answer (``it``: the batch item, if any;
    ``tok``: its token, of which only the jti and the outcome are kept)."""
    eid = new_event_id()
    svc, caller, store_id, model_id = ev.svc, ev.caller, ev.store_id, ev.model_id
    revision = ev.revision
    if inp is None or v is None:  # a batch item that could not be decided
        assert err is not None and it is not None
        failed: dict[str, Any] = {
            "message": err.message[:512],
            "input": audit.jsonable(
                {
                    "subject": it.subject,
                    "actors": list(it.actors) if not isinstance(it.actors, str) else it.actors,
                    "action": it.action,
                    "resource": it.resource,
                    "purpose": it.purpose,
                }
            ),
        }
        if it.correlation_id is not None:
            failed["correlation_id"] = it.correlation_id
        if tok is not None:
            failed["token"] = tok.details()
        return LedgerEvent(
            id=eid,
            time=svc.clock.now(),
            store=store_id,
            type=_EVENT,
            caller=caller.principal,
            subject=audit.clip(it.subject),
            action=audit.clip(it.action),
            resource=audit.clip(it.resource),
            outcome="error",
            reasons=(err.code,),
            model_id=model_id or None,
            revision=revision,
            request_id=request_id_var.get(),
            decision_id=eid,
            details=failed,
        )
    # Built and JSON-encoded on every decision (the encoding costs ~1 µs per 50 bytes):
    # what the event's own fields hold (time, guardrail version in policy_version) is not
    # repeated, and what is empty or absent is left out.
    inp_d: dict[str, Any] = {
        "subject": inp.subject,
        "actors": list(inp.actors),
        "action": inp.action,
        "resource": inp.resource,
    }
    if inp.purpose is not None:
        inp_d["purpose"] = inp.purpose
    if inp.tool is not None:
        inp_d["tool"] = inp.tool
    if inp.delegation_id is not None:
        inp_d["delegation_id"] = inp.delegation_id
    if inp.context:
        inp_d["context"] = audit.jsonable(inp.context)
    if inp.resource_properties:
        inp_d["resource_properties"] = audit.jsonable(inp.resource_properties)
    if inp.subject_properties:
        inp_d["subject_properties"] = audit.jsonable(inp.subject_properties)
    details: dict[str, Any] = {
        "input": inp_d,
        "relation": v.relation,
        "before_guardrails": "allow" if v.allowed or v.fired else "deny",
    }
    if tok is None or tok.verified is not None:  # a failed token names no one we trust
        idents = _identities(ev, inp)
        if idents:
            details["identities"] = idents
    if tok is not None:
        details["token"] = tok.details()
    if v.delegation_ids:
        details["delegation_ids"] = list(v.delegation_ids)
    if v.fired:
        details["fired"] = [list(f) for f in v.fired]
    if not v.allowed:  # the code is the event's reason; the words and details are here
        details["reason"] = v.reason
        details["reason_user"] = v.reason_user
        details["requestable"] = v.requestable
    if it is not None and it.correlation_id is not None:
        details["correlation_id"] = it.correlation_id
    return LedgerEvent(
        eid,
        inp.time,
        store_id,
        _EVENT,
        caller.principal,
        inp.subject or None,
        inp.actors,
        inp.purpose,
        inp.action,
        inp.resource,
        "allow" if v.allowed else "deny",
        (v.code,),
        model_id or None,
        _policy_version(v.guardrail_version),
        revision,
        request_id_var.get(),
        eid,
        details,
    )


_VERSIONS: dict[int, str] = {}


def _policy_version(version: int) -> str:
    text = _VERSIONS.get(version)
    if text is None:
        text = _VERSIONS[version] = f"guardrails:{version}"
    return text

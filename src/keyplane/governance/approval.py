"""Approval policies of entitlements: CEL rules that approve, route or deny a request
(issue 7 §3).

An entitlement's ``approval`` is a tuple of :class:`~keyplane.governance.records.ApprovalRule`
``{id, when, outcome, approvers, required}``. The **first rule whose ``when`` is true
wins**; when none is, the request is routed to the entitlement's owners, one approval
required (:data:`DEFAULT_RULE_ID`).

* ``outcome`` ``"approve"``: granted at once (machine speed), ``"deny"``: refused,
  ``"route"``: pending until ``required`` distinct approvers among ``approvers`` approve
  (one deny refuses it).
* ``approvers``: ``"beneficiary_owners"`` (the beneficiary identity's owners),
  ``"entitlement_owners"``, ``"human:<id>"``, ``"group:<id>#member"``.

``when`` is CEL, compiled with the same ``cel`` library and conventions as
:mod:`keyplane.policy.guardrails`: at write time (an entitlement whose rule does not
compile, refers to a variable outside the environment or has a type error on the sample
is ``invalid_entitlement``), evaluated over (:data:`APPROVAL_VARIABLES`)::

    request      {entitlement, object, relation, duration_seconds, purpose, justification}
    requester    {id (the node, "agent:bot"), kind, attributes, owners, status}
    beneficiary  the same, for the identity who gets the access
    entitlement  {id, risk, max_duration_seconds, agents_may_request, owners, object, relation}
    facts        {owner_holds, requester_holds, beneficiary_holds, requester_is_owner,
                  requester_is_agent}
    now          timestamp of the request

``facts.owner_holds``: some owner of the beneficiary already has the relation on the
object (per the graph); ``requester_is_owner``: the requester is among the beneficiary's
owners (directly or through a group). Example auto-approve rule::

    entitlement.risk == "low" && request.duration_seconds <= 3600 && facts.owner_holds

Failing closed: a rule whose evaluation fails (a missing attribute, a non-bool result)
never approves nor denies — the request is routed to the entitlement's owners, and the
outcome names the rule and the error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

import cel

from keyplane.errors import InvalidEntitlementError
from keyplane.governance.records import (
    APPROVAL_OUTCOMES,
    APPROVER_KEYWORDS,
    DEFAULT_RULE,
    ApprovalRule,
)

if TYPE_CHECKING:
    from keyplane.governance.records import Entitlement
    from keyplane.policy.records import Identity

__all__ = [
    "APPROVAL_OUTCOMES",
    "APPROVAL_VARIABLES",
    "APPROVER_KEYWORDS",
    "DEFAULT_RULE_ID",
    "MAX_APPROVAL_RULES",
    "CompiledRule",
    "Outcome",
    "approval_env",
    "compile_when",
    "evaluate_approval",
    "node_value",
    "parse_approval",
]

APPROVAL_VARIABLES: Final = ("request", "requester", "beneficiary", "entitlement", "facts", "now")
_NAMES: Final = frozenset(APPROVAL_VARIABLES)
#: the rule id an outcome carries when no rule matched (routed to the entitlement owners)
DEFAULT_RULE_ID: Final = DEFAULT_RULE.id
MAX_APPROVAL_RULES: Final = 50
MAX_WHEN_LENGTH: Final = 4096
MAX_APPROVERS: Final = 32
MAX_REQUIRED: Final = 16

_RULE_ID = re.compile(r"[a-z0-9_.-]{1,64}\Z")
_HUMAN = re.compile(r"human:[^\s:#*]{1,256}\Z")
_GROUP = re.compile(r"group:[^\s:#*]{1,256}#member\Z")
_RULE_KEYS: Final = frozenset({"id", "when", "outcome", "approvers", "required"})
_BOUND = re.compile(
    r"\.\s*(?:all|exists|exists_one|existsOne|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)
_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")
_TYPE_ERRORS = ("No such overload", "Unsupported operation", "Undefined variable or function")

_SAMPLE_NODE: Final = {"id": "", "kind": "", "attributes": {}, "owners": [], "status": ""}
_SAMPLE: Final[Mapping[str, Any]] = {
    "request": {
        "entitlement": "",
        "object": "",
        "relation": "",
        "duration_seconds": 0,
        "purpose": "",
        "justification": "",
    },
    "requester": _SAMPLE_NODE,
    "beneficiary": _SAMPLE_NODE,
    "entitlement": {
        "id": "",
        "risk": "",
        "max_duration_seconds": 0,
        "agents_may_request": False,
        "owners": [],
        "object": "",
        "relation": "",
    },
    "facts": {
        "owner_holds": False,
        "requester_holds": False,
        "beneficiary_holds": False,
        "requester_is_owner": False,
        "requester_is_agent": False,
    },
    "now": datetime(1970, 1, 1, tzinfo=UTC),
}


def _invalid(message: str, **details: Any) -> InvalidEntitlementError:
    return InvalidEntitlementError(message, details={"field": "approval", **details})


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0]!r}" if exc.args else "no such key"
    text = str(exc).strip() or type(exc).__name__
    first = text.split(". ", 1)[0]
    return first if len(first) < len(text) else text


def _cel_type(value: Any) -> str:
    if value is None:
        return "null"
    for t, name in ((bool, "bool"), (str, "string"), (int, "int"), (float, "double")):
        if isinstance(value, t):
            return name
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


# ------------------------------------------------------------------------------ compiling


class CompiledRule:
    """One ``when`` expression, compiled and checked."""

    __slots__ = ("_program", "names", "text")

    def __init__(self, text: str, program: Any, names: frozenset[str]) -> None:
        self.text = text
        self._program = program
        #: the variables the expression reads
        self.names = names

    def evaluate(self, env: Mapping[str, Any]) -> bool:
        """The expression's value in ``env``; ``ValueError`` (the reason) when the
        evaluation fails or does not yield a bool."""
        try:
            result = self._program.execute(cel.Context({n: env[n] for n in self.names}))
        except Exception as exc:  # CEL raises KeyError, TypeError, RuntimeError, ...
            raise ValueError(_reason(exc)) from None
        if result is True or result is False:
            return result
        raise ValueError(f"the expression yields {_cel_type(result)}, not bool")


@lru_cache(maxsize=4096)
def _compile(text: str) -> CompiledRule:
    if not text.strip():
        raise _invalid("the expression is empty")
    if len(text) > MAX_WHEN_LENGTH:
        raise _invalid(f"the expression is longer than {MAX_WHEN_LENGTH} characters")
    try:
        program = cel.compile(text)
    except Exception as exc:
        msg = str(exc)
        m = _POSITION.search(msg)
        if m is None:
            raise _invalid(f"the expression does not parse: {msg}") from None
        line, column, what = int(m.group(1)), int(m.group(2)), m.group(3).strip()
        raise _invalid(
            f"the expression does not parse at line {line}, column {column}: {what}",
            line=line,
            column=column,
        ) from None
    bound = set(_BOUND.findall(text))
    variables = set(program.variables())
    unknown = sorted(variables - _NAMES - bound)
    if unknown:
        raise _invalid(
            f"the expression refers to {', '.join(repr(u) for u in unknown)}, not in the "
            f"environment ({', '.join(APPROVAL_VARIABLES)})",
            unknown=unknown,
        )
    names = frozenset(variables & _NAMES)
    try:
        sample: Any = program.execute(cel.Context({n: _SAMPLE[n] for n in names}))
    except Exception as exc:
        msg = str(exc)
        if isinstance(exc, TypeError | RuntimeError) and msg.startswith(_TYPE_ERRORS):
            raise _invalid(f"the expression has a type error: {_reason(exc)}") from None
        # a run-time failure on the sample (an absent key) is allowed
        return CompiledRule(text, program, names)
    if sample is not True and sample is not False:
        raise _invalid(f"the expression yields {_cel_type(sample)}, not bool")
    return CompiledRule(text, program, names)


def compile_when(text: str) -> CompiledRule:
    """Compile and check a rule's ``when`` (cached by text); raises
    :class:`~keyplane.errors.InvalidEntitlementError`."""
    if not isinstance(text, str):
        raise _invalid("'when' must be a string")
    return _compile(text)


def _approver(spec: Any, rid: str, index: int) -> str:
    if isinstance(spec, str) and (
        spec in APPROVER_KEYWORDS or _HUMAN.match(spec) or _GROUP.match(spec)
    ):
        return spec
    raise _invalid(
        f"approval rule '{rid}': approver {spec!r} must be 'beneficiary_owners', "
        "'entitlement_owners', 'human:<id>' or 'group:<id>#member'",
        rule=rid,
        index=index,
    )


def _rule(item: ApprovalRule | Mapping[str, Any], index: int) -> ApprovalRule:
    if isinstance(item, ApprovalRule):
        fields: Mapping[str, Any] = {
            "id": item.id,
            "when": item.when,
            "outcome": item.outcome,
            "approvers": item.approvers,
            "required": item.required,
        }
    elif isinstance(item, Mapping):
        fields = item
        extra = sorted(str(k) for k in fields if k not in _RULE_KEYS)
        if extra:
            raise _invalid(
                f"approval rule {index}: unknown field(s) {', '.join(extra)}",
                index=index,
                unknown=extra,
            )
    else:
        raise _invalid(f"approval rule {index} is not an object", index=index)
    rid = fields.get("id")
    if not isinstance(rid, str) or not _RULE_ID.match(rid):
        raise _invalid(
            f"approval rule {index}: id must match [a-z0-9_.-]{{1,64}}, got {rid!r}",
            index=index,
        )
    when = fields.get("when", "true")
    if when is None:
        when = "true"
    try:
        compile_when(when)
    except InvalidEntitlementError as exc:
        raise _invalid(
            f"approval rule '{rid}': {exc.message}",
            **{**exc.details, "rule": rid, "index": index, "when": str(when)[:200]},
        ) from None
    outcome = fields.get("outcome")
    if outcome not in APPROVAL_OUTCOMES:
        raise _invalid(
            f"approval rule '{rid}': outcome must be one of {', '.join(APPROVAL_OUTCOMES)}, "
            f"got {outcome!r}",
            rule=rid,
            index=index,
        )
    raw = fields.get("approvers", ())
    if raw is None:
        raw = ()
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise _invalid(f"approval rule '{rid}': approvers must be a list", rule=rid, index=index)
    approvers: list[str] = []
    for spec in raw:
        a = _approver(spec, rid, index)
        if a not in approvers:
            approvers.append(a)
    if len(approvers) > MAX_APPROVERS:
        raise _invalid(f"approval rule '{rid}': at most {MAX_APPROVERS} approvers", rule=rid)
    required = fields.get("required", 1)
    if isinstance(required, bool) or not isinstance(required, int):
        raise _invalid(f"approval rule '{rid}': required must be an integer", rule=rid)
    if outcome == "route":
        if not approvers:
            approvers = ["entitlement_owners"]
        if not 1 <= required <= MAX_REQUIRED:
            raise _invalid(
                f"approval rule '{rid}': required must be in 1..{MAX_REQUIRED}",
                rule=rid,
                index=index,
            )
    else:
        if approvers:
            raise _invalid(
                f"approval rule '{rid}': only a 'route' rule names approvers",
                rule=rid,
                index=index,
            )
        required = 1
    return ApprovalRule(rid, str(when), str(outcome), tuple(approvers), int(required))


def parse_approval(
    raw: Iterable[ApprovalRule | Mapping[str, Any]] | None,
) -> tuple[ApprovalRule, ...]:
    """Validate an approval policy (records or JSON objects) and compile each ``when``.
    Raises :class:`~keyplane.errors.InvalidEntitlementError` naming the rule."""
    if raw is None:
        return ()
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Iterable):
        raise _invalid("approval must be a list of rules")
    out: list[ApprovalRule] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if index >= MAX_APPROVAL_RULES:
            raise _invalid(f"an approval policy holds at most {MAX_APPROVAL_RULES} rules")
        rule = _rule(item, index)
        if rule.id in seen:
            raise _invalid(f"approval rule id '{rule.id}' is repeated", rule=rule.id)
        seen.add(rule.id)
        out.append(rule)
    return tuple(out)


# ------------------------------------------------------------------------------ evaluating


def node_value(node: str, ident: Identity | None) -> dict[str, Any]:
    """``requester`` / ``beneficiary`` in the environment."""
    if ident is None:
        kind = node.partition(":")[0]
        return {"id": node, "kind": kind, "attributes": {}, "owners": [], "status": "unregistered"}
    return {
        "id": node,
        "kind": ident.kind,
        "attributes": dict(ident.attributes),
        "owners": list(ident.owners),
        "status": ident.status,
    }


def approval_env(
    *,
    entitlement: Entitlement,
    object: str,
    relation: str,
    duration_seconds: int,
    purpose: str | None,
    justification: str | None,
    requester: Mapping[str, Any],
    beneficiary: Mapping[str, Any],
    facts: Mapping[str, bool],
    now: float,
) -> dict[str, Any]:
    """The CEL environment of one request (see the module docstring)."""
    return {
        "request": {
            "entitlement": entitlement.id,
            "object": object,
            "relation": relation,
            "duration_seconds": int(duration_seconds),
            "purpose": purpose or "",
            "justification": justification or "",
        },
        "requester": dict(requester),
        "beneficiary": dict(beneficiary),
        "entitlement": {
            "id": entitlement.id,
            "risk": entitlement.risk,
            "max_duration_seconds": int(entitlement.max_duration_seconds),
            "agents_may_request": bool(entitlement.agents_may_request),
            "owners": list(entitlement.owners),
            "object": entitlement.object,
            "relation": entitlement.relation,
        },
        "facts": {k: bool(v) for k, v in facts.items()},
        "now": datetime.fromtimestamp(now, UTC),
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the approval policy decided for one request."""

    rule_id: str
    outcome: str  # "approve" | "deny" | "route"
    approvers: tuple[str, ...]  # specs, unresolved (route only)
    required: int
    error: str | None = None  # the rule's evaluation failed (then routed to the owners)


def evaluate_approval(rules: Iterable[ApprovalRule], env: Mapping[str, Any]) -> Outcome:
    """The first rule whose ``when`` is true; none → route to the entitlement owners (1).
    A rule whose evaluation fails routes to the entitlement owners (fail closed)."""
    for r in rules:
        try:
            hit = compile_when(r.when).evaluate(env)
        except (ValueError, InvalidEntitlementError) as exc:
            why = exc.message if isinstance(exc, InvalidEntitlementError) else str(exc)
            return Outcome(r.id, "route", ("entitlement_owners",), 1, why)
        if hit:
            return Outcome(r.id, r.outcome, r.approvers, r.required)
    return Outcome(DEFAULT_RULE_ID, "route", DEFAULT_RULE.approvers, DEFAULT_RULE.required)

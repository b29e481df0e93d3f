"""Guardrails: per-store CEL rules that forbid a decision or ask for approval (issue 5 §4).

A guardrail is ``{id, description, effect, expression, enabled}``; its CEL expression is
evaluated over the decision's environment and **fires when it yields true**. ``forbid``
turns any allow into a deny; ``require_approval`` into a requestable deny (deny overrides
permit: ARCHITECTURE.md "The decision"). Delegation ``condition`` expressions use the same
environment (:func:`compile_expression`, :func:`evaluate_condition`).

The environment (:data:`ENV_VARIABLES`)::

    subject        {type, id, kind, attributes, status}   the subject of the decision
    actors         list of the same, A1 (acts directly for the subject) .. An (the caller)
    chain_length   int, = size(actors)
    action         string, the action asked for
    relation       string, the relation it maps to (StorePolicy.actions)
    resource       {type, id, attributes}   attributes: the request's resource properties
    purpose        string ("" when none)
    context        map, the request context
    tool           string ("" when none)
    now            timestamp of the decision
    hour           int, the UTC hour of the decision (0-23)

A node without an identity record has ``kind`` = its type when that is an identity kind
(else ""), ``attributes`` = {} and ``status`` = ``"unregistered"``. The subject's
attributes are its identity's with the request's subject properties laid over them.

Failing closed: a rule whose evaluation fails (a missing map key, a type mismatch, a
non-bool result) **counts as firing**, and its :class:`Fired` says why (``error``). Write
``has(resource.attributes.env) && resource.attributes.env == "production"`` or
``"env" in resource.attributes && ...`` for attributes that may be absent.

Compile-time checks (:class:`GuardrailInvalidError`): CEL syntax (with line and column),
references to variables outside the environment, and — by evaluating the program once on
a sample environment, since the Rust CEL core has no static type checker (see
``graph/conditions.py``) — type errors on the fixed-shape variables and non-bool results
that the sample reaches. Errors that depend on attribute values can only show at
evaluation time; the dry run (``service/guardrails.py``) reports them.

Cost. The CEL library converts every Python value it is given (about 1 µs per string or
map entry), so an evaluation converts only the variables the rule set refers to, once for
all its rules, and the identity part (subject, actors, chain_length — the costliest, and
the same for every request an agent chain makes) is converted once per chain and thread:
:func:`build_env` keys it by the identity records (immutable, shared by the decisions of
one policy state) and a thread-local ``cel.Context`` per chain keeps it. ``bench/guardrails.py`` measures it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

import cel

from keyplane.errors import GuardrailInvalidError
from keyplane.policy.records import GUARDRAIL_EFFECTS, IDENTITY_KINDS, Guardrail, GuardrailSet

if TYPE_CHECKING:
    from keyplane.policy.records import Identity

__all__ = [
    "ENV_VARIABLES",
    "MAX_EXPRESSION_LENGTH",
    "MAX_RULES",
    "CompiledExpression",
    "CompiledGuardrails",
    "DecisionInputLike",
    "Fired",
    "GuardrailEnv",
    "build_env",
    "compile_expression",
    "compile_guardrails",
    "compile_rules",
    "evaluate_condition",
    "parse_rules",
]

ENV_VARIABLES: Final = (
    "subject",
    "actors",
    "chain_length",
    "action",
    "relation",
    "resource",
    "purpose",
    "context",
    "tool",
    "now",
    "hour",
)
_ENV_NAMES: Final = frozenset(ENV_VARIABLES)
#: the variables a chain's identities determine (cached per chain and thread)
_CHAIN_VARS: Final = frozenset({"subject", "actors", "chain_length"})

MAX_RULES: Final = 200
MAX_EXPRESSION_LENGTH: Final = 4096
_RULE_ID = re.compile(r"[a-z0-9_.-]{1,64}\Z")
_RULE_KEYS: Final = frozenset({"id", "description", "effect", "expression", "enabled"})


@dataclass(frozen=True, slots=True)
class Fired:
    """A rule that fired: its expression was true, or its evaluation failed (``error``)."""

    rule_id: str
    effect: str
    error: str | None = None


# ------------------------------------------------------------------------------ environment


class GuardrailEnv(dict[str, Any]):
    """The CEL environment of one decision (a plain ``dict`` of :data:`ENV_VARIABLES`).

    ``chain_key`` names the identity part (subject, actors, chain_length) so evaluation can
    reuse its CEL conversion; None when it cannot be cached (then everything is converted).
    It holds the ``id()`` of each identity record, and ``chain_refs`` the records: a cache
    entry keeps them alive, so an id in a key is never reused by another record meanwhile
    (store ids and revisions alone are not unique: a store can be deleted and recreated,
    two databases can hold the same store id).
    """

    __slots__ = ("chain_key", "chain_refs")

    def __init__(
        self,
        values: Mapping[str, Any],
        chain_key: tuple[Any, ...] | None,
        chain_refs: tuple[Identity, ...] = (),
    ) -> None:
        super().__init__(values)
        self.chain_key = chain_key
        self.chain_refs = chain_refs


class DecisionInputLike(Protocol):
    """What :func:`build_env` reads of a ``keyplane.policy.decide.DecisionInput``."""

    @property
    def subject(self) -> str: ...
    @property
    def actors(self) -> Sequence[str]: ...
    @property
    def action(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def context(self) -> Mapping[str, Any]: ...
    @property
    def tool(self) -> str | None: ...
    @property
    def time(self) -> float: ...
    @property
    def resource_properties(self) -> Mapping[str, Any]: ...
    @property
    def subject_properties(self) -> Mapping[str, Any]: ...


class _Identities(Protocol):
    def identity(self, node: str) -> Identity | None: ...


_NO_ATTRIBUTES: Final[Mapping[str, Any]] = {}


def _node_value(
    node: str, ident: Identity | None, overlay: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    typ, _, oid = node.partition(":")
    if ident is None:
        kind = typ if typ in IDENTITY_KINDS else ""
        attributes: Mapping[str, Any] = _NO_ATTRIBUTES
        status = "unregistered"
    else:
        kind, attributes, status = ident.kind, ident.attributes, ident.status
    if overlay:
        attributes = {**attributes, **overlay}
    return {"type": typ, "id": oid, "kind": kind, "attributes": attributes, "status": status}


def _node_key(node: str, ident: Identity | None) -> tuple[Any, ...]:
    if ident is None:
        return (node,)
    return (node, id(ident))


def _frozen(value: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A hashable form of flat properties, or None when a value is not hashable."""
    try:
        out = tuple(sorted(value.items()))
        hash(out)
    except TypeError:
        return None
    return out


def build_env(inp: DecisionInputLike, relation: str, identities: _Identities) -> GuardrailEnv:
    """The CEL environment of a decision: ``inp`` (a ``DecisionInput``), the relation its
    action maps to, and ``identities.identity(node)`` (a ``PolicyState``; None for a node
    without an identity record)."""
    lookup = identities.identity
    subject = inp.subject
    s_ident = lookup(subject)
    s_props = inp.subject_properties
    key: list[Any] | None = [_node_key(subject, s_ident)]
    refs = [s_ident] if s_ident is not None else []
    if s_props:
        frozen = _frozen(s_props)
        if frozen is None:
            key = None
        else:
            key.append(frozen)  # type: ignore[union-attr]
    actors = []
    for a in inp.actors:
        a_ident = lookup(a)
        actors.append(_node_value(a, a_ident))
        if key is not None:
            key.append(_node_key(a, a_ident))
            if a_ident is not None:
                refs.append(a_ident)
    rtype, _, rid = inp.resource.partition(":")
    t = inp.time
    values = {
        "subject": _node_value(subject, s_ident, s_props),
        "actors": actors,
        "chain_length": len(actors),
        "action": inp.action,
        "relation": relation,
        "resource": {"type": rtype, "id": rid, "attributes": inp.resource_properties},
        "purpose": inp.purpose or "",
        "context": inp.context,
        "tool": inp.tool or "",
        "now": datetime.fromtimestamp(t, UTC),
        "hour": int(t // 3600) % 24,
    }
    if key is None:
        return GuardrailEnv(values, None)
    return GuardrailEnv(values, tuple(key), tuple(refs))


# ------------------------------------------------------------------------------ activation

_CHAIN_CACHE_SIZE: Final = 2048
_local = threading.local()


#: activation names of the flattened ``resource`` fields (see :func:`_flatten`)
_DERIVED: Final[Mapping[str, str]] = {
    "resource__type": "type",
    "resource__id": "id",
    "resource__attributes": "attributes",
}
_MISSING: Final = object()


def _value(env: Mapping[str, Any], name: str) -> Any:
    field = _DERIVED.get(name)
    return env[name] if field is None else env["resource"][field]


class _ChainContext:
    """A thread's ``cel.Context`` for one chain, and the Python values last put in it."""

    __slots__ = ("ctx", "last", "refs")

    def __init__(self, ctx: cel.Context, refs: tuple[Identity, ...]) -> None:
        self.ctx = ctx
        self.last: dict[str, Any] = {}
        self.refs = refs  # the identity records whose id() is in the key (kept alive)


def _activation(
    env: Mapping[str, Any], names: frozenset[str], rest: tuple[str, ...]
) -> cel.Context:
    """A ``cel.Context`` holding the activation variables ``names`` (``rest``: those
    outside the chain part), converted once for every program evaluated in it. Raises
    ``ValueError`` when a value does not convert."""
    if not isinstance(env, GuardrailEnv) or env.chain_key is None:
        return cel.Context({n: _value(env, n) for n in names})
    key = env.chain_key
    cache: dict[tuple[Any, ...], _ChainContext] | None = getattr(_local, "chains", None)
    if cache is None:
        cache = _local.chains = {}
    entry = cache.get(key)
    if entry is None:
        entry = _ChainContext(cel.Context({n: env[n] for n in _CHAIN_VARS}), env.chain_refs)
        if len(cache) >= _CHAIN_CACHE_SIZE:
            del cache[next(iter(cache))]  # the oldest chain
        cache[key] = entry
    # The Context is this thread's own. Only variables whose value changed since the last
    # evaluation on this chain are converted again (an agent repeats its action, purpose
    # and resource type); variables of other rule sets left in it are never read by these
    # programs, which do not refer to them.
    last = entry.last
    changed: dict[str, Any] | None = None
    for n in rest:
        v = _value(env, n)
        old = last.get(n, _MISSING)
        t = type(v)
        if t is str or t is int:
            if type(old) is t and old == v:
                continue
        elif t is dict or t is MappingProxyType:
            if type(old) is dict and _same_map(old, v):
                continue
        elif old is v and t is not list:
            continue
        if changed is None:
            changed = {}
        changed[n] = v
    if changed is not None:
        try:
            entry.ctx.update(changed)
        except Exception:
            del cache[key]  # possibly half updated: never trust it again
            raise
        for n, v in changed.items():
            t = type(v)
            # a copy: the caller's dict may be changed in place and passed again
            last[n] = dict(v) if t is dict or t is MappingProxyType else v
    return entry.ctx


_SCALARS: Final = (str, int, bool, float, type(None))


def _same_map(old: dict[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``new`` holds what ``old`` held: the same keys, and scalar values of the
    same Python type and value (a nested map or list counts as different)."""
    if len(old) != len(new):
        return False
    for k, x in old.items():
        y = new.get(k, _MISSING)
        tx = type(x)
        if tx is not type(y) or tx not in _SCALARS or x != y:
            return False
    return True


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0]!r}" if exc.args else "no such key"
    text = str(exc).strip() or type(exc).__name__
    # the library appends advice after the first sentence; keep the message short
    first = text.split(". ", 1)[0]
    return first if len(first) < len(text) else text


# ------------------------------------------------------------------------------ expressions

_BOUND = re.compile(
    r"\.\s*(?:all|exists|exists_one|existsOne|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)
_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")
_SAMPLE_NODE: Final = {"type": "", "id": "", "kind": "", "attributes": {}, "status": ""}
_SAMPLE: Final[Mapping[str, Any]] = {
    "subject": _SAMPLE_NODE,
    "actors": [_SAMPLE_NODE],
    "chain_length": 1,
    "action": "",
    "relation": "",
    "resource": {"type": "", "id": "", "attributes": {}},
    "purpose": "",
    "context": {},
    "tool": "",
    "now": datetime(1970, 1, 1, tzinfo=UTC),
    "hour": 0,
}
# Run-time errors on the sample that show a type error in the expression itself (the
# sample's values have the environment's types; absent map keys raise KeyError instead).
_TYPE_ERRORS = ("No such overload", "Unsupported operation", "Undefined variable or function")


# CEL tokens, enough to find top-level ``resource.<field>`` selections (strings and
# comments are skipped whole; an expression with a backslash or backquote is left alone).
_TOKEN = re.compile(
    r"""(?P<s>(?:[rR][bB]?|[bB][rR]?)?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"[^"\n]*"|'[^'\n]*'))"""
    r"|(?P<c>//[^\n]*)"
    r"|(?P<i>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<n>\d[\w.]*)"
    r"|(?P<w>\s+)"
    r"|(?P<o>.)",
    re.S,
)


def _flatten(text: str, bound: set[str]) -> str | None:
    """``text`` with ``resource.type``/``.id``/``.attributes`` selections replaced by the
    activation variables ``resource__type``/... (each converted on its own: the whole
    ``resource`` map costs several µs to convert), or None when nothing is replaced."""
    if "resource" in bound or "\\" in text or "`" in text:
        return None
    toks = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    sig = [i for i, (kind, _) in enumerate(toks) if kind not in ("w", "c")]
    out = [t for _, t in toks]
    replaced = False
    for j, i in enumerate(sig):
        if toks[i] != ("i", "resource"):
            continue
        if j > 0 and toks[sig[j - 1]][1] == ".":
            continue  # a field named resource of something else
        if j + 2 >= len(sig) or toks[sig[j + 1]][1] != ".":
            continue
        kind, field = toks[sig[j + 2]]
        if kind != "i" or f"resource__{field}" not in _DERIVED:
            continue
        after = toks[sig[j + 3]][1] if j + 3 < len(sig) else ""
        if after == "(":
            continue
        if (
            after == ")"
            and j >= 2
            and toks[sig[j - 1]][1] == "("
            and toks[sig[j - 2]] == ("i", "has")
        ):
            continue  # has(resource.type) needs the map
        for k in range(i, sig[j + 2] + 1):
            out[k] = ""
        out[i] = f"resource__{field}"
        replaced = True
    return "".join(out) if replaced else None


class CompiledExpression:
    """One CEL expression over the guardrail environment, compiled and checked."""

    __slots__ = ("_program", "_rest", "names", "refs", "text")

    def __init__(self, text: str, program: Any, refs: frozenset[str], names: frozenset[str]):
        self.text = text
        self._program = program
        #: the environment variables the expression refers to
        self.refs = refs
        #: the activation variables its program reads (``resource`` fields flattened)
        self.names = names
        self._rest = tuple(sorted(names - _CHAIN_VARS))

    def evaluate(self, env: Mapping[str, Any]) -> bool:
        """The expression's value in ``env``; raises ``ValueError`` (with the reason) when
        the evaluation fails or does not yield a bool."""
        try:
            result = self._program.execute(_activation(env, self.names, self._rest))
        except Exception as exc:  # CEL raises KeyError, TypeError, RuntimeError, ...
            raise ValueError(_reason(exc)) from None
        if result is True or result is False:
            return result
        raise ValueError(f"the expression yields {_cel_type(result)}, not bool")

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r})"


def _cel_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def _invalid(message: str, **details: Any) -> GuardrailInvalidError:
    return GuardrailInvalidError(message, details=details)


def _probe(program: Any, names: frozenset[str]) -> Any:
    sample = {n: _value(_SAMPLE, n) for n in names}
    return program.execute(cel.Context(sample))


@lru_cache(maxsize=4096)
def _compile(text: str) -> CompiledExpression:
    if not text.strip():
        raise _invalid("the expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise _invalid(
            f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters",
            max_length=MAX_EXPRESSION_LENGTH,
        )
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
    unknown = sorted(variables - _ENV_NAMES - bound)
    if unknown:
        raise _invalid(
            f"the expression refers to {', '.join(repr(u) for u in unknown)}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not in the environment "
            f"({', '.join(ENV_VARIABLES)})",
            unknown=unknown,
        )
    refs = frozenset(variables & _ENV_NAMES)
    try:
        sample = _probe(program, refs)
    except Exception as exc:
        msg = str(exc)
        if isinstance(exc, TypeError | RuntimeError) and msg.startswith(_TYPE_ERRORS):
            raise _invalid(f"the expression has a type error: {_reason(exc)}") from None
        sample = _MISSING  # a run-time failure on the sample (e.g. an absent key) is allowed
    if sample is not _MISSING and sample is not True and sample is not False:
        raise _invalid(f"the expression yields {_cel_type(sample)}, not bool")
    flat = _flatten(text, bound)
    if flat is not None:
        program, names = _flat_program(text, flat, program, refs, sample)
    else:
        names = refs
    return CompiledExpression(text, program, refs, names)


def _flat_program(
    text: str, flat: str, program: Any, refs: frozenset[str], sample: Any
) -> tuple[Any, frozenset[str]]:
    """The flattened program, if it compiles, reads what it should and agrees with the
    original on the sample; else the original (correct, a little slower)."""
    try:
        fprog = cel.compile(flat)
        fvars = set(fprog.variables())
        fnames = frozenset(fvars & (_ENV_NAMES | _DERIVED.keys()))
        expected = (refs - {"resource"}) | (fnames & _DERIVED.keys())
        if fnames - {"resource"} != expected:
            return program, refs
        try:
            fsample = _probe(fprog, fnames)
        except Exception:
            fsample = _MISSING
        if fsample is not sample:
            return program, refs
    except Exception:
        return program, refs
    return fprog, fnames


def compile_expression(text: str) -> CompiledExpression:
    """Compile and check a CEL expression over the guardrail environment (cached by text).

    Raises :class:`GuardrailInvalidError` (details: ``line``/``column`` of a syntax error,
    ``unknown`` variables)."""
    if not isinstance(text, str):
        raise _invalid("the expression must be a string")
    return _compile(text)


def evaluate_condition(text: str, env: Mapping[str, Any]) -> tuple[bool, str | None]:
    """A delegation condition in ``env``: (holds, None), or (False, why) when it does not
    compile or its evaluation fails (a condition that cannot be evaluated does not hold)."""
    try:
        return compile_expression(text).evaluate(env), None
    except GuardrailInvalidError as exc:
        return False, exc.message
    except ValueError as exc:
        return False, str(exc)


# ------------------------------------------------------------------------------ rule sets


def parse_rules(raw: Iterable[Guardrail | Mapping[str, Any]]) -> tuple[Guardrail, ...]:
    """Validate a rule set (records or JSON objects) and compile each expression.

    Raises :class:`GuardrailInvalidError` naming the rule (``details.rule``, ``index``)."""
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Iterable):
        raise _invalid("rules must be a list of guardrails")
    out: list[Guardrail] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if index >= MAX_RULES:
            raise _invalid(f"a guardrail set holds at most {MAX_RULES} rules", max=MAX_RULES)
        rule = _rule(item, index)
        if rule.id in seen:
            raise _invalid(f"guardrail id '{rule.id}' is repeated", rule=rule.id, index=index)
        seen.add(rule.id)
        try:
            compile_expression(rule.expression)
        except GuardrailInvalidError as exc:
            raise _invalid(
                f"guardrail '{rule.id}': {exc.message}",
                rule=rule.id,
                index=index,
                expression=rule.expression,
                **exc.details,
            ) from None
        out.append(rule)
    return tuple(out)


def _rule(item: Guardrail | Mapping[str, Any], index: int) -> Guardrail:
    if isinstance(item, Guardrail):
        fields: Mapping[str, Any] = {
            "id": item.id,
            "description": item.description,
            "effect": item.effect,
            "expression": item.expression,
            "enabled": item.enabled,
        }
    elif isinstance(item, Mapping):
        fields = item
        extra = sorted(str(k) for k in fields if k not in _RULE_KEYS)
        if extra:
            raise _invalid(
                f"guardrail {index}: unknown field(s) {', '.join(extra)}",
                index=index,
                unknown=extra,
            )
    else:
        raise _invalid(f"guardrail {index} is not an object", index=index)
    rid = fields.get("id")
    if not isinstance(rid, str) or not _RULE_ID.match(rid):
        raise _invalid(
            f"guardrail {index}: id must match [a-z0-9_.-]{{1,64}}, got {rid!r}",
            index=index,
            field="id",
        )
    effect = fields.get("effect")
    if effect not in GUARDRAIL_EFFECTS:
        raise _invalid(
            f"guardrail '{rid}': effect must be one of {', '.join(GUARDRAIL_EFFECTS)}, "
            f"got {effect!r}",
            rule=rid,
            index=index,
            field="effect",
        )
    expression = fields.get("expression")
    if not isinstance(expression, str):
        raise _invalid(
            f"guardrail '{rid}': expression must be a string",
            rule=rid,
            index=index,
            field="expression",
        )
    description = fields.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise _invalid(
            f"guardrail '{rid}': description must be a string",
            rule=rid,
            index=index,
            field="description",
        )
    enabled = fields.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _invalid(
            f"guardrail '{rid}': enabled must be a boolean",
            rule=rid,
            index=index,
            field="enabled",
        )
    return Guardrail(rid, description, str(effect), expression, enabled)


class CompiledGuardrails:
    """A rule set's enabled rules, compiled; :meth:`evaluate` is safe from many threads."""

    __slots__ = ("_programs", "_rest", "names", "rules", "store_id", "version")

    def __init__(self, store_id: str, version: int, rules: tuple[Guardrail, ...]) -> None:
        self.store_id = store_id
        self.version = version
        self.rules = rules
        programs: list[tuple[str, str, Any]] = []
        names: set[str] = set()
        for r in rules:
            if not r.enabled:
                continue
            c = compile_expression(r.expression)
            programs.append((r.id, r.effect, c._program))
            names |= c.names
        self._programs = tuple(programs)
        #: the activation variables any enabled rule reads
        self.names = frozenset(names)
        self._rest = tuple(sorted(self.names - _CHAIN_VARS))

    def evaluate(self, env: Mapping[str, Any]) -> list[Fired]:
        """The rules that fire in ``env``, in rule order. A rule whose evaluation fails
        fires too (fail closed), with ``error`` saying why."""
        programs = self._programs
        if not programs:
            return []
        try:
            ctx = _activation(env, self.names, self._rest)
        except Exception as exc:  # a value CEL cannot take: every rule fails closed
            why = f"the environment could not be converted: {_reason(exc)}"
            return [Fired(rid, effect, why) for rid, effect, _ in programs]
        out: list[Fired] = []
        for rid, effect, program in programs:
            try:
                result = program.execute(ctx)
            except Exception as exc:
                out.append(Fired(rid, effect, _reason(exc)))
                continue
            if result is True:
                out.append(Fired(rid, effect))
            elif result is not False:
                out.append(Fired(rid, effect, f"the rule yields {_cel_type(result)}, not bool"))
        return out

    def __len__(self) -> int:
        return len(self._programs)


_compiled: dict[tuple[str, int], CompiledGuardrails] = {}
_compiled_lock = threading.Lock()
_COMPILED_CACHE_SIZE: Final = 1024


def compile_guardrails(gset: GuardrailSet) -> CompiledGuardrails:
    """The set's rules compiled, cached by (store, version) (a store whose version holds
    other rules — e.g. a store id reused in another database — is recompiled)."""
    key = (gset.store_id, gset.version)
    hit = _compiled.get(key)
    if hit is not None and (hit.rules is gset.rules or hit.rules == gset.rules):
        return hit
    compiled = CompiledGuardrails(gset.store_id, gset.version, gset.rules)
    with _compiled_lock:
        if len(_compiled) >= _COMPILED_CACHE_SIZE:
            del _compiled[next(iter(_compiled))]
        _compiled[key] = compiled
    return compiled


def compile_rules(rules: Sequence[Guardrail], *, store_id: str = "") -> CompiledGuardrails:
    """Rules not stored (a dry run's candidates) compiled, uncached."""
    return CompiledGuardrails(store_id, 0, tuple(rules))

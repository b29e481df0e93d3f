"""Explain — why a check is allowed (the granting paths) or denied (what failed where).

:func:`explain` first runs the real :meth:`Engine.check` (the authoritative answer, with
its error if it fails), then re-walks the same rewrites with an instrumented evaluator
that keeps evidence instead of short-circuiting:

* an **allowed** check gets up to :data:`MAX_PATHS` *paths*; a path is the list of steps
  from the object down to the user — ``computed`` (a relation implied by another on the
  same object), ``tuple_to_userset`` (the parent tuple followed), ``userset`` (a group-like
  tuple followed), ``intersection`` (every side's own path), ``but_not`` (the exclusion
  that did not apply), and the final ``direct`` or ``wildcard`` tuple;
* a **denied** check gets *reasons*, one per branch that failed: ``no_tuple`` (no edge
  to the user, nor to a wildcard or userset containing them), ``condition_false`` (with
  the condition's name and the parameter values it saw), ``condition_error``,
  ``expired`` (a grant that existed until ``expires_at``), ``excluded`` (a ``but not``
  that applied, with the path that excluded), ``intersection_missing`` (which side of an
  ``and`` failed), ``cycle`` and ``depth_exceeded``. A ``no_tuple`` with ``parent: true``
  means a tuple-to-userset found no parent to inherit from.

:meth:`Explanation.to_dict` is the structure for agents, :meth:`Explanation.render` the
text for people. Explain is not on the hot path: clarity beats speed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyplane.errors import ConditionError, KeyplaneError, ResolutionTooComplexError
from keyplane.graph.check import Req
from keyplane.graph.compiled import CompiledModel, RelationInfo, Rewrite
from keyplane.graph.index import Edge, View, values_of
from keyplane.graph.tuples import Tuple

__all__ = ["MAX_PATHS", "Explanation", "explain"]

MAX_PATHS = 5
MAX_REASONS = 50

Step = dict[str, Any]
Path = list[Step]


@dataclass(slots=True)
class Explanation:
    """The answer to a check with its evidence."""

    allowed: bool
    user: str
    relation: str
    object: str
    paths: list[Path] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    #: the ledger event recording this explanation (set by the service layer; not part of
    #: :meth:`to_dict`, which is the explanation itself)
    decision_id: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "allowed": self.allowed,
            "user": self.user,
            "relation": self.relation,
            "object": self.object,
            "paths": self.paths,
            "reasons": self.reasons,
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Explanation:
        """The inverse of :meth:`to_dict` (the HTTP SDK rebuilds the server's answer)."""
        return cls(
            allowed=bool(data["allowed"]),
            user=str(data["user"]),
            relation=str(data["relation"]),
            object=str(data["object"]),
            paths=list(data.get("paths") or []),
            reasons=list(data.get("reasons") or []),
            error=data.get("error"),
            decision_id=data.get("decision_id"),
        )

    def render(self) -> str:
        verdict = "ALLOWED" if self.allowed else "DENIED"
        lines = [f"{verdict}: {self.user} {self.relation} {self.object}"]
        if self.error is not None:
            lines.append(f"  error: {self.error.get('message')}")
        if self.allowed:
            for i, path in enumerate(self.paths, 1):
                lines.append(f"  path {i}:")
                lines.extend(_render_path(path, "    "))
        else:
            for reason in self.reasons:
                lines.extend(_render_reason(reason, "  "))
        return "\n".join(lines)


def _render_path(path: Path, indent: str) -> list[str]:
    out: list[str] = []
    for s in path:
        k = s["kind"]
        if k == "computed":
            out.append(f"{indent}{s['at']} includes {s['to']}")
        elif k == "tuple_to_userset":
            out.append(f"{indent}{s['at']} via parent tuple {s['tuple']} -> {s['to']}")
        elif k == "userset":
            out.append(f"{indent}{s['at']} via userset tuple {s['tuple']}")
        elif k == "but_not":
            out.append(f"{indent}{s['at']}: not excluded by {s['excluded_by']}")
        elif k == "intersection":
            out.append(f"{indent}{s['at']} requires all of:")
            for sub in s["all_of"]:
                out.extend(_render_path(sub, indent + "  "))
        elif k == "self":
            out.append(f"{indent}{s['at']} is the userset itself")
        else:
            cond = f" (condition {s['condition']} true)" if s.get("condition") else ""
            out.append(f"{indent}{k} tuple {s['tuple']}{cond}")
    return out


def _render_reason(r: dict[str, Any], indent: str) -> list[str]:
    k = r["kind"]
    if k == "no_tuple" and r.get("parent"):
        line = f"- {r['at']}: no parent to inherit from"
    elif k == "no_tuple":
        line = f"- {r['at']}: no tuple grants {r['user']}"
    elif k == "condition_false":
        line = f"- {r['tuple']}: condition {r['condition']} is false with {r['params']}"
    elif k == "condition_error":
        line = f"- {r['tuple']}: condition {r['condition']} failed: {r['message']}"
    elif k == "expired":
        line = f"- {r['tuple']}: expired at {r['expired_at']}"
    elif k == "excluded":
        line = f"- {r['at']}: excluded by {r['by']}"
    elif k == "intersection_missing":
        line = f"- {r['at']}: missing {', '.join(r['missing'])}"
    elif k == "cycle":
        line = f"- {r['at']}: cycle, not followed again"
    else:
        line = f"- {r.get('at', '')}: {k}"
    out = [indent + line]
    for sub in r.get("reasons", ()):
        out.extend(_render_reason(sub, indent + "  "))
    return out


# -- evaluation -----------------------------------------------------------------------------

ALLOW, DENY, CYCLE = 1, 0, 2
Out = tuple[int, list[Path], list[dict[str, Any]]]


def explain(
    engine: Any,
    user: str,
    relation: str,
    obj: str,
    *,
    context: Mapping[str, Any] | None = None,
    contextual_tuples: Sequence[Tuple] = (),
) -> Explanation:
    error: dict[str, Any] | None = None
    try:
        allowed = engine.check(
            user, relation, obj, context=context, contextual_tuples=contextual_tuples
        )
    except (ConditionError, ResolutionTooComplexError) as exc:
        # the answer is an error; the walk below still says where it came from
        allowed, error = False, exc.to_dict()
    view = engine.view(contextual_tuples)
    req = engine.request(user, context=context, view=view)
    ex = _Explainer(engine.model, view, req)
    _, paths, reasons = ex.node(obj, obj.partition(":")[0], relation, 0)
    if not allowed:
        paths = []
    return Explanation(allowed, user, relation, obj, paths, reasons[:MAX_REASONS], error)


class _Explainer:
    def __init__(self, model: CompiledModel, view: View, req: Req) -> None:
        self.model = model
        self.view = view
        self.r = req
        self.memo: dict[tuple[str, str], Out] = {}
        self.open: set[tuple[str, str]] = set()

    def node(self, obj: str, t: str, rel: str, depth: int) -> Out:
        key = (obj, rel)
        at = f"{obj}#{rel}"
        if self.r.is_userset and self.r.u == at:
            return ALLOW, [[{"kind": "self", "at": at}]], []
        got = self.memo.get(key)
        if got is not None:
            return got
        if depth >= self.r.max_depth:
            return DENY, [], [{"kind": "depth_exceeded", "at": at}]
        if key in self.open:
            return CYCLE, [], [{"kind": "cycle", "at": at}]
        self.open.add(key)
        try:
            info = self.model.types[t][rel]
            out = self.rewrite(obj, t, info, info.rewrite, depth)
        finally:
            self.open.discard(key)
        if out[0] != CYCLE:
            self.memo[key] = out
        return out

    def rewrite(self, obj: str, t: str, info: RelationInfo, rw: Rewrite, depth: int) -> Out:
        at = f"{obj}#{info.name}"
        op = rw[0]
        if op == "this":
            return self.direct(obj, info, depth)
        if op == "computed":
            code, paths, reasons = self.node(obj, t, rw[1], depth)
            step = {"kind": "computed", "at": at, "to": f"{obj}#{rw[1]}"}
            return code, [[step, *p] for p in paths], reasons
        if op == "ttu":
            return self.ttu(obj, t, info, rw[1], rw[2], depth)
        if op == "union":
            outs = [self.rewrite(obj, t, info, c, depth) for c in rw[1]]
            paths = [p for o in outs if o[0] == ALLOW for p in o[1]][:MAX_PATHS]
            if paths:
                return ALLOW, paths, []
            code = CYCLE if any(o[0] == CYCLE for o in outs) else DENY
            return code, [], [x for o in outs for x in o[2]]
        if op == "intersection":
            outs = [self.rewrite(obj, t, info, c, depth) for c in rw[1]]
            if all(o[0] == ALLOW for o in outs):
                return (
                    ALLOW,
                    [[{"kind": "intersection", "at": at, "all_of": [o[1][0] for o in outs]}]],
                    [],
                )
            failing = [(c, o) for c, o in zip(rw[1], outs, strict=True) if o[0] != ALLOW]
            code = CYCLE if any(o[0] == CYCLE for _, o in failing) else DENY
            return (
                code,
                [],
                [
                    {
                        "kind": "intersection_missing",
                        "at": at,
                        "missing": [_describe(obj, info.name, c) for c, _ in failing],
                        "reasons": [x for _, o in failing for x in o[2]],
                    }
                ],
            )
        base = self.rewrite(obj, t, info, rw[1], depth)
        if base[0] != ALLOW:
            return base
        sub = self.rewrite(obj, t, info, rw[2], depth)
        if sub[0] == ALLOW:
            return (
                DENY,
                [],
                [
                    {
                        "kind": "excluded",
                        "at": at,
                        "by": _describe(obj, info.name, rw[2]),
                        "paths": sub[1],
                    }
                ],
            )
        if sub[0] == CYCLE:
            return CYCLE, [], sub[2]
        step = {"kind": "but_not", "at": at, "excluded_by": _describe(obj, info.name, rw[2])}
        return ALLOW, [[step, *p] for p in base[1]], []

    def direct(self, obj: str, info: RelationInfo, depth: int) -> Out:
        r, v = self.r, self.view
        key = (obj, info.name)
        at = f"{obj}#{info.name}"
        paths: list[Path] = []
        reasons: list[dict[str, Any]] = []
        cyc = False
        plain = v.plain(key)
        if r.ukind in info.plain:
            if r.is_userset:
                if r.u in (v.usersets(key) or {}):
                    paths.append([{"kind": "direct", "tuple": f"{at}@{r.u}"}])
            elif r.u in set(values_of(plain)):
                paths.append([{"kind": "direct", "tuple": f"{at}@{r.u}"}])
        if r.uwkind and r.uwkind in info.plain and r.uw in set(values_of(plain)):
            paths.append([{"kind": "wildcard", "tuple": f"{at}@{r.uw}"}])
        followed: list[tuple[str, Edge, str | None]] = [
            (u, e, None) for u, e in (v.usersets(key) or {}).items() if e[2] in info.plain
        ]
        for u, e in (v.special(key) or {}).items():
            hit = u == r.u or (e[2] == r.uwkind and bool(r.uwkind))
            if not hit and not e[1]:
                continue
            if not info.allows(e[2], e[3]):
                continue
            tk = f"{at}@{u}"
            if e[5] is not None and e[5] <= r.now:
                reasons.append({"kind": "expired", "tuple": tk, "expired_at": _iso(e[5])})
                continue
            if e[3]:
                ok, why = self.condition(e, tk)
                if why is not None:
                    reasons.append(why)
                if not ok:
                    continue
            if hit:
                kind = "wildcard" if u.endswith(":*") else "direct"
                step: Step = {"kind": kind, "tuple": tk}
                if e[3]:
                    step["condition"] = e[3]
                paths.append([step])
            else:
                followed.append((u, e, e[3]))
        for u, e, cond in followed:
            ut = e[0].partition(":")[0]
            if e[1] not in self.model.types.get(ut, {}):
                continue
            code, sub, why2 = self.node(e[0], ut, e[1], depth + 1)
            if code == ALLOW:
                st: Step = {"kind": "userset", "at": at, "tuple": f"{at}@{u}"}
                if cond:
                    st["condition"] = cond
                paths.extend([st, *p] for p in sub)
            else:
                cyc = cyc or code == CYCLE
                reasons.extend(x for x in why2 if x["kind"] != "no_tuple")
        if paths:
            return ALLOW, paths[:MAX_PATHS], []
        entry: dict[str, Any] = {"kind": "no_tuple", "at": at, "user": r.u}
        if followed:
            entry["usersets_checked"] = sorted(u for u, _, _ in followed)
        return (CYCLE if cyc else DENY), [], [entry, *reasons]

    def ttu(
        self, obj: str, t: str, info: RelationInfo, tupleset: str, computed: str, depth: int
    ) -> Out:
        v = self.view
        ts = self.model.types[t][tupleset]
        key = (obj, tupleset)
        parents: list[tuple[str, str | None]] = [
            (p, None) for p in values_of(v.plain(key)) if p.partition(":")[0] in ts.plain
        ]
        reasons: list[dict[str, Any]] = []
        for p, e in (v.special(key) or {}).items():
            if e[1] or not ts.allows(e[2], e[3]):
                continue
            tk = f"{obj}#{tupleset}@{p}"
            if e[5] is not None and e[5] <= self.r.now:
                reasons.append({"kind": "expired", "tuple": tk, "expired_at": _iso(e[5])})
                continue
            if e[3]:
                ok, why = self.condition(e, tk)
                if why is not None:
                    reasons.append(why)
                if not ok:
                    continue
            parents.append((p, e[3]))
        paths: list[Path] = []
        cyc = False
        for p, cond in parents:
            pt = p.partition(":")[0]
            if p.endswith(":*") or computed not in self.model.types.get(pt, {}):
                continue
            code, sub, sub_reasons = self.node(p, pt, computed, depth + 1)
            if code == ALLOW:
                step: Step = {
                    "kind": "tuple_to_userset",
                    "at": f"{obj}#{info.name}",
                    "tuple": f"{obj}#{tupleset}@{p}",
                    "to": f"{p}#{computed}",
                }
                if cond:
                    step["condition"] = cond
                paths.extend([step, *q] for q in sub)
            else:
                cyc = cyc or code == CYCLE
                reasons.extend(sub_reasons)
        if paths:
            return ALLOW, paths[:MAX_PATHS], []
        if not parents:
            reasons.insert(
                0, {"kind": "no_tuple", "at": f"{obj}#{tupleset}", "user": self.r.u, "parent": True}
            )
        return (CYCLE if cyc else DENY), [], reasons

    def condition(self, e: Edge, tk: str) -> tuple[bool, dict[str, Any] | None]:
        c = self.r.conds.get(e[3]) if e[3] else None
        if c is None:
            return False, {
                "kind": "condition_error",
                "tuple": tk,
                "condition": e[3],
                "message": "undefined condition",
            }
        try:
            ok = bool(c.evaluate(e[4], self.r.ctx, tuple_key=tk))
        except KeyplaneError as exc:
            return False, {
                "kind": "condition_error",
                "tuple": tk,
                "condition": e[3],
                "message": exc.message,
            }
        if ok:
            return True, None
        params: dict[str, Any] = {}
        for name in self.model.condition_params.get(e[3] or "", ()):
            if e[4] and name in e[4]:
                params[name] = e[4][name]
            elif self.r.ctx and name in self.r.ctx:
                params[name] = self.r.ctx[name]
        return False, {"kind": "condition_false", "tuple": tk, "condition": e[3], "params": params}


def _describe(obj: str, rel: str, rw: Rewrite) -> str:
    op = rw[0]
    if op == "this":
        return f"{obj}#{rel} (direct)"
    if op == "computed":
        return f"{obj}#{rw[1]}"
    if op == "ttu":
        return f"{rw[2]} from {obj}#{rw[1]}"
    if op == "difference":
        return f"({_describe(obj, rel, rw[1])} but not {_describe(obj, rel, rw[2])})"
    sep = " or " if op == "union" else " and "
    return "(" + sep.join(_describe(obj, rel, c) for c in rw[1]) + ")"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")

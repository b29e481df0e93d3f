"""Expand — one level of a relation's userset tree, in OpenFGA's ``UsersetTree`` JSON shape.

``expand(document:1, viewer)`` answers what the rewrite of ``document#viewer`` is made of
*for this object*: the users directly related (``leaf.users``), the computed usersets it
points to (``leaf.computed``), the tuple-to-userset hops with the usersets they reach
(``leaf.tupleToUserset``), and union / intersection / difference nodes around them. Like
the reference it does not recurse: a client expands the usersets it finds if it wants to.
Like the reference, Expand does not evaluate conditions: a conditional tuple is listed
when it fits the model (the ``context`` argument is accepted for symmetry and unused).
Tuples that do not fit the model version, and grants that have expired, are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.graph.check import Req
from keyplane.graph.compiled import CompiledModel, RelationInfo, Rewrite
from keyplane.graph.index import Edge, View, values_of
from keyplane.graph.listing import _kind_of
from keyplane.graph.tuples import Tuple

__all__ = ["expand"]


def expand(
    engine: Any,
    obj: str,
    relation: str,
    *,
    context: Mapping[str, Any] | None = None,
    contextual_tuples: Sequence[Tuple] = (),
) -> dict[str, Any]:
    model: CompiledModel = engine.model
    # validated as check validates (OpenFGA's expand: ValidateObject / ValidateRelation, 2000)
    otype = engine._object_relation(obj, relation)
    info = model.relation(otype, relation)
    view: View = engine.view(contextual_tuples)
    req = Req(
        "-:-",
        "-",
        "-",
        False,
        view,
        context,
        engine.clock.now(),
        model.conditions,
        engine.max_depth,
    )
    root = _node(model, view, req, obj, otype, info, info.rewrite)
    return {"tree": {"root": root}}


def _node(
    model: CompiledModel,
    view: View,
    req: Req,
    obj: str,
    otype: str,
    info: RelationInfo,
    rw: Rewrite,
) -> dict[str, Any]:
    name = f"{obj}#{info.name}"
    op = rw[0]
    if op == "this":
        return {"name": name, "leaf": {"users": {"users": _direct_users(view, req, obj, info)}}}
    if op == "computed":
        return {"name": name, "leaf": {"computed": {"userset": f"{obj}#{rw[1]}"}}}
    if op == "ttu":
        ts = model.types[otype][rw[1]]
        key = (obj, rw[1])
        parents = [p for p in values_of(view.plain(key)) if _kind_of(p) in ts.plain]
        sp = view.special(key)
        for p, e in (sp or {}).items():
            if not e[1] and _counts(ts, e, req):
                parents.append(p)
        computed = [
            {"userset": f"{p}#{rw[2]}"}
            for p in sorted(parents)
            if rw[2] in model.types.get(p.partition(":")[0], {}) and not p.endswith(":*")
        ]
        return {
            "name": name,
            "leaf": {"tupleToUserset": {"tupleset": f"{obj}#{rw[1]}", "computed": computed}},
        }
    if op in ("union", "intersection"):
        nodes = [_node(model, view, req, obj, otype, info, c) for c in rw[1]]
        return {"name": name, op: {"nodes": nodes}}
    return {
        "name": name,
        "difference": {
            "base": _node(model, view, req, obj, otype, info, rw[1]),
            "subtract": _node(model, view, req, obj, otype, info, rw[2]),
        },
    }


def _direct_users(view: View, req: Req, obj: str, info: RelationInfo) -> list[str]:
    key = (obj, info.name)
    out = {u for u in values_of(view.plain(key)) if _kind_of(u) in info.plain}
    out.update(u for u, e in (view.usersets(key) or {}).items() if e[2] in info.plain)
    for u, e in (view.special(key) or {}).items():
        if _counts(info, e, req):
            out.add(u)
    return sorted(out)


def _counts(info: RelationInfo, e: Edge, req: Req) -> bool:
    """A conditional/expiring edge is listed if it fits the model and has not expired."""
    return (e[5] is None or e[5] > req.now) and info.allows(e[2], e[3])

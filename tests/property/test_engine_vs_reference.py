"""Property test: the engine agrees with a naive reference evaluator on random small graphs.

Models: ``user`` plus 1-3 types ``t0..t2``; each has 1-3 relations ``r0..r2`` and maybe a
tupleset ``parent``. Every ``r_i`` is directly assignable (``user``, ``user:*``, other
types, usersets ``t_j#r_m``) and may add ``or`` / ``and`` / ``but not`` over computed
usersets and tuple-to-usersets. To stay within what OpenFGA accepts (every relation has an
entrypoint; no intersection or exclusion operand that can only be reached through itself),
computed usersets point to lower-numbered relations, and operands of ``and`` / ``but not``
use tuple-to-userset only towards lower-numbered types; ``or`` operands may point anywhere,
so tuples can make cycles (nested groups, recursive parents). Generated models must also
pass the language validator.

Tuples: up to 14 random tuples that fit the model; a random subset is sent as contextual
tuples instead of being written. Compared: check for every (typed user, object, relation),
list objects for every (user, type, relation) and list users for every (object, relation,
filter) with type and userset filters.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from reference import Reference

from keyplane.errors import ResolutionTooComplexError
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.engine import Engine
from keyplane.graph.index import TupleIndex
from keyplane.graph.language import validate_model
from keyplane.graph.tuples import Tuple

USERS = ["user:anne", "user:bob", "user:carl"]
IDS = ["1", "2"]


def _direct(restrictions: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    meta: list[dict[str, Any]] = []
    for r in restrictions:
        if r.endswith(":*"):
            meta.append({"type": r[:-2], "wildcard": {}})
        elif "#" in r:
            t, rel = r.split("#")
            meta.append({"type": t, "relation": rel})
        else:
            meta.append({"type": r})
    return {"this": {}}, meta


@st.composite
def models(draw: st.DrawFn) -> dict[str, Any]:
    ntypes = draw(st.integers(1, 3))
    types = [f"t{i}" for i in range(ntypes)]
    nrels = {t: draw(st.integers(1, 3)) for t in types}
    has_parent = {t: draw(st.booleans()) for t in types}
    rels_of = {t: [f"r{i}" for i in range(nrels[t])] for t in types}
    parent_types = {
        t: draw(st.lists(st.sampled_from(types), min_size=1, max_size=2, unique=True))
        for t in types
        if has_parent[t]
    }
    plain_choices = ["user", "user:*", *types]
    userset_choices = [f"{t}#{r}" for t in types for r in rels_of[t]]
    tdefs: list[dict[str, Any]] = [{"type": "user"}]
    for k, t in enumerate(types):
        relations: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        if has_parent[t]:
            relations["parent"], meta_p = _direct(parent_types[t])
            meta["parent"] = {"directly_related_user_types": meta_p}

        def ttu_leaves(safe: bool, t: str = t, k: int = k) -> list[dict[str, Any]]:
            if not has_parent[t]:
                return []
            pts = parent_types[t]
            if safe and any(types.index(p) >= k for p in pts):
                return []
            names = sorted({r for p in pts for r in rels_of[p]})
            return [
                {
                    "tupleToUserset": {
                        "tupleset": {"relation": "parent"},
                        "computedUserset": {"relation": n},
                    }
                }
                for n in names
            ]

        for i, r in enumerate(rels_of[t]):
            plain = draw(
                st.lists(st.sampled_from(plain_choices), min_size=1, max_size=2, unique=True)
            )
            usersets = draw(st.lists(st.sampled_from(userset_choices), max_size=1))
            this, meta_r = _direct(plain + usersets)
            meta[r] = {"directly_related_user_types": meta_r}
            computed = [{"computedUserset": {"relation": f"r{j}"}} for j in range(i)]
            safe = computed + ttu_leaves(True)
            anywhere = computed + ttu_leaves(False)
            form = draw(st.sampled_from(["direct", "or", "and", "but not"]))
            pool = anywhere if form == "or" else safe
            if form == "direct" or not pool:
                relations[r] = this
                continue
            operand = draw(st.sampled_from(pool))
            if len(safe) >= 2 and draw(st.booleans()):
                op = draw(st.sampled_from(["union", "intersection", "difference"]))
                a, b = draw(st.lists(st.sampled_from(safe), min_size=2, max_size=2))
                operand = (
                    {"difference": {"base": a, "subtract": b}}
                    if op == "difference"
                    else {op: {"child": [a, b]}}
                )
            if form == "but not":
                relations[r] = {"difference": {"base": this, "subtract": operand}}
            else:
                key = "union" if form == "or" else "intersection"
                relations[r] = {key: {"child": [this, operand]}}
        tdefs.append({"type": t, "relations": relations, "metadata": {"relations": meta}})
    return {"schema_version": "1.1", "type_definitions": tdefs}


def _restrictions(model: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    out = []
    for td in model["type_definitions"]:
        for rel, m in ((td.get("metadata") or {}).get("relations") or {}).items():
            kinds = []
            for r in m["directly_related_user_types"]:
                if r.get("relation"):
                    kinds.append(f"{r['type']}#{r['relation']}")
                elif "wildcard" in r:
                    kinds.append(f"{r['type']}:*")
                else:
                    kinds.append(r["type"])
            out.append((td["type"], rel, kinds))
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], list[Tuple], list[bool]]:
    model = draw(models())
    slots = _restrictions(model)
    tuples: dict[tuple[str, str, str], Tuple] = {}
    for _ in range(draw(st.integers(0, 14))):
        otype, rel, kinds = draw(st.sampled_from(slots))
        kind = draw(st.sampled_from(kinds))
        if kind == "user":
            user = draw(st.sampled_from(USERS))
        elif kind.endswith(":*"):
            user = kind
        elif "#" in kind:
            t, r = kind.split("#")
            user = f"{t}:{draw(st.sampled_from(IDS))}#{r}"
        else:
            user = f"{kind}:{draw(st.sampled_from(IDS))}"
        obj = f"{otype}:{draw(st.sampled_from(IDS))}"
        tuples[(obj, rel, user)] = Tuple(obj, rel, user)
    contextual = [draw(st.booleans()) and draw(st.booleans()) for _ in tuples]
    return model, list(tuples.values()), contextual


def _agree(model: dict[str, Any], tuples: list[Tuple], contextual: list[bool]) -> None:
    if validate_model(model):
        reject()
    compiled = CompiledModel.compile(model)
    index = TupleIndex()
    stored = [t for t, c in zip(tuples, contextual, strict=True) if not c]
    ctx = [t for t, c in zip(tuples, contextual, strict=True) if c]
    for t in tuples:
        compiled.validate_tuple(t)
    index.apply(stored, ())
    engine = Engine(compiled, index)
    ref = Reference(model, [t.key for t in tuples])
    types = [td["type"] for td in model["type_definitions"] if td["type"] != "user"]
    rels = {
        td["type"]: sorted(td.get("relations") or {})
        for td in model["type_definitions"]
        if td["type"] != "user"
    }
    objects = {t: [f"{t}:{i}" for i in IDS] for t in types}
    typed_users = [*USERS, "user:dan"] + [o for t in types for o in objects[t]]
    try:
        for t in types:
            for rel in rels[t]:
                for user in typed_users:
                    got_objects = set(
                        engine.list_objects(user, rel, t, context=None, contextual_tuples=ctx)
                    )
                    want_objects = ref.list_objects(user, rel, objects[t])
                    assert got_objects == want_objects, ("list_objects", user, rel, t)
                    for o in objects[t]:
                        got = engine.check(user, rel, o, contextual_tuples=ctx)
                        assert got == ref.check(user, rel, o), ("check", user, rel, o)
                for o in objects[t]:
                    for ftype in ["user", *types]:
                        cands = (
                            ["user:*", *USERS, "user:dan"] if ftype == "user" else objects[ftype]
                        )
                        _compare_users(engine, ref, o, rel, [ftype], cands, ctx)
                        for frel in rels[ftype] if ftype != "user" else []:
                            us = [f"{x}#{frel}" for x in objects[ftype]]
                            _compare_users(engine, ref, o, rel, [f"{ftype}#{frel}"], us, ctx)
    except ResolutionTooComplexError:
        reject()


def _compare_users(
    engine: Engine,
    ref: Reference,
    obj: str,
    rel: str,
    filters: list[str],
    candidates: list[str],
    ctx: list[Tuple],
) -> None:
    got = set(engine.list_users(obj, rel, filters, context=None, contextual_tuples=ctx))
    want, undecided = ref.list_users(obj, rel, candidates)
    got -= undecided

    assert got == want, ("list_users", obj, rel, filters)


COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}


@settings(max_examples=150, **COMMON)
@given(scenarios())
def test_engine_agrees_with_reference(scenario: tuple[Any, ...]) -> None:
    _agree(*scenario)


@pytest.mark.slow
@settings(max_examples=3000, **COMMON)
@given(scenarios())
def test_engine_agrees_with_reference_many(scenario: tuple[Any, ...]) -> None:
    _agree(*scenario)

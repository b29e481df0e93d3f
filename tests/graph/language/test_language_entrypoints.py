"""Entry-point verdicts: our polynomial algorithm against the reference's search.

``reference`` below transcribes ``hasEntryPointOrLoop`` of openfga/language
(``pkg/js/validator/validate-dsl.ts``) line for line: an obviously-faithful, exponential
depth-first search. Hypothesis builds small random models (cycles, nested operators, usersets,
tuple-to-userset) and every relation must get the same (entry, loop) verdict from both.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from keyplane.graph.language.entrypoints import EntryPoints
from keyplane.graph.language.usersets import TypeIndex, decode_restriction, leaf

Visited = dict[str, dict[str, bool]]
TYPES = ["a", "b"]
RELATIONS = ["r0", "r1", "r2"]


def reference(
    index: TypeIndex, type_name: str, relation: str, rewrite: dict[str, Any], visited_in: Visited
) -> tuple[bool, bool]:
    visited = copy.deepcopy(visited_in)
    visited.setdefault(type_name, {})[relation] = True
    relations = index.relations(type_name)
    if relation not in relations:
        return False, False
    if rewrite.get("this") is not None:
        for item in index.restrictions(type_name, relation):
            target_type, target_rel, wildcard, _ = decode_restriction(item)
            if not target_rel or wildcard:
                return True, False
            target = index.relations(target_type).get(target_rel)
            if target is None:
                return False, False
            if visited.get(target_type, {}).get(target_rel):
                continue
            if reference(index, target_type, target_rel, target, visited)[0]:
                return True, False
        return False, False
    if rewrite.get("computedUserset") is not None:
        computed = rewrite["computedUserset"]["relation"]
        if computed not in relations:
            return False, False
        if visited[type_name].get(computed):
            return False, True
        return reference(index, type_name, computed, relations[computed], visited)
    if rewrite.get("tupleToUserset") is not None:
        ttu = leaf(rewrite)
        assert ttu.tupleset and ttu.target
        if ttu.tupleset not in relations:
            return False, False
        for item in index.restrictions(type_name, ttu.tupleset):
            target_type = decode_restriction(item)[0]
            target = index.relations(target_type).get(ttu.target)
            if target is None or visited.get(target_type, {}).get(ttu.target):
                continue
            if reference(index, target_type, ttu.target, target, visited)[0]:
                return True, False
        return False, False
    if rewrite.get("union") is not None:
        any_loop = False
        for child in rewrite["union"]["child"]:
            entry, loop = reference(index, type_name, relation, child, visited)
            if entry:
                return True, False
            any_loop = any_loop or loop
        return False, any_loop
    if rewrite.get("intersection") is not None:
        for child in rewrite["intersection"]["child"]:
            entry, loop = reference(index, type_name, relation, child, visited)
            if not entry:
                return False, loop
        return True, False
    diff = rewrite["difference"]
    for part in (diff["base"], diff["subtract"]):
        entry, loop = reference(index, type_name, relation, part, visited_in)
        if not entry:
            return False, loop
    return True, False


def _leaves(relations: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    computed = st.sampled_from(relations).map(lambda r: {"computedUserset": {"relation": r}})
    ttu = st.tuples(st.sampled_from(relations), st.sampled_from(relations)).map(
        lambda p: {
            "tupleToUserset": {
                "computedUserset": {"relation": p[0]},
                "tupleset": {"relation": p[1]},
            }
        }
    )
    return st.one_of(st.just({"this": {}}), computed, ttu)


def _rewrites(relations: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        group = st.lists(inner, min_size=2, max_size=3)
        return st.one_of(
            group.map(lambda c: {"union": {"child": c}}),
            group.map(lambda c: {"intersection": {"child": c}}),
            st.tuples(inner, inner).map(lambda p: {"difference": {"base": p[0], "subtract": p[1]}}),
        )

    return st.recursive(_leaves(relations), extend, max_leaves=4)


_RESTRICTIONS = st.lists(
    st.one_of(
        st.just({"type": "user"}),
        st.just({"type": "user", "wildcard": {}}),
        st.tuples(st.sampled_from(TYPES), st.sampled_from(RELATIONS)).map(
            lambda p: {"type": p[0], "relation": p[1]}
        ),
        st.sampled_from(TYPES).map(lambda t: {"type": t}),
    ),
    max_size=2,
)


@st.composite
def models(draw: st.DrawFn) -> dict[str, Any]:
    type_defs: list[dict[str, Any]] = [{"type": "user"}]
    for name in TYPES:
        relations = {r: draw(_rewrites(RELATIONS)) for r in RELATIONS}
        meta = {r: {"directly_related_user_types": draw(_RESTRICTIONS)} for r in RELATIONS}
        type_defs.append({"type": name, "relations": relations, "metadata": {"relations": meta}})
    return {"schema_version": "1.1", "type_definitions": type_defs}


@settings(max_examples=150, deadline=None)
@given(models())
def test_entry_points_match_the_reference(model: dict[str, Any]) -> None:
    index = TypeIndex(model)
    ours = EntryPoints(index)
    for type_name in TYPES:
        for relation, rewrite in index.relations(type_name).items():
            expected = reference(index, type_name, relation, rewrite, {})
            assert ours.check(type_name, relation) == expected, (type_name, relation)

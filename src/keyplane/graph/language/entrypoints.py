"""Entry points: can any tuple ever satisfy a relation, and is a cycle to blame if not?

A relation is *possible* when some chain of tuples can reach it: a direct assignment of a
plain type or wildcard is an entry point; ``[t#r]``, ``r`` and ``r from t`` are entry points
when what they point at is one; a union needs one operand with an entry point, an
intersection and a difference need all. A relation without an entry point is reported by
the validator as "an impossible relation", with "(potential loop)" when the search met a
relation already on its path (``define a: b``, ``define b: a``).

This follows ``hasEntryPointOrLoop`` of openfga/language (``pkg/js/validator/
validate-dsl.ts``) step for step — including which branches copy the visited set — since
the conformance cases pin its exact verdicts.
"""

from __future__ import annotations

import copy

from keyplane.graph.language.usersets import TypeIndex, Userset, decode_restriction, leaf

__all__ = ["has_entry_or_loop"]

Visited = dict[str, dict[str, bool]]


def has_entry_or_loop(
    index: TypeIndex, type_name: str, relation: str, rewrite: Userset, visited_in: Visited
) -> tuple[bool, bool]:
    """(has an entry point, met a loop) for ``rewrite``, part of ``type_name#relation``."""
    visited = copy.deepcopy(visited_in)
    visited.setdefault(type_name, {})[relation] = True
    relations = index.relations(type_name)
    if relation not in relations:
        return False, False
    if rewrite.get("this") is not None:
        return _direct(index, type_name, relation, visited), False
    if rewrite.get("computedUserset") is not None:
        computed = rewrite["computedUserset"].get("relation")
        if not computed or computed not in relations:
            return False, False
        if visited[type_name].get(computed):
            return False, True
        return has_entry_or_loop(index, type_name, computed, relations[computed], visited)
    if rewrite.get("tupleToUserset") is not None:
        return _tuple_to_userset(index, type_name, rewrite, visited), False
    if rewrite.get("union") is not None:
        any_loop = False
        for child in rewrite["union"].get("child") or []:
            entry, loop = has_entry_or_loop(index, type_name, relation, child, visited)
            if entry:
                return True, False
            any_loop = any_loop or loop
        return False, any_loop
    if rewrite.get("intersection") is not None:
        for child in rewrite["intersection"].get("child") or []:
            entry, loop = has_entry_or_loop(index, type_name, relation, child, visited)
            if not entry:
                return False, loop
        return True, False
    if rewrite.get("difference") is not None:
        diff = rewrite["difference"]
        for part in (diff.get("base") or {}, diff.get("subtract") or {}):
            # The reference starts both operands from the caller's visited set.
            entry, loop = has_entry_or_loop(index, type_name, relation, part, visited_in)
            if not entry:
                return False, loop
        return True, False
    return False, False


def _direct(index: TypeIndex, type_name: str, relation: str, visited: Visited) -> bool:
    for item in index.restrictions(type_name, relation):
        target_type, target_rel, wildcard, _ = decode_restriction(item)
        if not target_rel or wildcard:
            return True
        target = index.relations(target_type).get(target_rel)
        if target is None:
            return False
        if visited.get(target_type, {}).get(target_rel):
            continue
        if has_entry_or_loop(index, target_type, target_rel, target, visited)[0]:
            return True
    return False


def _tuple_to_userset(index: TypeIndex, type_name: str, rewrite: Userset, visited: Visited) -> bool:
    ttu = leaf(rewrite)
    if not ttu.tupleset or not ttu.target or ttu.tupleset not in index.relations(type_name):
        return False
    for item in index.restrictions(type_name, ttu.tupleset):
        target_type = decode_restriction(item)[0]
        target = index.relations(target_type).get(ttu.target)
        if target is None or visited.get(target_type, {}).get(ttu.target):
            continue
        if has_entry_or_loop(index, target_type, ttu.target, target, visited)[0]:
            return True
    return False

"""Entry points: can any tuple ever satisfy a relation, and is a cycle to blame if not?

A relation is *possible* when some chain of tuples can reach it: a direct assignment of a
plain type or wildcard is an entry point; ``[t#r]``, ``r`` and ``r from t`` are entry points
when what they point at is one; a union needs one operand with an entry point, an
intersection and a difference need all. A relation without an entry point is reported by
the validator as "an impossible relation", with "(potential loop)" when a cycle is the
cause (``define a: b``, ``define b: a``).

The reference (``hasEntryPointOrLoop`` in openfga/language ``pkg/js/validator/
validate-dsl.ts``) answers with a depth-first search that copies its visited set at every
step — exponential on cyclic models (14 relations that are unions of each other never
finish). We compute the same verdicts in polynomial time:

* *entry*: the least fixpoint of the rules above over all relations (a search that cuts
  cycles, as the reference's does, finds exactly the relations with a finite derivation);
* *loop*, for relations without entry: the reference's flag is set when its search meets a
  relation already on its path through ``computedUserset`` edges that carry the flag up:
  every operand of a union, the first operand without entry of an intersection, the base
  (or else the subtract) of a difference. Direct assignments and ``from`` never carry it.
  So the flag is "a cycle of such edges is reachable", found with one graph search.

``tests/graph/language/test_language_entrypoints.py`` checks both against a transcription of
the reference search on random models.
"""

from __future__ import annotations

from keyplane.graph.language.usersets import TypeIndex, Userset, decode_restriction, leaf

__all__ = ["EntryPoints"]

Node = tuple[str, str]


class EntryPoints:
    """Entry-point verdicts for every relation of a model (computed once, on creation)."""

    def __init__(self, index: TypeIndex) -> None:
        self.index = index
        self.entry: dict[Node, bool] = {}
        dependents: dict[Node, list[Node]] = {}
        nodes = [(t, r) for t in index.types for r in index.relations(t)]
        for node in nodes:
            self.entry[node] = False
            for dep in self._dependencies(node[0], node[1], self._rewrite(node)):
                dependents.setdefault(dep, []).append(node)
        # Worklist fixpoint: re-evaluate a relation only when something it uses gains entry.
        pending = list(nodes)
        while pending:
            node = pending.pop()
            if not self.entry[node] and self._has_entry(node[0], node[1], self._rewrite(node)):
                self.entry[node] = True
                pending.extend(dependents.get(node, ()))
        self._loop: dict[Node, bool] = {}

    def check(self, type_name: str, relation: str) -> tuple[bool, bool]:
        """(has an entry point, a loop is to blame) — the reference's verdict."""
        node = (type_name, relation)
        if self.entry.get(node, False):
            return True, False
        return False, self._reaches_cycle(node)

    # -- the fixpoint --------------------------------------------------------------------

    def _dependencies(self, type_name: str, relation: str, rewrite: Userset) -> list[Node]:
        """The relations whose verdict ``rewrite``'s verdict depends on."""
        if rewrite.get("this") is not None:
            out: list[Node] = []
            for item in self.index.restrictions(type_name, relation):
                target_type, target_rel, _, _ = decode_restriction(item)
                if target_rel:
                    out.append((target_type, target_rel))
            return out
        if rewrite.get("computedUserset") is not None:
            computed = rewrite["computedUserset"].get("relation")
            return [(type_name, computed)] if computed else []
        if rewrite.get("tupleToUserset") is not None:
            ttu = leaf(rewrite)
            if not ttu.tupleset or not ttu.target:
                return []
            return [
                (decode_restriction(item)[0], ttu.target)
                for item in self.index.restrictions(type_name, ttu.tupleset)
            ]
        children: list[Userset] = []
        for key in ("union", "intersection"):
            if rewrite.get(key) is not None:
                children = list(rewrite[key].get("child") or [])
        if rewrite.get("difference") is not None:
            diff = rewrite["difference"]
            children = [diff.get("base") or {}, diff.get("subtract") or {}]
        return [d for c in children for d in self._dependencies(type_name, relation, c)]

    def _rewrite(self, node: Node) -> Userset:
        return self.index.relations(node[0]).get(node[1]) or {}

    def _has_entry(self, type_name: str, relation: str, rewrite: Userset) -> bool:
        relations = self.index.relations(type_name)
        if rewrite.get("this") is not None:
            for item in self.index.restrictions(type_name, relation):
                target_type, target_rel, wildcard, _ = decode_restriction(item)
                if not target_rel or wildcard:
                    return True
                if target_rel not in self.index.relations(target_type):
                    return False
                if self.entry.get((target_type, target_rel), False):
                    return True
            return False
        if rewrite.get("computedUserset") is not None:
            computed = rewrite["computedUserset"].get("relation")
            return bool(computed) and self.entry.get((type_name, computed), False)
        if rewrite.get("tupleToUserset") is not None:
            ttu = leaf(rewrite)
            if not ttu.tupleset or not ttu.target or ttu.tupleset not in relations:
                return False
            return any(
                self.entry.get((decode_restriction(item)[0], ttu.target), False)
                for item in self.index.restrictions(type_name, ttu.tupleset)
            )
        if rewrite.get("union") is not None:
            return any(
                self._has_entry(type_name, relation, c) for c in rewrite["union"].get("child") or []
            )
        if rewrite.get("intersection") is not None:
            children = rewrite["intersection"].get("child") or []
            return all(self._has_entry(type_name, relation, c) for c in children)
        if rewrite.get("difference") is not None:
            diff = rewrite["difference"]
            return self._has_entry(type_name, relation, diff.get("base") or {}) and (
                self._has_entry(type_name, relation, diff.get("subtract") or {})
            )
        return False

    # -- the loop flag -------------------------------------------------------------------

    def _loop_edges(self, type_name: str, relation: str, rewrite: Userset) -> list[Node]:
        """``computedUserset`` targets through which the reference carries its loop flag."""
        if rewrite.get("computedUserset") is not None:
            computed = rewrite["computedUserset"].get("relation")
            if computed and computed in self.index.relations(type_name):
                return [(type_name, computed)]
            return []
        if rewrite.get("union") is not None:
            out: list[Node] = []
            for child in rewrite["union"].get("child") or []:
                out.extend(self._loop_edges(type_name, relation, child))
            return out
        if rewrite.get("intersection") is not None:
            for child in rewrite["intersection"].get("child") or []:
                if not self._has_entry(type_name, relation, child):
                    return self._loop_edges(type_name, relation, child)
            return []
        if rewrite.get("difference") is not None:
            diff = rewrite["difference"]
            for part in (diff.get("base") or {}, diff.get("subtract") or {}):
                if not self._has_entry(type_name, relation, part):
                    return self._loop_edges(type_name, relation, part)
        return []

    def _reaches_cycle(self, start: Node) -> bool:
        if start in self._loop:
            return self._loop[start]
        # Iterative DFS with colours: grey = on the current path.
        colour: dict[Node, int] = {}
        found = False
        stack: list[tuple[Node, list[Node]]] = [(start, self._edges(start))]
        colour[start] = 1
        while stack and not found:
            node, edges = stack[-1]
            if not edges:
                colour[node] = 2
                stack.pop()
                continue
            nxt = edges.pop()
            state = colour.get(nxt, 0)
            if state == 1 or self._loop.get(nxt):
                found = True
            elif state == 0:
                colour[nxt] = 1
                stack.append((nxt, self._edges(nxt)))
        self._loop[start] = found
        return found

    def _edges(self, node: Node) -> list[Node]:
        return [
            e for e in self._loop_edges(node[0], node[1], self._rewrite(node)) if not self.entry[e]
        ]

"""An obviously-correct, deliberately naive evaluator of OpenFGA models (no conditions).

It reads the model JSON and the tuples as given and recurses straight down the rewrite
definitions; nothing is indexed, cached or optimized.

Cycles follow OpenFGA's ``LocalChecker`` (``internal/graph/check.go``): revisiting an
``object#relation`` already on the path answers ``C`` — "not allowed, a cycle was
detected". A union keeps looking past it; an intersection answers its first operand that
is not ``T`` (operands in model order); an exclusion answers ``C`` when its subtract does,
``F`` when its subtract is ``T``. ``user == object#relation`` is ``T`` (self-defining). A direct relation whose only
userset is itself (``define member: [user, group#member]``) is answered for a plain user the
way OpenFGA's recursive strategy does: by walking the nested groups, where a loop ends the
walk without a cycle flag (OpenFGA's default strategy would flag it; the planner picks).

For list users each ``T`` also says whether it is *explicit*: reached through a tuple
naming this very user (or userset), rather than only through a typed wildcard. OpenFGA
lists ``user:*`` for a public relation, not every user it covers; an intersection lists a
user when every operand holds and one of them names the user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

T, C, F = "T", "C", "F"
Result = tuple[str, bool]  # (status, explicit)
_RANK = {(T, True): 3, (T, False): 2, (C, False): 1, (F, False): 0}


def _kind(user: str) -> str:
    head, _, rel = user.partition("#")
    typ, _, oid = head.partition(":")
    return f"{typ}#{rel}" if rel else (f"{typ}:*" if oid == "*" else typ)


def _best(results: Iterable[Result]) -> Result:
    return max(results, key=lambda r: _RANK[r], default=(F, False))


class Reference:
    def __init__(self, model: Mapping[str, Any], tuples: Iterable[tuple[str, str, str]]) -> None:
        self.rewrites: dict[tuple[str, str], Any] = {}
        allowed: dict[tuple[str, str], set[str]] = {}
        for td in model["type_definitions"]:
            meta = (td.get("metadata") or {}).get("relations") or {}
            for rel, rw in (td.get("relations") or {}).items():
                self.rewrites[(td["type"], rel)] = rw
                kinds = allowed[(td["type"], rel)] = set()
                for r in (meta.get(rel) or {}).get("directly_related_user_types") or []:
                    if r.get("relation"):
                        kinds.add(f"{r['type']}#{r['relation']}")
                    else:
                        kinds.add(f"{r['type']}:*" if "wildcard" in r else r["type"])
        # direct-only relations whose only userset is themselves (``[user, group#member]``)
        self.recursive = {
            (t, r)
            for (t, r), kinds in allowed.items()
            if self.rewrites[(t, r)] == {"this": {}}
            and any("#" in k for k in kinds)
            and all(k == f"{t}#{r}" for k in kinds if "#" in k)
        }
        self.saw_cycle = False
        self.edges: dict[tuple[str, str], list[str]] = {}
        for obj, rel, user in tuples:  # only tuples that fit the model count
            if _kind(user) in allowed.get((obj.split(":")[0], rel), set()):
                self.edges.setdefault((obj, rel), []).append(user)

    def value(self, user: str, obj: str, rel: str, path: frozenset[Any] = frozenset()) -> Result:
        if (obj, rel) in path:
            self.saw_cycle = True
            return (C, False)
        if user == f"{obj}#{rel}":
            return (T, True)
        rw = self.rewrites.get((obj.split(":")[0], rel))
        if rw is None:
            return (F, False)
        if "#" not in user and (obj.split(":")[0], rel) in self.recursive:
            return self._reach(user, obj, rel)
        return self._eval(user, obj, rel, rw, path | {(obj, rel)})

    def _reach(self, user: str, obj: str, rel: str) -> Result:
        """OpenFGA's recursive strategy for ``define member: [user, group#member]``: walk
        the nested groups; a loop just ends the walk (no cycle flag)."""
        best, seen, todo = (F, False), {obj}, [obj]
        while todo:
            for u in self.edges.get((todo.pop(), rel), []):
                if u == user:
                    return (T, True)
                if u.endswith(":*") and user.split(":")[0] == u[:-2] and user != u:
                    best = (T, False)
                elif "#" in u and u.partition("#")[0] not in seen:
                    seen.add(u.partition("#")[0])
                    todo.append(u.partition("#")[0])
        return best

    def _eval(self, user: str, obj: str, rel: str, rw: Mapping[str, Any], path: Any) -> Result:
        if "this" in rw:
            found: list[Result] = []
            for u in self.edges.get((obj, rel), []):
                if u == user:
                    return (T, True)
                if u.endswith(":*") and "#" not in user and not user.endswith(":*"):
                    if user.split(":")[0] == u[:-2]:
                        found.append((T, False))
                elif "#" in u:
                    uobj, _, urel = u.partition("#")
                    found.append(self.value(user, uobj, urel, path))
            return _best(found)
        if "computedUserset" in rw:
            return self.value(user, obj, rw["computedUserset"]["relation"], path)
        if "tupleToUserset" in rw:
            ttu = rw["tupleToUserset"]
            parents = self.edges.get((obj, ttu["tupleset"]["relation"]), [])
            return _best(
                self.value(user, p, ttu["computedUserset"]["relation"], path)
                for p in parents
                if "#" not in p and not p.endswith(":*")
            )
        if "union" in rw:
            return _best(self._eval(user, obj, rel, c, path) for c in rw["union"]["child"])
        if "intersection" in rw:
            results = [self._eval(user, obj, rel, c, path) for c in rw["intersection"]["child"]]
            for r in results:
                if r[0] != T:
                    return r
            return (T, any(explicit for _, explicit in results))
        if "difference" in rw:
            base = self._eval(user, obj, rel, rw["difference"]["base"], path)
            if base[0] != T:
                return base
            sub = self._eval(user, obj, rel, rw["difference"]["subtract"], path)
            return sub if sub[0] == C else ((F, False) if sub[0] == T else base)
        raise ValueError(f"unknown rewrite {rw}")

    def check(self, user: str, relation: str, obj: str) -> bool:
        return self.value(user, obj, relation)[0] == T

    def list_objects(self, user: str, relation: str, candidates: Iterable[str]) -> set[str]:
        return {o for o in candidates if self.check(user, relation, o)}

    def list_users(
        self, obj: str, relation: str, candidates: Iterable[str]
    ) -> tuple[set[str], set[str]]:
        """(listed, undecided): a candidate whose answer met a cycle is undecided, because
        OpenFGA's ListUsers handles cycles its own way (an exclusion whose subtract loops
        lists nothing; a loop in a base is just skipped) and can disagree with its Check."""
        listed, undecided = set(), set()
        public: dict[str, bool] = {}
        for u in candidates:
            self.saw_cycle = False
            status, explicit = self.value(u, obj, relation)
            if status == T and not explicit and "#" not in u and not u.endswith(":*"):
                # granted only through a wildcard: listed by name exactly when the wildcard
                # itself is not granted (an exclusion spared this user, as OpenFGA's newer
                # ListUsers reports users with an excluded wildcard but no relationship)
                typ = u.split(":")[0]
                if typ not in public:
                    public[typ] = self.value(f"{typ}:*", obj, relation)[0] == T
                explicit = not public[typ]
            if (status, explicit) == (T, True):
                listed.add(u)
            if self.saw_cycle:
                undecided.add(u)
        return listed - undecided, undecided

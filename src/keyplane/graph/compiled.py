"""A compiled authorization model: OpenFGA schema 1.1 JSON turned into lookup tables.

:class:`CompiledModel` is built once per model version and is immutable afterwards. It
holds, for every ``(type, relation)``:

* the rewrite as a small normalized tree (:data:`Rewrite`): ``("this",)``,
  ``("computed", rel)``, ``("ttu", tupleset, rel)``, ``("union", children)``,
  ``("intersection", children)``, ``("difference", base, subtract)``;
* its type restrictions (``directly_related_user_types``) as sets of *kinds*: ``"user"``
  (an object), ``"user:*"`` (the typed wildcard), ``"group#member"`` (a userset), each
  allowed either unconditionally (:attr:`RelationInfo.plain`) or under named conditions
  (:attr:`RelationInfo.conditional`).

The kind sets are what the engine consults on the hot path to ignore tuples that do not
fit *this* model version (tuples are shared by every version of a store's model), exactly
like OpenFGA's ``validation.ValidateTupleForRead`` filter: a tuple counts only if its user
kind is allowed with the tuple's condition (or without one).

:meth:`CompiledModel.validate_tuple` is OpenFGA's ``ValidateTupleForWrite``, used for writes
and contextual tuples. :meth:`CompiledModel.compile` raises :class:`InvalidModelError` on
models that are structurally broken (unknown relations in rewrites, unknown types in
restrictions, ...); full language-level validation belongs to ``keyplane.graph.language``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import (
    InvalidModelError,
    InvalidTupleError,
    ModelIssue,
    RelationNotFoundError,
    TypeNotFoundError,
)
from keyplane.graph.tuples import Tuple, split_object, split_user, validate_syntax

__all__ = ["CompiledModel", "RelationInfo", "Rewrite", "user_kind"]

# ("this",) | ("computed", rel) | ("ttu", tupleset, rel) | ("union", tuple[Rewrite, ...])
# | ("intersection", tuple[Rewrite, ...]) | ("difference", base, subtract)
Rewrite = tuple[Any, ...]

_intern = sys.intern


def user_kind(user: str) -> str:
    """The restriction kind a tuple's user falls under: ``user``, ``user:*`` or ``group#member``."""
    head, _, rel = user.partition("#")
    typ, _, oid = head.partition(":")
    if rel:
        return f"{typ}#{rel}"
    if oid == "*":
        return f"{typ}:*"
    return typ


@dataclass(slots=True)
class RelationInfo:
    """Everything the engine needs to know about one relation of one type."""

    type: str
    name: str
    rewrite: Rewrite
    # kinds allowed without a condition ("user", "user:*", "group#member")
    plain: frozenset[str] = frozenset()
    # kind -> names of conditions it is allowed with
    conditional: dict[str, frozenset[str]] = field(default_factory=dict)
    # raw restrictions, in model order, for list users / explain / expand
    restrictions: tuple[Mapping[str, Any], ...] = ()
    is_tupleset: bool = False

    @property
    def directly_assignable(self) -> bool:
        return bool(self.plain or self.conditional)

    def allows(self, kind: str, condition: str | None) -> bool:
        if not condition:
            return kind in self.plain
        conds = self.conditional.get(kind)
        return conds is not None and condition in conds


class CompiledModel:
    """An immutable, validated view of one authorization model version."""

    def __init__(
        self,
        model: Mapping[str, Any],
        relations: dict[str, dict[str, RelationInfo]],
        conditions: dict[str, Any],
        model_id: str,
    ) -> None:
        self.model = model
        self.model_id = model_id
        #: type -> relation -> info; every type of the model is a key (even without relations)
        self.types = relations
        #: condition name -> CompiledCondition (keyplane.graph.conditions)
        self.conditions = conditions
        self.condition_params: dict[str, frozenset[str]] = {
            name: frozenset(((c or {}).get("parameters") or {}).keys())
            for name, c in (model.get("conditions") or {}).items()
        }
        self._engine_cache: Any = None  # compiled check closures, built by keyplane.graph.check
        self._reverse_plan: Any = None  # list-objects plan, built by keyplane.graph.listing

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def compile(cls, model: Mapping[str, Any], *, model_id: str | None = None) -> CompiledModel:
        """Compile an OpenFGA model dict (protojson shape); raises InvalidModelError."""
        issues: list[ModelIssue] = []

        def bad(msg: str, **meta: Any) -> None:
            issues.append(ModelIssue(msg, error_type="invalid_model", metadata=meta))

        if not isinstance(model, Mapping):
            raise InvalidModelError("the model must be a JSON object")
        schema = model.get("schema_version")
        if schema != "1.1":
            raise InvalidModelError(
                f"unsupported schema version {schema!r}: expected '1.1'",
                errors=[ModelIssue("unsupported schema version", error_type="schema_version")],
            )
        tdefs = model.get("type_definitions")
        if not isinstance(tdefs, list):
            raise InvalidModelError("the model has no 'type_definitions' list")
        raw_conditions = model.get("conditions") or {}
        types: dict[str, dict[str, RelationInfo]] = {}
        raw_by_type: dict[str, Mapping[str, Any]] = {}
        for td in tdefs:
            if not isinstance(td, Mapping) or not isinstance(td.get("type"), str):
                bad("a type definition has no 'type' name")
                continue
            tname = _intern(td["type"])
            if tname in types:
                bad(f"the type '{tname}' is defined more than once", type=tname)
                continue
            types[tname] = {}
            raw_by_type[tname] = td
        # first pass: relations and restrictions
        for tname, td in raw_by_type.items():
            rels = td.get("relations") or {}
            meta = ((td.get("metadata") or {}).get("relations")) or {}
            for rname, rw in rels.items():
                rname = _intern(rname)
                try:
                    rewrite = _normalize(rw)
                except ValueError as exc:
                    bad(f"relation '{tname}#{rname}': {exc}", type=tname, relation=rname)
                    continue
                restr = tuple((meta.get(rname) or {}).get("directly_related_user_types") or ())
                info = RelationInfo(tname, rname, rewrite, restrictions=restr)
                plain: set[str] = set()
                cond: dict[str, set[str]] = {}
                for r in restr:
                    rt = r.get("type")
                    if rt not in types:
                        bad(f"'{tname}#{rname}' allows the unknown type '{rt}'", type=tname)
                        continue
                    if r.get("relation"):
                        kind = f"{rt}#{r['relation']}"
                    elif r.get("wildcard") is not None:
                        kind = f"{rt}:*"
                    else:
                        kind = str(rt)
                    kind = _intern(kind)
                    cname = r.get("condition") or ""
                    if cname:
                        if cname not in raw_conditions:
                            bad(f"'{tname}#{rname}' names the unknown condition '{cname}'")
                        cond.setdefault(kind, set()).add(cname)
                    else:
                        plain.add(kind)
                info.plain = frozenset(plain)
                info.conditional = {k: frozenset(v) for k, v in cond.items()}
                types[tname][rname] = info
        # second pass: references inside rewrites and restrictions
        for tname, rels in types.items():
            for info in rels.values():
                for r in info.restrictions:
                    rel = r.get("relation")
                    rt = r.get("type")
                    if rel and rt in types and rel not in types[rt]:
                        bad(f"'{tname}#{info.name}' allows the unknown relation '{rt}#{rel}'")
                if _has_this(info.rewrite) and not info.restrictions:
                    bad(f"'{tname}#{info.name}' is directly assignable but allows no type")
                for node in _walk(info.rewrite):
                    if node[0] == "computed" and node[1] not in rels:
                        bad(f"'{tname}#{info.name}' refers to the undefined relation '{node[1]}'")
                    elif node[0] == "ttu":
                        ts = rels.get(node[1])
                        if ts is None:
                            bad(f"'{tname}#{info.name}' uses the undefined tupleset '{node[1]}'")
                            continue
                        ts.is_tupleset = True
                        if ts.rewrite != ("this",):
                            bad(f"the tupleset '{tname}#{node[1]}' must be directly assignable")
        if issues:
            raise InvalidModelError(
                issues[0].message if len(issues) == 1 else f"{len(issues)} errors in the model",
                errors=issues,
            )
        conditions: dict[str, Any] = {}
        if raw_conditions:
            from keyplane.graph.conditions import compile_conditions

            conditions = dict(compile_conditions(raw_conditions))
        if model_id is None:
            digest = hashlib.sha256(json.dumps(model, sort_keys=True, default=str).encode())
            model_id = digest.hexdigest()[:26]
        return cls(model, types, conditions, model_id)

    # -- lookups ---------------------------------------------------------------------------

    def has_type(self, type_name: str) -> bool:
        return type_name in self.types

    def relation(self, type_name: str, relation: str) -> RelationInfo:
        """The relation's info; raises TypeNotFoundError / RelationNotFoundError."""
        rels = self.types.get(type_name)
        if rels is None:
            raise TypeNotFoundError(f"type '{type_name}' not found", details={"type": type_name})
        info = rels.get(relation)
        if info is None:
            raise RelationNotFoundError(
                f"relation '{type_name}#{relation}' not found",
                details={"type": type_name, "relation": relation},
            )
        return info

    def get(self, type_name: str, relation: str) -> RelationInfo | None:
        rels = self.types.get(type_name)
        return None if rels is None else rels.get(relation)

    # -- validation ------------------------------------------------------------------------

    def validate_user(self, user: str) -> tuple[str, str, str]:
        """Validate a request's user (``ValidateUser``); returns (type, id, relation)."""
        typ, oid, rel = split_user(user)
        if typ not in self.types:
            raise TypeNotFoundError(f"type '{typ}' not found", details={"type": typ})
        if rel:
            self.relation(typ, rel)
        return typ, oid, rel

    def validate_tuple(self, t: Tuple) -> None:
        """OpenFGA's write validation: TypeNotFoundError (2021), RelationNotFoundError (2022),
        InvalidTupleError (2027) for everything that does not fit the type restrictions."""
        validate_syntax(t)
        _utype, _, urel = self.validate_user(t.user)
        otype, oid = split_object(t.object)
        if oid == "*":
            raise InvalidTupleError("the 'object' field cannot reference a typed wildcard")
        info = self.relation(otype, t.relation)
        kind = user_kind(t.user)
        where = f"'{t.object}#{t.relation}@{t.user}'"
        if info.is_tupleset and (urel or kind.endswith(":*")):
            raise InvalidTupleError(
                f"invalid tuple {where}: unexpected user with tupleset relation "
                f"'{otype}#{t.relation}'",
                details={"tuple": t.to_dict()},
            )
        if not info.restrictions:
            raise InvalidTupleError(
                f"invalid tuple {where}: relation '{otype}#{t.relation}' is not directly "
                "assignable",
                details={"tuple": t.to_dict()},
            )
        if kind not in info.plain and kind not in info.conditional:
            what = f"the typed wildcard '{t.user}'" if kind.endswith(":*") else f"type '{kind}'"
            raise InvalidTupleError(
                f"invalid tuple {where}: {what} is not an allowed type restriction for "
                f"'{otype}#{t.relation}'",
                details={"tuple": t.to_dict()},
            )
        if not t.condition:
            if kind not in info.plain:
                raise InvalidTupleError(
                    f"invalid tuple {where}: condition is missing",
                    details={"tuple": t.to_dict()},
                )
            return
        if t.condition not in self.condition_params:
            raise InvalidTupleError(
                f"invalid tuple {where}: undefined condition '{t.condition}'",
                details={"tuple": t.to_dict()},
            )
        if not info.allows(kind, t.condition):
            raise InvalidTupleError(
                f"invalid tuple {where}: invalid condition for type restriction",
                details={"tuple": t.to_dict()},
            )
        params = self.condition_params[t.condition]
        for key in t.context or {}:
            if key not in params:
                raise InvalidTupleError(
                    f"invalid tuple {where}: found invalid context parameter: {key}",
                    details={"tuple": t.to_dict()},
                )

    def tuple_counts(self, t: Tuple) -> bool:
        """Whether a stored tuple counts under this model (OpenFGA's read filter)."""
        info = self.get(t.object.partition(":")[0], t.relation)
        if info is None:
            return False
        kind = user_kind(t.user)
        if info.is_tupleset and ("#" in t.user or kind.endswith(":*")):
            return False
        if t.condition and t.condition not in self.condition_params:
            return False
        return info.allows(kind, t.condition)


def _normalize(rw: Any) -> Rewrite:
    if not isinstance(rw, Mapping) or len(rw) == 0:
        raise ValueError("empty rewrite")
    if "this" in rw:
        return ("this",)
    if "computedUserset" in rw:
        rel = (rw["computedUserset"] or {}).get("relation")
        if not rel:
            raise ValueError("computedUserset without a relation")
        return ("computed", _intern(rel))
    if "tupleToUserset" in rw:
        ttu = rw["tupleToUserset"] or {}
        ts = (ttu.get("tupleset") or {}).get("relation")
        cu = (ttu.get("computedUserset") or {}).get("relation")
        if not ts or not cu:
            raise ValueError("tupleToUserset needs a tupleset and a computed relation")
        return ("ttu", _intern(ts), _intern(cu))
    if "union" in rw or "intersection" in rw:
        op = "union" if "union" in rw else "intersection"
        children = (rw[op] or {}).get("child") or []
        if not children:
            raise ValueError(f"{op} without children")
        return (op, tuple(_normalize(c) for c in children))
    if "difference" in rw:
        d = rw["difference"] or {}
        if "base" not in d or "subtract" not in d:
            raise ValueError("difference needs a base and a subtract")
        return ("difference", _normalize(d["base"]), _normalize(d["subtract"]))
    raise ValueError(f"unknown rewrite {sorted(rw)}")


def _walk(rw: Rewrite) -> list[Rewrite]:
    out = [rw]
    if rw[0] in ("union", "intersection"):
        for c in rw[1]:
            out.extend(_walk(c))
    elif rw[0] == "difference":
        out.extend(_walk(rw[1]))
        out.extend(_walk(rw[2]))
    return out


def _has_this(rw: Rewrite) -> bool:
    return any(n[0] == "this" for n in _walk(rw))

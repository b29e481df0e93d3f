"""Plan-level helpers for the Kubernetes and GitHub importer tests: a PolicyState holding
identity-provider identities, and an in-memory engine over a plan (the base model merged
with the plan's fragment; the plan's tuples, its identities' owner tuples and any extra
tuples, every one validated against the model as a write would be)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from keyplane.graph.compiled import CompiledModel
from keyplane.graph.engine import Engine
from keyplane.graph.index import TupleIndex
from keyplane.graph.tuples import Tuple, parse_tuple
from keyplane.importers.base import ImportPlan
from keyplane.policy.base_model import load_extended
from keyplane.policy.records import Identity
from keyplane.policy.state import PolicyState
from keyplane.storage.base import PolicyChanges


def identity(
    kind: str,
    id_: str,
    *,
    source: str = "scim",
    attributes: Mapping[str, Any] | None = None,
    owners: tuple[str, ...] = (),
    status: str = "active",
) -> Identity:
    return Identity(
        store_id="s",
        kind=kind,
        id=id_,
        display_name=id_,
        attributes=dict(attributes or {}),
        status=status,
        owners=owners,
        orphaned=False,
        source=source,
        created_at=1.0,
        updated_at=1.0,
        last_seen=None,
        revision=1,
    )


def state_with(*identities: Identity) -> PolicyState:
    changes = PolicyChanges(
        identities=tuple(identities),
        delegations=(),
        guardrail_set=None,
        store_policy=None,
        revision=1,
    )
    return PolicyState.empty("s").advanced(changes)


def plan_engine(plan: ImportPlan, extra: Iterable[str] = ()) -> Engine:
    model = CompiledModel.compile(load_extended(plan.model))
    index = TupleIndex()
    tuples = list(plan.tuples)
    for p in plan.identities:
        tuples += [Tuple(p.node, "owner", o) for o in p.owners]
    tuples += [parse_tuple(t) for t in extra]
    for t in tuples:
        model.validate_tuple(t)  # every tuple the plan writes fits the model
        index.add(t)
    return Engine(model, index)

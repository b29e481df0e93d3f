"""Plan-level helpers for the Kubernetes and GitHub importer tests: a PolicyState holding
identity-provider identities; an in-memory engine over a plan (the base model merged
with the plan's fragment; the plan's tuples, its identities' owner tuples and any extra
tuples, every one validated against the model as a write would be); and the ``store``
fixture — a real Keyplane on SQLite and PostgreSQL — for the end-to-end tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.engine import Engine
from keyplane.graph.index import TupleIndex
from keyplane.graph.tuples import Tuple, parse_tuple
from keyplane.importers.base import ImportPlan
from keyplane.policy.base_model import load_extended
from keyplane.policy.records import Identity
from keyplane.policy.state import PolicyState
from keyplane.service import access as A
from keyplane.service import identities as I
from keyplane.service import imports as IM
from keyplane.service import tuples as T
from keyplane.service.auth import Caller
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


# ------------------------------------------------------------------------------ end to end


class Store:
    """One store of a real Keyplane (SQLite or PostgreSQL) the importers write into
    through :func:`keyplane.service.imports.import_source`."""

    def __init__(self, kp: Keyplane, store_id: str) -> None:
        self.kp = kp
        self.svc = kp.services
        self.me = Caller.system_caller()
        self.store = store_id

    def imp(self, source: str, data: Any, **kw: Any) -> Any:
        return IM.import_source(self.svc, self.me, self.store, source, data, **kw)

    def human(self, id_: str, email: str) -> None:
        I.create_identity(
            self.svc, self.me, self.store, "human", id_, source="scim",
            attributes={"emails": [email], "userName": email},
        )  # fmt: skip

    def identity(self, node: str) -> Any:
        kind, _, id_ = node.partition(":")
        return self.svc.storage.get_identity(self.store, kind, id_)

    def write(self, *tuples: str) -> None:
        T.write_tuples(self.svc, self.me, self.store, writes=[parse_tuple(t) for t in tuples])

    def check(self, user: str, relation: str, obj: str) -> bool:
        return bool(A.check(self.svc, self.me, self.store, user, relation, obj).allowed)

    def list_users(self, obj: str, relation: str, filters: list[str]) -> Any:
        return A.list_users(self.svc, self.me, self.store, obj, relation, filters)

    def explain(self, user: str, relation: str, obj: str) -> str:
        ex = A.explain(self.svc, self.me, self.store, user, relation, obj)
        return json.dumps(ex.to_dict()["paths"])


@pytest.fixture
def store(storage_url: str) -> Iterator[Store]:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store="sources")
    kp = Keyplane.open(settings=settings, clock=FixedClock(1_800_000_000.0))
    try:
        yield Store(kp, "sources")
    finally:
        try:
            kp.delete_store("sources")
        finally:
            kp.close()

"""OpenFGA's conformance YAML through the OpenFGA-compatible HTTP API, with the official SDK.

The ``openfga-http`` runner drives a live server exactly as an OpenFGA user would: a store
created with ``openfga-sdk``, the stage's model written as OpenFGA JSON (from the DSL by
Keyplane's parser, as ``fga model write`` does), tuples written, and check / list objects /
list users asked — every call over HTTP with a real API key. Error codes are read back from
OpenFGA's error body (``{"code": "type_not_found", …}``) and turned into the numeric code
the YAML expects, so the assertions are the reference's own (``tests/conformance/fga_harness.py``).

A bounded, fixed subset runs by default; the whole consolidated file runs under
``-m slow``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from fga_harness import DATA, Case, RunnerFactory, cases, run_case_cached
from fga_live import FgaServer
from openfga_sdk.client.models import (
    ClientCheckRequest,
    ClientListObjectsRequest,
    ClientTuple,
    ClientWriteRequest,
)
from openfga_sdk.client.models.list_users_request import ClientListUsersRequest
from openfga_sdk.exceptions import ApiException
from openfga_sdk.models import (
    CreateStoreRequest,
    FgaObject,
    RelationshipCondition,
    UserTypeFilter,
    WriteAuthorizationModelRequest,
)
from openfga_sdk.sync import OpenFgaClient

from keyplane.api.openfga.errors import FGA_CODE_NAMES
from keyplane.graph.language import parse_dsl

RUNNER = "openfga-http"
CODE_BY_NAME = {name: code for code, name in FGA_CODE_NAMES.items()}


class FgaError(Exception):
    """An OpenFGA error answer, carrying the numeric code the YAML names (``fga_code``)."""

    def __init__(self, exc: ApiException) -> None:
        super().__init__(f"HTTP {exc.status} {exc.code}: {exc.error_message}")
        self.fga_code = CODE_BY_NAME.get(str(exc.code))


def _tuple(t: Mapping[str, Any]) -> ClientTuple:
    cond = t.get("condition")
    return ClientTuple(
        user=t["user"],
        relation=t["relation"],
        object=t["object"],
        condition=RelationshipCondition(name=cond["name"], context=cond.get("context") or {})
        if cond
        else None,
    )


def _user(u: Any) -> str:
    if u.object is not None:
        return f"{u.object.type}:{u.object.id}"
    if u.userset is not None:
        return f"{u.userset.type}:{u.userset.id}#{u.userset.relation}"
    return f"{u.wildcard.type}:*"


class OpenFgaHttpRunner:
    """One store on the live server, driven only through ``openfga-sdk``."""

    def __init__(self, server: FgaServer, opened: list[OpenFgaClient]) -> None:
        self.fga = server.client()
        opened.append(self.fga)
        store = self.fga.create_store(CreateStoreRequest(name="conformance"))
        self.fga.set_store_id(store.id)

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except ApiException as exc:
            raise FgaError(exc) from None

    def write_model(self, dsl: str) -> None:
        body = WriteAuthorizationModelRequest(**parse_dsl(dsl))
        model_id = self._call(self.fga.write_authorization_model, body).authorization_model_id
        self.fga.set_authorization_model_id(model_id)

    def write_tuples(self, tuples: Sequence[Mapping[str, Any]]) -> None:
        self._call(self.fga.write, ClientWriteRequest(writes=[_tuple(t) for t in tuples]))

    def check(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[Mapping[str, Any]],
    ) -> bool:
        req = ClientCheckRequest(
            user=user,
            relation=relation,
            object=object,
            contextual_tuples=[_tuple(t) for t in contextual_tuples] or None,
            context=dict(context) if context else None,
        )
        return bool(self._call(self.fga.check, req).allowed)

    def list_objects(
        self,
        user: str,
        relation: str,
        object_type: str,
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        req = ClientListObjectsRequest(
            user=user,
            relation=relation,
            type=object_type,
            contextual_tuples=[_tuple(t) for t in contextual_tuples] or None,
            context=dict(context) if context else None,
        )
        return list(self._call(self.fga.list_objects, req).objects)

    def list_users(
        self,
        object: str,
        relation: str,
        filters: Sequence[str],
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        otype, _, oid = object.partition(":")
        flt = []
        for f in filters:
            ftype, _, frel = f.partition("#")
            flt.append(UserTypeFilter(type=ftype, relation=frel or None))
        req = ClientListUsersRequest(
            object=FgaObject(type=otype, id=oid),
            relation=relation,
            user_filters=flt,
            contextual_tuples=[_tuple(t) for t in contextual_tuples] or None,
            context=dict(context) if context else None,
        )
        return [_user(u) for u in self._call(self.fga.list_users, req).users]


@pytest.fixture(scope="module")
def factory(fga_server: FgaServer) -> Iterator[RunnerFactory]:
    opened: list[OpenFgaClient] = []
    yield lambda: OpenFgaHttpRunner(fga_server, opened)
    for c in opened:
        c.close()


ALL = [c for c in cases(["consolidated"])] if DATA.is_dir() else []
#: a fixed sample (every 15th test, both modes) for the default run
SUBSET = {c for c in ALL if c.index % 15 == 0}


def _params(selection: list[Case], *, slow: bool) -> list[Any]:
    marks = [pytest.mark.slow] if slow else []
    return [
        pytest.param(case, stage, id=f"{RUNNER}:{case.ids[stage]}", marks=marks)
        for case in selection
        for stage in range(case.stages)
    ]


def _assert_stage(case: Case, stage: int, factory: RunnerFactory) -> None:
    result = run_case_cached(case, factory, key=RUNNER)[stage]
    if result.skipped:
        pytest.skip(result.skipped)
    failures = result.failures
    if failures:
        lines = [f"{len(failures)} of {len(result.outcomes)} assertions failed:"]
        lines += [f"  - {o.label}: {o.message}" for o in failures]
        pytest.fail("\n".join(lines), pytrace=False)


@pytest.mark.parametrize(("case", "stage"), _params([c for c in ALL if c in SUBSET], slow=False))
def test_stage_subset(case: Case, stage: int, factory: RunnerFactory) -> None:
    _assert_stage(case, stage, factory)


@pytest.mark.parametrize(("case", "stage"), _params([c for c in ALL if c not in SUBSET], slow=True))
def test_stage_rest(case: Case, stage: int, factory: RunnerFactory) -> None:
    _assert_stage(case, stage, factory)

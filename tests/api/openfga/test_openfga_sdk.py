"""The official OpenFGA Python SDK (``openfga-sdk``) against ``keyplane serve``, unchanged.

Every call goes over real HTTP to uvicorn on a loopback port, authenticated with a real
Keyplane API key sent as the SDK's ``api_token`` credentials. Models are written from DSL
through Keyplane's parser (DSL → OpenFGA JSON), as ``fga model write`` does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fga_live import FgaServer
from openfga_sdk import OpenFgaClient as AsyncOpenFgaClient
from openfga_sdk.client.models import (
    ClientBatchCheckItem,
    ClientBatchCheckRequest,
    ClientCheckRequest,
    ClientExpandRequest,
    ClientListObjectsRequest,
    ClientListRelationsRequest,
    ClientReadChangesRequest,
    ClientTuple,
    ClientWriteRequest,
)
from openfga_sdk.client.models.list_users_request import ClientListUsersRequest
from openfga_sdk.client.models.write_conflict_opts import (
    ClientWriteRequestOnDuplicateWrites,
    ConflictOptions,
)
from openfga_sdk.exceptions import (
    ForbiddenException,
    NotFoundException,
    UnauthorizedException,
    ValidationException,
)
from openfga_sdk.models import (
    ConsistencyPreference,
    CreateStoreRequest,
    FgaObject,
    ReadRequestTupleKey,
    RelationshipCondition,
    UserTypeFilter,
    WriteAuthorizationModelRequest,
)
from openfga_sdk.sync import OpenFgaClient

from keyplane.graph.language import parse_dsl

DSL = """\
model
  schema 1.1

type user

type group
  relations
    define member: [user]

type folder
  relations
    define viewer: [user]

type document
  relations
    define parent: [folder]
    define owner: [user]
    define editor: [user, group#member] or owner
    define viewer: [user, user:*, user with office_hours] or editor or viewer from parent

condition office_hours(hour: int) {
  hour >= 9 && hour < 17
}
"""


def _model_request(dsl: str = DSL) -> WriteAuthorizationModelRequest:
    return WriteAuthorizationModelRequest(**parse_dsl(dsl))


def _t(user: str, relation: str, obj: str, condition: Any = None) -> ClientTuple:
    return ClientTuple(user=user, relation=relation, object=obj, condition=condition)


def _seed(fga: OpenFgaClient) -> str:
    model_id: str = fga.write_authorization_model(_model_request()).authorization_model_id
    fga.write(
        ClientWriteRequest(
            writes=[
                _t("user:anne", "owner", "document:roadmap"),
                _t("group:eng#member", "editor", "document:roadmap"),
                _t("user:bob", "member", "group:eng"),
                _t("folder:plans", "parent", "document:roadmap"),
                _t("user:carl", "viewer", "folder:plans"),
                _t(
                    "user:dora",
                    "viewer",
                    "document:roadmap",
                    RelationshipCondition(name="office_hours", context={}),
                ),
                _t("user:*", "viewer", "document:public"),
            ]
        )
    )
    return model_id


def _allowed(fga: OpenFgaClient, user: str, relation: str, obj: str, **kw: Any) -> bool:
    return bool(
        fga.check(ClientCheckRequest(user=user, relation=relation, object=obj, **kw)).allowed
    )


# --- stores -----------------------------------------------------------------------------------


def test_stores_create_get_list_delete(fga_server: FgaServer) -> None:
    with fga_server.client() as fga:
        created = fga.create_store(CreateStoreRequest(name="acme"))
        assert len(created.id) == 26 and created.name == "acme"
        assert created.created_at is not None
        fga.set_store_id(created.id)
        got = fga.get_store()
        assert (got.id, got.name) == (created.id, "acme")
        listed = fga.list_stores({"page_size": 100})
        assert created.id in {s.id for s in listed.stores}
        fga.delete_store()
        with pytest.raises(NotFoundException) as info:
            fga.get_store()
        assert info.value.status == 404 and info.value.code == "store_id_not_found"


def test_list_stores_paginates(fga_server: FgaServer) -> None:
    with fga_server.client() as fga:
        made = {fga.create_store(CreateStoreRequest(name=f"page-{i}")).id for i in range(3)}
        seen: list[str] = []
        token = ""
        while True:
            page = fga.list_stores({"page_size": 1, "continuation_token": token})
            assert len(page.stores) <= 1
            seen += [s.id for s in page.stores]
            token = page.continuation_token
            if not token:
                break
        assert made <= set(seen) and len(seen) == len(set(seen))


# --- models -----------------------------------------------------------------------------------


def test_models_written_from_dsl_read_back_as_json(fga: OpenFgaClient) -> None:
    first = fga.write_authorization_model(_model_request()).authorization_model_id
    second = fga.write_authorization_model(_model_request()).authorization_model_id
    assert first < second  # ULIDs, in creation order
    latest = fga.read_latest_authorization_model().authorization_model
    assert latest.id == second and latest.schema_version == "1.1"
    assert {td.type for td in latest.type_definitions} == {"user", "group", "folder", "document"}
    assert "office_hours" in latest.conditions
    one = fga.read_authorization_model({"authorization_model_id": first}).authorization_model
    assert one.id == first
    page = fga.read_authorization_models({"page_size": 1})
    assert [m.id for m in page.authorization_models] == [second] and page.continuation_token
    rest = fga.read_authorization_models(
        {"page_size": 1, "continuation_token": page.continuation_token}
    )
    assert [m.id for m in rest.authorization_models] == [first]


def test_invalid_model_is_a_validation_error(fga: OpenFgaClient) -> None:
    bad = WriteAuthorizationModelRequest(
        schema_version="1.1",
        type_definitions=[
            {"type": "doc", "relations": {"viewer": {"computedUserset": {"relation": "nope"}}}}
        ],
    )
    with pytest.raises(ValidationException) as info:
        fga.write_authorization_model(bad)
    assert info.value.status == 400 and info.value.code == "invalid_authorization_model"


# --- tuples -----------------------------------------------------------------------------------


def test_write_read_delete_with_conditions(fga: OpenFgaClient) -> None:
    _seed(fga)
    got = fga.read(ReadRequestTupleKey(object="document:roadmap"), {"page_size": 100})
    keys = {(t.key.user, t.key.relation) for t in got.tuples}
    assert ("user:anne", "owner") in keys and ("group:eng#member", "editor") in keys
    dora = next(t for t in got.tuples if t.key.user == "user:dora")
    assert dora.key.condition.name == "office_hours"
    by_user = fga.read(ReadRequestTupleKey(user="user:bob", relation="member", object="group:"))
    assert [t.key.object for t in by_user.tuples] == ["group:eng"]

    fga.delete_tuples([_t("user:anne", "owner", "document:roadmap")])
    after = fga.read(
        ReadRequestTupleKey(user="user:anne", relation="owner", object="document:roadmap")
    )
    assert after.tuples == []


def test_read_paginates(fga: OpenFgaClient) -> None:
    fga.write_authorization_model(_model_request())
    fga.write_tuples([_t(f"user:u{i}", "viewer", "folder:f") for i in range(5)])
    users: list[str] = []
    token = ""
    while True:
        page = fga.read(
            ReadRequestTupleKey(object="folder:f"), {"page_size": 2, "continuation_token": token}
        )
        assert len(page.tuples) <= 2
        users += [t.key.user for t in page.tuples]
        token = page.continuation_token
        if not token:
            break
    assert sorted(users) == sorted(f"user:u{i}" for i in range(5))


def test_write_conflicts_and_on_duplicate_ignore(fga: OpenFgaClient) -> None:
    _seed(fga)
    dup = [_t("user:anne", "owner", "document:roadmap")]
    with pytest.raises(ValidationException) as info:
        fga.write_tuples(dup)
    assert info.value.code == "write_failed_due_to_invalid_input"
    ignore = {
        "conflict": ConflictOptions(on_duplicate_writes=ClientWriteRequestOnDuplicateWrites.IGNORE)
    }
    fga.write_tuples(dup, ignore)  # identical tuple: skipped, no error
    with pytest.raises(ValidationException) as info:
        fga.delete_tuples([_t("user:zed", "owner", "document:roadmap")])
    assert info.value.code == "write_failed_due_to_invalid_input"


def test_write_errors_carry_openfga_codes(fga: OpenFgaClient) -> None:
    _seed(fga)
    cases = [
        (_t("user:anne", "owner", "nosuchtype:1"), "type_not_found"),
        (_t("user:anne", "nosuchrelation", "document:1"), "relation_not_found"),
        (_t("group:eng", "owner", "document:1"), "invalid_tuple"),  # user type not allowed
    ]
    for tup, code in cases:
        with pytest.raises(ValidationException) as info:
            fga.write_tuples([tup])
        assert (info.value.status, info.value.code) == (400, code), tup


def test_read_changes_and_its_token(fga: OpenFgaClient) -> None:
    _seed(fga)
    fga.delete_tuples([_t("user:bob", "member", "group:eng")])
    page = fga.read_changes(ClientReadChangesRequest(type=None), {"page_size": 100})
    ops = [(c.operation, c.tuple_key.user, c.tuple_key.object) for c in page.changes]
    assert ops[0] == ("TUPLE_OPERATION_WRITE", "user:anne", "document:roadmap")
    assert ops[-1] == ("TUPLE_OPERATION_DELETE", "user:bob", "group:eng")
    assert all(c.timestamp is not None for c in page.changes)
    # polling with the token returns nothing new, and the token again
    again = fga.read_changes(
        ClientReadChangesRequest(type=None), {"continuation_token": page.continuation_token}
    )
    assert again.changes == [] and again.continuation_token == page.continuation_token
    fga.write_tuples([_t("user:eve", "member", "group:eng")])
    newer = fga.read_changes(
        ClientReadChangesRequest(type=None), {"continuation_token": page.continuation_token}
    )
    assert [c.tuple_key.user for c in newer.changes] == ["user:eve"]
    groups = fga.read_changes(ClientReadChangesRequest(type="group"), {"page_size": 100})
    assert {c.tuple_key.object for c in groups.changes} == {"group:eng"}


# --- queries ----------------------------------------------------------------------------------


def test_check_with_context_and_contextual_tuples(fga: OpenFgaClient) -> None:
    model_id = _seed(fga)
    assert _allowed(fga, "user:anne", "viewer", "document:roadmap")  # owner → editor → viewer
    assert _allowed(fga, "user:bob", "editor", "document:roadmap")  # via group#member
    assert _allowed(fga, "user:carl", "viewer", "document:roadmap")  # viewer from parent
    assert _allowed(fga, "user:anyone", "viewer", "document:public")  # wildcard
    assert not _allowed(fga, "user:zed", "viewer", "document:roadmap")
    # the condition decides with the request's context
    assert _allowed(fga, "user:dora", "viewer", "document:roadmap", context={"hour": 10})
    assert not _allowed(fga, "user:dora", "viewer", "document:roadmap", context={"hour": 20})
    # a contextual tuple grants for this request only
    ctx = [_t("user:zed", "member", "group:eng")]
    assert _allowed(fga, "user:zed", "editor", "document:roadmap", contextual_tuples=ctx)
    assert not _allowed(fga, "user:zed", "editor", "document:roadmap")
    # an explicit model id works too
    resp = fga.check(
        ClientCheckRequest(user="user:anne", relation="owner", object="document:roadmap"),
        {"authorization_model_id": model_id},
    )
    assert resp.allowed is True
    # both consistency preferences are accepted (docs/openfga-compat.md: they change nothing)
    for pref in (ConsistencyPreference.MINIMIZE_LATENCY, ConsistencyPreference.HIGHER_CONSISTENCY):
        resp = fga.check(
            ClientCheckRequest(user="user:anne", relation="owner", object="document:roadmap"),
            {"consistency": pref},
        )
        assert resp.allowed is True


def test_check_errors(fga: OpenFgaClient) -> None:
    _seed(fga)
    with pytest.raises(ValidationException) as info:
        _allowed(fga, "user:anne", "nope", "document:roadmap")
    assert info.value.status == 400
    with pytest.raises(ValidationException) as info:
        _allowed(fga, "user:anne", "viewer", "nosuchtype:1")
    assert info.value.code == "validation_error"  # as OpenFGA's check validation answers
    with pytest.raises(ValidationException) as info:  # the condition needs "hour"
        _allowed(fga, "user:dora", "viewer", "document:roadmap")
    assert info.value.code == "validation_error"
    with pytest.raises(ValidationException) as info:
        fga.check(
            ClientCheckRequest(user="user:anne", relation="owner", object="document:roadmap"),
            {"authorization_model_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"},
        )
    assert info.value.code == "authorization_model_not_found"


def test_batch_check(fga: OpenFgaClient) -> None:
    _seed(fga)
    resp = fga.batch_check(
        ClientBatchCheckRequest(
            checks=[
                ClientBatchCheckItem("user:anne", "viewer", "document:roadmap", correlation_id="a"),
                ClientBatchCheckItem("user:zed", "viewer", "document:roadmap", correlation_id="b"),
                ClientBatchCheckItem(
                    "user:dora",
                    "viewer",
                    "document:roadmap",
                    context={"hour": 9},
                    correlation_id="c",
                ),
                ClientBatchCheckItem(
                    "user:zed",
                    "editor",
                    "document:roadmap",
                    contextual_tuples=[_t("user:zed", "owner", "document:roadmap")],
                    correlation_id="d",
                ),
                ClientBatchCheckItem("user:anne", "nope", "document:roadmap", correlation_id="e"),
            ]
        )
    )
    by_id = {r.correlation_id: r for r in resp.result}
    assert {k: r.allowed for k, r in by_id.items()} == {
        "a": True,
        "b": False,
        "c": True,
        "d": True,
        "e": False,
    }
    assert by_id["e"].error is not None and by_id["e"].error.input_error == "validation_error"
    assert by_id["a"].error is None


def test_list_relations_built_on_batch_check(fga: OpenFgaClient) -> None:
    _seed(fga)
    req = ClientListRelationsRequest(
        user="user:anne", object="document:roadmap", relations=["owner", "editor", "viewer"]
    )
    assert sorted(fga.list_relations(req)) == ["editor", "owner", "viewer"]


def test_mixed_idempotence_in_one_write_is_refused(
    fga_server: FgaServer, fga: OpenFgaClient
) -> None:
    _seed(fga)
    body = {
        "writes": {
            "tuple_keys": [{"user": "user:x", "relation": "owner", "object": "document:1"}],
            "on_duplicate": "ignore",
        },
        "deletes": {
            "tuple_keys": [{"user": "user:anne", "relation": "owner", "object": "document:roadmap"}]
        },
    }
    r = httpx.post(
        f"{fga_server.url}/stores/{fga.get_store_id()}/write",
        headers={"Authorization": f"Bearer {fga_server.key}"},
        json=body,
    )
    assert r.status_code == 400 and r.json()["code"] == "validation_error"
    body["deletes"]["on_missing"] = "ignore"  # type: ignore[index]
    r = httpx.post(
        f"{fga_server.url}/stores/{fga.get_store_id()}/write",
        headers={"Authorization": f"Bearer {fga_server.key}"},
        json=body,
    )
    assert r.status_code == 200 and r.json() == {}


def test_expand(fga: OpenFgaClient) -> None:
    _seed(fga)
    tree = fga.expand(ClientExpandRequest(relation="editor", object="document:roadmap")).tree
    root = tree.root
    assert root.name == "document:roadmap#editor"
    direct, computed = root.union.nodes
    assert direct.leaf.users.users == ["group:eng#member"]
    assert computed.leaf.computed.userset == "document:roadmap#owner"
    fga.write_tuples([_t("folder:plans", "parent", "document:plan")])
    viewer = fga.expand(ClientExpandRequest(relation="viewer", object="document:plan")).tree.root
    ttu = viewer.union.nodes[2].leaf.tuple_to_userset
    assert ttu.tupleset == "document:plan#parent"
    assert [c.userset for c in ttu.computed] == ["folder:plans#viewer"]


def test_list_objects_and_streamed(fga: OpenFgaClient) -> None:
    _seed(fga)
    req = ClientListObjectsRequest(user="user:carl", relation="viewer", type="document")
    assert sorted(fga.list_objects(req).objects) == ["document:public", "document:roadmap"]
    anyone = ClientListObjectsRequest(user="user:x", relation="viewer", type="document")
    assert fga.list_objects(anyone).objects == ["document:public"]
    with_ctx = ClientListObjectsRequest(
        user="user:zed",
        relation="viewer",
        type="document",
        contextual_tuples=[_t("user:zed", "owner", "document:secret")],
    )
    assert sorted(fga.list_objects(with_ctx).objects) == ["document:public", "document:secret"]
    streamed = [r.object for r in fga.streamed_list_objects(with_ctx)]
    assert sorted(streamed) == ["document:public", "document:secret"]


def test_list_users(fga: OpenFgaClient) -> None:
    _seed(fga)
    users = fga.list_users(
        ClientListUsersRequest(
            object=FgaObject(type="document", id="roadmap"),
            relation="viewer",
            user_filters=[UserTypeFilter(type="user")],
            context={"hour": 12},
        )
    ).users
    ids = {u.object.id for u in users if u.object is not None}
    assert ids == {"anne", "bob", "carl", "dora"}
    sets = fga.list_users(
        ClientListUsersRequest(
            object=FgaObject(type="document", id="roadmap"),
            relation="editor",
            user_filters=[UserTypeFilter(type="group", relation="member")],
        )
    ).users
    assert [(u.userset.type, u.userset.id, u.userset.relation) for u in sets] == [
        ("group", "eng", "member")
    ]
    public = fga.list_users(
        ClientListUsersRequest(
            object=FgaObject(type="document", id="public"),
            relation="viewer",
            user_filters=[UserTypeFilter(type="user")],
            contextual_tuples=[_t("user:amy", "owner", "document:public")],
        )
    ).users
    assert {(u.wildcard.type if u.wildcard else None) for u in public} >= {"user"}
    assert any(u.object is not None and u.object.id == "amy" for u in public)


def test_async_client_end_to_end(fga_server: FgaServer) -> None:
    async def scenario() -> tuple[bool, list[str]]:
        async with AsyncOpenFgaClient(fga_server.config()) as fga:
            store = await fga.create_store(CreateStoreRequest(name="async"))
            fga.set_store_id(store.id)
            await fga.write_authorization_model(_model_request())
            await fga.write_tuples([_t("user:anne", "owner", "document:a")])
            allowed = (
                await fga.check(
                    ClientCheckRequest(user="user:anne", relation="viewer", object="document:a")
                )
            ).allowed
            objects = [
                r.object
                async for r in fga.streamed_list_objects(
                    ClientListObjectsRequest(user="user:anne", relation="viewer", type="document")
                )
            ]
            return bool(allowed), objects

    assert asyncio.run(scenario()) == (True, ["document:a"])


# --- authentication and authorization ---------------------------------------------------------


def test_unknown_key_is_unauthorized(fga_server: FgaServer, fga: OpenFgaClient) -> None:
    bad = fga_server.client(store_id=fga.get_store_id(), key="kp_not_a_real_key")
    with bad, pytest.raises(UnauthorizedException) as info:
        bad.read_authorization_models()
    assert info.value.status == 401 and info.value.code == "unauthenticated"


def test_missing_key_and_openfga_error_shape_over_raw_http(fga_server: FgaServer) -> None:
    r = httpx.get(f"{fga_server.url}/stores")
    assert r.status_code == 401 and r.json()["code"] == "bearer_token_missing"
    assert set(r.json()) == {"code", "message"}
    auth = {"Authorization": f"Bearer {fga_server.key}"}
    r = httpx.post(f"{fga_server.url}/stores/nope/check", headers=auth, json={"tuple_key": {}})
    assert r.status_code == 400 and r.json()["code"] == "validation_error"
    r = httpx.post(
        f"{fga_server.url}/stores/01ARZ3NDEKTSV4RRFFQ69G5FAV/read", headers=auth, json={}
    )
    assert r.status_code == 404 and r.json()["code"] == "store_id_not_found"
    r = httpx.get(f"{fga_server.url}/stores/x/assertions/y", headers=auth)
    assert r.status_code == 404 and r.json()["code"] == "unimplemented"


def test_store_ids_that_are_not_ulids_work_over_raw_http(fga_server: FgaServer) -> None:
    from keyplane.service.auth import Caller
    from keyplane.service.stores import create_store

    create_store(fga_server.services, Caller.system_caller(), "default", store_id="default")
    auth = {"Authorization": f"Bearer {fga_server.key}"}
    base = f"{fga_server.url}/stores/default"
    r = httpx.post(f"{base}/authorization-models", headers=auth, json=parse_dsl(DSL))
    assert r.status_code == 201, r.text
    body = {
        "writes": {"tuple_keys": [{"user": "user:a", "relation": "owner", "object": "document:1"}]}
    }
    assert httpx.post(f"{base}/write", headers=auth, json=body).json() == {}
    check = {"tuple_key": {"user": "user:a", "relation": "viewer", "object": "document:1"}}
    assert httpx.post(f"{base}/check", headers=auth, json=check).json() == {
        "allowed": True,
        "resolution": "",
    }
    lines = httpx.post(
        f"{base}/streamed-list-objects",
        headers=auth,
        json={"type": "document", "relation": "viewer", "user": "user:a"},
    ).text.splitlines()
    assert [json.loads(x) for x in lines] == [{"result": {"object": "document:1"}}]


def test_roles_apply_through_the_compatible_api(fga_server: FgaServer, fga: OpenFgaClient) -> None:
    from keyplane.service.auth import Caller
    from keyplane.service.keys import create_key

    store_id = fga.get_store_id()
    _seed(fga)
    _, reader = create_key(
        fga_server.services, Caller.system_caller(), owner="ro", roles=[f"reader:{store_id}"]
    )
    with fga_server.client(store_id=store_id, key=reader) as ro:
        assert ro.check(
            ClientCheckRequest(user="user:anne", relation="viewer", object="document:roadmap")
        ).allowed
        with pytest.raises(ForbiddenException) as info:
            ro.write_tuples([_t("user:x", "owner", "document:roadmap")])
        assert info.value.status == 403 and info.value.code == "forbidden"
        with pytest.raises(ForbiddenException):
            ro.create_store(CreateStoreRequest(name="nope"))

"""The built-in base model in the store's model, on SQLite and PostgreSQL: native model
writes get the identity types merged in (conflicts are ``invalid_model``), models written
as the OpenFGA-compatible API does (``extend_base=False``) are kept exactly and the
identity operations then name what is missing, a store with no model gets the base model
when its first identity is registered, and owner tuples are validated like any tuple."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import (
    InvalidModelError,
    InvalidTupleError,
    ModelNotFoundError,
    RelationNotFoundError,
    TypeNotFoundError,
)
from keyplane.graph.language import load_model, write_dsl
from keyplane.policy.base_model import BASE_MODEL_DSL, base_model, merge_base_model
from keyplane.service import identities as I
from keyplane.service import models as M
from keyplane.service.auth import Caller
from keyplane.service.context import Services

S = "basemodel"
USER = """\
model
  schema 1.1

type user

type agent
  relations
    define deployer: [user]
    define can_deploy: deployer or owner

type doc
  relations
    define viewer: [user, agent, human]
"""
# USER as stored: the base model's owner added to its agent, its missing types after its own
USER_EXTENDED = """\
model
  schema 1.1

type user

type agent
  relations
    define deployer: [user]
    define can_deploy: deployer or owner
    define owner: [human, group#member]

type doc
  relations
    define viewer: [user, agent, human]

type human

type group
  relations
    define member: [human, group#member]

type workload
  relations
    define owner: [human, group#member]

type service_account
  relations
    define owner: [human, group#member]

type mcp_server
  relations
    define caller: [human, agent, workload, service_account, group#member]

type toolset
  relations
    define member: [human, agent, workload, service_account, group#member]

type mcp_tool
  relations
    define server: [mcp_server]
    define toolset: [toolset]
    define caller: [human, agent, workload, service_account, group#member]
    define can_call: caller or member from toolset or caller from server
"""


class Ops:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.me = Caller.system_caller()

    def __getattr__(self, name: str) -> Any:
        for mod in (I, M):
            fn = getattr(mod, name, None)
            if fn is not None:
                return lambda *a, **kw: fn(self.svc, self.me, S, *a, **kw)
        raise AttributeError(name)

    def events(self, type: str) -> list[Any]:
        """The changes of ``type`` recorded (refusals, outcome != "ok", left out)."""
        return [
            e
            for e in self.svc.storage.read_events(S, limit=1000)
            if e.type == type and e.outcome == "ok"
        ]

    def tuples(self) -> set[tuple[str, str, str]]:
        page = self.svc.storage.read_tuples(S, page_size=100)
        return {(t.object, t.relation, t.user) for t in page.items}


@pytest.fixture
def ops(storage_url: str) -> Iterator[Ops]:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=S)
    kp = Keyplane.open(settings=settings, clock=FixedClock(1_800_000_000.0))
    try:
        yield Ops(kp.services)
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


def _types(model: Any) -> dict[str, Any]:
    return {t["type"]: t for t in model["type_definitions"]}


# ------------------------------------------------------------------------------ native writes


def test_native_write_declares_the_identity_types(ops: Ops) -> None:
    # USER uses the base's `human` and `agent#owner` without declaring them
    with pytest.raises(InvalidModelError):
        load_model(USER)
    rec = ops.write_model(USER)
    assert rec.model == load_model(USER_EXTENDED)
    assert ops.read_model().model == rec.model  # stored as extended
    assert write_dsl(rec.model) == write_dsl(load_model(USER_EXTENDED))
    # writing the stored model back (read, edited, written) extends to itself
    assert ops.write_model(write_dsl(rec.model)).model == rec.model
    assert ops.write_model(rec.model).model == rec.model
    assert merge_base_model(rec.model) == rec.model
    # the graph uses the user's relations over the base's owner
    ops.create_identity("human", "alice")
    ops.create_identity("agent", "bot", owners=["human:alice"])
    assert ("agent:bot", "owner", "human:alice") in ops.tuples()
    engine, _ = ops.svc.graphs.engine(S)
    assert engine.check("human:alice", "can_deploy", "agent:bot")
    assert not engine.check("human:bob", "can_deploy", "agent:bot")


def test_a_compatible_owner_of_the_users_own_is_kept(ops: Ops) -> None:
    mine = "define owner: [human, group#member, user] or deployer"
    dsl = USER.replace("define deployer: [user]", f"define deployer: [user]\n    {mine}")
    rec = ops.write_model(dsl)
    want = USER_EXTENDED.replace(
        "    define owner: [human, group#member]\n\ntype doc", "\ntype doc"
    ).replace("define deployer: [user]", f"define deployer: [user]\n    {mine}", 1)
    assert rec.model == load_model(want)
    ops.create_identity("agent", "bot", owners=["group:eng#member"])


CONDITION = "\ncondition office(n: int) {\n  n > 1\n}\n"


def _with_owner(owner: str) -> str:
    dsl = USER.replace(
        "define deployer: [user]", f"define deployer: [user]\n    define owner: {owner}"
    )
    return dsl + (CONDITION if "office" in owner else "")


@pytest.mark.parametrize(
    "owner", ["[user]", "deployer", "[human with office]", "[user, group]", "[human:*]"]
)
def test_an_owner_that_can_hold_no_owner_conflicts_with_the_base(ops: Ops, owner: str) -> None:
    with pytest.raises(InvalidModelError) as info:
        ops.write_model(_with_owner(owner))
    err = info.value
    assert err.message.startswith("relation 'agent#owner' conflicts with the built-in base model")
    assert "define owner: [human, group#member]" in err.message
    [issue] = err.errors
    assert (issue.error_type, dict(issue.metadata)) == (
        "base_model_conflict",
        {"type": "agent", "relation": "owner"},
    )
    assert "type agent" in err.details["base_model"]
    with pytest.raises(ModelNotFoundError):
        ops.read_model()  # nothing stored
    assert ops.events("model.written") == []


def test_every_conflicting_kind_is_named(ops: Ops) -> None:
    dsl = _with_owner("[user]") + "\ntype workload\n  relations\n    define owner: [user]\n"
    with pytest.raises(InvalidModelError) as info:
        ops.write_model(dsl)
    assert [i.metadata["type"] for i in info.value.errors] == ["agent", "workload"]
    assert info.value.message.endswith("(and 1 more)")


@pytest.mark.parametrize(
    ("owner", "allowed", "refused", "restrictions"),
    [
        ("[human]", "human:alice", "group:eng#member", [{"type": "human"}]),
        (
            "[human with office, group#member]",
            "group:eng#member",
            "human:alice",
            [{"type": "human", "condition": "office"}, {"type": "group", "relation": "member"}],
        ),
    ],
)
def test_a_narrower_owner_is_kept_and_refuses_the_other_owners(
    ops: Ops, owner: str, allowed: str, refused: str, restrictions: list[Any]
) -> None:
    rec = ops.write_model(_with_owner(owner))
    agent = _types(rec.model)["agent"]
    assert agent["relations"]["owner"] == {"this": {}}
    assert agent["metadata"]["relations"]["owner"]["directly_related_user_types"] == restrictions
    with pytest.raises(InvalidTupleError) as info:
        ops.create_identity("agent", "bot", owners=[allowed, refused])
    assert "agent#owner" in info.value.message and "base model" in info.value.message
    assert ops.tuples() == set()
    ops.create_identity("agent", "bot", owners=[allowed])
    assert ops.tuples() == {("agent:bot", "owner", allowed)}
    with pytest.raises(InvalidTupleError):
        ops.set_identity_owners("agent:bot", add=[refused])
    assert ops.get_identity("agent:bot").owners == (allowed,)


# ------------------------------------------------------------------------------ OpenFGA: as written


def test_openfga_writes_are_kept_exactly(ops: Ops) -> None:
    with pytest.raises(InvalidModelError):  # the base's types are not there to use
        ops.write_model(USER, extend_base=False)
    plain = load_model(
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n"
    )
    rec = ops.write_model(plain, extend_base=False)
    assert rec.model == plain
    assert "human" not in _types(ops.read_model().model)


@pytest.mark.parametrize(
    ("dsl", "kind", "error", "missing"),
    [
        ("type user\n", "human", TypeNotFoundError, "type 'human' not found"),
        ("type human\n", "agent", TypeNotFoundError, "type 'agent' not found"),
        ("type human\ntype agent\n", "agent", RelationNotFoundError, "owner"),
        (
            "type human\ntype user\ntype agent\n  relations\n    define owner: [user]\n",
            "agent",
            InvalidTupleError,
            "not an allowed type restriction",
        ),
    ],
)
def test_identities_on_a_store_without_the_base_types(
    ops: Ops, dsl: str, kind: str, error: type[Exception], missing: str
) -> None:
    rec = ops.write_model("model\n  schema 1.1\n" + dsl, extend_base=False)
    owners = [] if kind == "human" else ["human:alice"]
    with pytest.raises(error) as info:
        ops.create_identity(kind, "x", owners=owners)
    msg = info.value.message  # type: ignore[attr-defined]
    assert missing in msg and "base model" in msg and rec.id in msg
    assert (f"'{kind}#owner'" if error is InvalidTupleError else f"type {kind}") in msg
    assert info.value.details["model_id"] == rec.id  # type: ignore[attr-defined]
    assert ops.svc.storage.get_identity(S, kind, "x") is None
    assert ops.tuples() == set()
    assert ops.read_model().id == rec.id  # no model written behind the user's back


def test_owner_tuples_are_validated_when_owners_change(ops: Ops) -> None:
    ops.write_model(
        "model\n  schema 1.1\ntype human\ntype group\n  relations\n    define member: [human]\n"
        "type agent\n  relations\n    define owner: [human]\n",
        extend_base=False,
    )
    with pytest.raises(InvalidTupleError):
        ops.create_identity("agent", "bot", owners=["group:eng#member"])
    ops.create_identity("agent", "bot", owners=["human:alice"])
    with pytest.raises(InvalidTupleError) as info:
        ops.set_identity_owners("agent:bot", add=["group:eng#member"])
    assert "group#member" in info.value.message
    assert ops.get_identity("agent:bot").owners == ("human:alice",)
    assert ops.tuples() == {("agent:bot", "owner", "human:alice")}
    # removing needs no validation; a native model write then makes the group owner fit
    ops.write_model(
        "model\n  schema 1.1\ntype agent\n  relations\n    define owner: [human, group#member]\n"
    )
    assert ops.set_identity_owners("agent:bot", add=["group:eng#member"]).owners == (
        "human:alice",
        "group:eng#member",
    )


# ------------------------------------------------------------------------------ no model yet


def test_first_identity_in_a_store_without_a_model_writes_the_base_model(ops: Ops) -> None:
    with pytest.raises(ModelNotFoundError):
        ops.read_model()
    ops.create_identity("human", "alice")
    rec = ops.read_model()
    assert rec.model == base_model() == load_model(BASE_MODEL_DSL)
    written = ops.events("model.written")
    assert [(e.model_id, e.details.get("base_model")) for e in written] == [(rec.id, True)]
    created = ops.events("identity.created")
    assert [e.resource for e in created] == ["human:alice"]
    assert 0 < written[0].revision < created[0].revision  # the model first, then the identity
    # later identities use it; no second base model
    ops.create_identity("agent", "bot", owners=["human:alice"])
    assert [m.id for m in ops.list_models().items] == [rec.id]
    assert ("agent:bot", "owner", "human:alice") in ops.tuples()
    # the user's model written later extends it; the identities stay valid
    mine = ops.write_model(USER)
    assert "owner" in _types(mine.model)["agent"]["relations"]
    ops.create_identity("workload", "etl", owners=["human:alice"])


def test_a_refused_identity_writes_no_base_model(ops: Ops) -> None:
    from keyplane.errors import OwnerRequiredError, ValidationError

    with pytest.raises(OwnerRequiredError):
        ops.create_identity("agent", "bot")
    with pytest.raises(ValidationError):
        ops.create_identity("robot", "bot", owners=["human:alice"])
    with pytest.raises(ModelNotFoundError):
        ops.read_model()
    assert ops.events("model.written") == []

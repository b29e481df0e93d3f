"""The built-in base model and how user models extend it (merge_base_model)."""

from __future__ import annotations

from keyplane.graph.compiled import CompiledModel
from keyplane.graph.language import load_model
from keyplane.graph.tuples import Tuple
from keyplane.policy.base_model import base_model, merge_base_model
from keyplane.policy.records import IDENTITY_KINDS, NON_HUMAN_KINDS

USER = """\
model
  schema 1.1

type user

type group
  relations
    define member: [user]

type agent
  relations
    define deployer: [user]

type doc
  relations
    define viewer: [user, agent]
"""


def _types(model: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {t["type"]: t for t in model["type_definitions"]}


def test_base_declares_every_identity_kind_and_owner() -> None:
    types = _types(base_model())
    # the identity kinds, groups, and the MCP gateway's servers, tools and toolsets
    assert set(IDENTITY_KINDS) | {"group", "mcp_server", "mcp_tool", "toolset"} == set(types)
    for kind in NON_HUMAN_KINDS:
        assert "owner" in types[kind]["relations"]
    compiled = CompiledModel.compile(base_model())
    compiled.validate_tuple(Tuple("agent:bot", "owner", "human:alice"))
    compiled.validate_tuple(Tuple("workload:etl", "owner", "group:eng#member"))
    compiled.validate_tuple(Tuple("mcp_tool:gh/create_issue", "toolset", "toolset:triage"))
    compiled.validate_tuple(Tuple("toolset:triage", "member", "group:eng#member"))


def test_merge_adds_only_what_is_missing() -> None:
    user = load_model(USER)
    merged = merge_base_model(user)
    types = _types(merged)
    # the user's own definitions are kept exactly
    assert types["group"]["relations"] == _types(user)["group"]["relations"]
    assert types["doc"] == _types(user)["doc"]
    # base relations the user's types lack are added; missing types added whole
    assert set(types["agent"]["relations"]) == {"deployer", "owner"}
    assert {"human", "workload", "service_account"} <= set(types)
    assert merge_base_model(merged) == merged  # idempotent
    assert _types(user)["agent"]["relations"].keys() == {"deployer"}  # input untouched
    compiled = CompiledModel.compile(merged)
    compiled.validate_tuple(Tuple("agent:bot", "owner", "human:alice"))


def test_load_extended_validates_the_merged_model_with_the_users_positions() -> None:
    import json

    import pytest

    from keyplane.errors import InvalidModelError
    from keyplane.policy.base_model import load_extended

    uses_base = (
        USER + "\ntype repo\n  relations\n    define admin: [human]\n    define ops: owner\n"
    )
    with pytest.raises(InvalidModelError) as info:
        load_extended(uses_base)  # `owner` is no relation of repo: the user's mistake
    [issue] = info.value.errors
    at = uses_base.split("\n").index("    define ops: owner")  # 0-based, as the reference
    assert "owner" in issue.message and issue.line == (at, at)
    ok = uses_base.replace("define ops: owner", "define ops: admin")
    merged = load_extended(ok)
    assert merged == merge_base_model(merged)
    assert _types(merged)["repo"]["relations"].keys() == {"admin", "ops"}
    # JSON text and dicts are extended the same way
    assert load_extended(json.dumps(merged)) == merged == load_extended(merged)
    with pytest.raises(InvalidModelError):
        load_extended('{"schema_version": "1.1", "type_definitions": {}}')  # shape, not merge

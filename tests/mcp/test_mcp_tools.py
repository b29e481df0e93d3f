"""The tool catalogue itself: schemas derived from the REST models, one service call each."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from keyplane.api import schemas
from keyplane.mcp import NOT_EXPOSED, READ_TOOLS, SERVICE_OF_TOOL, WRITE_TOOLS, build_tools
from keyplane.service import access, keys, models, stores, tuples

TOOLS = build_tools("tenant-a")

REST_REQUEST = {
    "check": schemas.CheckRequest,
    "batch_check": schemas.BatchCheckRequest,
    "list_objects": schemas.ListObjectsRequest,
    "list_users": schemas.ListUsersRequest,
    "expand": schemas.ExpandRequest,
    "explain": schemas.ExplainRequest,
    "write_tuples": schemas.WriteRequest,
}


@pytest.mark.parametrize("name", sorted(REST_REQUEST))
def test_input_schema_is_the_rest_request_plus_store(name: str) -> None:
    spec = TOOLS[name]
    assert issubclass(spec.input, REST_REQUEST[name])
    schema = spec.input.model_json_schema()
    rest = REST_REQUEST[name].model_json_schema()
    assert set(schema["properties"]) == set(rest["properties"]) | {"store"}
    assert schema.get("required", []) == rest.get("required", [])
    assert schema["additionalProperties"] is False
    assert "`tenant-a` when omitted" in schema["properties"]["store"]["description"]


def test_every_tool_is_described_for_an_agent() -> None:
    assert set(TOOLS) == {*READ_TOOLS, *WRITE_TOOLS}
    for spec in TOOLS.values():
        tool = spec.to_mcp()
        assert tool.description is not None and "Example" in tool.description
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (spec.name in READ_TOOLS)


def _operations(module: ModuleType) -> set[str]:
    """``area.function`` for each function a service module exports."""
    area = module.__name__.rsplit(".", 1)[1]
    return {
        f"{area}.{name}"
        for name in module.__all__
        if inspect.isfunction(getattr(module, name))
        and getattr(module, name).__module__ == module.__name__
    }


def test_every_service_operation_is_a_tool_or_listed_as_not_exposed() -> None:
    assert set(SERVICE_OF_TOOL) == set(TOOLS)
    exposed = {f"{f.__module__.rsplit('.', 1)[1]}.{f.__name__}" for f in SERVICE_OF_TOOL.values()}
    operations = set().union(*(_operations(m) for m in (access, tuples, models, stores)))
    operations.discard("models.render_model")  # a formatter, not an operation
    missing = operations - exposed - set(NOT_EXPOSED)
    assert not missing, f"service operations neither MCP tools nor in NOT_EXPOSED: {missing}"
    assert "keys.*" in NOT_EXPOSED and keys.create_key is not None

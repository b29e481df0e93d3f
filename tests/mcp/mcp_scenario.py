"""What the MCP tests assert over both transports: the tool list, every tool, the errors.

Each helper takes an initialized official ``mcp.ClientSession``; ``test_mcp_stdio`` and
``test_mcp_http`` connect it over stdio and streamable HTTP respectively. The official
client validates every successful result's structured content against the tool's output
schema, so each call below also proves the result matches the REST response model.
"""

from __future__ import annotations

from typing import Any

from mcp.types import CallToolResult

from keyplane.mcp import READ_TOOLS, WRITE_TOOLS
from keyplane.storage.ids import ULID_RE
from mcp import ClientSession

ALL_TOOLS = {*READ_TOOLS, *WRITE_TOOLS}
#: what a writer key sees: every tool but deciding review items and applying a
#: least-privilege recommendation (both listed for can_manage_reviews: admin)
#: the MCP gateway's administration tools that change it: admin keys only (can_manage_gateway)
GATEWAY_WRITE_TOOLS = {
    "gateway_discover_tools",
    "gateway_delete_server",
    "gateway_update_tool",
    "gateway_put_toolset",
    "gateway_delete_toolset",
    "gateway_kill_switch",
    "gateway_update_settings",
}
WRITER_TOOLS = ALL_TOOLS - {
    "decide_review_item",
    "apply_privilege_recommendation",
    *GATEWAY_WRITE_TOOLS,
}


async def tool_names(session: ClientSession) -> set[str]:
    listed = await session.list_tools()
    for tool in listed.tools:
        assert tool.description and "Example" in tool.description, tool.name
        assert "store" in tool.input_schema["properties"], tool.name
        assert tool.output_schema is not None, tool.name
    return {t.name for t in listed.tools}


async def call(session: ClientSession, name: str, args: dict[str, Any]) -> CallToolResult:
    result = await session.call_tool(name, args)
    assert isinstance(result, CallToolResult)
    return result


async def ok(session: ClientSession, name: str, args: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Call a tool that must succeed: (structured content, text)."""
    result = await call(session, name, args)
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, text
    assert result.structured_content is not None
    return result.structured_content, text


async def fails(session: ClientSession, name: str, args: dict[str, Any], code: str) -> str:
    """Call a tool that must fail with ``code``: the tool error's text."""
    result = await call(session, name, args)
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error, text
    assert text.startswith(f"{code}: "), text
    assert result.structured_content is not None
    assert result.structured_content["error"]["code"] == code
    return text


async def exercise_read_tools(session: ClientSession) -> None:
    """Every read tool once, on the seeded ``default`` store (see conftest)."""
    model, text = await ok(session, "read_model", {})
    assert "type document" in model["dsl"] and text.startswith(f"model {model['id']}")
    # the seeded model, extended with the built-in base model's identity and gateway types
    assert [t["type"] for t in model["model"]["type_definitions"]] == [
        *("user", "group", "document"),
        *("human", "agent", "workload", "service_account"),
        *("mcp_server", "toolset", "mcp_tool"),
    ]

    d, text = await ok(
        session, "check", {"user": "user:bob", "relation": "viewer", "object": "document:roadmap"}
    )
    assert d["allowed"] is True and d["model_id"] == model["id"] and d["revision"] >= 1
    assert text.startswith("allowed: user:bob has viewer on document:roadmap")
    assert ULID_RE.match(d["decision_id"]) and d["decision_id"] in text
    d, text = await ok(
        session,
        "check",
        {
            "user": "user:carol",
            "relation": "editor",
            "object": "document:roadmap",
            "store": "default",
        },
    )
    assert d["allowed"] is False and text.startswith("denied: ")

    batch, text = await ok(
        session,
        "batch_check",
        {
            "checks": [
                {
                    "user": "user:anne",
                    "relation": "editor",
                    "object": "document:roadmap",
                    "correlation_id": "a",
                },
                {
                    "user": "user:carol",
                    "relation": "viewer",
                    "object": "document:roadmap",
                    "correlation_id": "b",
                },
                {
                    "user": "user:anne",
                    "relation": "nope",
                    "object": "document:roadmap",
                    "correlation_id": "c",
                },
            ]
        },
    )
    by_id = {r["correlation_id"]: r for r in batch["results"]}
    assert by_id["a"]["allowed"] is True and by_id["b"]["allowed"] is False
    assert by_id["c"]["error"]["code"] == "validation_error"
    assert len({r["decision_id"] for r in batch["results"]}) == 3  # one event per item
    assert text == "3 checks: 1 allowed, 1 denied, 1 errors"

    objs, text = await ok(
        session, "list_objects", {"user": "user:bob", "relation": "viewer", "type": "document"}
    )
    assert objs == {"objects": ["document:roadmap"], "decision_id": objs["decision_id"]}
    assert ULID_RE.match(objs["decision_id"]) and text == "1 objects: document:roadmap"

    users, _ = await ok(
        session,
        "list_users",
        {"object": "document:roadmap", "relation": "editor", "filters": ["user"]},
    )
    assert sorted(users["users"]) == ["user:anne", "user:bob"]
    assert ULID_RE.match(users["decision_id"])

    tree, _ = await ok(session, "expand", {"object": "document:roadmap", "relation": "editor"})
    assert tree["tree"]["root"]["name"] == "document:roadmap#editor"
    assert ULID_RE.match(tree["decision_id"])

    why, text = await ok(
        session, "explain", {"user": "user:bob", "relation": "viewer", "object": "document:roadmap"}
    )
    assert why["allowed"] is True and why["paths"] and text.startswith("ALLOWED")
    assert ULID_RE.match(why["decision_id"])
    why, text = await ok(
        session,
        "explain",
        {"user": "user:carol", "relation": "owner", "object": "document:roadmap"},
    )
    assert why["allowed"] is False and why["reasons"] and text.startswith("DENIED")

    page, text = await ok(session, "read_tuples", {"object": "document:roadmap"})
    assert {(t["relation"], t["user"]) for t in page["tuples"]} == {
        ("owner", "user:anne"),
        ("editor", "group:eng#member"),
    }
    assert text.startswith("2 tuples: ")


async def exercise_changes(session: ClientSession) -> None:
    changes, text = await ok(
        session, "read_changes", {"after_revision": 0, "object_type": "document"}
    )
    seeded = changes["changes"][:3]  # the seed's document tuples come first
    assert [c["operation"] for c in seeded] == ["write"] * 3
    assert {(c["tuple"]["object"], c["tuple"]["relation"], c["tuple"]["user"]) for c in seeded} == {
        ("document:roadmap", "owner", "user:anne"),
        ("document:roadmap", "editor", "group:eng#member"),
        ("document:notes", "viewer", "user:carol"),
    }
    assert changes["has_more"] is False
    assert text.startswith(f"{len(changes['changes'])} changes up to revision")


async def exercise_write_tools(session: ClientSession) -> None:
    """Grant, see it (read your writes), revoke, see it gone; then the write errors."""
    carol = {"object": "document:roadmap", "relation": "editor", "user": "user:carol"}
    question = {"user": "user:carol", "relation": "viewer", "object": "document:roadmap"}
    w, text = await ok(session, "write_tuples", {"writes": [carol]})
    assert (
        w["written"] == 1
        and w["deleted"] == 0
        and text == f"wrote 1, deleted 0 at revision {w['revision']}"
    )
    d, _ = await ok(session, "check", {**question, "at_least_as_fresh": w["revision"]})
    assert d["allowed"] is True

    await fails(session, "write_tuples", {"writes": [carol]}, "tuple_exists")
    await fails(
        session,
        "write_tuples",
        {
            "writes": [
                {"object": "document:roadmap", "relation": "owner", "user": "group:eng#member"}
            ]
        },
        "invalid_tuple",
    )

    r, text = await ok(session, "delete_tuples", {"deletes": [carol]})
    assert r["deleted"] == 1 and r["revision"] > w["revision"]
    d, _ = await ok(session, "check", {**question, "at_least_as_fresh": r["revision"]})
    assert d["allowed"] is False
    await fails(session, "delete_tuples", {"deletes": [carol]}, "tuple_missing")
    await ok(session, "delete_tuples", {"deletes": [carol], "idempotent": True})


async def exercise_input_errors(session: ClientSession) -> None:
    text = await fails(session, "check", {"user": "user:anne"}, "validation_error")
    assert "relation" in text
    await fails(session, "check", {**_Q, "surprise": 1}, "validation_error")
    await fails(session, "check", {**_Q, "store": "missing"}, "store_not_found")
    await fails(session, "check", {**_Q, "relation": "nope"}, "validation_error")
    await fails(session, "no_such_tool", {}, "validation_error")


_Q = {"user": "user:anne", "relation": "viewer", "object": "document:roadmap"}

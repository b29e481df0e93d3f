"""The gateway as an MCP server: the official SDK's low-level ``Server`` (issue 9 §2).

An agent connects with its Keyplane access token and sees the downstream servers' tools
it may call, each named ``<server>__<tool>`` (:func:`keyplane.gateway.records.exposed_name`)
with the definition its server announced (title, description, input schema, annotations).
``tools/list`` and ``tools/call`` are the runtime's (:class:`~keyplane.gateway.runtime.GatewayRuntime`):
filtered by the decision point, and every call decided, recorded and forwarded.

The low-level server is used (not ``MCPServer``) because the tool list depends on who
asks and is not known in advance. Which runtime and token a request belongs to is the
transport's business (:mod:`keyplane.gateway.http`: the store in the URL and the bearer
token of each HTTP request; :mod:`keyplane.gateway.stdio`: one store, the token in
``KEYPLANE_ACCESS_TOKEN``).

A refused call is a tool result with ``isError`` whose text starts with the code
(``not_permitted: …``, ``tool_disabled: …``) — what the agent's model reads — and whose
structured content is ``{code, reason, requestable, request?, decision_id}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError as PydanticValidationError

from keyplane import __version__
from keyplane.errors import KeyplaneError
from keyplane.gateway.records import McpTool
from keyplane.gateway.runtime import GatewayRuntime
from keyplane.mcp.errors import error_result
from keyplane.service.context import request_id_var
from keyplane.service.tokens import VerifiedToken

__all__ = ["GatewayRequest", "GatewayResolver", "build_gateway_server", "to_mcp_tool"]

INSTRUCTIONS = (
    "Keyplane's MCP gateway: the tools of the MCP servers your organization connected, "
    "named `<server>__<tool>`. You see only the tools you may call; every call is "
    "authorized for you and for whom you act, and recorded. A refused call says why, "
    "starting with a code (e.g. `not_permitted: …`), and when access can be requested, "
    "how to request it. Declare the purpose of a call in the request `_meta` "
    "`keyplane/purpose` when your token carries none."
)


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """Whom one MCP request is for: the store's runtime, the bearer token, and the token
    already verified for this request when the transport did (HTTP), else None."""

    runtime: GatewayRuntime
    token: str
    verified: VerifiedToken | None = None


#: Finds the runtime and token of one MCP request (raises AuthenticationError if none).
GatewayResolver = Callable[[ServerRequestContext[Any, Any]], GatewayRequest]


def to_mcp_tool(t: McpTool) -> types.Tool:
    """A gateway tool as the agent sees it: the server's definition under its exposed name."""
    annotations: types.ToolAnnotations | None = None
    if t.annotations:
        try:
            annotations = types.ToolAnnotations.model_validate(t.annotations)
        except PydanticValidationError:
            annotations = None
    schema = t.input_schema if t.input_schema else {"type": "object"}
    return types.Tool(
        name=t.exposed,
        title=t.title,
        description=t.description,
        input_schema=schema,
        annotations=annotations,
    )


def build_gateway_server(resolve: GatewayResolver) -> Server[Any]:
    """The gateway's low-level MCP server, for the requests ``resolve`` places."""

    async def on_list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        try:
            req = resolve(ctx)
            _set_request_id(ctx)
            listed = await anyio.to_thread.run_sync(
                lambda: req.runtime.list_tools(req.token, verified=req.verified)
            )
        except KeyplaneError as exc:  # no token, a token that no longer verifies
            raise MCPError(
                code=types.INVALID_REQUEST, message=f"{exc.code}: {exc.message}"
            ) from exc
        return types.ListToolsResult(tools=[to_mcp_tool(t) for t in listed])

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            req = resolve(ctx)
            _set_request_id(ctx)
            meta = params.meta if isinstance(params.meta, dict) else None
            return await req.runtime.call(
                req.token, params.name, params.arguments, meta=meta, verified=req.verified
            )
        except Exception as exc:  # the ledger could not take the decision: not forwarded
            return error_result(exc)

    return Server(
        "keyplane-gateway",
        version=__version__,
        title="Keyplane MCP gateway",
        description="The tools of your organization's MCP servers, each call authorized and recorded.",
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def _set_request_id(ctx: ServerRequestContext[Any, Any]) -> None:
    """One request id per MCP request: the HTTP request's (X-Request-Id) when there is one."""
    state = getattr(getattr(ctx, "request", None), "state", None)
    request_id_var.set(getattr(state, "request_id", None) or uuid.uuid4().hex)

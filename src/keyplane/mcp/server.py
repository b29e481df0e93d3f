"""The MCP server: Keyplane's tools on the official SDK's low-level ``Server``.

The low-level server (not ``MCPServer``) is used because the tool list depends on *who*
asks: ``tools/list`` shows ``write_tuples`` / ``delete_tuples`` only to a caller that may
write tuples on the server's default store, and never when the server is read-only.
``tools/call`` resolves the caller again for every call (so a revoked or expired key stops
working mid-session), refuses write tools in read-only mode, validates the arguments with
the tool's pydantic model and runs one service function in a worker thread. The service
function authorizes the caller on the store the call names — the final word on access.

How the caller is found is the transport's business (:mod:`keyplane.mcp.http`: the bearer
key of each HTTP request; :mod:`keyplane.mcp.stdio`: the key in ``KEYPLANE_API_KEY``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from keyplane import __version__
from keyplane.errors import KeyplaneError, PermissionDeniedError, ValidationError
from keyplane.mcp.errors import error_result
from keyplane.mcp.tools import ToolSpec, build_tools
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services, request_id_var

__all__ = ["CallerResolver", "build_server", "may_write"]

#: Finds the authenticated caller of one MCP request (raises AuthenticationError if none).
#: Called in a worker thread: it may touch the database.
CallerResolver = Callable[[ServerRequestContext[Any, Any]], Caller]

INSTRUCTIONS = (
    "Keyplane answers authorization questions over relationship graphs (OpenFGA models): "
    "may this user do that (`check`, `batch_check`), what may they access (`list_objects`), "
    "who has access (`list_users`), and why (`explain`, `expand`). Acting on someone's "
    "behalf, call `decide` before you act — it checks the whole chain (the person, the "
    "agents between, you), the delegations and the guardrails — and do not act when it "
    "denies: relay its `reason_user`. Call `read_model` first to "
    "learn the types and relations. Users and objects are written `type:id` "
    "(e.g. `user:anne`, `document:roadmap`). Every tool takes an optional `store`. Errors "
    "start with a stable code, e.g. `permission_denied: …`."
)


def may_write(
    svc: Services, caller: Caller, store_id: str, permission: str = Permission.WRITE_TUPLES
) -> bool:
    """Whether ``caller`` holds ``permission`` (default: writing tuples) on ``store_id``: the
    write tools needing it are listed then."""
    try:
        authorize(svc, caller, permission, store_id)
    except PermissionDeniedError:
        return False
    return True


def build_server(
    svc: Services,
    resolve_caller: CallerResolver,
    *,
    read_only: bool = False,
    default_store: str | None = None,
) -> Server[Any]:
    """A low-level MCP server exposing Keyplane's tools to the callers ``resolve_caller`` finds.

    ``read_only`` hides the write tools and marks every caller read-only, so the service
    layer refuses writes too. ``default_store`` is the store used when a call names none
    (default: the ``KEYPLANE_DEFAULT_STORE`` setting).
    """
    store_default = default_store or svc.settings.default_store
    tools = build_tools(store_default)

    def caller_of(ctx: ServerRequestContext[Any, Any]) -> Caller:
        caller = resolve_caller(ctx)
        return caller.with_read_only() if read_only else caller

    def visible(ctx: ServerRequestContext[Any, Any]) -> list[types.Tool]:
        caller = caller_of(ctx)
        held: dict[str, bool] = {}

        def listed(t: ToolSpec) -> bool:
            if not t.writes:
                return True
            if t.permission not in held:
                held[t.permission] = not read_only and may_write(
                    svc, caller, store_default, t.permission
                )
            return held[t.permission]

        return [t.to_mcp() for t in tools.values() if listed(t)]

    async def on_list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        # an unauthenticated list is a protocol error: there is nothing to show it
        try:
            listed = await anyio.to_thread.run_sync(visible, ctx)
        except KeyplaneError as exc:
            raise MCPError(
                code=types.INVALID_REQUEST, message=f"{exc.code}: {exc.message}"
            ) from exc
        return types.ListToolsResult(tools=listed)

    def call(
        ctx: ServerRequestContext[Any, Any], spec: ToolSpec, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        # one request id per tool call: the HTTP request's (X-Request-Id) when there is one
        state = getattr(getattr(ctx, "request", None), "state", None)
        request_id_var.set(getattr(state, "request_id", None) or uuid.uuid4().hex)
        caller = caller_of(ctx)
        if spec.writes and read_only:
            raise PermissionDeniedError(
                f"{spec.name} refused: this MCP server is read-only",
                details={"tool": spec.name, "read_only": True},
            )
        args = spec.input.model_validate(arguments)
        store = getattr(args, "store", None) or store_default
        result, text = spec.run(svc, caller, store, args)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)],
            structured_content=result.model_dump(mode="json"),
        )

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = tools.get(params.name)
        if spec is None:
            return error_result(
                ValidationError(
                    f"unknown tool {params.name!r}; tools/list shows the available ones",
                    details={"tool": params.name},
                )
            )
        try:
            return await anyio.to_thread.run_sync(call, ctx, spec, dict(params.arguments or {}))
        except Exception as exc:
            return error_result(exc)

    return Server(
        "keyplane",
        version=__version__,
        title="Keyplane",
        description="Authorization decisions and relationship tuples from a Keyplane store.",
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )

"""The gateway over stdio (``keyplane gateway stdio --store S``): one agent host, one
process, one store, one access token.

The token comes from ``KEYPLANE_ACCESS_TOKEN`` (an access token of the store from its
token endpoint, obtained for Keyplane — ``aud`` its issuer — or for the gateway's
resource URL when ``KEYPLANE_ISSUER`` names the server). It is verified before the server
starts: with no token, or one that does not verify, the gateway refuses to start (the
host shows the error on stderr) rather than serve a session in which every call would
fail. Each call verifies it again, so a revoked token, a suspended agent or a revoked
delegation takes effect mid-session. Nothing but MCP messages is written to stdout.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp.types as types
from mcp.server import ServerRequestContext
from mcp.server.stdio import stdio_server

from keyplane.errors import AuthenticationError
from keyplane.gateway.records import McpServer
from keyplane.gateway.runtime import GatewayRuntime, Gateways, run_rediscovery
from keyplane.gateway.server import GatewayRequest, build_gateway_server
from keyplane.service.context import Services

__all__ = ["ACCESS_TOKEN_ENV", "serve_gateway_stdio"]

ACCESS_TOKEN_ENV = "KEYPLANE_ACCESS_TOKEN"


class _NoPool:
    async def call_tool(
        self, server: McpServer, tool: str, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        raise RuntimeError("not serving")


_NO_POOL = _NoPool()


def serve_gateway_stdio(svc: Services, store_id: str, token: str | None) -> None:
    """Verify ``token`` (raising AuthenticationError), then serve the gateway of
    ``store_id`` on stdin/stdout until the host closes it."""
    from keyplane.gateway.downstream import DownstreamPool  # local: the MCP client side
    from keyplane.gateway.http import gateway_path

    if not token:
        raise AuthenticationError(
            f"missing access token: set {ACCESS_TOKEN_ENV} to an access token of store "
            f"{store_id!r} (from its token endpoint)"
        )
    issuer = svc.settings.issuer
    audience = issuer.rstrip("/") + gateway_path(store_id) if issuer else None

    # fail fast, before the host starts talking (verifying uses no downstream session)
    GatewayRuntime(svc, store_id, audience=audience, pool=_NO_POOL).authenticate(token)

    async def main() -> None:
        async with DownstreamPool(svc) as pool, anyio.create_task_group() as tg:
            gateways = Gateways(svc, pool)
            runtime = gateways.runtime(store_id, audience)
            gateways.keep(runtime)  # its token verified above

            def resolve(ctx: ServerRequestContext[Any, Any]) -> GatewayRequest:
                return GatewayRequest(runtime, token)  # verified again by every call

            server = build_gateway_server(resolve)
            tg.start_soon(run_rediscovery, svc, gateways)
            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
            tg.cancel_scope.cancel()

    anyio.run(main)

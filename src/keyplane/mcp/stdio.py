"""MCP over stdio (``keyplane mcp``): one agent host, one process, one API key.

The key comes from ``KEYPLANE_API_KEY``. It is checked before the server starts: with no
key, or one that does not authenticate, ``keyplane mcp`` refuses to start (the host shows
the error line on stderr) rather than serving a session in which every call would fail.
Each tool call authenticates the key again, so revoking or expiring it takes effect
mid-session. Nothing but MCP messages is ever written to stdout.
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server import ServerRequestContext
from mcp.server.stdio import stdio_server

from keyplane.mcp.server import build_server
from keyplane.service.auth import Caller
from keyplane.service.context import Services

__all__ = ["API_KEY_ENV", "serve_stdio"]

API_KEY_ENV = "KEYPLANE_API_KEY"


def serve_stdio(
    services: Services,
    api_key: str | None,
    *,
    read_only: bool = False,
    default_store: str | None = None,
) -> None:
    """Authenticate ``api_key`` (raising AuthenticationError), then serve MCP on stdin/stdout."""
    from keyplane.service.keys import authenticate, missing_key

    if not api_key:
        raise missing_key(
            services,
            f"missing API key: set {API_KEY_ENV} to a Keyplane API key",
            surface="mcp-stdio",
            operation="start",
        )
    # fail fast, before the host starts talking
    authenticate(services, api_key, surface="mcp-stdio", operation="start")

    def resolve(ctx: ServerRequestContext[Any, Any]) -> Caller:
        return authenticate(services, api_key, surface="mcp-stdio", operation="tool call")

    server = build_server(services, resolve, read_only=read_only, default_store=default_store)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)

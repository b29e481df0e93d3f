"""A small downstream MCP server for the demo and the quickstart: a ticket tracker.

Run it over stdio (``python -m keyplane.gateway.example_server``), as the gateway runs a
registered stdio server. It wants a token in the environment variable ``TRACKER_TOKEN``
(the gateway injects it: the ``env`` credential) and answers every tool with an error
without one — so a call that works proves the gateway gave it the secret the agent never
had. Tools, with the annotations a real server would send:

- ``list_tickets`` (read-only): the open tickets;
- ``create_ticket`` (no hints: a write): files a ticket, in memory;
- ``delete_project`` (destructive): refuses politely — it is there to be refused first.

Written with the official ``mcp`` SDK's high-level server; nothing Keyplane-specific.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

__all__ = ["TOKEN_ENV", "build_server"]

TOKEN_ENV = "TRACKER_TOKEN"


def build_server() -> MCPServer[Any]:
    tickets: list[dict[str, str]] = [
        {"id": "T-1", "title": "Rotate the deploy key", "state": "open"},
        {"id": "T-2", "title": "Review the agent's access", "state": "open"},
    ]
    server: MCPServer[Any] = MCPServer(name="tracker", version="1.0.0", log_level="WARNING")

    def authorized() -> str:
        token = os.environ.get(TOKEN_ENV)
        if not token:
            raise ValueError(f"unauthorized: no {TOKEN_ENV} (the gateway injects it)")
        # say which token was seen without revealing it
        return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def list_tickets() -> str:
        """List the open tickets."""
        seen = authorized()
        lines = [f"{t['id']} {t['title']} ({t['state']})" for t in tickets]
        return "\n".join(lines) + f"\n(token seen: {seen})"

    @server.tool()
    def create_ticket(title: str) -> str:
        """File a new ticket."""
        authorized()
        ticket = {"id": f"T-{len(tickets) + 1}", "title": title, "state": "open"}
        tickets.append(ticket)
        return f"created {ticket['id']}: {title}"

    @server.tool(annotations=ToolAnnotations(destructive_hint=True))
    def delete_project(project: str) -> str:
        """Delete a whole project with its tickets."""
        authorized()
        return f"refusing to delete {project}: this is a demo"

    return server


if __name__ == "__main__":
    build_server().run("stdio")

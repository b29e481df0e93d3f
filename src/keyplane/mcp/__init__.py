"""Keyplane's MCP server: authorization tools for AI agents (issue 3 §7).

Built on the official ``mcp`` SDK. Tools (:mod:`.tools`) call one service function each
with the authenticated caller; errors become tool errors whose text starts with the
Keyplane error code (:mod:`.errors`). Two transports: stdio for a local agent host
(``keyplane mcp``, key from ``KEYPLANE_API_KEY``; :mod:`.stdio`) and streamable HTTP at
``/mcp`` on ``keyplane serve`` (bearer key per request; :mod:`.http`). A read-only mode
(``--read-only`` / ``KEYPLANE_MCP_READ_ONLY``) hides and refuses the write tools.
"""

from keyplane.mcp.server import build_server
from keyplane.mcp.tools import NOT_EXPOSED, READ_TOOLS, SERVICE_OF_TOOL, WRITE_TOOLS, build_tools

__all__ = [
    "NOT_EXPOSED",
    "READ_TOOLS",
    "SERVICE_OF_TOOL",
    "WRITE_TOOLS",
    "build_server",
    "build_tools",
]

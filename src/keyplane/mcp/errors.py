"""The one place where errors become MCP tool errors.

A failed tool call is a *tool result* with ``isError: true`` (MCP 2025-06-18, "Tools →
Error Handling"), not a JSON-RPC error, so the agent sees it and can correct itself. Its
text always starts with the Keyplane error code — ``permission_denied: key:… may not …`` —
so agents and hosts can match on it; the structured content carries the same error object
the REST envelope carries (``{"error": {"code", "message", "details"?, "fga_code"?}}``).
"""

from __future__ import annotations

import logging

import mcp.types as types
from pydantic import ValidationError as PydanticValidationError

from keyplane.errors import KeyplaneError, ValidationError

__all__ = ["error_result", "to_keyplane_error"]

log = logging.getLogger("keyplane.mcp")


def to_keyplane_error(exc: BaseException) -> KeyplaneError:
    """Any exception a tool may raise, as the Keyplane error to report."""
    if isinstance(exc, KeyplaneError):
        return exc
    if isinstance(exc, PydanticValidationError):
        problems = [
            {"loc": [str(x) for x in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"loc": [], "msg": "invalid arguments"}
        where = ".".join(first["loc"]) or "arguments"
        return ValidationError(f"{where}: {first['msg']}", details={"errors": problems})
    # never leak internals to the agent; the server log has the traceback
    log.exception("MCP tool failed", exc_info=exc)
    return KeyplaneError("internal error")


def error_result(exc: BaseException) -> types.CallToolResult:
    """``exc`` as a tool error whose text starts with the error code."""
    err = to_keyplane_error(exc)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{err.code}: {err.message}")],
        structured_content={"error": err.to_dict()},
        is_error=True,
    )

"""The HTTP surface: Keyplane's REST API (``/v1``), the OpenFGA-compatible API, health,
metrics and MCP over streamable HTTP — one ASGI app, served by ``keyplane serve``.

Handlers hold no logic: authenticate → decode → call one service function → encode.
"""

from keyplane.api.app import create_app

__all__ = ["create_app"]

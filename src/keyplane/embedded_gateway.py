"""The MCP gateway's administration (issue 9) on the embedded :class:`keyplane.Keyplane`:
downstream servers, their tools, toolsets, kill switches and gateway settings, each method
one service call of :mod:`keyplane.service.gateway` (the REST API, CLI and MCP server call
the same ones)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keyplane.gateway.records import (
    DiscoveryResult,
    GatewaySettings,
    McpServer,
    McpTool,
    Toolset,
)
from keyplane.service import gateway
from keyplane.service.gateway import KillSwitch

if TYPE_CHECKING:
    from keyplane.service.auth import Caller
    from keyplane.service.context import Services

__all__ = ["GatewayEmbedded"]


class GatewayEmbedded:
    """The gateway methods of :class:`keyplane.Keyplane` (one of its bases)."""

    if TYPE_CHECKING:
        services: Services
        caller: Caller

        def _store(self, store: str | None) -> str: ...

    def register_server(
        self,
        name: str,
        *,
        store: str | None = None,
        transport: str,
        url: str | None = None,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        description: str | None = None,
        credential: Mapping[str, Any] | None = None,
        secret: str | None = None,
        discovery_interval_seconds: int = 3600,
        discover: bool = True,
    ) -> McpServer:
        """Register a downstream MCP server (its tools discovered now, unless ``discover=False``)."""
        return gateway.register_server(
            self.services,
            self.caller,
            self._store(store),
            name,
            transport=transport,
            url=url,
            command=command,
            env=env,
            description=description,
            credential=credential,
            secret=secret,
            discovery_interval_seconds=discovery_interval_seconds,
            discover=discover,
        )

    def update_server(
        self,
        name: str,
        *,
        store: str | None = None,
        url: str | None = None,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        description: str | None = None,
        credential: Mapping[str, Any] | None = None,
        secret: str | None = None,
        discovery_interval_seconds: int | None = None,
    ) -> McpServer:
        """Change a server; ``None`` leaves a field unchanged."""
        return gateway.update_server(
            self.services,
            self.caller,
            self._store(store),
            name,
            url=url,
            command=command,
            env=env,
            description=description,
            credential=credential,
            secret=secret,
            discovery_interval_seconds=discovery_interval_seconds,
        )

    def get_server(self, name: str, *, store: str | None = None) -> McpServer:
        """One downstream server (never its secret)."""
        return gateway.get_server(self.services, self.caller, self._store(store), name)

    def list_servers(self, *, store: str | None = None) -> list[McpServer]:
        """Every downstream server, by name."""
        return gateway.list_servers(self.services, self.caller, self._store(store))

    def delete_server(self, name: str, *, store: str | None = None) -> int:
        """Remove a server, its tools and the grants on them; the new revision."""
        return gateway.delete_server(self.services, self.caller, self._store(store), name)

    def discover_tools(self, name: str, *, store: str | None = None) -> DiscoveryResult:
        """Discover a server's tools now (an unreachable server: ``error`` set)."""
        return gateway.discover_tools(self.services, self.caller, self._store(store), name)

    def list_tools(
        self, *, store: str | None = None, server: str | None = None, status: str | None = None
    ) -> list[McpTool]:
        """The gateway's tools (by server, then name), optionally of one server or status."""
        return gateway.list_tools(
            self.services, self.caller, self._store(store), server=server, status=status
        )

    def get_tool(self, server: str, tool: str, *, store: str | None = None) -> McpTool:
        """One tool: definition, digest, status, classification."""
        return gateway.get_tool(self.services, self.caller, self._store(store), server, tool)

    def update_tool(
        self,
        server: str,
        tool: str,
        *,
        store: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        risk: str | None = None,
        reason: str | None = None,
        expected_digest: str | None = None,
    ) -> McpTool:
        """Approve (``status='enabled'`` on a pending tool), disable, enable or classify a tool."""
        return gateway.update_tool(
            self.services,
            self.caller,
            self._store(store),
            server,
            tool,
            status=status,
            kind=kind,
            risk=risk,
            reason=reason,
            expected_digest=expected_digest,
        )

    def put_toolset(self, name: str, tools: Sequence[str], *, store: str | None = None) -> Toolset:
        """Set a toolset's tools (``<server>/<tool>`` refs)."""
        return gateway.put_toolset(self.services, self.caller, self._store(store), name, tools)

    def list_toolsets(self, *, store: str | None = None) -> list[Toolset]:
        """Every toolset with its tools and members."""
        return gateway.list_toolsets(self.services, self.caller, self._store(store))

    def delete_toolset(self, name: str, *, store: str | None = None) -> int:
        """Delete a toolset (its tool tuples and member grants); the new revision."""
        return gateway.delete_toolset(self.services, self.caller, self._store(store), name)

    def set_kill_switch(
        self,
        *,
        store: str | None = None,
        level: str,
        target: str | None = None,
        engaged: bool = True,
        reason: str | None = None,
    ) -> KillSwitch:
        """Engage (or with ``engaged=False`` release) a store, server, tool or agent kill switch."""
        return gateway.set_kill_switch(
            self.services,
            self.caller,
            self._store(store),
            level=level,
            target=target,
            engaged=engaged,
            reason=reason,
        )

    def get_gateway_settings(self, *, store: str | None = None) -> GatewaySettings:
        """The store's gateway settings."""
        return gateway.get_gateway_settings(self.services, self.caller, self._store(store))

    def update_gateway_settings(
        self, *, store: str | None = None, record_arguments: bool | None = None
    ) -> GatewaySettings:
        """Change the store's gateway settings (``None``: unchanged)."""
        return gateway.update_gateway_settings(
            self.services, self.caller, self._store(store), record_arguments=record_arguments
        )

"""The MCP gateway's administration (issue 9) in the Python interface: downstream
servers, their tools, toolsets, kill switches and the store's gateway settings.

:class:`GatewayAPI` (and its coroutine twin :class:`AsyncGatewayAPI`) is the part of
:class:`keyplane.sdk.KeyplaneAPI` these operations make up; :class:`GatewayClient` and
:class:`AsyncGatewayClient` implement them over HTTP for :class:`keyplane.Client` and
:class:`keyplane.AsyncClient` (the embedded twin is
:class:`keyplane.embedded_gateway.GatewayEmbedded`). A server's secret goes in
(``secret=``) and never comes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from keyplane.gateway.records import (
    DiscoveryResult,
    GatewaySettings,
    McpServer,
    McpTool,
    Toolset,
)
from keyplane.sdk import gateway_wire as gw
from keyplane.service.gateway import KillSwitch

if TYPE_CHECKING:
    from keyplane.sdk.wire import Call

__all__ = ["AsyncGatewayAPI", "AsyncGatewayClient", "GatewayAPI", "GatewayClient"]

R = TypeVar("R")


class GatewayAPI(Protocol):
    """The gateway's administration; ``store=None`` means the default store."""

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
    ) -> McpServer: ...

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
    ) -> McpServer: ...

    def get_server(self, name: str, *, store: str | None = None) -> McpServer: ...

    def list_servers(self, *, store: str | None = None) -> list[McpServer]: ...

    def delete_server(self, name: str, *, store: str | None = None) -> int: ...

    def discover_tools(self, name: str, *, store: str | None = None) -> DiscoveryResult: ...

    def list_tools(
        self, *, store: str | None = None, server: str | None = None, status: str | None = None
    ) -> list[McpTool]: ...

    def get_tool(self, server: str, tool: str, *, store: str | None = None) -> McpTool: ...

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
    ) -> McpTool: ...

    def put_toolset(
        self, name: str, tools: Sequence[str], *, store: str | None = None
    ) -> Toolset: ...

    def list_toolsets(self, *, store: str | None = None) -> list[Toolset]: ...

    def delete_toolset(self, name: str, *, store: str | None = None) -> int: ...

    def set_kill_switch(
        self,
        *,
        store: str | None = None,
        level: str,
        target: str | None = None,
        engaged: bool = True,
        reason: str | None = None,
    ) -> KillSwitch: ...

    def get_gateway_settings(self, *, store: str | None = None) -> GatewaySettings: ...

    def update_gateway_settings(
        self, *, store: str | None = None, record_arguments: bool | None = None
    ) -> GatewaySettings: ...


class AsyncGatewayAPI(Protocol):
    """:class:`GatewayAPI` as coroutines."""

    async def register_server(
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
    ) -> McpServer: ...

    async def update_server(
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
    ) -> McpServer: ...

    async def get_server(self, name: str, *, store: str | None = None) -> McpServer: ...

    async def list_servers(self, *, store: str | None = None) -> list[McpServer]: ...

    async def delete_server(self, name: str, *, store: str | None = None) -> int: ...

    async def discover_tools(self, name: str, *, store: str | None = None) -> DiscoveryResult: ...

    async def list_tools(
        self, *, store: str | None = None, server: str | None = None, status: str | None = None
    ) -> list[McpTool]: ...

    async def get_tool(self, server: str, tool: str, *, store: str | None = None) -> McpTool: ...

    async def update_tool(
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
    ) -> McpTool: ...

    async def put_toolset(
        self, name: str, tools: Sequence[str], *, store: str | None = None
    ) -> Toolset: ...

    async def list_toolsets(self, *, store: str | None = None) -> list[Toolset]: ...

    async def delete_toolset(self, name: str, *, store: str | None = None) -> int: ...

    async def set_kill_switch(
        self,
        *,
        store: str | None = None,
        level: str,
        target: str | None = None,
        engaged: bool = True,
        reason: str | None = None,
    ) -> KillSwitch: ...

    async def get_gateway_settings(self, *, store: str | None = None) -> GatewaySettings: ...

    async def update_gateway_settings(
        self, *, store: str | None = None, record_arguments: bool | None = None
    ) -> GatewaySettings: ...


class GatewayClient:
    """:class:`GatewayAPI` over HTTP (a base of :class:`keyplane.Client`)."""

    if TYPE_CHECKING:

        def _send(self, call: Call[R]) -> R: ...

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
        return self._send(
            gw.register_server(
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
        return self._send(
            gw.update_server(
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
        )

    def get_server(self, name: str, *, store: str | None = None) -> McpServer:
        """One downstream server (never its secret)."""
        return self._send(gw.get_server(self._store(store), name))

    def list_servers(self, *, store: str | None = None) -> list[McpServer]:
        """Every downstream server, by name."""
        return self._send(gw.list_servers(self._store(store)))

    def delete_server(self, name: str, *, store: str | None = None) -> int:
        """Remove a server, its tools and the grants on them; the new revision."""
        return self._send(gw.delete_server(self._store(store), name))

    def discover_tools(self, name: str, *, store: str | None = None) -> DiscoveryResult:
        """Discover a server's tools now (an unreachable server: ``error`` set)."""
        return self._send(gw.discover_tools(self._store(store), name))

    def list_tools(
        self, *, store: str | None = None, server: str | None = None, status: str | None = None
    ) -> list[McpTool]:
        """The gateway's tools (by server, then name), optionally of one server or status."""
        return self._send(gw.list_tools(self._store(store), server, status))

    def get_tool(self, server: str, tool: str, *, store: str | None = None) -> McpTool:
        """One tool: definition, digest, status, classification."""
        return self._send(gw.get_tool(self._store(store), server, tool))

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
        return self._send(
            gw.update_tool(
                self._store(store),
                server,
                tool,
                status=status,
                kind=kind,
                risk=risk,
                reason=reason,
                expected_digest=expected_digest,
            )
        )

    def put_toolset(self, name: str, tools: Sequence[str], *, store: str | None = None) -> Toolset:
        """Set a toolset's tools (``<server>/<tool>`` refs)."""
        return self._send(gw.put_toolset(self._store(store), name, tools))

    def list_toolsets(self, *, store: str | None = None) -> list[Toolset]:
        """Every toolset with its tools and members."""
        return self._send(gw.list_toolsets(self._store(store)))

    def delete_toolset(self, name: str, *, store: str | None = None) -> int:
        """Delete a toolset (its tool tuples and member grants); the new revision."""
        return self._send(gw.delete_toolset(self._store(store), name))

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
        return self._send(
            gw.set_kill_switch(
                self._store(store), level=level, target=target, engaged=engaged, reason=reason
            )
        )

    def get_gateway_settings(self, *, store: str | None = None) -> GatewaySettings:
        """The store's gateway settings."""
        return self._send(gw.get_gateway_settings(self._store(store)))

    def update_gateway_settings(
        self, *, store: str | None = None, record_arguments: bool | None = None
    ) -> GatewaySettings:
        """Change the store's gateway settings (``None``: unchanged)."""
        return self._send(gw.update_gateway_settings(self._store(store), record_arguments))


class AsyncGatewayClient:
    """:class:`AsyncGatewayAPI` over HTTP (a base of :class:`keyplane.AsyncClient`)."""

    if TYPE_CHECKING:

        async def _send(self, call: Call[R]) -> R: ...

        def _store(self, store: str | None) -> str: ...

    async def register_server(
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
        return await self._send(
            gw.register_server(
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
        )

    async def update_server(
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
        return await self._send(
            gw.update_server(
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
        )

    async def get_server(self, name: str, *, store: str | None = None) -> McpServer:
        """One downstream server (never its secret)."""
        return await self._send(gw.get_server(self._store(store), name))

    async def list_servers(self, *, store: str | None = None) -> list[McpServer]:
        """Every downstream server, by name."""
        return await self._send(gw.list_servers(self._store(store)))

    async def delete_server(self, name: str, *, store: str | None = None) -> int:
        """Remove a server, its tools and the grants on them; the new revision."""
        return await self._send(gw.delete_server(self._store(store), name))

    async def discover_tools(self, name: str, *, store: str | None = None) -> DiscoveryResult:
        """Discover a server's tools now (an unreachable server: ``error`` set)."""
        return await self._send(gw.discover_tools(self._store(store), name))

    async def list_tools(
        self, *, store: str | None = None, server: str | None = None, status: str | None = None
    ) -> list[McpTool]:
        """The gateway's tools (by server, then name), optionally of one server or status."""
        return await self._send(gw.list_tools(self._store(store), server, status))

    async def get_tool(self, server: str, tool: str, *, store: str | None = None) -> McpTool:
        """One tool: definition, digest, status, classification."""
        return await self._send(gw.get_tool(self._store(store), server, tool))

    async def update_tool(
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
        return await self._send(
            gw.update_tool(
                self._store(store),
                server,
                tool,
                status=status,
                kind=kind,
                risk=risk,
                reason=reason,
                expected_digest=expected_digest,
            )
        )

    async def put_toolset(
        self, name: str, tools: Sequence[str], *, store: str | None = None
    ) -> Toolset:
        """Set a toolset's tools (``<server>/<tool>`` refs)."""
        return await self._send(gw.put_toolset(self._store(store), name, tools))

    async def list_toolsets(self, *, store: str | None = None) -> list[Toolset]:
        """Every toolset with its tools and members."""
        return await self._send(gw.list_toolsets(self._store(store)))

    async def delete_toolset(self, name: str, *, store: str | None = None) -> int:
        """Delete a toolset (its tool tuples and member grants); the new revision."""
        return await self._send(gw.delete_toolset(self._store(store), name))

    async def set_kill_switch(
        self,
        *,
        store: str | None = None,
        level: str,
        target: str | None = None,
        engaged: bool = True,
        reason: str | None = None,
    ) -> KillSwitch:
        """Engage (or with ``engaged=False`` release) a store, server, tool or agent kill switch."""
        return await self._send(
            gw.set_kill_switch(
                self._store(store), level=level, target=target, engaged=engaged, reason=reason
            )
        )

    async def get_gateway_settings(self, *, store: str | None = None) -> GatewaySettings:
        """The store's gateway settings."""
        return await self._send(gw.get_gateway_settings(self._store(store)))

    async def update_gateway_settings(
        self, *, store: str | None = None, record_arguments: bool | None = None
    ) -> GatewaySettings:
        """Change the store's gateway settings (``None``: unchanged)."""
        return await self._send(gw.update_gateway_settings(self._store(store), record_arguments))

"""The MCP gateway (issue 9): downstream MCP servers registered per store, their tools as
graph resources with an enforced classification, toolsets, kill switches, and the gateway
itself — an MCP server agents call with their Keyplane access token, deciding every
``tools/call`` inline and recording it in the ledger.

- :mod:`.records` — servers, tools, settings, the state snapshot (shared by every layer)
- :mod:`.downstream` — the MCP client side: connecting to a downstream server (streamable
  HTTP or a stdio command) with its credential injected, listing and calling tools
- :mod:`.runtime` — the gateway's decision and forwarding path, per store
- :mod:`.server` — the gateway as an MCP server (streamable HTTP and stdio)

Administration (register, discover, approve, classify, toolsets, kill switches) is
:mod:`keyplane.service.gateway`, on every surface.
"""

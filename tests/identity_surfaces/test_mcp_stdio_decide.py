"""The kill switch through MCP over stdio (``keyplane mcp``, the transport a local agent
host uses): an agent asks ``decide`` (allowed), a supervisor's key suspends it with the
``suspend_identity`` tool in another session, and the agent's next ``decide`` denies
``identity_suspended`` — across two server processes sharing one database."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from idp_helpers import MODEL
from mcp.types import CallToolResult

from keyplane import Keyplane
from keyplane.config import Settings
from keyplane.policy.records import ScopeGrant
from keyplane.service.auth import Caller
from keyplane.service.keys import bootstrap_admin, create_key
from mcp import ClientSession, StdioServerParameters, stdio_client

pytestmark = pytest.mark.timeout(120)


@asynccontextmanager
async def stdio(url: str, key: str) -> AsyncIterator[ClientSession]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    env.update(
        KEYPLANE_DATABASE_URL=url,
        KEYPLANE_API_KEY=key,
        KEYPLANE_KEY_CACHE_TTL="0",
        KEYPLANE_POLL_INTERVAL="0.05",
    )
    params = StdioServerParameters(command=sys.executable, args=["-m", "keyplane", "mcp"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def _call(s: ClientSession, name: str, args: dict[str, Any]) -> tuple[dict[str, Any], str]:
    result = await s.call_tool(name, args)
    assert isinstance(result, CallToolResult)
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, text
    assert result.structured_content is not None
    return result.structured_content, text


def test_kill_switch_over_stdio(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kp.db'}"
    with Keyplane.open(settings=Settings(database_url=url, poll_interval=0.0)) as kp:
        kp.write_model(MODEL)
        kp.create_identity("human", "alice")
        kp.create_identity("agent", "planner", owners=["human:alice"])
        kp.create_delegation(
            delegator="human:alice",
            delegate="agent:planner",
            scope=[ScopeGrant(("viewer",), "document:roadmap")],
            expires_at=time.time() + 3600,
        )
        kp.write_tuples(
            ["document:roadmap#viewer@human:alice", "document:roadmap#viewer@agent:planner"]
        )
        _, admin = bootstrap_admin(kp.services)
        _, agent_key = create_key(
            kp.services, Caller.system_caller(), owner="planner", roles=["reader"]
        )
    ask = {
        "subject": "human:alice",
        "actors": ["agent:planner"],
        "action": "viewer",
        "resource": "document:roadmap",
    }

    async def main() -> None:
        async with stdio(url, agent_key) as agent:
            d, text = await _call(agent, "decide", ask)
            assert d["allowed"] is True and text.startswith("allowed: ")
            listed = {t.name for t in (await agent.list_tools()).tools}
            assert "decide" in listed and "suspend_identity" not in listed  # a reader key
            async with stdio(url, admin) as supervisor:
                sus, _ = await _call(
                    supervisor, "suspend_identity", {"node": "agent:planner", "reason": "loop"}
                )
                assert sus["status"] == "suspended"
            # the agent's server is another process: it sees the suspension by tailing
            deadline = time.monotonic() + 10
            while True:
                d, text = await _call(agent, "decide", ask)
                if not d["allowed"] or time.monotonic() > deadline:
                    break
                await anyio.sleep(0.05)
            assert d["code"] == "identity_suspended", d
            assert text.startswith("denied (identity_suspended): ")

    anyio.run(main)

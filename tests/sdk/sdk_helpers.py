"""Helpers shared by the SDK and CLI tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from keyplane import AsyncClient


class SyncOverAsync:
    """Drives a real :class:`AsyncClient` from synchronous scenario code, one event loop
    for its whole life (``list_objects`` is drained into an iterator)."""

    def __init__(self, url: str, key: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.ac = AsyncClient(url, key)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self.ac, name)

        def call(*args: Any, **kw: Any) -> Any:
            result = self.loop.run_until_complete(fn(*args, **kw))
            if name == "list_objects":
                return iter(self.loop.run_until_complete(_drain(result)))
            return result

        return call

    def close(self) -> None:
        self.loop.run_until_complete(self.ac.aclose())
        self.loop.close()


async def _drain(it: Any) -> list[str]:
    return [x async for x in it]

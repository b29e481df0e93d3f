"""What every service function needs, bundled: settings, storage, graphs, clock, auth cache."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from keyplane.clock import Clock, SystemClock
from keyplane.config import Settings
from keyplane.service.authcache import AuthCache
from keyplane.service.graphs import GraphRegistry
from keyplane.storage import open_storage
from keyplane.storage.base import Storage

__all__ = ["Services", "request_id_var"]

#: The id of the request being served, for the ledger's events. Each surface sets it (the
#: REST middleware from ``X-Request-Id`` or a fresh one, the MCP server per tool call); a
#: service call made with none set (the embedded API) gets a fresh id per call.
request_id_var: ContextVar[str | None] = ContextVar("keyplane_request_id", default=None)


@dataclass
class Services:
    settings: Settings
    storage: Storage
    graphs: GraphRegistry
    clock: Clock
    #: recently authenticated API keys and last-used throttling (see service/authcache.py)
    auth: AuthCache = field(default_factory=AuthCache)

    @classmethod
    def open(cls, settings: Settings | None = None, *, clock: Clock | None = None) -> Services:
        settings = settings or Settings.from_env()
        clock = clock or SystemClock()
        storage = open_storage(settings.database_url)
        graphs = GraphRegistry(
            storage,
            poll_interval=settings.poll_interval,
            clock=clock,
            max_depth=settings.max_depth,
        )
        return cls(settings, storage, graphs, clock)

    def close(self) -> None:
        self.graphs.close()
        self.storage.close()

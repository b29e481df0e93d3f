"""Fixtures for the SDK tests: a real uvicorn server with a real admin key, and the
embedded Keyplane on a database of its own, configured alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sdk_helpers import SyncOverAsync

from keyplane import Client, Keyplane, Settings
from keyplane.service.context import Services
from live_server import Server, admin_key, serve


def settings(path: Path) -> Settings:
    # a short consistency timeout so consistency_timeout errors come quickly on both sides
    return Settings(database_url=f"sqlite:///{path}", consistency_timeout=0.3)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    svc = Services.open(settings(tmp_path / "server.db"))
    try:
        key = admin_key(svc)
        with serve(svc) as url:
            yield Server(url, key, svc)
    finally:
        svc.close()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Keyplane]:
    with Keyplane.open(settings=settings(tmp_path / "embedded.db")) as kp:
        yield kp


@pytest.fixture
def async_client(server: Server) -> Iterator[SyncOverAsync]:
    c = SyncOverAsync(server.url, server.key)
    try:
        yield c
    finally:
        c.close()

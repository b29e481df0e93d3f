"""Fixtures for the SDK tests: a real uvicorn server with a real admin key, and the
embedded Keyplane on a database of its own, configured alike."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from sdk_helpers import SyncOverAsync

from keyplane import Client, Keyplane, Settings
from keyplane.service.context import Services
from live_server import Server, admin_key, serve

POSTGRES_URL = os.environ.get(
    "KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


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
def pg_server() -> Iterator[Server]:
    """The server on PostgreSQL, in a schema of its own (dropped afterwards)."""
    schema = f"kp_sdk_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options={quote(f'-csearch_path={schema}')}"
            svc = Services.open(Settings(database_url=url, consistency_timeout=0.3))
            try:
                key = admin_key(svc)
                with serve(svc) as base:
                    yield Server(base, key, svc)
            finally:
                svc.close()
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


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

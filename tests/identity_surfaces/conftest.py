"""Fixtures for the identity-plane surface tests (issue 5): a real uvicorn server on a
seeded SQLite database (``live``: real API keys of each role, see :mod:`idp_helpers`), and
the embedded Keyplane on a database of its own with the same model."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from idp_helpers import MODEL, Live, seed

from keyplane import Keyplane
from keyplane.config import Settings
from keyplane.service.context import Services
from live_server import serve


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    svc = Services.open(Settings(database_url=url, poll_interval=0.0, consistency_timeout=0.5))
    try:
        keys = seed(svc)
        with serve(svc) as base:
            yield Live(base, keys, svc, url)
    finally:
        svc.close()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Keyplane]:
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    with Keyplane.open(settings=Settings(database_url=url, poll_interval=0.0)) as kp:
        kp.write_model(MODEL)
        yield kp


POSTGRES_URL = os.environ.get(
    "KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def live_pg() -> Iterator[Live]:
    """The same server on PostgreSQL, in a schema of its own (dropped afterwards)."""
    schema = f"kp_idp_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in POSTGRES_URL else "?"
            url = f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}')}"
            svc = Services.open(
                Settings(database_url=url, poll_interval=0.0, consistency_timeout=0.5)
            )
            try:
                keys = seed(svc)
                with serve(svc) as base:
                    yield Live(base, keys, svc, url)
            finally:
                svc.close()
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_live(request: pytest.FixtureRequest) -> Live:
    """``live`` on SQLite, then on PostgreSQL."""
    name = "live" if request.param == "sqlite" else "live_pg"
    server: Live = request.getfixturevalue(name)
    return server

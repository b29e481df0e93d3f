"""Fixtures of the governance-analytics surface tests: a real uvicorn server on a seeded
SQLite (or PostgreSQL) database with real API keys of each role, and the embedded
Keyplane on a database of its own seeded the same way."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from posture_helpers import MODEL, Live, seed

from keyplane import Keyplane
from keyplane.config import Settings
from keyplane.service import stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from live_server import serve

POSTGRES_URL = os.environ.get(
    "KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _keys(svc: Services) -> dict[str, str]:
    from keyplane.service.keys import authenticate, bootstrap_admin, create_key

    _, admin_secret = bootstrap_admin(svc)
    admin = authenticate(svc, admin_secret)
    keys = {"admin": admin_secret}
    for role in ("writer", "auditor", "reader"):
        _, secret = create_key(svc, admin, owner=f"test-{role}", roles=[role])
        keys[role] = secret
    return keys


def _open(url: str) -> Services:
    return Services.open(Settings(database_url=url, poll_interval=0.0, consistency_timeout=0.5))


def _serve(url: str) -> Iterator[Live]:
    svc = _open(url)
    try:
        stores.create_store(svc, Caller.system_caller(), "default", store_id="default")
        kp = Keyplane(svc)
        kp.write_model(MODEL)
        seed(kp)
        keys = _keys(svc)
        with serve(svc) as base:
            yield Live(base, keys, url)
    finally:
        svc.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    yield from _serve(f"sqlite:///{tmp_path / 'server.db'}")


@pytest.fixture
def live_pg() -> Iterator[Live]:
    """The same server on PostgreSQL, in a schema of its own (dropped afterwards)."""
    schema = f"kp_posture_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in POSTGRES_URL else "?"
            yield from _serve(f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}')}")
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_live(request: pytest.FixtureRequest) -> Live:
    """``live`` on SQLite, then on PostgreSQL."""
    server: Live = request.getfixturevalue("live" if request.param == "sqlite" else "live_pg")
    return server


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Keyplane]:
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    with Keyplane.open(settings=Settings(database_url=url, poll_interval=0.0)) as kp:
        kp.write_model(MODEL)
        seed(kp)
        yield kp

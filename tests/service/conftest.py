from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from keyplane import FixedClock, Keyplane, Settings

PG_URL = os.environ.get("KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

MODEL = """\
model
  schema 1.1

type user

type group
  relations
    define member: [user, group#member]

type folder
  relations
    define viewer: [user, group#member]

type document
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user]
    define viewer: ([user, user:*, group#member, user with in_hours] or owner or viewer from parent) but not blocked

condition in_hours(hour: int) {
  hour >= 9 && hour < 18
}
"""


@pytest.fixture
def model_dsl() -> str:
    return MODEL


@pytest.fixture
def database_url(storage_url: str) -> str:
    """Each service test runs on SQLite and on PostgreSQL (``storage_url`` in tests/conftest.py)."""
    return storage_url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000.0)


@pytest.fixture
def store_id() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def kp(database_url: str, clock: FixedClock, store_id: str) -> Iterator[Keyplane]:
    settings = Settings(database_url=database_url, poll_interval=0.0, default_store=store_id)
    k = Keyplane.open(settings=settings, clock=clock)
    try:
        k.write_model(MODEL)
        yield k
    finally:
        try:
            k.delete_store(store_id)
        finally:
            k.close()

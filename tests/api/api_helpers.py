"""Helpers shared by the REST API tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from keyplane.config import Settings

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


BASE_URL = "http://keyplane.test"


def make_settings(path: Path, **overrides: Any) -> Settings:
    # no tailer thread (this process makes every write) and a short consistency wait
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{path}",
        "poll_interval": 0.0,
        "consistency_timeout": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


async def new_store(client: httpx.AsyncClient, *, model: str | None = MODEL) -> str:
    """Create a store (with the test model, unless ``model=None``) and return its id."""
    r = await client.post("/v1/stores", json={"name": "test"})
    assert r.status_code == 201, r.text
    store: str = r.json()["id"]
    if model is not None:
        r = await client.post(f"/v1/stores/{store}/models", json={"dsl": model})
        assert r.status_code == 201, r.text
    return store


async def write(client: httpx.AsyncClient, store: str, *tuples: dict[str, Any]) -> int:
    r = await client.post(f"/v1/stores/{store}/tuples/write", json={"writes": list(tuples)})
    assert r.status_code == 200, r.text
    rev: int = r.json()["revision"]
    return rev


def tk(object: str, relation: str, user: str, **extra: Any) -> dict[str, Any]:
    return {"object": object, "relation": relation, "user": user, **extra}

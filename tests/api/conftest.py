"""Fixtures for the REST API tests: the real app over real HTTP, authenticated by real keys.

Requests go through httpx's ``ASGITransport`` into :func:`keyplane.api.create_app` (the
full middleware stack, routing, validation and error handlers); one module also runs a
real uvicorn server. Keys are minted with :func:`keyplane.service.keys.bootstrap_admin`
(as ``keyplane init`` does) and :func:`keyplane.service.keys.create_key` — no dependency
overrides. Tests are ``async`` (anyio, asyncio backend).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import BASE_URL, make_settings
from fastapi import FastAPI

from keyplane.api import create_app
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import bootstrap_admin, create_key


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    svc = Services.open(make_settings(tmp_path / "api.db"))
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services)


@pytest.fixture
def admin_key(services: Services) -> str:
    """The first admin key, minted as ``keyplane init`` does."""
    _, secret = bootstrap_admin(services)
    return secret


def _client(app: FastAPI, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers
    )


@pytest.fixture
async def client(app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client authenticated with the admin key."""
    async with _client(app, admin_key) as c:
        yield c


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client without any key."""
    async with _client(app, None) as c:
        yield c


@pytest.fixture
async def client_with_roles(
    app: FastAPI, services: Services
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """``client_with_roles("reader:<store>")`` — a client holding a fresh key with those roles."""
    opened: list[httpx.AsyncClient] = []

    def make(*roles: str) -> httpx.AsyncClient:
        _, secret = create_key(services, Caller.system_caller(), owner="test", roles=list(roles))
        c = _client(app, secret)
        opened.append(c)
        return c

    yield make
    for c in opened:
        await c.aclose()

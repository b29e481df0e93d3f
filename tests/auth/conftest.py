"""Fixtures for the authentication and control-plane authorization tests.

Every test runs on SQLite and on PostgreSQL (``storage_url`` in tests/conftest.py), with a
:class:`~keyplane.clock.FixedClock` so expiry, rotation overlaps, the key cache TTL and
last-used throttling are driven without sleeping. Keys are real: minted by
:mod:`keyplane.service.keys` and authenticated from their ``kp_…`` strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from auth_helpers import SYSTEM

from keyplane.clock import FixedClock
from keyplane.config import Settings
from keyplane.embedded import Keyplane
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, bootstrap_admin, create_key


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000.0)


@pytest.fixture
def open_services(storage_url: str, clock: FixedClock) -> Iterator[Callable[..., Services]]:
    """Open services on the test database (several = several processes' worth)."""
    opened: list[Services] = []

    def open_(**overrides: Any) -> Services:
        values: dict[str, Any] = {"database_url": storage_url, "poll_interval": 0.0}
        values.update(overrides)
        kp = Keyplane.open(settings=Settings(**values), clock=clock)
        opened.append(kp.services)
        return kp.services

    yield open_
    for svc in opened:
        svc.close()


@pytest.fixture
def svc(open_services: Callable[..., Services]) -> Services:
    return open_services()


@pytest.fixture
def admin(svc: Services) -> Caller:
    _, secret = bootstrap_admin(svc)
    return authenticate(svc, secret)


@pytest.fixture
def mint(svc: Services) -> Callable[..., tuple[str, str]]:
    """Create a key as the system caller; returns ``(key id, secret)``."""

    def mint_(*roles: str, expires_in: float | None = None, owner: str = "test") -> tuple[str, str]:
        rec, secret = create_key(svc, SYSTEM, owner=owner, roles=roles, expires_in=expires_in)
        return rec.id, secret

    return mint_

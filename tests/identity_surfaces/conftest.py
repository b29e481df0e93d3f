"""Fixtures for the identity-plane surface tests (issue 5): a real uvicorn server on a
seeded SQLite database (``live``: real API keys of each role, see :mod:`idp_helpers`), and
the embedded Keyplane on a database of its own with the same model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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

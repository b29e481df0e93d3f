"""Fixtures for the OpenFGA-compatible API: a real uvicorn server with a real admin API key
(made the way ``keyplane init`` does), and official ``openfga-sdk`` clients pointed at it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfga_sdk.models import CreateStoreRequest
from openfga_sdk.sync import OpenFgaClient

from keyplane.config import Settings
from keyplane.service.context import Services

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the conformance harness (tests/conformance/fga_harness.py) is imported by module name
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "conformance"))

from fga_live import FgaServer, serve


@pytest.fixture(scope="module")
def fga_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FgaServer]:
    """One server per test module, with a real admin key made the way ``keyplane init`` does."""
    from keyplane.service.keys import bootstrap_admin

    db = tmp_path_factory.mktemp("openfga") / "keyplane.db"
    svc = Services.open(Settings(database_url=f"sqlite:///{db}", consistency_timeout=2.0))
    try:
        _, secret = bootstrap_admin(svc)
        with serve(svc) as url:
            yield FgaServer(url, secret, svc)
    finally:
        svc.close()


@pytest.fixture
def fga(fga_server: FgaServer) -> Iterator[OpenFgaClient]:
    """A sync SDK client bound to a fresh store (created through the SDK)."""
    with fga_server.client() as admin:
        store = admin.create_store(CreateStoreRequest(name="sdk-test"))
    with fga_server.client(store_id=store.id) as c:
        yield c

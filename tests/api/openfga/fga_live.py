"""A live Keyplane server for the OpenFGA-compatibility tests, and OpenFGA SDK clients for it.

``serve(services)`` runs ``create_app(services)`` under uvicorn on 127.0.0.1 (an OS-picked
port) in a thread; :class:`FgaServer` builds official ``openfga-sdk`` clients that send a
Keyplane API key as their ``api_token`` credentials.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from openfga_sdk import ClientConfiguration
from openfga_sdk.configuration import RetryParams
from openfga_sdk.credentials import CredentialConfiguration, Credentials
from openfga_sdk.sync import OpenFgaClient

from keyplane.api import create_app
from keyplane.service.context import Services


@dataclass
class FgaServer:
    url: str
    key: str
    services: Services

    def config(self, *, store_id: str | None = None, key: str | None = None) -> ClientConfiguration:
        creds = Credentials(
            method="api_token",
            configuration=CredentialConfiguration(api_token=key or self.key),
        )
        return ClientConfiguration(
            api_url=self.url,
            store_id=store_id,
            credentials=creds,
            retry_params=_no_retries(),
        )

    def client(self, *, store_id: str | None = None, key: str | None = None) -> OpenFgaClient:
        return OpenFgaClient(self.config(store_id=store_id, key=key))


def _no_retries() -> Any:
    # errors must surface at once, not after the SDK's back-off
    return RetryParams(max_retry=0, min_wait_in_ms=10)


@contextmanager
def serve(services: Services) -> Iterator[str]:
    """``create_app(services)`` under uvicorn on 127.0.0.1 (an OS-picked port), in a thread."""
    app = create_app(services)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

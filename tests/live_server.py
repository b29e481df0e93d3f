"""A real Keyplane server for tests: uvicorn on a loopback port, in a thread, real API keys.

``serve(services)`` yields the base URL of ``create_app(services)`` served by uvicorn on
``127.0.0.1`` (a port the OS picks), and stops it afterwards. ``admin_key(services)``
mints the first admin key the way ``keyplane init`` does. :class:`Server` bundles the
URL, that key and the server's services.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from keyplane.api import create_app
from keyplane.sdk import Client
from keyplane.service.context import Services


@contextmanager
def serve(services: Services) -> Iterator[str]:
    app = create_app(services)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
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


def admin_key(services: Services) -> str:
    """The first admin key's secret (``kp_…``), as ``keyplane init`` prints it."""
    from keyplane.service.keys import bootstrap_admin

    _, secret = bootstrap_admin(services)
    return secret


class Server:
    def __init__(self, url: str, key: str, services: Services) -> None:
        self.url, self.key, self.services = url, key, services

    def client(self, **kw: Any) -> Client:
        return Client(self.url, self.key, **kw)

"""The Python SDK: Keyplane over HTTP with the embedded API's interface.

* :class:`Client` — synchronous, over httpx;
* :class:`AsyncClient` — the same for asyncio;
* :class:`KeyplaneAPI` / :class:`AsyncKeyplaneAPI` — the protocols they share with the
  embedded :class:`keyplane.Keyplane`, so code can take either;
* :func:`connect` — a :class:`Client` for an ``http(s)://`` URL, else the embedded database.

Method names, keyword arguments, result types and errors are the embedded API's: a program
moves between in-process and client-server by changing one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyplane.sdk.async_client import AsyncClient
from keyplane.sdk.client import Client
from keyplane.sdk.protocol import AsyncKeyplaneAPI, KeyplaneAPI

if TYPE_CHECKING:
    from keyplane.config import Settings
    from keyplane.embedded import Keyplane

__all__ = ["AsyncClient", "AsyncKeyplaneAPI", "Client", "KeyplaneAPI", "connect", "open"]


def open(url_or_path: str | None = None, *, settings: Settings | None = None) -> Keyplane:
    """Keyplane in this process on a database URL or SQLite path (``keyplane.open``).

    ``"sqlite:///keyplane.db"``, ``"postgresql://…"`` or a plain path such as
    ``"keyplane.db"``; ``None`` reads ``KEYPLANE_DATABASE_URL``. Returns the embedded
    :class:`keyplane.Keyplane`, which satisfies :class:`KeyplaneAPI`.
    """
    from keyplane.embedded import Keyplane

    if settings is not None:
        return Keyplane.open(url_or_path, settings=settings)
    return Keyplane.open(url_or_path)


def connect(
    target: str | None = None,
    *,
    api_key: str | None = None,
    timeout: float | None = None,
    settings: Settings | None = None,
) -> KeyplaneAPI:
    """A server (``http://`` / ``https://`` → :class:`Client`) or a database (embedded)."""
    if target is not None and target.startswith(("http://", "https://")):
        if timeout is None:
            return Client(target, api_key)
        return Client(target, api_key, timeout=timeout)
    return open(target, settings=settings)

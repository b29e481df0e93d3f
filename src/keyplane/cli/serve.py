"""``keyplane serve`` — everything on one port, for operators (issue 3 §9).

Opens the database named by ``--db`` / ``KEYPLANE_DATABASE_URL`` (creating the default
store on first use, like every other command) and runs uvicorn on
:func:`keyplane.api.create_app`: Keyplane's REST API (``/v1``), the OpenFGA-compatible API
(``/stores``), MCP over streamable HTTP (``/mcp``), ``/healthz``, ``/readyz``, ``/metrics``.

One process serves one event loop (httptools + uvloop when installed — they are declared
dependencies). The decision endpoints are CPU-bound Python, so one process uses about one
core: for more, run several ``keyplane serve`` processes on the same database (SQLite
WAL or PostgreSQL; each has its own graph cache, tailer and ledger writer, and the ledger
chains stay consistent because appends lock the chain head in the database) behind a load
balancer or on several ports. bench/README.md has the one-process figures.
"""

from __future__ import annotations

import contextlib
import gc
import signal
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from keyplane.config import Settings
from keyplane.errors import KeyplaneError

if TYPE_CHECKING:
    from keyplane.service.context import Services

__all__ = ["serve"]


def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port to listen on.")] = 8080,
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="KEYPLANE_DATABASE_URL", help="Database URL or SQLite path."),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level: info, warning, debug…")
    ] = "info",
) -> None:
    """Serve the REST API, the OpenFGA-compatible API and MCP (/mcp) on one port."""
    import uvicorn

    from keyplane.api import create_app
    from keyplane.embedded import Keyplane

    settings = Settings.from_env(database_url=db)
    try:
        kp = Keyplane.open(settings=settings)
    except KeyplaneError as exc:
        typer.echo(f"error[{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(1) from None
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal with the
    # handler it found installed: make that handler a clean exit, so the database is
    # closed below and the process ends with status 0 instead of dying of the signal
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped)
    _warm(kp.services)
    try:
        # httptools and uvloop (declared dependencies) when importable: "auto" picks them
        uvicorn.run(
            create_app(kp.services),
            host=host,
            port=port,
            log_level=log_level,
            http="auto",
            loop="auto",
        )
    finally:
        kp.close()


def _warm(services: Services) -> None:
    """Load the default store's graph before the first request, then move everything
    allocated so far (graphs of millions of objects) out of the garbage collector's sight
    (``gc.freeze``): a full collection would otherwise walk them all, a pause of tens of
    milliseconds at a time under load. Stores loaded later are collected as usual."""
    with contextlib.suppress(KeyplaneError):
        services.graphs.engine(services.settings.default_store)
        services.graphs.policy(services.settings.default_store)
    gc.collect()
    gc.freeze()


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)

"""Every Keyplane setting: its environment variable, its default and what it does.

Settings are read once, from the environment, into a frozen :class:`Settings`. The
embedding API and every surface take a ``Settings`` (or build one with
:func:`Settings.from_env`), so tests set values explicitly instead of patching globals.

==================================  =====================  ==========================================
variable                            default                meaning
==================================  =====================  ==========================================
``KEYPLANE_DATABASE_URL``           ``sqlite:///keyplane.db``  where the truth lives: a SQLite file or
                                                           ``postgresql://…``
``KEYPLANE_MAX_DEPTH``              ``25``                 resolution depth limit (error 2002 past it)
``KEYPLANE_CONSISTENCY_TIMEOUT``    ``5``                  seconds a request with ``at_least_as_fresh``
                                                           waits for its revision before failing
``KEYPLANE_POLL_INTERVAL``          ``0.2``                seconds between changelog polls of the
                                                           background tailer (0 disables it)
``KEYPLANE_MAX_WRITE_TUPLES``       ``1000``               tuples (writes + deletes) in one write
``KEYPLANE_MAX_BATCH_CHECK``        ``1000``               items in one batch check
``KEYPLANE_MAX_CONTEXTUAL_TUPLES``  ``100``                contextual tuples in one request
``KEYPLANE_MAX_PAGE_SIZE``          ``1000``               largest page of any paginated read
``KEYPLANE_MAX_BODY_BYTES``         ``1048576``            largest HTTP request body (413 past it)
``KEYPLANE_DEFAULT_STORE``          ``default``            the store a call names when it names none
``KEYPLANE_MCP_READ_ONLY``          ``false``              the MCP server hides and refuses its write tools
``KEYPLANE_KEY_CACHE_TTL``          ``5``                  seconds an authenticated API key (or OAuth
                                                           client secret) is cached in a process: a
                                                           revocation or rotation made by *another*
                                                           process takes effect within this long
``KEYPLANE_LEDGER_MODE``            ``sync``               ``sync``: a decision returns only once its
                                                           ledger event is committed; ``async``: a
                                                           bounded queue with back-pressure
``KEYPLANE_LEDGER_CHECKPOINT_EVENTS``  ``1000``            sign the chain head after this many events
``KEYPLANE_LEDGER_CHECKPOINT_SECONDS`` ``10``              ... or this many seconds after a new event
``KEYPLANE_LEDGER_ASYNC_CAPACITY``  ``100000``             events queued in ``async`` mode before
                                                           ``record`` blocks
``KEYPLANE_MASTER_KEY``             (none)                 base64url 32-byte key encrypting ledger
                                                           private keys (else the key file)
``KEYPLANE_MASTER_KEY_FILE``        (beside the database)  the master key file, created 0600 if missing
``KEYPLANE_LEDGER_HMAC_FIELDS``     (none)                 event fields stored as HMAC-SHA256, e.g.
                                                           ``subject,details.context``
``KEYPLANE_LEDGER_WEBHOOK_INTERVAL``  ``1``                seconds between delivery rounds of the ledger
                                                           webhooks (0 disables the deliverer thread)
``KEYPLANE_ISSUER``                 (the request's base)   the OAuth issuer URL (``https://auth.example``);
                                                           a store's issuer is ``<issuer>/stores/<id>``
``KEYPLANE_TOKEN_MAX_TTL``          ``3600``               the longest a token may live (seconds); a
                                                           retiring signing key stays published this long
==================================  =====================  ==========================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

__all__ = ["SETTINGS_ENV", "Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite:///keyplane.db"
    max_depth: int = 25
    consistency_timeout: float = 5.0
    poll_interval: float = 0.2
    max_write_tuples: int = 1000
    max_batch_check: int = 1000
    max_contextual_tuples: int = 100
    max_page_size: int = 1000
    max_body_bytes: int = 1_048_576
    default_store: str = "default"
    mcp_read_only: bool = False
    key_cache_ttl: float = 5.0
    ledger_mode: str = "sync"
    ledger_checkpoint_events: int = 1000
    ledger_checkpoint_seconds: float = 10.0
    ledger_async_capacity: int = 100_000
    #: never printed: ``repr(settings)`` leaves it out
    master_key: str | None = field(default=None, repr=False)
    master_key_file: str | None = None
    ledger_hmac_fields: str = ""
    ledger_webhook_interval: float = 1.0
    issuer: str | None = None
    token_max_ttl: int = 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read every ``KEYPLANE_*`` variable; keyword overrides win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            var = SETTINGS_ENV[f.name]
            if var in env:
                raw = env[var]
                default = f.default
                if isinstance(default, bool):
                    values[f.name] = raw.lower() in {"1", "true", "yes", "on"}
                elif isinstance(default, int):
                    values[f.name] = int(raw)
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


SETTINGS_ENV: dict[str, str] = {
    "database_url": "KEYPLANE_DATABASE_URL",
    "max_depth": "KEYPLANE_MAX_DEPTH",
    "consistency_timeout": "KEYPLANE_CONSISTENCY_TIMEOUT",
    "poll_interval": "KEYPLANE_POLL_INTERVAL",
    "max_write_tuples": "KEYPLANE_MAX_WRITE_TUPLES",
    "max_batch_check": "KEYPLANE_MAX_BATCH_CHECK",
    "max_contextual_tuples": "KEYPLANE_MAX_CONTEXTUAL_TUPLES",
    "max_page_size": "KEYPLANE_MAX_PAGE_SIZE",
    "max_body_bytes": "KEYPLANE_MAX_BODY_BYTES",
    "default_store": "KEYPLANE_DEFAULT_STORE",
    "mcp_read_only": "KEYPLANE_MCP_READ_ONLY",
    "key_cache_ttl": "KEYPLANE_KEY_CACHE_TTL",
    "ledger_mode": "KEYPLANE_LEDGER_MODE",
    "ledger_checkpoint_events": "KEYPLANE_LEDGER_CHECKPOINT_EVENTS",
    "ledger_checkpoint_seconds": "KEYPLANE_LEDGER_CHECKPOINT_SECONDS",
    "ledger_async_capacity": "KEYPLANE_LEDGER_ASYNC_CAPACITY",
    "master_key": "KEYPLANE_MASTER_KEY",
    "master_key_file": "KEYPLANE_MASTER_KEY_FILE",
    "ledger_hmac_fields": "KEYPLANE_LEDGER_HMAC_FIELDS",
    "ledger_webhook_interval": "KEYPLANE_LEDGER_WEBHOOK_INTERVAL",
    "issuer": "KEYPLANE_ISSUER",
    "token_max_ttl": "KEYPLANE_TOKEN_MAX_TTL",
}

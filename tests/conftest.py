"""Shared fixtures.

``storage_url`` / ``storage`` run a test once per backend: SQLite (a fresh file in the
test's tmp dir) and PostgreSQL (marked ``postgres``). PostgreSQL comes from
``KEYPLANE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``); each
pytest session works in its own schema (``search_path`` set through the URL), dropped at the
end, and each test empties the tables it used, so parallel runs never collide. If
PostgreSQL does not answer, the postgres tests FAIL — loudly, never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from keyplane.storage import Storage, open_storage

POSTGRES_URL = os.environ.get(
    "KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
_DATA_TABLES = (
    "changelog",
    "tuples",
    "authorization_models",
    "stores",
    "api_keys",
    # the ledger outlives delete_store, so tests must empty it themselves
    "ledger_events",
    "ledger_heads",
    "ledger_checkpoints",
    "ledger_keys",
    "ledger_webhooks",
    "ledger_retention",
    # the identity plane (migration 0007)
    "identities",
    "delegations",
    "guardrail_sets",
    "store_policies",
    # token signing keys (migration 0008)
    "signing_keys",
    # client credentials (migration 0009)
    "client_credentials",
    "client_assertion_jtis",
    # revoked access tokens (migration 0010)
    "revoked_tokens",
    # access requests and reviews (migration 0011)
    "entitlements",
    "access_requests",
    "review_campaigns",
    "review_items",
    # the MCP gateway (migration 0012)
    "gateway_servers",
    "gateway_tools",
    "gateway_settings",
    # SCIM 2.0 resources (migration 0013)
    "scim_resources",
    # identity source imports (migration 0014)
    "source_imports",
)


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A libpq URL whose search_path is a schema private to this pytest session."""
    schema = f"kp_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        required = os.environ.get("KEYPLANE_REQUIRE_POSTGRES") == "1"
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({exc}); start it or set "
            f"KEYPLANE_TEST_POSTGRES_URL{' (required in CI)' if required else ''}",
            pytrace=False,
        )
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield _with_search_path(POSTGRES_URL, schema)
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'keyplane.db'}"
        return
    url: str = request.getfixturevalue("postgres_schema_url")
    yield url
    # empty the tables (cheaper than dropping them; the schema is the session's own)
    with psycopg.connect(url, autocommit=True) as conn:
        present = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        names = [r[0] for r in present if r[0] in _DATA_TABLES]
        if names:
            conn.execute("TRUNCATE " + ", ".join(names))


@pytest.fixture
def storage(storage_url: str) -> Iterator[Storage]:
    """An open, migrated, empty storage, once per backend."""
    st = open_storage(storage_url)
    try:
        yield st
    finally:
        st.close()

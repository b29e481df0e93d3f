"""Coalesced refusals (service/refusals.py) for a store that does not exist: that store has
no ledger, so its refusals go to the ``_system`` chain (one window per type and reason) —
recorded, not only logged — while a real store's stay in its own chain. SQLite and
PostgreSQL; the services are closed (writing the ledger and the pending summaries) and
reopened before reading."""

from __future__ import annotations

import time

import pytest

from keyplane import FixedClock, Settings
from keyplane.ledger.events import SYSTEM_STORE, LedgerEvent
from keyplane.service import credentials, stores
from keyplane.service import tokens as T
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.tokens.clients import ClientAuthError
from keyplane.tokens.errors import OAuthError

NOW = float(int(time.time()))
ME = Caller.system_caller()
URL = "https://kp.example/oauth2/token"


def _events(svc: Services, store: str, type_: str) -> list[LedgerEvent]:
    return [e for e in svc.storage.read_events(store, limit=1000) if e.type == type_]


def test_refusals_for_a_missing_store_go_to_the_system_chain(storage_url: str) -> None:
    settings = Settings(database_url=storage_url, poll_interval=0.0)
    clock = FixedClock(NOW)
    svc = Services.open(settings, clock=clock)
    try:
        stores.create_store(svc, ME, "real", store_id="real")
        bad = OAuthError("invalid_request", "malformed", reason="malformed_request")
        for store in ("ghost", "ghost", "phantom"):  # two unknown stores, one window
            T.record_token_refused(svc, store, "agent:a", bad, "client_credentials")
        T.record_token_refused(svc, "real", "agent:a", bad, "client_credentials")
        with pytest.raises(ClientAuthError):  # credential.auth_failed, same machinery
            credentials.authenticate_client(
                svc, "ghost", "agent:a", secret="kpcs_nope", token_endpoint_url=URL
            )
        clock.advance(5)  # past the window: the next refusal writes the summary
        T.record_token_refused(svc, "ghost", None, bad, None)
    finally:
        svc.close()
    svc = Services.open(settings, clock=clock)
    try:
        refused = _events(svc, SYSTEM_STORE, "token.refused")
        assert {e.store for e in refused} == {SYSTEM_STORE}
        assert {r for e in refused for r in e.reasons} == {"malformed_request"}
        # every refusal of the unknown stores counted: 3 in the window + 1 after it
        assert sum(int(e.details["count"]) for e in refused) == 4
        assert any(e.details.get("coalesced") for e in refused)
        failed = _events(svc, SYSTEM_STORE, "credential.auth_failed")
        assert sum(int(e.details["count"]) for e in failed) == 1
        # the real store's refusal is in its own chain, and only there
        [own] = _events(svc, "real", "token.refused")
        assert own.caller == "agent:a" and own.details["count"] == 1
    finally:
        try:
            stores.delete_store(svc, ME, "real")
        finally:
            svc.close()

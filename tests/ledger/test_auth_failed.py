"""Refused API keys are recorded as ``auth.failed`` in the ``_system`` chain — with the
reason, the key id (never the secret), the operation, request id and address — and
coalesced so an unauthenticated flood cannot grow the ledger faster than a fixed bound.

Service level, with a clock the test drives (no sleeping); the surfaces are tested over
HTTP in tests/api/test_api_auth_failed.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyplane import FixedClock, Settings
from keyplane.errors import AuthenticationError
from keyplane.ledger.events import EventFilter, LedgerEvent
from keyplane.service.auth import SYSTEM_STORE_ID, Caller
from keyplane.service.authfailures import MAX_OPEN_WINDOWS, REASONS
from keyplane.service.context import Services, request_id_var
from keyplane.service.keys import authenticate, create_key, missing_key, revoke_key, rotate_key

VALID_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
SECRET = "a" * 52


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def svc(tmp_path: Path, clock: FixedClock) -> Iterator[Services]:
    s = Services.open(
        Settings(database_url=f"sqlite:///{tmp_path / 'k.db'}", poll_interval=0.0), clock=clock
    )
    try:
        yield s
    finally:
        s.close()


def failed(svc: Services) -> list[LedgerEvent]:
    svc.ledger.flush()
    return svc.storage.read_events(
        SYSTEM_STORE_ID, limit=10_000, filters=EventFilter(types=("auth.failed",))
    )


def refuse(svc: Services, token: str, **where: str) -> None:
    with pytest.raises(AuthenticationError):
        authenticate(svc, token, surface=where.pop("surface", "rest"), **where)


def test_each_reason_is_recorded_with_the_key_id_and_never_the_secret(
    svc: Services, clock: FixedClock
) -> None:
    me = Caller.system_caller()
    live, live_secret = create_key(svc, me, owner="a", roles=["reader"])
    revoked, revoked_secret = create_key(svc, me, owner="b", roles=["reader"])
    revoke_key(svc, me, revoked.id)
    expiring, expiring_secret = create_key(svc, me, owner="c", roles=["reader"], expires_in=10)
    rotated, old_secret = create_key(svc, me, owner="d", roles=["reader"])
    rotate_key(svc, me, rotated.id, overlap_seconds=5)
    clock.advance(60)

    token = request_id_var.set("req-42")
    try:
        with pytest.raises(AuthenticationError):
            raise missing_key(svc, "no key", surface="rest", operation="GET /v1/stores")
        refuse(svc, "Bearer-garbage", operation="GET /v1/stores", remote="10.0.0.1")
        refuse(svc, f"kp_{VALID_ID}_{SECRET}", operation="GET /v1/stores")
        wrong = live_secret[:-4] + ("aaaa" if not live_secret.endswith("aaaa") else "bbbb")
        refuse(svc, wrong, operation="GET /v1/stores")
        refuse(svc, old_secret, operation="GET /v1/stores")
        refuse(svc, revoked_secret, operation="GET /v1/stores")
        refuse(svc, expiring_secret, operation="GET /v1/stores")
        refuse(svc, f"kp_{live.id}_SHORT", operation="POST /stores/x/check")  # malformed, id kept
    finally:
        request_id_var.reset(token)

    events = failed(svc)
    got = [(e.reasons[0], e.subject) for e in events]
    assert got == [
        ("missing_key", None),
        ("malformed_key", None),
        ("unknown_key", f"key:{VALID_ID}"),
        ("invalid_secret", f"key:{live.id}"),
        ("rotated_secret", f"key:{rotated.id}"),
        ("revoked_key", f"key:{revoked.id}"),
        ("expired_key", f"key:{expiring.id}"),
        ("malformed_key", f"key:{live.id}"),
    ]
    assert {r for r, _ in got} == set(REASONS)
    for e in events:
        assert (e.store, e.outcome, e.caller, e.action) == (
            "_system",
            "deny",
            "anonymous",
            "authenticate",
        )
        assert e.request_id == "req-42" and e.details["count"] == 1
        assert e.details["surface"] == "rest"
    assert events[1].details["remote"] == "10.0.0.1"
    assert events[-1].resource == "POST /stores/x/check"
    # no secret, nor any 8-character piece of one, in any stored body
    rows = svc.storage.read_chain_rows(SYSTEM_STORE_ID)
    bodies = "".join(body for _, body, _, _ in rows)
    for secret in (live_secret, revoked_secret, expiring_secret, old_secret, wrong):
        s = secret.rsplit("_", 1)[1]
        assert all(s[i : i + 8] not in bodies for i in range(len(s) - 8))
    assert svc.storage.ledger_head(SYSTEM_STORE_ID)[0] == rows[-1][0]


def test_a_valid_key_records_no_failure(svc: Services) -> None:
    _, secret = create_key(svc, Caller.system_caller(), owner="a", roles=["reader"])
    authenticate(svc, secret, surface="rest")
    assert failed(svc) == []


def test_repeats_are_coalesced_into_one_summary_per_window(
    svc: Services, clock: FixedClock
) -> None:
    token = f"kp_{VALID_ID}_{SECRET}"
    for i in range(500):
        rid = request_id_var.set(f"r{i}")
        try:
            refuse(svc, token, operation="GET /v1/stores", remote="203.0.113.9")
        finally:
            request_id_var.reset(rid)
    [first] = failed(svc)  # the window is still open: only the first is written
    assert first.details["count"] == 1 and first.request_id == "r0"

    clock.advance(1.5)
    assert svc.auth_failures.flush(svc) == 1
    _, summary = failed(svc)
    assert summary.details["coalesced"] is True
    assert summary.details["count"] == 499  # every refusal counted: 1 + 499
    assert summary.request_id == "r499" and summary.details["first_request_id"] == "r0"
    assert summary.subject == f"key:{VALID_ID}" and summary.details["remote"] == "203.0.113.9"
    assert summary.details["first_time"] <= summary.details["last_time"]
    # the next refusal after the window opens a new one, written at once
    refuse(svc, token, operation="GET /v1/stores", remote="203.0.113.9")
    assert len(failed(svc)) == 3
    assert svc.auth_failures.failures == 501


def test_different_reasons_keys_and_addresses_do_not_share_a_window(svc: Services) -> None:
    refuse(svc, f"kp_{VALID_ID}_{SECRET}", remote="1.1.1.1")
    refuse(svc, f"kp_{VALID_ID}_{SECRET}", remote="2.2.2.2")
    refuse(svc, f"kp_{'01HZZZZZZZZZZZZZZZZZZZZZZY'}_{SECRET}", remote="1.1.1.1")
    refuse(svc, "nonsense", remote="1.1.1.1")
    refuse(svc, f"kp_{VALID_ID}_{SECRET}", remote="1.1.1.1", surface="mcp")
    assert len(failed(svc)) == 5


def test_a_flood_of_distinct_keys_is_bounded(svc: Services, clock: FixedClock) -> None:
    """An attacker varying key ids and addresses gets MAX_OPEN_WINDOWS windows, then one
    overflow window per reason: the ledger grows by a bounded number of events per
    second however many requests are refused."""
    n = 2000
    for i in range(n):
        key_id = f"01HZZZZZZZZZZZZZZZZZ{i:06d}"
        refuse(svc, f"kp_{key_id}_{SECRET}", remote=f"10.0.{i // 256}.{i % 256}")
    now = failed(svc)
    assert len(now) == MAX_OPEN_WINDOWS + 1  # the windows, and the overflow's first event
    assert now[-1].details.get("overflow") is True
    clock.advance(1.5)
    svc.auth_failures.flush(svc)
    events = failed(svc)
    assert len(events) == MAX_OPEN_WINDOWS + 2  # plus the overflow's summary
    summary = events[-1]
    assert summary.details["overflow"] is True and summary.details["coalesced"] is True
    assert summary.subject is None and summary.details["remote"] is None
    assert sum(e.details["count"] for e in events) == n  # none dropped from the count


def test_close_writes_pending_summaries(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    svc = Services.open(Settings(database_url=url, poll_interval=0.0))
    for _ in range(10):
        with pytest.raises(AuthenticationError):
            authenticate(svc, "bad", surface="rest")
    svc.close()
    again = Services.open(Settings(database_url=url, poll_interval=0.0))
    try:
        counts = [e.details["count"] for e in failed(again)]
        assert counts == [1, 9]
    finally:
        again.close()


def test_the_flusher_thread_writes_a_summary_when_the_window_ends(tmp_path: Path) -> None:
    """With the real clock: the summary appears without any further refusal or close."""
    svc = Services.open(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}", poll_interval=0))
    try:
        for _ in range(3):
            with pytest.raises(AuthenticationError):
                authenticate(svc, "bad", surface="rest")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(failed(svc)) < 2:
            time.sleep(0.05)
        assert [e.details["count"] for e in failed(svc)] == [1, 2]
    finally:
        svc.close()


def test_a_ledger_that_cannot_record_does_not_change_the_refusal(svc: Services) -> None:
    svc.ledger.close()
    with pytest.raises(AuthenticationError):
        authenticate(svc, "bad", surface="rest")
    assert svc.auth_failures.failures == 1 and svc.auth_failures.events == 0

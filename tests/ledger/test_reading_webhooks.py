"""Streaming the ledger to a webhook, against a real HTTP receiver on loopback that fails
its first deliveries: every event arrives (in order, at least once), every signature
verifies, retries back off exponentially, and delivery resumes after a restart from the
acknowledged seq kept in the database. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from reading_helpers import MODEL, decide, open_kp

from keyplane import FixedClock
from keyplane.errors import NotFoundError, PermissionDeniedError, ValidationError
from keyplane.ledger.webhooks import SIGNATURE_HEADER, sign_payload, verify_signature
from keyplane.service import ledger_admin
from keyplane.service.keys import authenticate, create_key


class Receiver:
    """A loopback HTTP server that answers 500 to its first ``fail`` requests."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with outer.lock:
                    status = 500 if outer.fail > 0 else 200
                    outer.fail -= 1
                    outer.requests.append((dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def acknowledged(self) -> list[dict[str, Any]]:
        """The events of the deliveries answered 2xx, in arrival order."""
        out: list[dict[str, Any]] = []
        for _, body, status in self.requests:
            if status == 200:
                out.extend(json.loads(body)["events"])
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=3)
    yield r
    r.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000.0)


def _drive(kp: Any, clock: FixedClock, rounds: int = 12) -> None:
    """Delivery rounds, moving the clock past each backoff."""
    for _ in range(rounds):
        kp.services.ledger.flush()
        kp.services.webhooks.deliver_due()
        clock.advance(700)


def test_every_event_arrives_signed_despite_failures_and_after_a_restart(
    storage_url: str, clock: FixedClock, tmp_path: Path, receiver: Receiver
) -> None:
    kp = open_kp(storage_url, clock, tmp_path)
    try:
        kp.write_model(MODEL)
        hook, secret = ledger_admin.create_webhook(
            kp.services, kp.caller, "default", receiver.url, from_start=True
        )
        assert secret.startswith("whsec_") and hook.acked_seq == 0
        for i in range(7):
            decide(kp, f"user:u{i}", "viewer", "document:plan")
        kp.services.ledger.flush()

        # three failures, each retried later with a doubled backoff
        waits = []
        for _ in range(3):
            before = clock.now()
            assert kp.services.webhooks.deliver_due() == 0
            (state,) = ledger_admin.list_webhooks(kp.services, kp.caller, "default")
            waits.append(state.next_attempt_at - before)
            assert state.last_error and "500" in state.last_error
            assert kp.services.webhooks.deliver_due() == 0  # not due yet: no request sent
            clock.advance(waits[-1])
        assert waits == [1.0, 2.0, 4.0]
        assert len(receiver.requests) == 3
        _drive(kp, clock, rounds=2)
        head = kp.services.storage.ledger_head("default")[0]
        (state,) = ledger_admin.list_webhooks(kp.services, kp.caller, "default")
        assert state.failures == 0 and state.last_error is None
        assert state.acked_seq == head
    finally:
        kp.close()

    # a restart: more events, then a new process resumes after the acknowledged seq
    kp = open_kp(storage_url, clock, tmp_path)
    try:
        acked_before = {e["seq"] for e in receiver.acknowledged()}
        for i in range(4):
            decide(kp, f"user:v{i}", "viewer", "document:plan")
        _drive(kp, clock, rounds=2)
        head = kp.services.storage.ledger_head("default")[0]
        delivered = receiver.acknowledged()
        seqs = [e["seq"] for e in delivered]
        assert sorted(set(seqs)) == list(range(1, head + 1)), "every event arrives"
        resent_after_restart = [
            e["seq"] for e in delivered[len(acked_before) :] if e["seq"] in acked_before
        ]
        assert not resent_after_restart, "acknowledged events are not sent again"
        # each delivery is signed over its raw body
        for headers, body, _ in receiver.requests:
            sig = headers[SIGNATURE_HEADER]
            ts = int(sig.split(",")[0].removeprefix("t="))
            assert verify_signature(secret, sig, body, now=ts)
            assert not verify_signature(secret, sig, body + b" ", now=ts)
            assert not verify_signature("whsec_wrong", sig, body, now=ts)
            assert not verify_signature(secret, sig, body, now=ts + 3600)  # stale: a replay
            payload = json.loads(body)
            assert payload["webhook_id"] == hook.id and payload["store"] == "default"
        # the events carry their chain hashes
        assert all(len(e["hash"]) == 64 for e in delivered)
    finally:
        kp.close()


def test_subscriptions_are_admin_only_and_never_show_the_secret(
    storage_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    kp = open_kp(storage_url, clock, tmp_path)
    try:
        svc = kp.services
        hook, secret = ledger_admin.create_webhook(
            svc, kp.caller, "default", "https://siem.example/ingest", secret="s" * 32
        )
        assert secret == "s" * 32
        listed = ledger_admin.list_webhooks(svc, kp.caller, "default")
        assert [h.id for h in listed] == [hook.id]
        assert secret not in json.dumps([h.to_dict() for h in listed])
        rec = svc.storage.get_webhook(hook.id)
        assert rec is not None and secret.encode() not in rec.encrypted_secret
        for bad in ("ftp://x/y", "https://user:pw@x/y", "not a url", ""):
            with pytest.raises(ValidationError):
                ledger_admin.create_webhook(svc, kp.caller, "default", bad)
        with pytest.raises(ValidationError):
            ledger_admin.create_webhook(svc, kp.caller, "default", "https://x/y", secret="short")
        _, key = create_key(svc, kp.caller, owner="auditor", roles=["auditor"])
        auditor = authenticate(svc, key)
        with pytest.raises(PermissionDeniedError):
            ledger_admin.create_webhook(svc, auditor, "default", "https://x/y")
        with pytest.raises(PermissionDeniedError):
            ledger_admin.list_webhooks(svc, auditor, "default")
        ledger_admin.delete_webhook(svc, kp.caller, "default", hook.id)
        assert ledger_admin.list_webhooks(svc, kp.caller, "default") == []
        with pytest.raises(NotFoundError):
            ledger_admin.delete_webhook(svc, kp.caller, "default", hook.id)
        types = [e.type for e in kp.query_events(types=["ledger.*"], outcome="ok").events]
        assert types == ["ledger.webhook_created", "ledger.webhook_deleted"]
    finally:
        kp.close()


def test_signature_format_is_stripe_like() -> None:
    header = sign_payload("whsec_abc", b'{"a":1}', 1_800_000_000)
    t, v1 = header.split(",")
    assert t == "t=1800000000" and v1.startswith("v1=") and len(v1) == 3 + 64
    assert verify_signature("whsec_abc", header, b'{"a":1}', now=1_800_000_100)
    assert not verify_signature("whsec_abc", "garbage", b'{"a":1}', now=1_800_000_000)


def test_two_processes_deliver_each_batch_once(
    storage_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """Replicas on one database: the lease lets one deliver while the other skips."""
    receiver = Receiver(fail=0)
    a = open_kp(storage_url, clock, tmp_path)
    b = open_kp(storage_url, clock, tmp_path)
    try:
        a.write_model(MODEL)
        ledger_admin.create_webhook(a.services, a.caller, "default", receiver.url, from_start=True)
        for i in range(30):
            decide(a, f"user:u{i}", "viewer", "document:plan")
        a.services.ledger.flush()
        for _ in range(3):
            threads = [threading.Thread(target=kp.services.webhooks.deliver_due) for kp in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        seqs = [e["seq"] for e in receiver.acknowledged()]
        head = a.services.storage.ledger_head("default")[0]
        assert sorted(seqs) == list(range(1, head + 1)), "each event exactly once"
    finally:
        a.close()
        b.close()
        receiver.close()

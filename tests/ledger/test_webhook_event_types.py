"""A ledger webhook's ``event_types`` filter, against real HTTP receivers on loopback: only
the matching events are POSTed (signed, in order, each once), the filtered ones are
skipped without holding the cursor back (a batch with nothing to send is acknowledged
without a request), a failed delivery of matching events is retried, not skipped, and the
filter is stored, validated and shown on every surface (embedded, REST through Client and
AsyncClient, CLI). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from reading_helpers import MASTER_KEY, MODEL, decide, open_kp, settings
from typer.testing import CliRunner

from keyplane import AsyncClient, Client, FixedClock, Keyplane
from keyplane.cli.main import app
from keyplane.errors import ValidationError
from keyplane.ledger.events import EVENT_TYPES
from keyplane.ledger.webhooks import SIGNATURE_HEADER, event_type_matches, verify_signature
from keyplane.service import ledger_admin
from keyplane.service.keys import bootstrap_admin
from live_server import serve

SECRET = "whsec_" + "t" * 32


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
def clock() -> FixedClock:
    return FixedClock(1_800_000_000.0)


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    """(filtered, everything): the filtered one fails its first delivery."""
    filtered, everything = Receiver(fail=1), Receiver(fail=0)
    yield filtered, everything
    filtered.close()
    everything.close()


def _drive(kp: Keyplane, clock: FixedClock, rounds: int = 6) -> None:
    for _ in range(rounds):
        kp.services.ledger.flush()
        kp.services.webhooks.deliver_due()
        clock.advance(700)


def _all_events(kp: Keyplane) -> list[dict[str, Any]]:
    kp.services.ledger.flush()
    return [e.to_dict() for e in kp.services.storage.read_events("default", limit=10_000)]


def test_event_type_matches() -> None:
    assert event_type_matches((), "decision.check")
    assert event_type_matches(("*",), "decision.check")
    assert event_type_matches(("decision.*",), "decision.check")
    assert event_type_matches(("tuples.written", "model.*"), "model.written")
    assert not event_type_matches(("decision.*",), "decisions.check")
    assert not event_type_matches(("tuples.written",), "tuples.written_more")
    assert not event_type_matches(("tuples.written",), "tuples")
    assert event_type_matches(("access_*",), "access_request.created")
    assert event_type_matches(("access_*",), "access.denied") is False


def test_only_matching_events_are_delivered_and_the_cursor_moves_past_the_others(
    storage_url: str,
    clock: FixedClock,
    tmp_path: Path,
    receivers: tuple[Receiver, Receiver],
) -> None:
    filtered, everything = receivers
    types = ["tuples.*", "model.written"]
    kp = open_kp(storage_url, clock, tmp_path)
    try:
        kp.write_model(MODEL)
        hook, _ = ledger_admin.create_webhook(
            kp.services, kp.caller, "default", filtered.url, secret=SECRET, from_start=True,
            event_types=types,
        )  # fmt: skip
        assert hook.event_types == tuple(types)
        all_hook, _ = ledger_admin.create_webhook(
            kp.services, kp.caller, "default", everything.url, secret=SECRET, from_start=True
        )
        assert all_hook.event_types == ()
        for i in range(6):
            decide(kp, f"user:u{i}", "viewer", "document:plan")
        kp.write_tuples([f"document:plan#viewer@user:u{i}" for i in range(2)])
        for i in range(9):  # more than a batch of nothing but filtered events
            decide(kp, f"user:w{i}", "viewer", "document:plan")
        kp.write_tuples(["document:plan#owner@user:w0"])
        kp.services.webhooks.batch_size = 4

        # the first delivery of matching events fails: it is retried, never skipped
        kp.services.ledger.flush()
        kp.services.webhooks.deliver_due()
        assert [s for _, _, s in filtered.requests] == [500]
        states = {h.id: h for h in ledger_admin.list_webhooks(kp.services, kp.caller, "default")}
        assert states[hook.id].failures == 1 and states[hook.id].acked_seq == 0
        _drive(kp, clock)

        head = kp.services.storage.ledger_head("default")[0]
        expected = [e for e in _all_events(kp) if e["type"] in ("model.written", "tuples.written")]
        assert [e["type"] for e in expected] == ["model.written"] + ["tuples.written"] * 2
        got = filtered.acknowledged()
        assert [e["id"] for e in got] == [e["id"] for e in expected], "each matching one, once"
        assert got == expected, "delivered as recorded, with their chain fields"
        failed_body, retried_body = filtered.requests[0][1], filtered.requests[1][1]
        assert json.loads(failed_body)["events"] == json.loads(retried_body)["events"]
        # a batch holding nothing that matches sent no request at all
        batches = -(-head // kp.services.webhooks.batch_size)
        assert len(filtered.requests) - 1 < batches
        for headers, body, _ in filtered.requests:
            sig = headers[SIGNATURE_HEADER]
            ts = int(sig.split(",")[0].removeprefix("t="))
            assert verify_signature(SECRET, sig, body, now=ts)
            assert not verify_signature(SECRET, sig, body + b" ", now=ts)
            payload = json.loads(body)
            assert payload["webhook_id"] == hook.id and payload["events"]
            assert all(e["type"] in ("model.written", "tuples.written") for e in payload["events"])
            seqs = [e["seq"] for e in payload["events"]]
            assert payload["delivery_id"] == f"{hook.id}:{seqs[0]}-{seqs[-1]}"
        # the unfiltered subscription got everything; both are caught up with the head
        assert [e["seq"] for e in everything.acknowledged()] == list(range(1, head + 1))
        states = {h.id: h for h in ledger_admin.list_webhooks(kp.services, kp.caller, "default")}
        assert states[hook.id].acked_seq == head and states[hook.id].failures == 0
        assert states[all_hook.id].acked_seq == head
    finally:
        kp.close()

    # a restart: the filter is kept in the database; only filtered events since — no
    # request, yet the cursor reaches the head; then a matching one is sent alone
    kp = open_kp(storage_url, clock, tmp_path)
    try:
        (stored,) = [h for h in kp.list_webhooks() if h.id == hook.id]
        assert stored.event_types == tuple(types)
        sent = len(filtered.requests)
        for i in range(3):
            decide(kp, f"user:x{i}", "viewer", "document:plan")
        _drive(kp, clock, rounds=2)
        assert len(filtered.requests) == sent
        head = kp.services.storage.ledger_head("default")[0]
        (state,) = [h for h in kp.list_webhooks() if h.id == hook.id]
        assert state.acked_seq == head
        kp.write_tuples(["document:plan#viewer@user:x0"])
        _drive(kp, clock, rounds=2)
        assert len(filtered.requests) == sent + 1
        (last,) = json.loads(filtered.requests[-1][1])["events"]
        assert last["type"] == "tuples.written" and last["seq"] == head + 1
    finally:
        kp.close()


def test_event_types_are_validated_stored_and_recorded(
    storage_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    kp = open_kp(storage_url, clock, tmp_path)
    try:
        svc = kp.services

        def create(types: Any) -> Any:
            return ledger_admin.create_webhook(
                svc, kp.caller, "default", "https://siem.example/in", event_types=types
            )[0]

        bad: list[Any] = [
            "decision.*",  # a string, not a list
            ["decision.chek"],  # not a registered type
            ["nothing.*"],  # a prefix no type has
            ["decision.*x"],  # '*' only at the end
            ["Decision.check"],
            [""],
            [None],
            [7],
            ["*" * 2],
            ["x" * 129],
            {"decision.check": True},
        ]
        for value in bad:
            with pytest.raises(ValidationError):
                create(value)
        assert svc.storage.list_webhooks("default") == [], "nothing stored by a refusal"
        many = sorted({name[:k] + "*" for name in EVENT_TYPES for k in range(1, len(name))})
        assert len(many) > 64
        with pytest.raises(ValidationError):
            create(many[:65])
        assert len(create(many[:64] + many[:3]).event_types) == 64

        hook = create(["decision.*", "tuples.written", "decision.*", "ledger.webhook_*"])
        assert hook.event_types == ("decision.*", "tuples.written", "ledger.webhook_*")
        assert create(["*"]).event_types == ("*",)
        assert create([]).event_types == () and create(None).event_types == ()
        many_hook = [h for h in svc.storage.list_webhooks("default") if len(h.event_types) == 64]
        assert len(many_hook) == 1
        listed = {h.id: h for h in ledger_admin.list_webhooks(svc, kp.caller, "default")}
        assert listed[hook.id].event_types == hook.event_types
        assert listed[hook.id].to_dict()["event_types"] == list(hook.event_types)
        kp.services.ledger.flush()
        created = kp.query_events(types=["ledger.webhook_created"], outcome="ok").events
        assert [e.details["event_types"] for e in created] == [
            many[:64],
            ["decision.*", "tuples.written", "ledger.webhook_*"],
            ["*"],
            [],
            [],
        ]
    finally:
        kp.close()


# ------------------------------------------------------------------------------ surfaces


def test_event_types_over_rest_sdk_and_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'kp.db'}"
    kp = Keyplane.open(settings=settings(db, tmp_path))
    try:
        _, key = bootstrap_admin(kp.services)
        with serve(kp.services) as url:
            with Client(url, key) as c:
                hook, _ = c.create_webhook(
                    "https://siem.example/in", event_types=["decision.*", "key.created"]
                )
                assert hook.event_types == ("decision.*", "key.created")
                (listed,) = c.list_webhooks()
                assert listed == kp.list_webhooks()[0] and listed.event_types == hook.event_types
                plain, _ = c.create_webhook("https://siem.example/all")
                assert plain.event_types == ()
                with pytest.raises(ValidationError):
                    c.create_webhook("https://siem.example/in", event_types=["decision.nope"])

            async def run() -> None:
                async with AsyncClient(url, key) as ac:
                    made, _ = await ac.create_webhook(
                        "https://siem.example/a", event_types=["token.*"]
                    )
                    assert made.event_types == ("token.*",)
                    assert made in await ac.list_webhooks()

            asyncio.run(run())
            r = httpx.post(
                f"{url}/v1/stores/default/ledger/webhooks",
                json={"url": "https://siem.example/x", "event_types": ["nothing.*"]},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"
            r = httpx.post(
                f"{url}/v1/stores/default/ledger/webhooks",
                json={"url": "https://siem.example/x", "event_types": "decision.*"},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert r.status_code == 400
    finally:
        kp.close()

    monkeypatch.setenv("KEYPLANE_MASTER_KEY", MASTER_KEY)
    monkeypatch.setenv("KEYPLANE_LEDGER_WEBHOOK_INTERVAL", "0")
    runner = CliRunner()

    def run_cli(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, list(args))
        assert res.exit_code == code, res.output
        return res.output

    created = json.loads(
        run_cli(
            "ledger",
            "webhook",
            "create",
            "https://siem.example/cli",
            "--db",
            db,
            "--event-type",
            "decision.*",
            "--event-type",
            "ledger.webhook_created",
            "-o",
            "json",
        )
    )
    assert created["webhook"]["event_types"] == ["decision.*", "ledger.webhook_created"]
    listed = json.loads(run_cli("ledger", "webhook", "list", "--db", db, "-o", "json"))
    by_id = {h["id"]: h for h in listed}
    assert by_id[created["webhook"]["id"]]["event_types"] == [
        "decision.*",
        "ledger.webhook_created",
    ]
    text = run_cli("ledger", "webhook", "list", "--db", db)
    assert "decision.*" in text and "all" in text
    out = run_cli(
        "ledger", "webhook", "create", "https://siem.example/y", "--db", db,
        "--event-type", "decision.nope", code=1,
    )  # fmt: skip
    assert "decision.nope" in out

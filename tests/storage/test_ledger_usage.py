"""LedgerStore.ledger_usage on SQLite and PostgreSQL: allowed decisions of the asked types in
``[since, until)``, grouped by (subject, actors, action, resource, type) with the count and
the newest time — denials, errors, other event types, other stores and times outside the
window are left out; the actor chain comes back as a tuple in order; redacted (hashed)
columns come back as stored."""

from __future__ import annotations

from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.storage import Storage
from keyplane.storage.base import UsageRow

T0 = 1_800_000_000.0
TYPES = ("decision.evaluate", "decision.check", "decision.batch_check")


def _ev(
    time: float,
    subject: str | None,
    action: str,
    resource: str,
    *,
    type: str = "decision.evaluate",
    actors: tuple[str, ...] = (),
    outcome: str = "allow",
    store: str = "s1",
) -> LedgerEvent:
    return LedgerEvent(
        id=new_event_id(), time=time, store=store, type=type, caller="key:k", subject=subject,
        actor_chain=actors, action=action, resource=resource, outcome=outcome,
    )  # fmt: skip


def _rows(
    storage: Storage, since: float, until: float, types: tuple[str, ...] = TYPES
) -> set[UsageRow]:
    return set(storage.ledger_usage("s1", since=since, until=until, types=types))


def test_groups_allowed_decisions_in_the_window(storage: Storage) -> None:
    storage.append_events(
        [
            _ev(T0 + 1, "agent:a", "read", "document:1"),
            _ev(T0 + 5, "agent:a", "read", "document:1"),
            _ev(T0 + 3, "agent:a", "read", "document:1", outcome="deny"),
            _ev(T0 + 4, "agent:a", "read", "document:1", outcome="error"),
            _ev(T0 + 2, "human:h", "read", "document:2", actors=("agent:b", "agent:c")),
            _ev(T0 + 6, "human:h", "read", "document:2", actors=("agent:b", "agent:c")),
            _ev(T0 + 7, "human:h", "read", "document:2", actors=("agent:c", "agent:b")),
            _ev(T0 + 8, "agent:a", "viewer", "document:1", type="decision.check"),
            _ev(T0 + 9, "agent:a", "viewer", "document:1", type="decision.batch_check"),
            _ev(T0 + 9, "agent:a", "viewer", "document:1", type="decision.explain"),
            _ev(T0 - 1, "agent:a", "read", "document:1"),  # before the window
            _ev(T0 + 100, "agent:a", "read", "document:1"),  # at `until`: outside
            _ev(T0 + 2, "agent:a", "read", "document:1", store="s2"),
        ]
    )
    assert _rows(storage, T0, T0 + 100) == {
        UsageRow("agent:a", (), "read", "document:1", "decision.evaluate", 2, T0 + 5),
        UsageRow("human:h", ("agent:b", "agent:c"), "read", "document:2", "decision.evaluate", 2, T0 + 6),
        UsageRow("human:h", ("agent:c", "agent:b"), "read", "document:2", "decision.evaluate", 1, T0 + 7),
        UsageRow("agent:a", (), "viewer", "document:1", "decision.check", 1, T0 + 8),
        UsageRow("agent:a", (), "viewer", "document:1", "decision.batch_check", 1, T0 + 9),
    }  # fmt: skip
    # only the asked types; a narrower window
    assert _rows(storage, T0 + 4, T0 + 8, ("decision.evaluate",)) == {
        UsageRow("agent:a", (), "read", "document:1", "decision.evaluate", 1, T0 + 5),
        UsageRow("human:h", ("agent:b", "agent:c"), "read", "document:2", "decision.evaluate", 1, T0 + 6),
        UsageRow("human:h", ("agent:c", "agent:b"), "read", "document:2", "decision.evaluate", 1, T0 + 7),
    }  # fmt: skip
    assert _rows(storage, T0, T0 + 100, ()) == set()
    assert storage.ledger_usage("nope", since=T0, until=T0 + 100, types=TYPES) == []


def test_hashed_columns_come_back_as_stored(storage: Storage) -> None:
    h = "hmac-sha256:" + "ab" * 32
    storage.append_events([_ev(T0, h, h, h), _ev(T0 + 1, h, h, h)])
    assert _rows(storage, T0, T0 + 10) == {UsageRow(h, (), h, h, "decision.evaluate", 2, T0 + 1)}


def test_many_events_are_one_row_per_group(storage: Storage) -> None:
    batch = [
        _ev(T0 + i, f"agent:a{i % 7}", "read", f"document:{i % 11}", actors=("agent:x",) * (i % 2))
        for i in range(20_000)
    ]
    for i in range(0, len(batch), 5000):
        storage.append_events(batch[i : i + 5000])
    rows = storage.ledger_usage("s1", since=T0, until=T0 + 20_000, types=TYPES)
    assert sum(r.uses for r in rows) == 20_000
    assert len(rows) == len({(r.subject, r.actors, r.resource) for r in rows}) == 7 * 11 * 2
    last = {(r.subject, r.actors, r.resource): r.last_at for r in rows}
    assert last[("agent:a0", (), "document:0")] == T0 + max(
        i for i in range(20_000) if i % 7 == 0 and i % 11 == 0 and i % 2 == 0
    )


def test_one_identitys_use(storage: Storage) -> None:
    storage.append_events(
        [
            _ev(T0 + 1, "agent:a", "read", "document:1"),
            _ev(T0 + 2, "human:h", "read", "document:2", actors=("agent:a",)),
            _ev(T0 + 3, "human:h", "read", "document:3", actors=("agent:ab",)),  # not agent:a
            _ev(T0 + 4, "agent:b", "read", "document:4"),
            _ev(T0 + 5, "agent:b", "read", "document:5", actors=("agent:a%",)),  # LIKE-safe
        ]
    )

    def resources(**who: str) -> set[str | None]:
        rows = storage.ledger_usage("s1", since=T0, until=T0 + 10, types=TYPES, **who)
        return {r.resource for r in rows}

    assert resources(subject="agent:a", actor="agent:a") == {"document:1", "document:2"}
    assert resources(subject="agent:a") == {"document:1"}
    assert resources(actor="agent:a") == {"document:2"}
    assert resources(actor="agent:a%") == {"document:5"}
    assert resources(subject="nobody:x", actor="nobody:x") == set()
    # narrowed to the subjects that can have agent:a in their chain (read by subject)
    rows = storage.ledger_usage(
        "s1", since=T0, until=T0 + 10, types=TYPES, subject="agent:a", actor="agent:a",
        actor_subjects=["human:h"],
    )  # fmt: skip
    assert {r.resource for r in rows} == {"document:1", "document:2"}
    rows = storage.ledger_usage(
        "s1", since=T0, until=T0 + 10, types=TYPES, subject="agent:a", actor="agent:a",
        actor_subjects=[],
    )  # fmt: skip
    assert {r.resource for r in rows} == {"document:1"}  # no delegator: no actor use
    rows = storage.ledger_usage(
        "s1", since=T0, until=T0 + 10, types=TYPES, actor="agent:a", actor_subjects=["agent:b"]
    )
    assert rows == []  # agent:b's only chain names agent:a%, not agent:a
    assert (
        storage.ledger_usage(
            "s1", since=T0, until=T0 + 10, types=TYPES, actor="agent:a", actor_subjects=[]
        )
        == []
    )

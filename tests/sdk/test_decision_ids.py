"""Every decision reaches SDK callers with its ledger decision id — embedded, Client and
AsyncClient alike — and the id names the event the server recorded."""

from __future__ import annotations

import asyncio
from typing import Any

from keyplane import AsyncClient, Client, Keyplane
from keyplane.service.access import BatchItem
from keyplane.storage.ids import ULID_RE
from live_server import Server

MODEL = """\
model
  schema 1.1
type user
type document
  relations
    define viewer: [user]
"""


def _ask(kp: Any) -> list[str]:
    """Every decision kind once; the decision ids, in order."""
    d = kp.check("user:anne", "viewer", "document:a")
    batch = kp.batch_check(
        [BatchItem("user:anne", "viewer", "document:a"), BatchItem("user:bob", "nope", "x:y")]
    )
    objs = kp.list_objects("user:anne", "viewer", "document")
    assert list(objs) == ["document:a"]
    users = kp.list_users("document:a", "viewer", ["user"])
    assert users == ["user:anne"]
    tree = kp.expand("document:a", "viewer")
    assert set(tree) == {"tree"}  # the id is an attribute, the dict is OpenFGA's answer
    ex = kp.explain("user:anne", "viewer", "document:a")
    return [
        d.decision_id,
        *(r.decision_id for r in batch),
        objs.decision_id,
        users.decision_id,
        tree.decision_id,
        ex.decision_id or "",
    ]


def _seed(kp: Keyplane | Client) -> None:
    kp.write_model(MODEL)
    kp.write_tuples(["document:a#viewer@user:anne"])


def test_embedded_results_carry_decision_ids(embedded: Keyplane) -> None:
    _seed(embedded)
    ids = _ask(embedded)
    assert all(ULID_RE.match(i) for i in ids) and len(set(ids)) == len(ids) == 7
    for i in ids:
        ev = embedded.services.storage.get_event_by_decision(i)
        assert ev is not None and ev.decision_id == i


def test_clients_receive_the_servers_decision_ids(server: Server, client: Client) -> None:
    client.create_store("default", store_id="default")  # a bare server has no store yet
    _seed(client)
    got = _ask(client)

    async def via_async() -> list[str]:
        async with AsyncClient(server.url, server.key) as ac:
            objs = await ac.list_objects("user:anne", "viewer", "document")
            assert [o async for o in objs] == ["document:a"]
            d = await ac.check("user:anne", "viewer", "document:a")
            users = await ac.list_users("document:a", "viewer", ["user"])
            tree = await ac.expand("document:a", "viewer")
            return [objs.decision_id, d.decision_id, users.decision_id, tree.decision_id]

    got += asyncio.run(via_async())
    assert all(ULID_RE.match(i) for i in got) and len(set(got)) == len(got) == 11
    for i in got:
        ev = server.services.storage.get_event_by_decision(i)
        assert ev is not None and ev.decision_id == i and ev.caller.startswith("key:")

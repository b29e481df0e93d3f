"""Two Keyplane instances on one database behave as one: model changes and store
re-creation reach the other replica through ``at_least_as_fresh`` (regressions from review)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keyplane import Keyplane, Settings
from keyplane.errors import StoreNotFoundError

V1 = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n"
V2 = (
    "model\n  schema 1.1\ntype user\ntype doc\n  relations\n"
    "    define blocked: [user]\n    define viewer: [user] but not blocked\n"
)


@pytest.fixture
def pair(database_url: str) -> Iterator[tuple[Keyplane, Keyplane]]:
    settings = Settings(database_url=database_url, poll_interval=0.0, default_store="rep")
    a = Keyplane.open(settings=settings)
    b = Keyplane.open(settings=settings)
    try:
        yield a, b
    finally:
        for kp in (a, b):
            kp.close()


def test_model_change_reaches_the_other_replica(pair: tuple[Keyplane, Keyplane]) -> None:
    a, b = pair
    a.write_model(V1)
    r = a.write_tuples(["doc:1#viewer@user:a"]).revision
    assert b.check("user:a", "viewer", "doc:1", at_least_as_fresh=r).allowed
    v2 = a.write_model(V2)
    assert v2.revision is not None and v2.revision > r
    r = a.write_tuples(["doc:1#blocked@user:a"]).revision
    assert not a.check("user:a", "viewer", "doc:1").allowed
    d = b.check("user:a", "viewer", "doc:1", at_least_as_fresh=r)
    assert not d.allowed and d.model_id == v2.id
    # and B validates writes against the new model
    b.write_tuples(["doc:2#blocked@user:x"])


def test_model_write_revision_alone_is_enough(pair: tuple[Keyplane, Keyplane]) -> None:
    a, b = pair
    a.write_model(V1)
    a.write_tuples(["doc:1#viewer@user:a"])
    assert b.check("user:a", "viewer", "doc:1").allowed  # B loads its graph
    v2 = a.write_model(V2)
    assert v2.revision is not None
    assert b.check("user:a", "viewer", "doc:1", at_least_as_fresh=v2.revision).model_id == v2.id


def test_recreated_store_is_reloaded_not_skipped(pair: tuple[Keyplane, Keyplane]) -> None:
    a, b = pair
    a.create_store("t", store_id="t")
    a.write_model(V1, store="t")
    r = 0
    for i in range(3):
        r = a.write_tuples([f"doc:d{i}#viewer@user:old"], store="t").revision
    assert b.check("user:old", "viewer", "doc:d0", store="t", at_least_as_fresh=r).allowed
    a.delete_store("t")
    with pytest.raises(StoreNotFoundError):
        b.check("user:old", "viewer", "doc:d0", store="t", at_least_as_fresh=r + 1)
    a.create_store("t", store_id="t")
    a.write_model(V1, store="t")
    r = a.write_tuples(["doc:d0#viewer@user:new"], store="t").revision
    # B had the old store at a higher revision; it must notice the new generation
    b.services.graphs.catch_up("t")
    assert b.check("user:new", "viewer", "doc:d0", store="t", at_least_as_fresh=r).allowed
    assert not b.check("user:old", "viewer", "doc:d0", store="t").allowed
    a.delete_store("t")


def test_purging_expired_edges_frees_memory_without_changing_answers(database_url: str) -> None:
    from keyplane import FixedClock

    clock = FixedClock(1_800_000_000.0)
    settings = Settings(database_url=database_url, poll_interval=0.0, default_store="purge")
    with Keyplane.open(settings=settings, clock=clock) as kp:
        kp.write_model(V1)
        kp.write_tuples(
            [
                {
                    "object": "doc:1",
                    "relation": "viewer",
                    "user": "user:t",
                    "expires_at": clock.now() + 5,
                }
            ]
        )
        assert kp.check("user:t", "viewer", "doc:1").allowed
        graphs = kp.services.graphs
        assert graphs.purge_expired("purge") == 0
        clock.advance(10)
        assert not kp.check("user:t", "viewer", "doc:1").allowed
        assert graphs.purge_expired("purge") == 1
        assert not kp.check("user:t", "viewer", "doc:1").allowed
        # the database still holds it until gc; gc's delete then applies cleanly
        assert kp.gc_expired() == 1
        assert not kp.check("user:t", "viewer", "doc:1").allowed
        kp.delete_store("purge")

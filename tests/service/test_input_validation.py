"""Inputs the service refuses cleanly — with the right error, before anything is stored."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from keyplane import Keyplane
from keyplane.errors import InvalidTupleError, ValidationError
from keyplane.graph.tuples import Tuple
from keyplane.service import access
from keyplane.service.access import BatchItem


@pytest.mark.parametrize("expires_at", [float("nan"), float("inf"), 1e300, True])
def test_unusable_expiry_times_are_refused_and_nothing_is_written(
    kp: Keyplane, expires_at: object
) -> None:
    as_dict = {
        "object": "document:n",
        "relation": "viewer",
        "user": "user:a",
        "expires_at": expires_at,
    }
    direct = Tuple("document:n", "viewer", "user:a", expires_at=expires_at)  # type: ignore[arg-type]
    for t in (as_dict, direct):
        with pytest.raises(InvalidTupleError) as ei:
            kp.write_tuples([t])
        assert ei.value.fga_code == 2027
    assert kp.read_tuples(object="document:n").items == []
    assert not kp.check("user:a", "viewer", "document:n").allowed
    # ... and as contextual tuples
    with pytest.raises(InvalidTupleError):
        kp.check("user:a", "viewer", "document:n", contextual_tuples=[direct])


@pytest.mark.parametrize(
    "obj", ["document:a:b", "document:x\ny", "document:x\x00y", "document:" + "a" * 300]
)
def test_objects_that_could_not_be_checked_cannot_be_written(kp: Keyplane, obj: str) -> None:
    with pytest.raises(InvalidTupleError):
        kp.write_tuples([{"object": obj, "relation": "viewer", "user": "user:u"}])
    assert kp.read_tuples().items == []


def test_an_email_user_is_written_and_checked(kp: Keyplane) -> None:
    kp.write_tuples(["document:d#viewer@user:anne@example.com"])
    assert kp.check("user:anne@example.com", "viewer", "document:d").allowed
    assert list(kp.list_objects("user:anne@example.com", "viewer", "document")) == ["document:d"]


@pytest.mark.parametrize("context", [[1, 2], "hour", 7])
def test_a_condition_context_that_is_not_an_object_is_an_invalid_tuple(
    kp: Keyplane, context: object
) -> None:
    as_dict = {
        "object": "document:c",
        "relation": "viewer",
        "user": "user:a",
        "condition": {"name": "in_hours", "context": context},
    }
    direct = Tuple("document:c", "viewer", "user:a", "in_hours", context)  # type: ignore[arg-type]
    for t in (as_dict, direct):
        with pytest.raises(InvalidTupleError) as ei:
            kp.write_tuples([t])
        assert ei.value.fga_code == 2027
    assert kp.read_tuples(object="document:c").items == []


@pytest.mark.parametrize("context", [["hour"], "hour", {1: 2}])
def test_a_request_context_that_is_not_an_object_is_a_validation_error(
    kp: Keyplane, context: object
) -> None:
    kp.write_tuples(
        [
            {
                "object": "document:c",
                "relation": "viewer",
                "user": "user:a",
                "condition": {"name": "in_hours"},
            }
        ]
    )
    queries = [
        lambda: kp.check("user:a", "viewer", "document:c", context=context),  # type: ignore[arg-type]
        lambda: list(kp.list_objects("user:a", "viewer", "document", context=context)),  # type: ignore[arg-type]
        lambda: kp.list_users("document:c", "viewer", ["user"], context=context),  # type: ignore[arg-type]
        lambda: kp.expand("document:c", "viewer", context=context),  # type: ignore[arg-type]
        lambda: kp.explain("user:a", "viewer", "document:c", context=context),  # type: ignore[arg-type]
    ]
    for q in queries:
        with pytest.raises(ValidationError) as ei:
            q()
        assert type(ei.value) is ValidationError and ei.value.fga_code == 2000


def test_a_bad_item_context_fails_that_item_only(kp: Keyplane) -> None:
    kp.write_tuples(
        [
            {
                "object": "document:c",
                "relation": "viewer",
                "user": "user:a",
                "condition": {"name": "in_hours"},
            }
        ]
    )
    got = kp.batch_check(
        [
            BatchItem("user:a", "viewer", "document:c", context={"hour": 10}, correlation_id="ok"),
            BatchItem("user:a", "viewer", "document:c", context=["hour"], correlation_id="bad"),  # type: ignore[arg-type]
        ]
    )
    assert [(r.correlation_id, r.allowed) for r in got] == [("ok", True), ("bad", False)]
    assert got[0].error is None
    assert isinstance(got[1].error, ValidationError) and got[1].error.fga_code == 2000


def test_an_unexpected_error_in_one_item_does_not_lose_the_batch() -> None:
    class Engine:
        def check(self, user: str, *_: object, **__: object) -> bool:
            if user == "user:boom":
                raise RuntimeError("a bug")
            return True

    svc = SimpleNamespace(settings=SimpleNamespace(max_contextual_tuples=10))
    items = [
        BatchItem("user:a", "viewer", "document:1", correlation_id="1"),
        BatchItem("user:boom", "viewer", "document:1", correlation_id="2"),
        BatchItem("user:b", "viewer", "document:1", correlation_id="3"),
    ]
    got = access._batch(svc, Engine(), items, [])  # type: ignore[arg-type]
    assert [(r.correlation_id, r.allowed) for r in got] == [("1", True), ("2", False), ("3", True)]
    assert got[1].error is not None and got[1].error.code == "internal_error"
    assert "a bug" not in got[1].error.message  # internals stay in the log


def test_a_decision_names_the_revision_it_was_computed_at(
    kp: Keyplane, monkeypatch: pytest.MonkeyPatch
) -> None:
    rev = kp.write_tuples(["document:d#viewer@user:a"]).revision
    engine, graph = kp.services.graphs.engine(kp._store(None))

    class Lock:
        """Releasing the lock lets the tailer apply the next revision at once."""

        def __enter__(self) -> None:
            return None

        def __exit__(self, *_: object) -> None:
            fake.revision += 1

    fake = SimpleNamespace(lock=Lock(), revision=graph.revision)
    monkeypatch.setattr(kp.services.graphs, "engine", lambda *_: (engine, fake))
    d = kp.check("user:a", "viewer", "document:d")
    assert d.allowed and d.revision == rev

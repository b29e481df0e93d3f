"""The embedding API end to end on both backends: models, tuples, queries, errors."""

from __future__ import annotations

import json

import pytest

from keyplane import BatchItem, FixedClock, Keyplane
from keyplane.errors import (
    ConditionError,
    InvalidModelError,
    InvalidTupleError,
    LimitExceededError,
    ModelNotFoundError,
    RelationNotFoundError,
    StoreNotFoundError,
    TupleExistsError,
    TupleMissingError,
    TypeNotFoundError,
)


def test_check_through_groups_and_folders(kp: Keyplane) -> None:
    rev = kp.write_tuples(
        [
            "group:eng#member@user:anne",
            "folder:f1#viewer@group:eng#member",
            "document:d1#parent@folder:f1",
        ]
    ).revision
    d = kp.check("user:anne", "viewer", "document:d1", at_least_as_fresh=rev)
    assert d.allowed and bool(d)
    assert d.revision >= rev
    assert d.model_id == kp.read_model().id
    assert not kp.check("user:bob", "viewer", "document:d1").allowed


def test_exclusion_and_wildcard(kp: Keyplane) -> None:
    kp.write_tuples(["document:pub#viewer@user:*", "document:pub#blocked@user:mallory"])
    assert kp.check("user:anyone", "viewer", "document:pub").allowed
    assert not kp.check("user:mallory", "viewer", "document:pub").allowed


def test_write_preconditions_are_atomic(kp: Keyplane) -> None:
    r1 = kp.write_tuples(["document:d1#owner@user:anne"]).revision
    with pytest.raises(TupleExistsError):
        kp.write_tuples(["document:d2#owner@user:bob", "document:d1#owner@user:anne"])
    # nothing of the failed write landed, and the revision did not move
    assert not kp.check("user:bob", "viewer", "document:d2").allowed
    assert kp.read_changes(after_revision=r1).changes == []
    with pytest.raises(TupleMissingError):
        kp.delete_tuples(["document:d9#owner@user:zed"])
    r2 = kp.write_tuples(["document:d1#owner@user:anne"], idempotent=True).revision
    assert r2 >= r1
    r3 = kp.delete_tuples(["document:d1#owner@user:anne"]).revision
    assert r3 > r1
    assert not kp.check("user:anne", "viewer", "document:d1").allowed


@pytest.mark.parametrize(
    ("tuple_text", "error", "fga_code"),
    [
        ("document:d1#viewer@robot:x", TypeNotFoundError, 2021),
        ("widget:w1#viewer@user:anne", TypeNotFoundError, 2021),
        ("document:d1#approver@user:anne", RelationNotFoundError, 2022),
        ("document:d1#parent@user:anne", InvalidTupleError, 2027),
        ("document:d1#owner@user:*", InvalidTupleError, 2027),
    ],
)
def test_tuple_validation_errors(
    kp: Keyplane, tuple_text: str, error: type[Exception], fga_code: int
) -> None:
    with pytest.raises(error) as info:
        kp.write_tuples([tuple_text])
    assert getattr(info.value, "fga_code", None) == fga_code
    assert kp.read_tuples().items == []


def test_malformed_tuple_text(kp: Keyplane) -> None:
    with pytest.raises(InvalidTupleError):
        kp.write_tuples(["not a tuple"])


def test_conditions_need_their_parameters(kp: Keyplane) -> None:
    kp.write_tuples(
        [
            {
                "object": "document:d1",
                "relation": "viewer",
                "user": "user:bot",
                "condition": {"name": "in_hours"},
            }
        ]
    )
    assert kp.check("user:bot", "viewer", "document:d1", context={"hour": 10}).allowed
    assert not kp.check("user:bot", "viewer", "document:d1", context={"hour": 20}).allowed
    with pytest.raises(ConditionError) as info:
        kp.check("user:bot", "viewer", "document:d1")
    assert info.value.fga_code == 2000


def test_expiring_grant_stops_at_its_instant(kp: Keyplane, clock: FixedClock) -> None:
    kp.write_tuples(
        [
            {
                "object": "document:d1",
                "relation": "owner",
                "user": "user:temp",
                "expires_at": clock.now() + 60,
            }
        ]
    )
    assert kp.check("user:temp", "viewer", "document:d1").allowed
    clock.advance(59.9)
    assert kp.check("user:temp", "viewer", "document:d1").allowed
    clock.advance(0.2)
    assert not kp.check("user:temp", "viewer", "document:d1").allowed
    assert list(kp.list_objects("user:temp", "viewer", "document")) == []
    assert kp.gc_expired() == 1
    assert kp.read_tuples(object="document:d1").items == []


def test_contextual_tuples_do_not_persist(kp: Keyplane) -> None:
    kp.write_tuples(["document:d1#viewer@group:eng#member"])
    ctx = ["group:eng#member@user:erin"]
    assert kp.check("user:erin", "viewer", "document:d1", contextual_tuples=ctx).allowed
    assert not kp.check("user:erin", "viewer", "document:d1").allowed
    with pytest.raises(InvalidTupleError) as info:
        kp.check("user:erin", "viewer", "document:d1", contextual_tuples=["robot:x#member@user:a"])
    assert info.value.fga_code == 2027 and "robot" in info.value.message


def test_list_objects_users_expand_explain(kp: Keyplane) -> None:
    kp.write_tuples(
        [
            "group:eng#member@user:anne",
            "document:d1#viewer@group:eng#member",
            "document:d2#owner@user:anne",
            "document:d3#owner@user:bob",
        ]
    )
    assert sorted(kp.list_objects("user:anne", "viewer", "document")) == [
        "document:d1",
        "document:d2",
    ]
    assert kp.list_users("document:d1", "viewer", ["user"]) == ["user:anne"]
    assert kp.list_users("document:d1", "viewer", ["group#member"]) == ["group:eng#member"]
    tree = kp.expand("document:d1", "viewer")
    assert "document:d1#viewer" in json.dumps(tree)
    ok = kp.explain("user:anne", "viewer", "document:d1")
    assert ok.allowed
    assert "group:eng#member" in ok.render()
    no = kp.explain("user:bob", "viewer", "document:d1")
    assert not no.allowed
    assert no.to_dict()["allowed"] is False


def test_batch_check_isolates_item_errors(kp: Keyplane) -> None:
    kp.write_tuples(["document:d1#owner@user:anne"])
    res = kp.batch_check(
        [
            BatchItem("user:anne", "viewer", "document:d1", correlation_id="a"),
            BatchItem("user:bob", "viewer", "document:d1", correlation_id="b"),
            BatchItem("user:anne", "nope", "document:d1", correlation_id="c"),
        ]
    )
    assert [(r.correlation_id, r.allowed) for r in res] == [("a", True), ("b", False), ("c", False)]
    # OpenFGA answers a query naming an unknown relation with a validation error (2000)
    assert res[2].error is not None and res[2].error.fga_code == 2000
    assert "nope" in res[2].error.message


def test_old_model_versions_stay_usable(kp: Keyplane, model_dsl: str) -> None:
    old = kp.read_model().id
    kp.write_tuples(["document:d1#owner@user:anne"])
    kp.write_model(model_dsl.replace("or owner or", "or"))
    assert not kp.check("user:anne", "viewer", "document:d1").allowed
    assert kp.check("user:anne", "viewer", "document:d1", model_id=old).allowed
    assert [m.id for m in kp.list_models().items][1] == old


def test_invalid_model_is_rejected_with_positions(kp: Keyplane) -> None:
    before = kp.read_model().id
    with pytest.raises(InvalidModelError) as info:
        kp.write_model(
            "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [usr]\n"
        )
    assert info.value.errors and info.value.errors[0].line is not None
    assert kp.read_model().id == before


def test_limits(kp: Keyplane) -> None:
    too_many = [
        f"document:d{i}#owner@user:u" for i in range(kp.services.settings.max_write_tuples + 1)
    ]
    with pytest.raises(LimitExceededError):
        kp.write_tuples(too_many)
    assert kp.read_tuples().items == []


def test_unknown_store_and_missing_model(kp: Keyplane) -> None:
    with pytest.raises(StoreNotFoundError):
        kp.check("user:a", "viewer", "document:d1", store="no-such-store")
    s = kp.create_store("empty")
    try:
        with pytest.raises(ModelNotFoundError):
            kp.check("user:a", "viewer", "document:d1", store=s.id)
    finally:
        kp.delete_store(s.id)

"""Review filter ``user`` and ``tuples`` (issue 8: a least-privilege recommendation put to
review), on SQLite and PostgreSQL: exactly one user's tuples or grants; tuples named one
by one, in the order named, each of which must be selected; bad values refused with
nothing created; campaigns stored without the fields read back as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import ValidationError
from keyplane.governance.records import ReviewFilter
from keyplane.service import access_requests as AR
from keyplane.service import entitlements as E
from keyplane.service import identities as I
from keyplane.service import reviews as R
from keyplane.service import tuples as T
from keyplane.service.auth import Caller
from keyplane.service.context import Services

S = "review-filter"
NOW = 1_800_000_000.0
MODEL = """\
model
  schema 1.1
type document
  relations
    define viewer: [human, agent]
    define editor: [human, agent]
"""
SYSTEM = Caller.system_caller()


@pytest.fixture
def svc(storage_url: str) -> Iterator[Services]:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=S)
    kp = Keyplane.open(settings=settings, clock=FixedClock(NOW))
    try:
        kp.write_model(MODEL)
        s = kp.services
        I.create_identity(s, SYSTEM, S, "human", "alice")
        for a in ("bot", "other"):
            I.create_identity(s, SYSTEM, S, "agent", a, owners=["human:alice"])
        T.write_tuples(
            s, SYSTEM, S,
            writes=[
                "document:a#viewer@agent:bot", "document:b#editor@agent:bot",
                "document:c#viewer@agent:bot", "document:a#viewer@agent:other",
            ],
        )  # fmt: skip
        yield s
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


def _keys(svc: Services, review_id: str) -> list[str]:
    items = R.review_report(svc, SYSTEM, S, review_id).items
    return [f"{i.object}#{i.relation}@{i.user}" for i in items]


def test_user_selects_one_users_tuples(svc: Services) -> None:
    c = R.create_review(
        svc, SYSTEM, S, name="bot", filter={"source": "tuples", "user": "agent:bot"}
    )
    assert sorted(_keys(svc, c.id)) == [
        "document:a#viewer@agent:bot", "document:b#editor@agent:bot",
        "document:c#viewer@agent:bot",
    ]  # fmt: skip
    assert c.filter.user == "agent:bot" and c.filter.to_json()["user"] == "agent:bot"
    # with user_kind too: both must match
    c2 = R.create_review(
        svc, SYSTEM, S, name="none",
        filter={"source": "tuples", "user": "agent:bot", "user_kind": "human"},
    )  # fmt: skip
    assert _keys(svc, c2.id) == []


def test_named_tuples_in_the_order_named(svc: Services) -> None:
    named = ["document:c#viewer@agent:bot", "document:a#viewer@agent:bot"]
    c = R.create_review(
        svc, SYSTEM, S, name="named",
        filter={"source": "tuples", "user": "agent:bot", "tuples": [*named, named[0]]},
    )  # fmt: skip
    assert _keys(svc, c.id) == named
    assert c.filter.tuples == tuple(named)
    stored = R.get_review(svc, SYSTEM, S, c.id)
    assert stored.filter == c.filter  # persisted as JSON and read back


def test_a_named_tuple_that_is_not_selected_is_refused(svc: Services) -> None:
    for f in (
        {"source": "tuples", "tuples": ["document:zzz#viewer@agent:bot"]},  # no such tuple
        # exists, but not the named user's
        {"source": "tuples", "user": "agent:bot", "tuples": ["document:a#viewer@agent:other"]},
        # a plain tuple is not an access-request grant
        {"tuples": ["document:a#viewer@agent:bot"]},
    ):
        with pytest.raises(ValidationError) as err:
            R.create_review(svc, SYSTEM, S, name="x", filter=f)
        assert err.value.details["field"] == "tuples"
    assert R.list_reviews(svc, SYSTEM, S).items == []


def test_grants_source_with_user(svc: Services) -> None:
    E.create_entitlement(
        svc, SYSTEM, S, "doc-view", object="document:*", relation="viewer",
        owners=["human:alice"], risk="low", max_duration_seconds=86400,
        agents_may_request=True, approval=[{"id": "auto", "when": "true", "outcome": "approve"}],
    )  # fmt: skip
    for a, doc in (("agent:bot", "document:g1"), ("agent:other", "document:g2")):
        r = AR.create_access_request(
            svc, SYSTEM, S, "doc-view", object=doc, beneficiary=a, requester="human:alice",
            duration_seconds=3600, purpose="work", justification="needed",
        )  # fmt: skip
        assert r.state == "active"
    c = R.create_review(svc, SYSTEM, S, name="g", filter={"user": "agent:other"})
    assert _keys(svc, c.id) == ["document:g2#viewer@agent:other"]


def test_bad_values_are_refused(svc: Services) -> None:
    for f in (
        {"source": "tuples", "user": "not a node"},
        {"source": "tuples", "user": 7},
        {"source": "tuples", "tuples": "document:a#viewer@agent:bot"},  # not a list
        {"source": "tuples", "tuples": ["document:a#viewer"]},
        {"source": "tuples", "tuples": [3]},
    ):
        with pytest.raises(ValidationError):
            R.create_review(svc, SYSTEM, S, name="x", filter=f)


def test_filters_without_the_new_fields_read_as_before() -> None:
    old = {"object_type": "document", "relation": None, "user_kind": "agent",
           "source": "tuples", "unused_days": 30}  # fmt: skip
    f = ReviewFilter.from_json(dict(old))
    assert f.user is None and f.tuples == ()
    assert f.to_json() == old  # no new keys appear for an old campaign

"""Inputs the service refuses cleanly — with the right error, before anything is stored."""

from __future__ import annotations

import pytest

from keyplane import Keyplane
from keyplane.errors import InvalidTupleError
from keyplane.graph.tuples import Tuple


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

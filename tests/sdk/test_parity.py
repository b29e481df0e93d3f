"""The issue's promise: one scenario through the embedded Keyplane, the HTTP Client and the
AsyncClient (each against a real uvicorn server with a real admin key) gets the same
answers, errors included."""

from __future__ import annotations

from typing import Any

import pytest
import scenario
from sdk_helpers import SyncOverAsync

from keyplane import Client, Keyplane
from keyplane.errors import all_error_classes
from live_server import Server

ERROR_NAMES = {c.__name__ for c in all_error_classes()}


@pytest.fixture
def embedded_answers(embedded: Keyplane) -> list[tuple[str, Any]]:
    return scenario.run(embedded)


def _compare(expected: list[tuple[str, Any]], got: list[tuple[str, Any]]) -> None:
    assert [label for label, _ in got] == [label for label, _ in expected]
    for (label, want), (_, have) in zip(expected, got, strict=True):
        assert have == want, label


def test_client_answers_like_embedded(
    embedded_answers: list[tuple[str, Any]], client: Client
) -> None:
    _compare(embedded_answers, scenario.run(client))


@pytest.mark.postgres
def test_client_on_postgres_answers_like_embedded_on_sqlite(
    embedded_answers: list[tuple[str, Any]], pg_server: Server
) -> None:
    with pg_server.client() as c:
        _compare(embedded_answers, scenario.run(c))


def test_async_client_answers_like_embedded(
    embedded_answers: list[tuple[str, Any]], async_client: SyncOverAsync
) -> None:
    _compare(embedded_answers, scenario.run(async_client))  # type: ignore[arg-type]


def test_scenario_exercises_every_error_kind(embedded_answers: list[tuple[str, Any]]) -> None:
    raised = {
        value[1]
        for _, value in embedded_answers
        if isinstance(value, tuple) and len(value) == 4 and value[0] in ERROR_NAMES
    }
    assert raised >= {
        "model_not_found",
        "invalid_model",
        "tuple_exists",
        "tuple_missing",
        "type_not_found",
        "relation_not_found",
        "invalid_tuple",
        "store_not_found",
        "store_exists",
        "invalid_continuation_token",
        "validation_error",
        "condition_error",
        "consistency_timeout",
        "limit_exceeded",
    }


def test_server_fixture_is_real(server: Server) -> None:
    """The parity above runs over real HTTP with a real key: no key is refused."""
    from keyplane.errors import AuthenticationError

    with Client(server.url) as anonymous, pytest.raises(AuthenticationError):
        anonymous.list_stores()

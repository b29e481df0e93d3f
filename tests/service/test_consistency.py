"""Two processes, one PostgreSQL: a write through one is honoured by a check on the other.

The reader process (this test) keeps its graph in memory with the background tailer off,
so the only way it can see the other process's write is the ``at_least_as_fresh`` path
pulling the changelog — which is what the test proves. A second test turns the tailer on
and shows the write arriving without any revision in the request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest

from keyplane import Keyplane, Settings
from keyplane.errors import ConsistencyTimeoutError

pytestmark = pytest.mark.postgres

WRITER = textwrap.dedent(
    """
    import json, sys
    from keyplane import Keyplane, Settings
    url, store, tuples = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    with Keyplane.open(settings=Settings(database_url=url, poll_interval=0, default_store=store)) as kp:
        print(kp.write_tuples(tuples).revision)
    """
)


def _write_in_other_process(url: str, store: str, tuples: list[str]) -> int:
    out = subprocess.run(
        [sys.executable, "-c", WRITER, url, store, json.dumps(tuples)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return int(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def reader(postgres_schema_url: str, model_dsl: str) -> Iterator[Keyplane]:
    store = f"c-{uuid.uuid4().hex[:12]}"
    settings = Settings(
        database_url=postgres_schema_url,
        poll_interval=0.0,
        consistency_timeout=2.0,
        default_store=store,
    )
    kp = Keyplane.open(settings=settings)
    kp.write_model(model_dsl)
    yield kp
    kp.delete_store(store)
    kp.close()


def test_write_on_one_process_is_seen_by_a_check_on_another(reader: Keyplane) -> None:
    store = reader.services.settings.default_store
    # load the reader's in-memory graph before the other process writes
    assert not reader.check("user:anne", "viewer", "document:d1").allowed
    url = reader.services.settings.database_url
    rev = _write_in_other_process(url, store, ["document:d1#owner@user:anne"])
    # without a revision, the reader (tailer off) still answers from its stale graph...
    assert not reader.check("user:anne", "viewer", "document:d1").allowed
    # ...with at_least_as_fresh it catches up first and honours the write
    d = reader.check("user:anne", "viewer", "document:d1", at_least_as_fresh=rev)
    assert d.allowed and d.revision >= rev


def test_unreached_revision_times_out(reader: Keyplane) -> None:
    current = reader.write_tuples(["document:d1#owner@user:anne"]).revision
    started = time.monotonic()
    with pytest.raises(ConsistencyTimeoutError) as info:
        reader.check("user:anne", "viewer", "document:d1", at_least_as_fresh=current + 50)
    assert 1.5 <= time.monotonic() - started < 10
    assert info.value.details["requested"] == current + 50


def test_background_tailer_picks_up_remote_writes(postgres_schema_url: str, model_dsl: str) -> None:
    store = f"c-{uuid.uuid4().hex[:12]}"
    settings = Settings(database_url=postgres_schema_url, poll_interval=0.05, default_store=store)
    with Keyplane.open(settings=settings) as kp:
        kp.write_model(model_dsl)
        try:
            assert not kp.check("user:bob", "viewer", "document:d2").allowed
            _write_in_other_process(postgres_schema_url, store, ["document:d2#owner@user:bob"])
            deadline = time.monotonic() + 10
            while not kp.check("user:bob", "viewer", "document:d2").allowed:
                assert time.monotonic() < deadline, "tailer never applied the remote write"
                time.sleep(0.05)
        finally:
            kp.delete_store(store)

"""Ledger cursors and sequence numbers beyond 64 bits are validation errors, not database
overflows (found by the long schemathesis run: a 500 from SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyplane import Keyplane, Settings
from keyplane.errors import InvalidContinuationToken, ValidationError


def test_oversized_seq_and_cursor_are_refused(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'kp.db'}", poll_interval=0.0)
    with Keyplane.open(settings=settings) as kp:
        with pytest.raises(ValidationError) as info:
            list(kp.export_events(after_seq=2**70))
        assert "after_seq" in info.value.message
        with pytest.raises(InvalidContinuationToken):
            kp.query_events(cursor="9999999999999999999")
        # the largest valid values are fine
        assert list(kp.export_events(after_seq=2**63 - 1, format="jsonl")) is not None
        assert kp.query_events(cursor=str(2**63 - 1)).events == []

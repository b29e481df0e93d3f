"""Shared by the ledger reading tests: a model, and an embedded Keyplane whose ledger signs
a checkpoint every few events (so anchors exist in small tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keyplane import FixedClock, Keyplane, Settings
from keyplane.secrets import generate_master_key
from keyplane.service.access import BatchItem

MODEL = """\
model
  schema 1.1

type user

type group
  relations
    define member: [user, group#member]

type document
  relations
    define owner: [user]
    define viewer: [user, group#member] or owner
"""

MASTER_KEY = generate_master_key()


def settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "poll_interval": 0.0,
        "master_key": MASTER_KEY,
        "ledger_checkpoint_events": 5,
        "ledger_webhook_interval": 0.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def open_kp(database_url: str, clock: FixedClock, tmp_path: Path, **overrides: object) -> Keyplane:
    return Keyplane.open(settings=settings(database_url, tmp_path, **overrides), clock=clock)


def decide(kp: Keyplane, user: str, relation: str, obj: str, **kw: Any) -> str:
    """Check; the decision id (the id of the ledger event the check recorded)."""
    return kp.check(user, relation, obj, **kw).decision_id


def decide_batch(kp: Keyplane, items: Sequence[BatchItem]) -> list[str]:
    """Batch check; each item's decision id."""
    return [r.decision_id for r in kp.batch_check(items)]

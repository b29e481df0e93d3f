"""``keyplane ledger verify`` on a database and on an export file: exit 0 / 1 and the problem."""

from __future__ import annotations

import json
from pathlib import Path

from ledger_helpers import Raw, make_event
from typer.testing import CliRunner

from keyplane.cli.main import app
from keyplane.ledger.chain import write_export
from keyplane.ledger.checkpoints import LedgerKeyring, b64encode
from keyplane.storage import Storage

runner = CliRunner()


def _fill(storage: Storage, keyring: LedgerKeyring, store: str = "s1", n: int = 8) -> None:
    chained = storage.append_events([make_event(i, store=store) for i in range(n)])
    last = chained[-1]
    assert last.seq is not None and last.hash is not None
    storage.write_checkpoint(keyring.sign(store, last.seq, last.hash, 1.0))


def test_verify_a_database_ok_then_tampered(
    storage: Storage, storage_url: str, keyring: LedgerKeyring
) -> None:
    _fill(storage, keyring, "s1")
    _fill(storage, keyring, "s2", 3)
    ok = runner.invoke(app, ["ledger", "verify", "--db", storage_url, "--all"])
    assert ok.exit_code == 0, ok.output
    assert "store s1: OK — 8 events, last checkpoint at seq 8" in ok.output
    assert "store s2: OK — 3 events" in ok.output

    raw = Raw(storage_url)
    try:
        raw.execute(
            "UPDATE ledger_events SET body = replace(body, '\"allow\"', '\"deny\"')"
            " WHERE store_id = ? AND seq = ?",
            ("s1", 5),
        )
    finally:
        raw.close()
    bad = runner.invoke(app, ["ledger", "verify", "--db", storage_url, "--store", "s1"])
    assert bad.exit_code == 1
    assert "store s1: FAILED — modified at seq 5" in bad.output
    as_json = runner.invoke(app, ["ledger", "verify", "--db", storage_url, "--all", "-o", "json"])
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False
    problems = {s["store"]: s["first_problem"] for s in doc["stores"]}
    assert problems["s2"] is None
    assert (problems["s1"]["kind"], problems["s1"]["seq"]) == ("modified", 5)


def test_verify_trusts_only_the_public_keys_given(
    storage: Storage, storage_url: str, keyring: LedgerKeyring
) -> None:
    _fill(storage, keyring, "s1")
    (pub,) = keyring.public_keys("s1").values()
    good = runner.invoke(
        app, ["ledger", "verify", "--db", storage_url, "-s", "s1", "--public-key", b64encode(pub)]
    )
    assert good.exit_code == 0, good.output
    stranger = b64encode(bytes(range(32)))
    other = runner.invoke(
        app, ["ledger", "verify", "--db", storage_url, "-s", "s1", "--public-key", stranger]
    )
    assert other.exit_code == 1
    assert "bad_signature at seq 8" in other.output


def test_verify_an_export_file(storage: Storage, keyring: LedgerKeyring, tmp_path: Path) -> None:
    _fill(storage, keyring, "s1", 6)
    path = tmp_path / "ledger.jsonl"
    with path.open("w", encoding="utf-8") as fp:
        write_export(
            fp,
            storage.read_events("s1", limit=1000),
            storage.read_checkpoints("s1"),
            {"s1": keyring.public_keys("s1")},
        )
    ok = runner.invoke(app, ["ledger", "verify", "--file", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "store s1: OK — 6 events, last checkpoint at seq 6" in ok.output

    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    event_lines = [i for i, ln in enumerate(lines) if '"seq":' in ln and "checkpoint" not in ln]
    lines[event_lines[2]], lines[event_lines[3]] = lines[event_lines[3]], lines[event_lines[2]]
    swapped = tmp_path / "swapped.jsonl"
    swapped.write_text("".join(lines), encoding="utf-8")
    bad = runner.invoke(app, ["ledger", "verify", "--file", str(swapped)])
    assert bad.exit_code == 1
    assert "FAILED — reordered at seq 3" in bad.output

    del lines[event_lines[5]]  # the last event (line order: keys, events, checkpoints)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines), encoding="utf-8")
    bad = runner.invoke(app, ["ledger", "verify", "--file", str(cut), "-o", "json"])
    assert bad.exit_code == 1

    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("{nope\n", encoding="utf-8")
    res = runner.invoke(app, ["ledger", "verify", "--file", str(garbage)])
    assert res.exit_code == 1
    assert "line 1" in res.output


def test_an_unsigned_tail_is_reported_not_failed(
    storage: Storage, storage_url: str, keyring: LedgerKeyring
) -> None:
    _fill(storage, keyring, "s1", 4)
    storage.append_events([make_event(9, store="s1"), make_event(10, store="s1")])
    res = runner.invoke(app, ["ledger", "verify", "--db", storage_url, "-s", "s1"])
    assert res.exit_code == 0, res.output
    assert "last checkpoint at seq 4; 2 event(s) after it not yet signed (seq 5..6)" in res.output
    empty = runner.invoke(app, ["ledger", "verify", "--db", storage_url, "-s", "nothing"])
    assert empty.exit_code == 0 and "store nothing: OK — 0 events" in empty.output

"""Reading the ledger at the service layer (issue 4 §4), on SQLite and PostgreSQL: queries
with every filter and cursor pagination, a decision's provenance (replayed at its
revision), JSON Lines export → offline verification, OCSF shape, keys, retention and
pruning behind a signed anchor. Real storage, real keys, a fixed clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from reading_helpers import MODEL, decide, decide_batch, open_kp

from keyplane import FixedClock, Keyplane
from keyplane.errors import (
    InvalidContinuationToken,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from keyplane.ledger.chain import read_export, verify_export
from keyplane.ledger.events import EVENT_TYPES
from keyplane.ledger.ocsf import OCSF_CLASSES, ocsf_class
from keyplane.service import ledger, ledger_admin
from keyplane.service.access import BatchItem
from keyplane.service.keys import authenticate, create_key


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000.0)


@pytest.fixture
def kp(storage_url: str, clock: FixedClock, tmp_path) -> Iterator[Keyplane]:  # type: ignore[no-untyped-def]
    k = open_kp(storage_url, clock, tmp_path)
    try:
        k.write_model(MODEL)
        yield k
    finally:
        k.close()


def _seed(kp: Keyplane, clock: FixedClock) -> dict[str, str]:
    """A few changes and decisions, one second apart; returns decision ids by name."""
    rev = kp.write_tuples(
        ["group:eng#member@user:anne", "document:plan#viewer@group:eng#member"]
    ).revision
    ids: dict[str, str] = {}
    clock.advance(1)
    ids["anne"] = decide(kp, "user:anne", "viewer", "document:plan", at_least_as_fresh=rev)
    clock.advance(1)
    ids["bob"] = decide(kp, "user:bob", "viewer", "document:plan")
    clock.advance(1)
    ids["batch_anne"], ids["batch_carl"] = decide_batch(
        kp,
        [
            BatchItem("user:anne", "viewer", "document:plan", correlation_id="a"),
            BatchItem("user:carl", "viewer", "document:plan", correlation_id="c"),
        ],
    )
    return ids


def _all(kp: Keyplane, **filters: object) -> list[object]:
    out: list[object] = []
    cursor = None
    while True:
        page = kp.query_events(cursor=cursor, limit=2, **filters)  # type: ignore[arg-type]
        out.extend(page.events)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


# ------------------------------------------------------------------------------ query


def test_query_filters_and_cursor_pagination(kp: Keyplane, clock: FixedClock) -> None:
    t0 = clock.now()
    ids = _seed(kp, clock)
    everything = _all(kp)
    seqs = [e.seq for e in everything]  # type: ignore[attr-defined]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)) and seqs[0] == 1
    assert [e.seq for e in kp.query_events(limit=1000).events] == seqs

    checks = _all(kp, types=["decision.check"])
    assert [e.decision_id for e in checks] == [ids["anne"], ids["bob"]]  # type: ignore[attr-defined]
    decisions = _all(kp, types=["decision.*"])
    assert {e.type for e in decisions} == {"decision.check", "decision.batch_check"}  # type: ignore[attr-defined]
    denied = _all(kp, types=["decision.*"], outcome="deny")
    assert {e.subject for e in denied} == {"user:bob", "user:carl"}  # type: ignore[attr-defined]
    assert [e.id for e in _all(kp, subject="user:anne", types=["decision.*"])] == [  # type: ignore[attr-defined]
        ids["anne"],
        ids["batch_anne"],
    ]
    assert all(e.resource == "document:plan" for e in _all(kp, resource="document:plan"))  # type: ignore[attr-defined]
    assert {e.action for e in _all(kp, action="viewer")} == {"viewer"}  # type: ignore[attr-defined]
    (one,) = _all(kp, decision_id=ids["bob"])
    assert one.outcome == "deny" and one.caller == "system"  # type: ignore[attr-defined]
    same_request = _all(kp, request_id=one.request_id)  # type: ignore[attr-defined]
    assert [e.id for e in same_request] == [ids["bob"]]  # type: ignore[attr-defined]
    # time range: since inclusive, until exclusive
    window = _all(kp, since=t0 + 1, until=t0 + 2)
    assert [e.id for e in window] == [ids["anne"]]  # type: ignore[attr-defined]
    assert _all(kp, actor="system") == everything
    assert _all(kp, actor="key:nobody") == []
    assert _all(kp, purpose="nothing-recorded-this") == []


def test_query_rejects_bad_arguments(kp: Keyplane) -> None:
    with pytest.raises(InvalidContinuationToken):
        kp.query_events(cursor="not-a-seq")
    with pytest.raises(ValidationError):
        kp.query_events(outcome="maybe")
    with pytest.raises(ValidationError):
        kp.query_events(types=["nosuchfamily.*"])


def test_reading_needs_read_ledger(kp: Keyplane) -> None:
    svc = kp.services
    kp.create_store("other", store_id="other")
    roles = {
        "admin": True,
        "auditor": True,
        "writer": True,
        "writer:default": True,
        "reader": False,
        "reader:default": False,
        "writer:other": False,
    }
    for role, allowed in roles.items():
        _, secret = create_key(svc, kp.caller, owner=role, roles=[role])
        caller = authenticate(svc, secret)
        if allowed:
            ledger.query_events(svc, caller, "default")
            ledger.ledger_public_keys(svc, caller, "default")
        else:
            with pytest.raises(PermissionDeniedError):
                ledger.query_events(svc, caller, "default")
        # administering the ledger is for admins only
        if role != "admin":
            with pytest.raises(PermissionDeniedError):
                ledger_admin.prune_ledger(svc, caller, "default")


# ------------------------------------------------------------------------------ provenance


def test_allowed_check_provenance_is_replayed_at_its_revision(
    kp: Keyplane, clock: FixedClock
) -> None:
    ids = _seed(kp, clock)
    p = kp.get_decision(ids["anne"])
    assert p.event.decision_id == ids["anne"] and p.event.type == "decision.check"
    assert p.caller == "system" and p.subject == "user:anne"
    assert p.model_id == kp.read_model().id and p.revision == p.current_revision
    assert p.path_source == "replayed_at_revision" and p.replay_matches is True
    assert p.explanation is not None and p.explanation["allowed"] is True
    path = json.dumps(p.explanation["paths"])
    assert "group:eng#member" in path  # granted through the group
    assert not p.graph_moved

    # the grant goes away: the provenance still shows the path that granted it then
    kp.delete_tuples(["group:eng#member@user:anne"])
    later = kp.get_decision(ids["anne"])
    assert later.graph_moved and later.current_revision == p.revision + 1  # type: ignore[operator]
    assert later.path_source == "replayed_at_revision" and later.replay_matches is True
    assert later.explanation == p.explanation
    assert "group:eng#member" in ledger.render_provenance(later)


def test_denied_and_batch_decisions(kp: Keyplane, clock: FixedClock) -> None:
    ids = _seed(kp, clock)
    bob = kp.get_decision(ids["bob"])
    assert bob.event.outcome == "deny" and bob.explanation is not None
    assert bob.explanation["allowed"] is False and bob.explanation["reasons"]
    carl = kp.get_decision(ids["batch_carl"])
    assert carl.event.type == "decision.batch_check" and carl.event.details["correlation_id"] == "c"
    assert carl.replay_matches is True
    with pytest.raises(NotFoundError):
        kp.get_decision("01J0000000000000000000000X")


def test_provenance_of_a_deleted_store_says_so(kp: Keyplane, clock: FixedClock) -> None:
    kp.create_store("gone", store_id="gone")
    kp.write_model(MODEL, store="gone")
    rev = kp.write_tuples(["document:x#viewer@user:anne"], store="gone").revision
    did = decide(kp, "user:anne", "viewer", "document:x", store="gone", at_least_as_fresh=rev)
    kp.delete_store("gone")
    p = kp.get_decision(did)
    assert p.event.outcome == "allow" and p.path_source == "none"
    assert any("no longer exists" in n for n in p.notes)
    # the ledger outlives its store
    assert kp.query_events(store="gone", decision_id=did).events


# ------------------------------------------------------------------------------ export, verify


def test_jsonl_export_verifies_offline_and_tampering_is_caught(
    kp: Keyplane, clock: FixedClock
) -> None:
    _seed(kp, clock)
    kp.services.ledger.flush()
    lines = list(kp.export_events())
    assert all(line.endswith("\n") for line in lines)
    report = verify_export(read_export(lines))["default"]
    assert report.ok and report.checked == kp.services.storage.ledger_head("default")[0]

    # change one event's outcome in the file: verification names it
    i = next(i for i, ln in enumerate(lines) if '"outcome":"deny"' in ln)
    tampered = [
        *lines[:i],
        lines[i].replace('"outcome":"deny"', '"outcome":"allow"'),
        *lines[i + 1 :],
    ]
    bad = verify_export(read_export(tampered))["default"]
    assert not bad.ok and bad.first_problem is not None
    assert (
        bad.first_problem.kind == "modified"
        and bad.first_problem.seq == json.loads(lines[i])["seq"]
    )

    online = kp.verify_ledger()
    assert online.ok and online.checked == report.checked


def test_partial_export_starts_at_a_signed_anchor(kp: Keyplane, clock: FixedClock) -> None:
    for i in range(12):
        decide(kp, f"user:u{i}", "viewer", "document:plan")
    kp.services.ledger.flush()
    cps = kp.services.storage.read_checkpoints("default")
    assert cps, "checkpoints are written every few events in these tests"
    lines = list(kp.export_events(after_seq=cps[-1].seq + 1))
    parsed = read_export(lines)
    assert parsed.events["default"][0].seq == cps[-1].seq + 1
    assert verify_export(parsed)["default"].ok


def test_ocsf_export_shape(kp: Keyplane, clock: FixedClock) -> None:
    _seed(kp, clock)
    ledger_admin.set_ledger_retention(kp.services, kp.caller, "default", max_events=10**6)
    kp.services.ledger.flush()
    by_id = {json.loads(ln).get("id"): json.loads(ln) for ln in kp.export_events()}
    rows = [json.loads(ln) for ln in kp.export_events(format="ocsf")]
    assert rows
    for r in rows:
        for field in (
            "class_uid",
            "category_uid",
            "activity_id",
            "type_uid",
            "time",
            "severity_id",
            "status_id",
            "metadata",
            "actor",
        ):
            assert field in r, field
        assert r["type_uid"] == r["class_uid"] * 100 + r["activity_id"]
        assert r["metadata"]["product"]["name"] == "Keyplane" and r["metadata"]["version"]
        k = r["unmapped"]["keyplane"]
        # the chain hash travels with the OCSF record: it matches the verifiable export
        assert by_id[k["id"]]["hash"] == k["hash"] and by_id[k["id"]]["seq"] == k["seq"]
        assert isinstance(r["time"], int)
    decisions = [r for r in rows if r["unmapped"]["keyplane"]["type"].startswith("decision.")]
    assert {r["class_uid"] for r in decisions} == {6003}
    verdicts = {r["actor"]["authorizations"][0]["decision"] for r in decisions}
    assert verdicts == {"Allow", "Deny"}
    changes = [r for r in rows if r["unmapped"]["keyplane"]["type"] == "ledger.retention_set"]
    assert changes and all(r["class_uid"] == 3004 and r["activity_id"] == 3 for r in changes)
    assert changes[0]["entity"]["type"] == "ledger_retention"
    assert changes[0]["entity_result"]["data"]["max_events"] == 10**6


def test_every_event_type_has_an_ocsf_class_and_the_mapping_is_documented() -> None:
    for t in EVENT_TYPES:
        assert ocsf_class(t).class_uid != 0, f"{t} has no OCSF class (add a row or a family)"
    assert ocsf_class("identity.future_thing").class_uid == 0  # never dropped: Base Event
    doc = (Path(__file__).resolve().parents[2] / "docs" / "ledger.md").read_text()
    section = doc[doc.index("## OCSF mapping") :]
    for t, cls in OCSF_CLASSES.items():
        assert (
            f"| `{t}` | {cls.class_name} ({cls.class_uid}) | {cls.activity_name} ({cls.activity_id}) |"
            in section
        ), t


def test_public_keys_verify_checkpoints(kp: Keyplane, clock: FixedClock) -> None:
    for i in range(6):  # a checkpoint (and the store's key) every 5 events in these tests
        decide(kp, f"user:u{i}", "viewer", "document:plan")
    kp.services.ledger.flush()
    keys = kp.ledger_public_keys()
    assert keys and all(k.algorithm == "Ed25519" and len(k.public_bytes()) == 32 for k in keys)
    from keyplane.ledger.checkpoints import verify_checkpoint

    by_id = {k.key_id: k.public_bytes() for k in keys}
    for cp in kp.services.storage.read_checkpoints("default"):
        assert verify_checkpoint(cp, by_id[cp.key_id])


# ------------------------------------------------------------------------------ retention


def test_pruning_keeps_the_rest_verifiable(kp: Keyplane, clock: FixedClock) -> None:
    svc = kp.services
    for i in range(20):
        decide(kp, f"user:u{i}", "viewer", "document:plan")
        clock.advance(60)
    svc.ledger.flush()
    head = svc.storage.ledger_head("default")[0]
    assert ledger_admin.prune_ledger(svc, kp.caller, "default").deleted == 0  # no retention yet
    ledger_admin.set_ledger_retention(svc, kp.caller, "default", max_events=8)
    result = ledger_admin.prune_ledger(svc, kp.caller, "default")
    svc.ledger.flush()
    assert result.anchor_seq is not None and result.deleted == result.anchor_seq
    assert result.anchor_seq >= head - 8
    kept = _all(kp)
    assert kept[0].seq == result.anchor_seq + 1  # type: ignore[attr-defined]
    assert kp.verify_ledger().ok
    assert verify_export(read_export(kp.export_events()))["default"].ok
    # the pruning itself is in the chain
    pruned = _all(kp, types=["ledger.pruned"])[-1]
    assert pruned.details["anchor_seq"] == result.anchor_seq  # type: ignore[attr-defined]

    # by age: everything older than a day goes
    clock.advance(2 * 86400)
    decide(kp, "user:late", "viewer", "document:plan")
    ledger_admin.set_ledger_retention(svc, kp.caller, "default", max_age_days=1)
    again = ledger_admin.prune_ledger(svc, kp.caller, "default")
    svc.ledger.flush()
    assert again.deleted > 0
    assert kp.verify_ledger().ok
    assert all(e.time >= clock.now() - 86400 for e in _all(kp))  # type: ignore[attr-defined]


def test_deleting_an_event_after_pruning_is_still_caught(kp: Keyplane, clock: FixedClock) -> None:
    svc = kp.services
    for i in range(10):
        decide(kp, f"user:u{i}", "viewer", "document:plan")
    svc.ledger.flush()
    ledger_admin.set_ledger_retention(svc, kp.caller, "default", max_events=4)
    ledger_admin.prune_ledger(svc, kp.caller, "default")
    svc.ledger.flush()
    lines = list(kp.export_events())
    events = [i for i, ln in enumerate(lines) if '"seq"' in ln and '"checkpoint"' not in ln]
    victim = events[1]
    report = verify_export(read_export(lines[:victim] + lines[victim + 1 :]))["default"]
    assert not report.ok and report.first_problem is not None
    assert report.first_problem.kind == "deleted"


# ------------------------------------------------------------------------------ sensitive fields


def test_hmac_fields_are_searched_by_value_and_not_replayed(
    storage_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    kp = open_kp(storage_url, clock, tmp_path, ledger_hmac_fields="subject")
    try:
        kp.write_model(MODEL)
        kp.write_tuples(["document:plan#viewer@user:anne"])
        did = decide(kp, "user:anne", "viewer", "document:plan")
        decide(kp, "user:bob", "viewer", "document:plan")
        stored = kp.get_decision(did)
        assert stored.subject is not None and stored.subject.startswith("hmac-sha256:")
        assert "user:anne" not in json.dumps(stored.event.to_dict())
        # an auditor searches by the value; the query hashes it the same way
        (found,) = kp.query_events(subject="user:anne").events
        assert found.id == did
        assert stored.path_source == "none" and stored.explanation is None
        assert any("HMAC" in n for n in stored.notes)
    finally:
        kp.close()


def test_verify_ledger_reports_a_row_edited_in_the_database(
    tmp_path: Path, clock: FixedClock
) -> None:
    import sqlite3

    db = tmp_path / "kp.db"
    kp = open_kp(f"sqlite:///{db}", clock, tmp_path)
    try:
        kp.write_model(MODEL)
        did = decide(kp, "user:anne", "viewer", "document:plan")
        kp.services.ledger.flush()
        assert kp.verify_ledger().ok
        seq = kp.get_decision(did).event.seq
        with sqlite3.connect(db) as raw:  # an attacker with the database file
            raw.execute(
                "UPDATE ledger_events SET body = replace(body, '\"deny\"', '\"allow\"')"
                " WHERE decision_id = ?",
                (did,),
            )
        report = kp.verify_ledger()
        assert not report.ok and report.first_problem is not None
        assert (report.first_problem.kind, report.first_problem.seq) == ("modified", seq)
    finally:
        kp.close()

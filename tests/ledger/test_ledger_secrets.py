"""The master key (env or 0600 key file), AES-GCM at rest, HMAC redaction, Services wiring."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ledger_helpers import make_event

from keyplane.config import Settings
from keyplane.errors import ValidationError
from keyplane.ledger.chain import verify_stored
from keyplane.ledger.redact import HMAC_PREFIX, Redactor, parse_fields
from keyplane.secrets import (
    MasterKey,
    default_key_file,
    generate_master_key,
    load_master_key,
)
from keyplane.service.context import Services


def test_the_key_file_is_created_0600_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keyplane.key"
    first = load_master_key(key_file=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_master_key(key_file=path)
    blob = first.encrypt(b"secret", aad=b"a")
    assert again.decrypt(blob, aad=b"a") == b"secret"  # the same key, read back


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keyplane.key"
    load_master_key(key_file=path)
    path.chmod(0o644)
    with pytest.raises(ValidationError, match="chmod 600"):
        load_master_key(key_file=path)


def test_the_environment_key_wins_and_is_checked(tmp_path: Path) -> None:
    text = generate_master_key()
    key = load_master_key(key=text, key_file=tmp_path / "unused.key")
    assert not (tmp_path / "unused.key").exists()
    assert load_master_key(key=text).decrypt(key.encrypt(b"x", aad=b""), aad=b"") == b"x"
    with pytest.raises(ValidationError, match="32 bytes"):
        load_master_key(key="c2hvcnQ")
    with pytest.raises(ValidationError, match="base64url"):
        load_master_key(key="not base64 at all!!")


def test_encryption_round_trip_and_tamper_detection() -> None:
    key = MasterKey(os.urandom(32))
    blob = key.encrypt(b"ledger private key", aad=b"store\nkid")
    assert b"ledger private key" not in blob
    assert key.encrypt(b"ledger private key", aad=b"store\nkid") != blob  # fresh nonce
    assert key.decrypt(blob, aad=b"store\nkid") == b"ledger private key"
    with pytest.raises(ValidationError):
        key.decrypt(blob, aad=b"other\nkid")  # moved to another row
    with pytest.raises(ValidationError):
        key.decrypt(blob[:-1] + bytes([blob[-1] ^ 1]), aad=b"store\nkid")
    with pytest.raises(ValidationError):
        MasterKey(os.urandom(32)).decrypt(blob, aad=b"store\nkid")
    assert "hidden" in repr(key) and key.derive("a") != key.derive("b")


def test_default_key_file_location() -> None:
    assert default_key_file("sqlite:////var/lib/kp/keyplane.db") == Path("/var/lib/kp/keyplane.key")
    assert default_key_file("sqlite:///data/k.db") == Path("data/keyplane.key")
    assert default_key_file("postgresql://h/db") == Path("keyplane.key")
    assert default_key_file(None) == Path("keyplane.key")


def test_settings_never_print_the_master_key() -> None:
    s = Settings.from_env({"KEYPLANE_MASTER_KEY": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXh4eHg"})
    assert s.master_key and s.master_key not in repr(s)


def test_redaction_hashes_configured_fields_searchably() -> None:
    key = os.urandom(32)
    red = Redactor(parse_fields("subject, details.context, details.tuples.user"), lambda: key)
    e = make_event(
        1,
        details={
            "context": {"ip": "10.0.0.1"},
            "tuples": [{"user": "user:a", "object": "doc:1"}],
            "n": 3,
        },
    )
    out = red(e)
    assert out.subject == red.hash_value("user:u1") and out.subject.startswith(HMAC_PREFIX)
    assert out.details["context"] == red.hash_value({"ip": "10.0.0.1"})
    assert out.details["tuples"] == [{"user": red.hash_value("user:a"), "object": "doc:1"}]
    assert out.details["n"] == 3 and out.resource == e.resource
    assert e.details["context"] == {"ip": "10.0.0.1"}  # the original is untouched
    assert red(out) == out  # hashing twice is a no-op
    other = Redactor(["subject"], lambda: os.urandom(32))
    assert other(e).subject != out.subject  # keyed: not a plain hash anyone can compute
    with pytest.raises(ValueError, match="cannot HMAC"):
        parse_fields("subjekt")


def test_services_record_checkpoint_and_close_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "svc.db"
    settings = Settings(
        database_url=f"sqlite:///{db}",
        poll_interval=0.0,
        ledger_hmac_fields="subject",
    )
    svc = Services.open(settings)
    try:
        assert not (tmp_path / "keyplane.key").exists()  # only made when first needed
        svc.ledger.record(make_event(1, store="s1"))
        (stored,) = svc.storage.read_events("s1")
        assert stored.subject == svc.redactor.hash_value("user:u1")
    finally:
        svc.close()  # drains and signs the chain head
    key_file = tmp_path / "keyplane.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    svc = Services.open(settings)
    try:
        report = verify_stored(svc.storage, "s1")
        assert report.ok and report.last_checkpoint_seq == 1
        assert list(svc.keyring.public_keys("s1"))
    finally:
        svc.close()


def test_services_in_async_mode(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'a.db'}",
        poll_interval=0.0,
        ledger_mode="async",
        master_key=generate_master_key(),
    )
    svc = Services.open(settings)
    try:
        for i in range(50):
            svc.ledger.record(make_event(i, store="s1"))
    finally:
        svc.close()
    assert svc.ledger.stats().committed == 50
    assert not (tmp_path / "keyplane.key").exists()  # the environment key was used
    with pytest.raises(ValueError, match="sync or async"):
        Services.open(Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}", ledger_mode="fast"))

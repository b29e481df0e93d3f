"""``keyplane ledger …`` — the provenance ledger from the command line.

``keyplane ledger verify`` works OFFLINE: on the database itself (``--db`` /
``KEYPLANE_DATABASE_URL``: it reads the raw rows and recomputes every hash, trusting none
stored) or on a JSON Lines export (``--file``). With ``--public-key`` only the keys given
are trusted for checkpoint signatures — obtain them out of band to verify without
trusting the server at all. Exit status 0 when every chain verifies, 1 otherwise, with the
first problem printed (kind, seq, event).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keyplane.cli.common import DbOpt, JsonOpt, OutputOpt, emit_json, fail, out, wants_json
from keyplane.config import Settings
from keyplane.errors import KeyplaneError, ValidationError
from keyplane.ledger.chain import VerifyReport, read_export, verify, verify_stored
from keyplane.ledger.checkpoints import b64decode, key_id_for

__all__ = ["ledger_app"]

ledger_app = typer.Typer(
    help="The provenance ledger: verify the hash chains offline.", no_args_is_help=True
)


def _trusted_keys(values: list[str]) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for raw in values:
        kid, sep, text = raw.partition("=")
        if not sep:
            kid, text = "", raw
        try:
            pub = b64decode(text.strip())
        except ValueError as exc:
            raise ValidationError(f"--public-key {raw!r}: not base64url") from exc
        if len(pub) != 32:
            raise ValidationError(f"--public-key {raw!r}: an Ed25519 public key has 32 bytes")
        keys[kid or key_id_for(pub)] = pub
    return keys


def _print(reports: list[VerifyReport], as_json: bool) -> None:
    if as_json:
        emit_json({"ok": all(r.ok for r in reports), "stores": [r.to_dict() for r in reports]})
        return
    if not reports:
        out.print("no ledger to verify")
    for r in reports:
        if r.ok:
            tail = (
                f"; {r.unsigned_tail} event(s) after it not yet signed"
                f" (seq {r.last_checkpoint_seq + 1}..{r.last_seq})"
                if r.unsigned_tail
                else ""
            )
            out.print(
                f"store {r.store}: OK — {r.checked} events, last checkpoint at seq"
                f" {r.last_checkpoint_seq}{tail}",
                markup=False,
                soft_wrap=True,
            )
        else:
            out.print(f"store {r.store}: FAILED — {r.first_problem}", markup=False, soft_wrap=True)


@ledger_app.command("verify")
def verify_cmd(
    store: Annotated[
        str | None, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")
    ] = None,
    all_stores: Annotated[bool, typer.Option("--all", help="Every store with a ledger.")] = False,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Verify a JSON Lines export instead of the database."),
    ] = None,
    public_key: Annotated[
        list[str] | None,
        typer.Option(
            "--public-key",
            help="Trust only this Ed25519 public key (base64url, optionally KEY_ID=…); repeatable.",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Recompute the hash chains and check the signed checkpoints; exit 1 on any problem."""
    try:
        trusted = _trusted_keys(public_key) if public_key else None
        if file is not None:
            reports = _verify_file(file, store, all_stores, trusted)
        else:
            reports = _verify_db(db, store, all_stores, trusted)
    except KeyplaneError as exc:
        fail(exc)
    _print(reports, wants_json(as_json, output))
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


def _verify_file(
    path: Path, store: str | None, all_stores: bool, trusted: dict[str, bytes] | None
) -> list[VerifyReport]:
    try:
        with path.open(encoding="utf-8") as fp:
            export = read_export(fp)
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:
        raise ValidationError(f"{path}: {exc}") from exc
    stores = export.stores if (all_stores or store is None) else [store]
    reports = []
    for s in stores:
        keys = trusted if trusted is not None else export.public_keys.get(s, {})
        reports.append(
            verify(export.events.get(s, []), export.checkpoints.get(s, []), keys, store=s)
        )
    return reports


def _verify_db(
    db: str | None, store: str | None, all_stores: bool, trusted: dict[str, bytes] | None
) -> list[VerifyReport]:
    from keyplane.storage import open_storage

    settings = Settings.from_env(database_url=db)
    storage = open_storage(settings.database_url)
    try:
        stores = storage.ledger_stores() if all_stores else [store or settings.default_store]
        return [verify_stored(storage, s, public_keys=trusted) for s in stores]
    finally:
        storage.close()

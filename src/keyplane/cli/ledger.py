"""``keyplane ledger …`` — the provenance ledger from the command line.

``keyplane ledger verify`` works OFFLINE: on the database itself (``--db`` /
``KEYPLANE_DATABASE_URL``: it reads the raw rows and recomputes every hash, trusting none
stored) or on a JSON Lines export (``--file``). With ``--public-key`` only the keys given
are trusted for checkpoint signatures — obtain them out of band to verify without
trusting the server at all. Exit status 0 when every chain verifies, 1 otherwise, with the
first problem printed (kind, seq, event).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    connect,
    emit_json,
    err,
    fail,
    out,
    table,
    timestamp,
    wants_json,
)
from keyplane.config import Settings
from keyplane.errors import KeyplaneError, ValidationError
from keyplane.ledger.chain import VerifyReport, read_export, verify, verify_stored
from keyplane.ledger.checkpoints import b64decode, key_id_for
from keyplane.service.ledger import render_provenance

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


# ---------------------------------------------------------------------------- reading (issue 4 §4)

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]


def _when(raw: str | None, name: str) -> float | None:
    """RFC 3339 (``2026-11-28T14:00:00Z``) or seconds since the epoch."""
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        err.print(f"error[validation_error]: {name} must be RFC 3339 or epoch seconds: {raw!r}")
        raise typer.Exit(2) from None


@ledger_app.command("events")
def ledger_events(
    store: StoreOpt = "default",
    since: Annotated[str | None, typer.Option(help="From this time (RFC 3339 or epoch).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time.")] = None,
    type: Annotated[
        list[str] | None, typer.Option("--type", "-t", help="Event type (repeatable; decision.*).")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="The subject.")] = None,
    actor: Annotated[str | None, typer.Option(help="An actor anywhere in the chain.")] = None,
    resource: Annotated[str | None, typer.Option(help="The object.")] = None,
    action: Annotated[str | None, typer.Option(help="The relation or operation.")] = None,
    outcome: Annotated[str | None, typer.Option(help="allow, deny, error or ok.")] = None,
    purpose: Annotated[str | None, typer.Option()] = None,
    request_id: Annotated[str | None, typer.Option("--request-id")] = None,
    decision_id: Annotated[str | None, typer.Option("--decision-id")] = None,
    cursor: Annotated[str | None, typer.Option(help="The previous page's next cursor.")] = None,
    limit: Annotated[int, typer.Option(help="Events per page.")] = 100,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Query the ledger: events matching every filter, oldest first (one page)."""
    with connect(db, url, api_key) as kp:
        page = kp.query_events(
            store=store,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
            types=type,
            subject=subject,
            actor=actor,
            resource=resource,
            action=action,
            outcome=outcome,
            purpose=purpose,
            request_id=request_id,
            decision_id=decision_id,
            cursor=cursor,
            limit=limit,
        )
    if wants_json(as_json, output):
        emit_json({"events": [e.to_dict() for e in page.events], "next_cursor": page.next_cursor})
        return
    t = table("seq", "time", "type", "outcome", "caller", "subject", "action", "resource", "id")
    for e in page.events:
        t.add_row(
            str(e.seq),
            timestamp(e.time),
            e.type,
            e.outcome,
            e.caller,
            e.subject or "",
            e.action or "",
            e.resource or "",
            e.id,
        )
    out.print(t)
    if page.next_cursor:
        out.print(f"more: --cursor {page.next_cursor}", highlight=False)


@ledger_app.command("show")
def ledger_show(
    decision_id: Annotated[str, typer.Argument(help="The decision id a query returned.")],
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """A decision's full provenance: who, on whose behalf, which model, which path."""
    with connect(db, url, api_key) as kp:
        p = kp.get_decision(decision_id)
    if wants_json(as_json, output):
        emit_json(p.to_dict())
        return
    sys.stdout.write(render_provenance(p))


@ledger_app.command("export")
def ledger_export(
    store: StoreOpt = "default",
    format: Annotated[
        str, typer.Option("--format", "-f", help="jsonl (verifiable) or ocsf.")
    ] = "jsonl",
    after_seq: Annotated[int, typer.Option("--after-seq", help="Start after this seq.")] = 0,
    since: Annotated[str | None, typer.Option(help="From this time (RFC 3339 or epoch).")] = None,
    to: Annotated[
        Path | None, typer.Option("--to", "-o", help="Write to this file (default stdout).")
    ] = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Export the ledger as JSON Lines (verify it offline with `keyplane ledger verify
    --file`) or as OCSF events, streamed."""
    with connect(db, url, api_key) as kp:
        lines = kp.export_events(
            store=store, format=format, after_seq=after_seq, since=_when(since, "--since")
        )
        if to is None:
            for line in lines:
                sys.stdout.write(line)
        else:
            with to.open("w", encoding="utf-8") as fp:
                n = 0
                for line in lines:
                    fp.write(line)
                    n += 1
            err.print(f"wrote {n} lines to {to}", highlight=False)


@ledger_app.command("keys")
def ledger_keys(
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The store's ledger public keys (Ed25519) that verify its checkpoints."""
    with connect(db, url, api_key) as kp:
        keys = kp.ledger_public_keys(store=store)
    if wants_json(as_json, output):
        emit_json(
            [
                {
                    "key_id": k.key_id,
                    "algorithm": k.algorithm,
                    "public_key": k.public_key,
                    "created_at": k.created_at,
                }
                for k in keys
            ]
        )
        return
    t = table("key id", "algorithm", "public key", "created")
    for k in keys:
        t.add_row(k.key_id, k.algorithm, k.public_key, timestamp(k.created_at))
    out.print(t)


@ledger_app.command("retention")
def ledger_retention(
    store: StoreOpt = "default",
    max_age_days: Annotated[
        float | None, typer.Option("--max-age-days", help="Keep events younger than this.")
    ] = None,
    max_events: Annotated[
        int | None, typer.Option("--max-events", help="Keep at most this many newest events.")
    ] = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Set how much of the store's ledger to keep (neither option: keep everything)."""
    with connect(db, url, api_key) as kp:
        r = kp.set_ledger_retention(store=store, max_age_days=max_age_days, max_events=max_events)
    if wants_json(as_json, output):
        emit_json({"store": r.store, "max_age_days": r.max_age_days, "max_events": r.max_events})
        return
    if r.max_age_days is None and r.max_events is None:
        out.print(f"store {r.store}: the ledger keeps every event", highlight=False)
    else:
        out.print(
            f"store {r.store}: keep events younger than {r.max_age_days} days"
            f" and at most {r.max_events} events (None: no limit); applied by `ledger prune`",
            highlight=False,
        )


@ledger_app.command("prune")
def ledger_prune(
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Delete the events the retention no longer keeps, behind a signed anchor."""
    with connect(db, url, api_key) as kp:
        r = kp.prune_ledger(store=store)
    if wants_json(as_json, output):
        emit_json(r.to_dict())
        return
    if r.anchor_seq is None:
        out.print(f"store {r.store}: nothing to prune", highlight=False)
    else:
        out.print(
            f"store {r.store}: deleted {r.deleted} events; the chain now starts at seq"
            f" {r.first_seq}, anchored by a signed checkpoint at seq {r.anchor_seq}",
            highlight=False,
        )


webhook_app = typer.Typer(help="Stream the ledger to webhooks.", no_args_is_help=True)
ledger_app.add_typer(webhook_app, name="webhook")


@webhook_app.command("create")
def webhook_create(
    target: Annotated[str, typer.Argument(metavar="URL", help="Where to POST the events.")],
    store: StoreOpt = "default",
    secret: Annotated[
        str | None, typer.Option(help="The signing secret (default: generated).")
    ] = None,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="Deliver the whole kept ledger.")
    ] = False,
    event_type: Annotated[
        list[str] | None,
        typer.Option(
            "--event-type",
            help="Deliver only this event type (exact, or a prefix ending in '*' such as"
            " 'access_request.*'); repeatable. Default: every event.",
        ),
    ] = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Subscribe a URL to the store's ledger; prints the signing secret once."""
    with connect(db, url, api_key) as kp:
        hook, sec = kp.create_webhook(
            target,
            store=store,
            secret=secret,
            from_start=from_start,
            event_types=event_type or None,
        )
    if wants_json(as_json, output):
        emit_json({"webhook": hook.to_dict(), "secret": sec})
        return
    out.print(f"webhook {hook.id} → {hook.url}", highlight=False)
    if hook.event_types:
        out.print(f"event types: {', '.join(hook.event_types)}", highlight=False, markup=False)
    out.print(f"secret (shown once): {sec}", highlight=False, markup=False)


@webhook_app.command("list")
def webhook_list(
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The store's subscriptions and their delivery state."""
    with connect(db, url, api_key) as kp:
        hooks = kp.list_webhooks(store=store)
    if wants_json(as_json, output):
        emit_json([h.to_dict() for h in hooks])
        return
    t = table("id", "url", "event types", "acked seq", "failures", "last error")
    for h in hooks:
        t.add_row(
            h.id,
            h.url,
            ", ".join(h.event_types) or "all",
            str(h.acked_seq),
            str(h.failures),
            h.last_error or "",
        )
    out.print(t)


@webhook_app.command("delete")
def webhook_delete(
    webhook_id: str,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Stop streaming to a subscription."""
    with connect(db, url, api_key) as kp:
        kp.delete_webhook(webhook_id, store=store)
    out.print(f"deleted webhook {webhook_id}", highlight=False)

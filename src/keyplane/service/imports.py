"""Identity source imports: an export of AWS IAM, Kubernetes RBAC or GitHub → the graph.

:func:`import_source` runs the source's importer (:mod:`keyplane.importers`) on the export
and the store's identity plane, then:

1. validates the plan — every identity (kind, id, owners: a non-human one needs one),
   every tuple against the store's model merged with the importer's model fragment —
   before anything is written (a bad export is a ``validation_error`` naming the path of
   the field, from the importer; nothing written);
2. writes a new model version only when the fragment adds types or relations the store's
   model lacks (``model.written`` with ``details.import``; the user's own definitions win);
3. diffs against the previous import of the same (source, scope) — the ``source_imports``
   record — and the identities as they are: planned identities missing are created
   (source ``import:<source>``, ``attributes.links[source]`` = the external id), changed
   ones updated (display name, attributes, owners and their owner tuples); tuples new
   since the last import written, tuples gone deleted; identities the previous import
   created that disappeared are deprovisioned (with the orphan and suspension effects of
   :func:`keyplane.service.identities.deprovision_identity`). An identity of another
   source is never touched — not updated, never deprovisioned;
4. writes in batches of :data:`BATCH_SIZE` (identities with their owner tuples, then
   tuples), each one transaction with its own ``identity.*`` and ``tuples.written``
   events, then the record with one ``source.imported`` event (counts, digest).

Idempotent: the same export again changes nothing and records one ``source.imported``
with zero counts. An import cut short (a crash between batches) is completed by running
it again: creations and tuple writes are idempotent, and the record — written last — still
names what the previous complete import wrote. ``dry_run`` does steps 1 and 3 and writes
nothing (no event either).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import (
    IdentityNotFoundError,
    KeyplaneError,
    ModelNotFoundError,
    ValidationError,
)
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.tuples import Tuple
from keyplane.importers.base import (
    ImportPlan,
    PlannedIdentity,
    Progress,
    get_importer,
    import_source_name,
)
from keyplane.importers.fragment import merge_fragment
from keyplane.importers.records import (
    ChangeCounts,
    ImportRecord,
    ImportResult,
    SourceImport,
    TupleKey,
)
from keyplane.ledger.events import LedgerEvent
from keyplane.policy.records import NON_HUMAN_KINDS, Identity
from keyplane.policy.state import PolicyState
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.identities import (
    MAX_ATTRIBUTES_BYTES,
    MAX_OWNERS,
    check_id,
    check_kind,
    check_owner,
    deprovision_identity,
    is_orphaned,
    owner_tuple,
)
from keyplane.storage.base import ModelRecord, PolicyTxReader, PolicyWrite

__all__ = ["BATCH_SIZE", "import_source", "list_imports"]

#: identities (with their owner tuples) or tuples per write transaction
BATCH_SIZE = 500
MAX_SCOPE = 256
MAX_WARNINGS = 200
_LIST_LIMIT = audit.LIST_DETAIL_LIMIT


def _nothing(phase: str, done: int, total: int) -> None:
    return None


def export_digest(data: Any) -> str:
    """SHA-256 of the export's canonical JSON (sorted keys, no spaces)."""
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"the export must be JSON: {exc}") from None
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------ the plan, checked


@dataclass
class _Checked:
    """A validated plan: identities by node, tuples by key (first occurrence kept)."""

    plan: ImportPlan
    identities: dict[str, PlannedIdentity]
    tuples: dict[TupleKey, Tuple]
    warnings: list[str] = field(default_factory=list)


def _check_attributes(node: str, value: Mapping[str, Any], links: dict[str, str]) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError(
            f"{node}: attributes must be a JSON object", details={"identity": node}
        )
    attrs = dict(value)
    attrs["links"] = {**dict(attrs.get("links") or {}), **links}
    try:
        text = json.dumps(attrs, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{node}: attributes must be JSON: {exc}", details={"identity": node}
        ) from None
    if len(text) > MAX_ATTRIBUTES_BYTES:
        raise ValidationError(
            f"{node}: attributes exceed {MAX_ATTRIBUTES_BYTES} bytes", details={"identity": node}
        )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _check_plan(plan: Any, source: str) -> _Checked:
    if not isinstance(plan, ImportPlan):
        raise TypeError(f"the {source} importer returned {type(plan).__name__}, not an ImportPlan")
    if plan.source != source:
        raise ValueError(f"the {source} importer planned source {plan.source!r}")
    scope = plan.scope
    if not isinstance(scope, str) or not scope.strip() or len(scope) > MAX_SCOPE:
        raise ValidationError(
            f"the {source} export names no scope (account, cluster or organisation)",
            details={"source": source},
        )
    identities: dict[str, PlannedIdentity] = {}
    for p in plan.identities:
        node = f"{p.kind}:{p.id}"
        try:
            check_kind(p.kind)
            check_id(p.id)
            owners = tuple(check_owner(o) for o in dict.fromkeys(p.owners))
        except ValidationError as exc:
            raise ValidationError(
                f"{node}: {exc.message}", details={**exc.details, "identity": node}
            ) from None
        if p.kind in NON_HUMAN_KINDS and not owners:
            raise ValidationError(
                f"{node}: a {p.kind} needs at least one owner", details={"identity": node}
            )
        if p.kind == "human" and owners:
            raise ValidationError(
                f"{node}: a human identity has no owners", details={"identity": node}
            )
        if len(owners) > MAX_OWNERS:
            raise ValidationError(
                f"{node}: at most {MAX_OWNERS} owners", details={"identity": node}
            )
        if not isinstance(p.display_name, str) or len(p.display_name) > 256:
            raise ValidationError(
                f"{node}: display_name must be at most 256 characters", details={"identity": node}
            )
        if not isinstance(p.external_id, str) or not p.external_id:
            raise ValidationError(
                f"{node}: an imported identity needs its external id", details={"identity": node}
            )
        if node in identities:
            raise ValidationError(f"{node} is planned twice", details={"identity": node})
        attrs = _check_attributes(node, p.attributes, {source: p.external_id})
        identities[node] = dataclasses.replace(p, attributes=attrs, owners=owners)
    tuples: dict[TupleKey, Tuple] = {}
    for t in plan.tuples:
        if not isinstance(t, Tuple):
            raise TypeError(f"the {source} importer planned {t!r}, not a Tuple")
        if t.condition or t.expires_at is not None:
            raise ValidationError(
                f"{t}: imported tuples carry no condition or expiry", details={"tuple": str(t)}
            )
        tuples.setdefault(t.key, Tuple(t.object, t.relation, t.user))
    warnings = [str(w) for w in plan.warnings][:MAX_WARNINGS]
    if len(plan.warnings) > MAX_WARNINGS:
        warnings.append(f"… and {len(plan.warnings) - MAX_WARNINGS} more warnings")
    return _Checked(plan, identities, tuples, warnings)


def _validate_tuples(model: CompiledModel, checked: _Checked) -> None:
    """Every tuple (owner tuples included) must fit the merged model."""
    every = [owner_tuple(n, o) for n, p in checked.identities.items() for o in p.owners]
    every += checked.tuples.values()
    for t in every:
        try:
            model.validate_tuple(t)
        except KeyplaneError as exc:
            raise type(exc)(
                f"{t}: {exc.message}", details={**exc.details, "tuple": str(t)}
            ) from None


# ------------------------------------------------------------------------------ the diff


@dataclass
class _Diff:
    create: list[Identity] = field(default_factory=list)
    update: list[tuple[Identity, Identity]] = field(default_factory=list)  # (old, new)
    deprovision: list[str] = field(default_factory=list)
    tuple_writes: list[Tuple] = field(default_factory=list)
    tuple_deletes: list[Tuple] = field(default_factory=list)
    owned: dict[str, str] = field(default_factory=dict)  # node -> external id (the record's)


def _diff(
    checked: _Checked,
    state: PolicyState,
    previous: SourceImport | None,
    source: str,
    store_id: str,
    now: float,
) -> _Diff:
    own = import_source_name(source)
    d = _Diff()
    for node, p in checked.identities.items():
        existing = state.identity(node)
        if existing is None:
            d.create.append(
                Identity(
                    store_id, p.kind, p.id, p.display_name or p.id, dict(p.attributes),
                    "active", p.owners, False, own, now, now, None, 0,
                )
            )  # fmt: skip
            d.owned[node] = p.external_id
            continue
        if existing.source != own:
            checked.warnings.append(
                f"{node} exists (source {existing.source}) and is left as it is: link it with "
                f"attributes.links.{source} = {p.external_id!r} to use it"
            )
            continue
        d.owned[node] = p.external_id
        if existing.status == "deprovisioned":
            checked.warnings.append(
                f"{node} was deprovisioned and is back at the source: it stays deprovisioned"
            )
            continue
        name = p.display_name or p.id
        if (
            existing.display_name != name
            or existing.attributes != p.attributes
            or existing.owners != p.owners
        ):
            d.update.append(
                (
                    existing,
                    dataclasses.replace(
                        existing,
                        display_name=name,
                        attributes=dict(p.attributes),
                        owners=p.owners,
                        updated_at=now,
                    ),
                )
            )
    for node in sorted((previous.identities if previous else {}).keys() - d.owned.keys()):
        existing = state.identity(node)
        if existing is not None and existing.source == own and existing.status != "deprovisioned":
            d.deprovision.append(node)
    before = set(previous.tuples) if previous else set()
    d.tuple_writes = [t for k, t in checked.tuples.items() if k not in before]
    d.tuple_deletes = [Tuple(*k) for k in sorted(before - checked.tuples.keys())]
    return d


# ------------------------------------------------------------------------------ writing


def _identity_events(
    svc: Services, caller: Caller, store_id: str, revision: int, source: str,
    created: Sequence[Identity], updated: Sequence[tuple[Identity, Identity]],
) -> list[tuple[LedgerEvent, str]]:  # fmt: skip
    out: list[tuple[LedgerEvent, str]] = []
    for i in created:
        out += audit.change_events(
            svc, caller, "identity.created", store_id, resource=i.node, action="created",
            revision=revision,
            details={
                "kind": i.kind, "owners": list(i.owners), "source": i.source,
                "display_name": i.display_name, "import": source,
            },
        )  # fmt: skip
    for old, new in updated:
        changed = [f for f in ("display_name", "attributes") if getattr(old, f) != getattr(new, f)]
        if changed:
            out += audit.change_events(
                svc, caller, "identity.updated", store_id, resource=new.node, action="updated",
                revision=revision, details={"kind": new.kind, "changed": changed, "import": source},
            )  # fmt: skip
        if old.owners != new.owners:
            out += audit.change_events(
                svc, caller, "identity.owners_changed", store_id, resource=new.node,
                action="owners_changed", revision=revision,
                details={
                    "kind": new.kind,
                    "added": [o for o in new.owners if o not in old.owners],
                    "removed": [o for o in old.owners if o not in new.owners],
                    "owners": list(new.owners), "orphaned": new.orphaned, "import": source,
                },
            )  # fmt: skip
    return out


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _identity_batch(
    svc: Services, caller: Caller, store_id: str, source: str, chunk: Sequence[tuple[str, Any]]
) -> bool:
    """One transaction creating and updating the identities of ``chunk`` (with their owner
    tuples and events); whether it changed anything."""
    seen: dict[str, Any] = {}

    def plan(r: PolicyTxReader) -> PolicyWrite:
        created: list[Identity] = []
        updated: list[tuple[Identity, Identity]] = []
        writes: list[Tuple] = []
        deletes: list[Tuple] = []
        for what, item in chunk:
            if what == "new":
                i: Identity = item
                if r.identity(i.kind, i.id) is not None:  # an earlier, cut-short run
                    continue
                if i.kind in NON_HUMAN_KINDS:
                    i = dataclasses.replace(i, orphaned=is_orphaned(r, i.owners, {}))
                created.append(i)
                writes += [owner_tuple(i.node, o) for o in i.owners]
                continue
            old, want = item
            cur = r.identity(old.kind, old.id)
            if cur is None or cur.status == "deprovisioned":
                continue
            new = dataclasses.replace(
                cur,
                display_name=want.display_name,
                attributes=want.attributes,
                owners=want.owners,
                updated_at=want.updated_at,
            )
            if cur.owners != new.owners and new.kind in NON_HUMAN_KINDS:
                new = dataclasses.replace(new, orphaned=is_orphaned(r, new.owners, {}))
            updated.append((cur, new))
            writes += [owner_tuple(new.node, o) for o in new.owners if o not in cur.owners]
            deletes += [owner_tuple(new.node, o) for o in cur.owners if o not in new.owners]
        seen["created"], seen["updated"] = created, updated
        return PolicyWrite(
            new_identities=created,
            identities=[n for _, n in updated],
            tuple_writes=writes,
            tuple_deletes=deletes,
        )

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return _identity_events(
            svc, caller, store_id, revision, source, seen["created"], seen["updated"]
        )

    return svc.storage.write_policy(store_id, plan, ledger_events=events).changed


def _write_identities(
    svc: Services, caller: Caller, store_id: str, source: str, d: _Diff, report: Progress
) -> int:
    """Creations and updates in batches; returns the number of transactions."""
    work: list[tuple[str, Any]] = [("new", i) for i in d.create] + [("upd", u) for u in d.update]
    total, done, batches = len(work), 0, 0
    report("identities", 0, total)
    for chunk in _chunks(work, BATCH_SIZE):
        batches += int(_identity_batch(svc, caller, store_id, source, chunk))
        done += len(chunk)
        report("identities", done, total)
    return batches


def _write_tuples(
    svc: Services, caller: Caller, store_id: str, source: str, scope: str, d: _Diff,
    report: Progress,
) -> int:  # fmt: skip
    work: list[tuple[bool, Tuple]] = [(True, t) for t in d.tuple_writes]
    work += [(False, t) for t in d.tuple_deletes]
    total, done, batches = len(work), 0, 0
    report("tuples", 0, total)
    for chunk in _chunks(work, BATCH_SIZE):
        writes = [t for w, t in chunk if w]
        deletes = [t for w, t in chunk if not w]
        details = {
            "written": audit.tuple_keys(writes), "deleted": audit.tuple_keys(deletes),
            "import": source, "scope": scope,
        }  # fmt: skip

        def plan(
            r: PolicyTxReader, w: list[Tuple] = writes, x: list[Tuple] = deletes
        ) -> PolicyWrite:
            return PolicyWrite(tuple_writes=w, tuple_deletes=x)

        def events(
            revision: int, details: dict[str, Any] = details
        ) -> list[tuple[LedgerEvent, str]]:
            return audit.change_events(
                svc, caller, "tuples.written", store_id, revision=revision, details=details
            )

        result = svc.storage.write_policy(store_id, plan, ledger_events=events)
        batches += int(result.changed)
        done += len(chunk)
        report("tuples", done, total)
    return batches


def _write_model(
    svc: Services, caller: Caller, store_id: str, source: str, model: Mapping[str, Any],
    added: Sequence[str],
) -> ModelRecord:  # fmt: skip
    def event_of(made: ModelRecord) -> list[tuple[LedgerEvent, str]]:
        return audit.change_events(
            svc, caller, "model.written", store_id, model_id=made.id, revision=made.revision,
            details={"import": source, "added": list(added)[:_LIST_LIMIT]},
        )  # fmt: skip

    rec = svc.storage.write_model(store_id, model, ledger_events=event_of)
    svc.graphs.catch_up(store_id)
    return rec


# ------------------------------------------------------------------------------ operations


@audited("source.imported")
def import_source(
    svc: Services,
    caller: Caller,
    store_id: str,
    source: str,
    data: Any,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Import one export of ``source`` (``aws``, ``kubernetes``, ``github``) into the store
    — see the module docstring. ``data`` is the parsed JSON export; ``progress(phase,
    done, total)`` is called as the phases advance (``plan``, ``model``, ``identities``,
    ``tuples``, ``deprovision``). Returns what changed (with ``dry_run``: what would)."""
    authorize(svc, caller, Permission.IMPORT_SOURCES, store_id)
    if not isinstance(dry_run, bool):
        raise ValidationError("dry_run must be true or false")
    importer = get_importer(source)
    report: Progress = progress or _nothing
    digest = export_digest(data)
    head = svc.storage.store_head(store_id)  # StoreNotFoundError first
    svc.graphs.catch_up(store_id)
    state = svc.graphs.policy(store_id)

    report("plan", 0, 1)
    try:
        raw_plan = importer(data, state)
    except KeyplaneError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise ValidationError(
            f"the {source} export could not be read: {type(exc).__name__}: {exc}",
            details={"source": source},
        ) from None
    checked = _check_plan(raw_plan, source)
    scope = checked.plan.scope
    report("plan", 1, 1)

    report("model", 0, 1)
    latest = svc.storage.latest_model(store_id)
    merged, added = merge_fragment(None if latest is None else latest.model, checked.plan.model)
    model_changed = latest is None or bool(added)
    if model_changed:
        compiled = CompiledModel.compile(merged)
    else:
        try:
            compiled = svc.graphs.model(store_id)
        except ModelNotFoundError:  # pragma: no cover - latest_model said there is one
            compiled = CompiledModel.compile(merged)
    _validate_tuples(compiled, checked)
    report("model", 1, 1)

    previous = svc.storage.get_import(store_id, source, scope)
    now = svc.clock.now()
    d = _diff(checked, state, previous, source, store_id, now)
    id_counts = ChangeCounts(len(d.create), len(d.update), len(d.deprovision))
    tuple_counts = ChangeCounts(len(d.tuple_writes), 0, len(d.tuple_deletes))

    def result(revision: int, model_id: str | None, batches: int) -> ImportResult:
        return ImportResult(
            source=source, scope=scope, digest=digest, dry_run=dry_run,
            identities=id_counts, tuples=tuple_counts,
            identities_added=tuple(i.node for i in d.create),
            identities_changed=tuple(n.node for _, n in d.update),
            identities_removed=tuple(d.deprovision),
            tuples_added=tuple(str(t) for t in d.tuple_writes),
            tuples_removed=tuple(str(t) for t in d.tuple_deletes),
            warnings=tuple(checked.warnings), model_changed=model_changed,
            model_id=model_id, revision=revision, batches=batches,
        )  # fmt: skip

    if dry_run:
        return result(head.revision, None if model_changed else compiled.model_id, 0)

    batches = 0
    model_id: str | None = compiled.model_id
    if model_changed:
        model_id = _write_model(svc, caller, store_id, source, merged, added).id
        batches += 1
    batches += _write_identities(svc, caller, store_id, source, d, report)
    batches += _write_tuples(svc, caller, store_id, source, scope, d, report)
    report("deprovision", 0, len(d.deprovision))
    for n, node in enumerate(d.deprovision, 1):
        try:
            deprovision_identity(
                svc, caller, store_id, node, reason=f"gone from the {source} import of {scope}"
            )
            batches += 1
        except IdentityNotFoundError:
            pass
        report("deprovision", n, len(d.deprovision))

    record = SourceImport(
        store_id=store_id, source=source, scope=scope, digest=digest,
        identities=dict(sorted(d.owned.items())), tuples=tuple(sorted(checked.tuples)),
        warnings=tuple(checked.warnings), identity_counts=id_counts, tuple_counts=tuple_counts,
        imported_at=now, imported_by=caller.principal,
    )  # fmt: skip
    unchanged = (
        previous is not None
        and not model_changed
        and id_counts.total == 0
        and tuple_counts.total == 0
        and previous.digest == digest
        and previous.identities == record.identities
        and previous.warnings == record.warnings
    )
    details = {
        "source": source, "scope": scope, "identities": id_counts.to_json(),
        "tuples": tuple_counts.to_json(), "digest": digest,
    }  # fmt: skip
    if unchanged:
        audit.change(
            svc, caller, "source.imported", store_id, resource=f"source:{source}/{scope}",
            action="import", revision=head.revision, details=details,
        )  # fmt: skip
        return result(svc.storage.store_head(store_id).revision, model_id, batches)

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return audit.change_events(
            svc, caller, "source.imported", store_id, resource=f"source:{source}/{scope}",
            action="import", revision=revision, details=details,
        )  # fmt: skip

    written = svc.storage.write_import(
        store_id, lambda r: PolicyWrite(), record, ledger_events=events
    )
    svc.graphs.catch_up(store_id)
    return result(written.revision, model_id, batches + 1)


@audited(None)
def list_imports(svc: Services, caller: Caller, store_id: str) -> list[ImportRecord]:
    """The latest import of each (source, scope) of the store, by source and scope."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    return [rec.record() for rec in svc.storage.list_imports(store_id)]

"""The storage contract: what every backend (SQLite, PostgreSQL) MUST do.

Modelled on openfga's ``pkg/storage/storage.go``: small role protocols whose docstrings
state the ordering, error and changelog duties, combined into :class:`Storage`. One
conformance suite (``tests/storage/``) runs against every backend.

Shared rules for every method taking a ``store_id``:

* it MUST raise :class:`~keyplane.errors.StoreNotFoundError` when the store does not
  exist (or was deleted);
* it MUST NOT see or touch any other store's data (every table is keyed by store id);
* errors of the database itself MUST surface as :class:`~keyplane.errors.StorageError`,
  never as a driver exception.

Times are seconds since the Unix epoch (UTC) as ``float``, like ``Tuple.expires_at`` and
:class:`keyplane.clock.Clock`. Expired tuples are still stored until :meth:`gc_expired`
removes them: storage returns them, the graph ignores them at check time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

from keyplane.gateway.records import GatewaySettings, GatewayState, GatewayWrite, McpServer, McpTool
from keyplane.governance.records import AccessRequest, Entitlement
from keyplane.graph.tuples import Tuple, TupleChange
from keyplane.policy.records import Delegation, Guardrail, GuardrailSet, Identity, StorePolicy

if TYPE_CHECKING:  # the ledger's domain imports storage.ids: no import cycle at runtime
    from keyplane.ledger.checkpoints import Checkpoint, LedgerKeyRecord
    from keyplane.ledger.events import EventFilter, LedgerEvent
    from keyplane.storage.signing_keys_sql import SigningKeyChange
    from keyplane.tokens.clients import Credential, CredentialRecord
    from keyplane.tokens.keys import SigningKeyRecord

__all__ = [
    "REVOKED_TOKEN_GRACE",
    "ChainRow",
    "ChangeReader",
    "ChangesPage",
    "GatewayStore",
    "GatewayTxReader",
    "GatewayWriteResult",
    "GovernanceStore",
    "KeyRecord",
    "KeyStore",
    "LedgerStore",
    "ModelRecord",
    "ModelStore",
    "Page",
    "PolicyChanges",
    "PolicyStore",
    "PolicyTxReader",
    "PolicyWrite",
    "PolicyWriteResult",
    "ScimResource",
    "ScimStore",
    "ScimTxReader",
    "ScimWrite",
    "ScimWriteResult",
    "SnapshotReader",
    "SnapshotRow",
    "Storage",
    "StoreAdmin",
    "StoreHead",
    "StoreInfo",
    "TokenStore",
    "TupleReader",
    "TupleWriter",
    "UsageRow",
]

from keyplane.importers.records import ImportStore
from keyplane.storage.ledger_activity import LedgerActivityStore
from keyplane.storage.ledger_admin import LedgerAdminStore

T = TypeVar("T")

#: A raw ledger row as stored: ``(seq, body, prev_hash, hash)`` (see :meth:`LedgerStore.read_chain_rows`).
ChainRow = tuple[int, str, str, str]


class UsageRow(NamedTuple):
    """One group of allowed decisions (:meth:`LedgerStore.ledger_usage`): every event of
    ``type`` with these ``subject``, ``actors`` (the actor chain, in order), ``action`` and
    ``resource`` columns — as stored, so possibly HMAC-redacted — how many there were
    (``uses``) and the time of the newest (``last_at``)."""

    subject: str | None
    actors: tuple[str, ...]
    action: str | None
    resource: str | None
    type: str
    uses: int
    last_at: float


#: A raw tuple row, the fastest shape to bulk-load into the in-memory graph:
#: ``(object_type, object_id, relation, user_type, user_id, user_relation,
#: condition_name, context_json, expires_at)`` — ``user_relation`` is ``""`` when the user
#: is not a userset; ``condition_name``, ``context_json`` and ``expires_at`` may be None.
SnapshotRow = tuple[str, str, str, str, str, str, str | None, str | None, float | None]


@dataclass(frozen=True, slots=True)
class StoreInfo:
    id: str
    name: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One version of a store's authorization model, as the JSON document it was written as."""

    id: str
    store_id: str
    model: dict[str, Any]
    created_at: float
    # the store revision the write produced (a model write is a revision, so replicas can be
    # asked for ``at_least_as_fresh`` it); None when the record was read back
    revision: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StoreHead:
    """Where a store stands now: its revision, generation and latest model id."""

    revision: int
    generation: str
    latest_model_id: str | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results. ``continuation_token`` is None on the last page."""

    items: list[T]
    continuation_token: str | None = None


@dataclass(frozen=True, slots=True)
class ChangesPage:
    """Changelog entries in ``(revision, seq)`` order, and where to resume.

    ``last_revision`` is the value to pass as ``after_revision`` next time. It is at
    least the revision of the last change returned, and when the page reached the end of
    the changelog it is the store's current revision (so a tailer filtering by object
    type still moves past revisions that hold nothing of that type).

    ``has_more`` is True when changes after ``last_revision`` existed at read time. A page
    may hold fewer than ``page_size`` changes and still have more (it never splits a
    revision), so tailers MUST loop on ``has_more``, not on the page length.
    """

    changes: list[TupleChange] = field(default_factory=list)
    last_revision: int = 0
    has_more: bool = False


class StoreAdmin(Protocol):
    def create_store(
        self,
        name: str,
        *,
        store_id: str | None = None,
        ledger_events: Callable[[StoreInfo], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> StoreInfo:
        """Create a store at revision 0.

        The id MUST be a new 26-character Crockford base32 ULID (sortable by creation
        time) unless ``store_id`` is given (e.g. ``"default"``); a clash MUST raise
        StoreExistsError. An invalid ``store_id`` MUST raise ValidationError.

        ``ledger_events``, when given, is called with the new store inside the transaction
        and its encoded events are chained into the ledger in that same transaction (see
        :meth:`TupleWriter.write`): no store exists without its ``store.created`` event.
        """
        ...

    def get_store(self, store_id: str) -> StoreInfo:
        """The store, or StoreNotFoundError."""
        ...

    def store_head(self, store_id: str) -> StoreHead:
        """The store's current revision, generation and latest model id, in ONE cheap read.

        Replicas call it on every changelog poll. The generation MUST change whenever a
        store is (re)created, so a replica can tell a recreated store (whose revisions
        restart at 0) from the one it holds. MUST raise StoreNotFoundError for a missing store.
        """
        ...

    def list_stores(
        self, *, page_size: int = 50, continuation_token: str | None = None
    ) -> Page[StoreInfo]:
        """Stores ordered by id. Tokens are opaque; a bad one MUST raise InvalidContinuationToken."""
        ...

    def delete_store(
        self,
        store_id: str,
        *,
        ledger_events: Callable[[str], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> None:
        """Remove the store and all its data (models, tuples, changelog), atomically.

        MUST raise StoreNotFoundError if it does not exist. Afterwards the id is free again.
        ``ledger_events`` (called with the store id) commits in the same transaction, as
        for :meth:`TupleWriter.write`; the ledger rows themselves are kept.
        """
        ...


class ModelStore(Protocol):
    def write_model(
        self,
        store_id: str,
        model: Mapping[str, Any],
        *,
        ledger_events: Callable[[ModelRecord], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> ModelRecord:
        """Store a new model version with a new ULID id; ids MUST sort by creation order.

        Storage does not validate the model (the graph layer does): it stores JSON.
        ``ledger_events`` is called with the new record (its id and revision) and commits
        in the same transaction, as for :meth:`TupleWriter.write`.
        """
        ...

    def read_model(self, store_id: str, model_id: str) -> ModelRecord:
        """The model version, or ModelNotFoundError (also when it belongs to another store)."""
        ...

    def latest_model(self, store_id: str) -> ModelRecord | None:
        """The newest model version, or None if the store has none."""
        ...

    def list_models(
        self, store_id: str, *, page_size: int = 50, continuation_token: str | None = None
    ) -> Page[ModelRecord]:
        """Model versions, newest first."""
        ...


class TupleWriter(Protocol):
    def write(
        self,
        store_id: str,
        *,
        writes: Sequence[Tuple] = (),
        deletes: Sequence[Tuple] = (),
        idempotent: bool = False,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> int:
        """Apply deletes then writes in ONE transaction and return the new revision.

        * ``ledger_events``, when given, is called with the new revision inside the
          transaction and its encoded events are chained into the ledger in that same
          transaction (as :meth:`append_encoded`): the change and its ledger event commit
          together or not at all. Its errors MUST roll the whole write back.

        * It MUST be atomic: on any error nothing is written, the changelog is unchanged and
          the revision is not bumped.
        * Writing a key ``(object, relation, user)`` that exists MUST raise TupleExistsError
          and deleting a missing key MUST raise TupleMissingError, each naming the tuple —
          unless ``idempotent``, where such entries are skipped silently. As with OpenFGA's
          ``on_duplicate: ignore``, only an *identical* existing tuple (same condition name,
          context and expires_at) is skipped; one that differs MUST still raise
          TupleExistsError, so a changed condition or expiry is never silently dropped
          (delete it and write it again, in two requests).
        * A key appearing twice in one request (in writes, deletes or both) MUST raise
          InvalidTupleError; so MUST an empty request or a malformed tuple.
        * A successful call MUST bump the store's revision by exactly 1 and append every
          change actually made (operation ``"write"``/``"delete"``, the full tuple with
          condition, context and expires_at — for deletes, as it was stored) to the
          changelog at that revision.
        * Revisions MUST be assigned in commit order: once a reader sees revision N, every
          change with a revision <= N is visible to it (no late-committing gaps).
        """
        ...

    def bulk_load(self, store_id: str, tuples: Iterable[Tuple]) -> int:
        """Insert many new tuples fast, as ONE revision, and return it.

        MUST be atomic, MUST record every tuple in the changelog (so tailers stay
        correct) and MUST raise TupleExistsError (without naming which one) if any tuple
        exists already or appears twice.
        """
        ...

    def gc_expired(
        self,
        store_id: str,
        *,
        now: float,
        ledger_events: Callable[[tuple[int, int]], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> int:
        """Delete the tuples whose ``expires_at <= now`` and return how many.

        When any are deleted it MUST be as one new revision with a changelog ``"delete"``
        per tuple, so replicas drop them too; when none are, the revision MUST NOT change.
        ``ledger_events`` is called with ``(revision, removed)`` only when some are deleted,
        and commits in the same transaction, as for :meth:`write`.
        """
        ...


class TupleReader(Protocol):
    def read_tuples(
        self,
        store_id: str,
        *,
        object: str | None = None,
        relation: str | None = None,
        user: str | None = None,
        page_size: int = 100,
        continuation_token: str | None = None,
    ) -> Page[Tuple]:
        """Tuples matching every given filter, in a stable key order.

        ``object`` is ``"type:id"`` or ``"type:"`` (every object of the type); ``user`` is
        an exact user (``"type:id"``, ``"type:*"``, ``"type:id#rel"``) or ``"type:"``.
        A continuation token MUST only be accepted with the same store and filters;
        anything else MUST raise InvalidContinuationToken.
        """
        ...

    def current_revision(self, store_id: str) -> int:
        """The store's latest committed revision (0 for a new store)."""
        ...


class ChangeReader(Protocol):
    def read_changes(
        self,
        store_id: str,
        *,
        after_revision: int = 0,
        page_size: int = 100,
        object_type: str | None = None,
    ) -> ChangesPage:
        """Changes with ``revision > after_revision`` in ``(revision, seq)`` order.

        A page MUST NOT split a revision: it ends on a revision boundary, so a tailer can
        apply each revision atomically. ``page_size`` is therefore a soft limit: a page
        holding a single revision larger than ``page_size`` (e.g. a bulk load) MUST hold it
        whole. Read in one consistent snapshot.
        """
        ...


class SnapshotReader(Protocol):
    def snapshot(self, store_id: str) -> tuple[int, Iterator[Tuple]]:
        """Every stored tuple at one consistent revision: ``(revision, tuples)``.

        The iterator MUST stream (server-side cursor / fetchmany), MUST reflect exactly
        the changes up to the revision returned, and holds a read transaction (and a
        connection) until exhausted or closed — consume it promptly. Order is unspecified.
        """
        ...

    def snapshot_rows(self, store_id: str) -> tuple[int, Iterator[SnapshotRow]]:
        """Like :meth:`snapshot`, yielding raw :data:`SnapshotRow` tuples (the fastest path)."""
        ...


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key as stored: never the secret, only its hash (see :mod:`keyplane.service.keys`).

    ``previous_secret_hash`` is the secret a rotation replaced; it still authenticates until
    ``previous_expires_at``. ``roles`` are the role names the key was created with.
    """

    id: str
    secret_hash: str
    owner: str
    roles: tuple[str, ...]
    description: str
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None
    rotated_at: float | None = None
    revoked_at: float | None = None
    previous_secret_hash: str | None = None
    previous_expires_at: float | None = None


class KeyStore(Protocol):
    """API key records and the reserved stores the control plane keeps for itself."""

    def create_key(
        self,
        record: KeyRecord,
        *,
        ledger_events: Callable[[KeyRecord], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> None:
        """Insert a new key. An existing id MUST raise ConflictError (ids are never reused).

        Every key write takes ``ledger_events``: called with the key as written, inside the
        transaction, its events commit with the change or not at all (as for
        :meth:`TupleWriter.write`) — no key change without its event.
        """
        ...

    def get_key(self, key_id: str) -> KeyRecord | None:
        """The key, revoked or not, or None when no key has that id."""
        ...

    def list_keys(
        self, *, page_size: int = 100, continuation_token: str | None = None
    ) -> Page[KeyRecord]:
        """Every key (revoked ones included) ordered by id, i.e. by creation time."""
        ...

    def rotate_key(
        self,
        key_id: str,
        *,
        secret_hash: str,
        previous_expires_at: float,
        now: float,
        ledger_events: Callable[[KeyRecord], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> KeyRecord:
        """Replace the key's secret hash atomically, keeping the current one as the previous
        secret until ``previous_expires_at`` (an older previous secret dies at once).

        MUST raise NotFoundError for an unknown key and ConflictError for a revoked one.
        """
        ...

    def revoke_key(
        self,
        key_id: str,
        *,
        now: float,
        ledger_events: Callable[[KeyRecord], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> KeyRecord:
        """Set ``revoked_at`` (once: revoking again keeps the first time) and return the key.

        MUST raise NotFoundError for an unknown key.
        """
        ...

    def touch_key(self, key_id: str, *, at: float) -> None:
        """Record a use: ``last_used_at = max(last_used_at, at)``. Callers throttle this."""
        ...

    def ensure_reserved_store(
        self,
        store_id: str,
        name: str,
        *,
        ledger_events: Callable[[StoreInfo], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> bool:
        """Create a store with a reserved id (one :meth:`create_store` refuses, e.g.
        ``_system``) unless it exists; return True if it was created now. Safe to race.
        ``ledger_events`` is called (in the transaction) only when the store is created."""
        ...


class LedgerStore(Protocol):
    """The provenance ledger's tables: per-store hash chains, checkpoints, ledger keys.

    Unlike every other role, ledger methods do NOT require the store to exist: the ledger
    outlives its store (``delete_store`` MUST NOT touch ledger rows, and a store created
    again with the same id continues the same chain). See :mod:`keyplane.ledger.chain`.
    """

    def append_events(self, events: Sequence[LedgerEvent]) -> list[LedgerEvent]:
        """Append ``events`` (possibly of several stores) to their chains in ONE transaction
        and return them chained (``seq``, ``prev_hash``, ``hash`` set), in input order.

        * Per store, events MUST get consecutive seqs after the store's chain head, in input
          order, with ``prev_hash`` the hash of the previous event (GENESIS_HASH first) and
          ``hash = chain_hash(prev_hash, canonical_json(event))``; the stored body MUST be
          the canonical JSON text.
        * Chain heads MUST be locked for the transaction (PostgreSQL: ``SELECT … FOR
          UPDATE`` on ``ledger_heads``; SQLite: the database write lock), taken in store-id
          order, so concurrent appenders — threads or processes sharing the database —
          interleave into one valid chain and never fork it or reuse a seq.
        * It MUST be atomic: on any error nothing is appended and StorageError (or
          ValueError for an event that is not JSON) is raised. Returning means committed.
        * Events whose chain fields are already set MUST be refused (ValueError).
        """
        ...

    def append_encoded(
        self, items: Sequence[tuple[LedgerEvent, str]]
    ) -> list[tuple[int, str, str]]:
        """:meth:`append_events`' fast path for the ledger writer: each item is an unchained
        event and ``canonical_json(event)`` (as text) computed by the caller; returns
        ``(seq, prev_hash, hash)`` per item, in input order. The same duties apply; the
        caller vouches for the encodings (storage splices the chain fields in with
        :func:`keyplane.ledger.chain.chain_body` and does not encode again)."""
        ...

    def read_events(
        self,
        store_id: str,
        *,
        after_seq: int = 0,
        limit: int = 100,
        filters: EventFilter | None = None,
        descending: bool = False,
    ) -> list[LedgerEvent]:
        """Up to ``limit`` events of the store's chain with ``seq > after_seq`` (``seq <
        after_seq`` when ``descending`` and ``after_seq`` > 0), in seq order, matching
        every given filter. Events are rebuilt from their stored canonical JSON body, with
        the stored hash. MUST NOT raise for a store that has no events or no longer exists.
        """
        ...

    def ledger_usage(
        self,
        store_id: str,
        *,
        since: float,
        until: float,
        types: Sequence[str],
        subject: str | None = None,
        actor: str | None = None,
        actor_subjects: Sequence[str] | None = None,
    ) -> list[UsageRow]:
        """The store's ALLOWED events (``outcome = 'allow'``) of the given ``types`` with
        ``since <= time < until``, aggregated: one row per distinct ``(subject, actors,
        action, resource, type)`` with the count and the newest time, in no particular
        order. It MUST be one aggregate query over the indexed columns (never reading
        event bodies): governance analytics (over-privilege, posture) reads a month of a
        busy store's decisions with it. With ``subject`` and/or ``actor``, only the events
        whose subject column is ``subject`` or whose actor chain contains ``actor`` (one
        identity's use); ``actor_subjects``, when given, are the only subjects an event
        naming ``actor`` can have (the delegators upstream of it), so the backend SHOULD
        read just those subjects' events (the subject index) instead of the window.
        Values are compared and returned as stored (redacted fields
        hashed). An empty ``types`` returns nothing. MUST NOT raise for a store that has
        no events or no longer exists."""
        ...

    def read_chain_rows(
        self, store_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[ChainRow]:
        """Raw chain rows ``(seq, body, prev_hash, hash)`` with ``seq > after_seq``, by the
        ``seq`` COLUMN, exactly as stored — what verification reads (it trusts nothing, not
        even that a body still parses)."""
        ...

    def get_event_by_decision(self, decision_id: str) -> LedgerEvent | None:
        """The event recording decision ``decision_id`` (in any store), or None."""
        ...

    def ledger_head(self, store_id: str) -> tuple[int, str]:
        """The chain head ``(seq, hash)``; ``(0, GENESIS_HASH)`` for an empty chain."""
        ...

    def ledger_stores(self) -> list[str]:
        """Every store id that has a chain (deleted stores included), sorted."""
        ...

    def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a signed checkpoint. One per ``(store, seq)``: a second one for the same
        seq (another process signed the same head) MUST be ignored, not raise."""
        ...

    def read_checkpoints(self, store_id: str) -> list[Checkpoint]:
        """The store's checkpoints, by seq."""
        ...

    def put_ledger_key(
        self,
        store_id: str,
        key_id: str,
        public_key: bytes,
        encrypted_private_key: bytes,
        created_at: float,
    ) -> None:
        """Store a ledger key (the private part already encrypted); an existing
        ``(store_id, key_id)`` MUST be left unchanged. Keys are never deleted."""
        ...

    def ledger_keys(self, store_id: str) -> list[LedgerKeyRecord]:
        """The store's ledger keys, oldest first."""
        ...


# -- the identity plane (issue 5) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyChanges:
    """What changed in a store's identity plane after a revision (see
    :meth:`PolicyStore.read_policy_changes`): every identity and delegation row whose
    ``revision`` is greater, the latest guardrail set and the store policy when they
    changed (else None), and the store's revision as of the same snapshot."""

    identities: tuple[Identity, ...]
    delegations: tuple[Delegation, ...]
    guardrail_set: GuardrailSet | None
    store_policy: StorePolicy | None
    revision: int
    #: ``(jti, expires_at)`` of the tokens revoked after the revision and not yet expired
    #: (by more than :data:`REVOKED_TOKEN_GRACE`): see :meth:`TokenStore.revoke_tokens`
    revoked_tokens: tuple[tuple[str, float], ...] = ()
    #: ids of the client credentials whose status became ``revoked`` after the revision
    revoked_credentials: tuple[str, ...] = ()
    #: entitlement rows changed after the revision, by revision then id; a deleted one
    #: comes as its tombstone (``status`` :data:`~keyplane.governance.records.ENTITLEMENT_DELETED`)
    entitlements: tuple[Entitlement, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyWrite:
    """One atomic change of the identity plane, as a plan returns it to
    :meth:`PolicyStore.write_policy`. ``new_*`` rows are inserted (a clash MUST raise
    IdentityExistsError / ConflictError / EntitlementExistsError); the others replace
    existing rows (a missing one MUST raise IdentityNotFoundError /
    DelegationNotFoundError / EntitlementNotFoundError / AccessRequestNotFoundError).
    Every row is stored with the new revision, whatever ``revision`` it carries — except
    that a replaced access request is compare-and-set: the stored row's revision MUST
    equal the given record's ``revision`` (the one it was read with), else
    AccessRequestStateError and nothing is written, so two writers that read the same
    request cannot both move it. ``deleted_entitlements`` (ids) leave a tombstone the
    PolicyState of every process drops; a new entitlement may reuse a deleted id.

    Tuple writes and deletes are idempotent (an identical tuple already there, or a
    missing one, is skipped) and go through the changelog like any tuple write; deletes
    run first, so one key in both lists replaces the tuple (a grant extended: the stored
    tuple with an earlier ``expires_at`` deleted, the new one written, atomically). A key
    twice in one list is an error. A write whose key exists with another condition or
    expiry (and is not deleted in the same write) is skipped too: read the stored tuple
    with :meth:`PolicyTxReader.tuple` to decide."""

    new_identities: Sequence[Identity] = ()
    identities: Sequence[Identity] = ()
    new_delegations: Sequence[Delegation] = ()
    delegations: Sequence[Delegation] = ()
    store_policy: StorePolicy | None = None
    tuple_writes: Sequence[Tuple] = ()
    tuple_deletes: Sequence[Tuple] = ()
    new_entitlements: Sequence[Entitlement] = ()
    entitlements: Sequence[Entitlement] = ()
    deleted_entitlements: Sequence[str] = ()
    new_access_requests: Sequence[AccessRequest] = ()
    access_requests: Sequence[AccessRequest] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.new_identities
            or self.identities
            or self.new_delegations
            or self.delegations
            or self.store_policy is not None
            or self.tuple_writes
            or self.tuple_deletes
            or self.new_entitlements
            or self.entitlements
            or self.deleted_entitlements
            or self.new_access_requests
            or self.access_requests
        )


@dataclass(frozen=True, slots=True)
class PolicyWriteResult:
    """What :meth:`PolicyStore.write_policy` stored: the rows stamped with ``revision``
    (``changed`` False and the store's current revision when the plan changed nothing).
    ``entitlements``: the new and replaced ones (a deleted one as its tombstone, status
    ``deleted``); ``access_requests``: the new and replaced ones."""

    revision: int
    changed: bool
    identities: tuple[Identity, ...] = ()
    delegations: tuple[Delegation, ...] = ()
    store_policy: StorePolicy | None = None
    entitlements: tuple[Entitlement, ...] = ()
    access_requests: tuple[AccessRequest, ...] = ()


class PolicyTxReader(Protocol):
    """Reads inside a :meth:`PolicyStore.write_policy` transaction. The store's revision is
    already bumped (its row locked) when the plan runs, so policy writers of one store are
    serialized and these reads see every earlier committed change."""

    store_id: str

    def identity(self, kind: str, id: str) -> Identity | None: ...

    def identities_owned_by(self, owner: str) -> list[Identity]:
        """Identities whose ``owners`` include ``owner`` exactly ("human:a", "group:g#member")."""
        ...

    def delegation(self, delegation_id: str) -> Delegation | None: ...

    def delegations_of(self, node: str) -> list[Delegation]:
        """Active delegations ``node`` gave (delegator) or holds (delegate), by id."""
        ...

    def descendants(self, delegation_ids: Sequence[str]) -> list[Delegation]:
        """Every active delegation derived, directly or transitively, from any of
        ``delegation_ids`` (the given ones excluded), by id."""
        ...

    def store_policy(self) -> StorePolicy: ...

    def entitlement(self, entitlement_id: str) -> Entitlement | None:
        """The entitlement (None when missing or deleted)."""
        ...

    def access_request(self, request_id: str) -> AccessRequest | None: ...

    def tuple(self, object: str, relation: str, user: str) -> Tuple | None:
        """The stored tuple with this key (expired or not: see its ``expires_at``), or
        None (also for a key that is not valid tuple syntax)."""
        ...


class PolicyStore(Protocol):
    """Identities, delegations, guardrail sets and the store policy (migration 0007).

    Every mutation MUST bump the store revision exactly once, in the same transaction,
    and stamp every row it writes with that revision; ``ledger_events`` (called with the
    new revision inside the transaction) commit with it, as for
    :meth:`TupleWriter.write`. :meth:`StoreAdmin.delete_store` MUST remove the store's
    rows. Reads MUST raise StoreNotFoundError for a missing store.
    """

    def write_policy(
        self,
        store_id: str,
        plan: Callable[[PolicyTxReader], PolicyWrite],
        *,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> PolicyWriteResult:
        """Run ``plan`` inside one write transaction and store what it returns.

        The plan MAY raise (nothing is written) and MAY run more than once (a retried
        transaction), so it must not have side effects. An empty :class:`PolicyWrite`
        MUST roll back: no revision, no ledger events, ``changed`` False.
        """
        ...

    def get_identity(self, store_id: str, kind: str, id: str) -> Identity | None: ...

    def list_identities(
        self,
        store_id: str,
        *,
        kind: str | None = None,
        status: str | None = None,
        owner: str | None = None,
        orphaned: bool | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Identity]:
        """Identities ordered by (kind, id), every given filter applied (``owner``: one of
        its owners, exactly). Tokens are opaque and bound to the filters."""
        ...

    def touch_identities(self, store_id: str, seen: Sequence[tuple[str, str, float]]) -> None:
        """Record ``last_seen`` times ``(kind, id, at)`` (only ever moving forward). Not a
        change of the identity plane: no revision, no event."""
        ...

    def get_delegation(self, store_id: str, delegation_id: str) -> Delegation | None: ...

    def list_delegations(
        self,
        store_id: str,
        *,
        delegator: str | None = None,
        delegate: str | None = None,
        status: str | None = None,
        parent_id: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Delegation]:
        """Delegations ordered by id (creation order), every given filter applied."""
        ...

    def get_store_policy(self, store_id: str) -> StorePolicy:
        """The store's policy (the defaults, revision 0, when never set)."""
        ...

    def read_policy_changes(self, store_id: str, after_revision: int) -> PolicyChanges:
        """Everything changed after ``after_revision``, read at one snapshot (0: all)."""
        ...

    # -- guardrail sets (engineer C) ---------------------------------------------------

    def put_guardrail_set(
        self,
        store_id: str,
        rules: Sequence[Guardrail],
        *,
        created_by: str,
        created_at: float | None = None,
        ledger_events: Callable[[GuardrailSet], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> GuardrailSet:
        """Store ``rules`` as the store's next guardrail version (the previous + 1; older
        versions are kept) and bump the store revision, in one transaction.
        ``created_at`` defaults to the storage clock's now.

        ``ledger_events`` is called inside the transaction with the set as stored (its
        ``version`` and ``revision``), and its events commit with it. The rules MUST
        already be validated (``keyplane.policy.guardrails.parse_rules``).
        """
        ...

    def get_guardrail_set(self, store_id: str, version: int | None = None) -> GuardrailSet | None:
        """The store's guardrail set at ``version`` (None: the latest); None when there is
        no such version (or none was ever written)."""
        ...

    def list_guardrail_sets(
        self, store_id: str, *, page_size: int = 50, continuation_token: str | None = None
    ) -> Page[GuardrailSet]:
        """Every version of the store's guardrails, newest first."""
        ...


class SigningKeyStore(Protocol):
    """A store's token signing keys (see :mod:`keyplane.tokens.keys`). Removed with the store."""

    def list_signing_keys(self, store_id: str) -> list[SigningKeyRecord]:
        """Every key of the store (active, retiring, retired), oldest first; MUST raise
        StoreNotFoundError for an unknown store."""
        ...

    def add_signing_key(
        self,
        store_id: str,
        *,
        kid: str,
        algorithm: str,
        public_jwk: Mapping[str, Any],
        encrypted_private_key: bytes,
        created_at: float,
        rotate: bool,
        publish_until: float | None = None,
        ledger_events: Callable[[SigningKeyChange], Sequence[tuple[LedgerEvent, str]]]
        | None = None,
    ) -> SigningKeyChange | None:
        """Add a new active key, bumping the store revision. With ``rotate`` the active key
        (if any) becomes ``retiring`` until ``publish_until``; without it, a store that
        already has an active key is left unchanged and None is returned (a store's first
        key, created on first need: concurrent creators agree on one). ``ledger_events``
        (called with the change) commits in the same transaction."""
        ...


class CredentialTxReader(Protocol):
    """Reads inside a :meth:`CredentialStore.write_credential` transaction (the store's
    revision already bumped, so credential writers of one store are serialized)."""

    store_id: str

    def identity(self, kind: str, id: str) -> Identity | None: ...

    def credential(self, credential_id: str) -> CredentialRecord | None: ...

    def store_policy(self) -> StorePolicy: ...


class CredentialStore(Protocol):
    """Client credentials of non-human identities and the client-assertion ``jti`` replay
    table (migration 0009; see :mod:`keyplane.service.credentials`). Removed with the store."""

    def write_credential(
        self,
        store_id: str,
        plan: Callable[[CredentialTxReader], tuple[CredentialRecord, bool]],
        *,
        ledger_events: Callable[[int, Credential], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> CredentialRecord:
        """Bump the store revision, run ``plan`` (returns the record and whether it is new:
        insert, else update), store it stamped with the revision and commit
        ``ledger_events`` — one transaction. The plan may raise (nothing written) and may
        run more than once."""
        ...

    def get_credential(self, store_id: str, credential_id: str) -> CredentialRecord | None:
        """MUST raise StoreNotFoundError for an unknown store."""
        ...

    def credentials_of(self, store_id: str, client_id: str) -> list[CredentialRecord]: ...

    def list_credentials(
        self,
        store_id: str,
        *,
        client_id: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[CredentialRecord]: ...

    def touch_credentials(self, store_id: str, used: Sequence[tuple[str, float]]) -> None:
        """Advance ``last_used_at`` of (credential id, time) pairs: no revision, no event."""
        ...

    def use_jti(
        self, store_id: str, client_id: str, jti: str, expires_at: float, now: float
    ) -> bool:
        """Record ``jti`` until ``expires_at``; False if it is already recorded (a replay)."""
        ...


#: how long (seconds) a revoked token's id is kept after the token's own expiry: more than
#: any clock leeway a verifier allows on ``exp``, so a revoked token never verifies again
REVOKED_TOKEN_GRACE = 60.0


class TokenStore(Protocol):
    """Revoked access tokens (migration 0010; see :mod:`keyplane.service.tokens`). A row is
    kept until the token has been expired for :data:`REVOKED_TOKEN_GRACE` seconds (then it
    is pruned: the token's ``exp`` refuses it anyway). Removed with the store."""

    def revoke_tokens(
        self,
        store_id: str,
        items: Sequence[tuple[str, float]],
        *,
        revoked_by: str,
        reason: str | None,
        revoked_at: float,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> int:
        """Record ``(jti, expires_at)`` pairs as revoked; return the new store revision.

        One transaction: the store revision is bumped once (even when every jti was
        already revoked: the request is still recorded), each new row is stamped with it
        (a jti already revoked is left as it is), ``ledger_events`` (called with the new
        revision) commits with it. Expired rows of the store are pruned on the way. An
        empty ``items`` changes nothing and returns the current revision (no events).
        MUST raise StoreNotFoundError for an unknown store."""
        ...

    def is_token_revoked(self, store_id: str, jti: str) -> bool:
        """Whether ``jti`` has a revocation row (a direct read; decisions use the
        in-memory :class:`~keyplane.policy.state.PolicyState` instead). MUST raise
        StoreNotFoundError for an unknown store."""
        ...

    def prune_revoked_tokens(self, before: float) -> int:
        """Delete the revocation rows (every store) whose ``expires_at < before``; return
        how many. Not a change of the identity plane: no revision, no event."""
        ...


# -- access governance (issue 7) ----------------------------------------------------------


class GovernanceStore(Protocol):
    """Reads of entitlements and access requests (migration 0011; see
    :mod:`keyplane.storage.governance_sql`). Every change goes through
    :meth:`PolicyStore.write_policy` (``PolicyWrite.new_entitlements``, ``entitlements``,
    ``deleted_entitlements``, ``new_access_requests``, ``access_requests``, with the grant
    tuples in ``tuple_writes``/``tuple_deletes``): one transaction, one revision bump, the
    ledger events chained in it. :meth:`StoreAdmin.delete_store` removes the store's rows
    (the review tables of the same migration included). Every method raises
    StoreNotFoundError for a missing store.
    """

    def get_entitlement(self, store_id: str, entitlement_id: str) -> Entitlement | None:
        """The entitlement (None when missing or deleted)."""
        ...

    def list_entitlements(
        self,
        store_id: str,
        *,
        status: str | None = None,
        object: str | None = None,
        object_type: str | None = None,
        relation: str | None = None,
        owner: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Entitlement]:
        """Entitlements (never deleted ones) ordered by id, every given filter applied
        (``object``: exactly that object string, "document:*" included; ``object_type``:
        the type's concrete and wildcard objects; ``owner``: one of its owners exactly).
        Tokens are opaque and bound to the filters."""
        ...

    def get_access_request(self, store_id: str, request_id: str) -> AccessRequest | None: ...

    def list_access_requests(
        self,
        store_id: str,
        *,
        state: str | None = None,
        entitlement_id: str | None = None,
        beneficiary: str | None = None,
        requester: str | None = None,
        approver: str | None = None,
        object: str | None = None,
        relation: str | None = None,
        object_type: str | None = None,
        beneficiary_kind: str | None = None,
        now: float | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[AccessRequest]:
        """Requests ordered by id (creation order), every given filter applied.

        ``state`` is the state at ``now`` as
        :meth:`~keyplane.governance.records.AccessRequest.state_at` computes it (a stored
        ``pending`` past ``pending_until`` is ``expired``, not ``pending``; an ``active``
        past ``grant_expires_at`` likewise); ``now`` defaults to the storage clock and the
        first page's instant is kept in the token. ``approver``: ``route_approvers``
        contains it exactly; ``object_type`` / ``beneficiary_kind``: the object's type /
        the beneficiary's kind ("agent" for "agent:bot"), e.g. a review's "every agent
        grant on documents" is ``state="active", object_type="document",
        beneficiary_kind="agent"``. Tokens are opaque and bound to the filters."""
        ...

    def access_requests_due(
        self, store_id: str, now: float, *, limit: int = 1000
    ) -> list[AccessRequest]:
        """Requests whose STORED state has run out by ``now`` (pending with
        ``pending_until <= now``, approved/active with ``grant_expires_at <= now``), by id,
        at most ``limit``: what the sweep persists as ``expired``."""
        ...


# -- the MCP gateway (issue 9) --------------------------------------------------------------


class GatewayTxReader(Protocol):
    """Reads inside a :meth:`GatewayStore.write_gateway` transaction. The store's revision
    is already bumped (its row locked) when the plan runs, so gateway writers of one store
    are serialized (with every other writer of it) and these reads see every earlier
    committed change."""

    store_id: str

    def server(self, name: str) -> McpServer | None:
        """The server (its ``encrypted_secret`` included), or None."""
        ...

    def tools(self, server: str | None = None) -> list[McpTool]:
        """The tools of ``server`` (every server's when None), removed ones included,
        ordered by (server, name)."""
        ...

    def settings(self) -> GatewaySettings:
        """The store's gateway settings; ``GatewaySettings(store_id)`` (revision 0) when
        none were ever stored."""
        ...

    def tuples(
        self, object_type: str, relation: str | None = None, user: str | None = None
    ) -> list[Tuple]:
        """Stored tuples on objects of ``object_type`` (e.g. ``"mcp_tool"``), narrowed to
        ``relation`` and ``user`` when given (``user`` exact — ``"toolset:x"``,
        ``"group:g#member"`` — or ``"type:"`` for every user of a type), in key order;
        expired ones included (see their ``expires_at``). How toolsets are read: their
        tools are the ``mcp_tool`` tuples with relation ``toolset``, their members the
        ``toolset`` tuples with relation ``member``."""
        ...


@dataclass(frozen=True, slots=True)
class GatewayWriteResult:
    """What :meth:`GatewayStore.write_gateway` did: the new revision (the store's current
    one and ``changed`` False when the plan returned an empty write)."""

    revision: int
    changed: bool


class GatewayStore(Protocol):
    """Downstream MCP servers, their tools and a store's gateway settings (migration 0012;
    see :mod:`keyplane.gateway.records` and :mod:`keyplane.storage.gateway_sql`).
    :meth:`StoreAdmin.delete_store` removes the store's rows. Every method raises
    StoreNotFoundError for a missing store."""

    def write_gateway(
        self,
        store_id: str,
        plan: Callable[[GatewayTxReader], GatewayWrite],
        *,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> GatewayWriteResult:
        """Run ``plan`` inside one write transaction and store what it returns.

        The store revision is bumped FIRST, then the plan runs against a
        :class:`GatewayTxReader` bound to the transaction. The plan MAY raise (nothing is
        written) and MAY run more than once (a retried transaction), so it must not have
        side effects. An empty :class:`~keyplane.gateway.records.GatewayWrite` MUST roll
        back: no revision, no ledger events, ``changed`` False and ``revision`` the current
        one. Otherwise, in this order: ``deleted_servers`` are removed with all their tools;
        ``servers`` are upserted whole (every column, keyed by name); ``tools`` upserted
        whole (keyed by (server, name)) — a tool of a server that does not exist after the
        write MUST raise ValidationError; ``settings`` (when given) replace the store's;
        every row is stamped with the new revision and the write's store id (whatever the
        records say). ``tuple_writes`` / ``tuple_deletes`` are applied as a policy write's
        (idempotent, deletes first, each actual change in the changelog at the revision,
        so every process's graph applies them). ``ledger_events`` (called with the new
        revision) commits in the same transaction, as for :meth:`TupleWriter.write`.
        """
        ...

    def read_gateway(self, store_id: str) -> GatewayState:
        """Everything the gateway decides with, read in ONE read transaction: ``revision``
        is the store's revision at that snapshot (it moves with any write of the store,
        tuple writes included), ``settings`` (the defaults when none stored), every server
        (``encrypted_secret`` included) and every tool (removed ones included)."""
        ...


# -- SCIM 2.0 resources (issue 10) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScimResource:
    """A resource an identity provider provisioned over SCIM 2.0 (migration 0013; see
    :mod:`keyplane.service.scim`). ``resource_type`` is ``User``, ``Group`` or ``Agent``;
    ``id`` the SCIM id (fixed at creation); ``node`` the graph node it is projected on;
    ``data`` the resource as stored, without ``meta``; ``unique_key`` the lower-cased
    userName of a User, the displayName of an Agent, None for a Group."""

    store_id: str
    resource_type: str
    id: str
    external_id: str | None
    unique_key: str | None
    node: str
    data: Mapping[str, Any]
    version: int
    created_at: float
    updated_at: float
    revision: int = 0


@dataclass(frozen=True, slots=True)
class ScimWrite:
    """One atomic SCIM change, as a plan returns it to :meth:`ScimStore.write_scim`:
    ``resources`` upserted whole (keyed by (resource_type, id)), ``deleted`` ((resource_type,
    id) pairs) removed, and ``policy`` — the identity-plane change that projects them on the
    graph (identities, delegations, tuples) — applied as :meth:`PolicyStore.write_policy`
    would, in the same transaction."""

    resources: Sequence[ScimResource] = ()
    deleted: Sequence[tuple[str, str]] = ()
    policy: PolicyWrite = field(default_factory=lambda: PolicyWrite())

    @property
    def empty(self) -> bool:
        return not (self.resources or self.deleted) and self.policy.empty


@dataclass(frozen=True, slots=True)
class ScimWriteResult:
    """What :meth:`ScimStore.write_scim` stored: the revision, ``changed`` (False and the
    store's current revision when the plan returned an empty write), the resources as
    stored and the identity-plane rows (as :class:`PolicyWriteResult`)."""

    revision: int
    changed: bool
    resources: tuple[ScimResource, ...] = ()
    policy: PolicyWriteResult | None = None


class ScimTxReader(PolicyTxReader, Protocol):
    """Reads inside a :meth:`ScimStore.write_scim` transaction: everything a
    :class:`PolicyTxReader` reads (the plan reuses the identity plane's plan logic) and the
    store's SCIM resources, with the store's revision already bumped (writers serialized)."""

    def scim(self, resource_type: str, id: str) -> ScimResource | None: ...

    def scim_by_key(self, resource_type: str, unique_key: str) -> ScimResource | None: ...

    def scim_all(self, resource_type: str) -> list[ScimResource]:
        """Every resource of the type, by id."""
        ...


class ScimStore(Protocol):
    """SCIM 2.0 resources (migration 0013). :meth:`StoreAdmin.delete_store` removes the
    store's rows. Every method raises StoreNotFoundError for a missing store."""

    def write_scim(
        self,
        store_id: str,
        plan: Callable[[ScimTxReader], ScimWrite],
        *,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> ScimWriteResult:
        """Run ``plan`` inside one write transaction and store what it returns: the store
        revision is bumped FIRST, then the plan runs against a :class:`ScimTxReader`; the
        plan MAY raise (nothing is written) and MAY run more than once. An empty
        :class:`ScimWrite` MUST roll back (no revision, no events, ``changed`` False).
        Otherwise ``deleted`` rows are removed, ``resources`` upserted (stamped with the new
        revision and the write's store id; a unique_key clash with another row MUST raise
        ConflictError), ``policy`` applied exactly as :meth:`PolicyStore.write_policy`
        applies a plan's write, and ``ledger_events`` (called with the new revision)
        committed — one transaction."""
        ...

    def get_scim(self, store_id: str, resource_type: str, id: str) -> ScimResource | None: ...

    def list_scim(self, store_id: str, resource_type: str) -> list[ScimResource]:
        """Every resource of the type in the store, by id."""
        ...


class Storage(
    StoreAdmin,
    ModelStore,
    TupleWriter,
    TupleReader,
    ChangeReader,
    SnapshotReader,
    KeyStore,
    LedgerStore,
    LedgerAdminStore,
    LedgerActivityStore,
    PolicyStore,
    SigningKeyStore,
    CredentialStore,
    TokenStore,
    GovernanceStore,
    GatewayStore,
    ScimStore,
    ImportStore,
    Protocol,
):
    """Everything a backend offers. Implementations MUST be safe to call from many threads."""

    def close(self) -> None:
        """Release every connection. Calls after close MAY fail."""
        ...

"""How SCIM resources become identities and tuples (the mapping behind
:mod:`keyplane.service.scim`), and how they are answered.

==========  ==========================================================================
SCIM        Keyplane
==========  ==========================================================================
User        identity ``human:<id>`` (source ``scim``): display name from displayName,
            name.formatted, givenName familyName or userName; attributes ``userName``,
            ``emails`` (lower-cased), ``title``, ``department`` (enterprise),
            ``employeeType`` (userType), ``manager`` (``human:<manager id>``), ``active``,
            ``externalId`` and ``links.scim`` = id. Attributes Keyplane did not get from
            SCIM (e.g. ``links.github`` an administrator added) are kept.
Group       tuples ``group:<id>#member@human:<user id>`` and, for nested groups,
            ``group:<id>#member@group:<group id>#member`` — diffed on every write
            against the members stored before (tuples written by others are left alone)
Agent       identity ``agent:<id>`` (source ``scim``) whose owners are its owner Users'
            ``human:<id>`` (at least one, as for any non-human identity), owner tuples with
            them; attributes ``agentType``, ``description``, ``active``, ``externalId``,
            ``links.scim``
==========  ==========================================================================

A write is planned by :class:`ScimPlan` inside the storage transaction (it reads the
resources and identities as they are committed) and returns one
:class:`~keyplane.storage.base.ScimWrite`: the resource rows and the identity-plane change
that projects them, with the ledger events built once the revision is known.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from keyplane.errors import KeyplaneError
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.tuples import Tuple
from keyplane.ledger.events import LedgerEvent
from keyplane.policy.base_model import missing_hint
from keyplane.policy.records import Identity
from keyplane.scim import schemas as S
from keyplane.scim.errors import ScimError
from keyplane.service import audit
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.identities import (
    MAX_ATTRIBUTES_BYTES,
    Deprovision,
    deprovision_events,
    identity_event,
    is_orphaned,
    owner_tuple,
    plan_deprovision,
)
from keyplane.storage.base import PolicyWrite, ScimResource, ScimTxReader, ScimWrite

__all__ = [
    "KINDS",
    "SOURCE",
    "ScimPlan",
    "answer",
    "canonical",
    "changed_attributes",
    "check_if_match",
    "etag",
    "groups_by_user",
    "invalid",
    "new_id",
    "not_found",
    "resource_type_of_name",
    "rfc3339",
    "slug",
    "to_scim",
]

#: the graph type each resource type is projected on
KINDS = {"User": "human", "Group": "group", "Agent": "agent"}
SOURCE = "scim"
#: identity attributes SCIM owns (replaced by every write); the others are kept
USER_KEYS = ("userName", "emails", "title", "department", "employeeType", "manager", "active")
AGENT_KEYS = ("agentType", "description", "active")
COMMON_KEYS = ("externalId",)
_SLUG_BAD = re.compile(r"[^a-z0-9._@+-]+")
_ID_OK = re.compile(r"^[^\s:#*]{1,256}$")
MAX_SLUG = 200
MEMBER = "member"


# ------------------------------------------------------------------------------ helpers


def resource_type_of_name(resource_type: str) -> S.ResourceType:
    try:
        return S.resource_type(resource_type)
    except KeyError:
        raise ScimError(f"unknown resource type {resource_type!r}", status=404) from None


def not_found(rt: S.ResourceType, id: str) -> ScimError:
    return ScimError(f"{rt.name} {id!r} not found", status=404)


def invalid(message: str) -> ScimError:
    return ScimError(message, status=400, scim_type="invalidValue")


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def etag(version: int) -> str:
    return f'W/"{version}"'


def check_if_match(if_match: str | None, version: int) -> None:
    """RFC 7232 If-Match against the resource's version: ``*``, or one of the listed
    entity tags (weak or strong: SCIM versions are weak) naming it; else 412."""
    if if_match is None:
        return
    tags = [t.strip() for t in if_match.split(",") if t.strip()]
    for t in tags:
        if t == "*":
            return
        bare = t[2:] if t[:2] in ("W/", "w/") else t
        if bare.strip('"') == str(version):
            return
    raise ScimError(
        f"version mismatch: the resource is at {etag(version)}, If-Match named {if_match!r}",
        status=412,
    )


def slug(text: str) -> str:
    s = _SLUG_BAD.sub("-", text.lower()).strip("-.")
    return (s or "x")[:MAX_SLUG]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _display_name(rt: S.ResourceType, data: Mapping[str, Any]) -> str:
    name = data.get("name") if isinstance(data.get("name"), Mapping) else {}
    assert isinstance(name, Mapping)
    parts = [p for p in (_text(name.get("givenName")), _text(name.get("familyName"))) if p]
    for v in (
        _text(data.get("displayName")),
        _text(name.get("formatted")),
        " ".join(parts) or None,
        _text(data.get("userName")),
    ):
        if v:
            return v[:256]
    return ""


def _active(data: Mapping[str, Any]) -> bool:
    v = data.get("active", True)
    return v is not False


def _unique_key(rt: S.ResourceType, data: Mapping[str, Any]) -> str | None:
    if rt.name == "User":
        return str(data["userName"]).lower()
    if rt.name == "Agent":
        return str(data["displayName"])
    return None


def _require(rt: S.ResourceType, data: Mapping[str, Any]) -> None:
    """What the mapping needs beyond the schema's own checks."""
    field = {"User": "userName", "Group": "displayName", "Agent": "displayName"}[rt.name]
    if not _text(data.get(field)):
        raise invalid(f"{rt.name} needs a non-empty {field}")
    if "active" in data and not isinstance(data["active"], bool):
        raise invalid("active must be true or false")
    ext = data.get("externalId")
    if ext is not None and not isinstance(ext, str):
        raise invalid("externalId must be a string")


def _refs(values: Any, what: str) -> list[dict[str, Any]]:
    """members / owners as ``[{"value", "type"?, "display"?}]``, deduplicated by value
    (``$ref`` is computed on output)."""
    if values is None:
        return []
    if not isinstance(values, list):
        raise invalid(f"{what} must be a list")
    out: dict[str, dict[str, Any]] = {}
    for v in values:
        if not isinstance(v, Mapping) or not isinstance(v.get("value"), str) or not v["value"]:
            raise invalid(f"each of {what} needs a value (a SCIM id)")
        item: dict[str, Any] = {"value": v["value"]}
        if isinstance(v.get("type"), str):
            item["type"] = v["type"]
        if isinstance(v.get("display"), str):
            item["display"] = v["display"]
        out.setdefault(item["value"], item)
    return list(out.values())


def canonical(
    rt: S.ResourceType, body: Any, *, existing: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The resource to store: the schema's clean-up, then our own checks; no ``password``
    (Keyplane authenticates nobody with it), references normalized."""
    if not isinstance(body, Mapping):
        raise ScimError("the body must be a JSON object", status=400, scim_type="invalidSyntax")
    data = S.clean_input(body, rt, existing=existing)
    data.pop("password", None)
    data.pop("id", None)
    data.pop("meta", None)
    _require(rt, data)
    if rt.name == "Group":
        data["members"] = _refs(data.get("members"), "members")
        if not data["members"]:
            del data["members"]
    if rt.name == "Agent":
        data["owners"] = _refs(data.get("owners"), "owners")
        if not data["owners"]:
            raise invalid("an Agent needs at least one owner (a User id in owners)")
    return data


def _identity_attrs(
    rt: S.ResourceType,
    id: str,
    data: Mapping[str, Any],
    before: Mapping[str, Any] | None,
    *,
    deprovisioned: bool = False,
) -> dict[str, Any]:
    """The identity's attributes: SCIM's (replaced whole) over what else it had. ``active``
    is the resource's, or — when it says nothing — whether the identity is still alive."""
    keys = (USER_KEYS if rt.name == "User" else AGENT_KEYS) + COMMON_KEYS
    kept = {k: v for k, v in (before or {}).items() if k not in keys and k != "links"}
    links = (
        dict(before.get("links") or {})
        if before and isinstance(before.get("links"), Mapping)
        else {}
    )
    links["scim"] = id
    mine: dict[str, Any] = {}
    if rt.name == "User":
        ent = data.get(S.ENTERPRISE_USER)
        ent = ent if isinstance(ent, Mapping) else {}
        emails: list[str] = []
        for e in data.get("emails") or []:
            v = e.get("value") if isinstance(e, Mapping) else None
            if isinstance(v, str) and v.lower() not in emails:
                emails.append(v.lower())
        mine["userName"] = data["userName"]
        mine["emails"] = emails
        for key, value in (
            ("title", data.get("title")),
            ("department", ent.get("department")),
            ("employeeType", data.get("userType")),
        ):
            if isinstance(value, str):
                mine[key] = value
        manager = ent.get("manager")
        mv = manager.get("value") if isinstance(manager, Mapping) else None
        if isinstance(mv, str) and _ID_OK.match(mv):
            mine["manager"] = f"human:{mv}"
    else:
        for key in ("agentType", "description"):
            if isinstance(data.get(key), str):
                mine[key] = data[key]
    active = data.get("active")
    mine["active"] = active if isinstance(active, bool) else not deprovisioned
    if isinstance(data.get("externalId"), str):
        mine["externalId"] = data["externalId"]
    out = {**kept, **mine, "links": links}
    if len(json.dumps(out, allow_nan=False)) > MAX_ATTRIBUTES_BYTES:
        raise invalid(f"the identity's attributes would exceed {MAX_ATTRIBUTES_BYTES} bytes")
    return out


def _model_error(model: CompiledModel, node: str, exc: KeyplaneError) -> ScimError:
    kind = node.partition(":")[0]
    return invalid(
        f"the store's model {model.model_id} cannot hold {node}: {exc.message} "
        f"({missing_hint(kind)})"
    )


def _validate(model: CompiledModel, node: str, tuples: Sequence[Tuple]) -> None:
    kind = node.partition(":")[0]
    try:
        if not model.has_type(kind):
            raise KeyplaneError(f"type '{kind}' not found")
        for t in tuples:
            model.validate_tuple(t)
    except KeyplaneError as exc:
        raise _model_error(model, node, exc) from None


# ------------------------------------------------------------------------------ the plan


@dataclasses.dataclass
class ScimPlan:
    """One SCIM write planned in its transaction: what the storage stores and what the
    ledger records (built once the revision is known). Re-initialized on every run of the
    plan (a retried transaction runs it again)."""

    svc: Services
    caller: Caller
    store_id: str
    rt: S.ResourceType
    now: float
    model: CompiledModel | None
    resources: list[ScimResource] = dataclasses.field(default_factory=list)
    deleted: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    new_identities: list[Identity] = dataclasses.field(default_factory=list)
    identities: dict[str, Identity] = dataclasses.field(default_factory=dict)
    delegations: list[Any] = dataclasses.field(default_factory=list)
    tuple_writes: list[Tuple] = dataclasses.field(default_factory=list)
    tuple_deletes: list[Tuple] = dataclasses.field(default_factory=list)
    events: list[Callable[[int], list[tuple[LedgerEvent, str]]]] = dataclasses.field(
        default_factory=list
    )
    result: ScimResource | None = None
    #: (resource type, id) → whether that SCIM resource exists, as read in this transaction
    #: (seeded with a group's stored members: a deleted resource leaves every group with it)
    known: dict[tuple[str, str], bool] = dataclasses.field(default_factory=dict)

    def exists(self, r: ScimTxReader, resource_type: str, id: str) -> bool:
        key = (resource_type, id)
        if key not in self.known:
            self.known[key] = r.scim(resource_type, id) is not None
        return self.known[key]

    def seed(self, old: ScimResource) -> None:
        for m in old.data.get("members") or [] if old.resource_type == "Group" else []:
            if isinstance(m, Mapping) and m.get("type") in ("User", "Group"):
                self.known[(str(m["type"]), str(m["value"]))] = True

    def write(self) -> ScimWrite:
        policy = PolicyWrite(
            new_identities=self.new_identities,
            identities=list(self.identities.values()),
            delegations=self.delegations,
            tuple_writes=self.tuple_writes,
            tuple_deletes=self.tuple_deletes,
        )
        return ScimWrite(self.resources, self.deleted, policy)

    def ledger(self, revision: int) -> list[tuple[LedgerEvent, str]]:
        out: list[tuple[LedgerEvent, str]] = []
        for ev in self.events:
            out += ev(revision)
        if self.tuple_writes or self.tuple_deletes:
            out += audit.change_events(
                self.svc, self.caller, "tuples.written", self.store_id, revision=revision,
                details={
                    "written": audit.tuple_keys(self.tuple_writes),
                    "deleted": audit.tuple_keys(self.tuple_deletes),
                    "source": SOURCE,
                },
            )  # fmt: skip
        return out

    # -- events ------------------------------------------------------------------------

    def scim_event(self, type: str, res: ScimResource, details: Mapping[str, Any]) -> None:
        d = {
            "resource_type": res.resource_type, "id": res.id, "external_id": res.external_id,
            "version": res.version, **details,
        }  # fmt: skip
        action = type.partition(".")[2]
        self.events.insert(
            0,
            lambda rev: audit.change_events(
                self.svc,
                self.caller,
                type,
                self.store_id,
                resource=res.node,
                action=action,
                revision=rev,
                details=d,
            ),
        )

    def identity_ev(self, type: str, ident: Identity, details: Mapping[str, Any]) -> None:
        self.events.append(
            lambda rev: identity_event(
                self.svc, self.caller, type, self.store_id, rev, ident, details
            )
        )

    def deprovision(self, r: ScimTxReader, ident: Identity, reason: str) -> None:
        d: Deprovision | None = plan_deprovision(r, ident, now=self.now, reason=reason)
        if d is None:
            return
        for node, changed in d.changed.items():
            self.identities[node] = changed
        self.delegations += [rv.delegation for rv in d.revoked]
        self.events.append(
            lambda rev: deprovision_events(
                self.svc, self.caller, self.store_id, rev, d, reason=reason
            )
        )

    # -- references ----------------------------------------------------------------------

    def resolve_refs(self, r: ScimTxReader, id: str, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with the ``type`` of each member (Group) or owner (Agent) filled in, as
        stored — so that a retry compares equal to what was stored."""
        out = dict(data)
        if self.rt.name == "Group" and data.get("members"):
            out["members"] = [dict(m) for m in data["members"]]
            for m in out["members"]:
                self.member_user(r, id, m)
        if self.rt.name == "Agent" and data.get("owners"):
            out["owners"] = [dict(m) for m in data["owners"]]
            for m in out["owners"]:
                self.owner_user(r, m)
        return out

    def member_user(self, r: ScimTxReader, group_id: str, m: dict[str, Any]) -> str:
        """The graph user a group member is (``human:u`` or ``group:g#member``); its
        ``type`` is filled in. Unknown ids → 400 invalidValue."""
        v, want = m["value"], m.get("type")
        if want not in (None, "User", "Group"):
            raise invalid(
                f"member {v!r} of type {want!r}: a group's members are Users and Groups "
                "(the model's group#member holds humans and groups)"
            )
        if want in (None, "User") and self.exists(r, "User", v):
            m["type"] = "User"
            return f"human:{v}"
        if want in (None, "Group") and self.exists(r, "Group", v):
            if v == group_id:
                raise invalid(f"group {group_id!r} cannot be a member of itself")
            m["type"] = "Group"
            return f"group:{v}#{MEMBER}"
        raise invalid(f"member {v!r} is no SCIM {want or 'User or Group'} of this store")

    def owner_user(self, r: ScimTxReader, m: dict[str, Any]) -> str:
        v = m["value"]
        if m.get("type") not in (None, "User") or not self.exists(r, "User", v):
            raise invalid(f"owner {v!r} is no SCIM User of this store")
        m["type"] = "User"
        return f"human:{v}"

    # -- the projection of one resource ------------------------------------------------------

    def project(
        self,
        r: ScimTxReader,
        id: str,
        data: dict[str, Any],
        old: ScimResource | None,
        *,
        op: str,
        details: Mapping[str, Any],
    ) -> None:
        """Store ``data`` as resource ``id`` (``old``: as it was) and project it."""
        rt = self.rt
        node = f"{KINDS[rt.name]}:{id}"
        data = {**data, "id": id}
        if rt.name == "Group":
            self._project_group(r, id, node, data, old)
        else:
            self._project_identity(r, id, node, data, old)
        key = _unique_key(rt, data)
        if key is not None:
            taken = r.scim_by_key(rt.name, key)
            if taken is not None and taken.id != id:
                field = "userName" if rt.name == "User" else "displayName"
                raise ScimError(
                    f"{field} {data[field]!r} is already provisioned ({rt.name} {taken.id!r})",
                    status=409,
                    scim_type="uniqueness",
                )
        ext = data.get("externalId") if isinstance(data.get("externalId"), str) else None
        res = ScimResource(
            self.store_id, rt.name, id, ext, key, node, data,
            1 if old is None else old.version + 1,
            self.now if old is None else old.created_at, self.now,
        )  # fmt: skip
        self.resources.append(res)
        self.result = res
        self.scim_event(f"scim.{op}", res, details)

    def _project_group(
        self, r: ScimTxReader, id: str, node: str, data: dict[str, Any], old: ScimResource | None
    ) -> None:
        members = [dict(m) for m in data.get("members") or []]
        new = [Tuple(node, MEMBER, self.member_user(r, id, m)) for m in members]
        if members:
            data["members"] = members
        if self.model is not None:
            _validate(self.model, node, new)
        before = {t.key for t in _group_tuples(old)}
        now_keys = {t.key for t in new}
        self.tuple_writes += [t for t in new if t.key not in before]
        self.tuple_deletes += [t for t in _group_tuples(old) if t.key not in now_keys]

    def _project_identity(
        self, r: ScimTxReader, id: str, node: str, data: dict[str, Any], old: ScimResource | None
    ) -> None:
        rt = self.rt
        kind = KINDS[rt.name]
        owners: tuple[str, ...] = ()
        if rt.name == "Agent":
            refs = [dict(m) for m in data["owners"]]
            owners = tuple(dict.fromkeys(self.owner_user(r, m) for m in refs))
            data["owners"] = refs
        ident = self.identities.get(node) or r.identity(kind, id)
        name = _display_name(rt, data)
        gone = ident is not None and ident.status == "deprovisioned"
        attrs = _identity_attrs(
            rt, id, data, None if ident is None else ident.attributes, deprovisioned=gone
        )
        active = _active(data)
        # an explicit active: true where SCIM last said inactive (false, or nothing after
        # that: the identity's attributes.active) is a reactivation; a resource SCIM kept
        # active (the identity deprovisioned through the identity operations) keeps
        # following its identity provider
        said_active = ident is None or ident.attributes.get("active") is not False
        if gone and data.get("active") is True and not said_active:
            raise ScimError(
                f"{node} was deprovisioned (active false), which is for good in Keyplane: it "
                "cannot be made active again; provision a new "
                f"{'user' if rt.name == 'User' else 'agent'} instead",
                status=400,
                scim_type="mutability",
            )
        before_owners = () if ident is None else ident.owners
        added = [o for o in owners if o not in before_owners]
        for o in added:
            found = r.identity("human", o[6:])
            if found is not None and found.status != "active":
                raise invalid(f"owner {o!r} is {found.status}; an owner must be active")
        if self.model is not None:
            _validate(self.model, node, [owner_tuple(node, o) for o in owners])
        if ident is None:
            ident = Identity(
                self.store_id, kind, id, name, attrs, "active", owners, False, SOURCE,
                self.now, self.now, None, 0,
            )  # fmt: skip
            self.new_identities.append(ident)
            self.tuple_writes += [owner_tuple(node, o) for o in owners]
            self.identity_ev(
                "identity.created", ident,
                {"owners": list(owners), "source": SOURCE, "display_name": name},
            )  # fmt: skip
        else:
            changed = [
                f for f, a, b in (
                    ("display_name", name, ident.display_name),
                    ("attributes", attrs, ident.attributes),
                ) if a != b
            ]  # fmt: skip
            new = ident
            if changed:
                new = dataclasses.replace(ident, display_name=name, attributes=attrs)
                self.identity_ev("identity.updated", new, {"changed": changed})
            if owners != before_owners and rt.name == "Agent":
                removed = [o for o in before_owners if o not in owners]
                orphaned = (
                    is_orphaned(r, owners, {}) if new.status != "deprovisioned" else new.orphaned
                )
                new = dataclasses.replace(new, owners=owners, orphaned=orphaned)
                self.tuple_writes += [owner_tuple(node, o) for o in added]
                self.tuple_deletes += [owner_tuple(node, o) for o in removed]
                self.identity_ev(
                    "identity.owners_changed", new,
                    {"added": added, "removed": removed, "owners": list(owners),
                     "orphaned": new.orphaned},
                )  # fmt: skip
            if new is not ident:
                self.identities[node] = dataclasses.replace(new, updated_at=self.now)
        if not active:
            current = self.identities.get(node) or ident
            self.deprovision(r, current, f"{node} deactivated by the identity provider (SCIM)")

    # -- removal ---------------------------------------------------------------------------

    def remove(self, r: ScimTxReader, old: ScimResource) -> None:
        """DELETE: deprovision a User's or Agent's identity, remove a Group's member tuples,
        take the resource out of every group it is a member of, remove the row."""
        if old.resource_type == "Group":
            self.tuple_deletes += _group_tuples(old)
        else:
            kind, id = old.node.split(":", 1)
            ident = r.identity(kind, id)
            if ident is not None:
                self.deprovision(r, ident, f"{old.node} deleted by the identity provider (SCIM)")
        if old.resource_type in ("User", "Group"):
            for g in r.scim_all("Group"):
                if g.id == old.id and old.resource_type == "Group":
                    continue
                members = [m for m in g.data.get("members") or [] if not _same_member(m, old)]
                if len(members) == len(g.data.get("members") or []):
                    continue
                data = {**g.data, "members": members}
                if not members:
                    del data["members"]
                gone = _member_user(old)
                self.tuple_deletes.append(Tuple(g.node, MEMBER, gone))
                self.resources.append(
                    dataclasses.replace(g, data=data, version=g.version + 1, updated_at=self.now)
                )
        self.deleted.append((old.resource_type, old.id))
        self.scim_event("scim.deleted", old, {})


def _member_user(res: ScimResource) -> str:
    return f"human:{res.id}" if res.resource_type == "User" else f"group:{res.id}#{MEMBER}"


def _same_member(m: Any, res: ScimResource) -> bool:
    return (
        isinstance(m, Mapping) and m.get("value") == res.id and m.get("type") == res.resource_type
    )


def _group_tuples(res: ScimResource | None) -> list[Tuple]:
    if res is None:
        return []
    out: list[Tuple] = []
    for m in res.data.get("members") or []:
        if m.get("type") == "User":
            out.append(Tuple(res.node, MEMBER, f"human:{m['value']}"))
        elif m.get("type") == "Group":
            out.append(Tuple(res.node, MEMBER, f"group:{m['value']}#{MEMBER}"))
    return out


def changed_attributes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    keys = dict.fromkeys([*before, *after])
    return sorted(k for k in keys if k != "id" and before.get(k) != after.get(k))


def new_id(r: ScimTxReader, rt: S.ResourceType, data: Mapping[str, Any]) -> str:
    base = slug(str(data["userName"] if rt.name == "User" else data["displayName"]))
    kind = KINDS[rt.name]
    for n in range(1, 10_000):
        candidate = base if n == 1 else f"{base}-{n}"
        if r.scim(rt.name, candidate) is not None:
            continue
        if kind != "group" and r.identity(kind, candidate) is not None:
            continue
        return candidate
    raise ScimError(f"no free id for {base!r}", status=409, scim_type="uniqueness")


# ------------------------------------------------------------------------------ answers


def to_scim(
    res: ScimResource, base_url: str, *, groups: Mapping[str, list[ScimResource]] | None = None
) -> dict[str, Any]:
    """The resource as SCIM answers it: stored data, ``$ref`` of references, the groups a
    User is a direct member of (when ``groups`` — user id → groups — is given), ``meta``."""
    rt = resource_type_of_name(res.resource_type)
    base = base_url.rstrip("/")
    out: dict[str, Any] = {"schemas": list(res.data.get("schemas") or [rt.schema])}
    out.update({k: v for k, v in res.data.items() if k != "schemas"})
    out["id"] = res.id

    def ref(m: Mapping[str, Any]) -> dict[str, Any]:
        t = m.get("type") or "User"
        return {**m, "$ref": f"{base}/{t}s/{m['value']}"}

    if rt.name == "Group" and res.data.get("members"):
        out["members"] = [ref(m) for m in res.data["members"]]
    if rt.name == "Agent" and res.data.get("owners"):
        out["owners"] = [ref(m) for m in res.data["owners"]]
    if rt.name == "User" and groups is not None and groups.get(res.id):
        out["groups"] = [
            {"value": g.id, "$ref": f"{base}/Groups/{g.id}", "display": g.data.get("displayName"),
             "type": "direct"}
            for g in groups[res.id]
        ]  # fmt: skip
    out["meta"] = {
        "resourceType": rt.name,
        "created": rfc3339(res.created_at),
        "lastModified": rfc3339(res.updated_at),
        "location": f"{base}{rt.endpoint}/{res.id}",
        "version": etag(res.version),
    }
    return out


def groups_by_user(svc: Services, store_id: str) -> dict[str, list[ScimResource]]:
    out: dict[str, list[ScimResource]] = {}
    for g in svc.storage.list_scim(store_id, "Group"):
        for m in g.data.get("members") or []:
            if m.get("type") == "User":
                out.setdefault(m["value"], []).append(g)
    return out


def answer(svc: Services, store_id: str, res: ScimResource, base_url: str) -> dict[str, Any]:
    groups = groups_by_user(svc, store_id) if res.resource_type == "User" else None
    return to_scim(res, base_url, groups=groups)

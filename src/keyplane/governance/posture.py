"""Records of governance analytics (issue 8): effective access, over-privilege, agents
that exceed their owners, and the posture of non-human identities (NHIs).

Plain frozen dataclasses shared by the service operations (``service/effective.py``,
``service/privilege.py``, ``service/posture.py``), the report renderers
(:mod:`keyplane.governance.report`) and every surface. Each has ``to_dict`` (the JSON the
REST API, the CLI's ``--json`` and the MCP tools return) and ``from_dict`` (the HTTP SDK
rebuilds the server's answer). Times are seconds since the Unix epoch (UTC) as ``float``.

A *grant* is a tuple whose user is the identity itself (``document:1#viewer@agent:x``,
``group:eng#member@agent:x``): what was given to it. Its *effective access* is every
``(object, relation)`` the graph lets it reach through its grants, the groups they put it
in and the model's rewrites. *Use* is an allowed decision in the ledger naming it as the
subject or as an actor of the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyplane.governance.tool_usage import ToolUsageReport

__all__ = [
    "FINDING_SEVERITIES",
    "OWASP_NHI",
    "AccessEntry",
    "ExcessAccess",
    "Finding",
    "GrantUse",
    "NhiCredential",
    "NhiInventoryItem",
    "OverPrivilege",
    "PermissionUse",
    "PostureReport",
    "VisibilityScore",
]

#: The OWASP Non-Human Identities Top 10 (2025): id -> title. Findings name one of them.
OWASP_NHI: dict[str, str] = {
    "NHI1": "Improper Offboarding",
    "NHI2": "Secret Leakage",
    "NHI3": "Vulnerable Third-Party NHI",
    "NHI4": "Insecure Authentication",
    "NHI5": "Overprivileged NHI",
    "NHI6": "Insecure Cloud Deployment Configurations",
    "NHI7": "Long-Lived Secrets",
    "NHI8": "Environment Isolation",
    "NHI9": "NHI Reuse",
    "NHI10": "Human Use of NHI",
}

FINDING_SEVERITIES = ("low", "medium", "high", "critical")


# -- effective access -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One thing an identity can reach (or, for a resource, one identity reaching it).

    ``via`` is ``"graph"`` (the identity holds ``relation`` on ``object`` itself) or
    ``"delegation"`` (an agent exercising it for ``on_behalf_of`` under ``delegation_id``:
    the delegator holds it, the agent holds it, and the delegation's scope covers it).
    ``paths`` are the explain paths that grant it (:mod:`keyplane.graph.explain` format;
    empty when paths were not asked for); for a delegated entry, the delegator's paths.
    """

    user: str
    relation: str
    object: str
    via: str = "graph"
    paths: tuple[Any, ...] = ()
    on_behalf_of: str | None = None
    delegation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "relation": self.relation,
            "object": self.object,
            "via": self.via,
            "paths": list(self.paths),
            "on_behalf_of": self.on_behalf_of,
            "delegation_id": self.delegation_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AccessEntry:
        return cls(
            user=str(d["user"]),
            relation=str(d["relation"]),
            object=str(d["object"]),
            via=str(d.get("via", "graph")),
            paths=tuple(d.get("paths") or ()),
            on_behalf_of=d.get("on_behalf_of"),
            delegation_id=d.get("delegation_id"),
        )


# -- over-privilege -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PermissionUse:
    """One ``(object, relation)`` the identity reaches, and how often it was used in the
    window (0 = never) and when last."""

    object: str
    relation: str
    uses: int = 0
    last_used_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "relation": self.relation,
            "uses": self.uses,
            "last_used_at": self.last_used_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PermissionUse:
        return cls(
            str(d["object"]), str(d["relation"]), int(d.get("uses", 0)), d.get("last_used_at")
        )


@dataclass(frozen=True, slots=True)
class GrantUse:
    """One grant (a tuple key ``object#relation@user``) and what of the observed use it
    covers: ``covers`` used permissions reachable through it alone (0 = unused grant)."""

    tuple_key: str
    covers: int = 0
    reaches: int = 0  # permissions reachable through this grant (capped count)
    expires_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tuple": self.tuple_key,
            "covers": self.covers,
            "reaches": self.reaches,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GrantUse:
        return cls(
            str(d["tuple"]), int(d.get("covers", 0)), int(d.get("reaches", 0)), d.get("expires_at")
        )


@dataclass(frozen=True, slots=True)
class OverPrivilege:
    """Granted versus exercised for one identity over ``[since, until]``.

    ``grants``: every grant with its coverage. ``used``: the permissions exercised (allowed
    decisions), ``unused``: effective permissions never exercised in the window (at most
    ``limit`` listed; ``unused_total`` counts them all). ``keep``/``revoke``: the
    least-privilege recommendation — the smallest set of grants found that still covers
    every observed use (greedy set cover; exact for the common one-grant-per-use case), and
    the grants it leaves out. ``uncovered``: used permissions no grant covers any more
    (access since removed), listed for the record.
    """

    identity: str
    since: float
    until: float
    grants: tuple[GrantUse, ...]
    used: tuple[PermissionUse, ...]
    unused: tuple[PermissionUse, ...]
    unused_total: int
    effective_total: int
    keep: tuple[str, ...]
    revoke: tuple[str, ...]
    uncovered: tuple[PermissionUse, ...] = ()

    @property
    def unused_grants(self) -> tuple[str, ...]:
        return tuple(g.tuple_key for g in self.grants if g.covers == 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "since": self.since,
            "until": self.until,
            "grants": [g.to_dict() for g in self.grants],
            "unused_grants": list(self.unused_grants),
            "used": [u.to_dict() for u in self.used],
            "unused": [u.to_dict() for u in self.unused],
            "unused_total": self.unused_total,
            "effective_total": self.effective_total,
            "recommendation": {"keep": list(self.keep), "revoke": list(self.revoke)},
            "uncovered": [u.to_dict() for u in self.uncovered],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OverPrivilege:
        rec = d.get("recommendation") or {}
        return cls(
            identity=str(d["identity"]),
            since=float(d["since"]),
            until=float(d["until"]),
            grants=tuple(GrantUse.from_dict(g) for g in d.get("grants") or ()),
            used=tuple(PermissionUse.from_dict(u) for u in d.get("used") or ()),
            unused=tuple(PermissionUse.from_dict(u) for u in d.get("unused") or ()),
            unused_total=int(d.get("unused_total", 0)),
            effective_total=int(d.get("effective_total", 0)),
            keep=tuple(rec.get("keep") or ()),
            revoke=tuple(rec.get("revoke") or ()),
            uncovered=tuple(PermissionUse.from_dict(u) for u in d.get("uncovered") or ()),
        )


@dataclass(frozen=True, slots=True)
class ExcessAccess:
    """An agent (or any NHI) that reaches what one of its owners or delegators does not.

    ``principal`` is the owner or delegator compared with (``relationship`` ``"owner"`` or
    ``"delegator"``); ``excess`` lists ``(object, relation)`` the agent has and the
    principal lacks (at most ``limit``; ``excess_total`` counts them all)."""

    agent: str
    principal: str
    relationship: str
    excess: tuple[PermissionUse, ...]
    excess_total: int
    delegation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "principal": self.principal,
            "relationship": self.relationship,
            "excess": [e.to_dict() for e in self.excess],
            "excess_total": self.excess_total,
            "delegation_id": self.delegation_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExcessAccess:
        return cls(
            agent=str(d["agent"]),
            principal=str(d["principal"]),
            relationship=str(d["relationship"]),
            excess=tuple(PermissionUse.from_dict(e) for e in d.get("excess") or ()),
            excess_total=int(d.get("excess_total", 0)),
            delegation_id=d.get("delegation_id"),
        )


# -- NHI posture ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NhiCredential:
    """One credential of an NHI as the inventory shows it (never a secret): a client
    credential (``client_secret`` / ``private_key_jwt``) or an API key bound to it."""

    id: str
    type: str  # "client_secret" | "private_key_jwt" | "api_key"
    status: str  # "active" | "revoked" | "expired"
    created_at: float
    expires_at: float | None  # None: never expires (API keys may)
    last_used_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NhiCredential:
        return cls(
            str(d["id"]), str(d["type"]), str(d["status"]), float(d["created_at"]),
            d.get("expires_at"), d.get("last_used_at"),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NhiInventoryItem:
    """One non-human identity with what posture needs to know about it.

    ``credentials``: its active credentials; ``oldest_credential_age`` in seconds (None:
    none); ``never_used``: active credentials never used; ``unused_30``/``unused_90``:
    active credentials not used for 30/90 days (never-used ones older than that count);
    ``last_seen``: the newest of the identity's own ``last_seen`` and its credentials' last
    use — in the posture report also of its last allowed decision in the window (inventory
    pages read no ledger, so the two may differ); ``delegations_held``: active delegations
    to it; ``environment``: its ``environment``/``env`` attribute, if any.
    """

    identity: str
    kind: str
    display_name: str
    status: str
    owners: tuple[str, ...]
    orphaned: bool
    source: str
    created_at: float
    credentials: tuple[NhiCredential, ...]
    credential_count: int
    oldest_credential_age: float | None
    next_credential_expiry: float | None
    never_used: int
    unused_30: int
    unused_90: int
    last_seen: float | None
    delegations_held: int
    environment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "kind": self.kind,
            "display_name": self.display_name,
            "status": self.status,
            "owners": list(self.owners),
            "orphaned": self.orphaned,
            "source": self.source,
            "created_at": self.created_at,
            "credentials": [c.to_dict() for c in self.credentials],
            "credential_count": self.credential_count,
            "oldest_credential_age": self.oldest_credential_age,
            "next_credential_expiry": self.next_credential_expiry,
            "never_used": self.never_used,
            "unused_30": self.unused_30,
            "unused_90": self.unused_90,
            "last_seen": self.last_seen,
            "delegations_held": self.delegations_held,
            "environment": self.environment,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NhiInventoryItem:
        return cls(
            identity=str(d["identity"]),
            kind=str(d["kind"]),
            display_name=str(d.get("display_name", "")),
            status=str(d["status"]),
            owners=tuple(d.get("owners") or ()),
            orphaned=bool(d.get("orphaned", False)),
            source=str(d.get("source", "")),
            created_at=float(d["created_at"]),
            credentials=tuple(NhiCredential.from_dict(c) for c in d.get("credentials") or ()),
            credential_count=int(d.get("credential_count", 0)),
            oldest_credential_age=d.get("oldest_credential_age"),
            next_credential_expiry=d.get("next_credential_expiry"),
            never_used=int(d.get("never_used", 0)),
            unused_30=int(d.get("unused_30", 0)),
            unused_90=int(d.get("unused_90", 0)),
            last_seen=d.get("last_seen"),
            delegations_held=int(d.get("delegations_held", 0)),
            environment=d.get("environment"),
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """One posture finding: which identity, which OWASP NHI risk, how bad, the evidence
    (machine-readable facts: credential ids, ages, event ids, tuples…) and the fix.

    ``code`` is stable (e.g. ``orphaned_identity``, ``long_lived_secret``); ``owasp`` a key
    of :data:`OWASP_NHI`."""

    code: str
    owasp: str
    severity: str  # FINDING_SEVERITIES
    identity: str
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "owasp": self.owasp,
            "owasp_title": OWASP_NHI.get(self.owasp, ""),
            "severity": self.severity,
            "identity": self.identity,
            "title": self.title,
            "evidence": self.evidence,
            "fix": self.fix,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(
            code=str(d["code"]),
            owasp=str(d["owasp"]),
            severity=str(d["severity"]),
            identity=str(d["identity"]),
            title=str(d.get("title", "")),
            evidence=dict(d.get("evidence") or {}),
            fix=str(d.get("fix", "")),
        )


@dataclass(frozen=True, slots=True)
class VisibilityScore:
    """The share of NHIs (0..1; 1.0 when there are none) that have an active owner
    (``owned``), an expiry on every active credential (``expiring``) and usage data
    (``observed``: seen, used or decided on at least once) — and all three (``score``).
    Deprovisioned NHIs are gone for good and not counted (``total`` may be less than the
    inventory)."""

    total: int
    owned: int
    expiring: int
    observed: int
    complete: int

    @staticmethod
    def _share(n: int, total: int) -> float:
        return 1.0 if total == 0 else round(n / total, 4)

    @property
    def score(self) -> float:
        return self._share(self.complete, self.total)

    def to_dict(self) -> dict[str, Any]:
        t = self.total
        return {
            "score": self.score,
            "total": t,
            "owned": self.owned,
            "expiring": self.expiring,
            "observed": self.observed,
            "complete": self.complete,
            "owned_share": self._share(self.owned, t),
            "expiring_share": self._share(self.expiring, t),
            "observed_share": self._share(self.observed, t),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VisibilityScore:
        return cls(
            int(d["total"]), int(d["owned"]), int(d["expiring"]), int(d["observed"]),
            int(d["complete"]),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PostureReport:
    """The store's NHI posture at ``generated_at`` over the usage window ``[since,
    until]``: the inventory, the findings (most severe first), the visibility score, and
    the over-privilege and agents-exceeding-owners summaries behind the NHI5 findings.
    ``counts``: NHIs by kind, by status and by source; findings by OWASP id and severity.
    ``tools``: the MCP gateway's tools and their use in the window (the Tools section;
    None in a report made before the gateway existed).
    ``elapsed_seconds``: how long the report took to compute."""

    store_id: str
    generated_at: float
    since: float
    until: float
    inventory: tuple[NhiInventoryItem, ...]
    findings: tuple[Finding, ...]
    visibility: VisibilityScore
    counts: dict[str, dict[str, int]]
    over_privileged: tuple[OverPrivilege, ...] = ()
    exceeding: tuple[ExcessAccess, ...] = ()
    elapsed_seconds: float = 0.0
    tools: ToolUsageReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "generated_at": self.generated_at,
            "since": self.since,
            "until": self.until,
            "visibility": self.visibility.to_dict(),
            "counts": self.counts,
            "findings": [f.to_dict() for f in self.findings],
            "inventory": [i.to_dict() for i in self.inventory],
            "over_privileged": [o.to_dict() for o in self.over_privileged],
            "exceeding": [e.to_dict() for e in self.exceeding],
            "tools": None if self.tools is None else self.tools.to_dict(),
            "elapsed_seconds": self.elapsed_seconds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PostureReport:
        return cls(
            store_id=str(d["store_id"]),
            generated_at=float(d["generated_at"]),
            since=float(d["since"]),
            until=float(d["until"]),
            inventory=tuple(NhiInventoryItem.from_dict(i) for i in d.get("inventory") or ()),
            findings=tuple(Finding.from_dict(f) for f in d.get("findings") or ()),
            visibility=VisibilityScore.from_dict(d["visibility"]),
            counts={k: dict(v) for k, v in (d.get("counts") or {}).items()},
            over_privileged=tuple(
                OverPrivilege.from_dict(o) for o in d.get("over_privileged") or ()
            ),
            exceeding=tuple(ExcessAccess.from_dict(e) for e in d.get("exceeding") or ()),
            elapsed_seconds=float(d.get("elapsed_seconds", 0.0)),
            tools=None if d.get("tools") is None else ToolUsageReport.from_dict(d["tools"]),
        )

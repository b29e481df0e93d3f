"""Records of the identity plane (issue 5): identities, delegations, guardrails, store policy.

Plain frozen dataclasses shared by storage (``storage/policy_sql.py``), the in-memory
:class:`~keyplane.policy.state.PolicyState`, the service operations and the decision.
Every record carries the store revision of its last change (``revision``), the same
counter tuples use, so ``at_least_as_fresh`` covers identity and delegation changes too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IDENTITY_KINDS = ("human", "agent", "workload", "service_account")
NON_HUMAN_KINDS = ("agent", "workload", "service_account")
IDENTITY_STATUSES = ("active", "suspended", "deprovisioned")

DELEGATION_STATUSES = ("active", "revoked")
GUARDRAIL_EFFECTS = ("forbid", "require_approval")


@dataclass(frozen=True, slots=True)
class Identity:
    store_id: str
    kind: str  # one of IDENTITY_KINDS; also the graph type
    id: str  # bare id; the graph node is f"{kind}:{id}"
    display_name: str
    attributes: dict[str, Any]
    status: str  # IDENTITY_STATUSES
    owners: tuple[str, ...]  # graph users: "human:alice" or "group:eng#member"
    orphaned: bool
    source: str  # "api", "scim", "import:aws", ...
    created_at: float
    updated_at: float
    last_seen: float | None
    revision: int  # store revision of the last change

    @property
    def node(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class ScopeGrant:
    actions: tuple[str, ...]  # relations or store actions, e.g. ("viewer", "read")
    resource: str  # "document:roadmap" (one object) or "document:*" (every object of a type)
    tools: tuple[str, ...] = ()  # MCP tool names this grant covers (empty: none named)


@dataclass(frozen=True, slots=True)
class Delegation:
    store_id: str
    id: str  # ULID
    delegator: str  # graph node, e.g. "human:alice" or "agent:planner"
    delegate: str  # graph node, e.g. "agent:planner"
    parent_id: str | None  # the delegation this one was derived from
    scope: tuple[ScopeGrant, ...]
    purposes: tuple[str, ...]  # empty = any purpose
    not_before: float
    expires_at: float
    max_depth: int  # further hops the delegate may sub-delegate (0 = none)
    condition: str | None  # optional CEL expression over the decision input
    status: str  # "active" | "revoked"
    revoked_at: float | None
    revoked_reason: str | None
    created_by: str  # caller principal
    created_at: float
    revision: int


@dataclass(frozen=True, slots=True)
class Guardrail:
    id: str  # [a-z0-9_.-]{1,64}, unique in a set
    description: str
    effect: str  # "forbid" | "require_approval"
    expression: str  # CEL; true = the rule fires
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class GuardrailSet:
    store_id: str
    version: int  # 1, 2, ... per store; 0 = none ever written
    rules: tuple[Guardrail, ...]
    created_by: str
    created_at: float
    revision: int


#: JWS algorithms a trusted issuer's tokens may use (the default: all of them)
TRUSTED_ISSUER_ALGORITHMS = ("RS256", "ES256", "EdDSA")


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An external issuer whose JWTs a token exchange accepts as ``subject_token`` (the
    person's IdP token). Its keys come from ``jwks`` (an inline JWK Set) or ``jwks_uri``
    (exactly one of the two); the subject is the graph node
    ``f"{subject_kind}:{claims[subject_claim]}"``, which must be a registered, active
    identity of the store. ``audience`` (required, keyword-only): the value the token's
    ``aud`` must contain — the IdP's identifier of Keyplane (as its client or resource), so
    a token the IdP issued for another application is never accepted here (token
    confusion)."""

    issuer: str
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    audience: str = field(kw_only=True)
    subject_kind: str = "human"
    subject_claim: str = "sub"
    algorithms: tuple[str, ...] = TRUSTED_ISSUER_ALGORITHMS

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored (and shown on every surface): every field, always."""
        return {
            "issuer": self.issuer,
            "jwks": self.jwks,
            "jwks_uri": self.jwks_uri,
            "audience": self.audience,
            "subject_kind": self.subject_kind,
            "subject_claim": self.subject_claim,
            "algorithms": list(self.algorithms),
        }

    @classmethod
    def from_json(cls, d: Any) -> TrustedIssuer:
        """The inverse of :meth:`to_json` (missing optional keys take their defaults).
        Structure only: the values are validated by ``update_store_policy``. A stored
        issuer without ``audience`` (none can be written any more) reads as ``""``, which
        no token matches: its tokens are refused (``wrong_audience``), never accepted for
        any audience."""
        if not isinstance(d, dict) or not isinstance(d.get("issuer"), str):
            raise ValueError("a trusted issuer is an object with an 'issuer' string")
        jwks = d.get("jwks")
        algs = d.get("algorithms")
        return cls(
            issuer=d["issuer"],
            jwks=None if jwks is None else dict(jwks),
            jwks_uri=d.get("jwks_uri"),
            audience=d.get("audience") or "",
            subject_kind=d.get("subject_kind", "human"),
            subject_claim=d.get("subject_claim", "sub"),
            algorithms=TRUSTED_ISSUER_ALGORITHMS if algs is None else tuple(algs),
        )


@dataclass(frozen=True, slots=True)
class StorePolicy:
    store_id: str
    max_delegation_seconds: int = 86400  # cap on expires_at - not_before
    suspend_orphans: bool = False  # suspend NHIs whose last owner is deprovisioned
    actions: dict[str, str] = field(default_factory=dict)  # action name -> relation
    revision: int = 0
    max_credential_seconds: int = 7_776_000  # cap on a client credential's lifetime (90 days)
    access_token_seconds: int = 300  # default lifetime of issued access tokens
    allow_impersonation: bool = False  # token exchange without actor_token allowed
    token_audiences: tuple[str, ...] = ()  # allowed audience/resource values (empty: any)
    trusted_issuers: tuple[TrustedIssuer, ...] = ()  # external subject_token issuers

    def trusted_issuer(self, issuer: str) -> TrustedIssuer | None:
        """The trusted issuer whose ``issuer`` is exactly ``issuer``, or None."""
        for t in self.trusted_issuers:
            if t.issuer == issuer:
                return t
        return None

"""Request and response bodies of the identity plane (issue 5): identities, delegations,
the store policy, guardrails and decisions (``/v1/stores/{store}/identities…``,
``…/delegations…``, ``…/policy``, ``…/guardrails…``, ``…/decide``).

The same contract as :mod:`keyplane.api.schemas`: pydantic v2 models that FastAPI turns
into the OpenAPI document and the MCP server reuses as tool schemas; they validate shape
only (the service layer checks meaning, so every surface refuses the same inputs). Times
on the wire are RFC 3339 in UTC; a request also accepts seconds since the epoch. The
``from_*`` helpers encode service records; handlers do nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from keyplane.api.schemas import MAX_ID, MAX_OBJECT, MAX_USER, rfc3339
from keyplane.policy.decide import Decision
from keyplane.policy.records import (
    Delegation,
    Guardrail,
    GuardrailSet,
    Identity,
    StorePolicy,
    TrustedIssuer,
)
from keyplane.service.inputs import MAX_REVISION

__all__ = [
    "CreateDelegationRequest",
    "CreateIdentityRequest",
    "DecideBatchRequest",
    "DecideBatchResponse",
    "DecideItemModel",
    "DecideRequest",
    "DecisionOut",
    "DelegationList",
    "DelegationOut",
    "DryRunRequest",
    "GuardrailDryRunOut",
    "GuardrailFlipOut",
    "GuardrailIn",
    "GuardrailOut",
    "GuardrailSetOut",
    "GuardrailVersionList",
    "IdentityList",
    "IdentityOut",
    "OwnersRequest",
    "PutGuardrailsRequest",
    "ReasonRequest",
    "RevokeDelegationResponse",
    "ScopeGrantModel",
    "StorePolicyOut",
    "TrustedIssuerModel",
    "UpdateIdentityRequest",
    "UpdateStorePolicyRequest",
]

IdentityKind = Literal["human", "agent", "workload", "service_account"]
IdentityStatus = Literal["active", "suspended", "deprovisioned"]
MAX_NAME = 256
MAX_REASON = 1024
MAX_EXPRESSION = 4096


class _Request(BaseModel):
    # unknown fields are refused: a misspelt option must not be silently ignored
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _node_field(what: str, example: str) -> Any:
    return Field(
        min_length=3,
        max_length=MAX_USER,
        description=f"{what}: an identity's graph node `kind:id` (e.g. `{example}`).",
        examples=[example],
    )


def ts(value: datetime | None) -> float | None:
    """A request time (aware, naive = UTC, or epoch seconds parsed by pydantic) → seconds."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


# ------------------------------------------------------------------------ identities


class CreateIdentityRequest(_Request):
    """A new identity. Every non-human identity needs at least one owner."""

    kind: IdentityKind = Field(
        description="`human`, `agent`, `workload` or `service_account`; also its graph type."
    )
    id: str = Field(
        min_length=1,
        max_length=MAX_ID,
        description="The bare id; the identity's graph node is `kind:id` (e.g. `agent:planner`).",
        examples=["planner"],
    )
    display_name: str | None = Field(
        default=None, max_length=MAX_NAME, description="A name for people; the id when omitted."
    )
    attributes: dict[str, Any] | None = Field(
        default=None,
        description="Free JSON attributes, visible to guardrails and delegation conditions.",
        examples=[{"team": "growth", "environment": "production"}],
    )
    owners: list[str] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Who answers for this identity: humans (`human:alice`) or groups "
            "(`group:eng#member`). Required (at least one) for agents, workloads and "
            "service accounts: 400 `owner_required` otherwise."
        ),
        examples=[["human:alice"]],
    )
    source: str = Field(
        default="api",
        min_length=1,
        max_length=64,
        description="Where the identity comes from: `api`, `scim`, `import:aws`, ….",
    )


class IdentityOut(_Response):
    """An identity: a human, agent, workload or service account, and a node of the graph."""

    kind: IdentityKind
    id: str
    node: str = Field(description="The graph node, `kind:id`: use it in tuples and decisions.")
    display_name: str
    attributes: dict[str, Any]
    status: IdentityStatus = Field(
        description="`active`; `suspended` (every decision it appears in denies) or "
        "`deprovisioned` (for good)."
    )
    owners: list[str] = Field(description="Humans or groups answering for this identity.")
    orphaned: bool = Field(description="Its last active owner was deprovisioned.")
    source: str
    created_at: datetime
    updated_at: datetime
    last_seen: datetime | None = Field(description="When it last appeared in a decision.")
    revision: int = Field(description="The store revision of its last change.")

    @classmethod
    def from_identity(cls, i: Identity) -> IdentityOut:
        return cls(
            kind=i.kind,  # type: ignore[arg-type]
            id=i.id,
            node=i.node,
            display_name=i.display_name,
            attributes=dict(i.attributes),
            status=i.status,  # type: ignore[arg-type]
            owners=list(i.owners),
            orphaned=i.orphaned,
            source=i.source,
            created_at=rfc3339(i.created_at),  # type: ignore[arg-type]
            updated_at=rfc3339(i.updated_at),  # type: ignore[arg-type]
            last_seen=rfc3339(i.last_seen),
            revision=i.revision,
        )


class IdentityList(_Response):
    identities: list[IdentityOut]
    continuation_token: str | None = Field(
        default=None,
        description="Pass back as `continuation_token` for the next page; null on the last.",
    )


class UpdateIdentityRequest(_Request):
    """Change what is given; leave out what stays."""

    display_name: str | None = Field(default=None, max_length=MAX_NAME)
    attributes: dict[str, Any] | None = Field(
        default=None, description="Replaces the attributes as a whole."
    )


class OwnersRequest(_Request):
    """Owners to add and to remove, in one change (a non-human identity keeps at least one)."""

    add: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Owners to add: `human:alice` or `group:eng#member`.",
        examples=[["human:bob"]],
    )
    remove: list[str] = Field(default_factory=list, max_length=100, description="Owners to remove.")


class ReasonRequest(_Request):
    reason: str | None = Field(
        default=None, max_length=MAX_REASON, description="Why, for the ledger and for people."
    )


# ------------------------------------------------------------------------ delegations


class ScopeGrantModel(_Request):
    """What a delegation covers: these actions on this resource (through these tools)."""

    actions: list[str] = Field(
        min_length=1,
        max_length=64,
        description="Relations or store actions (the store policy's action map), e.g. `viewer`.",
        examples=[["viewer", "read"]],
    )
    resource: str = Field(
        min_length=3,
        max_length=MAX_OBJECT,
        description="One object `type:id`, or every object of a type `type:*`.",
        examples=["document:roadmap"],
    )
    tools: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="MCP tool names this grant covers; empty names none (any tool).",
    )


class CreateDelegationRequest(_Request):
    """Let `delegate` act for `delegator` within a scope, until `expires_at`."""

    delegator: str = _node_field("Who delegates", "human:alice")
    delegate: str = _node_field("Who may act on the delegator's behalf", "agent:planner")
    scope: list[ScopeGrantModel] = Field(
        min_length=1, max_length=256, description="What the delegate may do, grant by grant."
    )
    expires_at: datetime = Field(
        description=(
            "When it ends: RFC 3339 (or seconds since the epoch). Required; at most the store "
            "policy's `max_delegation_seconds` (default 24 h) after `not_before`."
        )
    )
    purposes: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="The purposes it may be used for; empty: any purpose.",
        examples=[["support"]],
    )
    not_before: datetime | None = Field(
        default=None, description="When it starts (RFC 3339 or epoch seconds); now if omitted."
    )
    max_depth: int = Field(
        default=0, ge=0, le=16, description="Further hops the delegate may sub-delegate (0: none)."
    )
    condition: str | None = Field(
        default=None,
        max_length=MAX_EXPRESSION,
        description="A CEL expression over the decision input that must be true, e.g. "
        '`context.ticket != ""`.',
    )
    parent_id: str | None = Field(
        default=None,
        max_length=64,
        description=(
            "Derive it from this delegation (whose delegate is this one's delegator): it must "
            "be contained in the parent — anything wider is 400 `delegation_widening`."
        ),
    )


class DelegationOut(_Response):
    """A delegation: a link of an actor chain."""

    id: str
    delegator: str
    delegate: str
    parent_id: str | None
    scope: list[ScopeGrantModel]
    purposes: list[str]
    not_before: datetime
    expires_at: datetime
    max_depth: int
    condition: str | None
    status: Literal["active", "revoked"]
    revoked_at: datetime | None
    revoked_reason: str | None
    created_by: str = Field(description="The caller that created it (`key:<id>` or `system`).")
    created_at: datetime
    revision: int = Field(description="The store revision of its last change.")

    @classmethod
    def from_delegation(cls, d: Delegation) -> DelegationOut:
        return cls(
            id=d.id,
            delegator=d.delegator,
            delegate=d.delegate,
            parent_id=d.parent_id,
            scope=[
                ScopeGrantModel(actions=list(g.actions), resource=g.resource, tools=list(g.tools))
                for g in d.scope
            ],
            purposes=list(d.purposes),
            not_before=rfc3339(d.not_before),  # type: ignore[arg-type]
            expires_at=rfc3339(d.expires_at),  # type: ignore[arg-type]
            max_depth=d.max_depth,
            condition=d.condition,
            status=d.status,  # type: ignore[arg-type]
            revoked_at=rfc3339(d.revoked_at),
            revoked_reason=d.revoked_reason,
            created_by=d.created_by,
            created_at=rfc3339(d.created_at),  # type: ignore[arg-type]
            revision=d.revision,
        )


class DelegationList(_Response):
    delegations: list[DelegationOut]
    continuation_token: str | None = Field(
        default=None,
        description="Pass back as `continuation_token` for the next page; null on the last.",
    )


class RevokeDelegationResponse(_Response):
    revoked: list[DelegationOut] = Field(
        description="The delegation and every delegation derived from it, all revoked now."
    )


# ------------------------------------------------------------------------ store policy


class TrustedIssuerModel(_Request):
    """An external issuer whose JWTs a token exchange accepts as `subject_token`."""

    issuer: str = Field(
        min_length=1,
        max_length=512,
        description="The issuer's `iss`, exactly (an https URL; http only for localhost).",
        examples=["https://idp.example.com"],
    )
    jwks: dict[str, Any] | None = Field(
        default=None,
        description='Its public keys, inline: a JWK Set `{"keys": [...]}` (or `jwks_uri`).',
    )
    jwks_uri: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Where its JWK Set is fetched (https; cached 300 s, refetched on an "
        "unknown `kid` at most every 10 s). Exactly one of `jwks` and `jwks_uri`.",
    )
    audience: str = Field(
        min_length=1,
        max_length=512,
        description="Required: the value the issuer's tokens must carry in `aud` — the "
        "issuer's identifier of Keyplane, so a token it minted for another application is "
        "never accepted.",
        examples=["keyplane"],
    )
    subject_kind: IdentityKind = Field(
        default="human", description="The kind of the identity the token names."
    )
    subject_claim: str = Field(
        default="sub",
        min_length=1,
        max_length=64,
        description="The claim holding the identity's id: the subject is `{subject_kind}:{claim}`"
        " (a registered, active identity of the store).",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256", "EdDSA"],
        min_length=1,
        max_length=4,
        description="The JWS algorithms accepted (of RS256, PS256, ES256, EdDSA).",
    )

    @classmethod
    def from_record(cls, t: TrustedIssuer) -> TrustedIssuerModel:
        return cls.model_validate(t.to_json())

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class StorePolicyOut(_Response):
    max_delegation_seconds: int = Field(description="The longest a delegation may last.")
    suspend_orphans: bool = Field(
        description="Suspend non-human identities whose last owner is deprovisioned."
    )
    actions: dict[str, str] = Field(
        description="Action names (AuthZEN `action.name`) → the relation each means."
    )
    revision: int = Field(description="The store revision of its last change (0: never set).")
    max_credential_seconds: int = Field(
        default=7_776_000, description="The longest a client credential may last."
    )
    access_token_seconds: int = Field(
        default=300, description="The lifetime of access tokens the token endpoint issues."
    )
    allow_impersonation: bool = Field(
        default=False,
        description="Whether a token exchange without `actor_token` (a token for the subject "
        "with no `act`) may be granted.",
    )
    token_audiences: list[str] = Field(
        default_factory=list,
        description="The only `audience`/`resource` values tokens may be issued for (empty: any).",
    )
    trusted_issuers: list[TrustedIssuerModel] = Field(
        default_factory=list,
        description="External issuers whose tokens a token exchange accepts as `subject_token`.",
    )

    @classmethod
    def from_policy(cls, p: StorePolicy) -> StorePolicyOut:
        return cls(
            max_delegation_seconds=p.max_delegation_seconds,
            suspend_orphans=p.suspend_orphans,
            actions=dict(p.actions),
            revision=p.revision,
            max_credential_seconds=p.max_credential_seconds,
            access_token_seconds=p.access_token_seconds,
            allow_impersonation=p.allow_impersonation,
            token_audiences=list(p.token_audiences),
            trusted_issuers=[TrustedIssuerModel.from_record(t) for t in p.trusted_issuers],
        )


class UpdateStorePolicyRequest(_Request):
    """Change what is given; leave out what stays."""

    max_delegation_seconds: int | None = Field(default=None, gt=0, le=10**9)
    suspend_orphans: StrictBool | None = None
    actions: dict[str, str] | None = Field(
        default=None,
        description="Replaces the action map as a whole, e.g. "
        '`{"read": "viewer", "edit": "editor"}`.',
    )
    max_credential_seconds: int | None = Field(
        default=None, gt=0, le=10**9, description="Cap on new client credentials' lifetime."
    )
    access_token_seconds: int | None = Field(
        default=None,
        gt=0,
        le=10**9,
        description="Lifetime of issued access tokens (60 … KEYPLANE_TOKEN_MAX_TTL).",
    )
    allow_impersonation: StrictBool | None = None
    token_audiences: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Replaces the allowed token audiences as a whole (`[]`: any).",
    )
    trusted_issuers: list[TrustedIssuerModel] | None = Field(
        default=None,
        max_length=20,
        description="Replaces the trusted issuers as a whole (`[]`: none).",
    )


# ------------------------------------------------------------------------ guardrails


class GuardrailIn(_Request):
    """One rule: when `expression` is true, `effect` applies."""

    id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9_.-]+$",
        description="Unique in the set: lower-case letters, digits, `_`, `.`, `-`.",
        examples=["no-agent-delete-in-prod"],
    )
    description: str = Field(default="", max_length=MAX_REASON)
    effect: Literal["forbid", "require_approval"]
    expression: str = Field(
        min_length=1,
        max_length=MAX_EXPRESSION,
        description=(
            "CEL over `subject`, `actors`, `chain_length`, `action`, `relation`, `resource`, "
            "`purpose`, `context`, `tool`, `now`, `hour`; true = the rule fires."
        ),
        examples=['action == "delete" && resource.attributes.env == "production"'],
    )
    enabled: StrictBool = True

    def to_record(self) -> Guardrail:
        return Guardrail(self.id, self.description, self.effect, self.expression, self.enabled)


class GuardrailOut(_Response):
    id: str
    description: str
    effect: Literal["forbid", "require_approval"]
    expression: str
    enabled: bool


class PutGuardrailsRequest(_Request):
    """The store's whole new rule set (a new version; earlier versions are kept)."""

    rules: list[GuardrailIn] = Field(max_length=1000)


class GuardrailSetOut(_Response):
    version: int = Field(description="1, 2, … per store; 0: no rule set was ever written.")
    rules: list[GuardrailOut]
    created_by: str
    created_at: datetime
    revision: int

    @classmethod
    def from_set(cls, g: GuardrailSet) -> GuardrailSetOut:
        return cls(
            version=g.version,
            rules=[
                GuardrailOut(
                    id=r.id,
                    description=r.description,
                    effect=r.effect,  # type: ignore[arg-type]
                    expression=r.expression,
                    enabled=r.enabled,
                )
                for r in g.rules
            ],
            created_by=g.created_by,
            created_at=rfc3339(g.created_at),  # type: ignore[arg-type]
            revision=g.revision,
        )


class GuardrailVersionList(_Response):
    versions: list[GuardrailSetOut]
    continuation_token: str | None = Field(
        default=None,
        description="Pass back as `continuation_token` for the next page; null on the last.",
    )


# ------------------------------------------------------------------------ decisions


def _fresh_field() -> Any:
    return Field(
        default=None,
        ge=0,
        le=MAX_REVISION,
        description=(
            "A revision the answer must reflect (a write's `revision`: tuples, identities, "
            "delegations, guardrails and the policy share the counter); else 504 "
            "`consistency_timeout` after KEYPLANE_CONSISTENCY_TIMEOUT."
        ),
    )


class _DecideFields(_Request):
    subject: str | None = Field(
        default=None,
        min_length=3,
        max_length=MAX_USER,
        description="On whose behalf: a graph node, usually a human (`human:alice`). "
        "Required unless `token` is given (then it must be the token's `sub`).",
        examples=["human:alice"],
    )
    action: str = Field(
        min_length=1,
        max_length=MAX_NAME,
        description="A relation of the resource's type, or an action the store policy maps "
        "to one (e.g. `read` → `viewer`).",
        examples=["read"],
    )
    resource: str = Field(
        min_length=3,
        max_length=MAX_OBJECT,
        description="The object, `type:id`.",
        examples=["document:roadmap"],
    )
    actors: list[str] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "The actor chain, nearest the subject first: A1 acts directly for the subject, "
            '… the last is whoever makes this request (e.g. `["agent:planner", '
            '"agent:researcher"]`). Empty: the subject acts itself.'
        ),
    )
    purpose: str | None = Field(
        default=None, max_length=MAX_NAME, description="Why: checked against the delegations."
    )
    context: dict[str, Any] | None = Field(
        default=None, description="Request context, seen by conditions and guardrails."
    )
    delegation_id: str | None = Field(
        default=None, max_length=64, description="Pin the last link to this delegation."
    )
    tool: str | None = Field(
        default=None, max_length=MAX_NAME, description="The MCP tool about to be called."
    )
    resource_properties: dict[str, Any] | None = Field(
        default=None, description="The resource's attributes (guardrails: `resource.attributes`)."
    )
    subject_properties: dict[str, Any] | None = Field(
        default=None, description="Laid over the subject identity's attributes."
    )
    token: str | None = Field(
        default=None,
        min_length=1,
        max_length=8192,
        repr=False,
        description="A bearer access token of this store (from its token endpoint): the "
        "source of `subject`, `actors`, `purpose` and `delegation_id` (given too, they must "
        "agree). Verified with the live state of everything it was issued under; a token "
        "that fails is a deny `token_invalid`, one whose resource scopes do not cover the "
        "request a deny `token_scope`. Recorded by its `jti`, never itself.",
    )
    token_audience: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="The audience the token must name (a resource server deciding for a "
        "token obtained for it); without it the token must name its issuer.",
    )


class DecideRequest(_DecideFields):
    """May `subject`, through `actors`, do `action` on `resource` for `purpose`?"""

    model_id: str | None = Field(
        default=None, max_length=MAX_ID, description="Decide with this model version."
    )
    at_least_as_fresh: int | None = _fresh_field()


class DecideItemModel(_DecideFields):
    correlation_id: str | None = Field(
        default=None, max_length=MAX_ID, description="Your label, echoed on the result."
    )


class DecideBatchRequest(_Request):
    """Many decisions at one revision; an item's error is that item's answer."""

    items: list[DecideItemModel] = Field(
        description="The questions; at most KEYPLANE_MAX_BATCH_CHECK (default 1000)."
    )
    semantic: Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"] = Field(
        default="execute_all",
        description="AuthZEN's `evaluations_semantic`: answer all, or stop at the first "
        "deny / permit (the items after it are not evaluated).",
    )
    model_id: str | None = Field(default=None, max_length=MAX_ID)
    at_least_as_fresh: int | None = _fresh_field()


class DecisionError(_Response):
    code: str
    message: str


class DecisionOut(_Response):
    """The answer, with why in words and in a code, and the versions it used."""

    decision_id: str = Field(
        description="The ledger event recording it: `GET /v1/ledger/decisions/{decision_id}`."
    )
    allowed: bool
    code: str = Field(
        description="`allowed`, or the first failed condition: `token_invalid`, "
        "`token_scope` (with a `token`), `identity_suspended`, "
        "`identity_deprovisioned`, `delegation_missing`, `delegation_expired`, "
        "`delegation_not_yet_valid`, `delegation_revoked`, `delegation_scope`, "
        "`purpose_not_allowed`, `delegation_condition`, `subject_lacks_permission`, "
        "`actor_lacks_permission`, `guardrail_forbid`, `approval_required` (a batch item that "
        "could not be decided: its error code)."
    )
    reason_user: str = Field(description="Why, in words for a person (or an agent).")
    reason: dict[str, Any] = Field(
        description="Why, for a machine: the failed conjunct and the actor, link or rule."
    )
    requestable: bool = Field(
        description="Whether the caller can act on the denial by asking: true when "
        "`reason.request` names an entitlement to request, or for `approval_required`."
    )
    revision: int
    model_id: str
    guardrail_version: int
    delegation_ids: list[str] = Field(description="The delegation of each link, in order.")
    evaluated: dict[str, Any] = Field(
        default_factory=dict, description="What was evaluated: relation, chain, rules fired."
    )
    correlation_id: str | None = None
    error: DecisionError | None = Field(
        default=None, description="A batch item that could not be decided."
    )

    @classmethod
    def from_decision(cls, d: Decision) -> DecisionOut:
        err = d.error
        return cls(
            decision_id=d.decision_id,
            allowed=d.allowed,
            code=d.code,
            reason_user=d.reason_user,
            reason=_plain(d.reason),
            requestable=d.requestable,
            revision=d.revision,
            model_id=d.model_id,
            guardrail_version=d.guardrail_version,
            delegation_ids=list(d.delegation_ids),
            evaluated=_plain(d.evaluated),
            correlation_id=d.correlation_id,
            error=None
            if err is None
            else DecisionError(
                code=str(getattr(err, "code", "internal_error")),
                message=str(getattr(err, "message", err)),
            ),
        )


class DecideBatchResponse(_Response):
    results: list[DecisionOut] = Field(
        description="One per evaluated item, in order (a short-circuit stops early)."
    )


def _plain(value: Any) -> Any:
    """Mappings and tuples of a decision as JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class DryRunRequest(_Request):
    """A candidate rule set, re-evaluated over the store's last recorded decisions."""

    rules: list[GuardrailIn] = Field(max_length=1000)
    last: int = Field(
        default=1000, ge=1, le=10_000, description="How many of the last decisions to replay."
    )


class GuardrailFlipOut(_Response):
    """A recorded decision whose answer the candidate rules would change."""

    event_id: str
    decision_id: str
    seq: int | None
    time: float = Field(description="When it was decided (seconds since the epoch).")
    subject: str
    actors: list[str]
    action: str
    resource: str
    old_outcome: str = Field(description="`allow` or `deny`, as recorded.")
    new_outcome: str
    old_code: str
    new_code: str
    rule_ids: list[str] = Field(description="The candidate rules that fired.")
    old_rule_ids: list[str] = Field(description="The rules that fired when it was decided.")
    errors: dict[str, str] = Field(
        description="Candidate rules whose evaluation failed (they fire: fail closed), and why."
    )


class GuardrailDryRunOut(_Response):
    considered: int = Field(description="Decision events read (at most `last`).")
    evaluated: int = Field(description="Of those, re-evaluated.")
    changed: int = Field(description="Decisions whose code would change.")
    outcome_changed: int = Field(description="Of those, allow ↔ deny.")
    denied_before_guardrails: int = Field(
        description="Denied before the guardrails (identity, delegation, graph): kept."
    )
    skipped: dict[str, int] = Field(description="Events not re-evaluated, by reason.")
    current_version: int = Field(description="The guardrail version in force now (0: none).")
    flips: list[GuardrailFlipOut] = Field(description="One per changed decision, newest first.")
    rule_errors: int = Field(description="Re-evaluations where a candidate rule failed.")

    @classmethod
    def from_dry_run(cls, r: Any) -> GuardrailDryRunOut:
        return cls(
            considered=r.considered,
            evaluated=r.evaluated,
            changed=r.changed,
            outcome_changed=r.outcome_changed,
            denied_before_guardrails=r.denied_before_guardrails,
            skipped=dict(r.skipped),
            current_version=r.current_version,
            flips=[
                GuardrailFlipOut(
                    event_id=f.event_id,
                    decision_id=f.decision_id,
                    seq=f.seq,
                    time=f.time,
                    subject=f.subject,
                    actors=list(f.actors),
                    action=f.action,
                    resource=f.resource,
                    old_outcome=f.old_outcome,
                    new_outcome=f.new_outcome,
                    old_code=f.old_code,
                    new_code=f.new_code,
                    rule_ids=list(f.rule_ids),
                    old_rule_ids=list(f.old_rule_ids),
                    errors=dict(f.errors),
                )
                for f in r.flips
            ],
            rule_errors=r.rule_errors,
        )

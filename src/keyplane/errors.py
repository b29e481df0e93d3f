"""Keyplane's whole error tree, in one place.

Every error has a stable string ``code`` (what clients match on), a human ``message``,
optional structured ``details`` and, where OpenFGA defines one, the numeric ``fga_code``
OpenFGA clients expect (2000 validation, 2002 resolution too complex, 2021 type not found,
2022 relation not found, 2027 invalid tuple, ...). Domain errors carry no HTTP status:
each surface (REST, CLI, MCP) maps them in one table of its own.

::

    KeyplaneError                       internal_error
    ├── ValidationError                 validation_error        (2000)
    │   ├── InvalidModelError           invalid_model           (2036) .errors: list[ModelIssue]
    │   ├── InvalidTupleError           invalid_tuple           (2027)
    │   ├── TypeNotFoundError           type_not_found          (2021)
    │   ├── RelationNotFoundError       relation_not_found      (2022)
    │   ├── ConditionError              condition_error         (2000) missing/ill-typed params
    │   ├── InvalidContinuationToken    invalid_continuation_token (2007)
    │   ├── LimitExceededError          limit_exceeded          (2000)
    │   ├── OwnerRequiredError          owner_required          a non-human identity needs an owner
    │   ├── DelegationWideningError     delegation_widening     a sub-delegation wider than its parent
    │   ├── DelegationInvalidError      invalid_delegation      bad scope, expiry or parties
    │   └── GuardrailInvalidError       invalid_guardrail       a rule that does not compile
    ├── ResolutionTooComplexError       resolution_too_complex  (2002) depth/cycle limits
    ├── NotFoundError                   not_found
    │   ├── StoreNotFoundError          store_not_found         (5002)
    │   ├── ModelNotFoundError          model_not_found         (2001)
    │   ├── IdentityNotFoundError       identity_not_found
    │   ├── DelegationNotFoundError     delegation_not_found
    │   ├── GatewayServerNotFoundError  gateway_server_not_found  no such MCP server in the gateway
    │   ├── GatewayToolNotFoundError    gateway_tool_not_found    no such tool of a gateway server
    │   └── ToolsetNotFoundError        toolset_not_found       a toolset with no tools or members
    ├── ConflictError                   conflict
    │   ├── TupleExistsError            tuple_exists            (2017)
    │   ├── TupleMissingError           tuple_missing           (2017)
    │   ├── StoreExistsError            store_exists
    │   ├── IdentityExistsError         identity_exists
    │   ├── IdentityStateError          identity_state          not allowed in the identity's status
    │   ├── RecommendationChangedError  recommendation_changed  the least-privilege advice moved
    │   ├── NothingToApplyError         nothing_to_apply        no grant to revoke or review
    │   ├── GatewayServerExistsError    gateway_server_exists   a server of that name is registered
    │   ├── ToolDefinitionChangedError  tool_definition_changed the tool changed since it was reviewed
    │   └── ToolRemovedError            tool_removed            the server no longer lists the tool
    ├── AuthenticationError             unauthenticated         no, unknown, expired or revoked key
    ├── PermissionDeniedError           permission_denied       the caller's roles do not allow it
    ├── ConsistencyTimeoutError         consistency_timeout     a revision was not reached in time
    ├── StorageError                    storage_error           the database failed
    ├── ScimError                       scim_error              (keyplane.scim.errors) a SCIM
    │                                                           request failed: .status, .scim_type
    └── TransportError                  transport_error         (SDK) the server could not be reached
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "ConditionError",
    "ConflictError",
    "ConsistencyTimeoutError",
    "DelegationInvalidError",
    "DelegationNotFoundError",
    "DelegationWideningError",
    "GatewayServerExistsError",
    "GatewayServerNotFoundError",
    "GatewayToolNotFoundError",
    "GuardrailInvalidError",
    "IdentityExistsError",
    "IdentityNotFoundError",
    "IdentityStateError",
    "InvalidContinuationToken",
    "InvalidModelError",
    "InvalidTupleError",
    "KeyplaneError",
    "LimitExceededError",
    "ModelIssue",
    "ModelNotFoundError",
    "NotFoundError",
    "NothingToApplyError",
    "OwnerRequiredError",
    "PermissionDeniedError",
    "RecommendationChangedError",
    "RelationNotFoundError",
    "ResolutionTooComplexError",
    "StorageError",
    "StoreExistsError",
    "StoreNotFoundError",
    "ToolDefinitionChangedError",
    "ToolRemovedError",
    "ToolsetNotFoundError",
    "TransportError",
    "TupleExistsError",
    "TupleMissingError",
    "TypeNotFoundError",
    "ValidationError",
    "all_error_classes",
]


class KeyplaneError(Exception):
    """Base of every error Keyplane raises on purpose."""

    code: ClassVar[str] = "internal_error"
    fga_code: ClassVar[int | None] = 4000
    #: set by the HTTP SDK: the server's request id, to quote when reporting a problem
    request_id: str | None = None

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """The error as the ``error`` member of Keyplane's JSON error envelope."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        if self.fga_code is not None:
            out["fga_code"] = self.fga_code
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ValidationError(KeyplaneError):
    """The input is malformed or does not fit the model."""

    code = "validation_error"
    fga_code = 2000


@dataclass(frozen=True, slots=True)
class ModelIssue:
    """One problem found in a model, positioned like the reference implementation.

    ``line`` and ``column`` are 0-based ``(start, end)`` pairs as in openfga/language's test
    data; they are ``None`` when the model came as JSON and carries no positions.
    """

    message: str
    error_type: str | None = None
    line: tuple[int, int] | None = None
    column: tuple[int, int] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.error_type:
            out["error_type"] = self.error_type
        if self.line is not None:
            out["line"] = {"start": self.line[0], "end": self.line[1]}
        if self.column is not None:
            out["column"] = {"start": self.column[0], "end": self.column[1]}
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


class InvalidModelError(ValidationError):
    """An authorization model failed to parse or validate; ``errors`` lists every issue."""

    code = "invalid_model"
    fga_code = 2036

    def __init__(
        self,
        message: str,
        *,
        errors: list[ModelIssue] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.errors: list[ModelIssue] = list(errors or [])
        merged = dict(details or {})
        if self.errors:
            merged.setdefault("errors", [e.to_dict() for e in self.errors])
        super().__init__(message, details=merged)


class InvalidTupleError(ValidationError):
    code = "invalid_tuple"
    fga_code = 2027


class TypeNotFoundError(ValidationError):
    code = "type_not_found"
    fga_code = 2021


class RelationNotFoundError(ValidationError):
    code = "relation_not_found"
    fga_code = 2022


class ConditionError(ValidationError):
    """A condition could not be evaluated: a missing or ill-typed parameter, a bad expression."""

    code = "condition_error"
    fga_code = 2000


class InvalidContinuationToken(ValidationError):
    code = "invalid_continuation_token"
    fga_code = 2007


class LimitExceededError(ValidationError):
    """A request exceeded a configured limit (batch size, page size, payload size...)."""

    code = "limit_exceeded"
    fga_code = 2000


class ResolutionTooComplexError(KeyplaneError):
    """Resolution exceeded the depth limit (default 25) or the breadth limits."""

    code = "resolution_too_complex"
    fga_code = 2002


class NotFoundError(KeyplaneError):
    code = "not_found"
    fga_code: ClassVar[int | None] = None


class StoreNotFoundError(NotFoundError):
    code = "store_not_found"
    fga_code = 5002


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"
    fga_code = 2001


class ConflictError(KeyplaneError):
    code = "conflict"
    fga_code: ClassVar[int | None] = None


class TupleExistsError(ConflictError):
    """A write named a tuple that already exists (and the caller did not ask for idempotence)."""

    code = "tuple_exists"
    fga_code = 2017


class TupleMissingError(ConflictError):
    """A delete named a tuple that does not exist (and the caller did not ask for idempotence)."""

    code = "tuple_missing"
    fga_code = 2017


class StoreExistsError(ConflictError):
    code = "store_exists"
    fga_code: ClassVar[int | None] = None


class IdentityNotFoundError(NotFoundError):
    code = "identity_not_found"


class DelegationNotFoundError(NotFoundError):
    code = "delegation_not_found"


class IdentityExistsError(ConflictError):
    code = "identity_exists"


class IdentityStateError(ConflictError):
    """The operation is not allowed in the identity's status (e.g. reactivating a
    deprovisioned identity)."""

    code = "identity_state"


class OwnerRequiredError(ValidationError):
    """A non-human identity must keep at least one owner (a human or a group)."""

    code = "owner_required"


class DelegationWideningError(ValidationError):
    """A sub-delegation would be wider than its parent; ``details["widening"]`` names how
    (``scope``, ``purposes``, ``expires_at``, ``not_before``, ``depth`` or ``tools``)."""

    code = "delegation_widening"


class DelegationInvalidError(ValidationError):
    """A delegation is malformed: its scope, expiry (missing, past or beyond the store's
    cap) or parties (unknown, inactive or of a kind that may not delegate)."""

    code = "invalid_delegation"


class GuardrailInvalidError(ValidationError):
    """A guardrail does not compile (CEL syntax or type error), names an unknown effect, or
    repeats an id."""

    code = "invalid_guardrail"


class AuthenticationError(KeyplaneError):
    """The caller did not prove who it is: no key, an unknown, expired or revoked key."""

    code = "unauthenticated"
    fga_code: ClassVar[int | None] = None


class PermissionDeniedError(KeyplaneError):
    """The caller is known, but Keyplane's own model does not let it do this."""

    code = "permission_denied"
    fga_code: ClassVar[int | None] = None


class EntitlementNotFoundError(NotFoundError):
    code = "entitlement_not_found"


class EntitlementExistsError(ConflictError):
    code = "entitlement_exists"


class InvalidEntitlementError(ValidationError):
    """An entitlement is malformed: its target (object, relation), owners, risk, maximum
    duration, or its approval policy (a rule that does not compile, an unknown outcome or
    approver)."""

    code = "invalid_entitlement"


class AccessRequestNotFoundError(NotFoundError):
    code = "access_request_not_found"


class AccessRequestStateError(ConflictError):
    """The operation is not allowed in the request's state (e.g. approving a cancelled
    request, revoking a pending one)."""

    code = "access_request_state"


class NotRequestableError(ValidationError):
    """No entitlement makes this access requestable by or for this identity (an agent
    asking for an entitlement agents may not request, a duration beyond its maximum, a
    beneficiary the requester does not own)."""

    code = "not_requestable"


class ApprovalNotAllowedError(PermissionDeniedError):
    """This identity may not decide this request: an agent, the requester or beneficiary
    themselves, or someone who is not among the request's approvers."""

    code = "approval_not_allowed"


class ReviewNotFoundError(NotFoundError):
    code = "review_not_found"


class ReviewStateError(ConflictError):
    """The operation is not allowed in the review campaign's (or item's) state."""

    code = "review_state"


class RecommendationChangedError(ConflictError):
    """A least-privilege recommendation was to be applied as the caller saw it
    (``expected``), but recomputed now it revokes other grants (new use, grants written or
    removed meanwhile): nothing was applied; look again."""

    code = "recommendation_changed"


class NothingToApplyError(ConflictError):
    """The identity's least-privilege recommendation revokes nothing (every grant covers
    observed use): there is nothing to revoke and no review campaign to open."""

    code = "nothing_to_apply"


class DownstreamError(KeyplaneError):
    """A downstream MCP server could not be reached, refused the gateway's credential,
    timed out or answered a protocol error. Surfaces answer it as ``502 Bad Gateway``.
    ``details``: ``server``, ``reason`` (``unreachable`` / ``unauthorized`` / ``timeout`` /
    ``protocol_error`` / ``secret_unreadable`` / ``misconfigured``) and, for a JSON-RPC
    error, ``mcp_code``. The message never contains the server's secret."""

    code = "downstream_unavailable"


class GatewayServerNotFoundError(NotFoundError):
    """The store's gateway has no downstream MCP server of that name."""

    code = "gateway_server_not_found"


class GatewayServerExistsError(ConflictError):
    """A downstream MCP server of that name is already registered in the store."""

    code = "gateway_server_exists"


class GatewayToolNotFoundError(NotFoundError):
    """The server has no tool of that name (never discovered)."""

    code = "gateway_tool_not_found"


class ToolsetNotFoundError(NotFoundError):
    """No toolset of that name: it holds no tool and has no member."""

    code = "toolset_not_found"


class ToolDefinitionChangedError(ConflictError):
    """A tool was to be approved as the caller reviewed it (``expected_digest``), but its
    definition has changed since (a new discovery): nothing was changed; review it again.
    ``details.expected`` and ``details.current`` hold both digests."""

    code = "tool_definition_changed"


class ToolRemovedError(ConflictError):
    """The tool's server no longer lists it (status ``removed``): it cannot be enabled,
    disabled or put in a toolset until a discovery finds it again."""

    code = "tool_removed"


class ConsistencyTimeoutError(KeyplaneError):
    """The process did not catch up with the requested revision within the allowed time."""

    code = "consistency_timeout"
    fga_code: ClassVar[int | None] = None


class StorageError(KeyplaneError):
    code = "storage_error"
    fga_code = 4000


class TransportError(KeyplaneError):
    """The HTTP SDK could not reach the server or read its answer (connection, timeout,
    a response that is not Keyplane's). Raised by :mod:`keyplane.sdk` only."""

    code = "transport_error"
    fga_code: ClassVar[int | None] = None


# SCIM's error lives with SCIM (it carries its HTTP status, part of that protocol); imported
# here so that every process that knows Keyplane's errors knows ``scim_error`` too.
from keyplane.scim.errors import ScimError as ScimError  # noqa: E402


def all_error_classes() -> list[type[KeyplaneError]]:
    """Every error class, for the docs test and the surfaces' mapping tables."""
    seen: list[type[KeyplaneError]] = []
    stack: list[type[KeyplaneError]] = [KeyplaneError]
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen

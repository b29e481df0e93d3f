"""SCIM errors (RFC 7644 §3.12).

A SCIM service provider answers errors with its own JSON message, not Keyplane's envelope::

    {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
     "status": "400", "scimType": "invalidFilter", "detail": "…"}

:class:`ScimError` carries the HTTP ``status`` (unlike Keyplane's domain errors: the status
is part of the SCIM protocol, and a SCIM client reads it from the body too) and the
``scimType`` keyword of RFC 7644 §3.12 Table 9, which is only defined for status 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from keyplane.errors import KeyplaneError

__all__ = ["ERROR_SCHEMA", "SCIM_TYPES", "ScimError"]

ERROR_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:Error"

#: RFC 7644 §3.12 Table 9: the ``scimType`` keywords (all answered with status 400)
SCIM_TYPES: Final = frozenset(
    {
        "invalidFilter",  # the filter syntax was invalid, or an operator/attribute is unsupported
        "tooMany",  # the filter yields too many results to process
        "uniqueness",  # one or more unique attribute values are in use (status 409)
        "mutability",  # the attempted change is incompatible with the attribute's mutability
        "invalidSyntax",  # the request body is not parsable or violates the schema
        "invalidPath",  # the PATCH "path" is invalid or unsupported
        "noTarget",  # the PATCH "path" did not yield an attribute or value to operate on
        "invalidValue",  # a required value is missing or a value is not compatible
        "invalidVers",  # the specified SCIM protocol version is not supported
        "sensitive",  # the request cannot be completed because of sensitive information
    }
)


class ScimError(KeyplaneError):
    """An error a SCIM endpoint answers as RFC 7644 §3.12 prescribes.

    ``status`` is the HTTP status (400 by default; 404, 409, 412, 413, 500, 501 occur too);
    ``scim_type`` one of :data:`SCIM_TYPES` or ``None``; ``message`` is the ``detail``.
    """

    code: ClassVar[str] = "scim_error"
    fga_code: ClassVar[int | None] = None

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        scim_type: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        if scim_type is not None and scim_type not in SCIM_TYPES:
            raise ValueError(f"unknown scimType {scim_type!r}")
        merged = dict(details or {})
        merged.setdefault("status", status)
        if scim_type is not None:
            merged.setdefault("scimType", scim_type)
        super().__init__(message, details=merged)
        self.status = status
        self.scim_type = scim_type

    @property
    def detail(self) -> str:
        return self.message

    def to_scim(self) -> dict[str, Any]:
        """The SCIM error message (``status`` is a string, as RFC 7644 §3.12 shows)."""
        out: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type is not None:
            out["scimType"] = self.scim_type
        out["detail"] = self.message
        return out

    def __repr__(self) -> str:
        return (
            f"ScimError(status={self.status}, scim_type={self.scim_type!r}, "
            f"message={self.message!r})"
        )

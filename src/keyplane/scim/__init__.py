"""SCIM 2.0 (RFC 7643 core schema, RFC 7644 protocol): the pure parts, no I/O.

* :mod:`keyplane.scim.errors` — :class:`~keyplane.scim.errors.ScimError` and its SCIM
  error message (RFC 7644 §3.12);
* :mod:`keyplane.scim.schemas` — the User, Group, EnterpriseUser and draft Agent schemas,
  the resource types, the service provider configuration, attribute look-up (RFC 7643
  §§2–8);
* :mod:`keyplane.scim.filter` — the filter language and PATCH paths (RFC 7644 §3.4.2.2,
  §3.5.2);
* :mod:`keyplane.scim.patch` — PATCH operations (RFC 7644 §3.5.2);
* :mod:`keyplane.scim.projection` — ``attributes`` / ``excludedAttributes`` and ``sortBy``
  (RFC 7644 §3.4.2.3, §3.4.2.5, §3.9).

Storage, the mapping onto identities and tuples (:mod:`keyplane.service.scim`) and the HTTP
routes (:mod:`keyplane.api.scim`) build on these. This package imports nothing heavy:
:mod:`keyplane.errors` imports :mod:`keyplane.scim.errors` so that every process knows the
``scim_error`` code.
"""

# keyplane.errors imports keyplane.scim.errors at its end; loading it first keeps the
# import order one-way whichever module a process imports first.
import keyplane.errors as _errors  # noqa: F401

"""The OpenFGA-compatible API: OpenFGA's HTTP API shape (``/stores…``) over Keyplane's services.

OpenFGA SDKs, the ``fga`` CLI and existing OpenFGA models work unchanged against
``keyplane serve``: send a Keyplane API key as ``Authorization: Bearer <key>`` (the SDKs'
``api_token`` credentials). A pure translation — :mod:`~keyplane.api.openfga.schemas`
(OpenFGA's request/response JSON), :mod:`~keyplane.api.openfga.routes` (one service call per
handler), :mod:`~keyplane.api.openfga.encode` (results → OpenFGA JSON) and
:mod:`~keyplane.api.openfga.errors` (OpenFGA's error codes and statuses). What is and is not
supported: ``docs/openfga-compat.md``.
"""

from keyplane.api.openfga.routes import router

__all__ = ["router"]

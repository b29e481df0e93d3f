"""The conformance suites through Keyplane's REST API: the ``rest`` runner.

Every runner (one per YAML test) gets a fresh store on one shared app —
:func:`keyplane.api.create_app` over a temporary SQLite database, driven over HTTP
in-process (Starlette's TestClient: httpx through the full ASGI stack — middleware,
routing, validation, error envelope) with a real admin key from
:func:`keyplane.service.keys.bootstrap_admin`. An error response becomes
:class:`RestError`, carrying the envelope's ``details.fga_code`` for the harness to match.
Writes return a revision that every later query passes as ``at_least_as_fresh``. Models
are written through the OpenFGA-compatible endpoint (kept exactly as written; see
:meth:`RestRunner.write_model`), tuples and queries through ``/v1``.

Passing here with the same counts as the ``engine`` runner shows the REST surface adds and
loses nothing.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.testclient import TestClient

__all__ = ["RestError", "RestRunner"]

_SHARED: TestClient | None = None


class RestError(Exception):
    """An error envelope, with the numeric code the harness compares."""

    def __init__(self, status: int, error: Mapping[str, Any]) -> None:
        super().__init__(f"{status} {error.get('code')}: {error.get('message')}")
        details = error.get("details") or {}
        self.fga_code: int | None = details.get("fga_code")
        self.code = error.get("code")


def _client() -> TestClient:
    global _SHARED
    if _SHARED is None:
        from keyplane.api import create_app
        from keyplane.config import Settings
        from keyplane.service.context import Services
        from keyplane.service.keys import bootstrap_admin

        tmp = tempfile.mkdtemp(prefix="kp-conformance-")
        svc = Services.open(Settings(database_url=f"sqlite:///{tmp}/rest.db", poll_interval=0))
        _, key = bootstrap_admin(svc)
        client = TestClient(create_app(svc), headers={"Authorization": f"Bearer {key}"})
        client.__enter__()  # one event loop (and app lifespan) for every request, not one each

        def _close() -> None:
            client.__exit__(None, None, None)
            svc.close()
            shutil.rmtree(tmp, ignore_errors=True)

        atexit.register(_close)
        _SHARED = client
    return _SHARED


class RestRunner:
    def __init__(self) -> None:
        self.http = _client()
        self.store = self._post("/v1/stores", {"name": "conformance"})["id"]
        self.revision = 0

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        # allow_nan: the ABAC suite sends ±inf in contexts (its gRPC origin can); on the wire
        # that is JSON's non-standard `Infinity`, which the server reads and the engine
        # must then refuse (2000) — as the suite expects
        r = self.http.post(
            path,
            content=json.dumps(body, allow_nan=True),
            headers={"content-type": "application/json"},
        )
        if r.status_code >= 400:
            body = r.json()  # /v1's envelope, or the OpenFGA-compatible API's error
            raise RestError(r.status_code, body.get("error", body))
        return r.json()

    def _query(self, op: str, body: dict[str, Any], contextual: Sequence[Any]) -> Any:
        body["contextual_tuples"] = [dict(t) for t in contextual]
        body["at_least_as_fresh"] = self.revision
        return self._post(f"/v1/stores/{self.store}/{op}", body)

    def write_model(self, dsl: str) -> None:
        # Through the OpenFGA-compatible endpoint, which stores the model exactly as the
        # suite wrote it: /v1 adds the built-in base model's identity types (human, group,
        # agent, ...; docs/identities.md), which the suite's "type not found" cases would
        # notice. The tuple writes and every query below go through /v1.
        from keyplane.graph.language import load_model

        self.revision = 0
        self._post(f"/stores/{self.store}/authorization-models", load_model(dsl))

    def write_tuples(self, tuples: Sequence[Mapping[str, Any]]) -> None:
        res = self._post(
            f"/v1/stores/{self.store}/tuples/write", {"writes": [dict(t) for t in tuples]}
        )
        self.revision = res["revision"]

    def check(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[Any],
    ) -> bool:
        body = {"user": user, "relation": relation, "object": object, "context": context}
        return bool(self._query("check", body, contextual_tuples)["allowed"])

    def list_objects(
        self,
        user: str,
        relation: str,
        object_type: str,
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[Any],
    ) -> list[str]:
        body = {"user": user, "relation": relation, "type": object_type, "context": context}
        return list(self._query("list-objects", body, contextual_tuples)["objects"])

    def list_users(
        self,
        object: str,
        relation: str,
        filters: Sequence[str],
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[Any],
    ) -> list[str]:
        body = {
            "object": object,
            "relation": relation,
            "filters": list(filters),
            "context": context,
        }
        return list(self._query("list-users", body, contextual_tuples)["users"])

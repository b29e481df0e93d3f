"""Liveness and readiness probes, served without authentication.

* ``GET /healthz`` — the process answers HTTP (liveness: restart it if this fails).
* ``GET /readyz`` — the database answers and the default store's graph is loaded
  (readiness: send it traffic only when this is 200; 503 with the failing check otherwise).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from keyplane.api.deps import ServicesDep
from keyplane.api.schemas import HealthResponse, ReadinessResponse
from keyplane.service import observability

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="healthz", summary="Liveness")
async def healthz() -> HealthResponse:
    """Always `{"status": "ok"}` while the process serves HTTP. Touches nothing else."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness",
    response_model=ReadinessResponse,
    responses={503: {"model": ReadinessResponse, "description": "Not ready; see `checks`."}},
)
def readyz(svc: ServicesDep) -> ReadinessResponse | JSONResponse:
    """`{"status": "ok", "checks": {...}}` when the database answers and graphs load."""
    checks = observability.readiness(svc)
    ok = all(v == "ok" for v in checks.values())
    body = ReadinessResponse(status="ok" if ok else "unavailable", checks=checks)
    if ok:
        return body
    return JSONResponse(body.model_dump(), status_code=503)

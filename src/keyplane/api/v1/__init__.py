"""Keyplane's own REST API, version 1: ``/v1/stores/{store}/…`` (and ``/v1/keys``).

Each module is one area's router; :data:`router` gathers them under ``/v1``.
"""

from __future__ import annotations

from fastapi import APIRouter

from keyplane.api.v1 import (
    access_requests,
    credentials,
    decisions,
    delegations,
    entitlements,
    gateway,
    guardrails,
    identities,
    imports,
    keys,
    ledger,
    models,
    policy,
    posture,
    queries,
    reviews,
    signing_keys,
    stores,
    tokens,
    tuples,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1")
router.include_router(stores.router)
router.include_router(models.router)
router.include_router(tuples.router)
router.include_router(queries.router)
router.include_router(keys.router)
router.include_router(ledger.router)
router.include_router(decisions.router)
router.include_router(delegations.router)
router.include_router(guardrails.router)
router.include_router(identities.router)
router.include_router(policy.router)
router.include_router(signing_keys.router)
router.include_router(credentials.router)
router.include_router(tokens.router)
router.include_router(entitlements.router)
router.include_router(access_requests.router)
router.include_router(reviews.router)
router.include_router(posture.router)
router.include_router(gateway.router)
router.include_router(imports.router)

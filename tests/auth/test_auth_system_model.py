"""The system model is an ordinary model decided by Keyplane's ordinary engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from keyplane.config import Settings
from keyplane.embedded import Keyplane
from keyplane.service import access, models, stores
from keyplane.service.auth import SYSTEM_STORE_ID, Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate
from keyplane.service.system import GLOBAL_ROLES, SYSTEM_MODEL, SYSTEM_MODEL_DSL

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_security_doc_shows_the_system_model_and_every_role() -> None:
    text = DOCS.read_text()
    assert SYSTEM_MODEL_DSL.strip() in text, "docs/security.md must show the system model as is"
    for role in (*GLOBAL_ROLES, "writer:<store>", "reader:<store>"):
        assert f"`{role}`" in text
    assert "`KEYPLANE_KEY_CACHE_TTL`" in text


def test_grants_are_explained_by_the_engine(
    svc: Services, admin: Caller, mint: Callable[..., tuple[str, str]]
) -> None:
    key_id, _ = mint(f"writer:{svc.settings.default_store}")
    store = f"store:{svc.settings.default_store}"
    ex = access.explain(svc, admin, SYSTEM_STORE_ID, f"key:{key_id}", "can_write_tuples", store)
    assert ex.allowed
    assert f"{store}#writer@key:{key_id}" in ex.render()
    denied = access.explain(svc, admin, SYSTEM_STORE_ID, f"key:{key_id}", "can_delete_store", store)
    assert not denied.allowed
    # list objects over the system model: the stores a key may write to
    objs = access.list_objects(
        svc, admin, SYSTEM_STORE_ID, f"key:{key_id}", "can_write_tuples", "store"
    )
    assert list(objs) == [store]


def test_an_outdated_system_model_is_upgraded(storage_url: str) -> None:
    settings = Settings(database_url=storage_url, poll_interval=0.0)
    with Keyplane.open(settings=settings) as kp:
        # as if written by an older Keyplane: a model without can_audit
        older = kp.services.storage.write_model(
            SYSTEM_STORE_ID,
            {**SYSTEM_MODEL, "type_definitions": SYSTEM_MODEL["type_definitions"][:1]},
        )
    with Keyplane.open(settings=settings) as kp:
        from keyplane.service.keys import bootstrap_admin

        _, secret = bootstrap_admin(kp.services)
        admin = authenticate(kp.services, secret)
        stores.list_stores(kp.services, admin)
        latest = models.read_model(kp.services, admin, SYSTEM_STORE_ID)
        assert latest.id != older.id and latest.model == SYSTEM_MODEL

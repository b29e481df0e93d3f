"""The SCIM storage contract (ScimStore, migration 0013) on SQLite and PostgreSQL: the
SCIM rows and the identity-plane change commit together or not at all, an empty plan
writes nothing, unique keys clash as ConflictError, rows go with their store."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane.errors import ConflictError, IdentityExistsError, StoreNotFoundError
from keyplane.graph.tuples import Tuple
from keyplane.policy.records import Identity
from keyplane.storage import Storage
from keyplane.storage.base import PolicyWrite, ScimResource, ScimTxReader, ScimWrite
from keyplane.storage.scim_sql import SCIM_COLS

S = "scimstore"


def _user(id: str, key: str, version: int = 1) -> ScimResource:
    data = {"id": id, "userName": key}
    return ScimResource(S, "User", id, None, key.lower(), f"human:{id}", data, version, 1.0, 2.0)


def _human(id: str) -> Identity:
    return Identity(S, "human", id, id, {}, "active", (), False, "scim", 1.0, 1.0, None, 0)


@pytest.fixture
def st(storage: Storage) -> Storage:
    storage.create_store("scim", store_id=S)
    return storage


def test_rows_and_projection_commit_together(st: Storage) -> None:
    member = Tuple("group:eng", "member", "human:ann")
    done = st.write_scim(
        S,
        lambda r: ScimWrite(
            [_user("ann", "Ann")], (), PolicyWrite(new_identities=[_human("ann")],
                                                   tuple_writes=[member]),
        ),
    )  # fmt: skip
    assert done.changed and done.revision == st.store_head(S).revision
    assert done.resources[0].revision == done.revision
    assert done.policy is not None and done.policy.identities[0].node == "human:ann"
    got = st.get_scim(S, "User", "ann")
    assert got is not None and got.data == {"id": "ann", "userName": "Ann"}
    assert got.unique_key == "ann" and got.node == "human:ann" and got.version == 1
    assert st.get_identity(S, "human", "ann") is not None
    assert [str(t) for t in st.read_tuples(S, object="group:eng").items] == [str(member)]
    assert [(c.operation, c.revision) for c in st.read_changes(S).changes] == [
        ("write", done.revision)
    ]


def test_a_failing_projection_writes_no_row(st: Storage) -> None:
    st.write_policy(S, lambda r: PolicyWrite(new_identities=[_human("bob")]))
    revision = st.store_head(S).revision
    with pytest.raises(IdentityExistsError):
        st.write_scim(
            S, lambda r: ScimWrite([_user("bob", "bob")], (),
                                   PolicyWrite(new_identities=[_human("bob")])),
        )  # fmt: skip
    assert st.get_scim(S, "User", "bob") is None
    assert st.store_head(S).revision == revision


def test_unique_keys_clash(st: Storage) -> None:
    st.write_scim(S, lambda r: ScimWrite([_user("cy", "Cy")]))
    with pytest.raises(ConflictError):
        st.write_scim(
            S,
            lambda r: ScimWrite(
                [_user("cy-2", "CY")],
                (),
                PolicyWrite(tuple_writes=[Tuple("group:g", "member", "human:x")]),
            ),
        )
    assert st.get_scim(S, "User", "cy-2") is None
    assert st.read_tuples(S, object="group:g").items == []
    # the same row may keep its key; groups have none (NULLs never clash)
    st.write_scim(S, lambda r: ScimWrite([_user("cy", "cy", version=2)]))
    g = [ScimResource(S, "Group", n, None, None, f"group:{n}", {"id": n}, 1, 1.0, 1.0)
         for n in ("a", "b")]  # fmt: skip
    st.write_scim(S, lambda r: ScimWrite(g))
    assert [x.id for x in st.list_scim(S, "Group")] == ["a", "b"]


def test_empty_plan_writes_nothing_and_reads_in_the_transaction(st: Storage) -> None:
    st.write_scim(S, lambda r: ScimWrite([_user("dee", "Dee")]))
    revision = st.store_head(S).revision
    seen: list[object] = []

    def plan(r: ScimTxReader) -> ScimWrite:
        seen.extend([r.scim("User", "dee"), r.scim_by_key("User", "dee"), r.scim_all("User")])
        seen.append(r.identity("human", "dee"))
        return ScimWrite()

    done = st.write_scim(S, plan)
    assert not done.changed and done.revision == revision
    assert st.store_head(S).revision == revision
    one = st.get_scim(S, "User", "dee")
    assert seen == [one, one, [one], None]


def test_deletes_and_store_removal(st: Storage) -> None:
    st.write_scim(S, lambda r: ScimWrite([_user("eve", "eve"), _user("fox", "fox")]))
    st.write_scim(S, lambda r: ScimWrite(deleted=[("User", "eve")]))
    assert [x.id for x in st.list_scim(S, "User")] == ["fox"]
    st.delete_store(S)
    st.create_store("again", store_id=S)
    assert st.list_scim(S, "User") == []
    with pytest.raises(StoreNotFoundError):
        st.get_scim("nope", "User", "x")
    with pytest.raises(StoreNotFoundError):
        st.list_scim("nope", "User")
    with pytest.raises(StoreNotFoundError):
        st.write_scim("nope", lambda r: ScimWrite([_user("x", "x")]))


def test_migration_0013_has_the_same_columns_on_both_backends(storage: Storage) -> None:
    sqlite = type(storage).__name__ == "SQLiteStorage"

    def columns(cur: Any) -> list[tuple[str, str, str | None]]:
        if sqlite:
            rows = cur.execute("PRAGMA table_info(scim_resources)").fetchall()
            return [(r[1], r[2].lower(), None) for r in rows]
        cur.execute(
            "SELECT column_name, data_type, collation_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'scim_resources'"
            " ORDER BY ordinal_position"
        )
        return [(r[0], r[1], r[2]) for r in cur.fetchall()]

    found = storage._read_tx(columns)  # type: ignore[attr-defined]
    assert [c[0] for c in found] == [c.strip() for c in SCIM_COLS.split(",")]
    for name, kind, collation in found:
        if name.endswith("_at"):  # float8 in PostgreSQL (a float4 would lose seconds)
            assert kind == ("real" if sqlite else "double precision"), (name, kind)
        if name in ("store_id", "resource_type", "id", "unique_key", "node"):
            assert collation in (None, "C"), (name, collation)

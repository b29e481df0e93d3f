"""Identity source imports through the service layer, on SQLite and PostgreSQL, with a
tiny importer registered by the tests (``demo``): the first import (model fragment,
identities, tuples, events), idempotence, removal on re-import (deprovisioning only what
the import created), resolution to the identity provider's humans by e-mail and to linked
identities, dry runs and bad exports writing nothing, batches, progress, list_imports."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from importers.demo_importer import export, register_demo
from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import (
    InvalidModelError,
    InvalidTupleError,
    PermissionDeniedError,
    ValidationError,
)
from keyplane.service import identities as I
from keyplane.service import imports as IM
from keyplane.service.auth import Caller
from keyplane.service.context import Services

S = "imports"
NOW = 1_800_000_000.0

register_demo()


class Ops:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.me = Caller.system_caller()

    def imp(self, data: Any, **kw: Any) -> Any:
        return IM.import_source(self.svc, self.me, S, "demo", data, **kw)

    def identity(self, node: str) -> Any:
        kind, _, id_ = node.partition(":")
        return self.svc.storage.get_identity(S, kind, id_)

    def tuples(self, object: str | None = None) -> set[str]:
        page = self.svc.storage.read_tuples(S, object=object, page_size=1000)
        return {str(t) for t in page.items}

    def all_tuples(self) -> set[str]:
        out: set[str] = set()
        for t in ("demo_repo", "demo_org", "service_account"):
            page = self.svc.storage.read_tuples(S, object=f"{t}:", page_size=1000)
            out |= {str(x) for x in page.items}
        return out

    def events(self, type: str | None = None) -> list[Any]:
        evs = self.svc.storage.read_events(S, limit=10_000)
        return [e for e in evs if type is None or e.type == type]

    def revision(self) -> int:
        return self.svc.storage.current_revision(S)

    def check(self, user: str, relation: str, obj: str) -> bool:
        from keyplane.service.access import check

        return bool(check(self.svc, self.me, S, user, relation, obj).allowed)


@pytest.fixture
def ops(storage_url: str) -> Iterator[Ops]:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=S)
    kp = Keyplane.open(settings=settings, clock=FixedClock(NOW))
    try:
        yield Ops(kp.services)
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


# ------------------------------------------------------------------------------ first import


def test_first_import_writes_model_identities_tuples_and_events(ops: Ops) -> None:
    seen: list[tuple[str, int, int]] = []
    r = ops.imp(export(), progress=lambda *a: seen.append(a))
    assert (r.source, r.scope, r.dry_run, r.model_changed) == ("demo", "acme", False, True)
    assert r.identities.to_json() == {"added": 5, "changed": 0, "removed": 0}
    assert r.tuples.to_json() == {"added": 10, "changed": 0, "removed": 0}
    assert sorted(r.identities_added) == [
        "human:demo-alice", "human:demo-bob", "human:demo-carol",
        "service_account:demo-bot-ci", "service_account:demo-bot-deploy",
    ]  # fmt: skip
    assert r.revision == ops.revision()

    alice = ops.identity("human:demo-alice")
    assert alice.source == "import:demo" and alice.status == "active"
    assert alice.attributes == {"emails": ["alice@acme.test"], "links": {"demo": "alice"}}
    ci = ops.identity("service_account:demo-bot-ci")
    assert ci.owners == ("human:demo-alice",) and not ci.orphaned
    assert ci.attributes["links"] == {"demo": "bot/ci"}
    deploy = ops.identity("service_account:demo-bot-deploy")
    assert deploy.owners == ("group:demo-admins#member",)
    assert "service_account:demo-bot-ci#owner@human:demo-alice" in ops.tuples(
        "service_account:demo-bot-ci"
    )
    assert ops.tuples("demo_repo:acme/api") == {
        "demo_repo:acme/api#org@demo_org:acme",
        "demo_repo:acme/api#writer@human:demo-alice",
        "demo_repo:acme/api#writer@service_account:demo-bot-ci",
        "demo_repo:acme/api#reader@human:demo-carol",
    }
    # the model fragment is in the store's model and the graph answers with it
    assert ops.check("human:demo-bob", "reader", "demo_repo:acme/api")  # member from org
    assert ops.check("service_account:demo-bot-ci", "reader", "demo_repo:acme/api")
    assert not ops.check("service_account:demo-bot-deploy", "writer", "demo_repo:acme/api")

    # events: the model, per identity, the tuples, then one source.imported at the end
    model_ev = ops.events("model.written")
    assert len(model_ev) == 1 and model_ev[0].details["import"] == "demo"
    created = ops.events("identity.created")
    assert {e.resource for e in created} == set(r.identities_added)
    assert all(e.details["import"] == "demo" for e in created)
    written = ops.events("tuples.written")
    assert sum(len(e.details["written"]) for e in written) == 10
    imported = ops.events("source.imported")
    assert len(imported) == 1
    ev = imported[0]
    assert ev.details == {
        "source": "demo", "scope": "acme", "digest": r.digest,
        "identities": {"added": 5, "changed": 0, "removed": 0},
        "tuples": {"added": 10, "changed": 0, "removed": 0},
    }  # fmt: skip
    assert ev.outcome == "ok" and ev.caller == "system"
    changes = [e for e in ops.events() if not e.type.startswith("decision.")]
    assert changes[-1].type == "source.imported"

    # progress: every phase reported, ending complete
    phases = {p for p, _, _ in seen}
    assert {"plan", "model", "identities", "tuples", "deprovision"} <= phases
    last = {p: (d, t) for p, d, t in seen}
    assert last["identities"] == (5, 5) and last["tuples"] == (10, 10)

    [rec] = IM.list_imports(ops.svc, ops.me, S)
    assert (rec.source, rec.scope, rec.digest, rec.revision) == (
        "demo",
        "acme",
        r.digest,
        r.revision,
    )
    assert (rec.identity_count, rec.tuple_count) == (5, 10)
    assert rec.identities == r.identities and rec.tuples == r.tuples
    assert (rec.imported_at, rec.imported_by) == (NOW, "system")
    stored = ops.svc.storage.get_import(S, "demo", "acme")
    assert stored is not None and stored.identities["human:demo-alice"] == "alice"
    assert stored.record() == rec


def test_reimporting_the_same_export_changes_nothing(ops: Ops) -> None:
    first = ops.imp(export())
    rev = ops.revision()
    n_events = len(ops.events())
    again = ops.imp(copy.deepcopy(export()))
    assert again.identities.total == 0 and again.tuples.total == 0 and not again.model_changed
    assert again.digest == first.digest and again.revision == rev
    assert ops.revision() == rev  # nothing written: no revision
    new = ops.events()[n_events:]
    assert [e.type for e in new] == ["source.imported"]
    assert new[0].details["identities"] == {"added": 0, "changed": 0, "removed": 0}
    assert new[0].details["tuples"] == {"added": 0, "changed": 0, "removed": 0}
    [rec] = IM.list_imports(ops.svc, ops.me, S)
    assert rec.revision == first.revision  # the record is untouched too


def test_reimport_removes_what_disappeared(ops: Ops) -> None:
    ops.imp(export())
    data = export(
        users=[{"login": "alice", "email": "alice@acme.test", "name": "Alice A."}],
        bots=[{"name": "ci", "owner": "alice@acme.test"}],
        repos=[{"name": "api", "writers": ["alice"]}],
    )
    r = ops.imp(data)
    assert r.identities.to_json() == {"added": 0, "changed": 1, "removed": 3}
    assert set(r.identities_removed) == {
        "human:demo-bob",
        "human:demo-carol",
        "service_account:demo-bot-deploy",
    }
    assert r.identities_changed == ("human:demo-alice",)
    assert ops.identity("human:demo-alice").display_name == "Alice A."
    for gone in ("human:demo-bob", "human:demo-carol", "service_account:demo-bot-deploy"):
        assert ops.identity(gone).status == "deprovisioned"
    assert ops.identity("service_account:demo-bot-ci").status == "active"
    assert ops.tuples("demo_repo:acme/api") == {
        "demo_repo:acme/api#org@demo_org:acme",
        "demo_repo:acme/api#writer@human:demo-alice",
    }
    assert ops.tuples("demo_repo:acme/web") == set()
    assert not ops.check("service_account:demo-bot-ci", "writer", "demo_repo:acme/api")
    deprov = ops.events("identity.deprovisioned")
    assert {e.resource for e in deprov} == set(r.identities_removed)
    assert all("gone from the demo import of acme" in e.details["reason"] for e in deprov)
    assert ops.events("identity.updated")[-1].details["changed"] == ["display_name"]
    rec = ops.svc.storage.get_import(S, "demo", "acme")
    assert rec is not None
    assert set(rec.identities) == {"human:demo-alice", "service_account:demo-bot-ci"}


def test_removed_owner_orphans_what_it_owned(ops: Ops) -> None:
    ops.imp(export())
    # alice leaves the source: deprovisioned, so ci (owned by her alone) is orphaned
    users = [u for u in export()["users"] if u["login"] != "alice"]
    repos = [{"name": "web", "writers": ["bob"]}]
    r = ops.imp(export(users=users, bots=[{"name": "ci"}], repos=repos))
    # ci is still planned, now owned by the default group: an owner change, not an orphan
    assert "service_account:demo-bot-ci" in r.identities_changed
    ci = ops.identity("service_account:demo-bot-ci")
    assert ci.owners == ("group:demo-admins#member",) and not ci.orphaned
    assert ops.identity("human:demo-alice").status == "deprovisioned"


def test_resolution_to_idp_humans_by_email_and_to_linked_identities(ops: Ops) -> None:
    svc, me = ops.svc, ops.me
    # alice comes from the identity provider (SCIM), the CI agent is linked by hand
    I.create_identity(
        svc, me, S, "human", "alice", source="scim",
        attributes={"emails": ["alice@acme.test"], "userName": "alice@acme.test"},
    )  # fmt: skip
    I.create_identity(
        svc, me, S, "agent", "ci-agent", owners=["human:alice"],
        attributes={"links": {"demo": "bot/ci"}},
    )  # fmt: skip
    before_alice = ops.identity("human:alice")
    r = ops.imp(export())
    assert "human:demo-alice" not in r.identities_added
    assert "service_account:demo-bot-ci" not in r.identities_added
    assert ops.identity("human:demo-alice") is None
    assert ops.tuples("demo_repo:acme/api") == {
        "demo_repo:acme/api#org@demo_org:acme",
        "demo_repo:acme/api#writer@human:alice",
        "demo_repo:acme/api#writer@agent:ci-agent",
        "demo_repo:acme/api#reader@human:demo-carol",
    }
    # a path that crosses systems: the IdP's human, through the imported org membership
    assert ops.check("human:alice", "reader", "demo_repo:acme/web")
    # the resolved identities are never touched (not updated, not recorded)
    assert ops.identity("human:alice") == before_alice
    rec = svc.storage.get_import(S, "demo", "acme")
    assert rec is not None
    assert "human:alice" not in rec.identities and "agent:ci-agent" not in rec.identities

    # alice and the bot leave the export: their tuples go, the identities stay as they are
    users = [u for u in export()["users"] if u["login"] != "alice"]
    r2 = ops.imp(export(users=users, bots=[], repos=[{"name": "web", "writers": ["bob"]}]))
    assert "human:alice" not in r2.identities_removed
    assert ops.identity("human:alice").status == "active"
    assert ops.identity("agent:ci-agent").status == "active"
    assert not ops.check("human:alice", "reader", "demo_repo:acme/web")


def test_dry_run_writes_nothing(ops: Ops) -> None:
    rev, n = ops.revision(), len(ops.events())
    dry = ops.imp(export(), dry_run=True)
    assert dry.dry_run and dry.model_changed and dry.identities.added == 5
    assert dry.tuples.added == 10 and dry.revision == rev and dry.batches == 0
    assert ops.revision() == rev and len(ops.events()) == n
    assert ops.svc.storage.latest_model(S) is None
    assert IM.list_imports(ops.svc, ops.me, S) == []
    real = ops.imp(export())
    assert real.identities == dry.identities and real.tuples == dry.tuples
    # a dry run of a change shows it and leaves it undone
    smaller = export(repos=[{"name": "api", "writers": ["alice"]}])
    rev = ops.revision()
    d2 = ops.imp(smaller, dry_run=True)
    assert (
        d2.tuples.removed == 5 and "demo_repo:acme/web#writer@human:demo-bob" in d2.tuples_removed
    )
    assert ops.revision() == rev
    assert "demo_repo:acme/web#writer@human:demo-bob" in ops.tuples("demo_repo:acme/web")


def test_bad_export_names_the_field_and_writes_nothing(ops: Ops) -> None:
    ops.imp(export())
    rev, n = ops.revision(), len(ops.events())
    bad = export(repos=[{"name": "api", "writers": ["alice", "mallory"]}])
    with pytest.raises(ValidationError) as exc:
        ops.imp(bad)
    assert exc.value.details["path"] == "repos[0].writers[1]"
    assert "repos[0].writers[1]: unknown user 'mallory'" in exc.value.message
    with pytest.raises(ValidationError) as exc2:
        ops.imp(export(users=[{"login": 7}]))
    assert exc2.value.details["path"] == "users[0].login"
    with pytest.raises(ValidationError):
        ops.imp(["not", "an", "object"])
    assert ops.revision() == rev
    failed = ops.events()[n:]
    assert [e.type for e in failed] == ["source.imported"] * 3
    assert all(e.outcome == "error" and list(e.reasons) == ["validation_error"] for e in failed)
    with pytest.raises(ValidationError) as unknown:
        IM.import_source(ops.svc, ops.me, S, "nosuch", {})
    assert "unknown import source 'nosuch'" in unknown.value.message


def test_the_users_own_model_wins_and_a_clash_writes_nothing(ops: Ops) -> None:
    from keyplane.service.models import write_model

    # the user's demo_repo has its own writer, narrower: kept as the user wrote it, so the
    # import's service-account writers do not fit — refused before anything is written
    write_model(
        ops.svc, ops.me, S,
        "model\n  schema 1.1\ntype demo_repo\n  relations\n    define writer: [human]\n",
    )  # fmt: skip
    rev = ops.revision()
    with pytest.raises(InvalidTupleError) as exc:
        ops.imp(export())
    assert exc.value.details["tuple"] == "demo_repo:acme/api#writer@service_account:demo-bot-ci"
    assert ops.identity("human:demo-alice") is None
    assert ops.revision() == rev
    # a compatible user model: the fragment only adds what is missing
    write_model(
        ops.svc, ops.me, S,
        "model\n  schema 1.1\ntype demo_org\ntype demo_repo\n  relations\n    define reader: [human, service_account]"
        " or writer\n    define writer: [human, service_account]\n    define org: [demo_org]\n"
        "    define audit: [human]\n",
    )  # fmt: skip
    r = ops.imp(export())
    assert r.model_changed  # demo_org#member was missing
    model = ops.svc.storage.latest_model(S)
    assert model is not None
    repo = next(t for t in model.model["type_definitions"] if t["type"] == "demo_repo")
    assert "audit" in repo["relations"]  # kept
    assert not ops.check("human:demo-bob", "reader", "demo_repo:acme/api")  # no member from org


def test_invalid_fragment_is_invalid_model(ops: Ops) -> None:
    from keyplane.importers.base import ImportPlan, register

    def broken(data: Any, state: Any) -> ImportPlan:
        return ImportPlan("broken", "x", model="type t\n  relations\n    define r: [nosuchtype]\n")

    register("broken", broken)
    with pytest.raises(InvalidModelError):
        IM.import_source(ops.svc, ops.me, S, "broken", {})
    assert ops.svc.storage.latest_model(S) is None


def test_batches_and_identity_of_another_source(ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(IM, "BATCH_SIZE", 2)
    # a planned id already taken by an identity of another source: left as it is
    I.create_identity(ops.svc, ops.me, S, "human", "demo-carol", source="api")
    r = ops.imp(export())
    assert r.identities.added == 4 and "human:demo-carol" not in r.identities_added
    assert any("human:demo-carol exists (source api)" in w for w in r.warnings)
    assert ops.identity("human:demo-carol").source == "api"
    # model + 2 identity batches + 5 tuple batches + the record
    assert r.batches == 1 + 2 + 5 + 1
    assert len(ops.events("tuples.written")) == 5
    assert ops.tuples("demo_repo:acme/api") >= {"demo_repo:acme/api#reader@human:demo-carol"}
    # never deprovisioned by a later import
    users = [u for u in export()["users"] if u["login"] != "carol"]
    ops.imp(export(users=users, repos=[]))
    assert ops.identity("human:demo-carol").status == "active"


def test_import_needs_import_sources_permission(ops: Ops) -> None:
    from keyplane.service.keys import create_key

    _, reader_secret = create_key(ops.svc, ops.me, owner="r", roles=[f"reader:{S}"])
    from keyplane.service.keys import authenticate

    reader = authenticate(ops.svc, reader_secret)
    with pytest.raises(PermissionDeniedError):
        IM.import_source(ops.svc, reader, S, "demo", export())
    assert IM.list_imports(ops.svc, reader, S) == []
    refused = ops.events("source.imported")
    assert refused and refused[-1].outcome == "deny"


def test_an_installed_importer_is_found_by_its_entry_point(
    ops: Ops, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyplane.importers.base import IMPORTERS, get_importer

    # a real distribution on sys.path: a module and its entry point in the group
    (tmp_path / "kp_plugdemo.py").write_text(
        "from keyplane.importers.base import ImportPlan\n"
        "def plan(data, state):\n"
        "    p = ImportPlan('plugdemo', data['scope'])\n"
        "    p.identity(state, 'human', data['who'])\n"
        "    return p\n"
    )
    info = tmp_path / "kp_plugdemo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kp-plugdemo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[keyplane.importers]\nplugdemo = kp_plugdemo:plan\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(IMPORTERS, "plugdemo", raising=False)
    assert get_importer("plugdemo").__module__ == "kp_plugdemo"
    r = IM.import_source(ops.svc, ops.me, S, "plugdemo", {"scope": "x", "who": "pat"})
    assert r.identities_added == ("human:plugdemo-pat",)
    monkeypatch.delitem(IMPORTERS, "plugdemo")


def test_an_identity_back_at_the_source_stays_deprovisioned(ops: Ops) -> None:
    ops.imp(export())
    users = [u for u in export()["users"] if u["login"] != "bob"]
    ops.imp(export(users=users, repos=[]))
    assert ops.identity("human:demo-bob").status == "deprovisioned"
    r = ops.imp(export())
    assert r.identities.added == 0 and "human:demo-bob" not in r.identities_changed
    assert any("human:demo-bob was deprovisioned" in w for w in r.warnings)
    assert ops.identity("human:demo-bob").status == "deprovisioned"
    # the source's facts are still mirrored: bob's grant is in the graph (decisions deny him)
    assert "demo_repo:acme/web#writer@human:demo-bob" in ops.tuples("demo_repo:acme/web")
    rec = ops.svc.storage.get_import(S, "demo", "acme")
    assert rec is not None and "human:demo-bob" in rec.identities
    assert rec.warnings == r.warnings


def test_unknown_store(ops: Ops) -> None:
    from keyplane.errors import StoreNotFoundError

    with pytest.raises(StoreNotFoundError):
        IM.import_source(ops.svc, ops.me, "no-such-store", "demo", export())
    with pytest.raises(StoreNotFoundError):
        IM.list_imports(ops.svc, ops.me, "no-such-store")

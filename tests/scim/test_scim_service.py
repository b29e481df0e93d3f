"""SCIM 2.0 provisioning through the service layer (keyplane.service.scim), on SQLite and
PostgreSQL: the mapping of Users, Groups and Agents onto identities and tuples, group
diffs, deactivation as deprovisioning (delegations revoked, agents orphaned), retries that
write nothing, versions and If-Match, uniqueness, atomicity (a bad member writes nothing),
deletion, listing, and the ledger events of each change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import PermissionDeniedError
from keyplane.graph.tuples import Tuple
from keyplane.scim.errors import ScimError
from keyplane.scim.schemas import ENTERPRISE_USER, PATCH_OP, USER
from keyplane.service import access, delegations, identities, keys, policies
from keyplane.service import scim as SC
from keyplane.service.auth import Caller
from keyplane.service.context import Services

S = "scimsvc"
NOW = 1_800_000_000.0
BASE = f"https://kp.example/scim/v2/{S}"
ME = Caller.system_caller()
MODEL = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user, human, group#member]\n"


class Ops:
    """The SCIM operations bound to one store, the system caller and the base URL."""

    def __init__(self, svc: Services, clock: FixedClock) -> None:
        self.svc = svc
        self.clock = clock

    def create(self, rtype: str, body: dict[str, Any]) -> dict[str, Any]:
        return SC.scim_create(self.svc, ME, S, rtype, body, base_url=BASE)

    def get(self, rtype: str, id: str) -> dict[str, Any]:
        return SC.scim_get(self.svc, ME, S, rtype, id, base_url=BASE)

    def put(self, rtype: str, id: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return SC.scim_replace(self.svc, ME, S, rtype, id, body, base_url=BASE, **kw)

    def patch(self, rtype: str, id: str, *ops: dict[str, Any], **kw: Any) -> dict[str, Any]:
        body = {"schemas": [PATCH_OP], "Operations": list(ops)}
        return SC.scim_patch(self.svc, ME, S, rtype, id, body, base_url=BASE, **kw)

    def delete(self, rtype: str, id: str, **kw: Any) -> None:
        SC.scim_delete(self.svc, ME, S, rtype, id, **kw)

    def list(self, rtype: str, **kw: Any) -> dict[str, Any]:
        return SC.scim_list(self.svc, ME, S, rtype, base_url=BASE, **kw)

    def identity(self, node: str) -> Any:
        return identities.get_identity(self.svc, ME, S, node)

    def tuples(self, object: str) -> set[str]:
        page = self.svc.storage.read_tuples(S, object=object, page_size=100)
        return {str(t) for t in page.items}

    def events(self, *types: str) -> list[Any]:
        self.svc.ledger.flush()
        found = self.svc.storage.read_events(S, limit=1000)
        return [e for e in found if not types or e.type in types]

    def head(self) -> int:
        self.svc.ledger.flush()
        return self.svc.storage.ledger_head(S)[0]

    def member(self, user: str, group: str) -> bool:
        return access.check(self.svc, ME, S, user, "member", group).allowed


@pytest.fixture
def ops(storage_url: str) -> Iterator[Ops]:
    clock = FixedClock(NOW)
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=S)
    kp = Keyplane.open(settings=settings, clock=clock)
    try:
        kp.write_model(MODEL)
        yield Ops(kp.services, clock)
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


def _user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": user_name, **extra}


def _group(name: str, *members: str) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}
    body["displayName"] = name
    if members:
        body["members"] = [{"value": m} for m in members]
    return body


def _agent(name: str, *owners: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Agent"],
        "displayName": name,
        "owners": [{"value": o} for o in owners],
        **extra,
    }


def _scim_error(exc: pytest.ExceptionInfo[ScimError]) -> tuple[int, str | None]:
    return exc.value.status, exc.value.scim_type


# ------------------------------------------------------------------------------ mapping


def test_user_maps_onto_a_human_identity(ops: Ops) -> None:
    made = ops.create(
        "User",
        _user(
            "Alice.Smith@Example.com",
            externalId="00u1",
            name={"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
            emails=[
                {"value": "Alice.Smith@Example.com", "type": "work", "primary": True},
                {"value": "alice@home.example", "type": "home"},
            ],
            title="Engineer",
            userType="Employee",
            password="not-kept",
            **{ENTERPRISE_USER: {"department": "Platform", "manager": {"value": "bob"}}},
        ),
    )
    assert made["id"] == "alice.smith@example.com"
    assert made["userName"] == "Alice.Smith@Example.com"
    assert "password" not in made
    assert made["meta"] == {
        "resourceType": "User",
        "created": "2027-01-15T08:00:00.000Z",
        "lastModified": "2027-01-15T08:00:00.000Z",
        "location": f"{BASE}/Users/alice.smith@example.com",
        "version": 'W/"1"',
    }
    human = ops.identity("human:alice.smith@example.com")
    assert human.source == "scim" and human.status == "active" and human.owners == ()
    assert human.display_name == "Alice Smith"
    assert human.attributes == {
        "userName": "Alice.Smith@Example.com",
        "emails": ["alice.smith@example.com", "alice@home.example"],
        "title": "Engineer",
        "department": "Platform",
        "employeeType": "Employee",
        "manager": "human:bob",
        "active": True,
        "externalId": "00u1",
        "links": {"scim": "alice.smith@example.com"},
    }
    # the password was never stored
    stored = ops.svc.storage.get_scim(S, "User", made["id"])
    assert stored is not None and "password" not in stored.data
    assert ops.get("User", made["id"]) == made
    created = ops.events("scim.created")
    assert len(created) == 1
    ev = created[0]
    assert ev.resource == "human:alice.smith@example.com" and ev.outcome == "ok"
    assert ev.details == {
        "resource_type": "User",
        "id": "alice.smith@example.com",
        "external_id": "00u1",
        "version": 1,
    }
    assert [e.type for e in ops.events("scim.created", "identity.created")] == [
        "scim.created",
        "identity.created",
    ]


def test_display_name_falls_back_to_user_name(ops: Ops) -> None:
    ops.create("User", _user("carol"))
    assert ops.identity("human:carol").display_name == "carol"
    ops.create("User", _user("dave", displayName="Dave D."))
    assert ops.identity("human:dave").display_name == "Dave D."
    # Okta sends the name's parts, no displayName
    ops.create("User", _user("ella", name={"givenName": "Ella", "familyName": "Fitz"}))
    assert ops.identity("human:ella").display_name == "Ella Fitz"


def test_ids_are_stable_slugs(ops: Ops) -> None:
    identities.create_identity(ops.svc, ME, S, "human", "erin")  # not from SCIM
    made = ops.create("User", _user("Erin"))
    assert made["id"] == "erin-2"  # human:erin is someone else's
    assert ops.identity("human:erin").source == "api"
    odd = ops.create("User", _user("Frank O'Neil#1"))
    assert odd["id"] == "frank-o-neil-1"
    # a rename keeps the id (and the node)
    renamed = ops.put("User", "erin-2", _user("erin.new@example.com"))
    assert renamed["id"] == "erin-2" and renamed["userName"] == "erin.new@example.com"
    assert ops.identity("human:erin-2").attributes["userName"] == "erin.new@example.com"


def test_user_name_is_unique_case_insensitively(ops: Ops) -> None:
    ops.create("User", _user("gina@example.com"))
    with pytest.raises(ScimError) as exc:
        ops.create("User", _user("GINA@example.com"))
    assert _scim_error(exc) == (409, "uniqueness")
    ops.create("User", _user("hank@example.com"))
    with pytest.raises(ScimError) as exc:
        ops.put("User", "hank@example.com", _user("Gina@Example.com"))
    assert _scim_error(exc) == (409, "uniqueness")
    assert ops.get("User", "hank@example.com")["userName"] == "hank@example.com"
    assert len(ops.list("User")["Resources"]) == 2


def test_attributes_added_outside_scim_are_kept(ops: Ops) -> None:
    ops.create("User", _user("ivan", title="Dev"))
    attrs = dict(ops.identity("human:ivan").attributes)
    attrs["links"] = {**attrs["links"], "github": "ivan-gh"}
    attrs["team"] = "core"
    identities.update_identity(ops.svc, ME, S, "human:ivan", attributes=attrs)
    ops.put("User", "ivan", _user("ivan", title="Lead"))
    after = ops.identity("human:ivan").attributes
    assert after["title"] == "Lead" and after["team"] == "core"
    assert after["links"] == {"scim": "ivan", "github": "ivan-gh"}


def test_unknown_resource_type_and_missing_resource(ops: Ops) -> None:
    with pytest.raises(ScimError) as exc:
        ops.create("Printers", {"displayName": "x"})
    assert exc.value.status == 404
    with pytest.raises(ScimError) as exc:
        ops.get("User", "nobody")
    assert exc.value.status == 404
    with pytest.raises(ScimError) as exc:
        ops.create("User", {"schemas": [USER], "displayName": "no user name"})
    assert _scim_error(exc) == (400, "invalidValue")


# ------------------------------------------------------------------------------ groups


def test_group_members_are_tuples_diffed_on_every_write(ops: Ops) -> None:
    for n in ("ann", "ben", "cat", "dan"):
        ops.create("User", _user(n))
    eng = ops.create("Group", _group("Engineering", "ann", "ben"))
    assert eng["id"] == "engineering"
    assert [m["$ref"] for m in eng["members"]] == [f"{BASE}/Users/ann", f"{BASE}/Users/ben"]
    assert ops.tuples("group:engineering") == {
        "group:engineering#member@human:ann",
        "group:engineering#member@human:ben",
    }
    # a nested group: its members are members of the parent
    ops.create("Group", _group("SRE", "dan"))
    ops.patch(
        "Group",
        "engineering",
        {"op": "add", "path": "members", "value": [{"value": "sre"}]},
    )
    assert "group:engineering#member@group:sre#member" in ops.tuples("group:engineering")
    assert ops.member("human:dan", "group:engineering")
    # replace: ben leaves, cat joins (the nested group too is gone)
    before = ops.head()
    ops.put("Group", "engineering", _group("Engineering", "ann", "cat"))
    new = [e for e in ops.events() if e.seq > before]
    assert ops.tuples("group:engineering") == {
        "group:engineering#member@human:ann",
        "group:engineering#member@human:cat",
    }
    assert not ops.member("human:ben", "group:engineering")
    assert not ops.member("human:dan", "group:engineering")
    assert ops.member("human:cat", "group:engineering")
    assert [e.type for e in new] == ["scim.replaced", "tuples.written"]
    assert new[0].details["changed"] == ["members"]
    written = new[1].details
    assert written["written"] == [
        {"object": "group:engineering", "relation": "member", "user": "human:cat"}
    ]
    assert {d["user"] for d in written["deleted"]} == {"human:ben", "group:sre#member"}
    # a User answers the groups it is a direct member of
    ann = ops.get("User", "ann")
    assert ann["groups"] == [
        {
            "value": "engineering",
            "$ref": f"{BASE}/Groups/engineering",
            "display": "Engineering",
            "type": "direct",
        }
    ]


def test_a_bad_member_writes_nothing(ops: Ops) -> None:
    ops.create("User", _user("eve"))
    before = ops.head()
    with pytest.raises(ScimError) as exc:
        ops.create("Group", _group("Ops", "eve", "ghost"))
    assert _scim_error(exc) == (400, "invalidValue")
    assert "ghost" in exc.value.message
    assert ops.list("Group")["totalResults"] == 0
    assert ops.tuples("group:ops") == set()
    assert [e.type for e in ops.events() if e.seq > before] == ["scim.created"]
    assert [e.outcome for e in ops.events() if e.seq > before] == ["error"]
    # an update with a bad member leaves the group as it was
    ops.create("Group", _group("Ops", "eve"))
    with pytest.raises(ScimError):
        ops.put("Group", "ops", _group("Ops", "eve", "ghost"))
    with pytest.raises(ScimError):
        ops.patch("Group", "ops", {"op": "add", "path": "members", "value": [{"value": "x"}]})
    got = ops.get("Group", "ops")
    assert got["meta"]["version"] == 'W/"1"' and [m["value"] for m in got["members"]] == ["eve"]
    assert ops.tuples("group:ops") == {"group:ops#member@human:eve"}
    with pytest.raises(ScimError) as exc:
        ops.put("Group", "ops", _group("Ops", "ops"))
    assert _scim_error(exc) == (400, "invalidValue")


def test_deleting_a_group_removes_its_tuples_and_memberships(ops: Ops) -> None:
    ops.create("User", _user("fay"))
    ops.create("Group", _group("Inner", "fay"))
    ops.create("Group", _group("Outer", "inner"))
    ops.delete("Group", "inner")
    assert ops.tuples("group:inner") == set()
    outer = ops.get("Group", "outer")
    assert "members" not in outer and outer["meta"]["version"] == 'W/"2"'
    assert ops.tuples("group:outer") == set()
    with pytest.raises(ScimError) as exc:
        ops.get("Group", "inner")
    assert exc.value.status == 404
    deleted = ops.events("scim.deleted")
    assert [(e.resource, e.details) for e in deleted] == [
        ("group:inner", {"resource_type": "Group", "id": "inner", "external_id": None,
                         "version": 1}),
    ]  # fmt: skip


# ------------------------------------------------------------------------------ agents


def test_agent_maps_onto_an_agent_with_owners(ops: Ops) -> None:
    ops.create("User", _user("olga"))
    ops.create("User", _user("pete"))
    made = ops.create(
        "Agent", _agent("Release Bot", "olga", agentType="autonomous", description="ships")
    )
    assert made["id"] == "release-bot"
    assert made["owners"] == [{"value": "olga", "type": "User", "$ref": f"{BASE}/Users/olga"}]
    bot = ops.identity("agent:release-bot")
    assert bot.owners == ("human:olga",) and bot.source == "scim"
    assert bot.display_name == "Release Bot"
    assert bot.attributes == {
        "agentType": "autonomous",
        "description": "ships",
        "active": True,
        "links": {"scim": "release-bot"},
    }
    assert ops.tuples("agent:release-bot") == {"agent:release-bot#owner@human:olga"}
    ops.put("Agent", "release-bot", _agent("Release Bot", "pete"))
    bot = ops.identity("agent:release-bot")
    assert bot.owners == ("human:pete",)
    assert ops.tuples("agent:release-bot") == {"agent:release-bot#owner@human:pete"}
    changed = ops.events("identity.owners_changed")[-1]
    assert changed.details["added"] == ["human:pete"]
    assert changed.details["removed"] == ["human:olga"]
    # agent displayNames are unique
    with pytest.raises(ScimError) as exc:
        ops.create("Agent", _agent("Release Bot", "olga"))
    assert _scim_error(exc) == (409, "uniqueness")


def test_an_agent_needs_a_known_owner(ops: Ops) -> None:
    with pytest.raises(ScimError) as exc:
        ops.create("Agent", _agent("Lonely"))
    assert _scim_error(exc) == (400, "invalidValue")
    with pytest.raises(ScimError) as exc:
        ops.create("Agent", _agent("Lonely", "nobody"))
    assert _scim_error(exc) == (400, "invalidValue")
    assert ops.list("Agent")["totalResults"] == 0
    with pytest.raises(Exception):  # noqa: B017 - IdentityNotFoundError
        ops.identity("agent:lonely")


# ------------------------------------------------------------------------------ deactivation


def test_deactivation_deprovisions_with_its_effects(ops: Ops) -> None:
    ops.create("User", _user("quinn"))
    ops.create("User", _user("rita"))
    ops.create("Agent", _agent("Solo", "quinn"))
    ops.create("Agent", _agent("Shared", "quinn", "rita"))
    grant = delegations.create_delegation(
        ops.svc, ME, S, delegator="human:quinn", delegate="agent:solo",
        scope=[{"actions": ["viewer"], "resource": "doc:*"}], expires_at=NOW + 3600,
    )  # fmt: skip
    policies.update_store_policy(ops.svc, ME, S, suspend_orphans=True)
    before = ops.head()
    # Entra ID's shape: "Replace", no path, the boolean as a string
    out = ops.patch("User", "quinn", {"op": "Replace", "value": {"active": "False"}})
    assert out["active"] is False and out["meta"]["version"] == 'W/"2"'
    quinn = ops.identity("human:quinn")
    assert quinn.status == "deprovisioned" and quinn.attributes["active"] is False
    solo, shared = ops.identity("agent:solo"), ops.identity("agent:shared")
    assert solo.orphaned and solo.status == "suspended"
    assert not shared.orphaned and shared.status == "active"
    assert delegations.get_delegation(ops.svc, ME, S, grant.id).status == "revoked"
    types = [e.type for e in ops.events() if e.seq > before]
    assert types == [
        "scim.patched",
        "identity.updated",  # attributes.active
        "identity.deprovisioned",
        "identity.orphaned",
        "identity.suspended",
        "delegation.revoked",
    ]
    patched = ops.events("scim.patched")[-1]
    assert patched.details["operations"] == [{"op": "replace", "path": None}]
    # deprovisioning is for good: reactivation is refused, nothing changes
    for attempt in (
        lambda: ops.put("User", "quinn", _user("quinn", active=True)),
        lambda: ops.patch("User", "quinn", {"op": "replace", "path": "active", "value": True}),
    ):
        with pytest.raises(ScimError) as exc:
            attempt()
        assert _scim_error(exc) == (400, "mutability")
        assert "deprovisioned" in exc.value.message
    assert ops.identity("human:quinn").status == "deprovisioned"
    # the profile of an inactive user still follows the identity provider
    ops.put("User", "quinn", _user("quinn", active=False, title="Former"))
    assert ops.identity("human:quinn").attributes["title"] == "Former"
    assert ops.identity("human:quinn").status == "deprovisioned"


def test_an_agent_owned_only_by_a_deprovisioned_user_is_orphaned(ops: Ops) -> None:
    ops.create("User", _user("sam"))
    ops.create("Agent", _agent("Helper", "sam"))
    ops.put("User", "sam", _user("sam", active=False))
    helper = ops.identity("agent:helper")
    assert helper.orphaned and helper.status == "active"  # suspend_orphans is off
    orphaned = ops.events("identity.orphaned")
    assert [(e.resource, e.details["cause"]) for e in orphaned] == [("agent:helper", "human:sam")]
    # a deprovisioned user cannot become an owner
    with pytest.raises(ScimError) as exc:
        ops.create("Agent", _agent("Another", "sam"))
    assert _scim_error(exc) == (400, "invalidValue")


def test_created_inactive_is_deprovisioned_at_once(ops: Ops) -> None:
    ops.create("User", _user("tess", active=False))
    assert ops.identity("human:tess").status == "deprovisioned"
    assert [e.type for e in ops.events("scim.created", "identity.created",
                                       "identity.deprovisioned")] == [
        "scim.created", "identity.created", "identity.deprovisioned",
    ]  # fmt: skip


def test_deactivating_an_agent_deprovisions_it(ops: Ops) -> None:
    ops.create("User", _user("uma"))
    ops.create("Agent", _agent("Worker", "uma"))
    ops.patch("Agent", "worker", {"op": "replace", "path": "active", "value": False})
    assert ops.identity("agent:worker").status == "deprovisioned"


# ------------------------------------------------------------------------------ delete


def test_delete_deprovisions_and_removes_the_resource(ops: Ops) -> None:
    ops.create("User", _user("vic"))
    ops.create("User", _user("wes"))
    ops.create("Group", _group("Team", "vic", "wes"))
    ops.create("Agent", _agent("Vicbot", "vic"))
    ops.delete("User", "vic")
    with pytest.raises(ScimError) as exc:
        ops.get("User", "vic")
    assert exc.value.status == 404
    assert ops.identity("human:vic").status == "deprovisioned"
    assert ops.identity("agent:vicbot").orphaned
    team = ops.get("Group", "team")
    assert [m["value"] for m in team["members"]] == ["wes"]
    assert team["meta"]["version"] == 'W/"2"'
    assert ops.tuples("group:team") == {"group:team#member@human:wes"}
    with pytest.raises(ScimError) as exc:
        ops.delete("User", "vic")
    assert exc.value.status == 404
    # the userName is free again, under a new id (human:vic is deprovisioned for good)
    again = ops.create("User", _user("vic"))
    assert again["id"] == "vic-2"
    ops.delete("Agent", "vicbot")
    assert ops.identity("agent:vicbot").status == "deprovisioned"
    deleted = [e for e in ops.events("scim.deleted") if e.outcome == "ok"]
    assert [e.details["id"] for e in deleted] == ["vic", "vicbot"]
    assert [e.outcome for e in ops.events("scim.deleted")] == ["ok", "error", "ok"]


# ------------------------------------------------------------------------------ versions


def test_versions_and_if_match(ops: Ops) -> None:
    ops.create("User", _user("xena"))
    v2 = ops.put("User", "xena", _user("xena", title="A"), if_match='W/"1"')
    assert v2["meta"]["version"] == 'W/"2"'
    with pytest.raises(ScimError) as exc:
        ops.put("User", "xena", _user("xena", title="B"), if_match='W/"1"')
    assert exc.value.status == 412 and exc.value.scim_type is None
    with pytest.raises(ScimError) as exc:
        ops.patch("User", "xena", {"op": "replace", "path": "title", "value": "C"}, if_match='"7"')
    assert exc.value.status == 412
    with pytest.raises(ScimError) as exc:
        ops.delete("User", "xena", if_match='W/"1"')
    assert exc.value.status == 412
    assert ops.get("User", "xena")["title"] == "A"
    v3 = ops.patch(
        "User", "xena", {"op": "replace", "path": "title", "value": "C"}, if_match='W/"1", W/"2"'
    )
    assert v3["meta"]["version"] == 'W/"3"' and v3["title"] == "C"
    ops.clock.advance(60)
    v4 = ops.put("User", "xena", _user("xena", title="D"), if_match="*")
    assert v4["meta"]["version"] == 'W/"4"'
    assert v4["meta"]["lastModified"] == "2027-01-15T08:01:00.000Z"
    assert v4["meta"]["created"] == "2027-01-15T08:00:00.000Z"
    ops.delete("User", "xena", if_match='W/"4"')


def test_retries_write_nothing(ops: Ops) -> None:
    ops.create("User", _user("yuri"))
    ops.create("Group", _group("Crew", "yuri"))
    ops.create("Agent", _agent("Yuribot", "yuri"))
    first = ops.put("User", "yuri", _user("yuri", title="Pilot"))
    revision = ops.svc.storage.store_head(S).revision
    before = ops.head()
    again = ops.put("User", "yuri", _user("yuri", title="Pilot"))
    assert again == first and again["meta"]["version"] == 'W/"2"'
    patch = {"op": "replace", "path": "title", "value": "Pilot"}
    assert ops.patch("User", "yuri", patch)["meta"]["version"] == 'W/"2"'
    group = ops.get("Group", "crew")
    assert ops.put("Group", "crew", _group("Crew", "yuri")) == group
    add = {"op": "add", "path": "members", "value": [{"value": "yuri"}]}
    assert ops.patch("Group", "crew", add)["meta"]["version"] == 'W/"1"'
    agent = ops.get("Agent", "yuribot")
    assert ops.put("Agent", "yuribot", _agent("Yuribot", "yuri")) == agent
    assert ops.head() == before  # no event at all
    assert ops.svc.storage.store_head(S).revision == revision  # no write at all


# ------------------------------------------------------------------------------ list


def test_list_filters_sorts_and_pages(ops: Ops) -> None:
    for n in ("mia", "leo", "kim", "jon"):
        ops.create("User", _user(f"{n}@example.com", title="Dev" if n < "l" else "Ops"))
    everyone = ops.list("User")
    assert everyone["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert everyone["totalResults"] == 4 and everyone["startIndex"] == 1
    assert everyone["itemsPerPage"] == 4
    assert [r["id"] for r in everyone["Resources"]] == [
        "jon@example.com", "kim@example.com", "leo@example.com", "mia@example.com",
    ]  # fmt: skip
    one = ops.list("User", filter='userName eq "KIM@example.com"')
    assert [r["id"] for r in one["Resources"]] == ["kim@example.com"]
    devs = ops.list("User", filter='title eq "Dev"', sort_by="userName", sort_order="descending")
    assert [r["id"] for r in devs["Resources"]] == ["kim@example.com", "jon@example.com"]
    page = ops.list("User", start_index=2, count=2)
    assert page["totalResults"] == 4 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [r["id"] for r in page["Resources"]] == ["kim@example.com", "leo@example.com"]
    none = ops.list("User", count=0)
    assert none["totalResults"] == 4 and none["Resources"] == []
    recent = ops.list("User", filter='meta.lastModified ge "2027-01-15T08:00:00Z"')
    assert recent["totalResults"] == 4
    with pytest.raises(ScimError) as exc:
        ops.list("User", filter="userName eq")
    assert _scim_error(exc) == (400, "invalidFilter")
    with pytest.raises(ScimError) as exc:
        ops.list("User", sort_order="sideways")
    assert exc.value.status == 400


# ------------------------------------------------------------------------------ auth


def test_only_provisioners_and_admins_may_provision(ops: Ops) -> None:
    _, writer_secret = keys.create_key(ops.svc, ME, owner="w", roles=[f"writer:{S}"])
    _, prov_secret = keys.create_key(ops.svc, ME, owner="idp", roles=[f"provisioner:{S}"])
    writer = keys.authenticate(ops.svc, writer_secret)
    idp = keys.authenticate(ops.svc, prov_secret)
    with pytest.raises(PermissionDeniedError):
        SC.scim_create(ops.svc, writer, S, "User", _user("zed"), base_url=BASE)
    with pytest.raises(PermissionDeniedError):
        SC.scim_list(ops.svc, writer, S, "User", base_url=BASE)
    made = SC.scim_create(ops.svc, idp, S, "User", _user("zed"), base_url=BASE)
    assert SC.scim_get(ops.svc, idp, S, "User", made["id"], base_url=BASE)["userName"] == "zed"
    created = ops.events("scim.created")[-1]
    assert created.caller == idp.principal


def test_the_graph_is_the_projection_of_stored_resources(ops: Ops) -> None:
    """Whatever the order of writes, the tuples are exactly the stored members."""
    for n in ("a1", "a2", "a3"):
        ops.create("User", _user(n))
    ops.create("Group", _group("G", "a1"))
    ops.patch("Group", "g", {"op": "add", "path": "members", "value": [{"value": "a2"}]})
    ops.patch("Group", "g", {"op": "remove", "path": 'members[value eq "a1"]'})
    ops.patch("Group", "g", {"op": "add", "path": "members", "value": [{"value": "a3"}]})
    stored = ops.svc.storage.get_scim(S, "Group", "g")
    assert stored is not None
    expected = {
        str(Tuple("group:g", "member", f"human:{m['value']}")) for m in stored.data["members"]
    }
    assert ops.tuples("group:g") == expected == {
        "group:g#member@human:a2", "group:g#member@human:a3",
    }  # fmt: skip


def test_removing_active_from_an_inactive_resource_does_not_reactivate(ops: Ops) -> None:
    ops.create("User", _user("noor"))
    ops.create("Agent", _agent("Noorbot", "noor", active=False))
    assert ops.identity("agent:noorbot").status == "deprovisioned"
    out = ops.patch("Agent", "noorbot", {"op": "remove", "path": "active"})
    assert "active" not in out and out["meta"]["version"] == 'W/"2"'
    bot = ops.identity("agent:noorbot")
    assert bot.status == "deprovisioned" and bot.attributes["active"] is False
    with pytest.raises(ScimError) as exc:
        ops.patch("Agent", "noorbot", {"op": "add", "path": "active", "value": True})
    assert _scim_error(exc) == (400, "mutability")
    # deprovisioned through the identity operations while the IdP says active: the
    # profile still follows the IdP, the identity stays deprovisioned
    identities.deprovision_identity(ops.svc, ME, S, "human:noor")
    ops.put("User", "noor", _user("noor", active=True, title="Gone"))
    noor = ops.identity("human:noor")
    assert noor.status == "deprovisioned" and noor.attributes["title"] == "Gone"

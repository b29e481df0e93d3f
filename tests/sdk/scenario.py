"""One scenario, written once against :class:`keyplane.sdk.KeyplaneAPI`, run through the
embedded Keyplane, the HTTP Client and the AsyncClient: the answers must be identical.

Every answer is recorded in a plain, comparable form. Model ids and timestamps differ
between two databases by nature, so model ids are replaced by their order of appearance
and times are left out; everything else — revisions, decisions, trees, explanations,
tuples, changelog entries, error classes, codes, messages and details — must match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyplane import errors as e
from keyplane.sdk import KeyplaneAPI
from keyplane.service.access import BatchItem

MODEL = """\
model
  schema 1.1

type user

type group
  relations
    define member: [user, group#member]

type folder
  relations
    define viewer: [user, group#member]

type document
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user]
    define editor: [user] and owner
    define viewer: ([user, user:*, group#member, user with in_hours] or owner or viewer from parent) but not blocked

condition in_hours(hour: int) {
  hour >= 9 && hour < 18
}
"""

BAD_MODEL = """\
model
  schema 1.1

type user

type document
  relations
    define viewer: [user, team#member]
"""

STORE = "acme"


class Recorder:
    def __init__(self) -> None:
        self.answers: list[tuple[str, Any]] = []
        self.model_ids: dict[str, str] = {}

    def mid(self, model_id: str) -> str:
        return self.model_ids.setdefault(model_id, f"M{len(self.model_ids) + 1}")

    def add(self, label: str, value: Any) -> None:
        self.answers.append((label, value))

    def error(self, label: str, fn: Callable[[], Any]) -> None:
        """Record the error ``fn`` raises: class, code, message, details."""
        try:
            fn()
        except e.KeyplaneError as exc:
            details = {k: v for k, v in exc.details.items() if k != "model_id"}
            self.add(label, (type(exc).__name__, exc.code, exc.message, details))
            return
        raise AssertionError(f"{label}: no error raised")


def run(kp: KeyplaneAPI) -> list[tuple[str, Any]]:
    r = Recorder()
    s = kp.create_store("Acme Corp", store_id=STORE)
    r.add("create_store", (s.id, s.name))
    r.add("get_store", (kp.get_store(STORE).id, kp.get_store(STORE).name))
    ids: list[str] = []
    token = None
    while True:
        page = kp.list_stores(page_size=1, continuation_token=token)
        ids.extend(x.id for x in page.items)
        token = page.continuation_token
        if not token:
            break
    r.add("list_stores has acme", STORE in ids)

    # models
    r.error("read_model before any", lambda: kp.read_model(store=STORE))
    m1 = kp.write_model(MODEL, store=STORE)
    r.add("write_model", (r.mid(m1.id), m1.store_id, m1.model))
    latest = kp.read_model(store=STORE)
    r.add("read_model latest", (r.mid(latest.id), latest.model))
    r.add("read_model by id", r.mid(kp.read_model(m1.id, store=STORE).id))
    m2 = kp.write_model(
        {
            "schema_version": "1.1",
            "type_definitions": m1.model["type_definitions"],
            "conditions": m1.model.get("conditions", {}),
        },
        store=STORE,
    )
    r.add("write_model json", r.mid(m2.id))
    models = kp.list_models(store=STORE, page_size=1)
    r.add(
        "list_models page",
        ([r.mid(m.id) for m in models.items], models.continuation_token is not None),
    )
    r.error("invalid model", lambda: kp.write_model(BAD_MODEL, store=STORE))
    r.error("unknown model id", lambda: kp.read_model("01JBOGUSMODEL0000000000000", store=STORE))

    # tuples
    w = kp.write_tuples(
        [
            "group:eng#member@user:anne",
            "group:eng#member@group:leads#member",
            "group:leads#member@user:bob",
            "folder:plans#viewer@group:eng#member",
            "document:roadmap#parent@folder:plans",
            "document:roadmap#owner@user:carol",
            "document:public#viewer@user:*",
            {
                "object": "document:shift",
                "relation": "viewer",
                "user": "user:dave",
                "condition": {"name": "in_hours", "context": {}},
            },
            {
                "object": "document:temp",
                "relation": "viewer",
                "user": "user:erin",
                "expires_at": "2999-01-01T00:00:00Z",
            },
            {
                "object": "document:old",
                "relation": "viewer",
                "user": "user:erin",
                "expires_at": "2001-01-01T00:00:00Z",
            },
        ],
        store=STORE,
    )
    r.add("write_tuples", (w.revision, w.written, w.deleted))
    rev = w.revision
    w2 = kp.write_tuples(["document:roadmap#blocked@user:bob"], store=STORE)
    r.add("write_tuples 2", (w2.revision, w2.written))
    r.add(
        "idempotent rewrite",
        tuple(
            vars_of(
                kp.write_tuples(["document:roadmap#blocked@user:bob"], store=STORE, idempotent=True)
            )
        ),
    )
    r.error(
        "tuple exists", lambda: kp.write_tuples(["document:roadmap#blocked@user:bob"], store=STORE)
    )
    r.error(
        "tuple missing",
        lambda: kp.delete_tuples(["document:roadmap#blocked@user:zed"], store=STORE),
    )
    r.error("type not found", lambda: kp.write_tuples(["robot:1#viewer@user:anne"], store=STORE))
    r.error(
        "relation not found", lambda: kp.write_tuples(["document:1#reader@user:anne"], store=STORE)
    )
    r.error(
        "user type not allowed",
        lambda: kp.write_tuples(["document:1#owner@group:eng#member"], store=STORE),
    )
    r.error("bad tuple syntax", lambda: kp.write_tuples(["document:1#owner"], store=STORE))
    r.error("store not found", lambda: kp.write_tuples(["document:1#owner@user:a"], store="nope"))
    r.error("store exists", lambda: kp.create_store("again", store_id=STORE))

    # reads, paged
    found = []
    token = None
    while True:
        tp = kp.read_tuples(store=STORE, page_size=3, continuation_token=token)
        found.extend(t.to_dict() for t in tp.items)
        token = tp.continuation_token
        if not token:
            break
    r.add("read_tuples all", sorted(found, key=str))
    r.add(
        "read_tuples filtered",
        [
            t.to_dict()
            for t in kp.read_tuples(object="document:roadmap", relation="owner", store=STORE).items
        ],
    )
    r.add(
        "read_tuples by type",
        sorted(str(t) for t in kp.read_tuples(object="group:", store=STORE).items),
    )
    r.error(
        "bad continuation token", lambda: kp.read_tuples(store=STORE, continuation_token="garbage")
    )
    r.error("page size 0", lambda: kp.read_tuples(store=STORE, page_size=0))
    ch = kp.read_changes(store=STORE, page_size=5)
    r.add(
        "read_changes",
        (
            [(c.revision, c.operation, c.tuple.to_dict()) for c in ch.changes],
            ch.last_revision,
            ch.has_more,
        ),
    )
    ch2 = kp.read_changes(store=STORE, after_revision=rev, object_type="document")
    r.add("read_changes after", [(c.revision, str(c.tuple)) for c in ch2.changes])

    # checks
    def decide(user: str, rel: str, obj: str, **kw: Any) -> tuple[bool, str, int]:
        d = kp.check(user, rel, obj, store=STORE, **kw)
        assert bool(d) is d.allowed
        return d.allowed, r.mid(d.model_id), d.revision

    r.add("check anne", decide("user:anne", "viewer", "document:roadmap", at_least_as_fresh=rev))
    r.add("check bob blocked", decide("user:bob", "viewer", "document:roadmap"))
    r.add("check carol owner", decide("user:carol", "viewer", "document:roadmap"))
    r.add("check wildcard", decide("user:zoe", "viewer", "document:public"))
    r.add("check expiring", decide("user:erin", "viewer", "document:temp"))
    r.add("check expired", decide("user:erin", "viewer", "document:old"))
    r.add("check cond true", decide("user:dave", "viewer", "document:shift", context={"hour": 10}))
    r.add("check cond false", decide("user:dave", "viewer", "document:shift", context={"hour": 20}))
    r.add(
        "check contextual",
        decide(
            "user:frank",
            "viewer",
            "document:roadmap",
            contextual_tuples=["group:eng#member@user:frank"],
        ),
    )
    r.add("check old model", decide("user:anne", "viewer", "document:roadmap", model_id=m1.id))
    r.add("check intersection", decide("user:carol", "editor", "document:roadmap"))
    r.error(
        "check missing condition param",
        lambda: kp.check("user:dave", "viewer", "document:shift", store=STORE),
    )
    r.error(
        "check unknown relation",
        lambda: kp.check("user:anne", "reader", "document:roadmap", store=STORE),
    )
    r.error("check unknown type", lambda: kp.check("user:anne", "viewer", "robot:1", store=STORE))
    r.error(
        "check too fresh",
        lambda: kp.check(
            "user:anne", "viewer", "document:roadmap", store=STORE, at_least_as_fresh=10**9
        ),
    )
    r.error(
        "too many contextual tuples",
        lambda: kp.check(
            "user:anne",
            "viewer",
            "document:roadmap",
            store=STORE,
            contextual_tuples=[f"group:g{i}#member@user:anne" for i in range(101)],
        ),
    )

    # batch check: one item's error does not fail the others
    results = kp.batch_check(
        [
            BatchItem("user:anne", "viewer", "document:roadmap", correlation_id="a"),
            BatchItem("user:bob", "viewer", "document:roadmap", correlation_id="b"),
            BatchItem("user:anne", "reader", "document:roadmap", correlation_id="c"),
            BatchItem(
                "user:dave", "viewer", "document:shift", context={"hour": 9}, correlation_id="d"
            ),
            BatchItem(
                "user:gus",
                "viewer",
                "document:roadmap",
                correlation_id="e",
                contextual_tuples=["document:roadmap#owner@user:gus"],
            ),
        ],
        store=STORE,
    )
    r.add(
        "batch_check",
        [
            (
                x.correlation_id,
                x.allowed,
                None
                if x.error is None
                else (type(x.error).__name__, x.error.code, x.error.message),
            )
            for x in results
        ],
    )

    # expand, list objects, list users, explain
    r.add("expand", kp.expand("document:roadmap", "viewer", store=STORE))
    r.add("expand group", kp.expand("group:eng", "member", store=STORE))
    r.add(
        "list_objects anne", sorted(kp.list_objects("user:anne", "viewer", "document", store=STORE))
    )
    r.add(
        "list_objects carol",
        sorted(kp.list_objects("user:carol", "viewer", "document", store=STORE)),
    )
    r.add(
        "list_objects ctx",
        sorted(
            kp.list_objects("user:dave", "viewer", "document", store=STORE, context={"hour": 12})
        ),
    )
    r.error(
        "list_objects bad type",
        lambda: list(kp.list_objects("user:anne", "viewer", "robot", store=STORE)),
    )
    r.add("list_users", sorted(kp.list_users("document:roadmap", "viewer", ["user"], store=STORE)))
    r.add(
        "list_users usersets",
        sorted(kp.list_users("folder:plans", "viewer", ["group#member"], store=STORE)),
    )
    for user, obj in [
        ("user:anne", "document:roadmap"),
        ("user:bob", "document:roadmap"),
        ("user:dave", "document:shift"),
        ("user:erin", "document:old"),
    ]:
        ex = kp.explain(user, "viewer", obj, store=STORE, context={"hour": 7})
        r.add(f"explain {user} {obj}", (ex.allowed, ex.to_dict(), ex.render()))

    # expired tuples stop granting at once; gc only reclaims them
    r.add("gc_expired", kp.gc_expired(store=STORE))
    r.add("gc_expired again", kp.gc_expired(store=STORE))
    r.add(
        "expired gone", [str(t) for t in kp.read_tuples(object="document:old", store=STORE).items]
    )

    # deletes and the store's end
    d = kp.delete_tuples(["document:roadmap#blocked@user:bob"], store=STORE)
    r.add("delete_tuples", (d.revision, d.written, d.deleted))
    r.add(
        "check bob unblocked",
        decide("user:bob", "viewer", "document:roadmap", at_least_as_fresh=d.revision),
    )
    mixed = kp.write_tuples(
        ["document:roadmap#blocked@user:anne"],
        deletes=["document:public#viewer@user:*"],
        store=STORE,
    )
    r.add("write+delete", (mixed.revision, mixed.written, mixed.deleted))
    kp.delete_store(STORE)
    r.error("deleted store", lambda: kp.get_store(STORE))
    r.error("delete missing store", lambda: kp.delete_store(STORE))
    return r.answers


def vars_of(x: Any) -> list[Any]:
    return [x.revision, x.written, x.deleted]

"""The AuthZEN interop and certification scenarios as Keyplane policy: a model, tuples and
guardrails per scenario, built from the data in place (``<conformance>/authzen/data``) and
the scenario rules (AuthZEN interop docs: Todo, API gateway, search, IdP; the 1.0
certification scenario's fixture). Nothing of the data is copied into the repository.

Each builder returns a :class:`Scenario`; ``load(client, services, scenario)`` writes it into
a fresh store of a running server (the model and tuples through the SDK over HTTP, the
guardrails through the service operation) and returns the store id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance_paths import ROOT

DATA = ROOT / "authzen" / "data"
TODO_MODEL = ROOT / "authzen" / "openfga-bridge" / "todo-model.fga"


def data(rel: str) -> Any:
    return json.loads((DATA / rel).read_text())


@dataclass
class Scenario:
    name: str
    model: str
    tuples: list[dict[str, str]]
    guardrails: list[dict[str, Any]] = field(default_factory=list)


def _t(obj: str, rel: str, user: str) -> dict[str, str]:
    return {"object": obj, "relation": rel, "user": user}


# -- Todo (interop scenario "todo": roles viewer < editor < admin / evil_genius) -------------

#: the five Rick & Morty users: PID (the JWT ``sub``), email, roles (AuthZEN Todo scenario)
TODO_USERS = {
    "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": (
        "rick@the-citadel.com",
        ("admin", "evil_genius"),
    ),
    "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": (
        "morty@the-citadel.com",
        ("editor",),
    ),
    "CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": (
        "summer@the-smiths.com",
        ("editor",),
    ),
    "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": (
        "beth@the-smiths.com",
        ("viewer",),
    ),
    "CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": (
        "jerry@the-smiths.com",
        ("viewer",),
    ),
}
TODO_FILES = (
    "decisions.json",  # pre-1.0 draft: subject.id is the email, ownerID on the resource
    "decisions-authorization-api-1_0-00.json",
    "decisions-authorization-api-1_0-01.json",
    "decisions-authorization-api-1_0-02.json",  # what run_authzen_interop.py replays
)


def todo_requests(file: str) -> list[tuple[dict[str, Any], Any, str]]:
    """(request, expected, endpoint) of a Todo decision file."""
    d = data(f"todo/{file}")
    out = [(e["request"], e["expected"], "evaluation") for e in d.get("evaluation", [])]
    out += [(e["request"], e["expected"], "evaluation") for e in d.get("decisions", [])]
    out += [(e["request"], e["expected"], "evaluations") for e in d.get("evaluations", [])]
    return out


def todo(file: str) -> Scenario:
    """The Todo rules as the bridge model; the users' roles on the one shared list; each todo
    on that list, its owner (from ``ownerID``) as a tuple. The earliest drafts name users by
    email (subject.id), 1.0 by the PID: the store uses the form its file uses."""
    reqs = todo_requests(file)
    by_email = {email: pid for pid, (email, _) in TODO_USERS.items()}
    uses_email = any(r["subject"].get("id") in by_email for r, _, _ in reqs)

    def uid(pid: str) -> str:
        return f"user:{TODO_USERS[pid][0] if uses_email else pid}"

    tuples = [_t("todo_list:main", role, uid(pid)) for pid, (_, roles) in TODO_USERS.items()
              for role in roles]  # fmt: skip
    users: set[str] = set()
    todos: dict[str, str | None] = {}

    def resource(res: dict[str, Any]) -> None:
        if res.get("type") == "user" and res.get("id"):
            users.add(res["id"])
        elif res.get("type") == "todo" and res.get("id"):
            owner = (res.get("properties") or {}).get("ownerID") or res.get("ownerID")
            todos[res["id"]] = todos.get(res["id"]) or owner

    for r, _, endpoint in reqs:
        if endpoint == "evaluations":
            for item in r["evaluations"]:
                resource(item.get("resource") or {})
        resource(r.get("resource") or {})
    tuples += [_t(f"user:{u}", "can_read_user", "user:*") for u in sorted(users)]
    for tid, owner in sorted(todos.items()):
        tuples.append(_t(f"todo:{tid}", "list", "todo_list:main"))
        if owner is not None:
            tuples.append(_t(f"todo:{tid}", "owner", uid(by_email[owner])))
    return Scenario(f"todo:{file}", TODO_MODEL.read_text(), tuples)


# -- API gateway (interop scenario "api-gateway": route-level authorization) ----------------

GATEWAY_MODEL = """\
model
  schema 1.1

type identity

type route
  relations
    define GET: [identity, identity:*]
    define POST: [identity, identity:*]
    define PUT: [identity, identity:*]
    define DELETE: [identity, identity:*]
"""


def gateway() -> Scenario:
    """GET of /users/{userId} and /todos: everyone; POST /todos: admin or editor; PUT
    /todos/{todoId}: evil_genius or editor; DELETE /todos/{todoId}: admin or editor."""
    everyone = [_t("route:/users/{userId}", "GET", "identity:*"),
                _t("route:/todos", "GET", "identity:*")]  # fmt: skip
    rules = {("POST", "/todos"): {"admin", "editor"},
             ("PUT", "/todos/{todoId}"): {"evil_genius", "editor"},
             ("DELETE", "/todos/{todoId}"): {"admin", "editor"}}  # fmt: skip
    tuples = everyone + [
        _t(f"route:{route}", method, f"identity:{pid}")
        for (method, route), roles in rules.items()
        for pid, (_, held) in TODO_USERS.items()
        if roles & set(held)
    ]
    return Scenario("gateway", GATEWAY_MODEL, tuples)


# -- Search / IdP (interop scenario "search": records, departments, owners, managers) -------

SEARCH_MODEL = """\
model
  schema 1.1

type user

type company
  relations
    define manager: [user]

type department
  relations
    define member: [user]
    define manager: [user]

type record
  relations
    define company: [company]
    define department: [department]
    define owner: [user]
    define view: owner or member from department or manager from company
    define edit: owner or manager from department
    define delete: owner
"""


def search(folder: str = "search") -> Scenario:
    """A user views what they own, what is in their department, everything if a manager;
    edits what they own and, as a manager, what is in their department; deletes what they
    own."""
    users = data(f"{folder}/users.json")
    records = data(f"{folder}/records.json")
    tuples: list[dict[str, str]] = []
    for u in users:
        if "department" in u:
            tuples.append(_t(f"department:{u['department']}", "member", f"user:{u['id']}"))
        if u.get("role") == "manager":
            tuples.append(_t("company:acme", "manager", f"user:{u['id']}"))
            tuples.append(_t(f"department:{u['department']}", "manager", f"user:{u['id']}"))
    for rec in records:
        rid = f"record:{rec['id']}"
        tuples.append(_t(rid, "owner", f"user:{rec['owner']}"))
        tuples.append(_t(rid, "company", "company:acme"))
        if "department" in rec:
            tuples.append(_t(rid, "department", f"department:{rec['department']}"))
    return Scenario(folder, SEARCH_MODEL, tuples)


# -- certification fixture (AuthZEN 1.0 certification scenario §1) -------------------------

CERT_MODEL = """\
model
  schema 1.1

type user

type record
  relations
    define reader: [user]
    define writer: [user]
    define deleter: [user]
    define read: reader
    define write: writer
    define delete: deleter
"""

#: the fixture's rules over request properties (§1.4 rules 5–8), as guardrails. The
#: fixture's subject table (§1.1) names bob an admin: that is the PDP's own knowledge of
#: bob, used when a request does not say (a search's candidates carry no properties).
CERT_GUARDRAILS = [
    {
        "id": "archived-write",
        "description": "only an admin writes an archived record",
        "effect": "forbid",
        "expression": (
            'action == "write" && has(resource.attributes.status) && '
            'resource.attributes.status == "archived" && !(subject.id == "bob" || '
            '(has(subject.attributes.role) && subject.attributes.role == "admin"))'
        ),
    },
    {
        "id": "hard-delete",
        "description": "only a soft delete is allowed",
        "effect": "forbid",
        "expression": (
            'action == "delete" && !(has(context.action_properties) && '
            "has(context.action_properties.soft) && context.action_properties.soft == true)"
        ),
    },
]


def certification() -> Scenario:
    tuples = [_t(f"record:{r}", rel, "user:alice") for r in ("record-1", "record-2")
              for rel in ("reader", "writer", "deleter")]  # fmt: skip
    tuples += [_t("record:record-1", "reader", "user:bob"),
               _t("record:record-2", "reader", "user:bob"),
               _t("record:record-2", "writer", "user:bob")]  # fmt: skip
    return Scenario("certification", CERT_MODEL, tuples, CERT_GUARDRAILS)


def cert_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = data("certification/cases.json")["cases"]
    return cases


def exists() -> bool:
    return Path(DATA).is_dir()

"""A tiny importer used by the import-core tests only (registered as ``demo`` by
:func:`register_demo`): an "organisation" export of users, bots and repositories.

Export::

    {"org": "acme",
     "users": [{"login": "alice", "email": "alice@acme.test"}],
     "bots":  [{"name": "ci", "owner": "alice@acme.test"}],   # owner: an e-mail, optional
     "repos": [{"name": "api", "writers": ["alice", "bot:ci"], "readers": [...]}]}

Users resolve to existing identities (links.demo = login, or the IdP's e-mails), else
``human:demo-<login>``; bots become ``service_account:demo-bot-<name>`` owned by the
owner's identity (or ``group:demo-admins#member``).
"""

from __future__ import annotations

from typing import Any

from keyplane.graph.tuples import Tuple
from keyplane.importers.base import ImportPlan, bad_field, register, resolve
from keyplane.policy.state import PolicyState

FRAGMENT = """\
type demo_org
  relations
    define member: [human]

type demo_repo
  relations
    define org: [demo_org]
    define writer: [human, service_account, agent]
    define reader: [human, service_account, agent] or writer or member from org
"""

DEFAULT_OWNER = "group:demo-admins#member"


def _str(obj: Any, key: str, path: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, str) or not value:
        raise bad_field(f"{path}.{key}", "must be a non-empty string")
    return value


def _list(obj: dict[str, Any], key: str, path: str) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise bad_field(f"{path}{key}", "must be a list")
    return value


def plan_demo(data: Any, state: PolicyState) -> ImportPlan:
    if not isinstance(data, dict):
        raise bad_field("$", "must be a JSON object")
    org = _str(data, "org", "$")
    plan = ImportPlan("demo", org, model=FRAGMENT)
    users: dict[str, str] = {}
    emails: dict[str, str] = {}
    for i, u in enumerate(_list(data, "users", "")):
        login = _str(u, "login", f"users[{i}]")
        mail = u.get("email")
        node = plan.identity(
            state, "human", login, display_name=u.get("name") or login,
            emails=[mail] if isinstance(mail, str) else (),
        )  # fmt: skip
        users[login] = node
        if isinstance(mail, str):
            emails[mail.lower()] = node
        plan.tuples.append(Tuple(f"demo_org:{org}", "member", node))
    for i, b in enumerate(_list(data, "bots", "")):
        name = _str(b, "name", f"bots[{i}]")
        owner_mail = b.get("owner")
        owner = DEFAULT_OWNER
        if isinstance(owner_mail, str):
            found = emails.get(owner_mail.lower()) or resolve(state, "demo", "", [owner_mail])
            if found is not None and found.startswith("human:"):
                owner = found
            else:
                plan.warnings.append(f"bots[{i}]: owner {owner_mail} unknown; {DEFAULT_OWNER}")
        users[f"bot:{name}"] = plan.identity(
            state, "service_account", f"bot/{name}", display_name=name, owners=[owner]
        )
    for i, r in enumerate(_list(data, "repos", "")):
        name = _str(r, "name", f"repos[{i}]")
        repo = f"demo_repo:{org}/{name}"
        plan.tuples.append(Tuple(repo, "org", f"demo_org:{org}"))
        for rel in ("writers", "readers"):
            for j, who in enumerate(_list(r, rel, f"repos[{i}].")):
                if who not in users:
                    raise bad_field(f"repos[{i}].{rel}[{j}]", f"unknown user {who!r}")
                plan.tuples.append(Tuple(repo, rel[:-1], users[who]))
    return plan


def register_demo() -> None:
    register("demo", plan_demo)


def export(**kw: Any) -> dict[str, Any]:
    """The sample export; keyword arguments replace its parts."""
    data: dict[str, Any] = {
        "org": "acme",
        "users": [
            {"login": "alice", "email": "Alice@Acme.test"},
            {"login": "bob", "email": "bob@acme.test"},
            {"login": "carol"},
        ],
        "bots": [{"name": "ci", "owner": "alice@acme.test"}, {"name": "deploy"}],
        "repos": [
            {"name": "api", "writers": ["alice", "bot:ci"], "readers": ["carol"]},
            {"name": "web", "writers": ["bob", "bot:deploy"]},
        ],
    }
    data.update(kw)
    return data

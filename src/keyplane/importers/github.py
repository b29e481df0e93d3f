"""GitHub importer: a bundle of GitHub REST API answers for one organisation → members,
teams, repository permissions, apps and deploy keys in the graph (docs/identity-sources.md,
"GitHub", defines the bundle and a ``gh api`` script that produces it).

The bundle (every key but ``org`` optional; each list is the API's answer, all pages)::

    {"org":           GET /orgs/{org}  (or just the login),
     "members":       GET /orgs/{org}/members,
     "admins":        GET /orgs/{org}/members?role=admin         (the organisation's owners),
     "emails":        {login: e-mail}  (e.g. SAML SSO identities; optional),
     "teams":  [{"team":        GET /orgs/{org}/teams/{slug},
                 "members":     GET /orgs/{org}/teams/{slug}/members,
                 "maintainers": GET /orgs/{org}/teams/{slug}/members?role=maintainer,
                 "repos":       GET /orgs/{org}/teams/{slug}/repos}],
     "repos":  [{"repo":          GET /orgs/{org}/repos item,
                 "collaborators": GET /repos/{org}/{repo}/collaborators?affiliation=direct,
                 "deploy_keys":   GET /repos/{org}/{repo}/keys}],
     "installations": GET /orgs/{org}/installations (its "installations"), each with
                      optional "repositories": the names it was given (selected repositories)}

Mapping: ``github_org:<org>`` (``owner``, ``member``), ``github_team:<org>/<slug>``
(``maintainer``, ``member``; a child team's members are members of its parent),
``github_repo:<org>/<name>`` with GitHub's roles as a hierarchy — ``admin`` ⊇ ``maintain``
⊇ ``write`` ⊇ ``triage`` ⊇ ``read`` — granted to people (direct collaborators), to teams
(``github_team:…#member``), to the organisation's members (its base permission,
``default_repository_permission``) and, for ``admin``, to the organisation's owners.
People are resolved by ``links.github`` (so an agent whose ``links.github`` is a machine
user's login *is* that member) or by e-mail (the bundle's, or a member's public one) to
the identity provider's human, else are ``human:github-<login>`` (source
``import:github``). Apps are ``workload`` identities ``github-<app>-bot`` (external id
the app's bot login ``<app>[bot]``) with the access their installation's permissions give
on its repositories, owned by :data:`DEFAULT_OWNER`; deploy keys are ``service_account``
identities with ``read`` or ``write`` on their repository, owned by the member who added
them (``added_by``), else by :data:`DEFAULT_OWNER` too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyplane.graph.tuples import Tuple
from keyplane.importers.base import ImportPlan, bad_field, register, resolve
from keyplane.policy.state import PolicyState

__all__ = ["DEFAULT_OWNER", "MODEL_DSL", "ROLES", "plan_github"]

SOURCE = "github"

#: the owner of apps and deploy keys no resolved human added
DEFAULT_OWNER = "group:github-admins#member"

#: GitHub's repository roles, strongest first (each includes the ones after it)
ROLES: tuple[str, ...] = ("admin", "maintain", "write", "triage", "read")

# the API's other spellings of a role (permissions booleans, the legacy "permission")
_ALIASES = {"pull": "read", "push": "write", "maintain": "maintain", "triage": "triage"}

_PEOPLE = "human, agent, workload, service_account"
_GRANTEES = f"{_PEOPLE}, github_team#member, github_org#member"

MODEL_DSL = f"""\
model
  schema 1.1

type github_org
  relations
    define owner: [{_PEOPLE}]
    define member: [{_PEOPLE}] or owner

type github_team
  relations
    define maintainer: [{_PEOPLE}]
    define member: [{_PEOPLE}, github_team#member] or maintainer

type github_repo
  relations
    define org: [github_org]
    define admin: [{_GRANTEES}] or owner from org
    define maintain: [{_GRANTEES}] or admin
    define write: [{_GRANTEES}] or maintain
    define triage: [{_GRANTEES}] or write
    define read: [{_GRANTEES}] or triage
"""

# an installation's permissions → the repository role they amount to (strongest first):
# administration:write is admin; contents:write is write (push); pull requests or issues
# write without contents:write is triage; contents:read is read
_APP_ROLES: tuple[tuple[str, str, str], ...] = (
    ("administration", "write", "admin"),
    ("contents", "write", "write"),
    ("pull_requests", "write", "triage"),
    ("issues", "write", "triage"),
    ("contents", "read", "read"),
)


_SEG = re.compile(r"[^A-Za-z0-9._=,-]")


def _seg(text: str) -> str:
    """A GitHub login, slug or repository name as a part of an object id."""
    return _SEG.sub("-", text) or "-"


def _login(obj: Any, path: str) -> str:
    if isinstance(obj, str) and obj:
        return obj
    if not isinstance(obj, Mapping):
        raise bad_field(path, "must be a user object with a login")
    login = obj.get("login")
    if not isinstance(login, str) or not login:
        raise bad_field(f"{path}.login", "must be a non-empty string")
    return login


def _list(data: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_field(path, "must be an array")
    return value


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise bad_field(path, "must be an object")
    return value


def role_of(obj: Mapping[str, Any], path: str) -> tuple[str | None, str | None]:
    """The repository role a collaborator or team entry holds, and the custom role name
    when it is one (mapped to the strongest standard role its ``permissions`` give)."""
    name = obj.get("role_name")
    if name is None:
        name = obj.get("permission")  # a team's legacy field: pull, push, admin, …
    if isinstance(name, str) and name:
        std = _ALIASES.get(name, name)
        if std in ROLES:
            return std, None
    perms = obj.get("permissions")
    if perms is not None and not isinstance(perms, Mapping):
        raise bad_field(f"{path}.permissions", "must be an object")
    for role, key in (
        ("admin", "admin"),
        ("maintain", "maintain"),
        ("write", "push"),
        ("triage", "triage"),
        ("read", "pull"),
    ):
        if perms and perms.get(key) is True:
            return role, name if isinstance(name, str) and name else None
    if name is None and perms is None:
        raise bad_field(path, "has no role_name, permission or permissions")
    return None, name if isinstance(name, str) else None


@dataclass(slots=True)
class _Planner:
    state: PolicyState
    plan: ImportPlan
    org: str
    emails: Mapping[str, Any]
    tuples: dict[tuple[str, str, str], Tuple] = field(default_factory=dict)
    repos: dict[str, str] = field(default_factory=dict)  # repo name → node
    names: dict[str, str] = field(default_factory=dict)  # node → repo name
    custom_roles: set[str] = field(default_factory=set)
    unowned: int = 0
    people: dict[str, str] = field(default_factory=dict)  # login → node

    def add(self, obj: str, rel: str, user: str) -> None:
        t = Tuple(obj, rel, user)
        self.tuples.setdefault(t.key, t)

    def person(self, obj: Any, path: str) -> str:
        login = _login(obj, path)
        node = self.people.get(login)
        if node is None:
            node = self.people[login] = self._person(login, obj)
        return node

    def _person(self, login: str, obj: Any) -> str:
        mails: list[str] = []
        extra = self.emails.get(login)
        if isinstance(extra, str):
            mails.append(extra)
        elif isinstance(extra, list):
            mails += [m for m in extra if isinstance(m, str)]
        attrs: dict[str, Any] = {}
        if isinstance(obj, Mapping):
            if isinstance(obj.get("email"), str) and obj["email"]:
                mails.append(obj["email"])
            if isinstance(obj.get("id"), int):
                attrs["github_id"] = obj["id"]
            if obj.get("type") == "Bot":  # an app's bot user named as a collaborator
                return self.plan.identity(
                    self.state,
                    "workload",
                    login,
                    display_name=login,
                    attributes=attrs,
                    owners=(DEFAULT_OWNER,),
                )
        name = obj.get("name") if isinstance(obj, Mapping) else None
        return self.plan.identity(
            self.state,
            "human",
            login,
            display_name=name if isinstance(name, str) and name else login,
            emails=mails,
            attributes=attrs,
        )

    def repo(self, value: Any, path: str) -> str:
        """The node of a repository given as a name, ``org/name`` or a repository object."""
        if isinstance(value, Mapping):
            name = value.get("name")
            if not isinstance(name, str) or not name:
                full = value.get("full_name")
                if not isinstance(full, str) or "/" not in full:
                    raise bad_field(f"{path}.name", "must be a non-empty string")
                name = full.split("/", 1)[1]
            owner = value.get("owner")
            if isinstance(owner, Mapping) and owner.get("login") not in (None, self.org):
                raise bad_field(f"{path}.owner.login", f"is not the organisation {self.org!r}")
        elif isinstance(value, str) and value:
            owner_s, slash, rest = value.partition("/")
            if slash and owner_s != self.org:
                raise bad_field(path, f"is not a repository of {self.org!r}")
            name = rest if slash else value
        else:
            raise bad_field(path, "must be a repository name or object")
        node = self.repos.get(name)
        if node is None:
            node = self.repos[name] = f"github_repo:{_seg(self.org)}/{_seg(name)}"
            self.names[node] = name
            self.add(node, "org", f"github_org:{_seg(self.org)}")
        return node

    def grant(self, repo: str, entry: Mapping[str, Any], path: str, user: str) -> None:
        role, custom = role_of(entry, path)
        if custom:
            self.custom_roles.add(custom)
        if role is not None:
            self.add(repo, role, user)

    def owner_for(self, added_by: Any) -> tuple[str, ...]:
        login = added_by.get("login") if isinstance(added_by, Mapping) else added_by
        if isinstance(login, str) and login:
            node = resolve(self.state, SOURCE, login, self._mails(login))
            if node is None:  # a member of the bundle the import creates
                planned = (
                    q.node
                    for q in self.plan.identities
                    if q.external_id == login and q.kind == "human"
                )
                node = next(planned, None)
            if node is not None and node.startswith("human:"):
                return (node,)
        self.unowned += 1
        return (DEFAULT_OWNER,)

    def _mails(self, login: str) -> list[str]:
        extra = self.emails.get(login)
        if isinstance(extra, str):
            return [extra]
        return [m for m in extra if isinstance(m, str)] if isinstance(extra, list) else []


def plan_github(data: Any, state: PolicyState) -> ImportPlan:
    """The plan of one organisation's bundle (see the module docstring)."""
    if not isinstance(data, Mapping):
        raise bad_field("$", "expected the GitHub bundle: an object with 'org'")
    raw_org = data.get("org")
    if isinstance(raw_org, Mapping):
        org = _login(raw_org, "org")
        org_obj: Mapping[str, Any] = raw_org
    elif isinstance(raw_org, str) and raw_org:
        org, org_obj = raw_org, {}
    else:
        raise bad_field("org", "is required: the organisation (GET /orgs/{org}) or its login")
    emails = data.get("emails") or {}
    if not isinstance(emails, Mapping):
        raise bad_field("emails", "must be an object {login: e-mail}")
    plan = ImportPlan(source=SOURCE, scope=org, model=MODEL_DSL)
    p = _Planner(state, plan, org, emails)
    org_node = f"github_org:{_seg(org)}"
    warnings: list[str] = []

    for i, m in enumerate(_list(data, "members", "members")):
        p.add(org_node, "member", p.person(m, f"members[{i}]"))
    for i, m in enumerate(_list(data, "admins", "admins")):
        p.add(org_node, "owner", p.person(m, f"admins[{i}]"))

    # teams: nodes first, so a parent named later is known
    teams = _list(data, "teams", "teams")
    slugs: dict[str, str] = {}
    for i, entry in enumerate(teams):
        team = _object(_object(entry, f"teams[{i}]").get("team"), f"teams[{i}].team")
        slug = team.get("slug")
        if not isinstance(slug, str) or not slug:
            raise bad_field(f"teams[{i}].team.slug", "must be a non-empty string")
        slugs[slug] = f"github_team:{_seg(org)}/{_seg(slug)}"
    missing_parents: set[str] = set()
    for i, entry in enumerate(teams):
        path = f"teams[{i}]"
        team = entry["team"]
        node = slugs[team["slug"]]
        parent = team.get("parent")
        if parent is not None:
            pslug = _object(parent, f"{path}.team.parent").get("slug")
            if not isinstance(pslug, str) or not pslug:
                raise bad_field(f"{path}.team.parent.slug", "must be a non-empty string")
            if pslug in slugs:  # the child's members are members of the parent
                p.add(slugs[pslug], "member", f"{node}#member")
            else:
                missing_parents.add(pslug)
        maintainers = {
            p.person(m, f"{path}.maintainers[{j}]")
            for j, m in enumerate(_list(entry, "maintainers", f"{path}.maintainers"))
        }
        for j, m in enumerate(_list(entry, "members", f"{path}.members")):
            who = p.person(m, f"{path}.members[{j}]")
            role = m.get("role") if isinstance(m, Mapping) else None
            if role == "maintainer":
                maintainers.add(who)
            if who not in maintainers:
                p.add(node, "member", who)
        for who in sorted(maintainers):
            p.add(node, "maintainer", who)
        for j, r in enumerate(_list(entry, "repos", f"{path}.repos")):
            rpath = f"{path}.repos[{j}]"
            p.grant(p.repo(r, rpath), _object(r, rpath), rpath, f"{node}#member")

    base = org_obj.get("default_repository_permission")
    base_role = _ALIASES.get(base, base) if isinstance(base, str) else None
    for i, entry in enumerate(_list(data, "repos", "repos")):
        path = f"repos[{i}]"
        repo_obj = _object(entry, path).get("repo")
        repo = p.repo(repo_obj, f"{path}.repo")
        for j, c in enumerate(_list(entry, "collaborators", f"{path}.collaborators")):
            cpath = f"{path}.collaborators[{j}]"
            p.grant(repo, _object(c, cpath), cpath, p.person(c, cpath))
        for j, k in enumerate(_list(entry, "deploy_keys", f"{path}.deploy_keys")):
            kpath = f"{path}.deploy_keys[{j}]"
            key = _object(k, kpath)
            kid = key.get("id")
            if not isinstance(kid, int | str) or isinstance(kid, bool) or kid == "":
                raise bad_field(f"{kpath}.id", "must be the key's id")
            read_only = key.get("read_only", True)
            if not isinstance(read_only, bool):
                raise bad_field(f"{kpath}.read_only", "must be true or false")
            repo_name = p.names[repo]
            title = key.get("title") if isinstance(key.get("title"), str) else ""
            attrs: dict[str, Any] = {"repository": f"{org}/{repo_name}", "read_only": read_only}
            for extra in ("created_at", "last_used"):
                if isinstance(key.get(extra), str):
                    attrs[extra] = key[extra]
            sa = p.plan.identity(
                state,
                "service_account",
                f"{org}/{repo_name}/keys/{kid}",
                display_name=f"deploy key {title or kid} ({org}/{repo_name})",
                attributes=attrs,
                owners=p.owner_for(key.get("added_by")),
            )
            p.add(repo, "read" if read_only else "write", sa)
    if base_role in ROLES:
        for repo in p.repos.values():
            p.add(repo, base_role, f"{org_node}#member")

    installs = data.get("installations")
    if isinstance(installs, Mapping):  # the API's own {total_count, installations}
        installs = installs.get("installations")
    if installs is not None and not isinstance(installs, list):
        raise bad_field("installations", "must be an array")
    no_access: list[str] = []
    for i, inst in enumerate(installs or []):
        path = f"installations[{i}]"
        inst = _object(inst, path)
        slug = inst.get("app_slug")
        if not isinstance(slug, str) or not slug:
            raise bad_field(f"{path}.app_slug", "must be a non-empty string")
        perms = inst.get("permissions") or {}
        if not isinstance(perms, Mapping):
            raise bad_field(f"{path}.permissions", "must be an object")
        selection = inst.get("repository_selection", "selected")
        if selection not in ("all", "selected"):
            raise bad_field(f"{path}.repository_selection", "must be 'all' or 'selected'")
        attrs = {
            "app_slug": slug,
            "installation_id": inst.get("id"),
            "repository_selection": selection,
            "permissions": dict(perms),
        }
        node = p.plan.identity(
            state,
            "workload",
            f"{slug}[bot]",
            display_name=f"GitHub App {slug}",
            attributes=attrs,
            owners=(DEFAULT_OWNER,),
        )
        if inst.get("suspended_at"):
            warnings.append(f"app {slug} is suspended: imported without access")
            continue
        role = next((r for k, lvl, r in _APP_ROLES if perms.get(k) == lvl), None)
        if role is None:
            no_access.append(slug)
            continue
        if selection == "all":
            targets = list(p.repos.values())
        else:
            raw = inst.get("repositories")
            if raw is None:
                warnings.append(
                    f"app {slug} has selected repositories but the bundle does not list them "
                    f"({path}.repositories): imported without access"
                )
                targets = []
            elif not isinstance(raw, list):
                raise bad_field(f"{path}.repositories", "must be an array")
            else:
                targets = [p.repo(r, f"{path}.repositories[{j}]") for j, r in enumerate(raw)]
        for repo in targets:
            p.add(repo, role, node)

    plan.tuples = list(p.tuples.values())
    if missing_parents:
        warnings.append(f"parent teams not in the bundle: {', '.join(sorted(missing_parents))}")
    if p.custom_roles:
        warnings.append(
            "custom repository roles imported as the standard role their permissions give: "
            + ", ".join(sorted(p.custom_roles))
        )
    if no_access:
        warnings.append(
            "apps whose permissions give no repository role (metadata, checks, …): "
            + ", ".join(sorted(no_access))
        )
    if p.unowned:
        warnings.append(f"{p.unowned} deploy keys owned by {DEFAULT_OWNER} (no known adder)")
    plan.warnings = warnings
    return plan


register(SOURCE, plan_github)

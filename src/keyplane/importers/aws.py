"""AWS IAM importer: ``aws iam get-account-authorization-details`` → an ImportPlan.

Input: the JSON that command prints for ONE account (``UserDetailList``,
``GroupDetailList``, ``RoleDetailList``, ``Policies``; the IAM API's ``GetAccountAuthorizationDetails``
response). Policy documents may be JSON objects (what the CLI prints) or URL-encoded JSON
strings (what the raw API returns). The scope of the import is the account id, read from
the ARNs. An optional top-level ``"DefaultOwner"`` (``group:<id>#member`` or
``human:<id>``) replaces the default owner of the non-human identities planned here.

What it plans (docs/identity-sources.md, "AWS IAM", is the reference; :data:`MODEL` is
the fragment):

* IAM users → the identity they resolve to (``links.aws`` = the user's ARN, or an
  identity-provider human whose e-mail is the user's ``email`` tag); else a ``human``
  when the user looks like a person (an ``email``/``mail`` tag, or a user name that is an
  e-mail address), else a ``service_account`` NHI. The tag ``keyplane:kind`` overrides
  the guess. Each is an ``aws_account:<acct>#principal`` and
  ``aws_user:<acct>/<name>#identity``.
* Groups → ``aws_group:<acct>/<name>`` with their ``member`` users.
* Roles → ``aws_role:<acct>/<name>`` whose ``identity`` is a ``workload`` NHI (the trust
  policy names a service or an OIDC provider) or a ``service_account`` NHI (AWS
  principals, or people through SAML); the trust policy's principals → ``trusted`` (same account, services,
  providers), ``trusted_external`` (a named principal of another account, which also
  needs its own account's permission) or ``trusted_account`` (an account root).
* Policies → ``aws_policy:<acct>/<name>`` (customer managed), ``<acct>/aws/<name>``
  (AWS managed) or ``<acct>/<user|group|role>/<principal>/<name>`` (inline), ``attached``
  to users, ``aws_group#member`` and ``aws_role#session``. Each Allow statement's
  actions, classed ``read`` / ``write`` / ``admin`` (:func:`action_class`), become
  relations of ``aws_resource`` objects (:func:`resource_id`); ``sts:AssumeRole`` on
  roles becomes ``assume_allowed`` on the role (or ``assume_any`` on the account for
  ``Resource: "*"``).
* Owners of NHIs: the ``owner`` tag (an e-mail) resolved to a human, else
  :data:`DEFAULT_OWNER`.

Not modelled (each a warning of the plan): Deny statements, conditions (the grant is
written as if unconditional), permissions boundaries, ``NotPrincipal``; ``NotAction``
is taken as read and write, ``NotResource`` as every resource.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from keyplane.errors import ValidationError
from keyplane.graph.tuples import Tuple
from keyplane.importers.base import ImportPlan, bad_field, register, resolve
from keyplane.policy.state import PolicyState

__all__ = [
    "DEFAULT_OWNER",
    "MODEL",
    "action_class",
    "plan_aws",
    "resource_id",
]

SOURCE = "aws"

#: the owner of a role or service account with no resolvable ``owner`` tag
DEFAULT_OWNER = "group:aws-admins#member"

MODEL = """\
model
  schema 1.1

type aws_account
  relations
    define principal: [human, service_account, workload, agent, aws_role#session]
    define assume_any: [aws_policy#attached]

type aws_service

type aws_identity_provider

type aws_user
  relations
    define identity: [human, service_account, workload, agent]

type aws_group
  relations
    define account: [aws_account]
    define member: [human, service_account, workload, agent]

type aws_policy
  relations
    define attached: [human, service_account, workload, agent, aws_group#member, aws_role#session]

type aws_role
  relations
    define account: [aws_account]
    define identity: [workload, service_account, agent]
    define trusted: [aws_user#identity, aws_role#session, aws_service, aws_identity_provider]
    define trusted_external: [aws_user#identity, aws_role#session]
    define trusted_account: [aws_account]
    define external_account: [aws_account]
    define assume_allowed: [aws_policy#attached]
    define allowed: assume_allowed or assume_any from trusted_account or assume_any from external_account
    define can_assume: trusted or (trusted_external and allowed) or (principal from trusted_account and allowed)
    define session: identity or can_assume

type aws_resource
  relations
    define parent: [aws_resource]
    define admin: [aws_policy#attached] or admin from parent
    define write: [aws_policy#attached] or admin or write from parent
    define read: [aws_policy#attached] or admin or read from parent
"""

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ARN_RE = re.compile(r"^arn:([^:]*):([^:]*):([^:]*):([^:]*):(.*)$", re.S)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_KINDS = ("human", "service_account", "workload", "agent")

# the verbs of actions that only read (IAM's "List" and "Read" access levels, by name)
_READ_VERBS = (
    "Get",
    "List",
    "Describe",
    "Head",
    "Select",
    "Query",
    "Scan",
    "BatchGet",
    "Lookup",
    "Search",
    "View",
    "Read",
    "Download",
    "Filter",
    "Receive",
    "Decrypt",
)
# actions that change who may do what (IAM's "Permissions management" level, and the
# privilege escalations of IAM): they count as admin on their resources
_ADMIN_ACTIONS = frozenset(
    a.lower()
    for a in (
        "iam:AttachUserPolicy",
        "iam:AttachGroupPolicy",
        "iam:AttachRolePolicy",
        "iam:PutUserPolicy",
        "iam:PutGroupPolicy",
        "iam:PutRolePolicy",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:PassRole",
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "iam:UpdateLoginProfile",
        "iam:UpdateAssumeRolePolicy",
        "iam:AddUserToGroup",
        "iam:PutUserPermissionsBoundary",
        "iam:PutRolePermissionsBoundary",
        "iam:DeleteUserPermissionsBoundary",
        "iam:DeleteRolePermissionsBoundary",
        "kms:CreateGrant",
        "kms:PutKeyPolicy",
        "lambda:AddPermission",
        "s3:PutBucketPolicy",
        "s3:PutBucketAcl",
        "s3:PutObjectAcl",
        "secretsmanager:PutResourcePolicy",
        "sns:AddPermission",
        "sqs:AddPermission",
        "ecr:SetRepositoryPolicy",
        "sts:AssumeRole",
    )
)
_ADMIN_VERB_RE = re.compile(
    r"^((put|set|attach|detach|delete|update)\w*(policy|policies|acl|permissions?)"
    r"|addpermission|removepermission|creategrant|passrole)$",
    re.I,
)
_ASSUME_ACTIONS = (
    "sts:AssumeRole",
    "sts:AssumeRoleWithSAML",
    "sts:AssumeRoleWithWebIdentity",
)


# ------------------------------------------------------------------------------ pure rules


@lru_cache(maxsize=8192)  # bounded: patterns come from the exports
def _wild(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcard matching: ``*`` any run of characters, ``?`` one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.S | (re.I if ignore_case else 0))


def action_matches(pattern: str, action: str) -> bool:
    """Whether the policy action ``pattern`` (``s3:Get*``, ``*``) covers ``action``
    (IAM action names are case-insensitive)."""
    return _wild(pattern, ignore_case=True).match(action) is not None


def action_class(action: str) -> str:
    """``read``, ``write`` or ``admin`` for a policy action (a pattern may be broad).

    * ``*`` and ``<service>:*`` are ``admin``;
    * permissions management — changing a policy, an ACL, a grant, passing a role,
      creating access keys (:data:`_ADMIN_ACTIONS`, and verbs like ``Put…Policy``) — is
      ``admin``, as is a wildcard that could match one of those (``s3:Put*``);
    * a verb of the IAM "List"/"Read" access levels (``Get``, ``List``, ``Describe``,
      ``Query``, ``Scan``…, and ``Get*``) is ``read``;
    * anything else is ``write``."""
    service, _, verb = action.partition(":")
    if action == "*" or verb == "*" or not verb:
        return "admin"
    wild = "*" in verb or "?" in verb
    if not wild:
        if action.lower() in _ADMIN_ACTIONS or _ADMIN_VERB_RE.match(verb):
            return "admin"
    else:
        pat = _wild(action, ignore_case=True)
        if any(pat.match(a) for a in _ADMIN_ACTIONS):
            return "admin"
        samples = ("PutPolicy", "PutResourcePolicy", "SetPolicy", "AddPermission", "PutAcl")
        if any(pat.match(f"{service}:{s}") for s in samples):
            return "admin"
    if service.lower() == "iam" and verb.lower().startswith("generate"):
        return "read"  # credential reports, last-accessed details: IAM's "Read" level
    fixed = re.split(r"[*?]", verb, maxsplit=1)[0].lower()
    for v in _READ_VERBS:
        if fixed.startswith(v.lower()) and (not wild or len(fixed) >= len(v)):
            return "read"
    return "write"


def _name(text: str) -> str:
    """An IAM name in an object id: ``@`` (allowed in IAM names) is written ``%40``, as
    the text form of a tuple, ``object#relation@user``, cannot hold it in the object."""
    return text.replace("@", "%40")


def _clean(text: str) -> str:
    """An object id part: ``:`` becomes ``/``, empty parts go, ``@`` is ``%40``, ``#`` and
    white space ``-``."""
    out = re.sub(r"[#\x00-\x20\x7f]", "-", _name(text.replace(":", "/")))
    out = re.sub(r"/{2,}", "/", out).strip("/")
    if len(out) > 200:
        out = f"{out[:191]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return out or "-"


def resource_id(arn: str, account: str) -> str:
    """The ``aws_resource`` id of a policy's resource, as written in account ``account``.

    A concrete ARN is its text after ``arn:<partition>:`` with ``:`` as ``/`` and empty
    parts dropped (``arn:aws:s3:::prod-data`` → ``s3/prod-data``,
    ``arn:aws:dynamodb:eu-west-1:222222222222:table/orders`` →
    ``dynamodb/eu-west-1/222222222222/table/orders``). A pattern (``*`` or ``?`` in it)
    is what it covers *from that account*, so it is prefixed with the account:
    ``111111111111/s3/prod-*``; ``"*"`` alone is ``<account>/*``."""
    if arn == "*":
        return f"{account}/*"
    m = _ARN_RE.match(arn)
    text = arn if m is None else arn[len("arn:") + len(m[1]) + 1 :]
    rid = _clean(text)
    if "*" in arn or "?" in arn:
        return f"{account}/{rid}"
    return rid


def _parse_arn(arn: str) -> tuple[str, str, str, str] | None:
    """(service, region, account, resource) of an ARN, or None."""
    m = _ARN_RE.match(arn)
    return None if m is None else (m[2], m[3], m[4], m[5])


# ------------------------------------------------------------------------------ input


def _doc(value: Any, path: str) -> dict[str, Any]:
    """A policy document: an object, or (raw API) URL-encoded JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(unquote(value))
        except ValueError as exc:
            raise bad_field(path, f"not a JSON policy document ({exc})") from None
    if not isinstance(value, Mapping):
        raise bad_field(path, "must be a policy document (an object)")
    return dict(value)


def _str(entry: Mapping[str, Any], key: str, path: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise bad_field(f"{path}.{key}", "must be a non-empty string")
    return value


def _list(data: Mapping[str, Any], key: str, path: str = "") -> list[Any]:
    value = data.get(key, [])
    where = f"{path}.{key}" if path else key
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_field(where, "must be a list")
    return value


def _entries(data: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
    out: list[tuple[str, Mapping[str, Any]]] = []
    for i, entry in enumerate(_list(data, key)):
        if not isinstance(entry, Mapping):
            raise bad_field(f"{key}[{i}]", "must be an object")
        out.append((f"{key}[{i}]", entry))
    return out


def _strings(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise bad_field(path, "must be a string or a list of strings")


def _tags(entry: Mapping[str, Any], path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, tag in enumerate(_list(entry, "Tags", path)):
        if not isinstance(tag, Mapping) or not isinstance(tag.get("Key"), str):
            raise bad_field(f"{path}.Tags[{i}]", "must be an object with a string Key")
        out[tag["Key"]] = str(tag.get("Value", ""))
    return out


def _tag(tags: Mapping[str, str], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in tags.items()}
    for n in names:
        v = lowered.get(n)
        if v and v.strip():
            return v.strip()
    return None


# ------------------------------------------------------------------------------ planning


class _Planner:
    def __init__(self, data: Mapping[str, Any], state: PolicyState) -> None:
        self.data = data
        self.state = state
        self.account = _account_of(data)
        self.plan = ImportPlan(source=SOURCE, scope=self.account, model=MODEL)
        self.tuples: dict[tuple[str, str, str], Tuple] = {}
        self.notes: dict[str, list[str]] = {}
        self.default_owner = _default_owner(data)
        self.roles: dict[str, str] = {}  # role ARN -> aws_role object (this account)
        self.role_names: dict[str, str] = {}  # role name -> aws_role object
        # aws_resource ids: concrete id -> ARN; pattern id -> (ARN pattern, "*" for a
        # "Resource": "*" of this account, else "")
        self.concrete: dict[str, str] = {}
        self.patterns: dict[str, tuple[str, str]] = {}
        self.people: dict[str, str] = {}  # lower-cased e-mail -> planned human node
        self._imported: dict[str, str] | None = None

    # -- helpers

    def add(self, obj: str, rel: str, user: str) -> None:
        t = Tuple(obj, rel, user)
        self.tuples.setdefault(t.key, t)

    def note(self, kind: str, where: str) -> None:
        self.notes.setdefault(kind, []).append(where)

    def owners(self, tags: Mapping[str, str]) -> tuple[str, ...]:
        owner = _tag(tags, "owner", "keyplane:owner")
        if owner:
            mail = owner.lower()
            found = resolve(self.state, SOURCE, "", [mail])
            if found is not None:
                known = self.state.identity(found)
                if known is None or known.status == "active":
                    return (found,)
                # an owner must be active: someone who left answers for nothing
                self.note(f"owner tag naming a {known.status} person (default owner used)", owner)
                return (self.default_owner,)
            found = self.people.get(mail) or self.imported_people().get(mail)
            if found is not None:
                return (found,)
            self.note("owner tag that is no known person's e-mail (default owner used)", owner)
        return (self.default_owner,)

    def imported_people(self) -> Mapping[str, str]:
        """E-mail → the active humans other accounts' imports created (:func:`resolve`
        skips every ``import:aws`` identity, but a person of another account may well
        own this account's NHIs)."""
        if self._imported is None:
            self._imported = {}
            for i in self.state.identities():
                if i.kind != "human" or i.status != "active" or i.source != f"import:{SOURCE}":
                    continue
                links = i.attributes.get("links")
                arn = links.get(SOURCE) if isinstance(links, Mapping) else None
                parsed = _parse_arn(arn) if isinstance(arn, str) else None
                if parsed is None or parsed[2] == self.account:
                    continue  # this account's own: planned again (or gone) in this run
                mails = i.attributes.get("emails")
                for m in mails if isinstance(mails, list) else []:
                    if isinstance(m, str):
                        self._imported.setdefault(m.strip().lower(), i.node)
        return self._imported

    # -- users, groups, roles

    def users(self) -> dict[str, str]:
        """IAM user name -> its node. People are planned first, so an owner tag may name
        any person of the export."""
        out: dict[str, str] = {}
        parsed: list[tuple[str, Mapping[str, Any], str, str, dict[str, str], str | None, str]] = []
        for path, u in _entries(self.data, "UserDetailList"):
            name, arn = _str(u, "UserName", path), _str(u, "Arn", path)
            tags = _tags(u, path)
            mail = _tag(tags, "email", "mail", "e-mail")
            if mail is None and _EMAIL_RE.match(name):
                mail = name
            kind = _tag(tags, "keyplane:kind") or ("human" if mail else "service_account")
            if kind not in _KINDS:
                raise bad_field(f"{path}.Tags", f"keyplane:kind must be one of {_KINDS}")
            parsed.append((path, u, name, arn, tags, mail, kind))
        parsed.sort(key=lambda p: p[6] != "human")  # stable: export order within each
        for path, u, name, arn, tags, mail, kind in parsed:
            attrs = {
                "aws": {
                    "account": self.account,
                    "arn": arn,
                    "type": "user",
                    "id": u.get("UserId"),
                    "path": u.get("Path", "/"),
                    "tags": tags,
                }
            }
            node = self.plan.identity(
                self.state,
                kind,
                arn,
                display_name=name,
                emails=[mail.lower()] if mail else [],
                attributes=attrs,
                owners=self.owners(tags) if kind != "human" else (),
            )
            if mail and node.startswith("human:"):
                self.people.setdefault(mail.lower(), node)
            out[name] = node
            self.add(f"aws_user:{self.account}/{_name(name)}", "identity", node)
            self.add(f"aws_account:{self.account}", "principal", node)
            if u.get("PermissionsBoundary"):
                self.note("permissions boundary not modelled", f"user {name}")
            for i, g in enumerate(_list(u, "GroupList", path)):
                if not isinstance(g, str):
                    raise bad_field(f"{path}.GroupList[{i}]", "must be a group name")
                self.add(f"aws_group:{self.account}/{_name(g)}", "member", node)
        return out

    def roles_pass(self) -> list[tuple[str, Mapping[str, Any], str]]:
        """Plans every role's identity; answers (path, entry, aws_role object)."""
        out = []
        for path, r in _entries(self.data, "RoleDetailList"):
            name, arn = _str(r, "RoleName", path), _str(r, "Arn", path)
            obj = f"aws_role:{self.account}/{_name(name)}"
            self.roles[arn] = obj
            self.role_names[name] = obj
            out.append((path, r, obj))
        for path, r, obj in out:
            name, arn = r["RoleName"], r["Arn"]
            tags = _tags(r, path)
            trust = r.get("AssumeRolePolicyDocument")
            doc = _doc(trust, f"{path}.AssumeRolePolicyDocument") if trust is not None else {}
            kinds = self.trust(obj, name, doc, f"{path}.AssumeRolePolicyDocument")
            kind = _tag(tags, "keyplane:kind") or (
                "workload" if kinds & {"Service", "Federated:oidc"} else "service_account"
            )
            if kind not in ("workload", "service_account"):
                raise bad_field(
                    f"{path}.Tags", "keyplane:kind of a role: workload or service_account"
                )
            attrs = {
                "aws": {
                    "account": self.account,
                    "arn": arn,
                    "type": "role",
                    "id": r.get("RoleId"),
                    "path": r.get("Path", "/"),
                    "tags": tags,
                }
            }
            last = r.get("RoleLastUsed")
            if isinstance(last, Mapping) and isinstance(last.get("LastUsedDate"), str):
                attrs["aws"]["last_used"] = last["LastUsedDate"]
            node = self.plan.identity(
                self.state,
                kind,
                arn,
                display_name=name,
                attributes=attrs,
                owners=self.owners(tags),
            )
            self.add(obj, "identity", node)
            self.add(obj, "account", f"aws_account:{self.account}")
            self.add(f"aws_account:{self.account}", "principal", f"{obj}#session")
            if r.get("PermissionsBoundary"):
                self.note("permissions boundary not modelled", f"role {name}")
        return out

    def principal_ref(self, arn: str) -> tuple[str, str] | None:
        """(aws account, graph user) a trust policy's AWS principal names, or None."""
        if _ACCOUNT_RE.match(arn):
            return arn, f"aws_account:{arn}"
        parsed = _parse_arn(arn)
        if parsed is None:
            return None
        service, _, acct, res = parsed
        kind, _, rest = res.partition("/")
        name = rest.rsplit("/", 1)[-1] if rest else ""
        if service == "iam" and res == "root":
            return acct, f"aws_account:{acct}"
        if service == "iam" and kind == "user" and name:
            return acct, f"aws_user:{acct}/{_name(name)}#identity"
        if service == "iam" and kind == "role" and name:
            return acct, f"aws_role:{acct}/{_name(name)}#session"
        if service == "sts" and kind == "assumed-role" and rest:
            return acct, f"aws_role:{acct}/{_name(rest.split('/')[0])}#session"
        return None

    def trust(self, obj: str, role: str, doc: Mapping[str, Any], path: str) -> set[str]:
        """Writes the trust tuples of role ``obj``; answers the principal kinds seen."""
        kinds: set[str] = set()
        for i, st in enumerate(_statements(doc, path)):
            where = f"{path}.Statement[{i}]"
            if st.get("Effect") != "Allow":
                self.note("Deny statement not modelled", f"trust of role {role}")
                continue
            actions = _strings(st.get("Action"), f"{where}.Action")
            if not any(action_matches(a, x) for a in actions for x in _ASSUME_ACTIONS):
                continue
            if "NotPrincipal" in st:
                self.note("NotPrincipal not modelled", f"trust of role {role}")
                continue
            if "Condition" in st:
                self.note("condition not modelled (taken as always true)", f"trust of role {role}")
            principal = st.get("Principal")
            if principal == "*":
                principal = {"AWS": "*"}
            if not isinstance(principal, Mapping):
                raise bad_field(f"{where}.Principal", 'must be an object or "*"')
            for key, value in principal.items():
                for p in _strings(value, f"{where}.Principal.{key}"):
                    kinds.add(key if key != "Federated" else _federation(p))
                    self.trusted(obj, role, key, p)
        return kinds

    def trusted(self, obj: str, role: str, key: str, p: str) -> None:
        if key == "Service":
            self.add(obj, "trusted", f"aws_service:{_clean(p)}")
        elif key == "Federated":
            self.add(obj, "trusted", f"aws_identity_provider:{resource_id(p, self.account)}")
        elif key == "AWS":
            if p == "*":
                self.note('trust of every AWS principal ("*") not modelled', f"role {role}")
                return
            ref = self.principal_ref(p)
            if ref is None:
                self.note(
                    "trusted principal not understood (a deleted principal's id?)", f"{role}: {p}"
                )
                return
            acct, user = ref
            if user.startswith("aws_account:"):
                self.add(obj, "trusted_account", user)
            elif acct == self.account:
                self.add(obj, "trusted", user)
            else:
                self.add(obj, "trusted_external", user)
                self.add(obj, "external_account", f"aws_account:{acct}")
        else:
            self.note(f"{key} principal not modelled", f"role {role}")

    # -- policies

    def policies(self, users: Mapping[str, str]) -> None:
        acct = self.account
        managed: dict[str, tuple[str, dict[str, Any], str]] = {}  # ARN -> (id, doc, path)
        for path, p in _entries(self.data, "Policies"):
            arn, name = _str(p, "Arn", path), _str(p, "PolicyName", path)
            pid = f"{acct}/aws/{_name(name)}" if ":aws:policy/" in arn else f"{acct}/{_name(name)}"
            doc = None
            for i, v in enumerate(_list(p, "PolicyVersionList", path)):
                if isinstance(v, Mapping) and v.get("IsDefaultVersion"):
                    doc = _doc(v.get("Document"), f"{path}.PolicyVersionList[{i}].Document")
            if doc is None:
                raise bad_field(f"{path}.PolicyVersionList", "has no default version")
            managed[arn] = (pid, doc, path)
        attached: dict[str, set[str]] = {}

        def attach(holder: Mapping[str, Any], path: str, subject: str, what: str) -> None:
            for i, a in enumerate(_list(holder, "AttachedManagedPolicies", path)):
                if not isinstance(a, Mapping):
                    raise bad_field(f"{path}.AttachedManagedPolicies[{i}]", "must be an object")
                arn = _str(a, "PolicyArn", f"{path}.AttachedManagedPolicies[{i}]")
                if arn not in managed:
                    self.note(
                        "attached policy missing from Policies (not modelled)", f"{what}: {arn}"
                    )
                    continue
                attached.setdefault(arn, set()).add(subject)

        def inline(
            holder: Mapping[str, Any], path: str, subject: str, kind: str, owner: str
        ) -> None:
            key = {"user": "UserPolicyList", "group": "GroupPolicyList", "role": "RolePolicyList"}[
                kind
            ]
            for i, ip in enumerate(_list(holder, key, path)):
                where = f"{path}.{key}[{i}]"
                if not isinstance(ip, Mapping):
                    raise bad_field(where, "must be an object")
                name = _str(ip, "PolicyName", where)
                pid = f"{acct}/{kind}/{_name(owner)}/{_name(name)}"
                doc = _doc(ip.get("PolicyDocument"), f"{where}.PolicyDocument")
                self.add(f"aws_policy:{pid}", "attached", subject)
                self.statements(pid, doc, f"{where}.PolicyDocument")

        for path, u in _entries(self.data, "UserDetailList"):
            node = users[u["UserName"]]
            attach(u, path, node, f"user {u['UserName']}")
            inline(u, path, node, "user", u["UserName"])
        for path, g in _entries(self.data, "GroupDetailList"):
            name = _str(g, "GroupName", path)
            _str(g, "Arn", path)
            obj = f"aws_group:{acct}/{_name(name)}"
            self.add(obj, "account", f"aws_account:{acct}")
            attach(g, path, f"{obj}#member", f"group {name}")
            inline(g, path, f"{obj}#member", "group", name)
        for path, r in _entries(self.data, "RoleDetailList"):
            obj = self.role_names[r["RoleName"]]
            attach(r, path, f"{obj}#session", f"role {r['RoleName']}")
            inline(r, path, f"{obj}#session", "role", r["RoleName"])
        for arn, subjects in attached.items():
            pid, doc, path = managed[arn]
            for s in sorted(subjects):
                self.add(f"aws_policy:{pid}", "attached", s)
            self.statements(pid, doc, f"{path}.PolicyVersionList")

    def statements(self, pid: str, doc: Mapping[str, Any], path: str) -> None:
        subject = f"aws_policy:{pid}#attached"
        for i, st in enumerate(_statements(doc, path)):
            where = f"{path}.Statement[{i}]"
            if st.get("Effect") != "Allow":
                self.note("Deny statement not modelled", f"policy {pid}")
                continue
            if "Condition" in st:
                self.note("condition not modelled (taken as always true)", f"policy {pid}")
            resources = _strings(st.get("Resource"), f"{where}.Resource")
            if "NotResource" in st:
                self.note("NotResource taken as every resource", f"policy {pid}")
                resources = ["*"]
            if "NotAction" in st:
                self.note("NotAction taken as read and write", f"policy {pid}")
                for r in resources:
                    for cls in ("read", "write"):
                        self.grant(r, "*", cls, subject)
                continue
            actions = _strings(st.get("Action"), f"{where}.Action")
            for a in actions:
                if action_matches(a, "sts:AssumeRole"):
                    self.assume(resources, subject, pid)
                if a.lower().startswith("sts:assumerole"):
                    continue  # only the role's assume_allowed
                service = a.partition(":")[0] if a != "*" else "*"
                for r in resources:
                    self.grant(r, service, action_class(a), subject)

    def grant(self, arn: str, service: str, cls: str, subject: str) -> None:
        if arn == "*":
            rid = f"{self.account}/*" if service == "*" else f"{self.account}/{_clean(service)}/*"
            pattern = "*" if service == "*" else f"arn:*:{service}:*"
            self.patterns[rid] = (pattern, "*")
        else:
            rid = resource_id(arn, self.account)
            if "*" in arn or "?" in arn:
                self.patterns[rid] = (arn, "")
            else:
                self.concrete[rid] = arn
        self.add(f"aws_resource:{rid}", cls, subject)

    def assume(self, resources: Iterable[str], subject: str, pid: str) -> None:
        for r in resources:
            if r == "*":
                self.add(f"aws_account:{self.account}", "assume_any", subject)
                continue
            ref = self.principal_ref(r)
            if ref is not None and ref[1].startswith("aws_role:") and "*" not in r and "?" not in r:
                self.add(ref[1].removesuffix("#session"), "assume_allowed", subject)
                continue
            matched = [
                obj for arn, obj in self.roles.items() if _wild(r, ignore_case=False).match(arn)
            ]
            for obj in matched:
                self.add(obj, "assume_allowed", subject)
            parsed = _parse_arn(r)
            if parsed is None or parsed[2] != self.account:
                self.note(
                    "sts:AssumeRole on a pattern of other accounts' roles not modelled",
                    f"policy {pid}: {r}",
                )

    def link_patterns(self) -> None:
        """``parent`` tuples from each concrete resource to every pattern covering it.

        Only the concrete ARNs that can match are tried: those of the pattern's service
        for ``"Resource": "*"`` (this account's own, or without an account), those
        starting with the pattern's literal prefix otherwise (a range of the sorted
        ARNs), so a large account is not patterns × resources regex matches."""
        concrete = sorted((arn, rid) for rid, arn in self.concrete.items())
        arns = [a for a, _ in concrete]
        by_service: dict[str, list[tuple[str, str]]] = {}
        for arn, rid in concrete:
            parsed = _parse_arn(arn)
            if parsed is not None and parsed[2] in ("", self.account):
                by_service.setdefault(parsed[0], []).append((arn, rid))
        for pid, (pattern, scope) in sorted(self.patterns.items()):
            if scope == "*":  # "Resource": "*" of this account: its own resources only
                service = pattern.split(":")[2] if pattern != "*" else "*"
                if service == "*":
                    candidates = [c for cs in by_service.values() for c in cs]
                else:
                    candidates = by_service.get(service, [])
            else:
                prefix = re.split(r"[*?]", pattern, maxsplit=1)[0]
                lo = bisect.bisect_left(arns, prefix)
                hi = bisect.bisect_left(arns, prefix + "\U0010ffff")
                candidates = concrete[lo:hi]
            match = _wild(pattern, ignore_case=False).match
            for arn, rid in candidates:
                if match(arn):
                    self.add(f"aws_resource:{rid}", "parent", f"aws_resource:{pid}")

    def run(self) -> ImportPlan:
        users = self.users()
        self.roles_pass()
        self.policies(users)
        self.link_patterns()
        self.plan.tuples = list(self.tuples.values())
        for kind, where in sorted(self.notes.items()):
            sample = ", ".join(sorted(set(where))[:5])
            more = len(set(where)) - 5
            self.plan.warnings.append(
                f"{kind}: {len(where)}× ({sample}{f', and {more} more' if more > 0 else ''})"
            )
        return self.plan


def _statements(doc: Mapping[str, Any], path: str) -> list[Mapping[str, Any]]:
    sts = doc.get("Statement", [])
    if isinstance(sts, Mapping):
        sts = [sts]
    if not isinstance(sts, list):
        raise bad_field(f"{path}.Statement", "must be an object or a list")
    for i, st in enumerate(sts):
        if not isinstance(st, Mapping):
            raise bad_field(f"{path}.Statement[{i}]", "must be an object")
    return sts


def _federation(provider: str) -> str:
    """``Federated:saml`` (people signing in through an identity provider) or
    ``Federated:oidc`` (workload identity: an OIDC provider, Cognito, web identity)."""
    return "Federated:saml" if ":saml-provider/" in provider else "Federated:oidc"


def _account_of(data: Any) -> str:
    if not isinstance(data, Mapping):
        raise ValidationError(
            "the export must be the JSON object `aws iam get-account-authorization-details` prints",
            details={"path": ""},
        )
    keys = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
    if not any(k in data for k in keys):
        raise bad_field("", f"not an IAM authorization details export (none of {', '.join(keys)})")
    accounts: dict[str, str] = {}
    for key in keys[:3]:
        for path, entry in _entries(data, key):
            arn = _str(entry, "Arn", path)
            parsed = _parse_arn(arn)
            if parsed is None or not _ACCOUNT_RE.match(parsed[2]):
                raise bad_field(f"{path}.Arn", f"not an IAM ARN with an account id: {arn!r}")
            accounts.setdefault(parsed[2], f"{path}.Arn")
    for path, entry in _entries(data, "Policies"):
        parsed = _parse_arn(_str(entry, "Arn", path))
        if parsed is not None and _ACCOUNT_RE.match(parsed[2]):
            accounts.setdefault(parsed[2], f"{path}.Arn")
    if not accounts:
        raise bad_field(
            "UserDetailList", "no user, group, role or customer policy to read the account id from"
        )
    if len(accounts) > 1:
        first, second = sorted(accounts.items(), key=lambda kv: kv[1])[:2]
        raise bad_field(
            second[1],
            f"account {second[0]} differs from {first[0]} ({first[1]}): import one account's export at a time",
        )
    return next(iter(accounts))


def _default_owner(data: Mapping[str, Any]) -> str:
    value = data.get("DefaultOwner")
    if value is None:
        return DEFAULT_OWNER
    if not isinstance(value, str) or not re.fullmatch(
        r"(human:[^#:\s]+|group:[^#:\s]+#member)", value
    ):
        raise bad_field("DefaultOwner", "must be 'human:<id>' or 'group:<id>#member'")
    return value


def plan_aws(data: Any, state: PolicyState) -> ImportPlan:
    """The plan of one account's ``aws iam get-account-authorization-details`` export."""
    return _Planner(data, state).run()


register(SOURCE, plan_aws)

"""Kubernetes RBAC importer: the JSON of ``kubectl get serviceaccounts,roles,rolebindings,
clusterroles,clusterrolebindings -A -o json`` → service-account identities, the
``k8s_*`` model types and the tuples of every binding and rule (docs/identity-sources.md,
"Kubernetes").

The graph mirrors Kubernetes' own authorizer (RBAC, kubernetes.io/docs/reference/
access-authn-authz/rbac/): a subject is ``subject`` of a binding; the binding's subjects
are ``bound`` to the role it references, *in the binding's scope* — a Role in its
namespace, a ClusterRole either cluster-wide (ClusterRoleBinding:
``k8s_clusterrole:<cluster>/<name>``) or in one namespace (RoleBinding:
``k8s_clusterrole:<cluster>/<namespace>/<name>``); each rule of the role gives the role's
``bound`` users one relation per verb (``get`` … ``deletecollection``, ``bind``,
``escalate``, ``impersonate``, ``use``, ``approve``, ``sign``; ``*`` is ``any_verb``) on

* ``k8s_resource:<cluster>/<namespace>/<resource>`` (``pods``, ``pods/exec``,
  ``secrets``; ``<namespace>`` is ``*`` for a cluster-wide grant and for cluster-scoped
  resources), or ``…/<resource>/name=<object>`` for rules limited by ``resourceNames``;
* ``k8s_namespace:<cluster>/<namespace>`` for ``resources: ["*"]`` in a namespace, and
  ``k8s_cluster:<cluster>`` for ``resources: ["*"]`` cluster-wide.

Wider objects grant down: a resource node's verbs include its namespace's, the
cluster-wide node's (``parent``) and the cluster's; so ``check(service_account:…, "get",
"k8s_resource:prod/payments/secrets")`` answers ``kubectl auth can-i get secrets -n
payments --as system:serviceaccount:…``. API groups are not part of the resource id
(``deployments`` whatever the group); non-resource URLs are not modelled (a warning
counts them).

Principals: ServiceAccounts are ``service_account`` identities (external id
``<cluster>/<namespace>/<name>``) owned by the annotation ``keyplane.dev/owner`` (an
e-mail resolved to the identity provider's human, or ``group:<id>``) on the account or
else on its Namespace item, else by :data:`DEFAULT_OWNER`. ``User`` subjects are humans
(resolved by ``links.kubernetes`` or, for an e-mail user name, the IdP's e-mails);
``Group`` subjects are ``group:<id>#member`` (:func:`group_id`: the IdP's groups, whose
members the IdP provisions); ``system:serviceaccounts[:<namespace>]`` groups expand to the
accounts they contain. Kubernetes' own components — bindings named ``system:…`` and other
``system:`` users and groups — are not imported (a warning counts them).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keyplane.graph.tuples import Tuple
from keyplane.importers.base import ImportPlan, bad_field, register, resolve, sanitize_id
from keyplane.policy.state import PolicyState

__all__ = [
    "DEFAULT_OWNER",
    "MODEL_DSL",
    "OWNER_ANNOTATION",
    "VERBS",
    "group_id",
    "plan_kubernetes",
]

SOURCE = "kubernetes"

#: the owner of a service account without a ``keyplane.dev/owner`` annotation
DEFAULT_OWNER = "group:k8s-admins#member"
OWNER_ANNOTATION = "keyplane.dev/owner"

#: the verbs modelled as relations (Kubernetes' standard and special verbs); ``*`` is
#: ``any_verb``, which every verb relation includes
VERBS: tuple[str, ...] = (
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "bind",
    "escalate",
    "impersonate",
    "use",
    "approve",
    "sign",
)

_PRINCIPALS = "human, agent, workload, service_account, group#member"
_BOUND = "k8s_role#bound, k8s_clusterrole#bound"


def _model() -> str:
    lines = [
        "model",
        "  schema 1.1",
        "",
        "type k8s_binding",
        "  relations",
        f"    define subject: [{_PRINCIPALS}]",
        "",
        "type k8s_role",
        "  relations",
        "    define bound: [k8s_binding#subject]",
        "",
        "type k8s_clusterrole",
        "  relations",
        "    define bound: [k8s_binding#subject]",
        "",
        "type k8s_cluster",
        "  relations",
        "    define any_verb: [k8s_clusterrole#bound]",
    ]
    lines += [f"    define {v}: [k8s_clusterrole#bound] or any_verb" for v in VERBS]
    lines += [
        "",
        "type k8s_namespace",
        "  relations",
        "    define cluster: [k8s_cluster]",
        f"    define any_verb: [{_BOUND}] or any_verb from cluster",
    ]
    lines += [f"    define {v}: [{_BOUND}] or any_verb or {v} from cluster" for v in VERBS]
    lines += [
        "",
        "type k8s_resource",
        "  relations",
        "    define cluster: [k8s_cluster]",
        "    define namespace: [k8s_namespace]",
        "    define parent: [k8s_resource]",
        f"    define any_verb: [{_BOUND}] or any_verb from parent or any_verb from namespace"
        " or any_verb from cluster",
    ]
    lines += [
        f"    define {v}: [{_BOUND}] or any_verb or {v} from parent or {v} from namespace"
        f" or {v} from cluster"
        for v in VERBS
    ]
    return "\n".join(lines) + "\n"


#: the model fragment the import adds to the store's model (types it lacks)
MODEL_DSL = _model()

# cluster-scoped resources of the built-in API groups: no per-namespace node is made for
# them (a grant on them is cluster-wide: k8s_resource:<cluster>/*/<resource>)
_CLUSTER_SCOPED = frozenset(
    {
        "nodes",
        "namespaces",
        "persistentvolumes",
        "clusterroles",
        "clusterrolebindings",
        "customresourcedefinitions",
        "storageclasses",
        "csidrivers",
        "csinodes",
        "volumeattachments",
        "priorityclasses",
        "runtimeclasses",
        "ingressclasses",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "apiservices",
        "certificatesigningrequests",
        "podsecuritypolicies",
        "componentstatuses",
        "tokenreviews",
        "subjectaccessreviews",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "users",
        "groups",
        "flowschemas",
        "prioritylevelconfigurations",
    }
)

# resources people ask about: their nodes always exist (per namespace for namespaced ones), so
# a wildcard grant (resources "*", or cluster-admin) answers a check on them
_COMMON_RESOURCES = (
    "pods",
    "pods/exec",
    "pods/log",
    "secrets",
    "configmaps",
    "services",
    "serviceaccounts",
    "deployments",
    "statefulsets",
    "daemonsets",
    "jobs",
    "cronjobs",
    "persistentvolumeclaims",
    "ingresses",
    "roles",
    "rolebindings",
    # cluster-scoped: one cluster-wide node each
    "nodes",
    "namespaces",
    "persistentvolumes",
    "clusterroles",
    "clusterrolebindings",
    "customresourcedefinitions",
)

_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Namespace")
_SEG = re.compile(r"[^A-Za-z0-9._=,*-]")
_RES = re.compile(r"[^A-Za-z0-9._=,*/-]")


def _seg(text: str) -> str:
    """One path segment of an object id (no ``/``, ``:``, ``#``, ``@`` or spaces)."""
    out = _SEG.sub("-", text)
    return out or "-"


def _res(text: str) -> str:
    """A resource (``pods``, ``pods/exec``) as it appears in an object id."""
    out = _RES.sub("-", text).strip("/")
    return out or "-"


_GROUP_BAD = re.compile(r"[^a-z0-9._@+-]+")


def group_id(name: str) -> str:
    """The Keyplane group a Kubernetes ``Group`` subject is: the id SCIM gives a group of
    that display name (lower-cased, other characters ``-``: ``Payments Team`` →
    ``payments-team``), so an OIDC ``groups`` claim meets the IdP's provisioned group."""
    out = _GROUP_BAD.sub("-", name.lower()).strip("-.")
    return out[:200] if out else sanitize_id(name)


# ------------------------------------------------------------------------------ input


@dataclass(slots=True)
class _Item:
    path: str
    kind: str
    name: str
    namespace: str
    obj: Mapping[str, Any]

    @property
    def annotations(self) -> Mapping[str, Any]:
        meta = self.obj.get("metadata")
        ann = meta.get("annotations") if isinstance(meta, Mapping) else None
        return ann if isinstance(ann, Mapping) else {}


def _documents(data: Any) -> list[tuple[str, Any]]:
    """The export's JSON documents with their path prefixes: one List, a JSON array of
    them, ``{"cluster": …, "lists": [...]}``, or text of several concatenated ones."""
    if isinstance(data, bytes | bytearray):
        data = bytes(data).decode("utf-8", errors="replace")
    if isinstance(data, str):
        docs: list[Any] = []
        dec = json.JSONDecoder()
        pos, text = 0, data
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            try:
                doc, pos = dec.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise bad_field(f"[{len(docs)}]", f"not JSON: {exc.msg} at {exc.pos}") from None
            docs.append(doc)
        if len(docs) == 1:
            return [("", docs[0])]
        return [(f"[{i}]", d) for i, d in enumerate(docs)]
    if isinstance(data, list):
        return [(f"[{i}]", d) for i, d in enumerate(data)]
    if isinstance(data, Mapping) and "lists" in data:
        lists = data["lists"]
        if not isinstance(lists, list):
            raise bad_field("lists", "must be an array of kubectl List objects")
        out = [(f"lists[{i}]", d) for i, d in enumerate(lists)]
        if "cluster" in data:
            out.insert(0, ("", {"cluster": data["cluster"], "items": []}))
        return out
    return [("", data)]


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix and not key.startswith("[") else f"{prefix}{key}"


def _read(data: Any) -> tuple[str | None, list[_Item], Counter[str]]:
    cluster: str | None = None
    items: list[_Item] = []
    ignored: Counter[str] = Counter()
    for prefix, doc in _documents(data):
        if not isinstance(doc, Mapping):
            raise bad_field(prefix or "$", "expected a kubectl List object (kubectl get … -o json)")
        if "cluster" in doc:
            name = doc["cluster"]
            cpath = _join(prefix, "cluster")
            if not isinstance(name, str) or not name.strip():
                raise bad_field(cpath, "must be a non-empty string (the cluster's name)")
            if cluster is not None and name != cluster:
                raise bad_field(cpath, f"names cluster {name!r}, but the export is of {cluster!r}")
            cluster = name
        if "items" in doc:
            raw = doc["items"]
            ipath = _join(prefix, "items")
            if not isinstance(raw, list):
                raise bad_field(ipath, "must be an array")
            entries = [(f"{ipath}[{i}]", it) for i, it in enumerate(raw)]
        elif "kind" in doc:
            entries = [(prefix or "$", doc)]  # a single object (kubectl get x NAME -o json)
        else:
            raise bad_field(prefix or "$", "expected a kubectl List: an object with 'items'")
        for path, it in entries:
            item = _item(path, it)
            if item.kind == "List":  # a List inside a List: flatten one level
                sub = it.get("items")
                if not isinstance(sub, list):
                    raise bad_field(f"{path}.items", "must be an array")
                for j, s in enumerate(sub):
                    si = _item(f"{path}.items[{j}]", s)
                    if si.kind in _KINDS:
                        items.append(si)
                    else:
                        ignored[si.kind] += 1
            elif item.kind in _KINDS:
                items.append(item)
            else:
                ignored[item.kind] += 1
    return cluster, items, ignored


def _item(path: str, it: Any) -> _Item:
    if not isinstance(it, Mapping):
        raise bad_field(path, "must be an object")
    kind = it.get("kind")
    if not isinstance(kind, str) or not kind:
        raise bad_field(f"{path}.kind", "must be a non-empty string")
    if kind == "List":
        return _Item(path, kind, "", "", it)
    meta = it.get("metadata")
    if not isinstance(meta, Mapping):
        raise bad_field(f"{path}.metadata", "must be an object")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise bad_field(f"{path}.metadata.name", "must be a non-empty string")
    ns = meta.get("namespace", "")
    if ns is None:
        ns = ""
    if not isinstance(ns, str):
        raise bad_field(f"{path}.metadata.namespace", "must be a string")
    if kind in ("ServiceAccount", "Role", "RoleBinding") and not ns:
        raise bad_field(f"{path}.metadata.namespace", f"a {kind} needs its namespace")
    ann = meta.get("annotations")
    if ann is not None and not isinstance(ann, Mapping):
        raise bad_field(f"{path}.metadata.annotations", "must be an object")
    return _Item(path, kind, name, ns, it)


def _strings(value: Any, path: str, *, required: bool = False) -> list[str]:
    if value is None:
        if required:
            raise bad_field(path, "is required (an array of strings)")
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_field(path, "must be an array of strings")
    return list(value)


@dataclass(slots=True)
class _Rule:
    verbs: list[str]
    resources: list[str]
    names: list[str]
    urls: list[str]


def _rules(item: _Item) -> list[_Rule]:
    raw = item.obj.get("rules")
    path = f"{item.path}.rules"
    if raw is None:
        return []  # an aggregated ClusterRole the controller has not filled yet
    if not isinstance(raw, list):
        raise bad_field(path, "must be an array")
    out = []
    for i, r in enumerate(raw):
        rp = f"{path}[{i}]"
        if not isinstance(r, Mapping):
            raise bad_field(rp, "must be an object")
        _strings(r.get("apiGroups"), f"{rp}.apiGroups")
        out.append(
            _Rule(
                verbs=_strings(r.get("verbs"), f"{rp}.verbs", required=True),
                resources=_strings(r.get("resources"), f"{rp}.resources"),
                names=_strings(r.get("resourceNames"), f"{rp}.resourceNames"),
                urls=_strings(r.get("nonResourceURLs"), f"{rp}.nonResourceURLs"),
            )
        )
    return out


# ------------------------------------------------------------------------------ planning


@dataclass(slots=True)
class _Planner:
    state: PolicyState
    plan: ImportPlan
    cluster: str
    tuples: dict[tuple[str, str, str], Tuple] = field(default_factory=dict)
    accounts: dict[tuple[str, str], _Item] = field(default_factory=dict)
    namespace_items: dict[str, _Item] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    resources: set[str] = field(default_factory=set)
    named: set[tuple[str, str]] = field(default_factory=set)  # (scope node part, resource/name=)
    skipped: Counter[str] = field(default_factory=Counter)
    unknown_verbs: set[str] = field(default_factory=set)
    unresolved_owners: set[str] = field(default_factory=set)
    sa_nodes: dict[tuple[str, str], str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # User subject → node

    @property
    def c(self) -> str:
        return _seg(self.cluster)

    def add(self, obj: str, rel: str, user: str) -> None:
        t = Tuple(obj, rel, user)
        self.tuples.setdefault(t.key, t)

    # -- principals --------------------------------------------------------------------

    def owners(self, item: _Item) -> tuple[str, ...]:
        raw = item.annotations.get(OWNER_ANNOTATION)
        if not isinstance(raw, str) or not raw.strip():
            ns_item = self.namespace_items.get(item.namespace)
            raw = ns_item.annotations.get(OWNER_ANNOTATION) if ns_item else None
        found: list[str] = []
        if isinstance(raw, str):
            for part in (p.strip() for p in raw.split(",")):
                if not part:
                    continue
                if part.startswith("group:"):
                    gid = sanitize_id(part.removeprefix("group:").removesuffix("#member"))
                    found.append(f"group:{gid}#member")
                    continue
                node = resolve(self.state, SOURCE, part, (part,))
                if node is not None and node.startswith("human:"):
                    found.append(node)
                else:
                    self.unresolved_owners.add(part)
        return tuple(dict.fromkeys(found)) or (DEFAULT_OWNER,)

    def account(self, item: _Item) -> str:
        key = (item.namespace, item.name)
        node = self.sa_nodes.get(key)
        if node is not None:
            return node
        attrs: dict[str, Any] = {
            "cluster": self.cluster,
            "namespace": item.namespace,
            "name": item.name,
            "kubernetes_user": f"system:serviceaccount:{item.namespace}:{item.name}",
        }
        role_arn = item.annotations.get("eks.amazonaws.com/role-arn")
        if isinstance(role_arn, str) and role_arn:
            attrs["aws_role_arn"] = role_arn  # IRSA: the AWS role the account assumes
        gsa = item.annotations.get("iam.gke.io/gcp-service-account")
        if isinstance(gsa, str) and gsa:
            attrs["gcp_service_account"] = gsa
        node = self.plan.identity(
            self.state,
            "service_account",
            f"{self.cluster}/{item.namespace}/{item.name}",
            display_name=f"{item.namespace}/{item.name} ({self.cluster})",
            attributes=attrs,
            owners=self.owners(item),
        )
        self.sa_nodes[key] = node
        return node

    def subjects(self, binding: _Item) -> list[str]:
        raw = binding.obj.get("subjects")
        path = f"{binding.path}.subjects"
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise bad_field(path, "must be an array")
        out: list[str] = []
        for i, s in enumerate(raw):
            sp = f"{path}[{i}]"
            if not isinstance(s, Mapping):
                raise bad_field(sp, "must be an object")
            kind, name = s.get("kind"), s.get("name")
            if not isinstance(kind, str) or not kind:
                raise bad_field(f"{sp}.kind", "must be a non-empty string")
            if not isinstance(name, str) or not name:
                raise bad_field(f"{sp}.name", "must be a non-empty string")
            if kind == "ServiceAccount":
                ns = s.get("namespace") or binding.namespace
                if not isinstance(ns, str) or not ns:
                    raise bad_field(f"{sp}.namespace", "a ServiceAccount subject needs one")
                out += self._account_ref(ns, name)
            elif kind == "User":
                if name.startswith("system:serviceaccount:"):
                    ns, _, sa = name.removeprefix("system:serviceaccount:").partition(":")
                    out += self._account_ref(ns, sa)
                elif name.startswith("system:"):
                    self.skipped["system users"] += 1
                else:
                    node = self.users.get(name)
                    if node is None:
                        mails = (name,) if "@" in name else ()
                        node = self.plan.identity(self.state, "human", name, emails=mails)
                        self.users[name] = node
                    out.append(node)
            elif kind == "Group":
                if name == "system:serviceaccounts":
                    out += [self.account(a) for a in self.accounts.values()]
                elif name.startswith("system:serviceaccounts:"):
                    ns = name.removeprefix("system:serviceaccounts:")
                    out += [self.account(a) for (n, _), a in self.accounts.items() if n == ns]
                elif name.startswith("system:"):
                    self.skipped["system groups"] += 1
                else:
                    out.append(f"group:{group_id(name)}#member")
            else:
                raise bad_field(f"{sp}.kind", "must be ServiceAccount, User or Group")
        return out

    def _account_ref(self, ns: str, name: str) -> list[str]:
        self.namespaces.add(ns)
        item = self.accounts.get((ns, name))
        if item is None:
            self.skipped["subjects naming service accounts not in the export"] += 1
            return []
        return [self.account(item)]

    # -- rules -------------------------------------------------------------------------

    def grant(self, role_node: str, rules: Iterable[_Rule], namespace: str | None) -> None:
        """The rules' tuples for ``role_node#bound`` in ``namespace`` (None: cluster-wide)."""
        user = f"{role_node}#bound"
        c = self.c
        scope = _seg(namespace) if namespace is not None else "*"
        for rule in rules:
            if rule.urls and not rule.resources:
                self.skipped["non-resource URL rules (not modelled)"] += 1
                continue
            rels: list[str] = []
            for verb in rule.verbs:
                if verb == "*":
                    rels.append("any_verb")
                elif verb in VERBS:
                    rels.append(verb)
                else:
                    self.unknown_verbs.add(verb)
            for resource in rule.resources:
                if resource == "*":
                    targets = [
                        f"k8s_namespace:{c}/{scope}"
                        if namespace is not None
                        else f"k8s_cluster:{c}"
                    ]
                else:
                    res = _res(resource)
                    self.resources.add(res)
                    base = f"k8s_resource:{c}/{scope}/{res}"
                    if rule.names:
                        targets = []
                        for n in rule.names:
                            obj = f"{base}/name={_seg(n)}"
                            self.add(obj, "parent", base)
                            targets.append(obj)
                    else:
                        targets = [base]
                for obj in targets:
                    for rel in rels:
                        self.add(obj, rel, user)

    def structure(self) -> None:
        """Namespaces under the cluster, resource nodes under their namespace and their
        cluster-wide node, so wider grants reach them."""
        c = self.c
        cluster = f"k8s_cluster:{c}"
        for ns in sorted(self.namespaces):
            self.add(f"k8s_namespace:{c}/{_seg(ns)}", "cluster", cluster)
        for res in sorted(self.resources | set(_COMMON_RESOURCES)):
            wide = f"k8s_resource:{c}/*/{res}"
            self.add(wide, "cluster", cluster)
            if res.split("/", 1)[0] in _CLUSTER_SCOPED:
                continue
            for ns in sorted(self.namespaces):
                obj = f"k8s_resource:{c}/{_seg(ns)}/{res}"
                self.add(obj, "namespace", f"k8s_namespace:{c}/{_seg(ns)}")
                self.add(obj, "parent", wide)


def plan_kubernetes(data: Any, state: PolicyState) -> ImportPlan:
    """The plan of one cluster's RBAC export (see the module docstring)."""
    cluster, items, ignored = _read(data)
    warnings: list[str] = []
    if cluster is None:
        cluster = "default"
        warnings.append(
            "the export names no cluster: imported as cluster 'default' (add "
            '{"cluster": "<name>"} to the List, see docs/identity-sources.md)'
        )
    plan = ImportPlan(source=SOURCE, scope=cluster, model=MODEL_DSL)
    p = _Planner(state, plan, cluster)
    roles: dict[tuple[str, str], _Item] = {}
    cluster_roles: dict[str, _Item] = {}
    bindings: list[_Item] = []
    for it in items:
        if it.kind == "ServiceAccount":
            p.accounts.setdefault((it.namespace, it.name), it)
            p.namespaces.add(it.namespace)
        elif it.kind == "Namespace":
            p.namespace_items[it.name] = it
            p.namespaces.add(it.name)
        elif it.kind == "Role":
            roles[(it.namespace, it.name)] = it
            p.namespaces.add(it.namespace)
        elif it.kind == "ClusterRole":
            cluster_roles[it.name] = it
        else:
            bindings.append(it)
            if it.namespace:
                p.namespaces.add(it.namespace)
    # every service account is an identity, bound or not
    for item in p.accounts.values():
        p.account(item)
    c = p.c
    granted: set[str] = set()
    for b in bindings:
        if b.name.startswith("system:"):
            p.skipped["system: bindings (Kubernetes' own components)"] += 1
            continue
        ref = b.obj.get("roleRef")
        rpath = f"{b.path}.roleRef"
        if not isinstance(ref, Mapping):
            raise bad_field(rpath, "must be an object")
        rkind, rname = ref.get("kind"), ref.get("name")
        if rkind not in ("Role", "ClusterRole"):
            raise bad_field(f"{rpath}.kind", "must be Role or ClusterRole")
        if not isinstance(rname, str) or not rname:
            raise bad_field(f"{rpath}.name", "must be a non-empty string")
        is_crb = b.kind == "ClusterRoleBinding"
        if is_crb and rkind != "ClusterRole":
            raise bad_field(f"{rpath}.kind", "a ClusterRoleBinding references a ClusterRole")
        if rkind == "Role":
            role_item = roles.get((b.namespace, rname))
            role_node = f"k8s_role:{c}/{_seg(b.namespace)}/{sanitize_id(rname)}"
        else:
            role_item = cluster_roles.get(rname)
            role_node = (
                f"k8s_clusterrole:{c}/{sanitize_id(rname)}"
                if is_crb
                else f"k8s_clusterrole:{c}/{_seg(b.namespace)}/{sanitize_id(rname)}"
            )
        if role_item is None:
            p.skipped["bindings to roles not in the export"] += 1
            continue
        subjects = p.subjects(b)
        if not subjects:
            continue
        binding_node = (
            f"k8s_binding:{c}/{sanitize_id(b.name)}"
            if is_crb
            else f"k8s_binding:{c}/{_seg(b.namespace)}/{sanitize_id(b.name)}"
        )
        for s in subjects:
            p.add(binding_node, "subject", s)
        p.add(role_node, "bound", f"{binding_node}#subject")
        if role_node not in granted:
            granted.add(role_node)
            p.grant(role_node, _rules(role_item), None if is_crb else b.namespace)
    p.structure()
    plan.tuples = list(p.tuples.values())
    for what, n in sorted(p.skipped.items()):
        warnings.append(f"{n} {what} not imported")
    if p.unknown_verbs:
        warnings.append(f"verbs not modelled: {', '.join(sorted(p.unknown_verbs))}")
    if p.unresolved_owners:
        warnings.append(
            f"{OWNER_ANNOTATION} names no identity-provider human: "
            f"{', '.join(sorted(p.unresolved_owners))} (owned by {DEFAULT_OWNER} instead)"
        )
    if ignored:
        kinds = ", ".join(f"{k} ({n})" for k, n in sorted(ignored.items()))
        warnings.append(f"items of other kinds ignored: {kinds}")
    plan.warnings = warnings
    return plan


register(SOURCE, plan_kubernetes)

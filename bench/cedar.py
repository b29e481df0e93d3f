"""Cedar (PyPI ``cedarpy``, Rust core) on the same organisation: the peer reference.

Mapping of the OpenFGA graph to Cedar entities with parents:

* ``User`` and ``Group`` entities: a user's parents are the groups it is a direct member of,
  a group's parents the groups it is nested in (``users ∈ groups ∈ groups``);
* ``Folder`` entities carry ``viewers`` / ``editors`` attributes (sets of users and groups);
* ``Document`` entities have their folder as parent (``documents ∈ folders``) and carry
  ``viewers``, ``editors`` and ``folder`` (the same folder, as an attribute, because a Cedar
  policy cannot read an ancestor's attributes through ``in``).

ONE policy expresses ``viewer`` of the model (``principal in <set>`` is true when the
principal is, or descends from, any member of the set; Cedar precomputes the transitive
closure of parents when the entities are parsed, which is why its checks stay flat).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import cedarpy

__all__ = ["POLICY", "CedarGraph"]

POLICY = """
permit (principal is User, action == Action::"view", resource is Document)
when {
  principal in resource.viewers || principal in resource.editors ||
  principal in resource.folder.viewers || principal in resource.folder.editors
};
"""

_TYPES = {"user": "User", "group": "Group", "folder": "Folder", "document": "Document"}


def _uid(s: str) -> dict[str, str]:
    t, _, i = s.partition(":")
    return {"type": _TYPES[t], "id": i}


def _ref(s: str) -> dict[str, Any]:
    return {"__entity": _uid(s)}


def entities_json(triples: Iterable[tuple[str, str, str]]) -> tuple[str, int]:
    """The Cedar entities document for the organisation, and its entity count."""
    parents: dict[str, list[str]] = {}
    viewers: dict[str, list[str]] = {}
    editors: dict[str, list[str]] = {}
    folder_of: dict[str, str] = {}
    users: set[str] = set()
    for obj, rel, user in triples:
        subj = user[:-7] if user.endswith("#member") else user
        if subj.startswith("user:"):
            users.add(subj)
        if rel == "member":
            parents.setdefault(subj, []).append(obj)
            parents.setdefault(obj, [])
        elif rel == "parent":
            folder_of[obj] = user
            parents.setdefault(obj, []).append(user)
        elif rel == "viewer":
            viewers.setdefault(obj, []).append(subj)
        else:
            editors.setdefault(obj, []).append(subj)
    ents: list[dict[str, Any]] = []
    for u in users:
        parents.setdefault(u, [])
    for obj in {*parents, *viewers, *editors}:
        kind = obj.partition(":")[0]
        attrs: dict[str, Any] = {}
        if kind in ("folder", "document"):
            attrs["viewers"] = [_ref(s) for s in viewers.get(obj, ())]
            attrs["editors"] = [_ref(s) for s in editors.get(obj, ())]
        if kind == "document":
            attrs["folder"] = _ref(folder_of[obj])
        ents.append(
            {"uid": _uid(obj), "attrs": attrs, "parents": [_uid(p) for p in parents.get(obj, ())]}
        )
    return json.dumps(ents), len(ents)


class CedarGraph:
    """Parsed policy and entities, reused across calls (the fast way to use cedarpy)."""

    def __init__(self, entities: str) -> None:
        self.policies = cedarpy.PolicySet.from_str(POLICY)  # type: ignore[attr-defined]
        self.entities = cedarpy.Entities.from_json_str(entities)

    @staticmethod
    def request(user: str, doc: str) -> dict[str, Any]:
        return {"principal": _uid(user), "action": _VIEW, "resource": _uid(doc), "context": {}}

    def check(self, request: dict[str, Any]) -> bool:
        return bool(cedarpy.is_authorized(request, self.policies, self.entities).allowed)

    def batch(self, requests: Sequence[dict[str, Any]]) -> list[bool]:
        res = cedarpy.is_authorized_batch(list(requests), self.policies, self.entities)
        return [bool(r.allowed) for r in res]


_VIEW = {"type": "Action", "id": "view"}

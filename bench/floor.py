"""The floor: a hand-written dict-of-sets evaluator for exactly the benchmark's model.

It knows the model by heart (see ``gen.MODEL_DSL``) instead of interpreting it, so it
shows what plain Python dicts and sets can do on this workload — the floor a general
engine in Python can approach, not beat. It is deliberately *not* cheating beyond that:

* group membership is walked upwards at every check (no per-user cache of the closure),
  as an engine that stays correct under concurrent writes must do without invalidation;
* it keeps only the forward and reverse indexes a real index would keep.

``can_view`` = direct viewer, or ``can_edit``, or folder viewer;
``can_edit`` = direct editor, or folder editor. A grant to ``group:g#member`` counts for
every member of ``g``, transitively.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Floor"]


class Floor:
    def __init__(self) -> None:
        # subject ("user:u" or "group:g") -> the groups it is a direct member of
        self.member_of: dict[str, list[str]] = {}
        self.parent: dict[str, str] = {}  # document -> folder
        self.doc_view: dict[str, set[str]] = {}  # document -> subjects ("user:u", "group:g")
        self.doc_edit: dict[str, set[str]] = {}
        self.folder_view: dict[str, set[str]] = {}
        self.folder_edit: dict[str, set[str]] = {}
        # reverse indexes, for list objects
        self.folder_docs: dict[str, list[str]] = {}
        self.subject_docs: dict[str, list[str]] = {}  # subject -> documents it views or edits
        self.subject_folders: dict[str, list[str]] = {}  # subject -> folders it views or edits

    @classmethod
    def build(cls, triples: Iterable[tuple[str, str, str]]) -> Floor:
        f = cls()
        member_of, parent = f.member_of, f.parent
        doc_view, doc_edit = f.doc_view, f.doc_edit
        folder_view, folder_edit = f.folder_view, f.folder_edit
        folder_docs, subject_docs, subject_folders = (
            f.folder_docs,
            f.subject_docs,
            f.subject_folders,
        )
        for obj, rel, user in triples:
            subj = user[:-7] if user.endswith("#member") else user
            if rel == "member":
                member_of.setdefault(subj, []).append(obj)
            elif obj.startswith("document:"):
                if rel == "parent":
                    parent[obj] = user
                    folder_docs.setdefault(user, []).append(obj)
                else:
                    (doc_view if rel == "viewer" else doc_edit).setdefault(obj, set()).add(subj)
                    subject_docs.setdefault(subj, []).append(obj)
            else:
                (folder_view if rel == "viewer" else folder_edit).setdefault(obj, set()).add(subj)
                subject_folders.setdefault(subj, []).append(obj)
        return f

    def groups_of(self, user: str) -> set[str]:
        """Every group ``user`` is a member of, transitively (walked upwards)."""
        member_of = self.member_of
        seen: set[str] = set()
        stack = list(member_of.get(user, ()))
        while stack:
            g = stack.pop()
            if g not in seen:
                seen.add(g)
                stack.extend(member_of.get(g, ()))
        return seen

    def can_view(self, user: str, doc: str) -> bool:
        dv = self.doc_view.get(doc)
        if dv is not None and user in dv:
            return True
        de = self.doc_edit.get(doc)
        if de is not None and user in de:
            return True
        folder = self.parent.get(doc)
        fv = self.folder_view.get(folder) if folder else None
        fe = self.folder_edit.get(folder) if folder else None
        if (fv is not None and user in fv) or (fe is not None and user in fe):
            return True
        if dv is None and de is None and fv is None and fe is None:
            return False
        groups = self.groups_of(user)
        return not (
            (dv is None or groups.isdisjoint(dv))
            and (de is None or groups.isdisjoint(de))
            and (fv is None or groups.isdisjoint(fv))
            and (fe is None or groups.isdisjoint(fe))
        )

    def can_edit(self, user: str, doc: str) -> bool:
        de = self.doc_edit.get(doc)
        if de is not None and user in de:
            return True
        folder = self.parent.get(doc)
        fe = self.folder_edit.get(folder) if folder else None
        if fe is not None and user in fe:
            return True
        if de is None and fe is None:
            return False
        groups = self.groups_of(user)
        return not ((de is None or groups.isdisjoint(de)) and (fe is None or groups.isdisjoint(fe)))

    def check(self, user: str, relation: str, doc: str) -> bool:
        return self.can_view(user, doc) if relation == "viewer" else self.can_edit(user, doc)

    def list_viewable(self, user: str) -> set[str]:
        """Every document ``user`` can view (folder grants are view-or-edit for documents)."""
        out: set[str] = set()
        subject_docs, subject_folders, folder_docs = (
            self.subject_docs,
            self.subject_folders,
            self.folder_docs,
        )
        for s in (user, *self.groups_of(user)):
            docs = subject_docs.get(s)
            if docs:
                out.update(docs)
            for folder in subject_folders.get(s, ()):
                out.update(folder_docs.get(folder, ()))
        return out

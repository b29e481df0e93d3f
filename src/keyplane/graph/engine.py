"""The engine facade: one compiled model + one tuple index → check, batch check, expand,
list objects, list users and explain.

An :class:`Engine` is cheap (it holds references only): the service layer makes one per
request or caches one per (store, model version). Requests validate their inputs as OpenFGA
does (a check's malformed or unknown user/object/relation is a 2000 validation error; list
objects and list users report unknown types and relations as 2021 and 2022), validate
contextual tuples as writes (any failure is 2027, as the reference reports it), and lay
the contextual tuples over the shared index in an :class:`~keyplane.graph.index.Overlay`
for that request only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from keyplane.clock import Clock, SystemClock
from keyplane.errors import InvalidTupleError, KeyplaneError, ValidationError
from keyplane.graph.check import ALLOW, Req, checker_for, parse_request_user
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.index import Overlay, TupleIndex, View
from keyplane.graph.tuples import Tuple, object_error

if TYPE_CHECKING:
    from keyplane.graph.explain import Explanation

__all__ = ["CheckItem", "CheckOutcome", "Engine", "check_context"]

_USER_CACHE = 65_536  # validated request users remembered per model (cleared when full)
_OBJECT_CACHE = 262_144  # validated request objects → type, per engine (cleared when full)


def check_context(context: object) -> None:
    """A request's ``context`` is a JSON object: a mapping with string keys (2000 otherwise)."""
    if context is None:
        return
    if not isinstance(context, Mapping) or not all(isinstance(k, str) for k in context):
        raise ValidationError(
            "the request 'context' must be an object with string keys, "
            f"not {type(context).__name__}",
            details={"field": "context"},
        )


class CheckItem(NamedTuple):
    """One question of a batch check (a named tuple: cheap to build by the thousand)."""

    user: str
    relation: str
    object: str
    context: Mapping[str, Any] | None = None
    contextual_tuples: Sequence[Tuple] = ()
    correlation_id: str | None = None


class CheckOutcome(NamedTuple):
    """One answer of a batch check: ``allowed``, or the error that item raised."""

    allowed: bool
    error: KeyplaneError | None = None
    correlation_id: str | None = None


class Engine:
    """Answers authorization questions against one model version and one tuple index."""

    __slots__ = ("_checker", "_objects", "clock", "index", "max_depth", "model")

    def __init__(
        self,
        model: CompiledModel,
        index: TupleIndex,
        *,
        clock: Clock | None = None,
        max_depth: int = 25,
    ) -> None:
        self.model = model
        self.index = index
        self.clock: Clock = clock or SystemClock()
        self.max_depth = max_depth
        self._checker = checker_for(model)
        # objects that passed validation (syntax and a type of this model) → their type: a
        # repeated check skips the regex (a dict hit costs a tenth of it)
        self._objects: dict[str, str] = {}

    # -- helpers -----------------------------------------------------------------------------

    def view(self, contextual_tuples: Sequence[Tuple] = ()) -> View:
        """The graph a request reads: the index, plus its validated contextual tuples."""
        if not contextual_tuples:
            return self.index.view()
        for t in contextual_tuples:
            try:
                self.model.validate_tuple(t)
            except InvalidTupleError:
                raise
            except ValidationError as exc:
                raise InvalidTupleError(
                    f"invalid contextual tuple '{t}': {exc.message}",
                    details={"tuple": t.to_dict(), **exc.details},
                ) from None
        return Overlay(self.index, contextual_tuples).view()

    def _object_relation(self, obj: str, relation: str) -> str:
        """Validate a check's object and relation (2000 as OpenFGA's check reports them)."""
        otype = self._objects.get(obj) if obj.__class__ is str else None
        if otype is None:
            why = object_error(obj)
            if why is not None:
                raise ValidationError(
                    f"invalid 'object' field {obj!r}: {why}", details={"object": obj}
                )
            otype = obj.partition(":")[0]
            if otype not in self.model.types:
                raise ValidationError(
                    f"type '{otype}' not found", details={"type": otype, "reason": "type_not_found"}
                )
            if len(self._objects) >= _OBJECT_CACHE:
                self._objects.clear()
            self._objects[obj] = otype
        rels = self.model.types[otype]
        if relation not in rels:
            raise ValidationError(
                f"relation '{otype}#{relation}' not found",
                details={"type": otype, "relation": relation, "reason": "relation_not_found"},
            )
        return otype

    def request(
        self,
        user: str,
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Sequence[Tuple] = (),
        view: View | None = None,
        memo: dict[tuple[str, str], int] | None = None,
    ) -> Req:
        """Build the resolution state for ``user`` (validated; 2000 on a bad user)."""
        check_context(context)
        users = self._checker.users
        parsed = users.get(user)
        if parsed is None:
            parsed = parse_request_user(self.model, user)
            if len(users) >= _USER_CACHE:
                users.clear()
            users[user] = parsed
        utype, ukind, u = parsed
        if view is None:
            view = self.view(contextual_tuples)
        return Req(
            u,
            ukind,
            utype,
            "#" in u,
            view,
            context,
            self.clock.now(),
            self.model.conditions,
            self.max_depth,
            memo,
        )

    # -- check -------------------------------------------------------------------------------

    def check(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Sequence[Tuple] = (),
    ) -> bool:
        """Whether ``user`` has ``relation`` on ``object`` (OpenFGA Check)."""
        # the hot path: validation, one Req, one call into the compiled nodes
        otype = self._object_relation(object, relation)
        checker = self._checker
        parsed = checker.users.get(user)
        if parsed is None:
            # request() validates the context and the user
            r = self.request(user, context=context, contextual_tuples=contextual_tuples)
        else:
            if context is not None:
                check_context(context)
            r = Req(
                parsed[2],
                parsed[1],
                parsed[0],
                "#" in user,
                self.view(contextual_tuples) if contextual_tuples else self.index.view(),
                context,
                self.clock.now(),
                self.model.conditions,
                self.max_depth,
            )
        nodes = checker.table(r) if r.is_userset else checker.nodes
        return nodes[otype][relation](r, object, 0) == ALLOW

    def batch_check(self, items: Sequence[CheckItem]) -> list[CheckOutcome]:
        """Check many items; each gets its answer or its own error. Items for the same user
        without context or contextual tuples share one memo."""
        out: list[CheckOutcome] = []
        append = out.append
        shared: dict[str, Req] = {}
        checker = self._checker
        nodes = checker.nodes
        objrel = self._object_relation
        for it in items:
            try:
                otype = objrel(it.object, it.relation)
                if it.context or it.contextual_tuples:
                    r = self.request(
                        it.user, context=it.context, contextual_tuples=it.contextual_tuples
                    )
                else:
                    # same user, no context: one resolution state (memo, group walks) for all
                    r = shared.get(it.user)  # type: ignore[assignment]
                    if r is None:
                        r = shared[it.user] = self.request(it.user, view=self.index.view())
                table = checker.table(r) if r.is_userset else nodes
                append(
                    CheckOutcome(
                        table[otype][it.relation](r, it.object, 0) == ALLOW, None, it.correlation_id
                    )
                )
            except KeyplaneError as exc:
                append(CheckOutcome(False, exc, it.correlation_id))
        return out

    # -- expand, list, explain ------------------------------------------------------------------

    def expand(
        self,
        object: str,
        relation: str,
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Sequence[Tuple] = (),
    ) -> dict[str, Any]:
        """One level of the relation's userset tree, in OpenFGA's Expand JSON shape."""
        from keyplane.graph.expand import expand

        check_context(context)
        return expand(self, object, relation, context=context, contextual_tuples=contextual_tuples)

    def list_objects(
        self,
        user: str,
        relation: str,
        object_type: str,
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Sequence[Tuple] = (),
    ) -> Iterator[str]:
        """Every object of ``object_type`` the user has ``relation`` on, streamed, no repeats."""
        from keyplane.graph.listing import list_objects

        return list_objects(
            self, user, relation, object_type, context=context, contextual_tuples=contextual_tuples
        )

    def list_users(
        self,
        object: str,
        relation: str,
        filters: Sequence[str],
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Sequence[Tuple] = (),
    ) -> list[str]:
        """Every user (of the filtered types/usersets) with ``relation`` on ``object``."""
        from keyplane.graph.listing import list_users

        check_context(context)
        return list_users(
            self, object, relation, filters, context=context, contextual_tuples=contextual_tuples
        )

    def explain(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        context: Mapping[str, Any] | None = None,
        contextual_tuples: Sequence[Tuple] = (),
    ) -> Explanation:
        """Why a check is allowed (the granting paths) or denied (the failing branches)."""
        from keyplane.graph.explain import explain

        return explain(
            self, user, relation, object, context=context, contextual_tuples=contextual_tuples
        )

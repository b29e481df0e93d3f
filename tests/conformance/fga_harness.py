"""Runs OpenFGA's YAML conformance suites through a pluggable :class:`Runner`.

The data is read in place from ``<repo>/../shared/conformance/openfga/`` (never copied).
The rules are the reference's own test drivers (openfga/openfga ``tests/check``,
``tests/listobjects``, ``tests/listusers`` and the check-matrix driver):

* each test runs in a fresh store; each stage writes its model, then its tuples (every
  write must succeed: the YAML never expects a write to fail), then runs its assertions;
* check / list objects / list users assertions compare answers, or the ``errorCode``;
* every list-objects and list-users result is re-checked with check (allowed, no error);
* single-stage tests run a second time ("ctx" mode) with no tuples written and all the
  stage's tuples sent as contextual tuples with every request (skipped, as the reference
  does, for stages with more than 100 tuples);
* each check of ``matrix/check_matrix_tests.yaml`` also runs as list objects (the object
  is in the result exactly when the check is true) and as list users (likewise for the
  user, filtered by its type or ``type#relation``; a positive expectation is not checked
  when the result holds a wildcard), honouring ``listObjectsErrorCode`` /
  ``listUsersErrorCode`` and the reference's exemption for
  ``usersets_userset_cond_to_computed_cond`` (list objects need only not fail).

A runner is anything with ``write_model / write_tuples / check / list_objects /
list_users`` (:class:`Runner`); :class:`EngineRunner` drives the in-memory engine. Errors are
matched on the exception's ``fga_code`` attribute (``KeyplaneError.fga_code``).
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

# tests/ holds conformance_paths; put it on the path when run as a script (summary.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conformance_paths import ROOT as CONFORMANCE

ROOT = Path(__file__).resolve().parents[2]
DATA = CONFORMANCE / "openfga"

#: short name -> path relative to DATA
FILES: dict[str, str] = {
    "consolidated": "consolidated_1_1_tests.yaml",
    "abac": "abac_tests.yaml",
    "check_matrix": "matrix/check_matrix_tests.yaml",
    "listobjects_matrix": "matrix/listobjects_matrix_tests.yaml",
}
MAX_CONTEXTUAL_TUPLES = 100
WRITE_CHUNK = 40
LIST_OBJECTS_EXEMPT = "usersets_userset_cond_to_computed_cond"

TupleKey = Mapping[str, Any]


class Runner(Protocol):
    """One store, driven through some surface (engine, service layer, REST...)."""

    def write_model(self, dsl: str) -> None: ...

    def write_tuples(self, tuples: Sequence[TupleKey]) -> None:
        """Write atomically; raise an error carrying ``fga_code`` if any tuple is invalid."""
        ...

    def check(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[TupleKey],
    ) -> bool: ...

    def list_objects(
        self,
        user: str,
        relation: str,
        object_type: str,
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[TupleKey],
    ) -> list[str]: ...

    def list_users(
        self,
        object: str,
        relation: str,
        filters: Sequence[str],
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[TupleKey],
    ) -> list[str]: ...


RunnerFactory = Callable[[], Runner]


class EngineRunner:
    """The in-memory engine, with the boundary duties a service layer has: parse the DSL,
    validate written tuples against the model, parse contextual tuples."""

    def __init__(self) -> None:
        from keyplane.graph.index import TupleIndex

        self.index = TupleIndex()
        self.model: Any = None
        self.engine: Any = None

    def write_model(self, dsl: str) -> None:
        from keyplane.graph.compiled import CompiledModel
        from keyplane.graph.engine import Engine
        from keyplane.graph.language import parse_dsl

        self.model = CompiledModel.compile(parse_dsl(dsl))
        self.engine = Engine(self.model, self.index)

    def write_tuples(self, tuples: Sequence[TupleKey]) -> None:
        from keyplane.graph.tuples import Tuple

        parsed = [Tuple.from_dict(t) for t in tuples]
        for t in parsed:
            self.model.validate_tuple(t)
        self.index.apply(parsed, ())

    def _contextual(self, tuples: Sequence[TupleKey]) -> list[Any]:
        # Parsing is the surface's job (a malformed tuple is 2027); validating contextual
        # tuples against the model is the engine's.
        from keyplane.graph.tuples import Tuple

        return [Tuple.from_dict(t) for t in tuples]

    def check(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[TupleKey],
    ) -> bool:
        return bool(
            self.engine.check(
                user,
                relation,
                object,
                context=context,
                contextual_tuples=self._contextual(contextual_tuples),
            )
        )

    def list_objects(
        self,
        user: str,
        relation: str,
        object_type: str,
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[TupleKey],
    ) -> list[str]:
        return list(
            self.engine.list_objects(
                user,
                relation,
                object_type,
                context=context,
                contextual_tuples=self._contextual(contextual_tuples),
            )
        )

    def list_users(
        self,
        object: str,
        relation: str,
        filters: Sequence[str],
        *,
        context: Mapping[str, Any] | None,
        contextual_tuples: Sequence[TupleKey],
    ) -> list[str]:
        return list(
            self.engine.list_users(
                object,
                relation,
                list(filters),
                context=context,
                contextual_tuples=self._contextual(contextual_tuples),
            )
        )


def _rest_runner() -> Runner:
    from rest_runner import RestRunner  # tests/conformance/rest_runner.py: /v1 over HTTP

    return RestRunner()


#: every surface the suites run through; the service layer registers its runner here
RUNNERS: dict[str, RunnerFactory] = {"engine": EngineRunner, "rest": _rest_runner}


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One assertion's result. ``kind``: model, write, check, list_objects, list_users."""

    kind: str
    label: str
    ok: bool
    message: str = ""
    expects_error: bool = False
    derived: bool = False  # a matrix check run as list objects / list users


@dataclass(slots=True)
class StageResult:
    file: str
    test: str
    stage: int
    mode: str  # "store" | "ctx"
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: str | None = None

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


@dataclass(frozen=True, slots=True)
class Case:
    """One test of one file in one mode; expands to one pytest id per stage."""

    file: str
    index: int
    name: str
    mode: str
    stages: int

    @property
    def ids(self) -> list[str]:
        suffix = "+ctx" if self.mode == "ctx" else ""
        return [f"{self.file}::{self.name}::stage{i}{suffix}" for i in range(self.stages)]


@functools.cache
def load(file: str) -> list[dict[str, Any]]:
    with open(DATA / FILES[file], encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return list(data["tests"])


def cases(files: Iterable[str] = FILES) -> list[Case]:
    out: list[Case] = []
    for f in files:
        tests = load(f)
        seen: dict[str, int] = {}
        for i, t in enumerate(tests):
            name = t["name"]
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name}#{seen[name]}"
            n = len(t["stages"])
            out.append(Case(f, i, name, "store", n))
            if n == 1:
                out.append(Case(f, i, name, "ctx", n))
    return out


# --- execution ------------------------------------------------------------------------------


def _code(exc: BaseException | None) -> int | None:
    return None if exc is None else getattr(exc, "fga_code", None)


def _describe(exc: BaseException) -> str:
    code = _code(exc)
    if code is None:  # not a KeyplaneError: a crash, show where
        tb = traceback.extract_tb(exc.__traceback__)[-3:]
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb))
        return f"CRASH {type(exc).__name__}: {exc} [{where}]"
    return f"error {code} {type(exc).__name__}: {exc}"


def _call(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    try:
        return fn(), None
    except RecursionError as exc:
        return None, exc
    except Exception as exc:
        return None, exc


def _fmt(t: Mapping[str, Any]) -> str:
    return f"{t.get('object')}#{t.get('relation')}@{t.get('user')}"


class StageExecutor:
    def __init__(self, runner: Runner, res: StageResult, ctx_tuples: list[TupleKey]) -> None:
        self.r = runner
        self.res = res
        self.ctx_tuples = ctx_tuples

    def add(self, kind: str, label: str, ok: bool, msg: str = "", **kw: Any) -> None:
        self.res.outcomes.append(Outcome(kind, label, ok, msg, **kw))

    def _ctx(self, a: Mapping[str, Any]) -> list[TupleKey]:
        return list(a.get("contextualTuples") or []) + self.ctx_tuples

    def _expect_error(
        self, kind: str, label: str, want: int, got: Any, exc: Any, **kw: Any
    ) -> None:
        if exc is None:
            self.add(
                kind, label, False, f"expected error {want}, got {got!r}", expects_error=True, **kw
            )
        elif _code(exc) != want:
            self.add(
                kind,
                label,
                False,
                f"expected error {want}, got {_describe(exc)}",
                expects_error=True,
                **kw,
            )
        else:
            self.add(kind, label, True, expects_error=True, **kw)

    def write_tuples(self, tuples: list[TupleKey]) -> None:
        for start in range(0, len(tuples), WRITE_CHUNK):
            chunk = tuples[start : start + WRITE_CHUNK]
            _, exc = _call(lambda chunk=chunk: self.r.write_tuples(chunk))
            if exc is None:
                continue
            for t in chunk:  # find the offenders, keep the rest
                _, e1 = _call(lambda t=t: self.r.write_tuples([t]))
                if e1 is not None:
                    self.add("write", f"write {_fmt(t)}", False, _describe(e1))

    def check(self, i: int, a: Mapping[str, Any]) -> None:
        tk = a["tuple"]
        label = f"check[{i}]{'(' + a['name'] + ')' if a.get('name') else ''} {_fmt(tk)}"
        if a.get("context"):
            label += f" context={dict(a['context'])}"
        got, exc = _call(
            lambda: self.r.check(
                tk["user"],
                tk["relation"],
                tk["object"],
                context=a.get("context"),
                contextual_tuples=self._ctx(a),
            )
        )
        if a.get("errorCode"):
            self._expect_error("check", label, int(a["errorCode"]), got, exc)
        elif exc is not None:
            self.add("check", label, False, _describe(exc))
        else:
            want = bool(a.get("expectation"))
            self.add(
                "check", label, got is want, "" if got is want else f"expected {want}, got {got}"
            )

    def _recheck(
        self, kind: str, pairs: list[tuple[str, str, str]], a: Mapping[str, Any]
    ) -> list[str]:
        bad: list[str] = []
        for user, relation, obj in pairs:
            got, exc = _call(
                lambda user=user, relation=relation, obj=obj: self.r.check(
                    user, relation, obj, context=a.get("context"), contextual_tuples=self._ctx(a)
                )
            )
            if exc is not None or got is not True:
                why = _describe(exc) if exc is not None else "false"
                bad.append(f"re-check {obj}#{relation}@{user} -> {why}")
        return bad

    def list_objects(self, i: int, a: Mapping[str, Any]) -> None:
        rq = a["request"]
        label = f"list_objects[{i}] {rq['type']}#{rq['relation']}@{rq['user']}"
        if a.get("context"):
            label += f" context={dict(a['context'])}"
        got, exc = _call(
            lambda: self.r.list_objects(
                rq["user"],
                rq["relation"],
                rq["type"],
                context=a.get("context"),
                contextual_tuples=self._ctx(a),
            )
        )
        if a.get("errorCode"):
            self._expect_error("list_objects", label, int(a["errorCode"]), got, exc)
            return
        if exc is not None:
            self.add("list_objects", label, False, _describe(exc))
            return
        problems = _set_diff(a.get("expectation"), got)
        problems += self._recheck("list_objects", [(rq["user"], rq["relation"], o) for o in got], a)
        self.add("list_objects", label, not problems, "; ".join(problems))

    def list_users(self, i: int, a: Mapping[str, Any]) -> None:
        rq = a["request"]
        filters = list(rq.get("filters") or [])
        label = f"list_users[{i}] {rq['object']}#{rq['relation']} filters={filters}"
        if a.get("context"):
            label += f" context={dict(a['context'])}"
        got, exc = _call(
            lambda: self.r.list_users(
                rq["object"],
                rq["relation"],
                filters,
                context=a.get("context"),
                contextual_tuples=self._ctx(a),
            )
        )
        if a.get("errorCode"):
            self._expect_error("list_users", label, int(a["errorCode"]), got, exc)
            return
        if exc is not None:
            self.add("list_users", label, False, _describe(exc))
            return
        problems = _set_diff(a.get("expectation"), got)
        problems += self._recheck("list_users", [(u, rq["relation"], rq["object"]) for u in got], a)
        self.add("list_users", label, not problems, "; ".join(problems))

    def matrix_derived(self, i: int, a: Mapping[str, Any]) -> None:
        """The reference's assertListObjects / assertListUsers for one check assertion."""
        tk = a["tuple"]
        name = a.get("name") or str(i)
        otype = tk["object"].partition(":")[0]
        uobj, _, urel = tk["user"].partition("#")
        utype = uobj.partition(":")[0]
        want = bool(a.get("expectation"))
        err = int(a.get("errorCode") or 0)
        ctx = a.get("context")
        # list objects
        label = f"check[{i}]({name}) as list_objects {tk['object']}#{tk['relation']}@{tk['user']}"
        got, exc = _call(
            lambda: self.r.list_objects(
                tk["user"], tk["relation"], otype, context=ctx, contextual_tuples=self._ctx(a)
            )
        )
        lo_err = int(a.get("listObjectsErrorCode") or 0)
        if lo_err:
            self._expect_error("list_objects", label, lo_err, got, exc, derived=True)
        elif LIST_OBJECTS_EXEMPT in self.res.test:
            self.add(
                "list_objects", label, exc is None, _describe(exc) if exc else "", derived=True
            )
        elif err:
            self._expect_error("list_objects", label, err, got, exc, derived=True)
        elif exc is not None:
            self.add("list_objects", label, False, _describe(exc), derived=True)
        else:
            present = tk["object"] in got
            self.add(
                "list_objects",
                label,
                present is want,
                ""
                if present is want
                else f"object {'missing from' if want else 'in'} {sorted(got)}",
                derived=True,
            )
        # list users
        flt = f"{utype}#{urel}" if urel else utype
        label = f"check[{i}]({name}) as list_users {tk['object']}#{tk['relation']} filter={flt} user={tk['user']}"
        got, exc = _call(
            lambda: self.r.list_users(
                tk["object"], tk["relation"], [flt], context=ctx, contextual_tuples=self._ctx(a)
            )
        )
        lu_err = int(a.get("listUsersErrorCode") or 0)
        if lu_err:
            self._expect_error("list_users", label, lu_err, got, exc, derived=True)
        elif err:
            self._expect_error("list_users", label, err, got, exc, derived=True)
        elif exc is not None:
            self.add("list_users", label, False, _describe(exc), derived=True)
        else:
            users = list(got)
            present = tk["user"] in users
            if want and any(u.endswith(":*") for u in users):
                ok = True
            else:
                ok = present is want
            self.add(
                "list_users",
                label,
                ok,
                "" if ok else f"user {'missing from' if want else 'in'} {sorted(users)}",
                derived=True,
            )


def _set_diff(expected: Any, got: Sequence[str]) -> list[str]:
    want = sorted(expected or [])
    have = sorted(got)
    if want == have:
        return []
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    out = []
    if missing:
        out.append(f"missing {missing}")
    if extra:
        out.append(f"unexpected {extra}")
    if not missing and not extra:
        out.append(f"duplicates in {have}")
    return out


def run_case(case: Case, factory: RunnerFactory) -> list[StageResult]:
    """Run every stage of one test (in one fresh store); one result per stage."""
    test = load(case.file)[case.index]
    runner = factory()
    results: list[StageResult] = []
    matrix = case.file == "check_matrix"
    for si, stage in enumerate(test["stages"]):
        res = StageResult(case.file, case.name, si, case.mode)
        results.append(res)
        tuples = list(stage.get("tuples") or [])
        if case.mode == "ctx" and len(tuples) > MAX_CONTEXTUAL_TUPLES:
            res.skipped = f"more than {MAX_CONTEXTUAL_TUPLES} contextual tuples"
            continue
        _, exc = _call(lambda stage=stage: runner.write_model(stage["model"]))
        if exc is not None:
            res.outcomes.append(Outcome("model", "write model", False, _describe(exc)))
            continue
        ex = StageExecutor(runner, res, tuples if case.mode == "ctx" else [])
        if case.mode == "store" and tuples:
            ex.write_tuples(tuples)
        for i, a in enumerate(stage.get("checkAssertions") or []):
            ex.check(i, a)
            if matrix:
                ex.matrix_derived(i, a)
        for i, a in enumerate(stage.get("listObjectsAssertions") or []):
            ex.list_objects(i, a)
        for i, a in enumerate(stage.get("listUsersAssertions") or []):
            ex.list_users(i, a)
    return results


_CACHE: dict[tuple[Case, str], list[StageResult]] = {}


def run_case_cached(case: Case, factory: RunnerFactory, key: str = "engine") -> list[StageResult]:
    k = (case, key)
    if k not in _CACHE:
        _CACHE[k] = run_case(case, factory)
    return _CACHE[k]


# --- summary --------------------------------------------------------------------------------


def bucket(o: Outcome, mode: str) -> str:
    kind = o.kind
    if o.derived:
        kind += " (from matrix check)"
    return f"{kind}{' [ctx]' if mode == 'ctx' else ''}"


def summarize(results: Iterable[StageResult]) -> dict[str, dict[str, list[int]]]:
    """file -> bucket -> [passed, total]; buckets per kind and mode, plus 'errors'."""
    table: dict[str, dict[str, list[int]]] = {}
    for r in results:
        rows = table.setdefault(r.file, {})
        for o in r.outcomes:
            for b in (bucket(o, r.mode),) + (("expected errors",) if o.expects_error else ()):
                cell = rows.setdefault(b, [0, 0])
                cell[0] += o.ok
                cell[1] += 1
        if r.skipped:
            cell = rows.setdefault("skipped stages", [0, 0])
            cell[1] += 1
    return table

"""What the posture report renderers (:mod:`keyplane.governance.report` and
:mod:`keyplane.governance.report_html`) show, computed once from a
:class:`~keyplane.governance.posture.PostureReport`: counts, histogram buckets, the worst
over-privileged identities, and readable forms of times, ages and evidence.

Pure functions over the records, so the terminal and the HTML report agree on every number
(and the tests can compute the numbers they expect with the same definitions written out
independently). Nothing here escapes anything: that is each renderer's job.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keyplane.governance.posture import (
    FINDING_SEVERITIES,
    OWASP_NHI,
    ExcessAccess,
    Finding,
    OverPrivilege,
    PostureReport,
)

__all__ = [
    "AGE_BUCKETS",
    "SEVERITY_ORDER",
    "View",
    "clean",
    "evidence_items",
    "evidence_parts",
    "fmt_age",
    "fmt_count",
    "fmt_time",
    "owasp_sort_key",
    "view",
]

DAY = 86400.0

#: Most severe first (the order findings are listed and grouped in).
SEVERITY_ORDER: tuple[str, ...] = tuple(reversed(FINDING_SEVERITIES))

#: Credential age histogram buckets: (label, lower bound in days inclusive, upper bound
#: exclusive). 90 days is the default ``long_lived_days``: buckets from there on are the
#: long-lived ones, drawn in a warning colour.
AGE_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("< 30 d", 0, 30),
    ("30–90 d", 30, 90),
    ("90–180 d", 90, 180),
    ("180 d–1 y", 180, 365),
    ("1–2 y", 365, 730),
    ("≥ 2 y", 730, float("inf")),
)

# C0/C1 control characters (ESC above all): user input must not drive a terminal or
# hide in a page. Tab and newline are folded to a space too, so one value is one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(value: object) -> str:
    """``str(value)`` with control characters shown as ``\\xNN`` instead of acting."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def fmt_time(ts: float | None) -> str:
    """``2026-11-28 21:55 UTC``; ``—`` for none."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_age(seconds: float | None) -> str:
    """A coarse duration: ``45 min``, ``5 h``, ``12 d``, ``1.4 y``; ``—`` for none."""
    if seconds is None:
        return "—"
    s = max(0.0, float(seconds))
    if s < 3600:
        return f"{int(s // 60)} min"
    if s < DAY:
        return f"{int(s // 3600)} h"
    if s < 365 * DAY:
        return f"{int(s // DAY)} d"
    return f"{s / (365 * DAY):.1f} y"


def fmt_count(n: int) -> str:
    return f"{n:,}"


def owasp_sort_key(owasp_id: str) -> tuple[int, str]:
    """NHI1 < NHI2 < … < NHI10 (numerically), unknown ids last."""
    m = re.fullmatch(r"NHI(\d+)", owasp_id)
    return (int(m.group(1)), "") if m else (1_000, owasp_id)


# Evidence keys whose numbers are times or durations, by naming habit (``*_at``,
# ``since``/``until``; ``*_seconds``, ``age``). Anything else is shown as it is.
_TIME_KEY = re.compile(r"(^|_)(at|since|until|time|first_used|last_used|last_seen)$")
_AGE_KEY = re.compile(r"(^|_)(age|seconds|lifetime|idle)$")
_DAYS_KEY = re.compile(r"_days$")
_NEVER_KEY = re.compile(r"expir|last_used|last_seen|lifetime")
_LIST_SHOWN = 25


def _evidence_value(key: str, value: Any) -> str:
    if value is None:
        return "never" if _NEVER_KEY.search(key) else "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if _TIME_KEY.search(key) and value > 1e8:
            return fmt_time(float(value))
        if _AGE_KEY.search(key):
            return fmt_age(float(value))
        if _DAYS_KEY.search(key):
            return f"{value:g} d"
        return f"{value:,}" if isinstance(value, int) else f"{value:g}"
    if isinstance(value, list | tuple):
        if not value:
            return "none"
        shown = [_evidence_value(key, v) for v in value[:_LIST_SHOWN]]
        more = len(value) - len(shown)
        return ", ".join(shown) + (f" … and {more:,} more" if more > 0 else "")
    if isinstance(value, dict) and {"object", "relation"} <= value.keys():
        # a permission (PermissionUse): "document:1#viewer", with its use if any
        perm = f"{value['object']}#{value['relation']}"
        uses = value.get("uses")
        return f"{perm} ({uses:,} uses)" if isinstance(uses, int) and uses else perm
    if isinstance(value, dict):
        # a record (a credential, a delegation, an event…): "id (field: value, …)"; a map
        # at the top of the evidence (owner -> status) stays "key=value" (see _parts)
        rest = ", ".join(
            f"{str(k).replace('_', ' ')}: {_evidence_value(str(k), v)}"
            for k, v in value.items()
            if k != "id"
        )
        if "id" in value:
            return f"{value['id']} ({rest})" if rest else str(value["id"])
        return rest
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def _parts(key: str, value: Any) -> list[str]:
    if isinstance(value, list | tuple) and value:
        shown = [_evidence_value(key, v) for v in value[:_LIST_SHOWN]]
        more = len(value) - len(shown)
        return shown + ([f"… and {more:,} more"] if more > 0 else [])
    if isinstance(value, dict) and value:
        return [f"{k}={_evidence_value(str(k), v)}" for k, v in value.items()]
    return [_evidence_value(key, value)]


def evidence_parts(evidence: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The evidence as (label, readable values), in its own order: times as dates,
    durations as ages, a list as its items (at most 25, then a count; a record in it as
    ``id (field: value, …)``), a map as ``key=value`` items. Control characters are
    neutralized (:func:`clean`)."""
    return [(clean(_label(k, v)), [clean(p) for p in _parts(k, v)]) for k, v in evidence.items()]


def evidence_items(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """:func:`evidence_parts` with each value's items joined on one line (by commas, or
    by semicolons when the items have commas of their own)."""
    return [
        (label, ("; " if any(", " in p for p in parts) else ", ").join(parts))
        for label, parts in evidence_parts(evidence)
    ]


def _label(key: str, value: Any) -> str:
    # "age_seconds: 2.2 y" reads wrong once the value is shown as an age: drop the unit
    if isinstance(value, int | float) and not isinstance(value, bool) and _AGE_KEY.search(key):
        key = re.sub(r"_seconds$", "", key)
    return key.replace("_", " ")


@dataclass(frozen=True, slots=True)
class View:
    """Everything the renderers draw, derived once.

    ``by_kind``/``by_status``/``by_source``: NHIs counted from the inventory (or, when
    the report was made without it, the report's own ``counts``). ``identities_by_source``:
    every live identity, humans included, by source (``scim``, ``import:aws``, …; empty
    in a report made before identity sources existed). ``by_owasp``: every
    OWASP NHI id (zero included), ``by_severity``: every severity, most severe first.
    ``ages``: credential age histogram over active credentials at ``generated_at``
    (``age_basis`` says whether it counts credentials or, when the inventory lists none,
    each NHI's oldest credential). ``worst``: the most over-privileged identities (most
    unused permissions first). ``exceeding``: the widest agent/principal gaps first.
    """

    by_kind: dict[str, int]
    by_status: dict[str, int]
    by_source: dict[str, int]
    identities_by_source: dict[str, int]
    by_owasp: dict[str, int]
    by_severity: dict[str, int]
    ages: list[tuple[str, int, bool]]  # (bucket label, count, long-lived?)
    age_basis: str
    worst: list[OverPrivilege]
    exceeding: list[ExcessAccess]
    display_names: dict[str, str]
    nhi_total: int
    window_days: float


def _counts(report: PostureReport, key: str, items: Iterable[str]) -> dict[str, int]:
    # The report's own counts first (the service counts every kind and status, zeros
    # included: "nhis_by_kind", …; "kind"/"by_kind" tolerated), else the inventory's.
    for name in (f"nhis_by_{key}", f"nhi_by_{key}", f"by_{key}", key):
        got = report.counts.get(name)
        if got is not None:
            return {str(k): int(v) for k, v in got.items()}
    return dict(sorted(Counter(items).items()))


def _age_histogram(report: PostureReport) -> tuple[list[tuple[str, int, bool]], str]:
    now = report.generated_at
    ages = [
        now - c.created_at
        for item in report.inventory
        for c in item.credentials
        if c.status == "active"
    ]
    basis = "active credentials"
    if not ages:
        ages = [
            i.oldest_credential_age for i in report.inventory if i.oldest_credential_age is not None
        ]
        basis = "oldest credential of each NHI" if ages else "active credentials"
    counts = [0] * len(AGE_BUCKETS)
    for age in ages:
        d = age / DAY
        for n, (_, lo, hi) in enumerate(AGE_BUCKETS):
            if lo <= d < hi:
                counts[n] += 1
                break
        else:  # a credential "created" in the future (clock skew): the youngest bucket
            counts[0] += 1
    return [(b[0], c, b[1] >= 90) for b, c in zip(AGE_BUCKETS, counts, strict=True)], basis


def _severity_counts(findings: Sequence[Finding]) -> dict[str, int]:
    got = Counter(f.severity for f in findings)
    out = {s: got.pop(s, 0) for s in SEVERITY_ORDER}
    out.update(sorted(got.items()))  # an unknown severity is still counted, last
    return out


def _owasp_counts(findings: Sequence[Finding]) -> dict[str, int]:
    got = Counter(f.owasp for f in findings)
    ids = sorted(set(OWASP_NHI) | set(got), key=owasp_sort_key)
    return {i: got.get(i, 0) for i in ids}


def view(report: PostureReport, *, worst: int = 10, exceeding: int = 10) -> View:
    inv = report.inventory
    nhi_total = len(inv) or report.visibility.total
    ages, age_basis = _age_histogram(report)
    return View(
        by_kind=_counts(report, "kind", (i.kind for i in inv)),
        by_status=_counts(report, "status", (i.status for i in inv)),
        by_source=_counts(report, "source", (i.source or "—" for i in inv)),
        identities_by_source=dict(report.counts.get("identities_by_source") or {}),
        by_owasp=_owasp_counts(report.findings),
        by_severity=_severity_counts(report.findings),
        ages=ages,
        age_basis=age_basis,
        worst=sorted(
            (o for o in report.over_privileged if o.unused_total or o.revoke),
            key=lambda o: (-o.unused_total, -len(o.revoke), o.identity),
        )[:worst],
        exceeding=sorted(report.exceeding, key=lambda e: (-e.excess_total, e.agent, e.principal))[
            :exceeding
        ],
        display_names={i.identity: i.display_name for i in inv if i.display_name},
        nhi_total=nhi_total,
        window_days=max(0.0, (report.until - report.since) / DAY),
    )

"""The NHI posture report as one self-contained HTML page (issue 8 §3).

Everything is inline: the stylesheet (with a print stylesheet), the charts (SVG drawn here,
in Python, so the page needs no chart library and prints as drawn) and one small script
that filters the findings table by severity, OWASP id or text, sorts the tables and pages
the big ones (:data:`PAGE` rows at a time: a browser needs tens of seconds to lay out
20,000 table rows, and nobody reads them unfiltered; without script every row shows). The
page names no external URL at all — no CDN, no web font, no image — and says so to the
browser: its Content-Security-Policy (:data:`HTML_CONTENT_SECURITY_POLICY`, also in a
``<meta>``) allows no fetch and only the page's own script, by hash. A server sending the
page should send the same header.

Identities, display names, owners, evidence and fixes are user input: every value goes
through :func:`_e` (control characters shown as ``\\xNN``, then HTML-escaped, quotes
included, so values are safe in attributes too). The script reads only ``data-``
attributes and ``textContent``; no value is ever placed in the script.

Machine-readable hooks, for tests and for anyone scraping the page: each chart is a
``<figure data-chart=…>`` whose bars are ``<g class="bar" data-key=… data-value=…>``; the
big tables carry ``data-total``, ``data-shown`` (rows matching the filter) and
``data-visible`` (rows on screen); the script sets ``data-ready`` on ``<html>`` when it has
run. The URL fragment drives the filter (``#severity=high``,
``#owasp=NHI7``, ``#q=agent:x``, ``#sort=-identity``), so a filtered view can be linked,
and the severity and OWASP chart bars link to theirs.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from keyplane.governance.posture import (
    OWASP_NHI,
    Finding,
    NhiInventoryItem,
    OverPrivilege,
    PostureReport,
)
from keyplane.governance.report_assets import CSS, HTML_CONTENT_SECURITY_POLICY, PAGE, SCRIPT
from keyplane.governance.report_view import (
    SEVERITY_ORDER,
    View,
    clean,
    evidence_parts,
    fmt_age,
    fmt_count,
    fmt_time,
    owasp_sort_key,
    view,
)

__all__ = ["HTML_CONTENT_SECURITY_POLICY", "PAGE", "SCRIPT", "render_html"]


def _e(value: object) -> str:
    """Escape for text and for quoted attribute values alike."""
    return html.escape(clean(value), quote=True)


def _trunc(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


_SEV_COLOR = {"critical": "#c92a2a", "high": "#e8590c", "medium": "#f08c00", "low": "#1c7ed6"}
_STATUS_COLOR = {"active": "#2b8a3e", "suspended": "#f08c00", "deprovisioned": "#868e96"}
_ACCENT = "#3b5bdb"


# -- charts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Bar:
    key: str
    label: str
    value: int
    color: str
    href: str | None = None
    note: str = ""


def _hbars(
    chart: str,
    title: str,
    bars: Sequence[_Bar],
    *,
    label_w: int = 170,
    width: int = 460,
    max_chars: int = 26,
) -> str:
    """A horizontal bar chart: one row per bar, label left, value right of the bar."""
    row, pad = 24, 6
    height = pad * 2 + row * max(1, len(bars))
    top = max((b.value for b in bars), default=0) or 1
    span = width - label_w - 70
    out = [
        f'<figure data-chart="{_e(chart)}" data-total="{sum(b.value for b in bars)}">'
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(title)}"><title>{_e(title)}</title>'
    ]
    if not bars:
        out.append(f'<text x="0" y="{pad + 16}" class="muted">nothing to show</text>')
    for n, b in enumerate(bars):
        y = pad + n * row
        w = 0.0 if b.value <= 0 else max(2.0, span * b.value / top)
        tip = f"{b.label}: {b.value:,}" + (f" — {b.note}" if b.note else "")
        muted = ' class="muted"' if b.value == 0 else ""
        g = [
            f'<g class="bar" data-key="{_e(b.key)}" data-value="{b.value}">'
            f"<title>{_e(tip)}</title>"
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end"{muted}>'
            f"{_e(_trunc(b.label, max_chars))}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="16" rx="3" '
            f'fill="{b.color}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" class="val">{fmt_count(b.value)}'
            "</text></g>"
        ]
        if b.href:
            g.insert(0, f'<a href="{_e(b.href)}">')
            g.append("</a>")
        out.extend(g)
    out.append("</svg></figure>")
    return "".join(out)


def _gauge(report: PostureReport) -> str:
    """The visibility score as a half-circle gauge, with its three components as bars."""
    vis = report.visibility
    d = vis.to_dict()
    score = max(0.0, min(1.0, vis.score))
    color = "#2b8a3e" if score >= 0.8 else "#f08c00" if score >= 0.5 else "#c92a2a"
    cx, cy, r = 150, 120, 100
    x = cx - r * math.cos(math.pi * score)
    y = cy - r * math.sin(math.pi * score)
    arc = (
        f'<path d="M {cx - r} {cy} A {r} {r} 0 0 1 {x:.2f} {y:.2f}" fill="none" '
        f'stroke="{color}" stroke-width="22" class="gauge-value"/>'
        if score > 0
        else ""
    )
    pct = f"{score * 100:.0f}%"
    comps = [
        ("owned", "active owner", vis.owned, d["owned_share"]),
        ("expiring", "expiry on every credential", vis.expiring, d["expiring_share"]),
        ("observed", "usage data", vis.observed, d["observed_share"]),
    ]
    rows = []
    for n, (key, label, count, share) in enumerate(comps):
        yy = 170 + n * 26
        w = 150 * max(0.0, min(1.0, share))
        rows.append(
            f'<g class="bar" data-key="{key}" data-value="{count}" data-share="{share}">'
            f"<title>{_e(label)}: {count:,} of {vis.total:,}</title>"
            f'<text x="0" y="{yy + 13}">{_e(label)}</text>'
            f'<rect x="170" y="{yy + 2}" width="150" height="14" rx="3" fill="#e9ecef"/>'
            f'<rect x="170" y="{yy + 2}" width="{w:.1f}" height="14" rx="3" fill="{_ACCENT}"/>'
            f'<text x="326" y="{yy + 13}">{share * 100:.0f}%</text>'
            "</g>"
        )
    return (
        f'<figure data-chart="visibility" data-score="{vis.score}" data-total="{vis.total}" '
        f'data-complete="{vis.complete}">'
        f'<svg viewBox="0 0 370 250" width="370" height="250" role="img" '
        f'aria-label="Visibility score {pct}"><title>Visibility score {pct}: '
        f"{vis.complete:,} of {vis.total:,} NHIs have an owner, expiring credentials "
        "and usage data</title>"
        f'<path d="M {cx - r} {cy} A {r} {r} 0 0 1 {cx + r} {cy}" fill="none" '
        'stroke="#e9ecef" stroke-width="22"/>'
        f"{arc}"
        f'<text x="{cx}" y="{cy - 12}" text-anchor="middle" class="big score">{pct}</text>'
        f'<text x="{cx}" y="{cy + 12}" text-anchor="middle" class="muted">'
        f"{vis.complete:,} of {vis.total:,} NHIs fully visible</text>"
        f"{''.join(rows)}</svg></figure>"
    )


def _age_chart(v: View) -> str:
    """Credential age histogram: vertical bars; from 90 days on in the warning colour."""
    width, height, base, left = 460, 210, 170, 10
    n = len(v.ages)
    slot = (width - left * 2) / max(1, n)
    top = max((c for _, c, _ in v.ages), default=0) or 1
    out = [
        f'<figure data-chart="credential-age" data-total="{sum(c for _, c, _ in v.ages)}">'
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="Credential age histogram"><title>Age of {_e(v.age_basis)}</title>'
        f'<line x1="{left}" y1="{base}" x2="{width - left}" y2="{base}" stroke="#adb5bd"/>'
    ]
    for i, (label, count, long_lived) in enumerate(v.ages):
        h = 0.0 if count == 0 else max(2.0, 140 * count / top)
        x = left + i * slot + 8
        w = slot - 16
        color = "#e8590c" if long_lived else _ACCENT
        out.append(
            f'<g class="bar" data-key="{_e(label)}" data-value="{count}" '
            f'data-long-lived="{"true" if long_lived else "false"}">'
            f"<title>{_e(label)}: {count:,}</title>"
            f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{w:.1f}" height="{h:.1f}" rx="3" '
            f'fill="{color}"/>'
            f'<text x="{x + w / 2:.1f}" y="{base - h - 5:.1f}" text-anchor="middle">'
            f"{fmt_count(count)}</text>"
            f'<text x="{x + w / 2:.1f}" y="{base + 16}" text-anchor="middle" class="muted">'
            f"{_e(label)}</text></g>"
        )
    x90 = left + 2 * slot
    out.append(
        f'<line x1="{x90:.1f}" y1="20" x2="{x90:.1f}" y2="{base}" stroke="#e8590c" '
        'stroke-dasharray="4 3"/>'
        f'<text x="{x90 + 4:.1f}" y="28" class="muted">long-lived (≥ 90 d) →</text>'
        f'<text x="{width / 2}" y="{base + 36}" text-anchor="middle" class="muted">'
        f"age of {_e(v.age_basis)} at report time</text></svg></figure>"
    )
    return "".join(out)


def _privilege_chart(worst: Sequence[OverPrivilege], v: View) -> str:
    """Granted (effective permissions) versus used, one pair of bars per identity."""
    label_w, width, row = 190, 460, 34
    height = 30 + row * max(1, len(worst))
    top = max((max(o.effective_total, len(o.used)) for o in worst), default=0) or 1
    span = width - label_w - 60
    out = [
        f'<figure data-chart="over-privilege" data-total="{len(worst)}">'
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        'aria-label="Granted versus used permissions"><title>Granted versus used '
        "permissions, most unused first</title>"
        f'<rect x="{label_w}" y="4" width="10" height="10" fill="#adb5bd"/>'
        f'<text x="{label_w + 14}" y="13" class="muted">granted</text>'
        f'<rect x="{label_w + 80}" y="4" width="10" height="10" fill="#2b8a3e"/>'
        f'<text x="{label_w + 94}" y="13" class="muted">used</text>'
    ]
    if not worst:
        out.append('<text x="0" y="44" class="muted">no unused permissions</text>')
    for n, o in enumerate(worst):
        y = 24 + n * row
        used = len(o.used)
        wg = 0.0 if not o.effective_total else max(2.0, span * o.effective_total / top)
        wu = 0.0 if not used else max(2.0, span * used / top)
        name = v.display_names.get(o.identity)
        tip = (
            f"{o.identity}{f' ({name})' if name else ''}: granted {o.effective_total:,}, "
            f"used {used:,}, unused {o.unused_total:,}; revoke {len(o.revoke):,} of "
            f"{len(o.grants):,} grants"
        )
        out.append(
            f'<g class="bar" data-key="{_e(o.identity)}" data-value="{o.unused_total}" '
            f'data-granted="{o.effective_total}" data-used="{used}">'
            f"<title>{_e(tip)}</title>"
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">'
            f"{_e(_trunc(o.identity, 28))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{wg:.1f}" height="11" rx="2" '
            'fill="#adb5bd"/>'
            f'<rect x="{label_w}" y="{y + 16}" width="{wu:.1f}" height="11" rx="2" '
            'fill="#2b8a3e"/>'
            f'<text x="{label_w + wg + 5:.1f}" y="{y + 13}" class="muted">'
            f"{fmt_count(o.effective_total)}</text>"
            f'<text x="{label_w + wu + 5:.1f}" y="{y + 26}">{fmt_count(used)}</text></g>'
        )
    out.append("</svg></figure>")
    return "".join(out)


# -- sections -------------------------------------------------------------------------------


def _who(identity: str, v: View) -> str:
    name = v.display_names.get(identity)
    dn = f'<span class="dn">{_e(name)}</span>' if name and name != identity else ""
    return f'<span class="id mono">{_e(identity)}</span>{dn}'


def _pill(text: str, color: str, *, cls: str = "") -> str:
    return f'<span class="pill {cls}" style="background:{color}">{_e(text)}</span>'


def _kpis(report: PostureReport, v: View) -> str:
    sev = v.by_severity
    urgent = sev.get("critical", 0) + sev.get("high", 0)
    active_creds = sum(
        1 for i in report.inventory for c in i.credentials if c.status == "active"
    ) or sum(i.credential_count for i in report.inventory)
    long_lived = sum(c for _, c, ll in v.ages if ll)
    orphaned = sum(1 for i in report.inventory if i.orphaned)
    cells = [
        ("nhis", v.nhi_total, "non-human identities", False),
        ("findings", len(report.findings), "findings", False),
        ("urgent", urgent, "critical or high", urgent > 0),
        ("orphaned", orphaned, "orphaned NHIs", orphaned > 0),
        ("credentials", active_creds, "active credentials", False),
        ("long-lived", long_lived, "credentials ≥ 90 days old", long_lived > 0),
    ]
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi{" bad" if bad else ""}" data-kpi="{k}" data-value="{n}">'
            f'<div class="n">{fmt_count(n)}</div><div class="l">{_e(label)}</div></div>'
            for k, n, label, bad in cells
        )
        + "</div>"
        + _top_codes(report.findings)
    )


def _top_codes(findings: Sequence[Finding], n: int = 5) -> str:
    """The most frequent findings, each linking to the findings table filtered on it."""
    counts = Counter((f.code, f.owasp) for f in findings)
    if not counts:
        return ""
    rows = "".join(
        f'<li data-code="{_e(code)}" data-value="{c}"><a href="#q={quote(code)}">'
        f'<span class="mono">{_e(code)}</span></a> <span class="code-inline">{_e(owasp)}</span>'
        f"<b>{fmt_count(c)}</b></li>"
        for (code, owasp), c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    )
    return f'<h4>Most frequent findings</h4><ol class="top">{rows}</ol>'


def _parts_html(parts: list[str]) -> str:
    if len(parts) == 1:
        return html.escape(parts[0])
    return '<ul class="parts">' + "".join(f"<li>{html.escape(p)}</li>" for p in parts) + "</ul>"


def _evidence(f: Finding) -> str:
    items = evidence_parts(f.evidence)
    if not items:
        return ""
    # one value per line, so a list of tuple keys reads as a list, not as a wrapped blob
    return (
        '<dl class="ev">'
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{_parts_html(parts)}</dd>" for k, parts in items)
        + "</dl>"
    )


_PG = ' class="pg"'  # beyond the first page: hidden until the script pages (see PAGE)


def _more(table_id: str, total: int) -> str:
    """The "show more" bar under a big table (the script fills in and hides it)."""
    if total <= PAGE:
        return ""
    return (
        f'<div class="more" id="{table_id}-more"><span class="count">showing '
        f"{fmt_count(PAGE)} of {fmt_count(total)}</span>"
        f'<button type="button" class="page">Show {PAGE} more</button>'
        '<button type="button" class="all">Show all</button></div>'
    )


def _findings_rows(findings: Iterable[Finding], v: View) -> Iterable[str]:
    rank = {s: n for n, s in enumerate(SEVERITY_ORDER)}
    for n, f in enumerate(findings):
        name = v.display_names.get(f.identity, "")
        search = f"{f.identity} {name} {f.code} {f.owasp} {f.title}".lower()
        owasp_title = OWASP_NHI.get(f.owasp, "")
        yield (
            f"<tr{_PG if n >= PAGE else ''} "
            f'data-sev="{_e(f.severity)}" data-rank="{rank.get(f.severity, 9)}" '
            f'data-owasp="{_e(f.owasp)}" data-on="{owasp_sort_key(f.owasp)[0]}" '
            f'data-code="{_e(f.code)}" data-identity="{_e(f.identity)}" data-q="{_e(search)}">'
            f"<td>{_pill(f.severity, _SEV_COLOR.get(f.severity, '#495057'), cls='sev')}</td>"
            f'<td><b>{_e(f.owasp)}</b><span class="code">{_e(owasp_title)}</span></td>'
            f'<td class="what">{_e(f.title)}<span class="code mono">{_e(f.code)}</span></td>'
            f'<td class="who">{_who(f.identity, v)}</td>'
            f'<td class="ev">{_evidence(f)}</td>'
            f'<td class="fix">{_e(f.fix)}</td></tr>'
        )


def _findings_section(report: PostureReport, v: View) -> str:
    total = len(report.findings)
    sev_opts = "".join(
        f'<option value="{_e(s)}">{_e(s)} ({fmt_count(c)})</option>'
        for s, c in v.by_severity.items()
        if c
    )
    owasp_opts = "".join(
        f'<option value="{_e(k)}">{_e(k)} {_e(OWASP_NHI.get(k, ""))} ({fmt_count(c)})</option>'
        for k, c in v.by_owasp.items()
        if c
    )
    head = (
        '<section id="findings-section"><h2>Findings</h2>'
        '<div class="controls">'
        f'<label>Severity<select id="f-sev"><option value="">all</option>{sev_opts}'
        "</select></label>"
        f'<label>OWASP NHI<select id="f-owasp"><option value="">all</option>{owasp_opts}'
        "</select></label>"
        '<label>Search<input id="f-q" type="search" placeholder="identity, code, name"></label>'
        f'<span class="shown"><b id="f-shown">{fmt_count(total)}</b> of {fmt_count(total)} '
        "shown</span></div>"
    )
    if not report.findings:  # nothing to filter
        return (
            '<section id="findings-section"><h2>Findings</h2>'
            '<p class="empty">No findings.</p></section>'
        )
    return (
        head + '<div class="tablewrap"><table id="findings" class="sortable" '
        f'data-total="{total}" data-shown="{total}"><thead><tr>'
        '<th data-sort="rank" data-num aria-sort="ascending">Severity</th>'
        '<th data-sort="on" data-num>OWASP</th><th data-sort="code">Finding</th>'
        '<th data-sort="identity">Identity</th><th>Evidence</th><th>Fix</th></tr></thead>'
        "<tbody>"
        + "".join(_findings_rows(report.findings, v))
        + "</tbody></table>"
        + _more("findings", total)
        + "</div></section>"
    )


def _date(ts: float) -> str:
    """The day, with the full time on hover (the inventory has many columns)."""
    return f'<span title="{_e(fmt_time(ts))}">{_e(fmt_time(ts)[:10])}</span>'


def _inventory_rows(items: Iterable[NhiInventoryItem], v: View) -> Iterable[str]:
    for n, i in enumerate(items):
        owners = (
            "<br>".join(f'<span class="id mono">{_e(o)}</span>' for o in i.owners)
            if i.owners
            else ""
        )
        if i.orphaned or not i.owners:
            owners += (" " if owners else "") + _pill("orphaned", "#c92a2a")
        types = sorted({c.type for c in i.credentials if c.status == "active"})
        expiry = (
            _date(i.next_credential_expiry)
            if i.next_credential_expiry is not None
            else ("never" if i.credential_count else "—")
        )
        age = i.oldest_credential_age
        yield (
            f"<tr{_PG if n >= PAGE else ''} "
            f'data-identity="{_e(i.identity)}" data-kind="{_e(i.kind)}" '
            f'data-status="{_e(i.status)}" data-creds="{i.credential_count}" '
            f'data-age="{age if age is not None else -1}" '
            f'data-seen="{i.last_seen if i.last_seen is not None else -1}">'
            f'<td class="who">{_who(i.identity, v)}</td>'
            f"<td>{_pill(i.status, _STATUS_COLOR.get(i.status, '#495057'))}</td>"
            f'<td class="own">{owners}</td><td>{_e(i.environment or "—")}</td>'
            f"<td>{_e(i.source or '—')}</td>"
            f'<td class="num">{fmt_count(i.credential_count)}'
            f"{'<span class=code>' + _e(', '.join(types)) + '</span>' if types else ''}</td>"
            f'<td class="num">{fmt_age(age)}</td><td class="t">{expiry}</td>'
            f'<td class="num">{i.never_used} / {i.unused_30} / {i.unused_90}</td>'
            f'<td class="t">{_date(i.last_seen) if i.last_seen else "never"}</td>'
            f'<td class="num">{fmt_count(i.delegations_held)}</td></tr>'
        )


def _inventory_section(report: PostureReport, v: View) -> str:
    if not report.inventory:
        return (
            '<section id="inventory-section"><h2>Inventory</h2><p class="empty">'
            + ("No non-human identities." if not v.nhi_total else "Not included in this report.")
            + "</p></section>"
        )
    return (
        f'<section id="inventory-section"><h2>Inventory ({fmt_count(len(report.inventory))} '
        'NHIs)</h2><div class="tablewrap"><table id="inventory" class="sortable" '
        f'data-total="{len(report.inventory)}"><thead><tr>'
        '<th data-sort="identity" title="kind:id — sorting by it groups the kinds">'
        "Identity</th>"
        '<th data-sort="status">Status</th><th>Owners</th><th>Env</th><th>Source</th>'
        '<th data-sort="creds" data-num class="num">Credentials</th>'
        '<th data-sort="age" data-num class="num">Oldest</th><th>Next expiry</th>'
        '<th class="num" title="never used / unused 30 days / unused 90 days">'
        "Unused<br><small>never / 30 d / 90 d</small></th>"
        '<th data-sort="seen" data-num>Last seen</th>'
        '<th class="num" title="active delegations held">Deleg.</th>'
        "</tr></thead><tbody>"
        + "".join(_inventory_rows(report.inventory, v))
        + "</tbody></table>"
        + _more("inventory", len(report.inventory))
        + "</div></section>"
    )


def _privilege_section(v: View) -> str:
    if not v.worst:
        return ""
    rows = []
    for o in v.worst:
        revoke = "".join(f"<li><code>{_e(t)}</code></li>" for t in o.revoke)
        rows.append(
            f'<tr data-identity="{_e(o.identity)}"><td>{_who(o.identity, v)}</td>'
            f'<td class="num">{fmt_count(o.effective_total)}</td>'
            f'<td class="num">{fmt_count(len(o.used))}</td>'
            f'<td class="num">{fmt_count(o.unused_total)}</td>'
            f'<td class="num">{fmt_count(len(o.grants))}</td>'
            f'<td class="num">{fmt_count(len(o.unused_grants))}</td>'
            f"<td>keep {fmt_count(len(o.keep))}, revoke {fmt_count(len(o.revoke))}"
            + (
                f"<details><summary>grants to revoke</summary><ul>{revoke}</ul></details>"
                if revoke
                else ""
            )
            + "</td></tr>"
        )
    return (
        '<section id="privilege-section"><h2>Most over-privileged identities</h2>'
        '<div class="tablewrap"><table id="over-privilege"><thead><tr><th>Identity</th>'
        '<th class="num">Granted</th><th class="num">Used</th><th class="num">Unused</th>'
        '<th class="num">Grants</th><th class="num">Unused grants</th>'
        "<th>Least-privilege recommendation</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div></section>"
    )


def _exceeding_section(v: View) -> str:
    if not v.exceeding:
        return ""
    rows = "".join(
        f'<tr data-agent="{_e(e.agent)}"><td>{_who(e.agent, v)}</td>'
        f'<td><span class="id mono">{_e(e.principal)}</span></td><td>{_e(e.relationship)}</td>'
        f'<td class="num">{fmt_count(e.excess_total)}</td><td>'
        + ", ".join(f"<code>{_e(x.object)}#{_e(x.relation)}</code>" for x in e.excess[:5])
        + (" …" if e.excess_total > 5 else "")
        + "</td></tr>"
        for e in v.exceeding
    )
    return (
        '<section id="exceeding-section"><h2>Agents exceeding their owners or delegators</h2>'
        '<div class="tablewrap"><table id="exceeding"><thead><tr><th>Agent</th>'
        '<th>Principal</th><th>As</th><th class="num">Excess</th><th>For example</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></div></section>"
    )


def _tools_section(report: PostureReport, v: View) -> str:
    """The MCP gateway's tools (calls, last use, agents) and the agents' use and dangerous
    tools; nothing when the store has no gateway tools and no calls."""
    tu = report.tools
    if tu is None or not (tu.tools or tu.agents):
        return ""
    never = set(tu.never_used)
    rows = "".join(
        f'<tr data-tool="{_e(t.ref)}" data-status="{_e(t.status)}"'
        f' data-risk="{_e(t.risk or "")}"><td><code>{_e(t.ref)}</code>'
        + (' <span class="code-inline">never used</span>' if t.ref in never else "")
        + f"</td><td>{_e(t.status)}</td><td>{_e(t.kind or '—')}</td>"
        + f"<td>{_e(t.risk or '—')}</td>"
        f'<td class="num">{fmt_count(t.allowed)}</td><td class="num">{fmt_count(t.denied)}</td>'
        f"<td>{_e(fmt_time(t.last_used_at))}</td><td>"
        + ", ".join(f'<span class="id mono">{_e(a)}</span>' for a in t.agents[:10])
        + (" …" if len(t.agents) > 10 else "")
        + "</td></tr>"
        for t in tu.tools
    )
    agents = "".join(
        f'<tr data-agent="{_e(a.identity)}"><td>{_who(a.identity, v)}</td>'
        f'<td class="num">{fmt_count(a.calls)}</td><td class="num">{fmt_count(a.denied)}</td>'
        f"<td>{_e(fmt_time(a.last_used_at))}</td><td>"
        + (", ".join(f"<code>{_e(x)}</code>" for x in a.tools) or "—")
        + "</td><td>"
        + (
            ", ".join(
                f"<code>{_e(x)}</code>"
                + (" <b>(unused)</b>" if x in a.unused_dangerous_tools else "")
                for x in a.dangerous_tools
            )
            or "—"
        )
        + "</td></tr>"
        for a in tu.agents
    )
    enabled = sum(1 for t in tu.tools if t.status == "enabled")
    return (
        '<section id="tools-section"><h2>Tools (MCP gateway)</h2>'
        f'<p class="note">{fmt_count(len(tu.tools))} tools ({fmt_count(enabled)} enabled), '
        f"{fmt_count(tu.allowed)} calls allowed and {fmt_count(tu.denied)} denied in the "
        f"window; never used: {fmt_count(len(tu.never_used))}.</p>"
        '<div class="tablewrap"><table id="tools"><thead><tr><th>Tool</th><th>Status</th>'
        '<th>Kind</th><th>Risk</th><th class="num">Allowed</th><th class="num">Denied</th>'
        f"<th>Last used</th><th>Agents</th></tr></thead><tbody>{rows}</tbody></table></div>"
        + (
            '<h3>Agents</h3><div class="tablewrap"><table id="tool-agents"><thead><tr>'
            '<th>Agent</th><th class="num">Calls</th><th class="num">Denied</th>'
            "<th>Last used</th><th>Tools used</th><th>Dangerous tools it may call</th></tr>"
            f"</thead><tbody>{agents}</tbody></table></div>"
            if agents
            else ""
        )
        + "</section>"
    )


def _charts(report: PostureReport, v: View) -> str:
    sev = [
        _Bar(s, s, c, _SEV_COLOR.get(s, "#495057"), f"#severity={quote(s)}")
        for s, c in v.by_severity.items()
    ]
    owasp = [
        _Bar(k, f"{k} {OWASP_NHI.get(k, '')}", c, "#7048e8", f"#owasp={quote(k)}")
        for k, c in v.by_owasp.items()
    ]
    kind = [_Bar(k, k, c, _ACCENT) for k, c in v.by_kind.items()]
    status = [_Bar(k, k, c, _STATUS_COLOR.get(k, "#495057")) for k, c in v.by_status.items()]
    sources = [_Bar(k, k, c, _ACCENT) for k, c in v.identities_by_source.items()]
    exceed = [
        _Bar(
            f"{e.agent} {e.principal}",
            f"{e.agent} → {e.principal}",
            e.excess_total,
            "#ae3ec9",
            note=e.relationship,
        )
        for e in v.exceeding
    ]

    def card(title: str, body: str, note: str = "") -> str:
        n = f'<p class="note">{_e(note)}</p>' if note else ""
        return f'<div class="card"><h3>{_e(title)}</h3>{body}{n}</div>'

    return (
        '<div class="grid">'
        + card(
            "Visibility score",
            _gauge(report),
            "Share of NHIs with an active owner, an expiry on every active credential and "
            "usage data — all three.",
        )
        + card("At a glance", _kpis(report, v))
        + card("Findings by severity", _hbars("severity", "Findings by severity", sev))
        + card(
            "Findings by OWASP NHI Top 10",
            _hbars("owasp", "Findings by OWASP NHI id", owasp, label_w=230, max_chars=32),
        )
        + card("NHIs by kind", _hbars("kind", "NHIs by kind", kind))
        + card("NHIs by status", _hbars("status", "NHIs by status", status))
        + (
            card(
                "Identities by source",
                _hbars("source", "Identities by source", sources),
                "Every live identity, people included: the identity provider (scim), "
                "imports (import:aws, …) and the API.",
            )
            if sources
            else ""
        )
        + card("Credential age", _age_chart(v))
        + card(
            "Over-privilege: granted vs used",
            _privilege_chart(v.worst, v),
            "Effective permissions versus those exercised in the window, for the "
            "identities with the most unused permissions.",
        )
        + card(
            "Agents exceeding owners",
            _hbars("exceeding", "Agents exceeding owners", exceed, label_w=230, max_chars=34),
            "Permissions an agent holds that its owner or delegator does not.",
        )
        + "</div>"
    )


def render_html(report: PostureReport) -> str:
    """The report as a self-contained HTML document (see the module docstring)."""
    v = view(report)
    title = f"NHI posture — {report.store_id}"
    meta = (
        f"<span>store <b>{_e(report.store_id)}</b></span>"
        f"<span>generated <b>{_e(fmt_time(report.generated_at))}</b></span>"
        f"<span>usage window <b>{_e(fmt_time(report.since))}</b> → "
        f"<b>{_e(fmt_time(report.until))}</b> ({v.window_days:.0f} days)</span>"
        + (
            f"<span>computed in <b>{report.elapsed_seconds:.2f} s</b></span>"
            if report.elapsed_seconds
            else ""
        )
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{HTML_CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f'<meta name="generator" content="Keyplane"><title>{_e(title)}</title>'
        f"<style>{CSS}</style>"
        "<noscript><style>tr.pg{display:table-row}.more{display:none}</style></noscript>"
        "</head>\n"
        f'<body data-store="{_e(report.store_id)}" data-generated-at="{report.generated_at}">'
        '<header class="top"><h1>Non-human identity posture</h1>'
        f'<div class="meta">{meta}</div></header><main>'
        + _charts(report, v)
        + _findings_section(report, v)
        + _privilege_section(v)
        + _exceeding_section(v)
        + _tools_section(report, v)
        + _inventory_section(report, v)
        + "<footer>Keyplane posture report · findings mapped to the OWASP Non-Human "
        "Identities Top 10 (2025) · credential ages and usage at "
        + _e(fmt_time(report.generated_at))
        + "</footer></main>\n"
        f"<script>{SCRIPT}</script></body></html>\n"
    )

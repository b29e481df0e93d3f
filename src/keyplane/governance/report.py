"""The NHI posture report (issue 8 §3) in three formats, from one
:class:`~keyplane.governance.posture.PostureReport`:

- :func:`render_json` — the report's ``to_dict`` as JSON; what the REST API, the CLI and
  the MCP tool return, and what ``PostureReport.from_dict`` reads back.
- :func:`render_text` — a terminal report (rich) that reads well at 100 columns: the
  visibility score, the counts, the findings grouped by severity then by finding with the
  fix, the most over-privileged identities, the agents that exceed their owners and the
  MCP gateway's tools (their use, never-used tools, agents with dangerous tools).
- :func:`render_html` — a self-contained HTML page with inline CSS, server-drawn inline
  SVG charts and a small inline script (see :mod:`keyplane.governance.report_html`).

Identities, display names and evidence are user input: the terminal report neutralizes
control characters and never interprets rich markup; the HTML report escapes every value.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Sequence

from rich.color import ColorSystem
from rich.console import Console, RenderableType
from rich.rule import Rule
from rich.style import Style
from rich.table import Table
from rich.text import Text

from keyplane.governance.posture import OWASP_NHI, Finding, PostureReport
from keyplane.governance.report_html import HTML_CONTENT_SECURITY_POLICY, render_html
from keyplane.governance.report_view import (
    SEVERITY_ORDER,
    View,
    clean,
    evidence_items,
    fmt_count,
    fmt_time,
    view,
)

__all__ = ["HTML_CONTENT_SECURITY_POLICY", "render_html", "render_json", "render_text"]

_SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
}


def render_json(report: PostureReport) -> str:
    """The report as indented JSON (``report.to_dict()``); non-ASCII kept as is."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)


def render_text(
    report: PostureReport, *, width: int = 100, color: bool = False, limit: int | None = None
) -> str:
    """The report for a terminal, ``width`` columns wide; ANSI colours only with
    ``color``. ``limit``: at most that many findings listed per severity (the rest
    counted); None lists them all."""
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
        legacy_windows=False,
    )
    v = view(report)
    for part in _head(report, v):
        console.print(part)
    out.write(_findings(report, v, limit, width, color))
    for part in (*_over_privileged(v), *_exceeding(v), *_tools(report, v)):
        console.print(part)
    text = out.getvalue()
    # rich pads every line to the width: trailing blanks help nobody reading a file
    return text if color else "\n".join(line.rstrip() for line in text.split("\n"))


def _dotted(counts: dict[str, int], *, zero: bool = False) -> Text:
    parts = [f"{clean(k)} {fmt_count(n)}" for k, n in counts.items() if n or zero]
    return Text(" · ".join(parts) if parts else "—")


def _bar(share: float, cells: int = 20) -> str:
    full = round(max(0.0, min(1.0, share)) * cells)
    return "█" * full + "░" * (cells - full)


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _head(report: PostureReport, v: View) -> Iterator[RenderableType]:
    yield Rule(Text("Keyplane — non-human identity posture", style="bold"), align="left")
    meta = Table.grid(padding=(0, 2))
    meta.add_column(style="dim", no_wrap=True)
    meta.add_column()
    meta.add_row("store", Text(clean(report.store_id)))
    meta.add_row("generated", Text(fmt_time(report.generated_at)))
    meta.add_row(
        "usage window",
        Text(f"{fmt_time(report.since)} → {fmt_time(report.until)} ({v.window_days:.0f} days)"),
    )
    if report.elapsed_seconds:
        meta.add_row("computed in", Text(f"{report.elapsed_seconds:.2f} s"))
    yield meta
    yield Text()
    yield from _score(report, v)
    yield Text()
    yield _counts_table(report, v)


def _score(report: PostureReport, v: View) -> Iterator[RenderableType]:
    vis = report.visibility
    d = vis.to_dict()
    style = "green" if vis.score >= 0.8 else "yellow" if vis.score >= 0.5 else "red"
    yield Text.assemble(
        ("Visibility score  ", "bold"),
        (f"{_pct(vis.score):>4}  ", f"bold {style}"),
        (_bar(vis.score), style),
        f"  {fmt_count(vis.complete)} of {fmt_count(vis.total)} NHIs have all three",
    )
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, style="dim")
    for label, n, share in (
        ("an active owner", vis.owned, d["owned_share"]),
        ("an expiry on every credential", vis.expiring, d["expiring_share"]),
        ("usage data", vis.observed, d["observed_share"]),
    ):
        grid.add_row(
            f"  {label}", _pct(share), _bar(share, 12), f"{fmt_count(n)}/{fmt_count(vis.total)}"
        )
    yield grid


def _counts_table(report: PostureReport, v: View) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(justify="right", no_wrap=True)
    t.add_column(ratio=1)
    t.add_row("NHIs", fmt_count(v.nhi_total), Text("by kind: ").append_text(_dotted(v.by_kind)))
    t.add_row("", "", Text("by status: ").append_text(_dotted(v.by_status)))
    if v.by_source:
        t.add_row("", "", Text("by source: ").append_text(_dotted(v.by_source)))
    if v.identities_by_source:
        t.add_row(
            "Identities",
            fmt_count(sum(v.identities_by_source.values())),
            Text("by source: ").append_text(_dotted(v.identities_by_source)),
        )
    sev = Text()
    for n, (s, c) in enumerate(v.by_severity.items()):
        if n:
            sev.append(" · ")
        sev.append(f"{clean(s)} {fmt_count(c)}", style=_SEVERITY_STYLE.get(s, "") if c else "dim")
    t.add_row("Findings", fmt_count(len(report.findings)), sev)
    owasp = [f"{k} {fmt_count(c)}" for k, c in v.by_owasp.items() if c]
    t.add_row("", "", Text("by OWASP NHI: " + (" · ".join(owasp) if owasp else "—")))
    return t


def _who(identity: str, v: View) -> Text:
    text = Text(clean(identity), style="bold")
    name = v.display_names.get(identity)
    if name and name != identity:
        text.append(f" ({clean(name)})", style="dim")
    return text


# -- the findings list ----------------------------------------------------------------------
# Laid out here rather than by rich: rich's wrapping costs about a millisecond per finding,
# and a large organisation has tens of thousands of findings (20,000 render in well under a
# second this way). Each line is a list of (text, style) pieces; styles become ANSI through
# rich's Style only when colour is on.

_Piece = tuple[str, str]
_WORD = re.compile(r"\S+|\s+")


class _Lines:
    """Greedy word wrap of styled pieces with a hanging indent, then plain or ANSI text."""

    def __init__(self, width: int, color: bool) -> None:
        self.width = max(20, width)
        self.color = color
        self.out: list[str] = []
        self._styles: dict[str, Style] = {}

    def _emit(self, line: list[_Piece]) -> None:
        if self.color:
            text = "".join(
                self._style(st).render(t, color_system=ColorSystem.STANDARD) if st else t
                for t, st in line
            )
        else:
            text = "".join(t for t, _ in line)
        self.out.append(text.rstrip())

    def _style(self, name: str) -> Style:
        got = self._styles.get(name)
        if got is None:
            got = self._styles[name] = Style.parse(name)
        return got

    def blank(self) -> None:
        self.out.append("")

    def add(self, pieces: Sequence[_Piece], *, indent: int = 0, hanging: int = 0) -> None:
        line: list[_Piece] = [(" " * indent, "")]
        used = indent
        start = True
        for text, style in pieces:
            for tok in _WORD.findall(text):
                if tok.isspace():
                    if not start:
                        line.append((tok, style))
                        used += len(tok)
                    continue
                while tok:
                    room = self.width - used
                    if len(tok) <= room:
                        line.append((tok, style))
                        used += len(tok)
                        tok = ""
                    elif not start:  # wrap before the word
                        while line and line[-1][0].isspace():
                            used -= len(line.pop()[0])
                        self._emit(line)
                        line = [(" " * (indent + hanging), "")]
                        used = indent + hanging
                        start = True
                        continue
                    else:  # a word longer than the line: cut it
                        cut = max(1, room)
                        line.append((tok[:cut], style))
                        tok = tok[cut:]
                        self._emit(line)
                        line = [(" " * (indent + hanging), "")]
                        used = indent + hanging
                        continue
                    start = False
        self._emit(line)

    def text(self) -> str:
        return "\n".join(self.out) + "\n" if self.out else ""


def _findings(report: PostureReport, v: View, limit: int | None, width: int, color: bool) -> str:
    lines = _Lines(width, color)
    if not report.findings:
        lines.blank()
        lines.add([("No findings.", "green")])
        return lines.text()
    by_sev: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_sev.setdefault(f.severity, []).append(f)
    order = [s for s in SEVERITY_ORDER if s in by_sev] + sorted(
        s for s in by_sev if s not in SEVERITY_ORDER
    )
    for sev in order:
        found = by_sev[sev]
        lines.blank()
        head = f"{clean(sev).upper()} — {fmt_count(len(found))} finding" + (
            "s" if len(found) != 1 else ""
        )
        lines.add(
            [(head, _SEVERITY_STYLE.get(sev, "bold")), (" " + "─" * (width - len(head) - 1), "")]
        )
        shown = found if limit is None else found[:limit]
        groups: dict[tuple[str, str], list[Finding]] = {}
        for f in shown:
            groups.setdefault((f.owasp, f.code), []).append(f)
        for (owasp, code), items in groups.items():
            _group(lines, owasp, code, items, v)
        if len(shown) < len(found):
            lines.blank()
            lines.add(
                [
                    (
                        f"… and {fmt_count(len(found) - len(shown))} more {clean(sev)} "
                        "findings (see the JSON or HTML report)",
                        "dim",
                    )
                ],
                indent=1,
            )
    return lines.text()


def _group(lines: _Lines, owasp: str, code: str, items: list[Finding], v: View) -> None:
    lines.blank()
    lines.add(
        [
            (clean(owasp), "bold magenta"),
            (" " + clean(OWASP_NHI.get(owasp, "")), "magenta"),
            (" · ", ""),
            (clean(code), "bold"),
            (f"  ({fmt_count(len(items))})", ""),
        ],
        indent=1,
        hanging=2,
    )
    one_fix = len({f.fix for f in items}) == 1 and items[0].fix
    if one_fix:
        lines.add([("fix: ", "bold green"), (clean(items[0].fix), "")], indent=3, hanging=5)
    for f in items:
        who: list[_Piece] = [("• ", ""), (clean(f.identity), "bold")]
        name = v.display_names.get(f.identity)
        if name and name != f.identity:
            who.append((f" ({clean(name)})", "dim"))
        if f.title:
            who.append((" — " + clean(f.title), ""))
        lines.add(who, indent=3, hanging=2)
        ev: list[_Piece] = []
        for n, (k, val) in enumerate(evidence_items(f.evidence)):
            ev += [(" · " if n else "", "dim"), (f"{k}: ", "dim"), (val, "")]
        if ev:
            lines.add(ev, indent=5, hanging=2)
        if f.fix and not one_fix:
            lines.add([("fix: ", "bold green"), (clean(f.fix), "")], indent=5, hanging=5)


def _over_privileged(v: View) -> Iterator[RenderableType]:
    if not v.worst:
        return
    yield Text()
    yield Rule(Text("Most over-privileged identities", style="bold"), align="left")
    t = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1))
    t.add_column("identity", overflow="fold", ratio=1)
    t.add_column("granted", justify="right", no_wrap=True)
    t.add_column("used", justify="right", no_wrap=True)
    t.add_column("unused", justify="right", no_wrap=True)
    t.add_column("grants", justify="right", no_wrap=True)
    t.add_column("unused grants", justify="right", no_wrap=True)
    t.add_column("keep / revoke", justify="right", no_wrap=True)
    for o in v.worst:
        t.add_row(
            _who(o.identity, v),
            fmt_count(o.effective_total),
            fmt_count(len(o.used)),
            Text(fmt_count(o.unused_total), style="red" if o.unused_total else ""),
            fmt_count(len(o.grants)),
            fmt_count(len(o.unused_grants)),
            f"{fmt_count(len(o.keep))} / {fmt_count(len(o.revoke))}",
        )
    yield t
    yield Text(
        "granted: effective permissions; used: exercised in the window; keep / revoke: the "
        "least-privilege recommendation (grants).",
        style="dim",
    )


def _exceeding(v: View) -> Iterator[RenderableType]:
    if not v.exceeding:
        return
    yield Text()
    yield Rule(Text("Agents exceeding their owners or delegators", style="bold"), align="left")
    t = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1))
    t.add_column("agent", overflow="fold", ratio=2)
    t.add_column("principal", overflow="fold", ratio=2)
    t.add_column("as", no_wrap=True)
    t.add_column("excess", justify="right", no_wrap=True)
    t.add_column("for example", overflow="fold", ratio=3)
    for e in v.exceeding:
        sample = ", ".join(f"{clean(x.object)}#{clean(x.relation)}" for x in e.excess[:3])
        t.add_row(
            _who(e.agent, v),
            Text(clean(e.principal)),
            clean(e.relationship),
            fmt_count(e.excess_total),
            Text(sample),
        )
    yield t


#: at most this many tools and agents listed in the terminal report's Tools section
TOOLS_SHOWN = 50


def _tools(report: PostureReport, v: View) -> Iterator[RenderableType]:
    """The MCP gateway's tools: calls, last use and callers per tool; per agent its use and
    the dangerous tools it may call; the enabled tools never used in the window."""
    tu = report.tools
    if tu is None or not (tu.tools or tu.agents):
        return
    yield Text()
    yield Rule(Text("Tools (MCP gateway)", style="bold"), align="left")
    enabled = sum(1 for t in tu.tools if t.status == "enabled")
    yield Text(
        f"{fmt_count(len(tu.tools))} tools ({fmt_count(enabled)} enabled) · "
        f"{fmt_count(tu.allowed)} calls allowed · {fmt_count(tu.denied)} denied in the window"
    )
    never = ", ".join(clean(r) for r in tu.never_used[:TOOLS_SHOWN])
    more = len(tu.never_used) - TOOLS_SHOWN
    yield Text.assemble(
        ("Never used: ", "bold"),
        (never + (f" … and {fmt_count(more)} more" if more > 0 else "") if never else "none"),
    )
    t = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1))
    t.add_column("tool", overflow="fold", ratio=2)
    t.add_column("status", no_wrap=True)
    t.add_column("kind / risk", no_wrap=True)
    t.add_column("allowed", justify="right", no_wrap=True)
    t.add_column("denied", justify="right", no_wrap=True)
    t.add_column("last used", no_wrap=True)
    t.add_column("agents", overflow="fold", ratio=2)
    for x in tu.tools[:TOOLS_SHOWN]:
        risk = x.risk or "—"
        t.add_row(
            Text(clean(x.ref)),
            clean(x.status),
            Text(
                f"{clean(x.kind or '—')} / {clean(risk)}",
                style="red" if risk == "dangerous" else "",
            ),
            fmt_count(x.allowed),
            fmt_count(x.denied),
            fmt_time(x.last_used_at),
            Text(", ".join(clean(a) for a in x.agents[:5]) + (" …" if len(x.agents) > 5 else "")),
        )
    yield t
    if len(tu.tools) > TOOLS_SHOWN:
        yield Text(f"… and {fmt_count(len(tu.tools) - TOOLS_SHOWN)} more tools", style="dim")
    if not tu.agents:
        return
    yield Text()
    a = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1))
    a.add_column("agent", overflow="fold", ratio=2)
    a.add_column("calls", justify="right", no_wrap=True)
    a.add_column("denied", justify="right", no_wrap=True)
    a.add_column("last used", no_wrap=True)
    a.add_column("tools used", overflow="fold", ratio=2)
    a.add_column("dangerous tools it may call (unused *)", overflow="fold", ratio=3)
    for g in tu.agents[:TOOLS_SHOWN]:
        unused = set(g.unused_dangerous_tools)
        a.add_row(
            _who(g.identity, v),
            fmt_count(g.calls),
            fmt_count(g.denied),
            fmt_time(g.last_used_at),
            Text(", ".join(clean(x) for x in g.tools) or "—"),
            Text(
                ", ".join(clean(x) + ("*" if x in unused else "") for x in g.dangerous_tools)
                or "—",
                style="red" if unused else "",
            ),
        )
    yield a
    if len(tu.agents) > TOOLS_SHOWN:
        yield Text(f"… and {fmt_count(len(tu.agents) - TOOLS_SHOWN)} more agents", style="dim")

"""The posture report renderers (issue 8 §3): JSON that round-trips through
``PostureReport.from_dict``, the terminal report, and the self-contained HTML report —
opened in headless Chromium: the DOM after the page's script ran (charts with the right
numbers, the findings filter and sort), a screenshot, a PDF print, hostile display names
rendered as text, and no network request. Reports are built directly from the records
(``report_samples.py``): realistic, empty, and very large (5,000 NHIs, 20,000 findings).

Chromium comes from ``make browser`` (Debian's ``chromium``); without it these tests FAIL
and say so — an HTML report nobody opened in a browser is not tested."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest
import report_samples as S
from rich.cells import cell_len

from keyplane.governance.posture import OWASP_NHI, Finding, PostureReport
from keyplane.governance.report import (
    HTML_CONTENT_SECURITY_POLICY,
    render_html,
    render_json,
    render_text,
)
from keyplane.governance.report_html import PAGE

SEVERITIES = ("critical", "high", "medium", "low")


# -- JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [S.realistic, S.empty], ids=["realistic", "empty"])
def test_json_round_trips(make: object) -> None:
    report = make()  # type: ignore[operator]
    text = render_json(report)
    assert PostureReport.from_dict(json.loads(text)) == report
    body = json.loads(text)
    assert body["visibility"]["score"] == report.visibility.score
    assert [f["code"] for f in body["findings"]] == [f.code for f in report.findings]


def test_json_keeps_hostile_text_verbatim() -> None:
    report = S.realistic()
    text = render_json(report)
    names = {i["display_name"] for i in json.loads(text)["inventory"]}
    assert S.HOSTILE_SCRIPT in names and S.HOSTILE_IMG in names


# -- the terminal report --------------------------------------------------------------------


def test_text_report_reads_at_100_columns() -> None:
    report = S.realistic()
    text = render_text(report)
    lines = text.splitlines()
    assert max(cell_len(line) for line in lines) <= 100
    assert all(line == line.rstrip() for line in lines)
    assert "\x1b" not in text  # no colour unless asked
    # the score and its three components, with counts
    assert re.search(r"Visibility score\s+38%", text)
    assert re.search(r"an active owner\s+75%.*6/8", text)
    assert re.search(r"an expiry on every credential\s+50%.*4/8", text)
    assert re.search(r"usage data\s+62%.*5/8", text)
    assert "by kind: agent 4 · workload 2 · service_account 2" in text
    assert "by status: active 6 · suspended 1 · deprovisioned 1" in text
    assert re.search(r"Findings\s+14\s+critical 2 · high 5 · medium 5 · low 2", text)
    assert "NHI1 3 · NHI4 2 · NHI5 2 · NHI7 4 · NHI8 1 · NHI9 1 · NHI10 1" in text
    # findings grouped by severity, most severe first, each with its fix
    heads = [
        m.group(1) for m in re.finditer(r"^(CRITICAL|HIGH|MEDIUM|LOW) — \d+ finding", text, re.M)
    ]
    assert heads == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    for f in report.findings:
        assert f.code in text and f.fix in text
    sections = re.split(r"^(?:CRITICAL|HIGH|MEDIUM|LOW) — ", text, flags=re.M)[1:]
    for sev, section in zip(SEVERITIES, sections, strict=True):
        codes = {f.code for f in report.findings if f.severity == sev}
        assert {c for c in codes if c in section} == codes
    # a shared fix is said once under its group; evidence is readable
    assert text.count("Rotate to a credential with an expiry of at most 90 days.") == 1
    assert "age: 2.2 y" in text and "expires at: never" in text
    assert "last used at: 2026-09-17 08:00 UTC" in text
    flat = re.sub(r"\s+", " ", text)  # records wrap over lines
    assert (
        "credentials: cred_etl (type: client_secret, created at: 2026-08-18 08:00 UTC, "
        "expires at: never, last used at: never, age days: 150 d); key_etl (type: api_key,"
    ) in flat
    assert (
        "principals: principal: human:alice, relationship: delegator, delegation id: dlg_7, "
        "excess total: 3, excess: document:roadmap#editor (4 uses), document:budget#viewer"
    ) in flat
    # over-privileged identities and agents exceeding owners
    assert re.search(r"agent:planner \(Planning agent\)\s+58\s+14\s+44\s+3\s+2\s+1 / 2", text)
    assert re.search(r"agent:summarizer \(Summarizer\)\s+human:alice\s+delegator\s+3", text)
    # hostile names are shown as they are (a terminal does not run HTML)
    assert S.HOSTILE_SCRIPT in text.replace("\n", "").replace("     ", "")


def test_text_report_neutralizes_terminal_control_codes() -> None:
    report = S.realistic()
    evil = replace(report.inventory[0], display_name="\x1b[2J\x1b]0;owned\x07planner")
    report = replace(report, inventory=(evil, *report.inventory[1:]))
    text = render_text(report)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J\\x1b]0;owned\\x07planner" in text
    colored = render_text(report, color=True)
    assert "\x1b[" in colored  # colour was asked for
    assert "\x1b[2J" not in colored and "\x07" not in colored


def test_text_report_limit_and_markup_free() -> None:
    report = S.realistic()
    f = Finding("orphaned_identity", "NHI1", "high", "agent:[bold]x[/bold]", "[red]t[/red]")
    report = replace(report, findings=(*report.findings, f))
    text = render_text(report, limit=1)
    assert "agent:[bold]x[/bold]" not in text  # only one high finding listed
    assert "… and 5 more high findings" in text
    full = render_text(report, width=80)
    assert "agent:[bold]x[/bold] — [red]t[/red]" in full  # rich markup is not interpreted
    assert max(cell_len(line) for line in full.splitlines()) <= 80


def test_text_report_empty() -> None:
    text = render_text(S.empty())
    assert "No findings." in text
    assert re.search(r"Visibility score\s+100%", text)
    assert re.search(r"NHIs\s+0", text)
    assert "over-privileged" not in text


# -- the HTML report, statically ------------------------------------------------------------


def test_html_is_self_contained() -> None:
    page = render_html(S.realistic())
    # nothing to fetch: no URL scheme, no protocol-relative URL, no CSS url()/@import,
    # no element that loads something
    assert not re.search(r"(?i)\b(?:https?|wss?|ftp|file):|javascript:", page)
    assert not re.search(r'(?i)\b(?:src|action|srcset|poster)="', page)
    assert set(re.findall(r'(?i)\bhref="(.)', page)) == {"#"}  # the charts' filter links
    assert not re.search(r"(?i)//[a-z0-9]|url\(|@import", page)
    assert not re.search(r"(?i)<(?:link|img|iframe|object|embed|base|source|audio|video)\b", page)
    # the policy forbids fetching and allows only our script, by its hash
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in HTML_CONTENT_SECURITY_POLICY
    assert f'content="{HTML_CONTENT_SECURITY_POLICY}"' in page
    assert "default-src 'none'" in HTML_CONTENT_SECURITY_POLICY
    # user input is escaped, quotes included (safe inside attributes)
    assert S.HOSTILE_SCRIPT not in page and S.HOSTILE_IMG not in page
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;" in page
    assert 'data-identity="agent:&quot;&gt;&lt;svg onload=alert(1)&gt;"' in page


def test_report_without_inventory_uses_its_counts() -> None:
    """``include_inventory=False``: no inventory, but the service's counts (every kind
    and status, zeros included) still drive the charts and the terminal summary."""
    full = S.realistic()
    report = replace(full, inventory=())
    page = render_html(report)
    for kind, n in full.counts["nhis_by_kind"].items():
        assert f'data-key="{kind}" data-value="{n}"' in page
    assert 'data-key="deprovisioned" data-value="1"' in page
    assert "Not included in this report." in page
    text = render_text(report)
    assert re.search(r"NHIs\s+8\s+by kind: agent 4 · workload 2 · service_account 2", text)
    # the findings still name their identities (no display names without the inventory)
    assert "agent:planner — A human drives this agent's identity" in text


def test_top_findings_link_to_the_filtered_table() -> None:
    page = render_html(S.realistic())
    top = re.findall(r'<li data-code="([a-z_]+)" data-value="(\d+)"><a href="#q=([a-z_]+)">', page)
    assert top[:3] == [
        ("long_lived_secret", "2", "long_lived_secret"),
        ("shared_secret_authentication", "2", "shared_secret_authentication"),
        ("stale_credential", "2", "stale_credential"),
    ]
    assert len(top) == 5


def test_large_report_renders_in_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.perf_counter()
    report = S.large()
    built = time.perf_counter() - t0
    timings = {}
    outputs = {}
    for render in (render_json, render_text, render_html):
        t = time.perf_counter()
        outputs[render.__name__] = render(report)
        timings[render.__name__] = time.perf_counter() - t
    with capsys.disabled():
        print(
            f"\nposture report, {len(report.inventory):,} NHIs / {len(report.findings):,} "
            f"findings (built in {built:.2f} s): "
            + ", ".join(
                f"{k} {v:.2f} s ({len(outputs[k]) / 1e6:.1f} MB)" for k, v in timings.items()
            )
        )
    for name, seconds in timings.items():
        assert seconds < 8, f"{name} took {seconds:.1f} s"
    assert PostureReport.from_dict(json.loads(outputs["render_json"])) == report
    page = outputs["render_html"]
    assert len(re.findall(r'<tr(?: class="pg")? data-sev=', page)) == 20_000
    assert page.count('<tr class="pg" data-sev=') == 20_000 - PAGE  # paged by the script
    assert len(re.findall(r'<tr(?: class="pg")? data-identity="', page)) == 5_000 + 10
    assert 'data-total="20000" data-shown="20000"' in page
    text = outputs["render_text"]
    assert text.count("\n   • ") == 20_000
    assert max(cell_len(line) for line in text.splitlines()) <= 100


# -- in Chromium ----------------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            "chromium is not installed: run `make browser` (installs Debian's chromium); "
            "the HTML report is tested in a real headless browser",
            pytrace=False,
        )
    return found


def test_missing_chromium_fails_and_says_make_browser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a browser the HTML tests must fail, never skip: an untested report would
    pass unnoticed."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"run `make browser`"):
        _chromium()


class Run(NamedTuple):
    out: str  # stdout: the DOM with --dump-dom
    took: float  # seconds
    console: list[str]  # the page's console: messages, uncaught errors, CSP violations


def _run_chromium(tmp: Path, url: str, *extra: str, timeout: float = 60) -> Run:
    """Run headless Chromium on ``url`` with ``extra`` (``--dump-dom``, ``--screenshot=``,
    …) and an isolated profile, logging the page's console to stderr."""
    profile = tmp / f"profile-{time.monotonic_ns()}"
    args = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
        "--enable-logging=stderr", "--v=0", *extra, url,
    ]  # fmt: skip
    t = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    took = time.perf_counter() - t
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Run(done.stdout, took, console)


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        want = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [
            n
            for n in self.iter()
            if (tag is None or n.tag == tag)
            and all(n.attrs.get(k) == v or (v == "*" and k in n.attrs) for k, v in want.items())
        ]

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}  # fmt: skip


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in _VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.cur))

    def handle_endtag(self, tag: str) -> None:
        n: Node | None = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data: str) -> None:
        self.cur.children.append(data)


def parse(html: str) -> Node:
    p = _Dom()
    p.feed(html)
    p.close()
    return p.root


def _bars(dom: Node, chart: str) -> dict[str, int]:
    fig = dom.one("figure", data_chart=chart)
    return {
        g.attrs["data-key"]: int(g.attrs["data-value"]) for g in fig.find_all("g", class_="bar")
    }


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked for: requests whose network isolation key is the
    file:// page (Chromium's own background traffic has another key)."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start and "file://" in e["params"].get("network_isolation_key", "")
    ]


@pytest.fixture(scope="module")
def realistic_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[PostureReport, Path]:
    report = S.realistic()
    path = tmp_path_factory.mktemp("report") / "posture report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return report, path


def test_html_in_chromium_dom_after_script(
    realistic_page: tuple[PostureReport, Path], tmp_path: Path
) -> None:
    report, path = realistic_page
    netlog = tmp_path / "net.json"
    out, took, console = _run_chromium(
        tmp_path, path.as_uri(), "--dump-dom", f"--log-net-log={netlog}"
    )
    print(f"chromium --dump-dom: {took:.2f} s")
    assert console == []  # no error, no CSP violation, no message
    dom = parse(out)
    html = dom.one("html")
    assert html.attrs.get("data-ready") == "true", "the page's script did not run"
    assert "js" in html.attrs.get("class", "")
    # charts, with the numbers of the report
    sev = Counter(f.severity for f in report.findings)
    assert _bars(dom, "severity") == {s: sev.get(s, 0) for s in SEVERITIES}
    owasp = Counter(f.owasp for f in report.findings)
    assert _bars(dom, "owasp") == {k: owasp.get(k, 0) for k in OWASP_NHI}
    assert set(owasp) == {"NHI1", "NHI4", "NHI5", "NHI7", "NHI8", "NHI9", "NHI10"}
    assert _bars(dom, "kind") == {"agent": 4, "service_account": 2, "workload": 2}
    assert _bars(dom, "status") == {"active": 6, "deprovisioned": 1, "suspended": 1}
    ages = Counter()
    for item in report.inventory:
        for c in item.credentials:
            d = (report.generated_at - c.created_at) / 86400
            ages[next(n for n, hi in enumerate((30, 90, 180, 365, 730, 1e9)) if d < hi)] += 1
    assert list(_bars(dom, "credential-age").values()) == [ages.get(n, 0) for n in range(6)]
    assert sum(_bars(dom, "credential-age").values()) == 10
    gauge = dom.one("figure", data_chart="visibility")
    assert gauge.attrs["data-score"] == "0.375" and gauge.attrs["data-complete"] == "3"
    assert _bars(dom, "visibility") == {"owned": 6, "expiring": 4, "observed": 5}
    assert "38%" in gauge.one("text", class_="big score").text()
    assert len(gauge.find_all("path", class_="gauge-value")) == 1
    over = {
        g.attrs["data-key"]: (g.attrs["data-granted"], g.attrs["data-used"])
        for g in dom.one("figure", data_chart="over-privilege").find_all("g", class_="bar")
    }
    assert over == {"agent:planner": ("58", "14"), "service_account:ci": ("12", "1")}
    assert _bars(dom, "exceeding") == {"agent:summarizer human:alice": 3,
                                      "agent:planner human:alice": 1}  # fmt: skip
    kpis = {k.attrs["data-kpi"]: int(k.attrs["data-value"]) for k in dom.find_all(data_kpi="*")}
    assert kpis == {"nhis": 8, "findings": 14, "urgent": 7, "orphaned": 1, "credentials": 10,
                    "long-lived": 5}  # fmt: skip
    # the findings table: every finding, in order, all shown, counts agree
    table = dom.one("table", id="findings")
    rows = table.find_all("tr", data_sev="*")
    assert [(r.attrs["data-code"], r.attrs["data-identity"]) for r in rows] == [
        (f.code, f.identity) for f in report.findings
    ]
    assert not any("hidden" in r.attrs for r in rows)
    assert table.attrs["data-shown"] == table.attrs["data-total"] == "14"
    assert table.attrs["data-visible"] == "14" and not dom.find_all(id="findings-more")
    assert dom.one(id="f-shown").text() == "14"
    first = rows[0]
    assert "Revoke credential cred_etl" in first.text()
    creds = [li.text() for li in first.one("ul", class_="parts").find_all("li")]
    assert [c.split(" (")[0] for c in creds] == ["cred_etl", "key_etl"]
    assert "expires at: never" in creds[0] and "age days: 150 d" in creds[0]
    # the inventory, with the usage window and generation time in the header
    assert len(dom.one("table", id="inventory").find_all("tr", data_identity="*")) == 8
    header = dom.one("header").text()
    assert "2027-01-15 08:00 UTC" in header and "2026-10-17 08:00 UTC" in header
    assert "(90 days)" in header
    # hostile names are text: no element was injected, nothing ran
    assert len(dom.find_all("script")) == 1
    assert not dom.find_all("img") and not [n for n in dom.iter() if "onload" in n.attrs]
    assert not [n for n in dom.iter() if "onerror" in n.attrs]
    assert dom.one("head").one("title").text() == "NHI posture — acme-prod"
    names = [n.text() for n in dom.find_all("span", class_="dn")]
    assert S.HOSTILE_SCRIPT in names and S.HOSTILE_IMG in names
    assert S.HOSTILE_IDENTITY in [n.text() for n in dom.find_all("span", class_="id mono")]
    # and the page fetched nothing
    assert _page_requests(netlog) == []


def test_netlog_check_would_see_a_request(tmp_path: Path) -> None:
    """The "fetched nothing" assertion above is only worth something if a page that does
    fetch is caught: a page loading an image from a closed local port."""
    page = tmp_path / "fetches.html"
    page.write_text(
        '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="script-src '
        '\'none\'"><img src="http://127.0.0.1:9/x.png"><script>1</script>'
    )
    netlog = tmp_path / "net.json"
    run = _run_chromium(tmp_path, page.as_uri(), "--dump-dom", f"--log-net-log={netlog}")
    assert _page_requests(netlog) == ["http://127.0.0.1:9/x.png"]
    # and the console check would see a script the policy refused
    assert any("Content Security Policy" in line for line in run.console), run.console


def test_html_filter_and_sort_from_the_fragment(
    realistic_page: tuple[PostureReport, Path], tmp_path: Path
) -> None:
    report, path = realistic_page
    url = path.as_uri() + "#severity=medium&owasp=NHI4&sort=-identity"
    out, _, console = _run_chromium(tmp_path, url, "--dump-dom")
    assert console == []
    dom = parse(out)
    assert dom.one("html").attrs.get("data-ready") == "true"
    table = dom.one("table", id="findings")
    rows = table.find_all("tr", data_sev="*")
    shown = [r for r in rows if "hidden" not in r.attrs]
    want = [f for f in report.findings if f.severity == "medium" and f.owasp == "NHI4"]
    assert len(want) == 2
    assert table.attrs["data-shown"] == "2" and dom.one(id="f-shown").text() == "2"
    assert [r.attrs["data-identity"] for r in shown] == sorted(
        (f.identity for f in want), reverse=True
    )
    # sorted by identity, descending, hidden rows included
    ids = [r.attrs["data-identity"] for r in rows]
    assert ids == sorted(ids, reverse=True)
    th = table.one("th", data_sort="identity")
    assert th.attrs["aria-sort"] == "descending"


def test_html_screenshot(realistic_page: tuple[PostureReport, Path], tmp_path: Path) -> None:
    _, path = realistic_page
    png = tmp_path / "report.png"
    _, took, _ = _run_chromium(
        tmp_path, path.as_uri(), f"--screenshot={png}", "--window-size=1400,2400"
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 2400)
    # a blank page compresses to a few kB; charts, tables and text do not
    assert len(data) > 150_000, len(data)
    print(f"screenshot {len(data):,} bytes in {took:.2f} s")


@pytest.mark.slow
def test_html_prints(realistic_page: tuple[PostureReport, Path], tmp_path: Path) -> None:
    _, path = realistic_page
    pdf = tmp_path / "report.pdf"
    _run_chromium(tmp_path, path.as_uri(), f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    body = pdf.read_bytes()
    assert body.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page\b", body))
    assert pages >= 2, pages
    print(f"PDF {pages} pages, {len(body):,} B")


def test_empty_report_in_chromium(tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text(render_html(S.empty()), encoding="utf-8")
    out, _, console = _run_chromium(tmp_path, path.as_uri(), "--dump-dom")
    assert console == []
    dom = parse(out)
    assert dom.one("html").attrs.get("data-ready") == "true"
    assert not dom.find_all("table", id="findings")
    assert "No findings." in dom.one("section", id="findings-section").text()
    assert "No non-human identities." in dom.one("section", id="inventory-section").text()
    assert _bars(dom, "severity") == dict.fromkeys(SEVERITIES, 0)
    assert _bars(dom, "kind") == {}
    assert dom.one("figure", data_chart="visibility").attrs["data-score"] == "1.0"


def test_big_tables_are_paged(tmp_path: Path) -> None:
    """Big tables show PAGE rows at first (a browser takes tens of seconds to lay out
    20,000 rows); a filter counts every match and pages the matches. One browser run: the
    findings filtered from the fragment, the inventory as it opens."""
    report = S.large(nhis=250, findings=600)
    medium = [n for n, f in enumerate(report.findings) if f.severity == "medium"]
    assert len(medium) > PAGE
    path = tmp_path / "paged.html"
    path.write_text(render_html(report), encoding="utf-8")
    run = _run_chromium(tmp_path, path.as_uri() + "#severity=medium", "--dump-dom")
    assert run.console == []
    dom = parse(run.out)
    assert dom.one("html").attrs.get("data-ready") == "true"
    table = dom.one("table", id="findings")
    rows = table.find_all("tr", data_sev="*")
    assert len(rows) == 600
    visible = [n for n, r in enumerate(rows) if "hidden" not in r.attrs]
    assert visible == medium[:PAGE]  # the first page of the matches, in report order
    assert (table.attrs["data-shown"], table.attrs["data-visible"]) == (
        str(len(medium)), str(PAGE)
    )  # fmt: skip
    assert dom.one(id="f-shown").text() == f"{len(medium):,}"
    more = dom.one(id="findings-more")
    assert "hidden" not in more.attrs
    assert more.one(class_="count").text() == f"showing {PAGE} of {len(medium)}"
    inventory = dom.one("table", id="inventory")
    assert (inventory.attrs["data-shown"], inventory.attrs["data-visible"]) == ("250", str(PAGE))
    inv_rows = inventory.find_all("tr", data_identity="*")
    assert [("hidden" in r.attrs) for r in inv_rows] == [False] * PAGE + [True] * (250 - PAGE)
    assert dom.one(id="inventory-more").one(class_="count").text() == f"showing {PAGE} of 250"


@pytest.mark.slow
def test_large_report_in_chromium(tmp_path: Path) -> None:
    report = S.large()
    path = tmp_path / "large.html"
    path.write_text(render_html(report), encoding="utf-8")
    out, took, console = _run_chromium(tmp_path, path.as_uri() + "#severity=critical", "--dump-dom")
    assert console == []
    print(
        f"chromium loaded and filtered a {path.stat().st_size / 1e6:.1f} MB report in {took:.1f} s"
    )
    dom = parse(out)
    assert dom.one("html").attrs.get("data-ready") == "true"
    table = dom.one("table", id="findings")
    critical = sum(1 for f in report.findings if f.severity == "critical")
    assert table.attrs["data-total"] == "20000"
    assert table.attrs["data-shown"] == str(critical)
    assert table.attrs["data-visible"] == str(PAGE)
    visible = [r for r in table.find_all("tr", data_sev="*") if "hidden" not in r.attrs]
    assert len(visible) == PAGE and {r.attrs["data-sev"] for r in visible} == {"critical"}

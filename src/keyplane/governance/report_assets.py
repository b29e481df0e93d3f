"""The inline assets of the HTML posture report (:mod:`keyplane.governance.report_html`):
the script that filters, sorts and pages the tables, the stylesheet (screen and print),
and the Content-Security-Policy that allows that script, by its hash, and nothing else.

Kept apart from the page builder because they are text, not logic: the script is plain ES5
with no dependency, reads only ``data-`` attributes and ``textContent`` and never receives
a value from Python (so nothing in it needs escaping); editing it changes its hash, which
:data:`HTML_CONTENT_SECURITY_POLICY` follows by construction.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CSS", "HTML_CONTENT_SECURITY_POLICY", "PAGE", "SCRIPT"]

#: Rows shown at first, and added per "show more", in the big tables: a browser lays out a
#: 20,000-row table in tens of seconds, and nobody reads that many rows unfiltered.
PAGE = 200

SCRIPT = """\
(function () {
  "use strict";
  var doc = document, root = doc.documentElement, PAGE = %d;
  var num = function (n) { return n.toLocaleString("en-US"); };
  function table(tbl) {
    var body = tbl.tBodies[0], heads = tbl.tHead.rows[0].cells;
    var rows = Array.prototype.slice.call(body.rows);
    var bar = doc.getElementById(tbl.id + "-more");
    var st = {test: null, limit: PAGE, key: null, asc: true};
    function show() {
      var matching = 0, visible = 0;
      for (var i = 0; i < rows.length; i++) {
        var ok = !st.test || st.test(rows[i]);
        var on = ok && visible < st.limit;
        if (ok) { matching++; }
        if (on) { visible++; }
        rows[i].hidden = !on;
      }
      tbl.setAttribute("data-shown", String(matching));
      tbl.setAttribute("data-visible", String(visible));
      if (bar) {
        bar.hidden = visible >= matching;
        bar.querySelector(".count").textContent =
          "showing " + num(visible) + " of " + num(matching);
      }
      return matching;
    }
    function sortBy(key, asc) {
      var th = null, attr = "data-" + key;
      for (var i = 0; i < heads.length; i++) {
        var k = heads[i].getAttribute("data-sort");
        if (k === key) { th = heads[i]; }
        if (k) { heads[i].setAttribute("aria-sort", "none"); }
      }
      if (!th) { return; }
      var numeric = th.hasAttribute("data-num");
      rows.sort(function (a, b) {
        var x = a.getAttribute(attr) || "", y = b.getAttribute(attr) || "";
        var c = numeric ? (+x) - (+y) : (x < y ? -1 : (x > y ? 1 : 0));
        return asc ? c : -c;
      });
      var frag = doc.createDocumentFragment();
      rows.forEach(function (r) { frag.appendChild(r); });
      body.appendChild(frag);
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      st.key = key; st.asc = asc;
      show();
    }
    Array.prototype.forEach.call(heads, function (th) {
      var key = th.getAttribute("data-sort");
      if (!key) { return; }
      if (th.getAttribute("aria-sort") === "ascending") { st.key = key; }
      th.tabIndex = 0;
      function go() { sortBy(key, st.key === key ? !st.asc : true); }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
      });
    });
    if (bar) {
      bar.querySelector(".page").addEventListener("click", function () {
        st.limit += PAGE; show();
      });
      bar.querySelector(".all").addEventListener("click", function () {
        st.limit = Infinity; show();
      });
    }
    show();
    return {state: st, show: show, sortBy: sortBy};
  }
  var tables = {}, found = doc.querySelectorAll("table.sortable");
  for (var t = 0; t < found.length; t++) { tables[found[t].id] = table(found[t]); }
  var findings = tables.findings;
  if (findings) {
    var sev = doc.getElementById("f-sev"), owasp = doc.getElementById("f-owasp");
    var q = doc.getElementById("f-q"), shown = doc.getElementById("f-shown");
    var apply = function () {
      var s = sev.value, o = owasp.value, text = q.value.trim().toLowerCase();
      findings.state.test = (s || o || text) ? function (r) {
        var d = r.dataset;
        return (!s || d.sev === s) && (!o || d.owasp === o) &&
          (!text || d.q.indexOf(text) !== -1);
      } : null;
      findings.state.limit = PAGE;
      shown.textContent = num(findings.show());
    };
    var choose = function (select, value) {
      select.value = value;
      if (select.value !== value) { select.value = ""; }
    };
    var fromHash = function () {
      var p = {};
      location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
        var i = kv.indexOf("=");
        if (i > 0) {
          try { p[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1)); }
          catch (err) { /* a malformed fragment filters nothing */ }
        }
      });
      choose(sev, p.severity || "");
      choose(owasp, p.owasp || "");
      q.value = p.q || "";
      if (p.sort) {
        var desc = p.sort.charAt(0) === "-";
        findings.sortBy(desc ? p.sort.slice(1) : p.sort, !desc);
      }
      apply();
      return "severity" in p || "owasp" in p || "q" in p;
    };
    sev.addEventListener("change", apply);
    owasp.addEventListener("change", apply);
    q.addEventListener("input", apply);
    window.addEventListener("hashchange", function () {
      if (fromHash()) { doc.getElementById("findings-section").scrollIntoView(); }
    });
    fromHash();
  }
  root.classList.add("js");
  root.setAttribute("data-ready", "true");
})();
""".replace("%d", str(PAGE))

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()

#: The page's policy: nothing may be fetched (no default-src, no connect, no image but
#: inline ``data:``), inline styles allowed, and only this module's script by its hash.
HTML_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)

CSS = """\
:root{--fg:#1d2330;--muted:#5b6475;--line:#dde1e8;--bg:#f4f6f9;--card:#fff;--head:#eef1f6}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",
 "DejaVu Sans",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header.top{background:#1d2330;color:#fff;padding:20px 32px 18px}
header.top h1{margin:0;font-size:22px;font-weight:650;letter-spacing:.2px}
header.top .meta{color:#c5cbd6;display:flex;flex-wrap:wrap;gap:2px 26px;margin-top:6px}
header.top .meta b{color:#fff;font-weight:600}
main{max-width:1320px;margin:0 auto;padding:22px 32px 40px}
h2{font-size:18px;margin:28px 0 10px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;
 min-width:0}
.card h3{font-size:14px;margin:0 0 6px;color:var(--fg)}
.card p.note{margin:6px 0 0;color:var(--muted);font-size:12px}
figure{margin:0}
svg{display:block;max-width:100%;height:auto}
svg text{font-family:inherit;font-size:12px;fill:var(--fg)}
svg text.muted{fill:var(--muted)}
svg text.big{font-size:36px;font-weight:700}
svg a:hover rect{opacity:.8}
.kpis{display:grid;grid-template-columns:repeat(3,1fr);gap:10px}
.kpi{border:1px solid var(--line);border-radius:8px;padding:8px 10px}
.kpi .n{font-size:24px;font-weight:700;line-height:1.2}
.kpi .l{color:var(--muted);font-size:12px}
.kpi.bad .n{color:#c92a2a}
.card h4{font-size:12.5px;margin:14px 0 4px;color:var(--muted);font-weight:600}
ol.top{margin:0;padding:0;list-style:none;font-size:13px}
ol.top li{display:flex;gap:8px;align-items:baseline;padding:2px 0;
 border-bottom:1px dotted var(--line)}
ol.top li b{margin-left:auto;font-variant-numeric:tabular-nums}
ol.top a{color:inherit;text-decoration:none}
ol.top a:hover{text-decoration:underline}
.code-inline{color:var(--muted);font-size:12px}
.controls{display:flex;flex-wrap:wrap;align-items:center;gap:8px 18px;margin:0 0 10px;
 background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 12px}
.controls label{color:var(--muted)}
.controls select,.controls input{font:inherit;padding:3px 6px;margin-left:4px}
.controls .shown{margin-left:auto}
.tablewrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);
 border-radius:10px}
table{border-collapse:collapse;width:100%}
th,td{padding:6px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--head);font-size:12.5px;position:sticky;top:0;white-space:nowrap}
th[data-sort]{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:hover{background:#f8f9fc}
.mono,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",
 monospace;font-size:12.5px}
.id{overflow-wrap:anywhere}
.dn{color:var(--muted);display:block;font-size:12.5px;overflow-wrap:anywhere}
.pill{display:inline-block;padding:0 8px;border-radius:10px;font-size:11.5px;font-weight:650;
 color:#fff;white-space:nowrap}
.pill.sev{text-transform:uppercase;letter-spacing:.3px}
.code{color:var(--muted);display:block;font-size:12px}
dl.ev{margin:0;display:grid;grid-template-columns:max-content minmax(0,1fr);gap:0 8px;
 font-size:12.5px}
dl.ev dt{color:var(--muted)}
dl.ev dd{margin:0;overflow-wrap:anywhere}
html:not(.js) tr.pg{display:none}
.more{padding:8px 12px;display:flex;gap:12px;align-items:center;color:var(--muted)}
.more[hidden]{display:none}
.more button{font:inherit;padding:3px 10px;cursor:pointer}
td.fix{min-width:220px}
td.t{white-space:nowrap}
td.own{min-width:150px}
th small{font-weight:400;color:var(--muted)}
td.ev{min-width:300px}
ul.parts{margin:0;padding-left:14px}
ul.parts li{margin:0 0 2px}
td.who{min-width:170px}
td.what{min-width:200px}
details summary{cursor:pointer;color:var(--muted)}
.empty{color:var(--muted);font-style:italic;padding:10px 0}
footer{color:var(--muted);font-size:12px;margin-top:30px}
@media print{
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 body{background:#fff;font-size:11px}
 header.top{background:#fff;color:#000;border-bottom:2px solid #000;padding:0 0 8px}
 header.top .meta,header.top .meta b{color:#000}
 main{max-width:none;padding:0}
 .grid{grid-template-columns:repeat(2,1fr)}
 .card,figure,tr,.kpi{break-inside:avoid}
 h2{break-after:avoid}
 .controls label,.more button{display:none}
 .controls{border:0;padding:0}
 thead th{position:static}
 th,td{padding:3px 5px}
 td.fix,td.ev,td.who,td.what,td.own{min-width:0}
 .tablewrap{overflow:visible;border:0}
 details{display:block}
}
@page{margin:14mm}
"""

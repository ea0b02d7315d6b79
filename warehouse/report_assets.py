"""The HTML report (warehouse/report.py), its inline assets: the style sheet and the chart script, written into
the page itself (its Content-Security-Policy allows inline styles and scripts, and nothing from elsewhere)."""

CSS = """
:root { --ink: #1d2733; --muted: #5b6675; --line: #d9dee5; --card: #f5f7fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", "DejaVu Sans", Arial, sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1000px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 4px; border-top: 1px solid var(--line); padding-top: 20px; }
p.meta, p.caption, .note { color: var(--muted); margin: 4px 0 10px; }
code { font-size: 12.5px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(270px, 1fr)); gap: 10px; margin: 16px 0 8px; }
.kpi { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin: 0; }
.kpi dt { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.kpi dd { margin: 2px 0 0; font-size: 18px; font-weight: 600; }
.kpi dd small { display: block; font-size: 12px; font-weight: 400; color: var(--muted); }
.chart { margin: 8px 0 6px; min-height: 40px; }
.chart svg { display: block; width: 100%; height: auto; max-width: 920px; }
.chart svg text { font-size: 12px; fill: var(--ink); }
.chart svg .axis text, .chart svg text.note { fill: var(--muted); font-size: 11px; }
.chart .empty { color: var(--muted); font-style: italic; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 0; font-size: 12.5px; }
caption { text-align: left; color: var(--muted); padding: 4px 0; caption-side: top; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); vertical-align: bottom; }
tbody th { font-weight: 500; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td[dir="rtl"], th.ar { text-align: right; }
@media screen { .table-wrap { overflow-x: auto; } }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  section { break-inside: avoid-page; }
  .chart { break-inside: avoid; }
  table { font-size: 10px; }
}
"""

# The chart drawer: reads each chart's JSON, pivots its rows into categories x series, and draws horizontal bars
# (grouped or stacked) into SVG with an axis, a legend and a <title> tooltip on every mark. Text goes in through
# textContent only (never markup), so nothing in the data can become markup.
SCRIPT = r"""
(function () {
  "use strict";
  var probe = document.createElement("div");
  probe.innerHTML = "<svg></svg>";
  var NS = probe.firstChild.namespaceURI;   // the SVG namespace, without writing its address here
  var PALETTE = ["#0b5fa5", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7f7f7f", "#b8a21b"];
  var W = 900;

  function node(tag, attrs, parent, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) { if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]); }
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmt(v, kind) {
    if (!isNum(v)) return "not reported";
    if (kind === "pct") return (100 * v).toFixed(1) + " %";
    if (kind === "count") return Math.round(v).toLocaleString("en-US");
    var a = Math.abs(v);
    if (a >= 1e9) return "US$ " + (v / 1e9).toFixed(2) + " bn";
    if (a >= 1e6) return "US$ " + (v / 1e6).toFixed(1) + " m";
    if (a >= 1e3) return "US$ " + (v / 1e3).toFixed(0) + " k";
    return "US$ " + v.toFixed(0);
  }
  function niceStep(span, n) {
    var raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw))), r = raw / mag;
    return mag * (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10);
  }
  function tickLabel(v, step, top, kind) {
    if (kind === "pct") return Math.round(v * 100) + " %";
    if (kind === "count") return Math.round(v).toLocaleString("en-US");
    if (Math.abs(v) < step / 1e6) return "0";
    var unit = top >= 1e9 ? 1e9 : top >= 1e6 ? 1e6 : top >= 1e3 ? 1e3 : 1;
    var suffix = {1e9: " bn", 1e6: " m", 1e3: " k", 1: ""}[unit];
    var dec = Math.max(0, Math.min(2, -Math.floor(Math.log10(step / unit) + 1e-9)));
    return (v / unit).toFixed(dec) + suffix;
  }
  function clip(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "\u2026" : s; }

  function pivot(spec, rows) {
    if (spec.filter) rows = rows.filter(function (r) { return r[spec.filter]; });
    var cats = [], index = {}, series = [], seen = {};
    rows.forEach(function (r) {
      var key = String(r[spec.key]);
      if (!(key in index)) {
        index[key] = cats.length;
        cats.push({label: String(r[spec.label]), title: spec.title ? r[spec.title] : null, row: r, values: {}});
      }
      var cat = cats[index[key]];
      if (spec.series_by) {
        var s = String(r[spec.series_by]);
        if (!(s in seen)) { seen[s] = true; series.push({key: s, name: (spec.series_prefix || "") + s}); }
        cat.values[s] = r[spec.value];
      } else {
        spec.columns.forEach(function (c) { cat.values[c.key] = r[c.key]; });
      }
    });
    if (!spec.series_by) series = spec.columns.map(function (c) { return {key: c.key, name: c.name, color: c.color, note: c.note}; });
    if (spec.series_by) series.sort(function (a, b) { return a.key < b.key ? -1 : a.key > b.key ? 1 : 0; });
    series.forEach(function (s, i) {
      if (!s.color) s.color = spec.colors ? spec.colors[Math.max(0, spec.colors.length - series.length + i)] : PALETTE[i % PALETTE.length];
    });
    return {cats: cats, series: series};
  }

  function draw(container, payload) {
    var spec = payload.chart, p = pivot(spec, payload.rows), cats = p.cats, series = p.series;
    var stacked = spec.mode === "stacked" || spec.mode === "stacked100";
    cats.forEach(function (c) {   // stacked100: each category's values as shares of its sum
      if (spec.mode !== "stacked100") return;
      var sum = 0;
      series.forEach(function (s) { if (isNum(c.values[s.key])) sum += c.values[s.key]; });
      c.raw = {};
      series.forEach(function (s) { c.raw[s.key] = c.values[s.key]; c.values[s.key] = sum > 0 && isNum(c.values[s.key]) ? c.values[s.key] / sum : null; });
    });
    var lo = 0, hi = 0;
    cats.forEach(function (c) {
      var pos = 0;
      series.forEach(function (s) {
        var v = c.values[s.key];
        if (!isNum(v)) return;
        if (stacked) { pos += Math.max(0, v); } else { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      });
      if (stacked) hi = Math.max(hi, pos);
    });
    if (spec.mode === "stacked100") hi = 1;
    container.textContent = "";
    if (!cats.length || hi <= lo) {
      var empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = spec.empty || "Nothing to draw.";
      container.appendChild(empty);
      container.setAttribute("data-drawn", "0");
      return;
    }
    var L = spec.left || 230, R = spec.right || 70, BAR = stacked ? 20 : (series.length > 1 ? 13 : 18), GAP = 10;
    var groupH = (stacked ? 1 : series.length) * BAR + GAP;
    var legend = [], lx = 0, ly = 0;
    if (series.length > 1) {
      series.forEach(function (s) {
        var w = 22 + 7.2 * s.name.length + 18;
        if (lx + w > W - L && lx > 0) { lx = 0; ly += 18; }
        legend.push({s: s, x: L + lx, y: ly}); lx += w;
      });
    }
    var top = series.length > 1 ? ly + 32 : 8, plotH = cats.length * groupH, H = top + plotH + 46;
    var plotW = W - L - R;
    var step = niceStep(hi - lo, spec.mode === "stacked100" ? 5 : 6);
    lo = Math.floor(lo / step) * step; hi = Math.ceil(hi / step - 1e-9) * step;
    function x(v) { return L + (v - lo) / (hi - lo) * plotW; }
    var svg = node("svg", {viewBox: "0 0 " + W + " " + H, "aria-hidden": "true", focusable: "false"});
    legend.forEach(function (it) {
      node("rect", {x: it.x, y: it.y + 4, width: 14, height: 12, fill: it.s.color, rx: 2}, svg);
      node("text", {x: it.x + 20, y: it.y + 14}, svg, it.s.name);
    });
    var axis = node("g", {"class": "axis"}, svg);
    for (var t = lo; t <= hi + step / 2; t += step) {
      var tx = x(t);
      node("line", {x1: tx, x2: tx, y1: top - 4, y2: top + plotH, stroke: Math.abs(t) < step / 1e6 ? "#8a939f" : "#e4e8ee", "stroke-width": 1}, axis);
      node("text", {x: tx, y: top + plotH + 15, "text-anchor": "middle"}, axis, tickLabel(t, step, Math.max(Math.abs(lo), Math.abs(hi)), spec.format));
    }
    node("text", {x: L + plotW / 2, y: H - 8, "text-anchor": "middle"}, axis, spec.axis || "");
    var marks = 0;
    cats.forEach(function (c, i) {
      var gy = top + i * groupH + GAP / 2, inner = groupH - GAP;
      var lab = node("text", {x: L - 8, y: gy + inner / 2, "text-anchor": "end", "dominant-baseline": "central"}, svg, clip(c.label, spec.clip || 34));
      node("title", {}, lab, c.label + (c.title ? " \u2014 " + c.title : ""));
      var acc = 0, end = x(0);
      series.forEach(function (s, j) {
        var v = c.values[s.key];
        if (!isNum(v) || v === 0) return;
        var x0, x1, y = stacked ? gy : gy + j * BAR, h = BAR - (stacked ? 0 : 2);
        if (stacked) { x0 = x(acc); acc += v; x1 = x(acc); } else { x0 = x(Math.min(0, v)); x1 = x(Math.max(0, v)); }
        var r = node("rect", {"class": "mark", x: x0.toFixed(2), y: y, width: Math.max(1, x1 - x0).toFixed(2), height: h, fill: s.color}, svg);
        var shown = spec.mode === "stacked100" ? fmt(c.raw[s.key], "count") + " (" + fmt(v, "pct") + ")" : fmt(v, spec.format);
        node("title", {}, r, c.label + " \u00b7 " + s.name + ": " + shown);
        marks += 1;
        end = Math.max(end, x1);
        var note = s.note ? c.row[s.note] : undefined;
        if (!stacked && (spec.value_labels || isNum(note))) {
          node("text", {"class": "note", x: x1 + 4, y: y + h / 2, "dominant-baseline": "central"}, svg,
               isNum(note) ? fmt(note, "pct") : fmt(v, spec.format));
        }
      });
      if (spec.note && isNum(c.row[spec.note.key])) {
        node("text", {"class": "note", x: (stacked ? end : x(hi)) + 6, y: gy + inner / 2, "dominant-baseline": "central"}, svg,
             fmt(c.row[spec.note.key], spec.note.format) + (spec.note.suffix || ""));
      }
    });
    container.appendChild(svg);
    container.setAttribute("data-drawn", String(marks));
  }

  var charts = document.querySelectorAll("[data-chart]");
  for (var i = 0; i < charts.length; i++) {
    var el = charts[i];
    try {
      draw(el, JSON.parse(document.getElementById(el.getAttribute("data-source")).textContent));
    } catch (err) {
      el.setAttribute("data-error", String(err));
      el.textContent = "This chart could not be drawn (" + err + "); the table below has its numbers.";
    }
  }
})();
"""

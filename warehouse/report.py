"""The HTML report: one self-contained file from the published warehouse's marts (warehouse/sql/004_marts.sql).

Self-contained means no network at all: no CDN, fonts, scripts or images from elsewhere (a Content-Security-Policy
in the page forbids them). Each chart's data sits in the page as JSON (``<script type="application/json">``) and a
small inline script draws it into SVG; when a chart has drawn, its container gets ``data-drawn="<marks>"``. A table
under every chart holds the same numbers (for screen readers, for print, and without JavaScript).

The warehouse is opened read-only (``warehouse.store.read_only``), so a load running at the same time never blocks
the report, nor the report the load. SQL over the marts does the aggregation; Python only escapes and lays out.
Stages (allocated, committed, obligated, disbursed) are steps of the same money: a chart shows one stage, or the
stages side by side, never a sum of stages.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.store import read_only

STAGES = ("allocated", "committed", "obligated", "disbursed")
#: when several stages are reported by as many agencies, the one further along the money's way is shown
STAGE_PREFERENCE = ("disbursed", "committed", "obligated", "allocated")
TOP_PARTNERS, TOP_CATEGORIES, LAST_YEARS, TOP_RULES = 10, 12, 5, 10
STAGE_COLORS = {"allocated": "#9db9d9", "committed": "#0b5fa5", "obligated": "#56b4e9", "disbursed": "#009e73"}
YEAR_COLORS = ("#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")  # oldest lightest
REQUIRED_VIEWS = (
    "mart_funding_by_partner_year",
    "mart_funding_by_category",
    "mart_funding_by_agency",
    "mart_budget_execution",
    "mart_data_quality",
    "open_failures",
    "audit_load",
)


class ReportError(RuntimeError):
    """The report cannot be written; the message says why in one line (no warehouse, empty, not a dcf warehouse)."""


@dataclass(frozen=True)
class ReportInfo:
    path: Path
    load_id: str
    stage: str
    bytes: int
    charts: dict[str, int] = field(default_factory=dict)  # chart id -> rows of data embedded


def default_report_path(warehouse: Path, today: date | None = None) -> Path:
    """``reports/report-<date>.html`` beside the warehouse (data/reports/ for the default data/warehouse.duckdb)."""
    return Path(warehouse).parent / "reports" / f"report-{(today or date.today()).isoformat()}.html"


# -- queries (all aggregation in SQL, over the marts) ------------------------------------------------------------------
SQL_LAST_LOAD = """
SELECT load_id, outcome, started_at::TIMESTAMP(0) AS started_at, finished_at::TIMESTAMP(0) AS finished_at
FROM audit_load ORDER BY started_at DESC LIMIT 1
"""

SQL_ROWS = """
SELECT coalesce(sum(files_current), 0) AS files, coalesce(sum(files_failed), 0) AS files_failed,
       coalesce(sum(rows_read), 0) AS rows_read, coalesce(sum(rows_loaded), 0) AS rows_loaded,
       coalesce(sum(rows_quarantined), 0) AS rows_quarantined, coalesce(sum(rows_skipped), 0) AS rows_skipped,
       coalesce(sum(open_blocking), 0) AS open_blocking, coalesce(sum(open_warnings), 0) AS open_warnings,
       coalesce(sum(labels_waiting), 0) AS labels_waiting
FROM mart_data_quality
"""

# one row per stage reported anywhere: summing one stage over agencies and years is fine; stages stay apart
SQL_STAGES = """
SELECT stage, sum(amount_usd) AS amount_usd, sum(amount_usd_constant) AS amount_usd_constant,
       max(constant_base_year) AS constant_base_year, sum(lines) AS lines,
       count(DISTINCT agency_code) AS agencies,
       string_agg(DISTINCT agency_code, ', ' ORDER BY agency_code) AS agency_codes,
       min(fiscal_year) AS first_year, max(fiscal_year) AS last_year
FROM mart_funding_by_agency
GROUP BY stage
ORDER BY CASE stage WHEN 'allocated' THEN 1 WHEN 'committed' THEN 2 WHEN 'obligated' THEN 3 ELSE 4 END
"""

SQL_PARTNERS_COUNT = """
SELECT count(DISTINCT partner_iso3) AS partners, coalesce(sum(lines_without_constant), 0) AS lines_without_constant
FROM mart_funding_by_partner_year
"""

# The top partners (or categories) for one stage over the last fiscal years that have that stage, as a full
# grid (partner x year; 0 where the partner had no line that year, as the mart itself counts it).
SQL_TOP_BY_YEAR = """
WITH m AS (
    SELECT {key} AS key, {name} AS name, {name_ar} AS name_ar, fiscal_year,
           {stage}_usd AS usd, {stage}_usd_constant AS usd_constant, lines_without_constant
    FROM {mart}
),
years AS (
    SELECT fiscal_year FROM m GROUP BY fiscal_year HAVING sum(abs(usd)) > 0 ORDER BY fiscal_year DESC LIMIT $years
),
top AS (
    SELECT key, any_value(name) AS name, any_value(name_ar) AS name_ar,
           sum(usd_constant) AS total_usd_constant, sum(usd) AS total_usd,
           sum(lines_without_constant) AS lines_without_constant,
           row_number() OVER (ORDER BY sum(usd_constant) DESC, sum(usd) DESC, key) AS rank
    FROM m WHERE fiscal_year IN (SELECT fiscal_year FROM years)
    GROUP BY key HAVING sum(abs(usd)) > 0
    QUALIFY rank <= $top
)
SELECT t.rank, t.key, coalesce(t.name, t.key) AS name, t.name_ar, y.fiscal_year,
       coalesce(m.usd, 0) AS usd, coalesce(m.usd_constant, 0) AS usd_constant,
       t.total_usd, t.total_usd_constant, t.lines_without_constant
FROM top t CROSS JOIN years y
LEFT JOIN m USING (key, fiscal_year)
ORDER BY t.rank, y.fiscal_year
"""

# agency x fiscal year from the program-level mart: stages side by side (NULL = not reported that year), rates on
# the agency's totals (a ratio of sums, not an average of the programs' ratios)
SQL_EXECUTION = """
SELECT agency_code, any_value(agency_name) AS agency_name, fiscal_year,
       agency_code || ' FY' || fiscal_year AS label,
       sum(allocated_usd) AS allocated_usd, sum(committed_usd) AS committed_usd,
       sum(obligated_usd) AS obligated_usd, sum(disbursed_usd) AS disbursed_usd,
       sum(committed_usd) / nullif(sum(allocated_usd), 0) AS commitment_rate,
       sum(obligated_usd) / nullif(sum(allocated_usd), 0) AS obligation_rate,
       sum(disbursed_usd) / nullif(sum(allocated_usd), 0) AS disbursement_rate,
       count(*) AS programs,
       sum(allocated_usd) IS NOT NULL
         AND (sum(committed_usd) IS NOT NULL OR sum(obligated_usd) IS NOT NULL OR sum(disbursed_usd) IS NOT NULL)
         AS in_chart
FROM mart_budget_execution
GROUP BY agency_code, fiscal_year
ORDER BY agency_code, fiscal_year
"""

SQL_QUALITY = """
WITH rules AS (
    SELECT agency_code, rule, count(*) AS failures FROM open_failures GROUP BY agency_code, rule
),
top_rules AS (
    SELECT agency_code, string_agg(rule || ' (' || failures || ')', ', ' ORDER BY failures DESC, rule) AS top_rules
    FROM (SELECT * FROM rules QUALIFY row_number() OVER (PARTITION BY agency_code ORDER BY failures DESC, rule) <= 3)
    GROUP BY agency_code
)
SELECT q.agency_code, coalesce(q.agency_name, q.agency_code) AS agency_name,
       q.agency_code || coalesce(' – ' || q.agency_name, '') AS agency, q.files_current, q.files_failed,
       q.rows_read, q.rows_loaded, q.rows_quarantined, q.rows_skipped, q.quarantined_share,
       q.open_blocking, q.open_warnings, q.open_blocking + q.open_warnings AS open_failures, q.labels_waiting,
       q.last_loaded_at::TIMESTAMP(0) AS last_loaded_at,
       t.top_rules
FROM mart_data_quality q
LEFT JOIN top_rules t USING (agency_code)
ORDER BY q.agency_code
"""

SQL_RULES = """
SELECT rule, any_value(severity) AS severity, count(*) AS failures,
       count(DISTINCT (file_key, sheet, excel_row)) AS rows_affected,
       string_agg(DISTINCT agency_code, ', ' ORDER BY agency_code) AS agencies
FROM open_failures
GROUP BY rule
ORDER BY failures DESC, rule
LIMIT $top
"""


def _frame(con: duckdb.DuckDBPyConnection, sql: str, **params) -> pd.DataFrame:
    return con.execute(sql, params or None).df()


def _choose_stage(stages: pd.DataFrame, wanted: str | None) -> str:
    if wanted is not None:
        wanted = wanted.lower()
        if wanted not in STAGES:
            raise ReportError(f"unknown stage '{wanted}'; choose one of {', '.join(STAGES)}")
        if wanted not in set(stages["stage"]):
            raise ReportError(f"no agency reports the stage '{wanted}' (reported: {', '.join(stages['stage'])})")
        return wanted
    order = stages.assign(pref=stages["stage"].map({s: i for i, s in enumerate(STAGE_PREFERENCE)}))
    return str(order.sort_values(["agencies", "pref"], ascending=[False, True])["stage"].iloc[0])


def gather(con: duckdb.DuckDBPyConnection, stage: str | None = None) -> dict:
    """Everything the report shows, as DataFrames and values (raises ReportError for an empty or foreign file)."""
    present = {
        r[0]
        for r in con.execute(
            "SELECT view_name FROM duckdb_views() UNION ALL SELECT table_name FROM duckdb_tables()"
        ).fetchall()
    }
    missing = [v for v in REQUIRED_VIEWS if v not in present]
    if missing:
        raise ReportError(f"not a dcf warehouse (no {missing[0]}); point --warehouse at the published file")
    load = _frame(con, SQL_LAST_LOAD)
    if load.empty:
        raise ReportError("the warehouse is empty (no load recorded); run 'dcf run' first")
    stages = _frame(con, SQL_STAGES)
    if stages.empty:
        raise ReportError(
            f"the warehouse has no funding lines yet (last load {load['load_id'].iloc[0]}: "
            f"{load['outcome'].iloc[0]}); see 'dcf failures'"
        )
    chosen = _choose_stage(stages, stage)
    top = dict(stage=chosen)
    partners = _frame(
        con,
        SQL_TOP_BY_YEAR.format(
            key="partner_iso3",
            name="partner_name",
            name_ar="partner_name_ar",
            mart="mart_funding_by_partner_year",
            **top,
        ),
        years=LAST_YEARS,
        top=TOP_PARTNERS,
    )
    categories = _frame(
        con,
        SQL_TOP_BY_YEAR.format(
            key="category_code",
            name="category_name",
            name_ar="category_name_ar",
            mart="mart_funding_by_category",
            **top,
        ),
        years=LAST_YEARS,
        top=TOP_CATEGORIES,
    )
    from schemas.rules import RULES  # the plain-words title of each rule

    rules = _frame(con, SQL_RULES, top=TOP_RULES)
    rules["title"] = rules["rule"].map({k: r.title for k, r in RULES.items()})
    return {
        "load": load.iloc[0].to_dict(),
        "rows": _frame(con, SQL_ROWS).iloc[0].to_dict(),
        "partner_count": _frame(con, SQL_PARTNERS_COUNT).iloc[0].to_dict(),
        "stages": stages,
        "stage": chosen,
        "partners": partners,
        "categories": categories,
        "execution": _frame(con, SQL_EXECUTION),
        "quality": _frame(con, SQL_QUALITY),
        "datasets": _frame(con, SQL_DATASETS),
        "rules": rules,
    }


SQL_DATASETS = """
SELECT dataset, kind, read_from, agencies, files_current, files_failed, rows_read, rows_loaded, rows_quarantined,
       rows_skipped, open_blocking + open_warnings AS open_failures
FROM dataset_summary ORDER BY dataset
"""


# -- rendering ---------------------------------------------------------------------------------------------------------
def _esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _json_script(element_id: str, payload: dict) -> str:
    """Data for the page's script. ``<``, ``>`` and ``&`` are written as JSON escapes, so no value can end the
    script element or open a comment, whatever the data holds."""
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{_esc(element_id)}">{text}</script>'


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows for JSON: NaN/NaT -> null, numpy scalars -> Python, timestamps -> ISO text."""
    clean = frame.copy()
    for col in clean.columns:
        if pd.api.types.is_datetime64_any_dtype(clean[col]):
            clean[col] = clean[col].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return json.loads(clean.to_json(orient="records", double_precision=15, force_ascii=False))


def _usd(value: float | None, constant_year=None) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    unit = f"constant {constant_year} US$" if constant_year else "US$"
    a = abs(value)
    text = f"{value / 1e9:,.2f} bn" if a >= 1e9 else f"{value / 1e6:,.1f} m" if a >= 1e6 else f"{value:,.0f}"
    return f"{unit} {text}"


_FORMATS = {
    "usd_m": lambda s: (s.astype("float64") / 1e6).map("{:,.1f}".format),
    "int": lambda s: s.astype("float64").map("{:,.0f}".format),
    "pct": lambda s: (s.astype("float64") * 100).map("{:.1f} %".format),
    "year": lambda s: s.astype("Int64").astype("string"),
    "text": lambda s: s.astype("string"),
    "ar": lambda s: s.astype("string"),
}


def _table(frame: pd.DataFrame, columns: list[tuple[str, str, str]], caption: str, blank: str = "\u2014") -> str:
    """An HTML table; ``columns`` are (frame column, header, kind) with kind usd_m, int, pct, year, text or ar
    (Arabic: right to left). Missing values show ``blank``; every cell is escaped."""
    head = "".join(
        f'<th scope="col" class="{"num" if kind in ("usd_m", "int", "pct") else kind}">{_esc(h)}</th>'
        for _, h, kind in columns
    )
    cells: list[pd.Series] = []
    for col, _, kind in columns:
        s = frame[col]
        shown = _FORMATS[kind](s).where(s.notna(), blank).map(_esc)
        attrs = {
            "usd_m": ' class="num"',
            "int": ' class="num"',
            "pct": ' class="num"',
            "ar": ' lang="ar" dir="rtl"',
        }.get(kind, "")
        tag = 'th scope="row"' if not cells else "td"
        end = "th" if not cells else "td"
        cells.append(("<" + tag + attrs + ">") + shown + f"</{end}>")
    body = (
        "".join("<tr>" + "".join(row) + "</tr>\n" for row in zip(*cells))
        if len(frame)
        else (f'<tr><td colspan="{len(columns)}">no rows</td></tr>')
    )
    return (
        f'<div class="table-wrap"><table><caption>{_esc(caption)}</caption><thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}</tbody></table></div>"
    )


def _year_table(frame: pd.DataFrame, first: str, base_year) -> str:
    """The partner (or category) grid as a wide table: one row per partner, one column per fiscal year."""
    if frame.empty:
        return _table(frame, [("name", first, "text")], "No data for this stage.")
    wide = frame.pivot_table(
        index=["rank", "name"], columns="fiscal_year", values="usd_constant", aggfunc="sum", sort=True
    ).reset_index()
    years = [c for c in wide.columns if c not in ("rank", "name")]
    wide.columns = ["rank", "name", *[f"fy{y}" for y in years]]
    totals = frame.drop_duplicates("rank")[["rank", "name_ar", "total_usd_constant", "total_usd"]]
    wide = wide.merge(totals, on="rank").sort_values("rank")
    cols = [
        ("name", first, "text"),
        ("name_ar", "Arabic name", "ar"),
        *[(f"fy{y}", f"FY{y}", "usd_m") for y in years],
        ("total_usd_constant", "Total, constant", "usd_m"),
        ("total_usd", "Total, nominal", "usd_m"),
    ]
    return _table(wide, cols, f"Million US$ (fiscal years and total: constant {base_year} US$; last column nominal).")


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


def _chart(chart_id: str, title: str, caption: str, payload: dict, table: str, alt: str) -> str:
    return (
        f'<section id="{chart_id}">\n<h2 id="h-{chart_id}">{_esc(title)}</h2>\n<p class="caption">{_esc(caption)}</p>\n'
        f'<div class="chart" id="chart-{chart_id}" data-chart="{chart_id}" data-source="data-{chart_id}" role="img" '
        f'aria-label="{_esc(alt)}"></div>\n{_json_script("data-" + chart_id, payload)}\n{table}\n</section>\n'
    )


def render(data: dict, warehouse: Path, generated_at: datetime | None = None) -> str:
    """The report as one HTML document (str)."""
    generated_at = generated_at or datetime.now()
    load, rows, stages, stage = data["load"], data["rows"], data["stages"], data["stage"]
    by_stage = stages.set_index("stage")
    base_year = by_stage["constant_base_year"].dropna().max()
    base_year = int(base_year) if pd.notna(base_year) else None
    agencies_of_stage = by_stage.loc[stage, "agency_codes"]
    no_constant = int(data["partner_count"]["lines_without_constant"])
    constant_note = (
        f" {no_constant} line(s) have no constant-dollar amount yet (price year without CPI) and are left "
        f"out of the constant figures."
        if no_constant
        else ""
    )

    kpis = []
    for s, r in by_stage.iterrows():
        kpis.append(
            f'<div class="kpi"><dt>{_esc(s)}</dt><dd>{_esc(_usd(r["amount_usd"]))}'
            f"<small>{_esc(_usd(r['amount_usd_constant'], base_year))}; FY{int(r['first_year'])}"
            f"\u2013{int(r['last_year'])}; {_esc(r['agency_codes'])}</small></dd></div>"
        )
    kpis.append(
        f'<div class="kpi"><dt>partner countries</dt><dd>{int(data["partner_count"]["partners"])}'
        f"<small>with at least one funding line</small></dd></div>"
    )
    kpis.append(
        f'<div class="kpi"><dt>rows read</dt><dd>{int(rows["rows_read"]):,}<small>{int(rows["rows_loaded"]):,} loaded, '
        f"{int(rows['rows_quarantined']):,} quarantined, {int(rows['rows_skipped']):,} skipped; "
        f"{int(rows['files'])} current file(s)</small></dd></div>"
    )
    kpis.append(
        f'<div class="kpi"><dt>open failures</dt><dd>{int(rows["open_blocking"] + rows["open_warnings"]):,}'
        f"<small>{int(rows['open_blocking']):,} blocking, {int(rows['open_warnings']):,} warnings; "
        f"{int(rows['labels_waiting']):,} label(s) waiting for a mapping</small></dd></div>"
    )

    stage_word = stage.capitalize()
    years = sorted(data["partners"]["fiscal_year"].unique()) if len(data["partners"]) else []
    span = f"FY{years[0]}\u2013FY{years[-1]}" if len(years) > 1 else (f"FY{years[0]}" if years else "no year")
    axis_const = f"{stage_word}, constant {base_year} US$" if base_year else f"{stage_word}, constant US$"
    common = {
        "key": "key",
        "label": "name",
        "title": "name_ar",
        "series_by": "fiscal_year",
        "series_prefix": "FY",
        "value": "usd_constant",
        "mode": "grouped",
        "format": "usd",
        "axis": axis_const,
        "colors": list(YEAR_COLORS),
    }

    sections = []
    partners = data["partners"]
    sections.append(
        _chart(
            "partners",
            f"Funding by partner country and fiscal year ({stage})",
            f"{stage_word} funding of the top {TOP_PARTNERS} partner countries, {span}, in constant {base_year} US$ "
            f"(US CPI-U). Only agencies that report this stage count here: {agencies_of_stage}. Stages are steps of the "
            f"same money and are never added together; the header shows each stage's total.{constant_note}",
            {
                "stage": stage,
                "constant_base_year": base_year,
                "chart": {**common, "empty": "No partner has funding at this stage."},
                "rows": _records(partners),
            },
            _year_table(partners, "Partner", base_year),
            f"Bar chart of {stage} funding for the top partner countries by fiscal year; the table below has the numbers.",
        )
    )

    categories = data["categories"]
    sections.append(
        _chart(
            "categories",
            f"Funding by category and fiscal year ({stage})",
            f"{stage_word} funding per canonical category, {span}, constant {base_year} US$; agencies: {agencies_of_stage}.",
            {
                "stage": stage,
                "constant_base_year": base_year,
                "chart": {**common, "clip": 36, "empty": "No category has funding at this stage."},
                "rows": _records(categories),
            },
            _year_table(categories, "Category", base_year),
            f"Bar chart of {stage} funding per category and fiscal year; the table below has the numbers.",
        )
    )

    execution = data["execution"]
    reported = [s for s in STAGES if execution[f"{s}_usd"].notna().any()]
    notes = {"committed": "commitment_rate", "obligated": "obligation_rate", "disbursed": "disbursement_rate"}
    not_shown = execution.loc[~execution["in_chart"].astype(bool), "label"].tolist()
    sections.append(
        _chart(
            "execution",
            "Budget execution by agency and fiscal year",
            "Allocated, then committed, obligated and disbursed, nominal US$, side by side (not added); the percentage "
            "after a bar is that stage as a share of the allocation (execution rate). A missing bar means the agency "
            "does not report that stage that year (unknown, not zero)."
            + (f" Not drawn (no allocation or no later stage reported): {', '.join(not_shown)}." if not_shown else ""),
            {
                "chart": {
                    "key": "label",
                    "label": "label",
                    "title": "agency_name",
                    "filter": "in_chart",
                    "mode": "grouped",
                    "format": "usd",
                    "axis": "Nominal US$",
                    "right": 80,
                    "columns": [
                        {"key": f"{s}_usd", "name": s, "color": STAGE_COLORS[s], "note": notes.get(s)} for s in reported
                    ],
                    "empty": "No agency reports an allocation and a later stage for the same fiscal year.",
                },
                "rows": _records(execution),
            },
            _table(
                execution,
                [
                    ("agency_code", "Agency", "text"),
                    ("fiscal_year", "Fiscal year", "year"),
                    *[(f"{s}_usd", f"{s.capitalize()} (US$ m)", "usd_m") for s in reported],
                    *[(notes[s], f"{s.capitalize()} / allocated", "pct") for s in reported if s in notes],
                    ("programs", "Programs", "int"),
                ],
                "Nominal million US$ per agency and fiscal year. \u2014 = stage not reported that year, or no allocation "
                "to compare with.",
            ),
            "Grouped bar chart of allocated, committed and disbursed funding per agency and fiscal year, with execution "
            "rates; the table below has the numbers.",
        )
    )

    quality = data["quality"]
    sections.append(
        _chart(
            "quality",
            "Data quality per agency",
            "Every row read from an agency's current files is loaded, quarantined with a reason, or skipped (blank or "
            "totals row); the bar shows the shares, the text after it the quarantined share. The table lists the most "
            "frequent open failure rules per agency (dcf failures --agency CODE shows each one).",
            {
                "chart": {
                    "key": "agency_code",
                    "label": "agency_code",
                    "title": "agency_name",
                    "mode": "stacked100",
                    "format": "pct",
                    "axis": "Share of rows read",
                    "left": 90,
                    "right": 130,
                    "columns": [
                        {"key": "rows_loaded", "name": "loaded", "color": "#009e73"},
                        {"key": "rows_quarantined", "name": "quarantined", "color": "#d55e00"},
                        {"key": "rows_skipped", "name": "skipped", "color": "#b0b7c0"},
                    ],
                    "note": {"key": "quarantined_share", "format": "pct", "suffix": " quarantined"},
                    "empty": "No rows read yet.",
                },
                "rows": _records(quality),
            },
            _table(
                quality,
                [
                    ("agency", "Agency", "text"),
                    ("files_current", "Files", "int"),
                    ("rows_read", "Read", "int"),
                    ("rows_loaded", "Loaded", "int"),
                    ("rows_quarantined", "Quarantined", "int"),
                    ("rows_skipped", "Skipped", "int"),
                    ("quarantined_share", "Quarantined share", "pct"),
                    ("open_failures", "Open failures", "int"),
                    ("labels_waiting", "Labels waiting", "int"),
                    ("top_rules", "Top open failure rules", "text"),
                ],
                "Rows of the current file versions per agency; open failures (blocking and warnings), labels waiting "
                "for a mapping, and the most frequent open failure rules (count).",
            ),
            "Stacked bar chart of loaded, quarantined and skipped rows per agency; the table below has the numbers.",
        )
    )

    datasets = data["datasets"]
    if len(datasets):
        sections.append(
            '<section id="datasets">\n<h2 id="h-datasets">Named datasets</h2>\n'
            + _table(
                datasets,
                [
                    ("dataset", "Dataset", "text"),
                    ("kind", "Kind", "text"),
                    ("read_from", "Read from", "text"),
                    ("agencies", "Agencies", "text"),
                    ("files_current", "Files", "int"),
                    ("files_failed", "Failed files", "int"),
                    ("rows_read", "Read", "int"),
                    ("rows_loaded", "Loaded", "int"),
                    ("rows_quarantined", "Quarantined", "int"),
                    ("rows_skipped", "Skipped", "int"),
                    ("open_failures", "Open failures", "int"),
                ],
                "Registers and reference datasets (source kinds records and years_across_columns): where to read "
                "each, and how the rows of its current files fared (view dataset_summary).",
            )
            + "</section>"
        )

    rules = data["rules"]
    sections.append(
        _chart(
            "rules",
            "Top open failure rules",
            f"The {TOP_RULES} most frequent open validation failures over all agencies (one row can fail several rules).",
            {
                "chart": {
                    "key": "rule",
                    "label": "rule",
                    "title": "title",
                    "mode": "grouped",
                    "format": "count",
                    "axis": "Open failures",
                    "value_labels": True,
                    "left": 200,
                    "columns": [{"key": "failures", "name": "open failures", "color": "#d55e00"}],
                    "empty": "No open failures.",
                },
                "rows": _records(rules),
            },
            _table(
                rules,
                [
                    ("rule", "Rule", "text"),
                    ("title", "What it means", "text"),
                    ("severity", "Severity", "text"),
                    ("failures", "Failures", "int"),
                    ("rows_affected", "Rows", "int"),
                    ("agencies", "Agencies", "text"),
                ],
                "Open failures per rule.",
            ),
            "Bar chart of open failures per rule; the table below has the numbers.",
        )
    )

    finished = load["finished_at"] if pd.notna(load["finished_at"]) else load["started_at"]
    title = f"Defense-cooperation funding report, load {load['load_id']}"
    csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>Defense-cooperation funding</h1>
<p class="meta">Load <code>{_esc(load["load_id"])}</code> ({_esc(load["outcome"])}), finished {_esc(finished)}; report
generated {generated_at:%Y-%m-%d %H:%M} from <code>{_esc(Path(warehouse).name)}</code>.</p>
<dl class="kpis">
{chr(10).join(kpis)}
</dl>
<p class="note">Stages are steps of the same money (allocated, committed, obligated, disbursed; agencies report
different ones), so each is totalled on its own and never added to another. Fiscal years are the calendar year in
which the agency's fiscal period ends. Nominal US$ at the recorded exchange rates; constant US$ of {base_year or "n/a"}
through US CPI-U.</p>
<noscript><p class="note">The charts need JavaScript; the table under each chart has all its numbers.</p></noscript>
</header>
<main>
{"".join(sections)}</main>
<footer>Written by <code>dcf report</code> from the warehouse's marts (mart_funding_by_partner_year,
mart_funding_by_category, mart_budget_execution, mart_data_quality, open_failures). Self-contained: it loads nothing
from the network.</footer>
<script>{SCRIPT}</script>
</body>
</html>
"""


def _write_atomically(path: Path, text: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)


def copy_atomically(source: Path, dest: Path) -> None:
    """Replace ``dest`` with a copy of ``source`` in one rename (a reader never sees half a file)."""
    _write_atomically(dest, source.read_text(encoding="utf-8"))


def write_report(warehouse: Path, out: Path, stage: str | None = None) -> ReportInfo:
    """Read the published warehouse (read-only) and write the report to ``out``, replacing it in one rename."""
    warehouse, out = Path(warehouse), Path(out)
    if not warehouse.is_file():
        raise ReportError(f"no warehouse at {warehouse}; run 'dcf run' (or 'make demo') first")
    try:
        with read_only(warehouse) as con:
            data = gather(con, stage)
    except duckdb.Error as exc:  # not a DuckDB file, or one this DuckDB cannot read; name the file the user gave
        detail = re.sub(
            r"[^\s\"]*dcf-snapshot-[^\s\"]*?/" + re.escape(warehouse.name), str(warehouse), str(exc).splitlines()[0]
        )
        raise ReportError(f"cannot read {warehouse}: {detail}") from None
    try:
        size = _write_atomically(out, render(data, warehouse))
    except OSError as exc:
        raise ReportError(f"cannot write {out}: {exc.strerror or exc}") from None
    charts = {k: len(data[k]) for k in ("partners", "categories", "execution", "quality", "rules")}
    return ReportInfo(out.resolve(), str(data["load"]["load_id"]), data["stage"], size, charts)

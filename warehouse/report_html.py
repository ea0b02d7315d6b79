"""The HTML report (warehouse/report.py), the page: header and key figures, one section per chart (its data as
JSON and a table with the same numbers under it), the footer; the styles and the chart script are written inline
(warehouse/report_assets.py), so the file loads nothing from the network."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from warehouse.report_assets import CSS, SCRIPT
from warehouse.report_blocks import chart_section, esc, html_table, json_records, usd_text, year_table
from warehouse.report_data import STAGES, TOP_PARTNERS, TOP_RULES

STAGE_COLORS = {"allocated": "#9db9d9", "committed": "#0b5fa5", "obligated": "#56b4e9", "disbursed": "#009e73"}
YEAR_COLORS = ("#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")  # oldest lightest


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
            f'<div class="kpi"><dt>{esc(s)}</dt><dd>{esc(usd_text(r["amount_usd"]))}'
            f"<small>{esc(usd_text(r['amount_usd_constant'], base_year))}; FY{int(r['first_year'])}"
            f"\u2013{int(r['last_year'])}; {esc(r['agency_codes'])}</small></dd></div>"
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
        chart_section(
            "partners",
            f"Funding by partner country and fiscal year ({stage})",
            f"{stage_word} funding of the top {TOP_PARTNERS} partner countries, {span}, in constant {base_year} US$ "
            f"(US CPI-U). Only agencies that report this stage count here: {agencies_of_stage}. Stages are steps of the "
            f"same money and are never added together; the header shows each stage's total.{constant_note}",
            {
                "stage": stage,
                "constant_base_year": base_year,
                "chart": {**common, "empty": "No partner has funding at this stage."},
                "rows": json_records(partners),
            },
            year_table(partners, "Partner", base_year),
            f"Bar chart of {stage} funding for the top partner countries by fiscal year; the table below has the numbers.",
        )
    )

    categories = data["categories"]
    sections.append(
        chart_section(
            "categories",
            f"Funding by category and fiscal year ({stage})",
            f"{stage_word} funding per canonical category, {span}, constant {base_year} US$; agencies: {agencies_of_stage}.",
            {
                "stage": stage,
                "constant_base_year": base_year,
                "chart": {**common, "clip": 36, "empty": "No category has funding at this stage."},
                "rows": json_records(categories),
            },
            year_table(categories, "Category", base_year),
            f"Bar chart of {stage} funding per category and fiscal year; the table below has the numbers.",
        )
    )

    execution = data["execution"]
    reported = [s for s in STAGES if execution[f"{s}_usd"].notna().any()]
    notes = {"committed": "commitment_rate", "obligated": "obligation_rate", "disbursed": "disbursement_rate"}
    not_shown = execution.loc[~execution["in_chart"].astype(bool), "label"].tolist()
    sections.append(
        chart_section(
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
                "rows": json_records(execution),
            },
            html_table(
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
        chart_section(
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
                "rows": json_records(quality),
            },
            html_table(
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
            + html_table(
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
        chart_section(
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
                "rows": json_records(rules),
            },
            html_table(
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
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>Defense-cooperation funding</h1>
<p class="meta">Load <code>{esc(load["load_id"])}</code> ({esc(load["outcome"])}), finished {esc(finished)}; report
generated {generated_at:%Y-%m-%d %H:%M} from <code>{esc(Path(warehouse).name)}</code>.</p>
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

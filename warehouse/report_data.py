"""The HTML report (warehouse/report.py), its data: everything the report shows, read from the published warehouse's
marts with SQL (all aggregation in SQL; Python only escapes and lays out, warehouse/report_html.py). Stages are
steps of the same money: the queries keep them apart, never add them."""

from __future__ import annotations

import duckdb
import pandas as pd

STAGES = ("allocated", "committed", "obligated", "disbursed")
#: when several stages are reported by as many agencies, the one further along the money's way is shown
STAGE_PREFERENCE = ("disbursed", "committed", "obligated", "allocated")
TOP_PARTNERS, TOP_CATEGORIES, LAST_YEARS, TOP_RULES = 10, 12, 5, 10
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

"""The analyst layer: comments on everything, the marts reconcile with the facts, the README's queries run, and
docs/warehouse.md is what the database says."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from flows.nightly import run_nightly
from warehouse.dictionary import data_dictionary
from warehouse.dictionary import main as dictionary_main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOC = ROOT / "docs" / "warehouse.md"
MARTS = [
    "mart_funding_by_partner_year",
    "mart_funding_by_category",
    "mart_funding_by_agency",
    "mart_budget_execution",
    "mart_program_portfolio",
    "mart_yoy_change",
    "mart_data_quality",
]
STAGES = ("allocated", "committed", "obligated", "disbursed")
SQL_BLOCKS = re.findall(r"^```sql\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


@pytest.fixture(scope="module")
def warehouse(sample_warehouse) -> Path:
    return sample_warehouse  # read only (tests that load copy it first)


@pytest.fixture(scope="module")
def con(warehouse):
    connection = duckdb.connect(str(warehouse), read_only=True)
    yield connection
    connection.close()


def one(con, sql: str, params=None):
    return con.execute(sql, params or []).fetchone()[0]


# -- comments ---------------------------------------------------------------------------------------------------------
def test_every_table_and_view_has_a_comment(con):
    missing = con.execute(
        """
        SELECT table_name FROM duckdb_tables() WHERE NOT internal AND NOT temporary AND coalesce(trim(comment), '') = ''
        UNION ALL
        SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary AND coalesce(trim(comment), '') = ''
        """
    ).fetchall()
    assert missing == []
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT internal").fetchall()}
    assert {"fact_funding_line", "dim_program", "audit_source_file", "warehouse_meta"} <= tables


def test_every_column_of_every_table_and_mart_has_a_comment(con):
    missing = con.execute(
        """
        SELECT c.table_name || '.' || c.column_name
        FROM duckdb_columns() c
        LEFT JOIN duckdb_tables() t ON t.table_oid = c.table_oid
        WHERE NOT c.internal AND (t.table_oid IS NOT NULL OR starts_with(c.table_name, 'mart_'))
          AND coalesce(trim(c.comment), '') = ''
        ORDER BY 1
        """
    ).fetchall()
    assert missing == []
    commented = one(
        con, "SELECT count(*) FROM duckdb_columns() c JOIN duckdb_tables() t USING (table_oid) WHERE c.comment <> ''"
    )
    assert commented > 150


def test_money_columns_name_their_unit(con):
    rows = con.execute(
        """
        SELECT table_name, column_name, comment FROM duckdb_columns()
        WHERE NOT internal AND (column_name LIKE '%usd%' OR column_name IN ('amount_original', 'fx_rate', 'units_per_usd'))
        """
    ).fetchall()
    assert rows
    for table, column, comment in rows:
        assert re.search(r"US\$|US dollars|units of `currency`|ratio|percentage", comment or ""), (
            table,
            column,
            comment,
        )


def test_comments_survive_the_next_load(warehouse, sample_inbox, tmp_path):
    """Every load re-creates the views (002, 004) on a staging copy; the comments must be set again, not lost."""
    inbox, _ = sample_inbox
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, copy)
    assert run_nightly(inbox=str(inbox), warehouse=str(copy)).outcome == "nothing_new"
    with duckdb.connect(str(copy), read_only=True) as again, duckdb.connect(str(warehouse), read_only=True) as first:
        assert data_dictionary(again) == data_dictionary(first)


# -- the marts --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mart", MARTS)
def test_each_mart_returns_rows(con, mart):
    assert one(con, f"SELECT count(*) FROM {mart}") > 0


def test_partner_year_reconciles_with_the_facts(con):
    for stage in STAGES:
        mart = one(con, f"SELECT coalesce(sum({stage}_usd), 0) FROM mart_funding_by_partner_year")
        facts = one(con, "SELECT coalesce(sum(amount_usd), 0) FROM fact_funding_line WHERE stage = ?", [stage])
        assert mart == pytest.approx(facts, rel=1e-9, abs=1e-6), stage
    total = one(
        con,
        "SELECT sum(coalesce(allocated_usd, 0) + coalesce(committed_usd, 0) + coalesce(obligated_usd, 0) + coalesce(disbursed_usd, 0)) FROM mart_funding_by_partner_year",
    )
    assert total == pytest.approx(one(con, "SELECT sum(amount_usd) FROM fact_funding_line"), rel=1e-9)
    constant = one(
        con,
        "SELECT sum(coalesce(allocated_usd_constant, 0) + coalesce(committed_usd_constant, 0)"
        " + coalesce(obligated_usd_constant, 0) + coalesce(disbursed_usd_constant, 0)) FROM mart_funding_by_partner_year",
    )
    assert constant == pytest.approx(one(con, "SELECT sum(amount_usd_constant) FROM fact_funding_line"), rel=1e-9)
    assert one(con, "SELECT sum(lines) FROM mart_funding_by_partner_year") == one(
        con, "SELECT count(*) FROM fact_funding_line"
    )
    # one row per partner and fiscal year; every partner known with its region and OIC membership
    assert one(con, "SELECT count(*) FROM mart_funding_by_partner_year") == one(
        con, "SELECT count(DISTINCT (country_iso3, fiscal_year)) FROM fact_funding_line"
    )
    assert (
        one(con, "SELECT count(*) FROM mart_funding_by_partner_year WHERE partner_name IS NULL OR oic_member IS NULL")
        == 0
    )
    per_partner = con.execute(
        "SELECT country_iso3, fiscal_year, count(DISTINCT agency_code) FROM fact_funding_line GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert (
        con.execute(
            "SELECT partner_iso3, fiscal_year, agencies FROM mart_funding_by_partner_year ORDER BY ALL"
        ).fetchall()
        == per_partner
    )


@pytest.mark.parametrize(
    "mart, key", [("mart_funding_by_partner_year", "partner_iso3"), ("mart_funding_by_category", "category_code")]
)
def test_a_stage_nobody_reported_is_null_and_zero_only_when_reported(con, mart, key):
    """NULL where no line of that stage exists for the row's group; a number (0 included) only where lines do."""
    fact_key = "country_iso3" if key == "partner_iso3" else key
    for stage in STAGES:
        wrong = one(
            con,
            f"""
            WITH reported AS (SELECT DISTINCT {fact_key} AS k, fiscal_year FROM fact_funding_line WHERE stage = ?)
            SELECT count(*) FROM {mart} m LEFT JOIN reported r ON r.k = m.{key} AND r.fiscal_year = m.fiscal_year
            WHERE (r.k IS NULL) <> (m.{stage}_usd IS NULL)
            """,
            [stage],
        )
        assert wrong == 0, stage
    assert one(con, f"SELECT count(*) FROM {mart} WHERE committed_usd IS NULL") > 0  # the case exists in the samples


def test_category_reconciles_with_the_facts(con):
    for stage in STAGES:
        mart = one(con, f"SELECT coalesce(sum({stage}_usd), 0) FROM mart_funding_by_category")
        facts = one(con, "SELECT coalesce(sum(amount_usd), 0) FROM fact_funding_line WHERE stage = ?", [stage])
        assert mart == pytest.approx(facts, rel=1e-9, abs=1e-6), stage
    assert one(con, "SELECT sum(lines) FROM mart_funding_by_category") == one(
        con, "SELECT count(*) FROM fact_funding_line"
    )
    assert one(con, "SELECT count(*) FROM mart_funding_by_category WHERE category_name IS NULL") == 0
    dac = dict(con.execute("SELECT DISTINCT category_code, dac_code FROM mart_funding_by_category").fetchall())
    assert dac == dict(
        con.execute(
            "SELECT category_code, dac_code FROM dim_category WHERE category_code IN "
            "(SELECT category_code FROM fact_funding_line)"
        ).fetchall()
    )


def test_agency_reconciles_with_the_facts(con):
    facts = con.execute(
        "SELECT agency_code, fiscal_year, stage, count(*), round(sum(amount_usd), 2) FROM fact_funding_line GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    mart = con.execute(
        "SELECT agency_code, fiscal_year, stage, lines, round(amount_usd, 2) FROM mart_funding_by_agency ORDER BY ALL"
    ).fetchall()
    assert mart == facts
    assert (
        one(con, "SELECT count(*) FROM mart_funding_by_agency WHERE period_start IS NULL OR agency_name IS NULL") == 0
    )


def test_budget_execution_reconciles_with_the_facts(con):
    for stage in STAGES:
        mart = one(con, f"SELECT coalesce(sum({stage}_usd), 0) FROM mart_budget_execution")
        facts = one(con, "SELECT coalesce(sum(amount_usd), 0) FROM fact_funding_line WHERE stage = ?", [stage])
        assert mart == pytest.approx(facts, rel=1e-9, abs=1e-6), stage
    assert one(con, "SELECT count(*) FROM mart_budget_execution") == one(
        con, "SELECT count(DISTINCT (agency_code, program_code, fiscal_year)) FROM fact_funding_line"
    )
    # rates: committed / allocated, NULL without a positive allocation
    bad = one(
        con,
        """
        SELECT count(*) FROM mart_budget_execution
        WHERE (allocated_usd > 0 AND committed_usd IS NOT NULL AND abs(commitment_rate - committed_usd / allocated_usd) > 1e-12)
           OR (allocated_usd > 0 AND disbursed_usd IS NOT NULL AND abs(disbursement_rate - disbursed_usd / allocated_usd) > 1e-12)
           OR (coalesce(allocated_usd, 0) = 0 AND (commitment_rate IS NOT NULL OR disbursement_rate IS NOT NULL))
    """,
    )
    assert bad == 0
    assert one(con, "SELECT count(*) FROM mart_budget_execution WHERE commitment_rate IS NOT NULL") > 0
    assert one(con, "SELECT count(*) FROM mart_budget_execution WHERE disbursement_rate IS NOT NULL") > 0
    # a stage the agency never reports (MOD only allocates) is unknown, not 0
    assert (
        one(con, "SELECT count(*) FROM mart_budget_execution WHERE agency_code = 'MOD' AND committed_usd IS NOT NULL")
        == 0
    )


def test_program_portfolio_has_the_latest_record_of_each_program(con):
    assert one(con, "SELECT count(*) FROM mart_program_portfolio") == one(
        con, "SELECT count(DISTINCT (agency_code, program_code)) FROM dim_program"
    )
    assert one(con, "SELECT count(*) - count(DISTINCT (agency_code, program_code)) FROM mart_program_portfolio") == 0
    lifetime = one(
        con,
        """
        SELECT sum(coalesce(lifetime_allocated_usd, 0) + coalesce(lifetime_committed_usd, 0)
                   + coalesce(lifetime_obligated_usd, 0) + coalesce(lifetime_disbursed_usd, 0))
        FROM mart_program_portfolio""",
    )
    facts = one(
        con,
        """
        SELECT sum(amount_usd) FROM fact_funding_line f
        SEMI JOIN dim_program p ON p.agency_code = f.agency_code AND p.program_code = f.program_code""",
    )
    assert lifetime == pytest.approx(facts, rel=1e-9)
    wrong_flag = one(
        con,
        """
        SELECT count(*) FROM mart_program_portfolio
        WHERE is_active <> (coalesce(start_date <= current_date AND current_date <= end_date, false) OR status = 'active')""",
    )
    assert wrong_flag == 0
    assert one(con, "SELECT count(*) FROM mart_program_portfolio WHERE len(partner_names) <> partners") == 0


def test_yoy_change_compares_with_the_previous_fiscal_year(con):
    assert one(con, "SELECT sum(amount_usd) FROM mart_yoy_change") == pytest.approx(
        one(con, "SELECT sum(amount_usd) FROM fact_funding_line"), rel=1e-9
    )
    assert one(con, "SELECT sum(lines) FROM mart_yoy_change") == one(con, "SELECT count(*) FROM fact_funding_line")
    # the agency's first reported year has no previous year, so no change
    first_years = one(
        con,
        """
        SELECT count(*) FROM mart_yoy_change y
        WHERE fiscal_year = (SELECT min(fiscal_year) FROM fact_funding_line f WHERE f.agency_code = y.agency_code AND f.stage = y.stage)
          AND (prev_amount_usd IS NOT NULL OR change_usd IS NOT NULL OR change_pct IS NOT NULL)""",
    )
    assert first_years == 0
    mismatched = one(
        con,
        """
        SELECT count(*) FROM mart_yoy_change cur
        JOIN mart_yoy_change prev USING (agency_code, partner_iso3, stage)
        WHERE prev.fiscal_year = cur.fiscal_year - 1
          AND (abs(cur.prev_amount_usd - prev.amount_usd) > 1e-6
               OR abs(cur.change_usd - (cur.amount_usd - prev.amount_usd)) > 1e-6
               OR (prev.amount_usd <> 0 AND abs(cur.change_pct - 100 * (cur.amount_usd - prev.amount_usd) / prev.amount_usd) > 1e-9))""",
    )
    assert mismatched == 0
    assert one(con, "SELECT count(*) FROM mart_yoy_change WHERE change_pct IS NOT NULL") > 0


def test_data_quality_reconciles_with_the_audit(con):
    assert one(con, "SELECT sum(rows_read) FROM mart_data_quality") == one(
        con, "SELECT sum(rows_read) FROM audit_source_file WHERE is_current"
    )
    assert one(con, "SELECT sum(files_current) FROM mart_data_quality") == one(
        con, "SELECT count(*) FROM audit_source_file WHERE is_current"
    )
    assert (
        one(
            con,
            "SELECT count(*) FROM mart_data_quality WHERE rows_read <> rows_loaded + rows_quarantined + rows_skipped",
        )
        == 0
    )
    assert one(con, "SELECT sum(open_blocking) FROM mart_data_quality") == one(
        con, "SELECT count(*) FROM audit_validation_failure WHERE status = 'open' AND severity = 'block'"
    )
    assert one(con, "SELECT count(*) FROM mart_data_quality") == one(con, "SELECT count(*) FROM dim_agency")
    share = con.execute("SELECT rows_quarantined, rows_read, quarantined_share FROM mart_data_quality").fetchall()
    assert all(s == pytest.approx(q / r) for q, r, s in share)
    assert one(con, "SELECT count(*) FROM mart_data_quality WHERE last_loaded_at IS NULL") == 0


# -- README and docs --------------------------------------------------------------------------------------------------
def test_readme_has_example_queries():
    assert len(SQL_BLOCKS) >= 5
    assert any("mart_" in block for block in SQL_BLOCKS)


@pytest.mark.parametrize("sql", SQL_BLOCKS, ids=[f"block{i + 1}" for i in range(len(SQL_BLOCKS))])
def test_readme_sql_runs_and_returns_rows(con, sql):
    rows = con.execute(sql).fetchall()
    assert len(rows) >= 1, sql


def test_docs_warehouse_md_is_up_to_date(con):
    expected = data_dictionary(con)
    assert DOC.read_text(encoding="utf-8") == expected, (
        "docs/warehouse.md is stale; regenerate it: python -m warehouse.dictionary WAREHOUSE.duckdb --out docs/warehouse.md"
    )


def test_dictionary_cli_writes_the_file(warehouse, con, tmp_path):
    out = tmp_path / "dict.md"
    assert dictionary_main([str(warehouse), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text == data_dictionary(con)
    assert text.index("## Tables") < text.index("## Views")
    for mart in MARTS:
        assert f"### {mart}" in text

"""Reference data (the synthetic SIPRI-layout workbook) through the nightly flow into a temporary DuckDB: it lands
beside the agencies' data, the partner mart uses it, a steward's fix replaces only its rows, and a second file
claiming an edition already loaded is refused without harming anything else."""

from __future__ import annotations

import shutil

import duckdb
import openpyxl
import pytest

from flows.nightly import run_nightly


def q(wh, sql, params=None):
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture
def loaded(inbox_copy, tmp_path):
    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    summary = run_nightly(inbox=str(inbox), warehouse=str(wh))
    assert summary.outcome == "success"
    entry = next(
        f for f in manifest["files"] if f["kind"] == "years_across_columns" and f["bad_rows"]
    )  # newest edition
    return inbox, wh, entry


def test_reference_file_lands_and_feeds_the_partner_mart(loaded):
    inbox, wh, entry = loaded
    key = "SIPRI/" + entry["path"].split("/", 1)[1]
    assert q(wh, "SELECT rows_read, rows_loaded, reconciles FROM file_reconciliation WHERE file_key = ?", [key]) == [
        (entry["data_rows"], entry["lines"], True)
    ]
    assert q(wh, "SELECT edition, price_base_year FROM ref_series_latest_edition") == [("2008-2025", 2024)]
    assert q(wh, "SELECT edition FROM ref_series_edition ORDER BY edition") == [("2008-2024",), ("2008-2025",)]
    # the older edition's last four years were preliminary: revised in the newer one, nothing earlier changed
    assert q(
        wh,
        "SELECT min(year), max(year), min(previous_edition), min(edition) FROM ref_series_revisions "
        "WHERE measure = 'milex_current_usd' AND status = 'value' AND previous_status = 'value'",
    ) == [(2021, 2024, "2008-2024", "2008-2025")]
    rows = q(
        wh,
        """SELECT partner_iso3, fiscal_year, disbursed_usd, milex_current_usd, disbursed_share_of_milex
                    FROM mart_partner_funding_vs_milex WHERE milex_current_usd IS NOT NULL""",
    )
    assert len(rows) >= 5
    for iso, year, disbursed, milex, share in rows:
        assert share == pytest.approx(disbursed / milex)
        assert q(
            wh,
            "SELECT value_base FROM ref_series_value WHERE country_iso3 = ? AND year = ? AND measure = 'milex_current_usd' "
            "AND edition = '2008-2025'",
            [iso, year],
        ) == [(milex,)]
    # a partner SIPRI has no figure for that year: NULL, and its status says why
    assert q(
        wh,
        "SELECT DISTINCT milex_status FROM mart_partner_funding_vs_milex WHERE partner_iso3 = 'KWT' AND fiscal_year = 2025",
    ) == [("missing",)]


def test_a_fixed_cell_replaces_only_that_files_rows(loaded):
    inbox, wh, entry = loaded
    path = inbox / entry["path"]
    bad = entry["bad_rows"][0]
    facts_before = q(
        wh,
        "SELECT md5(string_agg(CAST(f AS VARCHAR), '|' ORDER BY file_key, excel_row, stage)) FROM fact_funding_line f",
    )
    assert q(wh, "SELECT count(*) FROM open_failures WHERE rule = 'value_not_number'") == [(1,)]
    wb = openpyxl.load_workbook(path)
    ws = wb[bad["sheet"]]
    cell = next(c for c in ws[bad["excel_row"]] if c.value == "n/a")
    cell.value = 1234.5
    wb.save(path)
    summary = run_nightly(inbox=str(inbox), warehouse=str(wh))
    assert summary.totals["files_processed"] == 1 and summary.outcome == "success"
    assert q(wh, "SELECT count(*) FROM open_failures WHERE rule = 'value_not_number'") == [(0,)]
    assert q(
        wh,
        "SELECT status, value FROM ref_series_value WHERE sheet = ? AND excel_row = ? AND year = ? AND edition = '2008-2025'",
        [bad["sheet"], bad["excel_row"], bad["year"]],
    ) == [("value", 1234.5)]
    assert (
        q(
            wh,
            "SELECT md5(string_agg(CAST(f AS VARCHAR), '|' ORDER BY file_key, excel_row, stage)) FROM fact_funding_line f",
        )
        == facts_before
    )
    assert q(wh, "SELECT bool_and(reconciles) FROM file_reconciliation") == [(True,)]


def test_a_second_file_for_a_loaded_edition_is_refused(loaded):
    inbox, wh, entry = loaded
    path = inbox / entry["path"]
    values_before = q(wh, "SELECT count(*), sum(value) FROM ref_series_value")
    copy = path.with_name(path.stem + " (1)" + path.suffix)  # a second download of the same edition
    shutil.copyfile(path, copy)
    summary = run_nightly(inbox=str(inbox), warehouse=str(wh))
    assert summary.outcome == "partial" and summary.exit_code == 4
    failed = [f for f in summary.files if f["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["file"] == f"SIPRI/{copy.name}"
    assert "edition 2008-2025 of sipri_milex is already loaded from SIPRI/" in failed[0]["message"]
    assert "could not be stored" not in failed[0]["message"]  # a data problem, said as one
    rules = q(wh, f"SELECT rule FROM audit_validation_failure WHERE file_key = 'SIPRI/{copy.name}' AND status = 'open'")
    assert rules == [("edition_duplicate",)]
    assert q(wh, "SELECT count(*), sum(value) FROM ref_series_value") == values_before
    assert q(wh, "SELECT bool_and(reconciles) FROM file_reconciliation") == [(True,)]

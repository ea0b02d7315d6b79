"""A file whose last load failed is processed again on the next run even when its bytes did not change: discovery
counts a file as unchanged only if its current version was loaded. (A failure's cause may lie outside the file: a
limit the operator then raises, as the message tells them to, or a share that was down.)"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flows.nightly import run_nightly

pytestmark = pytest.mark.slow


def query(wh: Path, sql: str, params=None) -> pd.DataFrame:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql, params or []).df()


def file_row(summary, key: str) -> dict:
    return next(f for f in summary.files if f["file"] == key)


def test_a_file_over_a_limit_loads_on_the_next_run_once_the_limit_is_raised(inbox_copy, tmp_path, monkeypatch):
    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    # GAMI's two budgets in one CSV (456 records below the header), repeated until it holds more records than any
    # sample file (the register's are the most): over the limit set to that largest sample file
    limit = max(f["data_rows"] for f in manifest["files"])
    header, first = (inbox / "gami" / "GAMI_budget_2024.csv").read_bytes().rstrip(b"\n").split(b"\n", 1)
    second = (inbox / "gami" / "GAMI_budget_2025.csv").read_bytes().rstrip(b"\n").split(b"\n", 1)[1]
    copies = limit // 456 + 1
    records = 456 * copies
    big = inbox / "gami" / "GAMI_budget_2026.csv"
    big.write_bytes(header + b"\n" + b"\n".join([first, second] * copies) + b"\n")
    key = "GAMI/GAMI_budget_2026.csv"

    monkeypatch.setenv("DCF_MAX_ROWS", str(limit))
    night1 = run_nightly(inbox=str(inbox), warehouse=str(wh))
    row = file_row(night1, key)
    assert row["status"] == "failed" and "DCF_MAX_ROWS" in row["message"], row
    assert night1.totals["files_failed"] == 1 and night1.outcome == "partial"

    monkeypatch.delenv("DCF_MAX_ROWS")  # the operator raises the limit and re-runs; the file is byte for byte the same
    night2 = run_nightly(inbox=str(inbox), warehouse=str(wh))
    row = file_row(night2, key)
    assert row["status"] == "loaded", row
    assert row["rows_read"] == records == row["rows_loaded"] + row["rows_quarantined"] + row["rows_skipped"]
    assert night2.totals["files_processed"] == 1 and night2.totals["files_unchanged"] == len(manifest["files"])
    assert night2.outcome == "success"
    stored = query(wh, "SELECT status, rows_read FROM audit_source_file WHERE file_key = ? AND is_current", [key])
    assert stored.to_dict("records") == [{"status": "loaded", "rows_read": records}]

    night3 = run_nightly(inbox=str(inbox), warehouse=str(wh))  # loaded now: unchanged from here on
    assert night3.outcome == "nothing_new" and file_row(night3, key)["status"] == "unchanged"


def test_a_file_that_still_fails_is_tried_every_night_and_reported_failed(inbox_copy, tmp_path):
    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    key = "MOD/MOD_budget_FY2026.xlsx"
    (inbox / "mod" / "MOD_budget_FY2026.xlsx").write_bytes(b"PK\x03\x04 this zip is cut short")
    night1 = run_nightly(inbox=str(inbox), warehouse=str(wh))
    night2 = run_nightly(inbox=str(inbox), warehouse=str(wh))
    for night in (night1, night2):
        assert file_row(night, key)["status"] == "failed"
        assert night.outcome == "partial" and night.exit_code == 4 and night.totals["files_failed"] == 1
    assert night2.totals["files_processed"] == 1 and night2.totals["files_unchanged"] == len(manifest["files"])
    audit = query(wh, "SELECT status, load_id FROM audit_source_file WHERE file_key = ? AND is_current", [key])
    # failing again the same way changes nothing: night 2 published nothing, night 1's record stands
    assert audit["status"].tolist() == ["failed"] and audit["load_id"].tolist() == [night1.load_id]
    open_failures = query(
        wh, "SELECT rule FROM audit_validation_failure WHERE file_key = ? AND status = 'open'", [key]
    )["rule"].tolist()
    assert open_failures == ["file_unreadable"]

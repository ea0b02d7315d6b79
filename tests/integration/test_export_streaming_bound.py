"""The steward export's memory does not grow with a file's failures (issue 17, point 8): the failures are read from
ordered cursors and written row by row, so the Python heap's peak while exporting a file with 20,000 failures is
about that of a file with 2,000 (tracemalloc counts every Python allocation, whatever the machine's speed; DuckDB's
own share is held by its memory limit). And when a file has more failures than the Issues sheet lists, the sheet
says how many more there are and how to see them."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import openpyxl
import pytest

from tests.integration.test_hostile_export import _csv, _warehouse
from warehouse import export_sheets
from warehouse.export import ISSUE_COLUMNS, export_failures, workbook_name
from warehouse.export_query import MEMORY_LIMIT

COL = {name: i for i, name in enumerate(ISSUE_COLUMNS)}


def _peak_mb(wh: Path, out: Path, file_contains: str) -> float:
    tracemalloc.start()
    try:
        written = export_failures(wh, out, file_contains=file_contains)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(written) == 1 and not written.problems, written.problems
    return peak / 2**20


@pytest.mark.slow
def test_the_export_heap_does_not_grow_with_the_failures(tmp_path, reference, sources, monkeypatch):
    """The comments of the Data sheet are held until the workbook is saved: at most MAX_COMMENTS of them (10,000,
    some 25 MB), a bound of their own; here 1,000, so that both files reach it and what is left is what the failures
    cost. The in-memory export this replaces held ~2.7 KB a failure (~2.8 GB for a full sheet)."""
    monkeypatch.setattr(export_sheets, "MAX_COMMENTS", 1_000)
    small = _csv(tmp_path / "GAMI_budget_2023.csv", 2_000)
    large = _csv(tmp_path / "GAMI_budget_2024.csv", 20_000)
    wh = _warehouse(tmp_path, [small, large], reference, sources)
    peaks = {n: _peak_mb(wh, tmp_path / f"out{n}", f.name) for n, f in ((2_000, small), (20_000, large))}
    print({n: round(p, 1) for n, p in peaks.items()})
    assert peaks[20_000] < 25, f"{peaks[20_000]:.1f} MB of Python heap to export 20,000 failures"
    assert peaks[20_000] < 1.5 * peaks[2_000] + 2, f"{peaks}: the heap grows with the failures"
    assert MEMORY_LIMIT == "256MB"  # DuckDB's share: the sorts spill to a temporary folder beyond it
    # and it is the whole workbook all the same: every failure listed, the last row filled, formulas kept as text
    wb = openpyxl.load_workbook(tmp_path / "out20000" / workbook_name("GAMI", f"GAMI/{large.name}"), read_only=True)
    [listed] = wb["Issues"].iter_rows(min_row=20_001, max_row=20_001, values_only=True)
    assert listed[COL["Rule"]] == "country_unknown"
    last = next(wb["Data"].iter_rows(min_row=20_001, max_row=20_001))
    assert last[0].value == "GAMI-P019999" and last[1].value == "=Project 19999" and last[1].data_type == "s"
    assert last[2].fill.start_color.rgb == "FFFFC7CE"


def _sort_key(row: tuple) -> tuple:
    """The order of the Issues sheet, as the in-memory export sorted it (warehouse/export_query.py _ORDER)."""
    return (
        row[COL["Row"]] is not None,
        row[COL["Record key"]] or "",
        row[COL["Period"]] or "",
        row[COL["Message"]] or "",
        row[COL["Field"]] or "",
        row[COL["Value"]] or "",
        row[COL["Row"]] or 0,
        row[COL["Cell"]] or "",
    )


def test_the_issues_sheet_says_how_many_failures_it_leaves_out(tmp_path, reference, sources, monkeypatch):
    monkeypatch.setattr(export_sheets, "MAX_ISSUES", 50)
    monkeypatch.setattr(export_sheets, "MAX_COMMENTS", 30)
    path = _csv(tmp_path / "GAMI_budget_2024.csv", 120)
    wh = _warehouse(tmp_path, [path], reference, sources)
    [out] = export_failures(wh, tmp_path / "out")
    wb = openpyxl.load_workbook(out)
    issues = wb["Issues"]
    rows = list(issues.iter_rows(values_only=True))
    table = rows[1:51]
    assert all(r[COL["Rule"]] == "country_unknown" for r in table) and rows[51] == (None,) * len(rows[51])
    assert table == sorted(table, key=_sort_key)  # the SQL order is the in-memory export's
    assert issues.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(ISSUE_COLUMNS))}51"
    notes = [r[0] for r in rows[52:]]
    assert notes[0] == (
        "Note: 70 more failure(s) of this file are not listed: this table stops at 50 (a worksheet holds at most "
        "1,048,576 rows). See every one with: dcf failures --file 'GAMI/GAMI_budget_2024.csv' --status open "
        "--limit 120"
    )
    assert any("the other 90 are filled without one. This table lists the first 50 failures." in n for n in notes)
    data = wb.worksheets[1]
    assert data["C121"].fill.start_color.rgb == "FFFFC7CE"  # the Data sheet marks every failure all the same
    assert data["B121"].value == "=Project 119" and data["B121"].data_type == "s"
    assert sum(1 for row in data.iter_rows() for c in row if c.comment is not None) == 30

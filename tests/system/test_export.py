"""Steward workbooks (warehouse/export.py) from a real nightly run over the sample inbox."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import zipfile
from functools import cache
from pathlib import Path

import duckdb
import openpyxl
import pytest

from flows.extract import normalize_header
from flows.nightly import run_nightly
from schemas.rules import FIXES
from warehouse.export import ISSUE_COLUMNS, export_failures, workbook_name
from warehouse.export_sheets import FILLS, ROW_FILLS

pytestmark = pytest.mark.slow

HYPERLINK = '=HYPERLINK("http://x")'
COL = {name: i for i, name in enumerate(ISSUE_COLUMNS)}
FORMULA_TAG = re.compile(r"<(?:\w+:)?f[\s>/]")


def failures_of(wh: Path, file_key: str | None = None, status: str = "open") -> list[dict]:
    with duckdb.connect(str(wh), read_only=True) as con:
        cur = con.execute(
            "SELECT * FROM audit_validation_failure WHERE status = ? AND (? IS NULL OR file_key = ?) ORDER BY file_key",
            [status, file_key, file_key],
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def current_file(wh: Path, file_key: str) -> dict:
    with duckdb.connect(str(wh), read_only=True) as con:
        cur = con.execute("SELECT * FROM audit_source_file WHERE is_current AND file_key = ?", [file_key])
        return dict(zip([d[0] for d in cur.description], cur.fetchone()))


@cache
def book(path: Path, data_only: bool = False) -> openpyxl.Workbook:
    """A workbook loaded once per test session (the tests only read it)."""
    return openpyxl.load_workbook(path, data_only=data_only)


def data_sheet(wb: openpyxl.Workbook):
    """The copy of the source rows: the sheet that is not 'Issues' (it carries the source sheet's name)."""
    return next(ws for ws in wb.worksheets if ws.title != "Issues")


def issue_rows(path: Path) -> list[tuple]:
    """The Issues table (header excluded), up to the first row without a rule (notes follow a blank row)."""
    ws = book(path)["Issues"]
    rows = []
    for row in ws.iter_rows(min_row=2, values_only=True):
        if row[COL["Rule"]] is None:
            break
        rows.append(row)
    return rows


def sheet_xml_has_formula(path: Path) -> bool:
    with zipfile.ZipFile(path) as zf:
        return any(
            FORMULA_TAG.search(zf.read(n).decode("utf-8"))
            for n in zf.namelist()
            if n.startswith("xl/worksheets/") and n.endswith(".xml")
        )


@pytest.fixture(scope="module")
def exported(sample_inbox, tmp_path_factory):
    """The sample inbox (copied) through the nightly flow, then every open failure exported."""
    inbox, _ = sample_inbox
    base = tmp_path_factory.mktemp("export")
    shutil.copytree(inbox, base / "inbox")
    wh = base / "wh.duckdb"
    summary = run_nightly(inbox=str(base / "inbox"), warehouse=str(wh))
    assert summary.exit_code == 0
    paths = export_failures(wh, base / "out")
    return wh, paths


def test_one_workbook_per_file_with_open_failures(exported):
    wh, paths = exported
    failures = failures_of(wh)
    assert failures, "the sample inbox is meant to have failures"
    expected = {workbook_name(f["agency_code"], f["file_key"]) for f in failures}
    assert sorted(p.name for p in paths) == sorted(expected)
    assert paths == sorted(paths) and all(p.is_file() for p in paths)


def test_failing_cells_are_filled_and_commented_and_issues_sheet_is_complete(exported):
    wh, paths = exported
    by_name = {p.name: p for p in paths}
    for file_key in sorted({f["file_key"] for f in failures_of(wh)}):
        rows = failures_of(wh, file_key)
        path = by_name[workbook_name(rows[0]["agency_code"], file_key)]
        wb = openpyxl.load_workbook(path)
        assert wb.sheetnames[0] == "Issues" and wb.active.title == "Issues" and len(wb.sheetnames) == 2
        data = data_sheet(wb)
        for f in rows:
            if not f["cell"]:
                continue
            cell = data[f["cell"]]
            assert cell.fill is not None and cell.fill.fill_type == "solid", (file_key, f["cell"])
            assert cell.comment is not None and f["message"] in cell.comment.text, (file_key, f["cell"])
            assert cell.comment.author == "dcf"
            if f["suggestion"]:
                assert f"Suggestion: {f['suggestion']}" in cell.comment.text
        src = current_file(wh, file_key)
        per_sheet = json.loads(src["context_json"] or "{}").get("header_rows", {})  # multi-sheet reference workbooks
        header_row = src["header_row"] or per_sheet.get(rows[0]["sheet"]) or 1
        assert data.freeze_panes == f"A{header_row + 1}"

        issues = wb["Issues"]
        assert [c.value for c in issues[1]] == ISSUE_COLUMNS
        assert all(c.font.bold for c in issues[1])
        assert issues.freeze_panes == "A2"
        assert issues.auto_filter.ref == f"A1:M{len(rows) + 1}"
        table = issue_rows(path)
        assert len(table) == len(rows)
        assert sorted((r[COL["Rule"]], r[COL["Row"]], r[COL["Cell"]]) for r in table) == sorted(
            (f["rule"], f["excel_row"], f["cell"]) for f in rows
        )
        keys = [
            (
                r[COL["Row"]] is not None,
                r[COL["Record key"]] or "",
                str(r[COL["Period"]] or ""),
                r[COL["Message"]] or "",
                r[COL["Field"]] or "",
                str(r[COL["Value"]] or ""),
            )
            for r in table
        ]
        assert keys == sorted(keys), f"{path.name}: rows not ordered by record key, period, message, field, value"
        for r in table:
            assert r[COL["Status"]] == "open" and r[COL["Severity"]] in ("block", "warn")
        assert all(
            issues.column_dimensions[c].width and issues.column_dimensions[c].width <= 60 for c in "ABCDEFGHIJKLM"
        )
        # every issue says what to do about it in one plain sentence, the rule's own
        assert [r[COL["What to fix"]] for r in table] == [FIXES[r[COL["Rule"]]] for r in table]
        # a failing row shows as a row: every used cell of it is filled, the failing cell in the stronger colour
        for f in rows:
            if not f["cell"]:
                continue
            strong = data[f["cell"]].fill.start_color.rgb
            used = [c for c in data[f["excel_row"]] if c.value is not None]
            assert all(c.fill.fill_type == "solid" for c in used), (file_key, f["excel_row"])
            assert {c.fill.start_color.rgb for c in used if c.coordinate != f["cell"]} <= {
                fill.start_color.rgb for fill in (*ROW_FILLS.values(), *FILLS.values())
            } and strong in {fill.start_color.rgb for fill in FILLS.values()}


def test_record_key_and_period_come_from_the_held_back_row(exported):
    wh, paths = exported
    with duckdb.connect(str(wh), read_only=True) as con:
        held = {
            (k, r): (p, y)
            for k, r, p, y in con.execute(
                "SELECT file_key, excel_row, raw_json->>'program_code', raw_json->>'fiscal_year' FROM quarantine_row"
            ).fetchall()
        }
    by_name = {p.name: p for p in paths}
    checked = 0
    for f in failures_of(wh):
        if (f["file_key"], f["excel_row"]) not in held:
            continue
        key, period = held[(f["file_key"], f["excel_row"])]
        table = issue_rows(by_name[workbook_name(f["agency_code"], f["file_key"])])
        row = next(r for r in table if r[COL["Row"]] == f["excel_row"] and r[COL["Rule"]] == f["rule"])
        assert row[COL["Record key"]] == key and row[COL["Period"]] == period
        checked += 1
    assert checked


def test_data_sheet_keeps_cell_addresses(exported):
    wh, paths = exported
    by_name = {p.name: p for p in paths}
    checked = 0
    for f in failures_of(wh):
        src = current_file(wh, f["file_key"])
        if not f["cell"] or not src["path"].endswith(".xlsx"):
            continue
        sheet = src["sheet"] or f["sheet"]  # a multi-sheet reference workbook records the sheet per failure
        header_row = src["header_row"] or json.loads(src["context_json"])["header_rows"][sheet]
        source = book(Path(src["path"]), data_only=True)[sheet]
        export = data_sheet(book(by_name[workbook_name(f["agency_code"], f["file_key"])]))
        assert export[f["cell"]].value == source[f["cell"]].value, (f["file_key"], f["cell"])
        for r in (1, header_row, f["excel_row"]):  # whole rows too, title rows above the header included
            width = range(1, source.max_column + 1)
            assert [export.cell(r, c).value for c in width] == [source.cell(r, c).value for c in width], (
                f["file_key"],
                r,
            )
        checked += 1
    assert checked


def test_csv_records_start_on_row_one(exported):
    wh, paths = exported
    by_name = {p.name: p for p in paths}
    csv_failures = [f for f in failures_of(wh) if f["file_key"].endswith(".csv") and f["cell"]]
    assert csv_failures
    for f in csv_failures:
        data = data_sheet(book(by_name[workbook_name(f["agency_code"], f["file_key"])]))
        # line n of the CSV is row n: a preamble (the register's) or a notice line (the tracker's) stays above its
        # header, and the panes freeze below the header wherever it is
        header_row = current_file(wh, f["file_key"])["header_row"]
        assert data["A1"].value and data.freeze_panes == f"A{header_row + 1}"
        if f["value"] is not None:
            assert str(data[f["cell"]].value) == f["value"], (f["file_key"], f["cell"])


def test_arabic_files_read_right_to_left_and_the_issues_always_left_to_right(exported):
    _, paths = exported
    arabic = re.compile("[\u0600-\u06ff]")
    for path in paths:
        wb = openpyxl.load_workbook(path)
        rtl = any(arabic.search(r[COL["Field"]] or "") for r in issue_rows(path))
        assert not wb["Issues"].sheet_view.rightToLeft, path.name  # English sentences, printed as they read
        assert bool(data_sheet(wb).sheet_view.rightToLeft) == rtl, path.name
    assert any(data_sheet(openpyxl.load_workbook(p)).sheet_view.rightToLeft for p in paths), "MOI writes Arabic"


def test_filters(exported, tmp_path):
    wh, paths = exported
    mod = export_failures(wh, tmp_path / "mod", agency="mod")
    assert mod and all(p.name.startswith("MOD__") for p in mod)
    assert len(mod) == len([p for p in paths if p.name.startswith("MOD__")])
    fy = export_failures(wh, tmp_path / "fy", file_contains="fy2024")
    assert fy and all("FY2024" in p.name for p in fy)
    assert export_failures(wh, tmp_path / "resolved", status="resolved") == []
    with pytest.raises(ValueError):
        export_failures(wh, tmp_path / "bad", status="closed")


def _column_letters(ws, header_row: int, spec) -> dict[str, str]:
    headers = {normalize_header(c.value): c.column_letter for c in ws[header_row] if c.value is not None}
    return {
        canon: headers[normalize_header(a)]
        for canon, aliases in spec.columns.items()
        for a in aliases
        if normalize_header(a) in headers
    }


def test_no_live_formulas_even_from_hostile_cells(inbox_copy, sources, tmp_path):
    inbox, manifest = inbox_copy
    entry = next(
        e
        for e in manifest["files"]
        if e["path"].endswith(".xlsx") and e["kind"] == "budget" and any(b["column"] == "amount" for b in e["bad_rows"])
    )
    source = next(s for s in sources if s.agency == entry["agency"])
    spec = next(s for s in source.files if fnmatch.fnmatch(Path(entry["path"]).name, s.pattern))
    path = inbox / entry["path"]
    wb = openpyxl.load_workbook(path)
    ws = wb[entry["sheet"]]
    letters = _column_letters(ws, entry["header_row"], spec)
    bad_amount_row = next(b["excel_row"] for b in entry["bad_rows"] if b["column"] == "amount")
    bad_rows = {b["excel_row"] for b in entry["bad_rows"]}
    good = [
        r
        for r in range(entry["header_row"] + 1, entry["header_row"] + 40)
        if r not in bad_rows and ws[f"{letters['program_code']}{r}"].value
    ]
    hostile = {
        f"{letters['amount']}{bad_amount_row}": HYPERLINK,  # fails (amount not a number): in Issues too
        f"{letters['partner_country']}{good[0]}": "@SUM(A1)",  # an unknown country now: fails too
        f"{letters['program_name']}{good[1]}": "+1",  # free text: loads, but is in the Data sheet
        f"{letters['program_name']}{good[2]}": "  =2*3",  # leading blanks do not disarm a formula
    }
    for address, text in hostile.items():
        ws[address].value = text
        ws[address].data_type = "s"
    ws.cell(row=1, column=ws.max_column + 2).value = "=1+2"  # a real formula, no cached value (openpyxl computes none)
    formula_cell = ws.cell(row=1, column=ws.max_column).coordinate
    wb.save(path)

    wh = tmp_path / "wh.duckdb"
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).exit_code == 0
    file_key = f"{entry['agency']}/{Path(entry['path']).name}"
    values = {f["value"] for f in failures_of(wh, file_key)}
    assert HYPERLINK in values and "@SUM(A1)" in values

    paths = export_failures(wh, tmp_path / "out")
    assert paths
    for out in paths:
        book = openpyxl.load_workbook(out)
        for sheet in book.worksheets:
            formulas = [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"]
            assert not formulas, f"{out.name}[{sheet.title}] has formulas at {formulas}"
        assert not sheet_xml_has_formula(out), out.name

    out = next(p for p in paths if p.name == workbook_name(entry["agency"], file_key))
    book = openpyxl.load_workbook(out)
    data = data_sheet(book)
    for address, text in hostile.items():
        assert data[address].value == text and data[address].data_type == "s", address
        assert data[address].quotePrefix
    assert data[formula_cell].value == "=1+2" and data[formula_cell].data_type == "s"
    issue_values = [r[COL["Value"]] for r in issue_rows(out)]
    assert HYPERLINK in issue_values and "@SUM(A1)" in issue_values
    issues = book["Issues"]
    for row in issues.iter_rows(min_row=2):
        cell = row[COL["Value"]]
        if cell.value in (HYPERLINK, "@SUM(A1)"):
            assert cell.data_type == "s" and cell.quotePrefix
    # numbers stay numbers, negative ones included
    numbers = [
        c.value
        for row in data.iter_rows(min_row=entry["header_row"] + 1)
        for c in row
        if c.column_letter == letters["amount"] and isinstance(c.value, (int, float))
    ]
    assert numbers


def test_missing_source_file_falls_back_to_held_back_rows(inbox_copy, tmp_path):
    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).exit_code == 0
    entry = next(e for e in manifest["files"] if e["path"].endswith(".xlsx") and e["bad_rows"])
    file_key = f"{entry['agency']}/{Path(entry['path']).name}"
    with duckdb.connect(str(wh), read_only=True) as con:  # the raw archive lost its copy (deleted by hand)
        archived = Path(
            con.execute(
                "SELECT archive_path FROM audit_source_file WHERE file_key = ? AND is_current", [file_key]
            ).fetchone()[0]
        )
    archived.unlink()
    paths = export_failures(wh, tmp_path / "out", file_contains=Path(entry["path"]).name)
    assert len(paths) == 1
    book = openpyxl.load_workbook(paths[0])
    data, issues = data_sheet(book), book["Issues"]
    notes = [c.value for c in issues["A"] if isinstance(c.value, str) and c.value.startswith("Note:")]
    assert any("no longer exists" in n for n in notes)
    with duckdb.connect(str(wh), read_only=True) as con:
        held = con.execute(
            "SELECT excel_row, raw_json->>'program_code' FROM quarantine_row WHERE file_key = ?", [file_key]
        ).fetchall()
    assert held
    header = [c.value for c in data[current_file(wh, file_key)["header_row"]]]
    assert "program_code" in header
    code_col = header.index("program_code") + 1
    for excel_row, code in held:
        assert data.cell(row=excel_row, column=code_col).value == code
    for f in failures_of(wh, file_key):
        if f["cell"]:
            assert f["message"] in data[f["cell"]].comment.text
            assert data[f["cell"]].fill.fill_type == "solid"


def test_libreoffice_prints_the_issues_first_left_to_right_fitted_to_the_width(exported, tmp_path):
    """As a steward prints it: LibreOffice turns the workbook of an Arabic agency (its Data sheet right to left)
    into a PDF. Page 1 is the Issues sheet, all 13 columns side by side (fit to width) and in reading order (left to
    right), with each issue's plain 'what to fix' sentence; the data pages follow."""
    office = shutil.which("libreoffice") or shutil.which("soffice")
    if not office or not shutil.which("pdftotext"):
        pytest.skip("LibreOffice or pdftotext (poppler-utils) is not installed: the print check was skipped")
    _, paths = exported
    workbook = next(p for p in paths if p.name.startswith("MOI__") and "budget" in p.name)
    subprocess.run(
        [
            office,
            "--headless",
            f"-env:UserInstallation=file://{tmp_path / 'profile'}",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(workbook),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    pdf = tmp_path / (workbook.stem + ".pdf")

    def page(n: int) -> str:
        return subprocess.run(
            ["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(pdf), "-"], capture_output=True, text=True
        ).stdout

    first = page(1)
    header = next(line for line in first.splitlines() if "Record key" in line)
    at = [header.find(name) for name in ISSUE_COLUMNS]
    assert -1 not in at and at == sorted(at), header  # every column on the page, left to right
    table = issue_rows(workbook)
    for row in table:
        assert str(row[COL["Row"]]) in first
    fixes = {" ".join(str(r[COL["What to fix"]]).split()[:3]) for r in table}
    assert all(fix in " ".join(first.split()) for fix in fixes), fixes
    assert "رمز البرنامج" not in first  # the data sheet's header (program code): no data before the issues
    assert "رمز البرنامج" in page(2)  # the data pages follow


@pytest.mark.parametrize("agency", ["SANG", "GIP"])  # SANG reads its sheet by name, GIP by position (sheet: 0)
def test_steward_fixes_a_cell_in_the_export_and_drops_it_back(inbox_copy, tmp_path, agency):
    """The data fix loop: run -> export -> fix the failing cell with openpyxl -> drop the workbook back under the
    agency's file name -> re-run -> the failure is resolved and the row loaded. The Issues sheet comes first in the
    export; a source that reads its sheet by position still reads the data sheet."""
    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    run_nightly(inbox=str(inbox), warehouse=str(wh))
    entry = next(
        f
        for f in manifest["files"]
        if f["agency"] == agency and any(b["defect"] == "unknown_country" for b in f["bad_rows"])
    )
    bad = next(b for b in entry["bad_rows"] if b["defect"] == "unknown_country")
    key = f"{agency}/{Path(entry['path']).name}"
    [path] = export_failures(wh, tmp_path / "export", file_contains=Path(entry["path"]).name)
    wb = openpyxl.load_workbook(path)
    cell = next(f["cell"] for f in failures_of(wh, key) if f["excel_row"] == bad["excel_row"])
    data = data_sheet(wb)
    assert wb.sheetnames == ["Issues", entry["sheet"]] and data[cell].comment is not None
    data[cell].value = "Jordan"
    wb.save(inbox / entry["path"])  # saved over the agency's file, as a steward would

    summary = run_nightly(inbox=str(inbox), warehouse=str(wh))
    assert summary.totals["files_processed"] == 1
    with duckdb.connect(str(wh), read_only=True) as con:
        status = con.execute(
            "SELECT status FROM audit_validation_failure WHERE file_key = ? AND excel_row = ?", [key, bad["excel_row"]]
        ).fetchall()
        loaded = con.execute(
            "SELECT country_iso3 FROM fact_funding_line WHERE file_key = ? AND excel_row = ?", [key, bad["excel_row"]]
        ).fetchall()
        other_open = con.execute(
            "SELECT count(*) FROM audit_validation_failure WHERE file_key = ? AND status = 'open'", [key]
        ).fetchone()[0]
    assert status == [("resolved",)] and loaded == [("JOR",)]
    assert other_open == len(entry["bad_rows"]) - 1  # the other problems of that file still wait

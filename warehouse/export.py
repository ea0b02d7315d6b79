"""Steward workbooks: one xlsx per source file with its validation failures, for the agency that sent it.

Each workbook has two sheets:

* **Issues** (the first sheet, active, printed first): one row per failure in plain words (record key, period, message, field, value,
  suggestion, row, cell, rule, severity, status, first seen), header frozen, auto-filter, widths fitted.
* **Data**: the file's rows as the steward knows them, at the SAME Excel rows and columns as in the source (for a
  CSV, record *n* on row *n*), so a failure's cell address ("F37") points at the same cell. Failing cells are
  filled (light red: blocks the row, light yellow: warning) and carry a comment with the message and suggestion.
  If the source file is gone, the sheet is rebuilt from the held-back rows in ``quarantine_row``.

No cell is ever a live formula: text starting with ``=``, ``+``, ``-`` or ``@`` (after leading blanks) is written
as a plain string cell (with Excel's quote-prefix style), whether it comes from the warehouse or from the source
sheet, and every written workbook is checked for ``<f>`` elements before it is moved into place.

This module names and writes the workbooks (``export_failures``). The failures and held-back rows come from
warehouse/export_query.py, the source read back from warehouse/export_source.py (workbooks, and the held-back rows
when the source is gone) and warehouse/export_csv.py (CSV), the two sheets from warehouse/export_sheets.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path

import openpyxl

from schemas.rules import ISSUE_COLUMNS, ISSUES_SHEET
from warehouse.export_query import Failure, SourceFile, load_failures
from warehouse.export_sheets import BOLD, build_data, build_issues, mark_failures, print_setup
from warehouse.export_source import FORMULA_XML

__all__ = ["ISSUE_COLUMNS", "export_failures", "workbook_name"]

_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")


# -- the workbook ------------------------------------------------------------------------------------------------
def workbook_name(agency: str, file_key: str, taken: set[str] | None = None) -> str:
    """``<agency>__<file name stem>__failures.xlsx``; a second file with the same stem keeps its extension."""
    name = file_key.replace("\\", "/").rsplit("/", 1)[-1]
    stem, _, ext = name.rpartition(".")
    stem = stem or name
    safe = lambda s: re.sub(r'[<>:"/\\|?*\x00-\x1f]', "_", s)  # noqa: E731
    candidate = f"{safe(agency)}__{safe(stem)}__failures.xlsx"
    if taken is not None and candidate in taken and ext:
        candidate = f"{safe(agency)}__{safe(stem)}_{safe(ext)}__failures.xlsx"
    n = 2
    base = candidate
    while taken is not None and candidate in taken:
        candidate = base.replace("__failures.xlsx", f"_{n}__failures.xlsx")
        n += 1
    return candidate


def _arabic(failures: list[Failure], ws_data, header_row: int | None) -> bool:
    if any(_ARABIC.search(f.source_column or "") for f in failures):
        return True
    if header_row:
        return any(isinstance(c.value, str) and _ARABIC.search(c.value) for c in ws_data[header_row])
    return False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _assert_no_formulas(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        for part in zf.namelist():
            if part.startswith("xl/worksheets/") and part.endswith(".xml") and FORMULA_XML.search(zf.read(part)):
                raise RuntimeError(f"{path.name}: {part} holds a formula; the export refuses to write it")


def _write_workbook(target: Path, src: SourceFile, failures: list[Failure]) -> None:
    wb = openpyxl.Workbook()
    issues = wb.active
    issues.title = ISSUES_SHEET
    data = wb.create_sheet("Data")
    notes: list[str] = []
    if src.status == "failed":
        notes.append("The last load could not read this file: see the file-level failures at the top of the table.")
    data, header_row = build_data(data, src, failures, notes)
    unread = any("could not be read" in n for n in notes)
    if (
        src.path
        and src.file_hash
        and Path(src.path).is_file()
        and not unread
        and _sha256(Path(src.path)) != src.file_hash
    ):
        notes.append(
            f"The file at {src.path} changed after the warehouse last loaded it: cell addresses refer to "
            "the version that was loaded, the Data sheet shows the current one."
        )
    if any(f.status == "resolved" for f in failures):
        notes.append(
            "Resolved failures refer to the version of the file in which they were last seen; their cells "
            "may have moved since."
        )
    if header_row:
        for cell in data[header_row]:
            if cell.value is not None:
                cell.font = BOLD
        data.freeze_panes = f"A{header_row + 1}"
    print_setup(data, header_row)
    mark_failures(data, failures)
    build_issues(issues, failures, notes)
    if _arabic(failures, data, header_row):  # the agency's rows read right to left; the Issues sheet, in English,
        data.sheet_view.rightToLeft = True  # always left to right
    # The Issues sheet comes first: it opens first and prints first (a print or PDF runs through the sheets in
    # order). The data sheet carries the source sheet's name, so a corrected export saved under the agency's file
    # name reads like the original: by sheet name, or by position, which the reader counts from the sheet after a
    # steward Issues sheet (flows/read_sheet.py).
    if src.sheet and data.title == "Data":
        data.title = src.sheet[:31]
    wb.move_sheet(issues, offset=-wb.index(issues))
    wb.active = wb.index(issues)
    for ws in wb.worksheets:
        ws.sheet_view.tabSelected = ws is issues
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # same folder: the rename is atomic
    try:
        wb.save(tmp)
        _assert_no_formulas(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_failures(
    warehouse: Path, out_dir: Path, *, agency: str | None = None, file_contains: str | None = None, status: str = "open"
) -> list[Path]:
    """One steward workbook per source file that has failures (matching the filters); returns the paths written.

    ``agency``: an agency code (any case); ``file_contains``: text the file key contains (any case);
    ``status``: ``open`` (default), ``resolved`` or ``all``. Workbooks are named
    ``<agency>__<file name stem>__failures.xlsx`` and replace any earlier export of the same name.
    """
    if status not in ("open", "resolved", "all"):
        raise ValueError(f"status must be open, resolved or all, not {status!r}")
    by_file, files = load_failures(Path(warehouse), agency, file_contains, status)
    out_dir = Path(out_dir)
    written: list[Path] = []
    taken: set[str] = set()
    for file_key in sorted(by_file):
        failures = by_file[file_key]
        name = workbook_name(failures[0].agency_code, file_key, taken)
        taken.add(name)
        target = out_dir / name
        _write_workbook(target, files[file_key], failures)
        written.append(target)
    return sorted(written)

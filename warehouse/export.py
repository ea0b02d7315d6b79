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

The sheets are written as streams (openpyxl's write-only mode) and the failures are read as streams (ordered
cursors, warehouse/export_query.py): memory does not grow with the rows of the source nor with the number of
failures; at most 10,000 failing cells of a workbook carry a comment (a note on the Issues sheet says so), the others
are filled; at most 1,000,000 failures are listed on the Issues sheet (a note says how many more there are and how
to list them with ``dcf failures``). A workbook name fits a file system's 255 bytes (a long
file name is cut, with a short hash of the whole key to keep it unique). A workbook that cannot be written is skipped
and reported (``Exported.problems``): the others are written all the same.

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

from openpyxl import Workbook

from schemas.rules import ISSUE_COLUMNS, ISSUES_SHEET
from warehouse.export_query import FileFailures, SourceFile, open_reader
from warehouse.export_sheets import (
    SourceUnreadable,
    cap_note,
    comment_note,
    open_source,
    write_data,
    write_issues,
)
from warehouse.export_source import FORMULA_XML

__all__ = ["ISSUE_COLUMNS", "Exported", "export_failures", "workbook_name"]

NAME_BYTES = 255  # the longest file name (in bytes) of the usual file systems
_SUFFIX = "__failures.xlsx"


# -- the workbook ------------------------------------------------------------------------------------------------
def _fit(stem: str, room: int, key: str) -> str:
    """``stem`` cut to ``room`` bytes of UTF-8 (on a character boundary), with a short hash of ``key`` when cut."""
    if len(stem.encode("utf-8")) <= room:
        return stem
    tag = "~" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    cut = stem.encode("utf-8")[: max(room - len(tag), 0)].decode("utf-8", "ignore")
    return cut + tag


def workbook_name(agency: str, file_key: str, taken: set[str] | None = None) -> str:
    """``<agency>__<file name stem>__failures.xlsx``; a second file with the same stem keeps its extension. The name
    fits in 255 bytes of UTF-8: a longer stem is cut and ends in a short hash of the whole file key."""
    name = file_key.replace("\\", "/").rsplit("/", 1)[-1]
    stem, _, ext = name.rpartition(".")
    stem = stem or name
    safe = lambda s: re.sub(r'[<>:"/\\|?*\x00-\x1f]', "_", s)  # noqa: E731
    prefix = _fit(safe(agency), 40, agency) + "__"
    room = NAME_BYTES - len(prefix.encode("utf-8")) - len(_SUFFIX) - 8  # 8: room for "_<n>" or "_<ext>"

    def named(middle: str) -> str:
        return f"{prefix}{_fit(middle, room, f'{agency}/{file_key}')}{_SUFFIX}"

    candidate = named(safe(stem))
    if taken is not None and candidate in taken and ext:
        candidate = named(f"{safe(stem)}_{safe(ext)}")
    n = 2
    base = candidate
    while taken is not None and candidate in taken:
        candidate = base.replace(_SUFFIX, f"_{n}{_SUFFIX}")
        n += 1
    return candidate


class Exported(list[Path]):
    """The workbooks written (sorted), as a list; ``problems``: one line per workbook that could not be written."""

    def __init__(self, paths=(), problems: list[str] | None = None) -> None:
        super().__init__(paths)
        self.problems: list[str] = problems or []


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _assert_no_formulas(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        for part in zf.namelist():
            if not (part.startswith("xl/worksheets/") and part.endswith(".xml")):
                continue
            with zf.open(part) as fh:  # read in blocks: a sheet's XML may be hundreds of megabytes
                tail = b""
                while block := fh.read(1 << 20):
                    if FORMULA_XML.search(tail + block):
                        raise RuntimeError(f"{path.name}: {part} holds a formula; the export refuses to write it")
                    tail = block[-8:]


def _write_workbook(target: Path, src: SourceFile, failures: FileFailures, status: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # same folder (the rename is atomic), a short name (the target's name may already use the 255 bytes)
    tag = hashlib.sha256(target.name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    tmp = target.with_name(f".dcf-{tag}.{os.getpid()}.tmp")
    try:
        try:
            _save(tmp, src, failures, status, None)
        except SourceUnreadable as exc:  # the source failed half-way: the held-back rows instead
            _save(tmp, src, failures, status, str(exc))
        _assert_no_formulas(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _discard(wb: Workbook) -> None:
    """Close a write-only workbook's sheets that were not saved and remove their temporary files (openpyxl only
    removes them at exit, and not at all when the process is killed)."""
    for ws in wb.worksheets:
        try:
            if not ws.closed:
                ws.close()
            if ws._writer is not None:
                ws._writer.cleanup()
        except Exception:  # noqa: BLE001 - cleaning up after a failure must not hide it
            pass


def _save(tmp: Path, src: SourceFile, failures: FileFailures, status: str, problem: str | None) -> None:
    # The Issues sheet comes first: it opens first and prints first (a print or PDF runs through the sheets in
    # order). The data sheet carries the source sheet's name, so a corrected export saved under the agency's file
    # name reads like the original: by sheet name, or by position, which the reader counts from the sheet after a
    # steward Issues sheet (flows/read_sheet.py). Both are streamed (write-only): the Data sheet is written first,
    # the Issues sheet (whose notes say what the Data sheet could not show) after it.
    wb = Workbook(write_only=True)
    try:
        issues = wb.create_sheet(ISSUES_SHEET)
        source = open_source(src, failures, problem)
        data = wb.create_sheet(src.sheet[:31] if src.sheet else "Data")
        notes: list[str] = []
        if more := cap_note(failures, status):
            notes.append(more)
        if src.status == "failed":
            notes.append("The last load could not read this file: see the file-level failures at the top of the table.")
        try:
            marks = write_data(data, source, failures)
        finally:
            source.close()
        notes += source.notes
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
        if failures.any_resolved:
            notes.append(
                "Resolved failures refer to the version of the file in which they were last seen; their cells "
                "may have moved since."
            )
        if note := comment_note(marks, failures):
            notes.append(note)
        write_issues(issues, failures, notes)
        wb.active = 0
        wb.save(tmp)
    except BaseException:
        _discard(wb)  # an error, or SIGTERM (dcf failures --export): openpyxl's temporary files go now
        raise


def export_failures(
    warehouse: Path, out_dir: Path, *, agency: str | None = None, file_contains: str | None = None, status: str = "open"
) -> Exported:
    """One steward workbook per source file that has failures (matching the filters); returns the paths written.

    ``agency``: an agency code (any case); ``file_contains``: text the file key contains (any case);
    ``status``: ``open`` (default), ``resolved`` or ``all``. Workbooks are named
    ``<agency>__<file name stem>__failures.xlsx`` and replace any earlier export of the same name. A workbook that
    cannot be written (any error) is skipped: the others are written, and the returned list's ``problems`` holds
    one line for each skipped one.
    """
    if status not in ("open", "resolved", "all"):
        raise ValueError(f"status must be open, resolved or all, not {status!r}")
    out_dir = Path(out_dir)
    written: list[Path] = []
    problems: list[str] = []
    taken: set[str] = set()
    with open_reader(Path(warehouse), agency, file_contains, status) as reader:
        for failures in reader.files():
            file_key = failures.file_key
            try:
                name = workbook_name(failures.agency_code, file_key, taken)
                taken.add(name)
                target = out_dir / name
                _write_workbook(target, failures.source(), failures, status)
            except Exception as exc:  # noqa: BLE001 - one workbook that cannot be written does not stop the others
                problems.append(f"{file_key}: no workbook written ({type(exc).__name__}: {exc})")
                continue
            written.append(target)
    return Exported(sorted(written), problems)

"""Steward workbooks (warehouse/export.py), the two sheets, written as streams (openpyxl write-only worksheets: a
row goes to disk when it is appended, so memory does not grow with the rows): the Data sheet (the source's rows at
their own rows and columns, failing cells filled and commented, marked row by row as the source is read) and the
Issues sheet (one row per failure in plain words). No cell is ever a live formula: text that starts like one is
written as a plain string cell with Excel's quote prefix. At most MAX_COMMENTS failing cells of a workbook carry a
comment (each comment is held until the workbook is saved); the others are filled all the same, and the Issues sheet
says so. The failures come as ordered streams (warehouse/export_query.py): the Data sheet takes, for each source row,
the failures of that row from a cursor in row order, so only one row's failures are held; the Issues sheet writes
them from a second cursor, its widths and counts from SQL aggregates. At most MAX_ISSUES failures are listed (a
worksheet holds 1,048,576 rows); a row below the table says how many more there are and how to see them."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from copy import copy
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import chain
from pathlib import Path
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from schemas.rules import FIXES, ISSUE_COLUMNS
from warehouse.export_csv import csv_rows
from warehouse.export_query import SHEET_ROWS, Failure, FileFailures, Mark, SourceFile
from warehouse.export_source import quarantine_rows, xlsx_rows

#: Issues columns (1-based) whose text wraps, and the timestamp column
_WRAPPED = tuple(ISSUE_COLUMNS.index(name) + 1 for name in ("What to fix", "Message", "Suggestion"))
_FIRST_SEEN = ISSUE_COLUMNS.index("First seen") + 1

#: characters that make a spreadsheet treat text as a formula (CSV/formula injection)
FORMULA_TRIGGERS = frozenset("=+-@")
CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
XLSX_SUFFIXES = {".xlsx", ".xlsm", ".xltx", ".xltm"}
MAX_WIDTH = 60
WIDTH_SAMPLE_ROWS = 500  # Data column widths are fitted on the header and the first rows, not on every cell
MAX_COMMENTS = 10_000  # failing cells with a comment per workbook; the others are filled only
MAX_ROWS = SHEET_ROWS  # a worksheet's last row
MAX_ISSUES = 1_000_000  # failures listed on the Issues sheet; a note says how many more there are
AUTHOR = "dcf"

FILLS = {  # failing cell / whole row of a row-level failure
    "block": PatternFill("solid", start_color="FFFFC7CE", end_color="FFFFC7CE"),
    "warn": PatternFill("solid", start_color="FFFFEB9C", end_color="FFFFEB9C"),
}
ROW_FILLS = {
    "block": PatternFill("solid", start_color="FFFDE9EC", end_color="FFFDE9EC"),
    "warn": PatternFill("solid", start_color="FFFFF6D5", end_color="FFFFF6D5"),
}
_SEVERITY_RANK = {"block": 2, "warn": 1}

BOLD = Font(bold=True)
_ITALIC = Font(italic=True)
_WRAP_TOP = Alignment(wrap_text=True, vertical="top")
_TOP = Alignment(vertical="top")
_STAMP = "yyyy-mm-dd hh:mm"
ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")


# -- cell values -------------------------------------------------------------------------------------------------
def _clean(text: str) -> str:
    """Text a worksheet accepts: no XML-illegal control characters, at most 32,767 characters."""
    if ILLEGAL_CHARACTERS_RE.search(text):
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    return text[:32767]


def _is_trigger(text: str) -> bool:
    stripped = text.lstrip()
    return bool(stripped) and stripped[0] in FORMULA_TRIGGERS


class _Styles:
    """Styles set on many cells of one workbook: each combination is looked up once (openpyxl hashes the style
    objects on every assignment), then copied."""

    def __init__(self) -> None:
        self._done: dict[tuple, StyleArray] = {}

    def set(self, cell, name: str, value: object) -> None:
        key = (tuple(cell._style or ()), name, id(value))
        done = self._done.get(key)
        if done is None:
            setattr(cell, name, value)
            self._done[key] = copy(cell._style)
        else:
            cell._style = copy(done)


def _set_text(cell, text: str, styles: _Styles) -> None:
    """Write ``text`` as a plain string, never a formula (openpyxl turns a str starting with "=" into one)."""
    cell.value = text
    cell.data_type = "s"
    if _is_trigger(text):
        styles.set(cell, "quotePrefix", True)  # Excel and LibreOffice keep it text even when the steward edits it


def _put(cell, value: object, styles: _Styles) -> None:
    if isinstance(value, str):
        _set_text(cell, _clean(value), styles)
    else:
        cell.value = value


def _needs_text_cell(v: str) -> bool:
    """A string openpyxl would not store as plain text: a formula's start or an error code."""
    return v[:1] in FORMULA_TRIGGERS or (v[:1].isspace() and _is_trigger(v)) or v in _ERROR_CODES


def _display_len(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 19 if (value.hour or value.minute or value.second) else 10
    text = str(value)
    return max((len(line) for line in text.splitlines()), default=0)


def _width(n: int) -> float:
    return float(min(MAX_WIDTH, max(8, n + 2)))


def print_setup(ws, title_row: int | None) -> None:
    """Landscape, one page wide, the header repeated on every page (a steward prints or converts it to PDF)."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    if title_row:
        ws.print_title_rows = f"{title_row}:{title_row}"


# -- the source of the Data sheet --------------------------------------------------------------------------------
_ERROR_CODES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))
_NATIVE = (int, float, date, time, timedelta)  # written as they are (bool is an int, datetime a date)


class SourceUnreadable(Exception):
    """The source failed while its rows were read: the workbook is written again from the held-back rows."""


@dataclass
class DataSource:
    """The rows the Data sheet copies (read lazily, top to bottom), its header row and what the notes say of it."""

    rows: Iterable[Sequence[object]]
    header_row: int | None
    notes: list[str] = field(default_factory=list)
    opened: list = field(default_factory=list)  # workbooks to close

    def close(self) -> None:
        """Close the source's workbooks and let go of its row stream: openpyxl's reader keeps an empty element for
        every row it has read (some 200 bytes each: ~200 MB of RSS for a full sheet) until its parser is dropped, which
        must not stay alive while the Issues sheet is written."""
        for wb in self.opened:
            wb.close()
        self.rows = ()


def unreadable(path: Path, exc: BaseException) -> str:
    return f"The source file {path} could not be read ({type(exc).__name__}: {exc})"


def _guarded(rows: Iterable[Sequence[object]], path: Path) -> Iterator[Sequence[object]]:
    it = iter(rows)
    while True:
        try:
            row = next(it)
        except StopIteration:
            return
        except Exception as exc:  # any error while reading: the held-back rows instead
            raise SourceUnreadable(unreadable(path, exc)) from exc
        yield row


def open_source(src: SourceFile, failures: FileFailures, problem: str | None = None) -> DataSource:
    """The source's rows (the CSV's records or the sheet's rows), or the held-back rows when the source is gone or
    unreadable (``problem``: why, when a first attempt failed while reading)."""
    path = Path(src.path) if src.path else None
    header_row = src.header_row
    sheet = src.sheet or failures.first_sheet
    if problem is None:
        if path is None:
            problem = "The raw archive holds no copy of this file (it could not be read when it arrived)"
        elif not path.is_file():
            problem = f"The source file {path} no longer exists"
        else:
            try:
                suffix = path.suffix.lower()
                if suffix in CSV_SUFFIXES or (suffix not in XLSX_SUFFIXES and src.sheet == "" and not sheet):
                    headers = failures.source_columns()
                    rows, _encoding, _delimiter = csv_rows(path, headers, header_row or 1, src.encoding)
                    return DataSource(_guarded(rows, path), header_row or 1)
                name, xrows, opened = xlsx_rows(path, sheet)
                notes = []
                if name != sheet and sheet:
                    notes.append(f"The Data sheet copies sheet '{name}' of the source (the failures name '{sheet}').")
                return DataSource(_guarded(xrows, path), header_row, notes, opened)
            except Exception as exc:  # noqa: BLE001 - any unreadable file falls back to the warehouse copy
                problem = unreadable(path, exc)
    held = failures.held_back()
    qrows, header_row = quarantine_rows(held, src.header_row, failures.positions())
    note = (
        f"{problem}: the Data sheet shows only the {held.count} held-back row(s) stored in the warehouse, at "
        f"their original rows, with the warehouse's column names as the header."
    )
    return DataSource(qrows, header_row, [note])


# -- the Data sheet ----------------------------------------------------------------------------------------------
def _prepare(row: Iterable[object]) -> list[object]:
    out = list(row)
    while out and out[-1] is None:
        out.pop()
    for i, v in enumerate(out):
        if type(v) is str:
            if ILLEGAL_CHARACTERS_RE.search(v) or len(v) > 32767:
                out[i] = _clean(v)
        elif v is not None and not isinstance(v, _NATIVE):
            out[i] = _clean(str(v))
    return out


@dataclass
class _Marks:
    """The failures of the Data sheet, taken row by row from a stream in row order (only one row's are held), and
    the comments written so far."""

    stream: Iterator[tuple[int, int, Mark]]
    comments: int = 0
    uncommented: int = 0
    styles: _Styles = field(default_factory=_Styles)
    _next: tuple[int, int, Mark] | None = None
    _done: bool = False

    def _peek(self) -> tuple[int, int, Mark] | None:
        if self._next is None and not self._done:
            self._next = next(self.stream, None)
            self._done = self._next is None
        return self._next

    def take(self, r: int) -> tuple[dict[int, list[Mark]], list[Mark]]:
        """The failures of row ``r``: {column: failures of that cell} (in order of appearance), those of the whole
        row. Rows are taken in order; failures of rows before ``r`` are passed over."""
        cells: dict[int, list[Mark]] = {}
        whole: list[Mark] = []
        while (item := self._peek()) is not None and item[0] <= r:
            self._next = None
            row, column, mark = item
            if row < r:
                continue
            if column:
                cells.setdefault(column, []).append(mark)
            else:
                whole.append(mark)
        return cells, whole

    def rows_left(self) -> Iterator[int]:
        """The rows that still have failures (below the source's last row), in order."""
        while (item := self._peek()) is not None:
            yield item[0]


def write_data(ws, source: DataSource, failures: FileFailures) -> _Marks:
    """Append the source's rows from Excel row 1 on (one pass), each row with a failure filled and commented as it
    goes (the failures streamed in row order beside the rows); rows that hold failures past the source's last row
    are added. Returns the marks (comment counts)."""
    header_row = source.header_row
    rows = iter(source.rows)
    sample_from = header_row or 1  # title rows above the header overflow into empty cells: they set no width
    sample_to = sample_from + WIDTH_SAMPLE_ROWS
    head: list[list[object]] = []  # the rows up to the end of the width sample, held until the widths are known
    for row in rows:
        head.append(_prepare(row))
        if len(head) >= sample_to:
            break
    widths: dict[int, int] = defaultdict(int)
    for values in head[sample_from - 1 :]:
        for i, v in enumerate(values, 1):
            if v is not None:
                widths[i] = max(widths[i], _display_len(v))
    for c, n in widths.items():
        ws.column_dimensions[get_column_letter(c)].width = _width(n)
    header = head[header_row - 1] if header_row and len(head) >= header_row else []
    if failures.arabic_columns or any(isinstance(v, str) and ARABIC.search(v) for v in header):
        ws.sheet_view.rightToLeft = True  # the agency's rows read right to left (the Issues sheet never does)
    ws.sheet_view.tabSelected = False
    if header_row:
        ws.freeze_panes = f"A{header_row + 1}"
    print_setup(ws, header_row)
    marks = _Marks(failures.marks())
    r = 0
    for r, values in enumerate(chain(head, (_prepare(row) for row in rows)), 1):
        if r > MAX_ROWS:
            break
        ws.append(_row(ws, r, values, r == header_row, marks))
    for extra in marks.rows_left():  # failures below the source's last row
        if extra <= r:  # past the sheet's last row
            marks.take(extra)
            continue
        while r < extra - 1:
            ws.append([])
            r += 1
        r += 1
        ws.append(_row(ws, r, [], r == header_row, marks))
    return marks


def _row(ws, r: int, values: list[object], is_header: bool, marks: _Marks) -> list[object]:
    cellf, rowf = marks.take(r)
    if not (cellf or rowf or is_header) and not any(type(v) is str and _needs_text_cell(v) for v in values):
        return values
    out: list[Any] = []
    for v in values:
        if type(v) is str and _needs_text_cell(v):
            cell = WriteOnlyCell(ws)
            _set_text(cell, v, marks.styles)
            out.append(cell)
        else:
            out.append(v if v is None else WriteOnlyCell(ws, value=v))
    if is_header:
        for cell in out:
            if cell is not None:
                marks.styles.set(cell, "font", BOLD)
    if not (cellf or rowf):
        return out
    width = max(len(out), max(cellf, default=0) if cellf else 0, 1)
    out += [None] * (width - len(out))
    cells = [c if c is not None else WriteOnlyCell(ws) for c in out]
    marked: set[int] = set()
    if cellf:
        for column, group in cellf.items():
            _annotate(cells[column - 1], group, FILLS, marks)
            marked.add(column)
    used = [i for i, c in enumerate(cells, 1) if c.value is not None]
    if cellf and not rowf:
        fill = ROW_FILLS[_worst([f for group in cellf.values() for f in group])]
        for i in used:
            if i not in marked:
                marks.styles.set(cells[i - 1], "fill", fill)
    if rowf:
        fill = ROW_FILLS[_worst(rowf)]
        for i in used:
            if i not in marked:
                marks.styles.set(cells[i - 1], "fill", fill)
        target = used[0] if used else 1
        _annotate(cells[target - 1], rowf, ROW_FILLS, marks, fill=target not in marked, extend=True)
    return cells


def _worst(group: list[Mark]) -> str:
    return max((f.severity for f in group), key=lambda s: _SEVERITY_RANK.get(s, 0))


def _annotate(cell, group: list[Mark], fills: dict, marks: _Marks, fill: bool = True, extend: bool = False) -> None:
    if fill:
        marks.styles.set(cell, "fill", fills.get(_worst(group), fills["block"]))
    if not (extend and cell.comment is not None) and marks.comments >= MAX_COMMENTS:
        marks.uncommented += 1
        return
    parts = []
    for f in group:
        text = f.message if len(group) == 1 and not extend else f"{f.message} [{f.rule}]"
        if f.suggestion:
            text += f"\nSuggestion: {f.suggestion}"
        parts.append(text)
    text = "\n\n".join(parts)
    if extend and cell.comment is not None:
        text = cell.comment.text + "\n\n" + text
    else:
        marks.comments += 1
    lines = sum(max(1, -(-len(line) // 48)) for line in text.splitlines())
    cell.comment = Comment(_clean(text), AUTHOR, height=min(600, 20 + 15 * lines), width=300)


def comment_note(marks: _Marks, failures: FileFailures) -> str | None:
    if not marks.uncommented:
        return None
    listed = "every failure" if failures.count <= MAX_ISSUES else f"the first {MAX_ISSUES:,} failures"
    return (
        f"Only the first {MAX_COMMENTS:,} failing cells of the Data sheet carry a comment; the other "
        f"{marks.uncommented:,} are filled without one. This table lists {listed}."
    )


def cap_note(failures: FileFailures, status: str) -> str | None:
    """What the Issues sheet leaves out, and how to see it, when the file has more than MAX_ISSUES failures."""
    more = failures.count - MAX_ISSUES
    if more <= 0:
        return None
    key = failures.file_key.replace("'", "'\\''")
    return (
        f"{more:,} more failure(s) of this file are not listed: this table stops at {MAX_ISSUES:,} (a worksheet "
        f"holds at most {MAX_ROWS:,} rows). See every one with: dcf failures --file '{key}' --status {status} "
        f"--limit {failures.count}"
    )


# -- the Issues sheet --------------------------------------------------------------------------------------------
def _issue_values(f: Failure) -> list[object]:
    return [
        f.record_key,
        f.period,
        FIXES.get(f.rule, "See the message."),
        f.message,
        f.source_column or f.column_name,
        f.value,
        f.suggestion,
        f.excel_row,
        f.cell,
        f.rule,
        f.severity,
        f.status,
        f.first_seen_at,
    ]


def write_issues(ws, failures: FileFailures, notes: list[str]) -> None:
    """The Issues sheet: one row per failure (at most MAX_ISSUES), header bold and frozen, auto-filter, widths
    fitted (on every failure, from SQL), notes below."""
    widths = [max(len(h), n) for h, n in zip(ISSUE_COLUMNS, failures.issue_widths(FIXES), strict=True)]
    for i, n in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = _width(n)
    wrap_at = {c: int(_width(widths[c - 1])) - 1 for c in _WRAPPED}
    listed = min(failures.count, MAX_ISSUES)
    last = listed + 1
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(ISSUE_COLUMNS))}{last}"
    ws.sheet_view.tabSelected = True
    print_setup(ws, 1)
    styles = _Styles()
    header = []
    for name in ISSUE_COLUMNS:
        cell = WriteOnlyCell(ws, value=name)
        styles.set(cell, "font", BOLD)
        header.append(cell)
    ws.append(header)
    for r, f in enumerate(failures.issues(listed), start=2):
        row: list[object] = []
        for c, v in enumerate(_issue_values(f), start=1):
            if v is None:
                row.append(None)
                continue
            cell = WriteOnlyCell(ws)
            _put(cell, v, styles)
            styles.set(cell, "alignment", _WRAP_TOP if c in _WRAPPED else _TOP)
            if c == _FIRST_SEEN:
                styles.set(cell, "number_format", _STAMP)
            row.append(cell)
        texts = (FIXES.get(f.rule, "See the message."), f.message, f.suggestion)
        lines = max(_wrapped_lines(text, wrap_at[c]) for c, text in zip(_WRAPPED, texts, strict=True))
        if lines > 1:  # viewers do not grow rows for wrapped text on their own
            ws.row_dimensions[r].height = 15 * lines
        ws.append(row)
        if lines > 1:
            del ws.row_dimensions[r]  # written with the row: not held until the end
    if notes:
        ws.append([])
        for note in notes:
            cell = WriteOnlyCell(ws)
            _set_text(cell, _clean("Note: " + note), styles)
            styles.set(cell, "font", _ITALIC)
            ws.append([cell])


def _wrapped_lines(text: str | None, width: int) -> int:
    if not text:
        return 1
    return sum(max(1, -(-len(line) // max(width, 1))) for line in text.splitlines())

"""Steward workbooks (warehouse/export.py), the two sheets: the Data sheet (the source's rows at their own rows and
columns, failing cells filled and commented) and the Issues sheet (one row per failure in plain words). No cell is
ever a live formula: text that starts like one is written as a plain string cell with Excel's quote prefix."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties

from schemas.rules import FIXES, ISSUE_COLUMNS
from warehouse.export_csv import csv_rows
from warehouse.export_query import Failure, SourceFile
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


# -- cell values -------------------------------------------------------------------------------------------------
def _clean(text: str) -> str:
    """Text a worksheet accepts: no XML-illegal control characters, at most 32,767 characters."""
    if ILLEGAL_CHARACTERS_RE.search(text):
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    return text[:32767]


def _is_trigger(text: str) -> bool:
    stripped = text.lstrip()
    return bool(stripped) and stripped[0] in FORMULA_TRIGGERS


def _set_text(cell, text: str) -> None:
    """Write ``text`` as a plain string, never a formula (openpyxl turns a str starting with "=" into one)."""
    cell.value = text
    cell.data_type = "s"
    if _is_trigger(text):
        cell.quotePrefix = True  # Excel and LibreOffice keep it text even when the steward edits the cell


def _put(cell, value: object) -> None:
    if isinstance(value, str):
        _set_text(cell, _clean(value))
    else:
        cell.value = value


def _display_len(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 19 if (value.hour or value.minute or value.second) else 10
    text = str(value)
    return max((len(line) for line in text.splitlines()), default=0)


def _width(n: int) -> float:
    return float(min(MAX_WIDTH, max(8, n + 2)))


# -- the Data sheet ----------------------------------------------------------------------------------------------
def _write_rows(ws, rows: Iterable[Iterable[object]], header_row: int | None) -> None:
    """Append the rows from Excel row 1 on (one pass); text that looks like a formula stays text."""
    append = ws.append
    widths: dict[int, int] = defaultdict(int)
    sample_from = header_row or 1  # title rows above the header overflow into empty cells: they set no width
    sample_to = sample_from + WIDTH_SAMPLE_ROWS
    fixes: list[tuple[int, int, str]] = []
    for r, row in enumerate(rows, 1):
        out = list(row)
        while out and out[-1] is None:
            out.pop()
        for i, v in enumerate(out):
            if type(v) is str:
                if ILLEGAL_CHARACTERS_RE.search(v) or len(v) > 32767:
                    out[i] = v = _clean(v)
                if v[:1] in FORMULA_TRIGGERS or (v[:1].isspace() and _is_trigger(v)) or v in _ERROR_CODES:
                    fixes.append((r, i + 1, v))
                    out[i] = None
            elif v is not None and not isinstance(v, _NATIVE):
                out[i] = _clean(str(v))
        append(out)
        if sample_from <= r <= sample_to:
            for i, v in enumerate(out, 1):
                if v is not None:
                    n = _display_len(v)
                    if n > widths[i]:
                        widths[i] = n
    for r, c, text in fixes:
        _set_text(ws.cell(row=r, column=c), text)
        if sample_from <= r <= sample_to:
            widths[c] = max(widths[c], _display_len(text))
    for c, n in widths.items():
        ws.column_dimensions[get_column_letter(c)].width = _width(n)


_ERROR_CODES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))
_NATIVE = (int, float, date, time, timedelta)  # written as they are (bool is an int, datetime a date)


def build_data(ws, src: SourceFile, failures: list[Failure], notes: list[str]):
    """Fill the Data sheet; returns it (replaced if a partial copy had to be dropped) and its header row (None
    when unknown)."""
    path = Path(src.path) if src.path else None
    header_row = src.header_row
    sheet = src.sheet or next((f.sheet for f in failures if f.sheet), None)
    rows: Iterable[Sequence[object]]  # the CSV's records, the sheet's rows or the held-back rows
    problem = None
    if path is None:
        problem = "The raw archive holds no copy of this file (it could not be read when it arrived)"
    elif not path.is_file():
        problem = f"The source file {path} no longer exists"
    else:
        try:
            suffix = path.suffix.lower()
            if suffix in CSV_SUFFIXES or (suffix not in XLSX_SUFFIXES and src.sheet == "" and not sheet):
                headers = {f.source_column.strip() for f in failures if f.source_column}
                rows, _encoding, _delimiter = csv_rows(path, headers, header_row or 1, src.encoding)
                _write_rows(ws, rows, header_row or 1)
                return ws, header_row or 1
            name, rows, opened = xlsx_rows(path, sheet)
            try:
                _write_rows(ws, rows, header_row)
            finally:
                for wb in opened:
                    wb.close()
            if name != sheet and sheet:
                notes.append(f"The Data sheet copies sheet '{name}' of the source (the failures name '{sheet}').")
            return ws, header_row
        except Exception as exc:  # noqa: BLE001 - any unreadable file falls back to the warehouse copy
            problem = f"The source file {path} could not be read ({type(exc).__name__}: {exc})"
            wb, index = ws.parent, ws.parent.index(ws)  # drop a partial copy
            wb.remove(ws)
            ws = wb.create_sheet("Data", index)
    rows, header_row = quarantine_rows(src, failures)
    _write_rows(ws, rows, header_row)
    held = len(src.quarantined)
    notes.append(
        f"{problem}: the Data sheet shows only the {held} held-back row(s) stored in the warehouse, at "
        f"their original rows, with the warehouse's column names as the header."
    )
    return ws, header_row


def mark_failures(ws, failures: list[Failure]) -> None:
    """Each failing cell filled (strong) and commented; each row with a failure filled light across its used cells,
    so a failing row shows on paper and on screen even where its failing cell is off to the right."""
    by_cell: dict[str, list[Failure]] = defaultdict(list)
    by_row: dict[int, list[Failure]] = defaultdict(list)
    cell_rows: dict[int, list[Failure]] = defaultdict(list)
    for f in failures:
        if f.cell:
            by_cell[f.cell.upper()].append(f)
        elif f.excel_row is not None:
            by_row[f.excel_row].append(f)
    marked: set[tuple[int, int]] = set()
    for address, group in by_cell.items():
        try:
            cell = ws[address]
        except (ValueError, IndexError, KeyError):
            continue
        if isinstance(cell, tuple):  # a range, not a cell
            continue
        _annotate(cell, group, FILLS)
        marked.add((cell.row, cell.column))
        cell_rows[cell.row] += group
    for excel_row, group in cell_rows.items():
        if excel_row in by_row:
            continue  # filled below with its row-level failures
        for cell in next(ws.iter_rows(min_row=excel_row, max_row=excel_row, max_col=max(ws.max_column, 1))):
            if cell.value is not None and (cell.row, cell.column) not in marked:
                cell.fill = ROW_FILLS[_worst(group)]
    for excel_row, group in by_row.items():
        used = [
            c
            for c in next(ws.iter_rows(min_row=excel_row, max_row=excel_row, max_col=max(ws.max_column, 1)))
            if c.value is not None
        ]
        worst = _worst(group)
        for cell in used:
            if (cell.row, cell.column) not in marked:
                cell.fill = ROW_FILLS[worst]
        target = used[0] if used else ws.cell(row=excel_row, column=1)
        _annotate(target, group, ROW_FILLS, fill=(target.row, target.column) not in marked, extend=True)


def _worst(group: list[Failure]) -> str:
    return max((f.severity for f in group), key=lambda s: _SEVERITY_RANK.get(s, 0))


def _annotate(cell, group: list[Failure], fills: dict, fill: bool = True, extend: bool = False) -> None:
    parts = []
    for f in group:
        text = f.message if len(group) == 1 and not extend else f"{f.message} [{f.rule}]"
        if f.suggestion:
            text += f"\nSuggestion: {f.suggestion}"
        parts.append(text)
    text = "\n\n".join(parts)
    if extend and cell.comment is not None:
        text = cell.comment.text + "\n\n" + text
    lines = sum(max(1, -(-len(line) // 48)) for line in text.splitlines())
    cell.comment = Comment(_clean(text), AUTHOR, height=min(600, 20 + 15 * lines), width=300)
    if fill:
        cell.fill = fills.get(_worst(group), fills["block"])


# -- the Issues sheet --------------------------------------------------------------------------------------------
def build_issues(ws, failures: list[Failure], notes: list[str]) -> None:
    ws.append(ISSUE_COLUMNS)
    for cell in ws[1]:
        cell.font = BOLD
    widths = [len(h) for h in ISSUE_COLUMNS]
    for r, f in enumerate(failures, start=2):
        values = [
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
        for c, v in enumerate(values, start=1):
            if v is None:
                continue
            cell = ws.cell(row=r, column=c)
            _put(cell, v)
            widths[c - 1] = max(widths[c - 1], _display_len(v))
            cell.alignment = _WRAP_TOP if c in _WRAPPED else _TOP
            if c == _FIRST_SEEN:
                cell.number_format = "yyyy-mm-dd hh:mm"
    last = len(failures) + 1
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(ISSUE_COLUMNS))}{last}"
    for i, n in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = _width(n)
    wrap_at = {c: int(_width(widths[c - 1])) - 1 for c in _WRAPPED}
    for r, f in enumerate(failures, start=2):  # viewers do not grow rows for wrapped text on their own
        texts = (FIXES.get(f.rule, "See the message."), f.message, f.suggestion)
        lines = max(_wrapped_lines(text, wrap_at[c]) for c, text in zip(_WRAPPED, texts, strict=True))
        if lines > 1:
            ws.row_dimensions[r].height = 15 * lines
    print_setup(ws, 1)
    if notes:
        for k, note in enumerate(notes):
            cell = ws.cell(row=last + 2 + k, column=1)
            _set_text(cell, _clean("Note: " + note))
            cell.font = _ITALIC


def _wrapped_lines(text: str | None, width: int) -> int:
    if not text:
        return 1
    return sum(max(1, -(-len(line) // max(width, 1))) for line in text.splitlines())


def print_setup(ws, title_row: int | None) -> None:
    """Landscape, one page wide, the header repeated on every page (a steward prints or converts it to PDF)."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    if title_row:
        ws.print_title_rows = f"{title_row}:{title_row}"

"""Steward workbooks: one xlsx per source file with its validation failures, for the agency that sent it.

Each workbook has two sheets:

* **Issues** (first, active): one row per failure in plain words (record key, period, message, field, value,
  suggestion, row, cell, rule, severity, status, first seen), header frozen, auto-filter, widths fitted.
* **Data**: the file's rows as the steward knows them, at the SAME Excel rows and columns as in the source (for a
  CSV, record *n* on row *n*), so a failure's cell address ("F37") points at the same cell. Failing cells are
  filled (light red: blocks the row, light yellow: warning) and carry a comment with the message and suggestion.
  If the source file is gone, the sheet is rebuilt from the held-back rows in ``quarantine_row``.

No cell is ever a live formula: text starting with ``=``, ``+``, ``-`` or ``@`` (after leading blanks) is written
as a plain string cell (with Excel's quote-prefix style), whether it comes from the warehouse or from the source
sheet, and every written workbook is checked for ``<f>`` elements before it is moved into place.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import zip_longest
from pathlib import Path

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula
from openpyxl.worksheet.properties import PageSetupProperties

from warehouse.store import read_only

__all__ = ["ISSUE_COLUMNS", "export_failures", "workbook_name"]

ISSUE_COLUMNS = [
    "Record key",
    "Period",
    "Message",
    "Field",
    "Value",
    "Suggestion",
    "Row",
    "Cell",
    "Rule",
    "Severity",
    "Status",
    "First seen",
]

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
_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_FORMULA_XML = re.compile(rb"<(?:\w+:)?f[\s>/]")
_BOLD = Font(bold=True)
_ITALIC = Font(italic=True)
_WRAP_TOP = Alignment(wrap_text=True, vertical="top")
_TOP = Alignment(vertical="top")


# -- reading the warehouse ---------------------------------------------------------------------------------------
@dataclass
class _Failure:
    file_key: str
    agency_code: str
    sheet: str
    excel_row: int | None
    cell: str | None
    column_name: str | None
    source_column: str | None
    value: str | None
    rule: str
    severity: str
    message: str
    suggestion: str | None
    status: str
    first_seen_at: datetime | None
    record_key: str | None = None
    period: str | None = None

    def sort_key(self) -> tuple:
        return (
            self.excel_row is not None,
            self.record_key or "",
            self.period or "",
            self.message or "",
            self.source_column or self.column_name or "",
            self.value or "",
            self.excel_row or 0,
            self.cell or "",
        )


@dataclass
class _SourceFile:
    file_key: str
    file_hash: str | None = None
    path: str | None = None
    kind: str | None = None
    sheet: str | None = None
    header_row: int | None = None
    status: str | None = None
    encoding: str | None = None  # the source's declared text encoding (CSV), from the file's context
    quarantined: dict[int, dict] = field(default_factory=dict)  # excel_row -> raw cells (canonical names)


_FAILURES_SQL = """
SELECT f.file_key, f.agency_code, f.sheet, f.excel_row, f.cell, f.column_name, f.source_column, f.value, f.rule,
       f.severity, f.message, f.suggestion, f.status, f.first_seen_at, f.file_hash,
       q.raw_json,
       coalesce(l.program_code, p.program_code, r.entity_name) AS loaded_key,
       coalesce(l.fiscal_year_label,
                CASE WHEN r.entity_name IS NOT NULL AND regexp_full_match(f.column_name, '[0-9]{4}') THEN f.column_name END
       ) AS loaded_period
FROM audit_validation_failure f
LEFT JOIN quarantine_row q
       ON q.file_key = f.file_key AND q.sheet = f.sheet AND q.excel_row = f.excel_row AND q.file_hash = f.file_hash
LEFT JOIN fact_funding_line l
       ON l.file_key = f.file_key AND l.sheet = f.sheet AND l.excel_row = f.excel_row AND l.file_hash = f.file_hash
LEFT JOIN dim_program p
       ON p.file_key = f.file_key AND p.sheet = f.sheet AND p.excel_row = f.excel_row AND p.file_hash = f.file_hash
LEFT JOIN (SELECT DISTINCT file_key, sheet, excel_row, file_hash, entity_name FROM ref_series_value) r
       ON r.file_key = f.file_key AND r.sheet = f.sheet AND r.excel_row = f.excel_row AND r.file_hash = f.file_hash
WHERE ($status = 'all' OR f.status = $status)
  AND ($agency IS NULL OR upper(f.agency_code) = upper($agency))
  AND ($contains IS NULL OR strpos(lower(f.file_key), lower($contains)) > 0)
"""


def _text(value: object) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def _load(
    warehouse: Path, agency: str | None, file_contains: str | None, status: str
) -> tuple[dict[str, list[_Failure]], dict[str, _SourceFile]]:
    with read_only(warehouse) as con:
        cur = con.execute(
            _FAILURES_SQL, {"status": status, "agency": agency or None, "contains": file_contains or None}
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        keys = sorted({r["file_key"] for r in rows})
        files: dict[str, _SourceFile] = {k: _SourceFile(k) for k in keys}
        if keys:
            first_sheet: dict[str, str | None] = {}
            for r in rows:
                first_sheet.setdefault(r["file_key"], r["sheet"])
            for file_key, file_hash, path, kind, sheet, header_row, st, context in con.execute(
                # the Data sheet copies the bytes that were loaded, from the raw archive: never whatever the inbox path
                # (or a link planted there) holds now
                "SELECT file_key, file_hash, archive_path, kind, sheet, header_row, status, context_json FROM audit_source_file "
                "WHERE is_current AND list_contains($keys, file_key)",
                {"keys": keys},
            ).fetchall():
                per_sheet = _json(context).get("header_rows") or {}
                if not sheet and per_sheet:  # a multi-sheet reference workbook: the sheet of its first failure
                    sheet = first_sheet.get(file_key) or None
                    header_row = per_sheet.get(sheet, header_row)
                files[file_key] = _SourceFile(
                    file_key, file_hash, path, kind, sheet, header_row, st, _json(context).get("encoding")
                )
            for file_key, excel_row, raw in con.execute(
                "SELECT q.file_key, q.excel_row, q.raw_json FROM quarantine_row q JOIN audit_source_file a "
                "ON a.is_current AND a.file_key = q.file_key AND a.file_hash = q.file_hash "
                "WHERE list_contains($keys, q.file_key) ORDER BY q.file_key, q.excel_row",
                {"keys": keys},
            ).fetchall():
                files[file_key].quarantined[int(excel_row)] = _json(raw)
    by_file: dict[str, list[_Failure]] = defaultdict(list)
    for r in rows:
        raw = _json(r["raw_json"])
        by_file[r["file_key"]].append(
            _Failure(
                file_key=r["file_key"],
                agency_code=r["agency_code"],
                sheet=r["sheet"] or "",
                excel_row=None if r["excel_row"] is None else int(r["excel_row"]),
                cell=_text(r["cell"]),
                column_name=r["column_name"],
                source_column=r["source_column"],
                value=r["value"],
                rule=r["rule"],
                severity=r["severity"],
                message=r["message"],
                suggestion=_text(r["suggestion"]),
                status=r["status"],
                first_seen_at=r["first_seen_at"],
                record_key=_text(raw.get("program_code")) or _text(r["loaded_key"]),
                period=_text(raw.get("fiscal_year")) or _text(r["loaded_period"]),
            )
        )
    for failures in by_file.values():
        failures.sort(key=_Failure.sort_key)
    return dict(by_file), files


def _json(raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


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


def _resolve_sheet(names: list[str], wanted: str | None) -> str:
    if wanted and wanted in names:
        return wanted
    if wanted:
        loose = {n.strip().casefold(): n for n in names}
        if wanted.strip().casefold() in loose:
            return loose[wanted.strip().casefold()]
        raise KeyError(f"the workbook has no sheet named '{wanted}' (sheets: {', '.join(names)})")
    return names[0]


def _has_formulas(path: Path, ws) -> bool:
    """Whether the worksheet's XML holds any <f> element (then a second pass recovers formulas without a value)."""
    part = getattr(ws, "_worksheet_path", None)
    if not part:
        return True
    try:
        with zipfile.ZipFile(path) as zf, zf.open(part.lstrip("/")) as fh:
            tail = b""
            while chunk := fh.read(1 << 20):
                if _FORMULA_XML.search(tail + chunk):
                    return True
                tail = chunk[-8:]
    except (KeyError, zipfile.BadZipFile, OSError):
        return True
    return False


def _formula_text(value: object) -> str | None:
    if isinstance(value, ArrayFormula):
        return value.text
    if isinstance(value, DataTableFormula):
        return None
    if isinstance(value, str) and value.startswith("="):
        return value
    return None


def _xlsx_rows(path: Path, sheet: str | None) -> tuple[str, Iterator[Sequence[object]], list]:
    """Values of one sheet from Excel row 1 and column A on: cached values, or the formula's text where a formula
    has no cached value. Returns (sheet name, rows, workbooks to close)."""
    values_wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    opened = [values_wb]
    name = _resolve_sheet(values_wb.sheetnames, sheet)
    values_ws = values_wb[name]
    values_ws.reset_dimensions()  # never trust the stored dimension: read every row the sheet holds
    rows = values_ws.iter_rows(values_only=True)
    if not _has_formulas(path, values_ws):
        return name, rows, opened
    formulas_wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    opened.append(formulas_wb)
    formulas_ws = formulas_wb[name]
    formulas_ws.reset_dimensions()

    def merged() -> Iterator[Sequence[object]]:
        for vals, forms in zip_longest(rows, formulas_ws.iter_rows(values_only=True), fillvalue=()):
            if None in vals or len(forms) > len(vals):
                vals = list(vals) + [None] * (len(forms) - len(vals))
                for i, f in enumerate(forms):
                    if vals[i] is None and f is not None:
                        vals[i] = _formula_text(f)
            yield vals

    return name, merged(), opened


def _csv_rows(
    path: Path, headers: set[str] | None = None, header_row: int = 1, declared: str | None = None
) -> tuple[list[list[str]], str, str]:
    """The file's records, numbered as the loader numbers them; encoding: the source's declared one, else utf-8-sig,
    else cp1256; delimiter sniffed among , ; and tab (default ,). ``headers`` (as the failures name them)
    double-check the sniffed delimiter: if the header row does not hold them all but another delimiter's does, that
    one is taken."""
    raw = path.read_bytes()
    for encoding in dict.fromkeys([declared, "utf-8-sig", "cp1256"]):
        if encoding is None:
            continue
        if encoding == "utf-8" or encoding == "utf8":
            encoding = "utf-8-sig"
        try:
            text = raw.decode(encoding)
            break
        except (UnicodeDecodeError, LookupError):
            continue
    else:  # pragma: no cover - cp1256 maps nearly every byte
        encoding, text = "cp1256 (with replacements)", raw.decode("cp1256", errors="replace")
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rfind("\n")]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    parse = lambda d: _records(text, d)  # noqa: E731
    rows = parse(delimiter)
    if headers and not _holds(rows, headers, header_row):
        for other in (d for d in ",;\t" if d != delimiter):
            candidate = parse(other)
            if _holds(candidate, headers, header_row):
                return candidate, encoding, other
    return rows, encoding, delimiter


MAX_RECORD_LINES = 10  # as flows/extract.py: a record over more lines is a quote left open


def _records(text: str, delimiter: str) -> list[list[str]]:
    """CSV records as the loader numbers them: a quoted value may hold line breaks, but a record that would run over
    more than MAX_RECORD_LINES lines is a quote left open: its first line stands alone (as one cell, the loader
    quarantined it) and the lines after it are records again."""
    lines = text.splitlines(keepends=True)
    out: list[list[str]] = []
    i = 0
    while i < len(lines):
        j = i
        chunk = lines[i]
        while chunk.count('"') % 2 and j + 1 < len(lines) and j - i < MAX_RECORD_LINES:
            j += 1
            chunk += lines[j]
        if chunk.count('"') % 2:  # still open: the loader set this line aside and read on from the next
            out.append([lines[i].rstrip("\r\n")])
            i += 1
            continue
        out.extend(csv.reader(io.StringIO(chunk, newline=""), delimiter=delimiter))
        i = j + 1
    return out


def _holds(rows: list[list[str]], headers: set[str], header_row: int) -> bool:
    if len(rows) < header_row:
        return False
    found = {cell.replace("\ufeff", "").strip() for cell in rows[header_row - 1]}
    return {h.replace("\ufeff", "") for h in headers} <= found


def _quarantine_rows(src: _SourceFile, failures: list[_Failure]) -> tuple[list[list[object]], int]:
    """The held-back rows at their Excel rows, canonical names as header; a column keeps the letter the failures
    name for it (so their cell addresses still point at it), the others fill the free columns."""
    columns: list[str] = []
    for raw in src.quarantined.values():
        columns += [c for c in raw if c not in columns]
    position: dict[str, int] = {}
    for f in failures:
        if f.cell and f.column_name and f.column_name not in position:
            try:
                position[f.column_name] = column_index_from_string(coordinate_from_string(f.cell)[0])
            except ValueError:
                pass
    columns += [c for c in position if c not in columns]
    used = set(position.values())
    free = (i for i in range(1, 16385) if i not in used)
    for c in columns:
        if c not in position:
            position[c] = next(free)
    first = min(src.quarantined) if src.quarantined else 2
    header_row = src.header_row if src.header_row and src.header_row < first else max(first - 1, 1)
    width = max(position.values(), default=0)
    grid: dict[int, list[object]] = {}
    grid[header_row] = [None] * width
    for c in columns:
        grid[header_row][position[c] - 1] = c
    for excel_row, raw in src.quarantined.items():
        line: list[object] = [None] * width
        for c, v in raw.items():
            line[position[c] - 1] = v
        grid[excel_row] = line
    last = max(grid)
    return [grid.get(r, []) for r in range(1, last + 1)], header_row


def _build_data(ws, src: _SourceFile, failures: list[_Failure], notes: list[str]):
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
                rows, _encoding, _delimiter = _csv_rows(path, headers, header_row or 1, src.encoding)
                _write_rows(ws, rows, header_row or 1)
                return ws, header_row or 1
            name, rows, opened = _xlsx_rows(path, sheet)
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
    rows, header_row = _quarantine_rows(src, failures)
    _write_rows(ws, rows, header_row)
    held = len(src.quarantined)
    notes.append(
        f"{problem}: the Data sheet shows only the {held} held-back row(s) stored in the warehouse, at "
        f"their original rows, with the warehouse's column names as the header."
    )
    return ws, header_row


def _mark_failures(ws, failures: list[_Failure]) -> None:
    by_cell: dict[str, list[_Failure]] = defaultdict(list)
    by_row: dict[int, list[_Failure]] = defaultdict(list)
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


def _worst(group: list[_Failure]) -> str:
    return max((f.severity for f in group), key=lambda s: _SEVERITY_RANK.get(s, 0))


def _annotate(cell, group: list[_Failure], fills: dict, fill: bool = True, extend: bool = False) -> None:
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
def _build_issues(ws, failures: list[_Failure], notes: list[str]) -> None:
    ws.append(ISSUE_COLUMNS)
    for cell in ws[1]:
        cell.font = _BOLD
    widths = [len(h) for h in ISSUE_COLUMNS]
    for r, f in enumerate(failures, start=2):
        values = [
            f.record_key,
            f.period,
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
            cell.alignment = _WRAP_TOP if c in (3, 6) else _TOP
            if c == 12:
                cell.number_format = "yyyy-mm-dd hh:mm"
    last = len(failures) + 1
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(ISSUE_COLUMNS))}{last}"
    for i, n in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = _width(n)
    wrap_at = {c: int(_width(widths[c - 1])) - 1 for c in (3, 6)}
    for r, f in enumerate(failures, start=2):  # viewers do not grow rows for wrapped text on their own
        lines = max(_wrapped_lines(text, wrap_at[c]) for c, text in ((3, f.message), (6, f.suggestion)))
        if lines > 1:
            ws.row_dimensions[r].height = 15 * lines
    _print_setup(ws, 1)
    if notes:
        for k, note in enumerate(notes):
            cell = ws.cell(row=last + 2 + k, column=1)
            _set_text(cell, _clean("Note: " + note))
            cell.font = _ITALIC


def _wrapped_lines(text: str | None, width: int) -> int:
    if not text:
        return 1
    return sum(max(1, -(-len(line) // max(width, 1))) for line in text.splitlines())


def _print_setup(ws, title_row: int | None) -> None:
    """Landscape, one page wide, the header repeated on every page (a steward prints or converts it to PDF)."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    if title_row:
        ws.print_title_rows = f"{title_row}:{title_row}"


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


def _arabic(failures: list[_Failure], ws_data, header_row: int | None) -> bool:
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
            if part.startswith("xl/worksheets/") and part.endswith(".xml") and _FORMULA_XML.search(zf.read(part)):
                raise RuntimeError(f"{path.name}: {part} holds a formula; the export refuses to write it")


def _write_workbook(target: Path, src: _SourceFile, failures: list[_Failure]) -> None:
    wb = openpyxl.Workbook()
    issues = wb.active
    issues.title = "Issues"
    data = wb.create_sheet("Data")
    notes: list[str] = []
    if src.status == "failed":
        notes.append("The last load could not read this file: see the file-level failures at the top of the table.")
    data, header_row = _build_data(data, src, failures, notes)
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
                cell.font = _BOLD
        data.freeze_panes = f"A{header_row + 1}"
    _print_setup(data, header_row)
    _mark_failures(data, failures)
    _build_issues(issues, failures, notes)
    if _arabic(failures, data, header_row):
        issues.sheet_view.rightToLeft = True
        data.sheet_view.rightToLeft = True
    # The data sheet carries the source sheet's name and comes first, so a corrected export saved under the
    # agency's file name reads like the original (sheet by name or by position); the Issues sheet opens first.
    if src.sheet and data.title == "Data":
        data.title = src.sheet[:31]
    wb.move_sheet(data, offset=-wb.index(data))
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
    by_file, files = _load(Path(warehouse), agency, file_contains, status)
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

"""Steward workbooks (warehouse/export.py), the warehouse side: the files with failures to export, and for each file
its loaded version (raw archive path, sheet, header row, encoding), its failures as ordered streams (the Issues
order; the Data sheet's order, cell by cell), the aggregates the sheets need before their rows (counts, widths,
flags), and the held-back rows stored in ``quarantine_row`` (read only when the Data sheet needs them: the source
file is gone).

Memory does not grow with the failures: nothing in Python holds a file's failures at once. The warehouse is opened
read-only, once for the whole export; the failures to export are ranked once into a temporary table (record key,
period, Issues rank, Data sheet cell), which DuckDB keeps within MEMORY_LIMIT and spills beyond it to a temporary
folder (encrypted with the warehouse's key, where it has one); each sheet reads them in small batches from one ordered
query, and what the sheets need of all of them (counts, column widths, the Arabic header flag, the sheet names) are
SQL aggregates. The temporary table is seen by that connection alone: the failures are read one query at a time on
it, the held-back rows (which may be read beside them) on a cursor of their own.

Text is compared as Python compares it (code points: DuckDB's binary collation of UTF-8), and trimmed as
``str.strip`` trims (every Unicode white space, spelled out below); a JSON cell that is not a string, and a cell
address, are read by the same Python functions as before (registered as DuckDB functions), so the order and the
values are those of the earlier in-memory export."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string
from openpyxl.utils.exceptions import CellCoordinatesException

from warehouse.store import read_only

SHEET_ROWS = 1_048_576  # a worksheet's last row
BATCH = 2_000  # rows fetched from a cursor at a time
MEMORY_LIMIT = "256MB"  # DuckDB's share while it sorts a file's failures (it spills to a temporary folder beyond)


@dataclass(slots=True)
class Failure:
    """One row of the Issues sheet."""

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


class Mark(NamedTuple):
    """A failure as the Data sheet marks it (fill and comment)."""

    rule: str
    severity: str
    message: str
    suggestion: str | None


@dataclass
class SourceFile:
    file_key: str
    file_hash: str | None = None
    path: str | None = None
    kind: str | None = None
    sheet: str | None = None
    header_row: int | None = None
    status: str | None = None
    encoding: str | None = None  # the source's declared text encoding (CSV), from the file's context


@dataclass
class HeldBack:
    """The held-back rows of the loaded version (``quarantine_row``): their count, first and last Excel row, and
    their cells' names in order of first appearance (read in one pass); ``rows()`` streams them in row order."""

    files: FileFailures
    count: int
    first: int | None
    last: int | None
    columns: list[str]

    def rows(self) -> Iterator[tuple[int, dict]]:
        for excel_row, raw in self.files.reader.stream(_HELD_SQL, self.files.params):
            yield int(excel_row), _json(raw)


def _text(value: object) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def _json(raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def cell_position(address: str) -> tuple[int, int] | None:
    """(row, column) of an A1 address on a worksheet, else None (a range, a bad address, a row past the sheet)."""
    try:
        letters, row = coordinate_from_string(address)
        column = column_index_from_string(letters)
    except (ValueError, TypeError, CellCoordinatesException):
        return None
    return (row, column) if 1 <= row <= SHEET_ROWS else None


# -- the functions DuckDB calls back (the rare values SQL alone would read differently) ------------------------
def _raw_text(raw: str | None, key: str) -> str | None:
    return _text(_json(raw).get(key))


def _cell_index(cell: str | None) -> int | None:
    """A failure's mark on the Data sheet: row * 2**15 + column of its (upper-cased) cell address, else NULL."""
    pos = None if cell is None else cell_position(cell.upper())
    return None if pos is None else pos[0] << 15 | pos[1]


def _column_index(cell: str | None) -> int | None:
    """The column of a cell address as written (the held-back rows keep the column a failure names)."""
    if cell is None:
        return None
    try:
        return column_index_from_string(coordinate_from_string(cell)[0])
    except (ValueError, TypeError, CellCoordinatesException):
        return None


_UDFS = (
    ("dcf_raw_text", _raw_text, ["VARCHAR", "VARCHAR"], "VARCHAR"),
    ("dcf_cell_index", _cell_index, ["VARCHAR"], "BIGINT"),
    ("dcf_column_index", _column_index, ["VARCHAR"], "BIGINT"),
)

#: the characters ``str.strip()`` removes (``str.isspace``), as an RE2 class
_SPACE = r"[\t-\r\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
#: the line boundaries of ``str.splitlines``
_LINE_END = r"[\n\r\x{0b}\x{0c}\x{1c}\x{1d}\x{1e}\x{85}\x{2028}\x{2029}]"
#: Arabic script (warehouse/export_sheets.py ARABIC)
_ARABIC = r"[\x{0600}-\x{06ff}\x{0750}-\x{077f}\x{08a0}-\x{08ff}\x{fb50}-\x{fdff}\x{fe70}-\x{feff}]"


def _strip(expr: str) -> str:
    """``_text(expr)`` in SQL: trimmed as str.strip() trims, NULL when empty."""
    return f"nullif(regexp_replace({expr}, '^{_SPACE}+|{_SPACE}+$', '', 'g'), '')"


def _raw(key: str) -> str:
    """``_text(_json(q.raw_json).get(key))``: a JSON string in SQL, any other value through Python."""
    kind = f"json_type(q.raw_json, '$.{key}')"
    text = _strip(f"json_extract_string(q.raw_json, '$.{key}')")
    return (
        f"CASE WHEN q.raw_json IS NULL OR q.raw_json = '' THEN NULL "
        f"WHEN NOT json_valid(q.raw_json) THEN dcf_raw_text(q.raw_json, '{key}') "
        f"WHEN {kind} IS NULL OR {kind} = 'NULL' THEN NULL "
        f"WHEN {kind} = 'VARCHAR' THEN {text} "
        f"ELSE dcf_raw_text(q.raw_json, '{key}') END"
    )


def _display_len(expr: str) -> str:
    """warehouse/export_sheets.py ``_display_len`` of a text: its longest line, in characters."""
    return (
        f"CASE WHEN {expr} IS NULL THEN 0 WHEN regexp_matches({expr}, '{_LINE_END}') "
        f"THEN list_max(list_transform(regexp_split_to_array({expr}, '{_LINE_END}'), s -> length(s))) "
        f"ELSE length({expr}) END"
    )


_FILTER = """($status = 'all' OR f.status = $status)
  AND ($agency IS NULL OR upper(f.agency_code) = upper($agency))
  AND ($contains IS NULL OR strpos(lower(f.file_key), lower($contains)) > 0)"""

_LOADED_PERIOD = (
    "coalesce(l.fiscal_year_label, CASE WHEN r.entity_name IS NOT NULL "
    "AND regexp_full_match(f.column_name, '[0-9]{4}') THEN f.column_name END)"
)

#: the Issues order: file-level failures first, then by record key, period, message, column, value, row, cell (the
#: failure's row number last: equal failures keep the order in which they were recorded)
_ORDER = """(excel_row IS NOT NULL), coalesce(record_key, ''), coalesce(period, ''), coalesce(message, ''),
    coalesce(nullif(source_column, ''), nullif(column_name, ''), ''), coalesce(value, ''), coalesce(excel_row, 0),
    coalesce(cell, ''), fid"""

#: the failures to export, with the record key and period of their rows, their rank in their file's Issues order
#: (``n``) and the cell they mark on the Data sheet (``mark_row``, ``mark_col``; column 0: the whole row), kept in a
#: temporary table (DuckDB's: in memory up to its limit, then in its temporary files) that each file's queries read
_FAILING_SQL = f"""
CREATE TEMP TABLE dcf_failing AS
WITH failing AS (
SELECT f.rowid AS fid, f.file_key, f.agency_code, coalesce(f.sheet, '') AS sheet, f.excel_row, {_strip("f.cell")} AS cell,
       f.column_name, f.source_column, f.value, f.rule, f.severity, f.message, {_strip("f.suggestion")} AS suggestion,
       f.status, f.first_seen_at,
       coalesce({_raw("program_code")}, {_strip("coalesce(l.program_code, p.program_code, r.entity_name)")}) AS record_key,
       coalesce({_raw("fiscal_year")}, {_strip(_LOADED_PERIOD)}) AS period
FROM audit_validation_failure f
LEFT JOIN quarantine_row q
       ON q.file_key = f.file_key AND q.sheet = f.sheet AND q.excel_row = f.excel_row AND q.file_hash = f.file_hash
LEFT JOIN fact_funding_line l
       ON l.file_key = f.file_key AND l.sheet = f.sheet AND l.excel_row = f.excel_row AND l.file_hash = f.file_hash
LEFT JOIN dim_program p
       ON p.file_key = f.file_key AND p.sheet = f.sheet AND p.excel_row = f.excel_row AND p.file_hash = f.file_hash
LEFT JOIN (SELECT DISTINCT file_key, sheet, excel_row, file_hash, entity_name FROM ref_series_value) r
       ON r.file_key = f.file_key AND r.sheet = f.sheet AND r.excel_row = f.excel_row AND r.file_hash = f.file_hash
WHERE {_FILTER}
), placed AS (
SELECT *, CASE WHEN cell IS NOT NULL THEN dcf_cell_index(cell) END AS pos FROM failing
)
SELECT * EXCLUDE (pos),
       row_number() OVER (PARTITION BY file_key ORDER BY {_ORDER}) AS n,
       CASE WHEN cell IS NOT NULL THEN pos >> 15 WHEN excel_row BETWEEN 1 AND {SHEET_ROWS} THEN excel_row END AS mark_row,
       CASE WHEN cell IS NOT NULL THEN pos & 32767 ELSE 0 END AS mark_col
FROM placed
ORDER BY file_key, n
"""

#: per file: what the sheets need before their first row (counts, flags, the longest value of each Issues column)
_SUMMARY_SQL = f"""
SELECT file_key, count(*), bool_or(status = 'resolved'),
       coalesce(bool_or(regexp_matches(source_column, '{_ARABIC}')), false),
       arg_min(agency_code, n), arg_min(sheet, n) FILTER (WHERE sheet <> ''), arg_min(sheet, fid), list(DISTINCT rule),
       max({_display_len("record_key")}), max({_display_len("period")}), max({_display_len("message")}),
       max({_display_len("coalesce(nullif(source_column, ''), column_name)")}), max({_display_len("value")}),
       max({_display_len("suggestion")}), max(length(excel_row::VARCHAR)), max({_display_len("cell")}),
       max({_display_len("rule")}), max({_display_len("severity")}), max({_display_len("status")}),
       max(CASE WHEN first_seen_at IS NULL THEN 0
                WHEN hour(first_seen_at) <> 0 OR minute(first_seen_at) <> 0 OR second(first_seen_at) <> 0 THEN 19
                ELSE 10 END)
FROM dcf_failing GROUP BY file_key ORDER BY file_key
"""

_ISSUE_FIELDS = """file_key, agency_code, sheet, excel_row, cell, column_name, source_column, value, rule, severity,
    message, suggestion, status, first_seen_at, record_key, period"""

_ISSUES_SQL = f"SELECT {_ISSUE_FIELDS} FROM dcf_failing WHERE file_key = $key AND n <= $limit ORDER BY n"

#: the Data sheet's order: by row; in a row the cells in the order of their first failure in the Issues order, then
#: the failures that name a row but no cell (column 0); in a cell the Issues order
_MARKS_SQL = """
SELECT mark_row, mark_col, rule, severity, message, suggestion FROM (
    SELECT *, min(n) OVER (PARTITION BY mark_row, mark_col) AS first_n
    FROM dcf_failing WHERE file_key = $key AND mark_row IS NOT NULL
) ORDER BY mark_row, mark_col = 0, first_n, n
"""

_SOURCE_COLUMNS_SQL = """
SELECT DISTINCT source_column FROM dcf_failing
WHERE file_key = $key AND source_column IS NOT NULL AND source_column <> ''
"""

#: the column each failing field keeps on a Data sheet rebuilt from the held-back rows: the column of its first
#: failure (Issues order) whose cell names one
_POSITIONS_SQL = """
SELECT column_name, arg_min(ci, n) FROM (
    SELECT column_name, dcf_column_index(cell) AS ci, n FROM dcf_failing
    WHERE file_key = $key AND cell IS NOT NULL AND column_name IS NOT NULL AND column_name <> ''
) WHERE ci IS NOT NULL GROUP BY column_name ORDER BY min(n)
"""

#: the held-back rows of the loaded version, one per Excel row (the last one stored, where a multi-sheet file holds
#: two on one row number)
_HELD_SQL = """
SELECT excel_row, raw_json FROM (
    SELECT q.excel_row, q.raw_json, row_number() OVER (PARTITION BY q.excel_row ORDER BY q.rowid DESC) AS k
    FROM quarantine_row q JOIN audit_source_file a
      ON a.is_current AND a.file_key = q.file_key AND a.file_hash = q.file_hash
    WHERE q.file_key = $key
) WHERE k = 1 ORDER BY excel_row
"""

_SOURCE_SQL = """
SELECT file_key, file_hash, archive_path, kind, sheet, header_row, status, context_json FROM audit_source_file
WHERE is_current AND file_key = $key
"""


class FailureReader:
    """The failures of a warehouse, read through one read-only connection (``open_reader``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        # a cursor starts in DuckDB's default catalog: it is told to use the warehouse's (an encrypted warehouse is
        # attached under an alias, warehouse/connect.py)
        (catalog,) = con.execute("SELECT current_database()").fetchone() or ("memory",)
        self._use = 'USE "{}"'.format(str(catalog).replace('"', '""'))

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self.con.cursor()
        cur.execute(self._use)
        return cur

    def stream(self, sql: str, params: dict[str, Any]) -> Iterator[tuple]:
        """The rows of a query of the warehouse, fetched in batches on a cursor of its own (it may run beside a
        stream of the failures)."""
        cur = self._cursor()
        try:
            cur.execute(sql, params)
            while batch := cur.fetchmany(BATCH):
                yield from batch
        finally:
            cur.close()

    def failing(self, sql: str, params: dict[str, Any]) -> Iterator[tuple]:
        """The rows of a query of the failures (the temporary table: only the connection that made it sees it),
        fetched in batches. One at a time: a query on this connection ends the stream before it."""
        result = self.con.execute(sql, params)
        while batch := result.fetchmany(BATCH):
            yield from batch

    def one(self, sql: str, params: dict[str, Any]) -> tuple | None:
        cur = self._cursor()
        try:
            return cur.execute(sql, params).fetchone()
        finally:
            cur.close()

    def files(self) -> list[FileFailures]:
        """One entry per file with failures matching the filters, by file key."""
        found = [FileFailures(self, row) for row in self.con.execute(_SUMMARY_SQL).fetchall()]
        return sorted(found, key=lambda f: f.file_key)


class FileFailures:
    """One file's failures: aggregates (read with the list of files) and ordered streams."""

    def __init__(self, reader: FailureReader, summary: tuple) -> None:
        self.reader = reader
        self.file_key: str = summary[0]
        self.params = {"key": self.file_key}
        self.count = int(summary[1])
        self.any_resolved = bool(summary[2])
        self.arabic_columns = bool(summary[3])  # a failure names a column in Arabic script
        self.agency_code: str = summary[4]  # of the first failure (Issues order)
        self.first_sheet: str | None = summary[5] or None  # the first sheet a failure names (Issues order)
        self._scan_sheet: str | None = summary[6] or None  # the sheet of the first failure recorded
        self._rules: list[str] = summary[7] or []
        self._widths: list[int] = [int(v or 0) for v in summary[8:]]

    def issue_widths(self, fixes: dict[str, str]) -> list[int]:
        """The display length of the longest value of each Issues column (``fixes``: the rule's plain sentence)."""
        fix = max((_longest_line(fixes.get(r, "See the message.")) for r in self._rules), default=0)
        record, period, message, field, value, suggestion, row, cell, rule, severity, status, seen = self._widths
        return [record, period, fix, message, field, value, suggestion, row, cell, rule, severity, status, seen]

    def source_columns(self) -> set[str]:
        """The source's column names the failures give (the header a CSV's delimiter is checked against)."""
        return {c.strip() for (c,) in self.reader.failing(_SOURCE_COLUMNS_SQL, self.params)}

    def issues(self, limit: int | None = None) -> Iterator[Failure]:
        """The failures in the Issues order (at most ``limit``)."""
        params = {**self.params, "limit": limit if limit is not None else self.count}
        for r in self.reader.failing(_ISSUES_SQL, params):
            yield Failure(*r)

    def marks(self) -> Iterator[tuple[int, int, Mark]]:
        """(row, column, mark) for each failure the Data sheet marks, in its order (column 0: the whole row)."""
        for row, column, *mark in self.reader.failing(_MARKS_SQL, self.params):
            yield int(row), int(column), Mark(*mark)

    def positions(self) -> dict[str, int]:
        """Field -> column number the failures' cell addresses give it (the first failure that names one)."""
        return {name: int(col) for name, col in self.reader.failing(_POSITIONS_SQL, self.params)}

    def held_back(self) -> HeldBack:
        """The held-back rows of the loaded version: one pass for their count, rows and cell names."""
        count, first, last, columns = 0, None, None, {}
        for excel_row, raw in self.reader.stream(_HELD_SQL, self.params):
            count += 1
            first = excel_row if first is None else first
            last = excel_row
            columns.update(dict.fromkeys(_json(raw)))
        return HeldBack(self, count, first, last, list(columns))

    def source(self) -> SourceFile:
        """The file's loaded version (its raw archive copy, sheet, header row, encoding)."""
        found = self.reader.one(_SOURCE_SQL, self.params)
        if found is None:
            return SourceFile(self.file_key)
        file_key, file_hash, path, kind, sheet, header_row, status, context = found
        ctx = _json(context)
        per_sheet = ctx.get("header_rows") or {}
        if not sheet and per_sheet:  # a multi-sheet reference workbook: the sheet of its first failure
            sheet = self._scan_sheet
            header_row = per_sheet.get(sheet, header_row)
        # the Data sheet copies the bytes that were loaded, from the raw archive: never whatever the inbox path (or a
        # link planted there) holds now
        return SourceFile(file_key, file_hash, path, kind, sheet, header_row, status, ctx.get("encoding"))


def _longest_line(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


@contextmanager
def open_reader(warehouse: Path, agency: str | None, file_contains: str | None, status: str) -> Iterator[FailureReader]:
    """The failures of ``warehouse`` matching the filters, through one read-only connection whose sorts spill to a
    temporary folder beyond MEMORY_LIMIT."""
    with tempfile.TemporaryDirectory(prefix="dcf-export-") as spill, read_only(Path(warehouse)) as con:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute("SET temp_directory = '{}'".format(spill.replace("'", "''")))
        for name, fn, args, returns in _UDFS:
            # "special": the functions answer NULL themselves (DuckDB refuses a NULL from a "default" one)
            con.create_function(name, fn, args, returns, null_handling="special", side_effects=False)  # type: ignore[call-overload]
        con.execute(_FAILING_SQL, {"status": status, "agency": agency or None, "contains": file_contains or None})
        yield FailureReader(con)

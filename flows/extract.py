"""Read one agency file into a frame of canonical columns, keeping the row number the steward sees.

I/O only: which rows are data, totals or blank, and what the cells mean, is decided in ``transforms/``.
Every cell is read as text (numbers and dates are parsed by the normalisers, with an error policy), through
fastexcel (calamine + Arrow) for workbooks and pyarrow's CSV reader for CSV files.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import fastexcel
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from flows.limits import ENV, LimitExceeded, Limits
from flows.preflight import (
    UnreadableContainer,
    check_size,
    check_workbook,
    count_records_and_lines,
    count_text_records,
    open_regular,
    read_bounded,
    shown,
)
from schemas.sources import FileSpec, RecordsFileSpec
from transforms.text import column_letter, normalize_header

EXCEL_ROW = "excel_row"
HEAD_BYTES = 16 << 20  # a CSV's header is looked for in its first lines, read from at most this many bytes
MAX_LISTED = 8  # names listed in a message (sheets); the rest are counted
MAX_RECORD_LINES = 10  # a CSV record read over more lines than this is taken for a quote left open (see read_csv)
MAX_SHOWN = 200  # characters of a malformed CSV record quoted in its message
MAX_KEPT = 2_000  # characters of a malformed CSV record kept as its failure's value
MAX_CUT_DEPTH = 100  # quotes left open inside the lines read again after another one (then the file fails)
_LINE_END = re.compile(r"\r\n|\r|\n")  # line ends as pyarrow and the csv module split lines


class FileReadError(Exception):
    """A file that cannot be read as its source config says; the message is for a steward."""


@dataclass
class MalformedRecord:
    """A CSV record set aside by the reader: its number of fields is not the header's, or a quote left open joined
    it with the lines after it. It becomes a quarantined row (rule ``record_malformed``) with ``message``."""

    excel_row: int  # its row number, as the file's well-formed records are numbered (see read_csv)
    line: int  # the physical line on which it starts (1-based, as a text editor counts)
    last_line: int  # ... and on which it ends (a quoted value may run over several lines)
    text: str  # the raw text of the record, at most MAX_KEPT characters
    fields: int  # how many fields it has
    expected: int  # how many the header has
    open_until: int | None = None  # a quote left open joined lines line..open_until; only this line is held back
    message: str = ""


@dataclass
class Extracted:
    frame: pd.DataFrame  # canonical columns (text) + EXCEL_ROW
    sheet: str
    header_row: int  # Excel row number of the header (1-based)
    source_columns: dict[str, str] = field(default_factory=dict)  # canonical -> header text in the file
    column_letters: dict[str, str] = field(default_factory=dict)  # canonical -> Excel column letter
    malformed: list[MalformedRecord] = field(default_factory=list)  # CSV records set aside, not in ``frame``


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open_regular(path) as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _match_header(cells: Sequence[object], spec: FileSpec | RecordsFileSpec) -> dict[str, int]:
    """canonical column -> position in ``cells`` for every alias found."""
    wanted = {normalize_header(a): canon for canon, aliases in spec.header_aliases.items() for a in aliases}
    found: dict[str, int] = {}
    for pos, cell in enumerate(cells):
        canon = wanted.get(normalize_header(cell))
        if canon is not None and canon not in found:
            found[canon] = pos
    return found


def _locate_header(
    rows: Sequence[Sequence[object]], spec: FileSpec | RecordsFileSpec, where: str
) -> tuple[int, dict[str, int]]:
    """Index (0-based, in ``rows``) of the header row and its column matches."""
    required = spec.required_columns
    if spec.header.row is not None:
        idx = spec.header.row - 1
        if idx >= len(rows):
            raise FileReadError(f"{where}: the header should be on row {spec.header.row}, but the sheet ends before it")
        candidates = [idx]
    else:
        candidates = list(range(len(rows)))
    best: tuple[int, int, dict[str, int]] | None = None
    for idx in candidates:
        found = _match_header(rows[idx], spec)
        if all(c in found for c in required):
            return idx, found
        if best is None or len(found) > best[1]:
            best = (idx, len(found), found)
    idx, _, found = best if best else (0, 0, {})
    missing = [c for c in required if c not in found]
    looked = "; ".join(f"{c}: {' / '.join(spec.header_aliases[c])}" for c in missing)
    scope = f"row {spec.header.row}" if spec.header.row else f"the first {len(rows)} rows"
    raise FileReadError(f"{where}: no header found in {scope}: missing column(s) {looked}")


def listed(names: list[str], limit: int = MAX_LISTED) -> str:
    """At most ``limit`` names (each cut to 30 characters), then how many more: a workbook of 3,000 sheets gives
    a one-line message, not 20,000 characters."""
    shown_names = [shown(n) if len(n) <= 30 else shown(n[:29]) + "…" for n in names[:limit]]
    more = f" and {len(names) - limit:,} more" if len(names) > limit else ""
    return ", ".join(shown_names) + more


def _resolve_sheet(reader: fastexcel.ExcelReader, sheet: str | int, path: Path) -> str:
    names = reader.sheet_names
    if isinstance(sheet, int):
        if sheet >= len(names):
            raise FileReadError(f"{shown(path)}: has {len(names)} sheet(s), the source config asks for sheet #{sheet}")
        return names[sheet]
    if sheet in names:
        return sheet
    loose = {normalize_header(n): n for n in names}
    if normalize_header(sheet) in loose:
        return loose[normalize_header(sheet)]
    raise FileReadError(f"{shown(path)}: no sheet named '{sheet}'; its {len(names):,} sheet(s): {listed(names)}")


def _blank_to_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    empty = pc.equal(pc.utf8_trim_whitespace(column), "")
    return pc.if_else(pc.fill_null(empty, False), pa.scalar(None, column.type), column)


def _to_text_frame(table: pa.Table, names: dict[str, str]) -> pd.DataFrame:
    """Arrow table -> pandas with the canonical names; cells stay text (Arrow-backed strings), and empty or
    whitespace-only cells become null, so every later stage has one notion of "empty"."""
    table = pa.table([_blank_to_null(c) for c in table.columns], names=[names[c] for c in table.column_names])
    return table.to_pandas(
        types_mapper=lambda t: (
            pd.StringDtype("pyarrow") if pa.types.is_string(t) or pa.types.is_large_string(t) else None
        )
    )


def _reason(exc: Exception, path: Path) -> str:
    """A library's error in one short line a steward can read: no server paths, no stack of causes."""
    first = (str(exc).strip().splitlines() or [""])[0].replace(str(path), path.name)
    return shown(f"{type(exc).__name__}: {first[:200]}")


def _open_workbook(path: Path, limits: Limits) -> fastexcel.ExcelReader:
    """calamine's reader over the file's bytes, once its zip directory and every sheet's extent are within the
    limits. The bytes checked are the bytes read (no second open by name, which also serves names that are not
    UTF-8 and cannot cross into Rust as a path)."""
    try:
        data = read_bounded(path, limits)
        check_workbook(data, shown(path), limits)
    except UnreadableContainer as exc:
        raise FileReadError(f"{shown(path)}: not a readable Excel workbook ({exc})") from None
    except FileNotFoundError:
        raise FileReadError(f"{shown(path)}: file disappeared before it could be read") from None
    except OSError as exc:
        raise FileReadError(f"{shown(path)}: cannot open ({exc.strerror or exc})") from None
    try:
        return fastexcel.read_excel(data)
    except Exception as exc:  # noqa: BLE001 - calamine raises many kinds; all mean "not a readable workbook"
        plain = _why_unreadable(data)
        raise FileReadError(
            f"{shown(path)}: {plain or f'not a readable Excel workbook ({_reason(exc, path)})'}"
        ) from None


_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")  # the stream Office puts in an encrypted xlsx/xlsb
_ASK_UNPROTECTED = "ask the agency for a copy saved without a password"


def _why_unreadable(data: bytes) -> str | None:
    """What a steward can act on when calamine cannot open a file whose cause is plain from its bytes."""
    if not data:
        return "the file is empty (0 bytes): ask the agency to send it again"
    if data.startswith(_OLE2_MAGIC):
        if _ENCRYPTION_INFO in data:
            return f"the workbook is password-protected (encrypted): {_ASK_UNPROTECTED}"
        return (
            "an old-format Office file (OLE2, e.g. .xls) that cannot be read; if it is password-protected, "
            f"{_ASK_UNPROTECTED}, otherwise ask for it saved as .xlsx"
        )
    if data.startswith(b"PK") and _encrypted_opendocument(data):
        return f"the spreadsheet (OpenDocument) is password-protected: {_ASK_UNPROTECTED}"
    return None


def _encrypted_opendocument(data: bytes) -> bool:
    """An OpenDocument file whose manifest declares encrypted parts (the manifest is read at most 1 MiB deep)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf, zf.open("META-INF/manifest.xml") as fh:
            return b"encryption-data" in fh.read(1 << 20)
    except Exception:  # noqa: BLE001 - not an OpenDocument zip: no claim either way
        return False


def check_cell_lengths(
    table: pa.Table,
    where: str,
    limits: Limits,
    first_row: int,
    headers: dict[str, str],
    rows: np.ndarray | None = None,
) -> None:
    """Refuse a sheet or CSV with a text cell over ``max_cell_chars`` (Excel's own limit by default), naming the
    first such cell; vectorised per column. ``first_row`` is the Excel row of the table's first row, or ``rows``
    gives every row's number (a CSV whose malformed records were set aside)."""
    for name in table.column_names:
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) or column.null_count == len(
            column
        ):
            continue
        lengths = pc.utf8_length(column)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limits.max_cell_chars:
            at = pc.index(pc.fill_null(pc.greater(lengths, limits.max_cell_chars), False), True).as_py()
            row = first_row + at if rows is None else int(rows[at])
            raise LimitExceeded(
                f"{where} row {row}, column '{shown(headers.get(name, name))[:60]}': a cell of {longest:,} "
                f"characters is over the limit of {limits.max_cell_chars:,} ({ENV['max_cell_chars']}); the file was "
                f"not loaded. If it is genuine, raise {ENV['max_cell_chars']} and re-run."
            )


def read_workbook(path: Path, spec: FileSpec | RecordsFileSpec, limits: Limits | None = None) -> Extracted:
    limits = limits or Limits.from_env()
    reader = _open_workbook(path, limits)
    sheet = _resolve_sheet(reader, spec.sheet, path)
    where = f"{shown(path)} [{shown(sheet)}]"
    try:  # one pass: every cell as text, from Excel row 1, so positions are Excel rows and columns
        sheet_data = reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string", whitespace_as_null=True)
        abs_index = [c.absolute_index for c in sheet_data.available_columns()]
        table = sheet_data.to_arrow()
    except Exception as exc:  # noqa: BLE001
        raise FileReadError(f"{where}: cannot read the sheet ({_reason(exc, path)})") from None
    scan_rows = spec.header.row if spec.header.row else spec.header.max_scan_rows
    head = table.slice(0, scan_rows)
    rows = [list(r) for r in zip(*(col.to_pylist() for col in head.columns))] if head.num_columns else []
    h, found = _locate_header(rows, spec, where)
    header_cells = rows[h]
    body = table.slice(h + 1)
    picked = {f"__c{pos}": canon for canon, pos in found.items()}
    body = pa.table([body.column(pos) for pos in found.values()], names=list(picked))
    check_cell_lengths(body, where, limits, h + 2, {k: str(header_cells[found[v]]) for k, v in picked.items()})
    frame = _to_text_frame(body, picked)
    frame[EXCEL_ROW] = pd.RangeIndex(h + 2, h + 2 + len(frame)).to_numpy(dtype="int32")
    return Extracted(
        frame=frame,
        sheet=sheet,
        header_row=h + 1,
        source_columns={canon: str(header_cells[pos]).strip() for canon, pos in found.items()},
        column_letters={canon: column_letter(abs_index[pos]) for canon, pos in found.items()},
    )


def _csv_head(path: Path, spec: FileSpec | RecordsFileSpec, limits: Limits) -> list[list[str]]:
    """The first lines of a CSV (where its header is looked for), parsed from at most HEAD_BYTES bytes."""
    where = shown(path)
    n = spec.header.row or spec.header.max_scan_rows
    try:
        with open_regular(path) as fh:
            check_size(os.fstat(fh.fileno()).st_size, where, limits)
            raw = fh.read(HEAD_BYTES)
        text = codecs.getincrementaldecoder(spec.encoding)().decode(raw, final=len(raw) < HEAD_BYTES)
        return [row for _, row in zip(range(n), csv.reader(io.StringIO(text, newline=""), delimiter=spec.delimiter))]
    except UnicodeDecodeError as exc:
        raise FileReadError(f"{where}: not valid {spec.encoding} text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise _csv_error(exc, path, limits) from None
    except FileNotFoundError:
        raise FileReadError(f"{where}: file disappeared before it could be read") from None
    except OSError as exc:
        raise FileReadError(f"{where}: cannot open ({exc.strerror or exc})") from None


def _csv_error(exc: csv.Error, path: Path, limits: Limits) -> Exception:
    """The csv module's error as the steward's: a field over its limit is a cell over ours (flows/preflight.py lifts
    the module's own 131,072 characters, so that a quote left open is counted, not refused)."""
    if "field limit" in str(exc):
        return LimitExceeded(
            f"{shown(path)}: a cell is longer than {csv.field_size_limit():,} characters, over the limit "
            f"of {limits.max_cell_chars:,} ({ENV['max_cell_chars']}); the file was not loaded. If it is "
            f"genuine, raise {ENV['max_cell_chars']} and re-run."
        )
    return FileReadError(f"{shown(path)}: cannot parse as CSV ({_reason(exc, path)})")


def read_csv(path: Path, spec: FileSpec | RecordsFileSpec, limits: Limits | None = None) -> Extracted:
    """A CSV file's records below its header, every cell as text, through pyarrow's reader.

    A record whose number of fields is not the header's (too few, too many, a stray line break that cut one record
    in two) does not fail the file: pyarrow hands it to ``invalid_row_handler``, it is set aside as a
    :class:`MalformedRecord` with its line number and raw text, and the others are read. The file is read serially:
    only then does pyarrow know a record's number (and on two cores it is also the faster way).

    Rows are numbered as the file's records are (Excel's rows when it opens the CSV): record *n* is row *n*, the
    physical line on which it starts unless an earlier record holds a line break inside a quoted value. A quote left
    open joins every line up to the next quote into one record, perhaps the rest of the file: a record read over more
    than MAX_RECORD_LINES lines, whatever its number of fields, is taken for one. Its first line is set aside and the
    lines after it are read again on their own (their rows numbered by line), so one stray quote costs one line, not
    the thousands after it. A record over two to MAX_RECORD_LINES lines with the wrong number of fields is set aside
    whole (a quoted value with a line break is legitimate CSV; its pieces are not records).

    Conservation: the records pyarrow returns plus those it set aside must be the records the file holds, counted
    apart (flows/preflight.py); otherwise the file fails, so that no row is lost unseen.
    """
    limits = limits or Limits.from_env()
    where = shown(path)
    head = _csv_head(path, spec, limits)
    if not head:
        raise FileReadError(f"{where}: the file is empty")
    h, found = _locate_header(head, spec, where)
    header_cells = head[h]
    if len(header_cells) > limits.max_columns:
        raise limits.exceeded(where, "the header's number of columns", len(header_cells), "max_columns")
    longest = max(len(c) for c in header_cells)
    if longest > limits.max_cell_chars:
        raise LimitExceeded(
            f"{where} row {h + 1}: a header cell of {longest:,} characters is over the limit of "
            f"{limits.max_cell_chars:,} ({ENV['max_cell_chars']}); the file was not loaded. If it is genuine, raise "
            f"{ENV['max_cell_chars']} and re-run."
        )
    try:
        records, lines = count_records_and_lines(path, spec.encoding, spec.delimiter)
    except csv.Error as exc:
        raise _csv_error(exc, path, limits) from None
    if records - h - 1 > limits.max_rows:
        raise limits.exceeded(where, "the number of records below the header", records - h - 1, "max_rows")
    multiline = lines != records  # some record runs over several lines: every column is read, to tell its lines
    reader = _CsvReader(
        where, spec.delimiter, len(header_cells), found, functools.cache(lambda: _file_lines(path, spec))
    )
    try:
        table, bad = reader.parse(path, spec.encoding, skip=h, header=1, every_column=multiline)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise FileReadError(f"{where}: cannot parse as CSV ({_reason(exc, path)})") from None
    # conservation: every record the file holds is a row (well-formed or set aside), or the file fails
    if table.num_rows + len(bad) != records - h - 1:
        raise FileReadError(
            f"{where}: the file holds {records - h - 1:,} record(s) below the header but the CSV reader returned "
            f"{table.num_rows + len(bad):,}; the file was not loaded so that no row is lost unseen"
            f"{' (it contains NUL bytes)' if _has_nul(path) else ''}. Re-export it as plain {spec.encoding} text."
        )
    head_breaks = sum(_text_breaks(c) for row in head[: h + 1] for c in row) if multiline else 0
    tables, numbers, malformed = reader.place(table, bad, h + 2, h + 2, h + 2 + head_breaks, multiline)
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    rows = np.concatenate(numbers)
    if len(tables) > 1:  # lines read again after a quote left open: back in file order
        order = np.argsort(rows, kind="stable")
        table, rows = table.take(pa.array(order)), rows[order]
    names = {f"__c{pos}": canon for canon, pos in sorted(found.items(), key=lambda item: item[1])}
    table = table.select(list(names))
    check_cell_lengths(table, where, limits, h + 2, {k: header_cells[found[v]] for k, v in names.items()}, rows)
    frame = _to_text_frame(table, names)
    frame[EXCEL_ROW] = rows.astype("int32")
    return Extracted(
        frame=frame,
        sheet="",
        header_row=h + 1,
        source_columns={canon: header_cells[pos].strip() for canon, pos in found.items()},
        column_letters={canon: column_letter(pos) for canon, pos in found.items()},
        malformed=_explained(sorted(malformed, key=lambda m: m.excel_row)),
    )


def _file_lines(path: Path, spec: FileSpec | RecordsFileSpec) -> list[str]:
    """The file's physical lines (only read when a record must be cut into its lines)."""
    with open_regular(path) as fh:
        return _LINE_END.split(fh.read().decode(spec.encoding, errors="replace"))


def _line_breaks(column: pa.ChunkedArray, delimiter: str) -> tuple[np.ndarray, np.ndarray]:
    """How many line breaks each value holds (a null holds none), and whether a value holding one also holds the
    delimiter; vectorised (values with a line break, usually few, are looked at closer)."""
    breaks = np.zeros(len(column), dtype=np.int64)
    holds = np.zeros(len(column), dtype=bool)
    found = pc.or_(*(pc.not_equal(pc.find_substring(column, end), -1) for end in ("\n", "\r")))
    at = np.flatnonzero(np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False)))
    if len(at):
        values = column.take(pa.array(at))
        breaks[at] = np.asarray(pc.count_substring_regex(values, r"\r\n|\r|\n").to_numpy(zero_copy_only=False))
        holds[at] = np.asarray(pc.match_substring(values, delimiter).to_numpy(zero_copy_only=False))
    return breaks, holds


def _text_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


@dataclass
class _CsvReader:
    """What reading one CSV file's records needs, beyond the bytes: for :func:`read_csv`."""

    where: str
    delimiter: str
    width: int  # the header's number of fields
    found: dict[str, int]  # canonical column -> position
    file_lines: Callable[[], list[str]]  # the lines read (the file's, or those after a quote left open)
    line_offset: int = 1  # the file's line number of file_lines()[0]

    def parse(
        self, source: Path | bytes, encoding: str, skip: int = 0, header: int = 0, every_column: bool = True
    ) -> tuple[pa.Table, list[pacsv.InvalidRow]]:
        """pyarrow's reader over ``source``, serially, every cell as text (an empty cell is null); records whose number
        of fields is not the header's come back in the list, not in the table. A record longer than pyarrow's block
        (a quote left open) is read again with one block for the whole input."""
        names = [f"__c{i}" for i in range(self.width)]
        include = names if every_column else [f"__c{pos}" for pos in sorted(self.found.values())]
        bad: list[pacsv.InvalidRow] = []

        def set_aside(row: pacsv.InvalidRow) -> str:
            bad.append(row)
            return "skip"

        def read(block_size: int | None) -> pa.Table:
            bad.clear()
            sizing = {} if block_size is None else {"block_size": block_size}
            options = {
                "read_options": pacsv.ReadOptions(
                    encoding=encoding,
                    skip_rows=skip,
                    column_names=names,
                    skip_rows_after_names=header,
                    use_threads=False,
                    **sizing,
                ),
                # empty lines stay rows (blank rows, counted), so row numbers are the records Excel would show
                "parse_options": pacsv.ParseOptions(
                    delimiter=self.delimiter,
                    newlines_in_values=True,
                    ignore_empty_lines=False,
                    invalid_row_handler=set_aside,
                ),
                "convert_options": pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    include_columns=include,
                    null_values=[""],  # only an empty cell is empty: "n/a" is a value to report, "NA" is Namibia
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            }
            if isinstance(source, bytes):
                return pacsv.read_csv(io.BytesIO(source), **options)
            with open_regular(source) as fh:
                return pacsv.read_csv(fh, **options)

        try:
            table = read(None)
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            size = len(source) if isinstance(source, bytes) else os.stat(source).st_size
            table = read(min(3 * size + 1, 2**31 - 1))  # decoded to UTF-8, a byte may take up to 3
        if any(row.number is None for row in bad):  # pragma: no cover - pyarrow numbers rows when reading serially
            raise FileReadError(f"{self.where}: the CSV reader did not number a malformed record")
        return table, bad

    def place(
        self,
        table: pa.Table,
        bad: list[pacsv.InvalidRow],
        first_read: int,
        first_row: int,
        first_line: int,
        multiline: bool,
        depth: int = 0,
    ) -> tuple[list[pa.Table], list[np.ndarray], list[MalformedRecord]]:
        """Row numbers of the well-formed records and the malformed ones, in one pass of pyarrow's output: record
        ``first_read`` (pyarrow's number of the first record) is row ``first_row``, starting on ``first_line``.
        Vectorised over the well-formed records; Python per malformed one.

        When some record runs over several lines (``multiline``), each record's lines are counted from its values.
        A well-formed record over several lines whose multi-line value also holds the delimiter is set aside too:
        that is what a quote left open and closed a few lines on looks like (the lines in between, whole records,
        became one value), and a legitimate value seldom holds both."""
        total = table.num_rows + len(bad)
        bad = sorted(bad, key=lambda row: row.number)
        at_bad = np.array([row.number for row in bad], dtype=np.int64) - first_read
        at_good = np.setdiff1d(np.arange(total, dtype=np.int64), at_bad, assume_unique=True)  # pyarrow keeps order
        spans = np.ones(total, dtype=np.int64)  # lines per record
        joined = np.zeros(total, dtype=bool)  # well-formed, but a value holds line breaks and the delimiter
        if multiline and total:
            holds = np.zeros(table.num_rows, dtype=bool)
            for column in table.columns:
                breaks, delimited = _line_breaks(column, self.delimiter)
                spans[at_good] += breaks
                holds |= delimited
            joined[at_good] = holds
            spans[at_bad] += np.array([_text_breaks(row.text) for row in bad], dtype=np.int64)
        starts = first_line + np.cumsum(spans) - spans
        cut = spans > MAX_RECORD_LINES  # a quote left open: the record's lines are read again on their own
        extra = np.where(cut, spans - 1, 0)
        numbers = first_row + np.arange(total, dtype=np.int64) + np.cumsum(extra) - extra
        keep = ~(cut | joined)[at_good]
        tables = [table if keep.all() else table.filter(pa.array(keep))]
        kept = [numbers[at_good][keep]]
        malformed = []
        text_of: dict[int, str] = {}
        for row, i in zip(bad, at_bad.tolist()):
            text_of[i] = row.text
            if not cut[i]:
                last = int(starts[i] + spans[i] - 1)
                malformed.append(self.record(row.text, int(numbers[i]), int(starts[i]), last, row.actual_columns))
        for i in np.flatnonzero(joined & ~cut).tolist():  # set aside whole, its text from the file
            start, last = int(starts[i]), int(starts[i] + spans[i] - 1)
            malformed.append(self.record(self.lines(start, last), int(numbers[i]), start, last, self.width))
        for i in np.flatnonzero(cut).tolist():
            start, last = int(starts[i]), int(starts[i] + spans[i] - 1)
            # read as well-formed, but over too many lines: its text from the file
            text = text_of[i] if i in text_of else self.lines(start, last)
            first, rest = _LINE_END.split(text, maxsplit=1)
            fields = len(next(csv.reader([first], delimiter=self.delimiter), []))
            malformed.append(self.record(first, int(numbers[i]), start, start, fields, open_until=last))
            more = self.read_lines(rest, int(numbers[i]) + 1, start + 1, depth + 1)
            tables += more[0]
            kept += more[1]
            malformed += more[2]
        return tables, kept, malformed

    def lines(self, first: int, last: int) -> str:
        """The file's lines ``first`` to ``last`` (1-based, inclusive), as they are written."""
        return "\n".join(self.file_lines()[first - self.line_offset : last - self.line_offset + 1])

    def read_lines(
        self, text: str, first_row: int, first_line: int, depth: int
    ) -> tuple[list[pa.Table], list[np.ndarray], list[MalformedRecord]]:
        """The lines after a quote left open, read as records of their own (their first is row ``first_row``)."""
        if depth > MAX_CUT_DEPTH:
            raise FileReadError(
                f'{self.where}: more than {MAX_CUT_DEPTH} quotes (") left open, each within the lines after '
                f"another (the last on line {first_line - 1}); the file was not loaded. Balance or remove them and "
                "send it again."
            )
        records, lines = count_text_records(text, self.delimiter)
        table, bad = self.parse(text.encode("utf-8"), "utf-8")
        if table.num_rows + len(bad) != records:
            raise FileReadError(
                f"{self.where}: lines {first_line}-{first_line + lines - 1} hold {records:,} record(s) but the CSV "
                f"reader returned {table.num_rows + len(bad):,}; the file was not loaded so that no row is lost unseen"
            )
        inner = _CsvReader(
            self.where,
            self.delimiter,
            self.width,
            self.found,
            functools.cache(lambda: _LINE_END.split(text)),
            first_line,
        )
        return inner.place(table, bad, 1, first_row, first_line, lines != records, depth)

    def record(
        self, text: str, row: int, line: int, last: int, fields: int, open_until: int | None = None
    ) -> MalformedRecord:
        return MalformedRecord(row, line, last, _kept(text), fields, self.width, open_until)


def _kept(text: str, limit: int = MAX_KEPT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _excerpt(text: str) -> str:
    """A record as quoted in a message: line breaks shown as ⏎, at most MAX_SHOWN characters."""
    return "'" + _kept(_LINE_END.sub("⏎", text), MAX_SHOWN) + "'"


def _explained(records: list[MalformedRecord]) -> list[MalformedRecord]:
    """Each malformed record's message, for the steward: where it is, what is wrong, what to do. Two short lines in a
    row whose fields add up to one record (one field cut in two) are told as a record broken by a line break."""
    one_line = {r.line: r for r in records if r.last_line == r.line and r.open_until is None}

    def broken(a: MalformedRecord | None, b: MalformedRecord | None) -> bool:
        return a is not None and b is not None and a.fields < a.expected and a.fields + b.fields - 1 == a.expected

    for r in records:
        shown_text = _excerpt(r.text)
        if r.open_until is not None:
            r.message = (
                f'Line {r.line} opens a quoted value (") that is not closed before line {r.open_until}, so lines '
                f"{r.line}-{r.open_until} were read as one record; line {r.line} is held back and the lines "
                f"after it were read on their own: {shown_text}; balance or remove the quote and send the file again"
            )
        elif r.last_line > r.line and r.fields == r.expected:
            r.message = (
                f"Lines {r.line}-{r.last_line} were read as one record whose quoted value runs over "
                f'{r.last_line - r.line + 1} lines and holds the column delimiter, as when a quote (") is left open: '
                f"{shown_text}; check the quotes on these lines, correct the record and send the file again"
            )
        elif r.last_line > r.line:
            r.message = (
                f"Lines {r.line}-{r.last_line} were read as one record (a quoted value runs over "
                f"{r.last_line - r.line + 1} lines) with {r.fields} field(s) where the header has {r.expected}: "
                f'{shown_text}; check the quotes (") on these lines, correct the record and send the file again'
            )
        elif broken(r, one_line.get(r.line + 1)) or broken(one_line.get(r.line - 1), r):
            a, b = (r, one_line[r.line + 1]) if broken(r, one_line.get(r.line + 1)) else (one_line[r.line - 1], r)
            r.message = (
                f"Lines {a.line}-{b.line} look like one record broken in two by a line break (line {a.line} has "
                f"{a.fields} field(s), line {b.line} has {b.fields}, the header {r.expected}); line {r.line} reads "
                f"{shown_text}; join the two lines in the file and send it again"
            )
        else:
            r.message = (
                f"Line {r.line} has {r.fields} field(s) where the header has {r.expected}: {shown_text}; correct the "
                "record in the file and send it again"
            )
    return records


def _has_nul(path: Path) -> bool:
    with open_regular(path) as fh:
        return any(b"\0" in block for block in iter(lambda: fh.read(1 << 20), b""))


def read_workbook_grids(path: Path, limits: Limits | None = None) -> list:
    """Every sheet of a workbook as a grid of text cells (for years-across-columns reference files), in one pass
    per sheet through fastexcel; columns keep their absolute Excel positions, row i is Excel row i + 1."""
    from transforms.wide import Grid

    limits = limits or Limits.from_env()
    reader = _open_workbook(path, limits)
    grids = []
    for name in reader.sheet_names:
        where = f"{shown(path)} [{shown(name)}]"
        try:
            data = reader.load_sheet(name, header_row=None, skip_rows=0, dtypes="string", whitespace_as_null=True)
            positions = [c.absolute_index for c in data.available_columns()]
            table = data.to_arrow()
        except Exception as exc:  # noqa: BLE001
            raise FileReadError(f"{where}: cannot read the sheet ({_reason(exc, path)})") from None
        check_cell_lengths(
            table, where, limits, 1, {c: column_letter(p) for c, p in zip(table.column_names, positions)}
        )
        frame = _to_text_frame(table, {c: c for c in table.column_names})
        frame.columns = positions
        grids.append(Grid(name, frame))
    return grids


def read_source_file(path: Path, spec: FileSpec | RecordsFileSpec, limits: Limits | None = None) -> Extracted:
    """Read a file as its spec says; raises :class:`FileReadError` with a steward-readable message, or
    :class:`~flows.limits.LimitExceeded` for a file over a limit."""
    if not path.exists():
        raise FileReadError(f"{shown(path)}: file disappeared before it could be read")
    return read_csv(path, spec, limits) if spec.is_csv else read_workbook(path, spec, limits)

"""Read one agency file into a frame of canonical columns, keeping the row number the steward sees.

I/O only: which rows are data, totals or blank, and what the cells mean, is decided in ``transforms/``.
Every cell is read as text (numbers and dates are parsed by the normalisers, with an error policy), through
fastexcel (calamine + Arrow) for workbooks and pyarrow's CSV reader for CSV files.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import fastexcel
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from flows.limits import ENV, LimitExceeded, Limits
from flows.preflight import (
    UnreadableContainer,
    check_size,
    check_workbook,
    count_records,
    open_regular,
    read_bounded,
    shown,
)
from schemas.sources import CANONICAL_COLUMNS, FileSpec
from transforms.text import column_letter, normalize_header

EXCEL_ROW = "excel_row"
HEAD_BYTES = 16 << 20  # a CSV's header is looked for in its first lines, read from at most this many bytes
MAX_LISTED = 8  # names listed in a message (sheets); the rest are counted


class FileReadError(Exception):
    """A file that cannot be read as its source config says; the message is for a steward."""


@dataclass
class Extracted:
    frame: pd.DataFrame  # canonical columns (text) + EXCEL_ROW
    sheet: str
    header_row: int  # Excel row number of the header (1-based)
    source_columns: dict[str, str] = field(default_factory=dict)  # canonical -> header text in the file
    column_letters: dict[str, str] = field(default_factory=dict)  # canonical -> Excel column letter


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open_regular(path) as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _match_header(cells: Sequence[object], spec: FileSpec) -> dict[str, int]:
    """canonical column -> position in ``cells`` for every alias found."""
    wanted = {normalize_header(a): canon for canon, aliases in spec.columns.items() for a in aliases}
    found: dict[str, int] = {}
    for pos, cell in enumerate(cells):
        canon = wanted.get(normalize_header(cell))
        if canon is not None and canon not in found:
            found[canon] = pos
    return found


def _required(spec: FileSpec) -> list[str]:
    return [c for c, req in CANONICAL_COLUMNS[spec.kind].items() if req and c in spec.columns]


def _locate_header(rows: Sequence[Sequence[object]], spec: FileSpec, where: str) -> tuple[int, dict[str, int]]:
    """Index (0-based, in ``rows``) of the header row and its column matches."""
    required = _required(spec)
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
    looked = "; ".join(f"{c}: {' / '.join(spec.columns[c])}" for c in missing)
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


def check_cell_lengths(table: pa.Table, where: str, limits: Limits, first_row: int, headers: dict[str, str]) -> None:
    """Refuse a sheet or CSV with a text cell over ``max_cell_chars`` (Excel's own limit by default), naming the
    first such cell; vectorised per column. ``first_row`` is the Excel row of the table's first row."""
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
            raise LimitExceeded(
                f"{where} row {first_row + at}, column '{shown(headers.get(name, name))[:60]}': a cell of {longest:,} "
                f"characters is over the limit of {limits.max_cell_chars:,} ({ENV['max_cell_chars']}); the file was "
                f"not loaded. If it is genuine, raise {ENV['max_cell_chars']} and re-run."
            )


def read_workbook(path: Path, spec: FileSpec, limits: Limits | None = None) -> Extracted:
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


def _csv_head(path: Path, spec: FileSpec, limits: Limits) -> list[list[str]]:
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
    """The csv module's error as the steward's: a field over its 131,072-character limit is a cell over ours."""
    if "field limit" in str(exc):
        return LimitExceeded(
            f"{shown(path)}: a cell is longer than {csv.field_size_limit():,} characters, over the limit "
            f"of {limits.max_cell_chars:,} ({ENV['max_cell_chars']}); the file was not loaded. If it is "
            f"genuine, raise {ENV['max_cell_chars']} and re-run."
        )
    return FileReadError(f"{shown(path)}: cannot parse as CSV ({_reason(exc, path)})")


def read_csv(path: Path, spec: FileSpec, limits: Limits | None = None) -> Extracted:
    limits = limits or Limits.from_env()
    where = shown(path)
    head = _csv_head(path, spec, limits)
    if not head:
        raise FileReadError(f"{where}: the file is empty")
    h, found = _locate_header(head, spec, where)
    header_cells = head[h]
    if len(header_cells) > limits.max_columns:
        raise limits.exceeded(where, "the header's number of columns", len(header_cells), "max_columns")
    try:
        records = count_records(path, spec.encoding, spec.delimiter)
    except csv.Error as exc:
        raise _csv_error(exc, path, limits) from None
    if records - h - 1 > limits.max_rows:
        raise limits.exceeded(where, "the number of records below the header", records - h - 1, "max_rows")
    try:
        with open_regular(path) as fh:
            table = pacsv.read_csv(
                fh,
                read_options=pacsv.ReadOptions(
                    encoding=spec.encoding,
                    skip_rows=h,
                    column_names=[f"__c{i}" for i in range(len(header_cells))],
                    skip_rows_after_names=1,
                ),
                # empty lines stay rows (blank rows, counted), so row numbers are the records Excel would show
                parse_options=pacsv.ParseOptions(
                    delimiter=spec.delimiter, newlines_in_values=True, ignore_empty_lines=False
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={f"__c{i}": pa.string() for i in range(len(header_cells))},
                    include_columns=[f"__c{pos}" for pos in sorted(found.values())],
                    null_values=[""],  # only an empty cell is empty: "n/a" is a value to report, "NA" is Namibia
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise FileReadError(f"{where}: cannot parse as CSV ({_reason(exc, path)})") from None
    if table.num_rows != records - h - 1:  # conservation: every record the file holds is a row, or the file fails
        raise FileReadError(
            f"{where}: the file holds {records - h - 1:,} record(s) below the header but the CSV reader returned "
            f"{table.num_rows:,}; the file was not loaded so that no row is lost unseen"
            f"{' (it contains NUL bytes)' if _has_nul(path) else ''}. Re-export it as plain {spec.encoding} text."
        )
    names = {f"__c{pos}": canon for canon, pos in found.items()}
    check_cell_lengths(table, where, limits, h + 2, {k: header_cells[found[v]] for k, v in names.items()})
    frame = _to_text_frame(table, names)
    frame[EXCEL_ROW] = pd.RangeIndex(h + 2, h + 2 + len(frame)).to_numpy(dtype="int32")
    return Extracted(
        frame=frame,
        sheet="",
        header_row=h + 1,
        source_columns={canon: header_cells[pos].strip() for canon, pos in found.items()},
        column_letters={canon: column_letter(pos) for canon, pos in found.items()},
    )


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


def read_source_file(path: Path, spec: FileSpec, limits: Limits | None = None) -> Extracted:
    """Read a file as its spec says; raises :class:`FileReadError` with a steward-readable message, or
    :class:`~flows.limits.LimitExceeded` for a file over a limit."""
    if not path.exists():
        raise FileReadError(f"{shown(path)}: file disappeared before it could be read")
    return read_csv(path, spec, limits) if spec.is_csv else read_workbook(path, spec, limits)

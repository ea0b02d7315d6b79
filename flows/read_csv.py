"""Read a CSV file through pyarrow's reader, every cell as text (:func:`read_csv`): its header looked for in its
first lines, the file's limits (columns, records, cell length), and conservation (every record the file holds
is a row, well-formed or set aside, or the file fails). How the records are parsed, numbered and set aside when
malformed is in ``flows/read_csv_records.py``.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from flows.limits import ENV, LimitExceeded, Limits
from flows.preflight import check_size, count_records_and_lines, open_regular, shown
from flows.read_common import (
    EXCEL_ROW,
    Extracted,
    FileReadError,
    _locate_header,
    _reason,
    _to_text_frame,
    check_cell_lengths,
)
from flows.read_csv_records import _LINE_END, _CsvReader, _explained, _text_breaks
from schemas.sources import FileSpec, RecordsFileSpec
from transforms.text import column_letter

HEAD_BYTES = 16 << 20  # a CSV's header is looked for in its first lines, read from at most this many bytes


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


def _has_nul(path: Path) -> bool:
    with open_regular(path) as fh:
        return any(b"\0" in block for block in iter(lambda: fh.read(1 << 20), b""))

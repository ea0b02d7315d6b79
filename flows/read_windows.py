"""A large worksheet read in windows of rows, so calamine holds one window's cells at a time (issue 17, point 8).

calamine reads a whole sheet into memory before fastexcel turns it into Arrow: about 40 bytes per cell, twice that
while it builds (a 1,048,575-row sheet of 9 columns took 660 MB over the process's start to read, for 81 MB of
Arrow). A sheet whose XML is over :data:`WINDOWED_FROM` bytes is cut instead into runs of whole ``<row>`` elements
of about :data:`WINDOW_BYTES` each; each run is given to calamine as a workbook of its own (the same parts, the
sheet's XML up to ``<sheetData>``, the run, the closing tags), and the Arrow pieces are put together by row
position.

The windows must read exactly as the whole sheet does, or the sheet is read whole (:class:`NotWindowed`): every
row element carries its reference (``r="..."``; calamine places a row without one after the previous row, which a
window cannot know), the XML holds no CDATA section, comment or processing instruction inside ``<sheetData>``
(where ``<row`` could be text), and no window places a cell on a row an earlier window already covers (a cell
whose own reference points back). A window calamine cannot read also sends the sheet to the whole read, whose
error is the one the steward sees.
"""

from __future__ import annotations

import io
import posixpath
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc

from transforms.text import column_letter

#: decompressed XML given to calamine at a time (a window's cells take about as much again while it reads them)
WINDOW_BYTES = 16 << 20
#: sheets whose XML is at least this large are read in windows; smaller ones whole, as before
WINDOWED_FROM = 4 * WINDOW_BYTES
#: XML with no row start for this long is read whole (rows under another prefix than <sheetData>'s, or one row
#: this long): gathering it into one window would hold it twice
NO_ROW_START_MAX = 4 * WINDOW_BYTES
_HEAD_MAX = 16 << 20  # the sheet's XML before <sheetData> (views, column widths): kilobytes as Excel writes it
_CHUNK = 4 << 20  # decompressed bytes read from the zip at a time
_SHEET_DATA = re.compile(rb"<((?:[\w.-]+:)?)sheetData\b[^>]*?(/?)>")
_ROOT = re.compile(rb"<((?:[\w.-]+:)?)worksheet\b")
_UNSAFE = (b"<![CDATA[", b"<!--", b"<?")


class NotWindowed(Exception):
    """The sheet is read whole: its XML is small, or not laid out so that windows of it read the same."""


#: reads one window's workbook bytes, the sheet's rows from ``skip_rows`` on: 0 keeps every row from Excel row 1
#: (row i of the table is Excel row i + 1), None skips the empty rows before the first cell (fastexcel's
#: ``skip_rows``); returns the columns' absolute 0-based positions and the cells as text
ReadWindow = Callable[[bytes, int | None], tuple[list[int], pa.Table | pa.RecordBatch]]


def read_in_windows(
    data: bytes, part: str, read: ReadWindow, window: int | None = None, windowed_from: int | None = None
) -> tuple[list[int], pa.Table]:
    """The sheet stored in the zip entry ``part`` of the workbook ``data``, as ``read`` would return it for the whole
    workbook with ``skip_rows=0``, read one window at a time. Raises :class:`NotWindowed` when the sheet should be
    read whole.

    A window after the first would come back with every row from Excel row 1 before its own (nulls, but fastexcel
    builds them: 250 MB for a window at row 800,000). It is read from its first cell on instead, and begins with a
    marker cell on the last row already read, so where its rows fall is known, not guessed: the table's first row
    must be the marker alone, or a cell of the window lies on a row read before and the sheet is read whole."""
    window = window or WINDOW_BYTES
    pieces: list[tuple[list[int], pa.Table | pa.RecordBatch]] = []
    rows = 0  # Excel rows 1..rows are read
    mark = f"dcf-window-{uuid.uuid4().hex}"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(part)
        if info.file_size < (WINDOWED_FROM if windowed_from is None else windowed_from):
            raise NotWindowed("small sheet")
        folder = posixpath.dirname(part)
        others = {
            i.filename: zf.read(i)
            for i in zf.infolist()
            if i.filename != part and not i.is_dir() and posixpath.dirname(i.filename) != folder
        }
        with zf.open(info) as fh:
            for head, run, tail, prefix in _row_runs(fh, window):
                marked = rows > 0 and bool(pieces)
                if marked and names_row_at_most(run, rows):
                    # a cell on a row read before: the whole read lets it overwrite (even with a value that
                    # reads as empty), a window cannot
                    raise NotWindowed("a window places cells on rows an earlier window covers")
                column = min(pieces[0][0]) if marked else 0
                first = _marker(prefix, rows, column, mark) if marked else b""
                book = _book(others, part, (head, first, run, tail))
                del run
                try:
                    positions, table = read(book, None if marked else 0)
                except Exception as exc:  # noqa: BLE001 - the whole read tells the steward what is wrong with the sheet
                    raise NotWindowed(f"a window could not be read ({type(exc).__name__})") from None
                del book
                if marked:
                    _check_marker(positions, table, column, mark)
                    table, start = table.slice(1), rows
                else:
                    table, start = table, 0
                if table.num_rows:
                    pieces.append((positions, _compact(table)))
                    rows = start + table.num_rows
    return _assembled(pieces)


def _marker(prefix: bytes, row: int, column: int, mark: str) -> bytes:
    """A row element holding one text cell, ``mark``, at (Excel ``row``, 0-based ``column``)."""
    ref = f"{column_letter(column)}{row}".encode()
    p = prefix
    return (
        b"<"
        + p
        + b'row r="'
        + str(row).encode()
        + b'"><'
        + p
        + b'c r="'
        + ref
        + b'" t="inlineStr"><'
        + p
        + b"is><"
        + p
        + b"t>"
        + mark.encode()
        + b"</"
        + p
        + b"t></"
        + p
        + b"is></"
        + p
        + b"c></"
        + p
        + b"row>"
    )


def _check_marker(positions: list[int], table: pa.Table | pa.RecordBatch, column: int, mark: str) -> None:
    """The window's first row holds the marker, and nothing else (else a cell of the window lies on a row read
    before it, or on the marker's)."""
    if not table.num_rows or column not in positions:
        raise NotWindowed("a window's marker is not where it was put")
    head = table.slice(0, 1)
    for position, values in zip(positions, head.columns):
        value = values[0].as_py()
        if (position == column and value != mark) or (position != column and value is not None):
            raise NotWindowed("a window places cells on rows an earlier window covers")


def _book(others: dict[str, bytes], part: str, sheet_parts: tuple[bytes, ...]) -> bytes:
    """A stored (uncompressed) zip of the workbook's parts but its other sheets, ``part`` written from
    ``sheet_parts``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as book:
        for name, body in others.items():
            book.writestr(name, body)
        with book.open(part, "w", force_zip64=True) as sheet:
            for piece in sheet_parts:
                sheet.write(piece)
    return out.getvalue()


def _compact(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """The rows of a slice copied out of their window's buffers (which span every row from the sheet's first, and
    would otherwise stay alive with it)."""
    columns = [pa.concat_arrays(_chunks(column)) for column in table.columns]
    return pa.table(columns, names=table.column_names)


def _chunks(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _assembled(pieces: list[tuple[list[int], pa.Table | pa.RecordBatch]]) -> tuple[list[int], pa.Table]:
    """The pieces side by side as one table: every column from the first to the last one any piece has (a column
    no piece fills in between stays, empty, as in the whole read), each the pieces' rows in order."""
    pieces = [(p, t) for p, t in pieces if t.num_columns]
    if not pieces:
        return [], pa.table({})
    first = min(min(p) for p, _ in pieces)
    last = max(max(p) for p, _ in pieces)
    positions = list(range(first, last + 1))
    columns = []
    for position in positions:
        chunks: list[pa.Array] = []
        for where, table in pieces:
            if position in where:
                chunks.extend(chunk.cast(pa.string()) for chunk in _chunks(table.column(where.index(position))))
            else:
                chunks.append(pa.nulls(table.num_rows, pa.string()))
        columns.append(pa.chunked_array(chunks, pa.string()))
    return positions, pa.table(columns, names=[f"__UNNAMED__{i}" for i in range(len(positions))])


def _row_runs(fh: IO[bytes], window: int) -> Iterator[tuple[bytes, bytes, bytes, bytes]]:
    """(the XML up to and with <sheetData>, a run of whole row elements of about ``window`` bytes, the closing
    tags, the namespace prefix of the sheet's elements) for each window of the sheet's rows."""
    step = min(_CHUNK, window)
    pending = b""
    while (m := _SHEET_DATA.search(pending)) is None:
        chunk = fh.read(step)
        if not chunk or len(pending) > _HEAD_MAX:
            raise NotWindowed("no <sheetData> element near the sheet's start")
        pending += chunk
    if m.group(2):
        raise NotWindowed("no rows")
    head, pending = pending[: m.end()], pending[m.end() :]
    root = _ROOT.search(head)
    if root is None:
        raise NotWindowed("no <worksheet> element")
    prefix = m.group(1)
    end_tag = b"</" + prefix + b"sheetData>"
    tail = end_tag + b"</" + root.group(1) + b"worksheet>"
    literal = b"<" + prefix + b"row"
    row_tag = re.compile(re.escape(literal) + rb"(?=[\s/>])")
    no_reference = re.compile(b"<" + re.escape(prefix) + rb"row(?=[\s/>])(?![^>]*\sr\s*=)")
    done = False
    while True:
        while len(pending) < window and not done:
            chunk = fh.read(step)
            if chunk:
                pending += chunk
            else:
                done = True
        cut = -1 if done else _last_row_start(pending, literal, row_tag)
        if not done and cut <= 0:  # one row longer than a window (or rows under another prefix): read on
            if len(pending) > NO_ROW_START_MAX:
                raise NotWindowed("no row start within several windows")
            more = fh.read(step)
            if more:
                pending += more
                continue
            done = True
        if done:
            stop = pending.find(end_tag)
            if stop < 0:
                raise NotWindowed("no </sheetData>")
            run, pending = pending[:stop], b""
        else:
            run, pending = pending[:cut], pending[cut:]
        if any(mark in run for mark in _UNSAFE) or no_reference.search(run):
            raise NotWindowed("rows without their reference, or markup where rows are cut")
        if end_tag in run:
            raise NotWindowed("content after </sheetData> where rows are cut")
        yield head, run, tail, prefix
        if done:
            return


def names_row_at_most(run: bytes, rows: int) -> bool:
    """Whether a row's or a cell's reference in ``run`` (``r="12"``, ``r='C12'``) names a row from 0 to ``rows``.

    One RE2 scan in Arrow (linear, outside the GIL: ~0.1 s per 16 MiB window where Python's findall of every
    reference took ~1 s on a busy machine); XML that is not UTF-8 counts as naming one (the whole read decides)."""
    try:
        text = pa.array([run], pa.large_binary()).cast(pa.large_string())
    except pa.ArrowInvalid:
        return True
    pattern = r"""\sr\s*=\s*["'][A-Za-z$]*0*(?:""" + at_most(rows) + r""")["']"""
    return bool(pc.count_substring_regex(text, pattern)[0].as_py())


def at_most(n: int) -> str:
    """A regular expression (alternatives, no anchors) whose full matches are the decimal numbers 0..``n`` written
    without leading zeros."""
    digits = str(n)
    width = len(digits)
    alternatives = [f"[0-9]{{1,{width - 1}}}"] if width > 1 else []
    for i, ch in enumerate(digits):
        d, rest = int(ch), width - 1 - i
        tail = f"[0-9]{{{rest}}}" if rest else ""
        if i == 0 and width > 1:
            if d > 1:
                alternatives.append(f"[1-{d - 1}]{tail}")
        elif d > 0:
            alternatives.append(f"{digits[:i]}[0-{d - 1}]{tail}")
    alternatives.append(digits)
    return "|".join(alternatives)


def _last_row_start(buf: bytes, literal: bytes, row_tag: re.Pattern[bytes]) -> int:
    """Where the last row element of ``buf`` starts (``literal``: its tag's start, "<row" or "<x:row"; -1: none)."""
    at = len(buf)
    while (at := buf.rfind(literal, 0, at)) >= 0:
        if row_tag.match(buf, at):
            return at
    return -1

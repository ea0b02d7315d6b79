"""Cheap checks before a reader expands a file: what it is (a regular file), its size on disk, the zip directory
of a workbook, the cells a sheet really references, and how many records a CSV physically holds (flows/limits.py
says which limits and why). fastexcel detects a workbook's format from its bytes, so every format calamine reads is
bounded, whatever the file's name: .xlsx (below), OpenDocument (:func:`ods_extents`), binary .xlsb
(:func:`xlsb_extent`) and old-format .xls (:func:`xls_extents`); ADR 0007 has the bombs each one stops.

calamine allocates a sheet as the rectangle from its first to its last referenced cell, whatever the sheet's
``<dimension>`` element claims (a sheet with a lying dimension reads fine; one with cells at A1 and XFD1048576
aborts the process). So every worksheet's XML is streamed once through inflate, in bounded chunks, read as calamine
reads it (to the end of the entry's data, never stopping at the size the directory declares: an entry holding more
or less than declared is refused, :func:`entry_blocks`), and its ``r="..."``
references are decoded with numpy (column-wise over the hits, no per-cell Python loop) into the last row
and column, by value (leading zeros count for nothing: calamine reads A0000001 as A1). A row or cell that does not
carry its own reference as its first attribute counts as one step past the last one (calamine places a row or cell
without one after the one before), so the bound holds for sheets that omit them, and references written where
calamine does not read them (on other elements, inside another attribute's value, a second one on a cell) can only
raise it. The scan finds the "<", "=" and ":" bytes in one numpy pass each (without the GIL) and looks only at the
places that start a reference, a row or cell tag or a formula (:func:`_scan`); the regular expressions for error values and
formulas without a saved result run only on chunks holding a ``#`` or a formula element. The workbook is read into memory once and the same bytes are checked and handed to calamine, so the file
cannot change between the check and the read.
"""

from __future__ import annotations

import codecs
import collections
import csv
import io
import itertools
import os
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import olefile
from isal import isal_zlib

from flows.limits import RATIO_FLOOR_BYTES, Limits
from flows.names import shown

CHUNK = 8 << 20
_SPACING = 16  # whitespace read on either side of a reference's "=" (r = "A1"); more counts as beyond every limit
#: bytes looked at past a chunk's end: a reference (r, up to _SPACING spaces, =, as many, a quote, 3 letters and 8
#: digits and one more byte) is read whole
_TAIL = 2 * _SPACING + 16
_HISTORY = 24  # bytes kept before a chunk: a tag's "<prefix:" (prefix up to 16 characters) is seen whole
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[[0x20, 0x09, 0x0A, 0x0D]] = True
#: what may stand in an element name's prefix as calamine reads it ("<x:c", "<ф:c", "<#$:c", even "<:c": the name
#: runs to whitespace, ">" or "/", and its part after the first colon is matched): every byte but those and ":"
_PREFIX = np.ones(256, dtype=bool)
_PREFIX[[0x20, 0x09, 0x0A, 0x0D, 0x3C, 0x3E, 0x2F, 0x3A]] = False
_DELIMITER = _IS_SPACE.copy()  # what may follow a tag's name
_DELIMITER[[0x3E, 0x2F]] = True
#: ISA-L's inflate error (its stub types it as an instance of Exception, it is the class)
_ISAL_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]
BEYOND = 1 << 40  # a reference Excel cannot hold: over every limit
#: the error values calamine reads (as an empty cell); Excel's newer ones (#SPILL!, #CALC!, #GETTING_DATA, ...) make
#: it refuse the whole sheet, so a workbook holding them is rewritten in memory first (flows/read_sheet.py)
KNOWN_ERRORS = frozenset({b"#DIV/0!", b"#N/A", b"#NAME?", b"#NULL!", b"#NUM!", b"#REF!", b"#VALUE!"})
_ERROR_VALUE = re.compile(rb"<(?:[\w.-]+:)?v>(#[^<]{0,40})</")
#: a cell holding a formula and no saved result (no <v>, or an empty one): calamine reads it as empty
_UNSAVED = re.compile(
    rb"<(?:[\w.-]+:)?c\b[^>]*?\sr\s*=\s*[\"']([A-Za-z]{1,3})(\d{1,7})[\"'][^>]*>\s*"
    rb"<(?:[\w.-]+:)?f\b(?:[^>]*/>|[^>]*>[^<]*</(?:[\w.-]+:)?f>)\s*"
    rb"(?:<(?:[\w.-]+:)?v\s*/>|<(?:[\w.-]+:)?v>\s*</(?:[\w.-]+:)?v>)?\s*</(?:[\w.-]+:)?c>"
)
_CELL_TAIL = 32 << 10  # bytes of the previous chunk scanned again for whole cells (a formula is at most 8 KiB)
MAX_NOTED = 10_000  # formula cells without a saved result noted per sheet (for their messages); the rest are not
MAX_RELS_BYTES = 4 << 20  # a relationship part lists a workbook's parts: kilobytes, never megabytes
#: Python's csv module refuses a field over 131,072 characters (a process-wide setting). A quote left open in a CSV
#: makes one field of every line up to the next quote, maybe the rest of the file: that record must be counted (the
#: reader sets it aside and reads the lines after it on their own), not fail the file. So the bound is lifted once,
#: here, and never lowered (threads read files at the same time); cells over ``max_cell_chars`` are refused by the
#: readers themselves (flows/extract.py), header cells included.
CSV_FIELD_LIMIT = 2**31 - 1
csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))


class UnreadableContainer(Exception):
    """The file claims to be a zip (an xlsx) but its directory or an entry is corrupt."""


class NotRegularFile(OSError):
    """A FIFO, device, socket or folder where a file was expected: never read (a FIFO would block)."""


@dataclass
class Extent:
    """What one sheet's XML references: the last row and column (upper bounds) and how many cell elements."""

    rows: int = 0
    columns: int = 0
    cells: int = 0
    #: whether a cell holds an error value calamine does not know (KNOWN_ERRORS)
    unknown_errors: bool = False
    #: (Excel row, 0-based column) of cells holding a formula with no saved result (at most MAX_NOTED)
    unsaved: frozenset[tuple[int, int]] = frozenset()

    @property
    def area(self) -> int:
        return self.rows * self.columns


def open_regular(path: Path) -> io.BufferedReader:
    """Open a file for reading only if it is a regular file: opened non-blocking first (opening a FIFO would
    otherwise wait for a writer forever), then checked with fstat, so a file swapped for a FIFO or a device after
    discovery is refused, never read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(
                f"{shown(path)} is not a regular file (a folder, FIFO, device or socket); it is not read"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: Path, limits: Limits) -> bytes:
    """The whole file, if it is a regular file within ``max_file_bytes`` (checked on the open descriptor)."""
    with open_regular(path) as fh:
        check_size(os.fstat(fh.fileno()).st_size, shown(path), limits)
        return fh.read()


def check_size(size: int, where: str, limits: Limits) -> int:
    """Refuse a file over ``max_file_bytes`` before anything reads it."""
    if size > limits.max_file_bytes:
        raise limits.exceeded(where, "the file's size in bytes,", size, "max_file_bytes")
    return size


def check_workbook(data: bytes, where: str, limits: Limits) -> dict[str, Extent]:
    """Refuse a workbook whose zip directory or sheets exceed the limits, before calamine opens it: an .xlsx or
    .xlsb, an OpenDocument spreadsheet (zips), or an .xls (an OLE2 compound file). Other bytes pass: calamine tells
    what they are. Returns each worksheet entry's extent, by entry name (what else the scan saw: unknown error
    values, formulas without a saved result); none for an .xls."""
    check_size(len(data), where, limits)
    if data.startswith(OLE2_MAGIC):  # an old-format workbook (.xls), whatever the file's name
        _check_tables(xls_extents(data), f"{where} (Workbook stream)", limits, "sheet")
        return {}
    if not data.startswith(b"PK"):
        return {}
    extents = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            _check_directory(infos, where, limits)
            sheets = _worksheets(zf, infos)
            binary = any(i.filename == "xl/workbook.bin" for i in infos)  # calamine may read it as an .xlsb
            for info in sheets:
                extent = sheet_extent(zf, info)
                if binary:  # its sheets as records too, whatever their names: the larger bound holds
                    records = xlsb_extent(entry_blocks(zf, info))
                    extent = replace(
                        extent, rows=max(extent.rows, records.rows), columns=max(extent.columns, records.columns)
                    )
                extents[info.filename] = extent
                _check_extent(extent, f"{where} ({_entry_name(info)})", limits)
            content = [i for i in infos if i.filename == "content.xml"]  # an OpenDocument spreadsheet's cells
            if content:
                _check_tables(ods_extents(zf, content[-1]), f"{where} (content.xml)", limits)
            for info in infos:  # every other entry calamine may read holds what the directory says, and no more
                if info not in sheets and info not in content[-1:] and not info.filename.lower().endswith(".rels"):
                    strings = declared_strings(entry_blocks(zf, info))
                    if strings > limits.max_cells:  # calamine reserves room for them before reading one
                        raise limits.exceeded(
                            f"{where} ({_entry_name(info)})",
                            "the shared strings it declares (uniqueCount),",
                            strings,
                            "max_cells",
                        )
    except UnreadableContainer:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        _ISAL_ERROR,
        EOFError,
        NotImplementedError,
        RuntimeError,
        ValueError,
        OSError,
    ) as exc:
        first = (str(exc).splitlines() or [""])[0][:160]
        raise UnreadableContainer(f"corrupt zip container ({type(exc).__name__}: {first})") from None
    return extents


def count_records(path: Path, encoding: str, delimiter: str) -> int:
    """How many CSV records the file physically holds, counted apart from the parser that reads them (so a record
    that parser drops shows up as a difference). See :func:`count_records_and_lines`."""
    return count_records_and_lines(path, encoding, delimiter)[0]


def count_records_and_lines(path: Path, encoding: str, delimiter: str) -> tuple[int, int]:
    """(records, lines) the file holds. Line ends are counted in bytes (\\n, \\r\\n and a lone \\r, as the parsers
    split them) when the encoding writes them as single bytes and the file has no quote character: then every record
    is one line. Otherwise (quoted values may hold line breaks, or a quote left open may join lines) Python's csv
    module counts records and lines, iterating in C. Records whose number of fields is not the header's are counted
    like any other (the reader sets them aside, it does not drop them); fewer records than lines means some record
    runs over several lines."""
    if _single_byte_newlines(encoding):
        ends, last, quoted = _line_ends(path)
        if not quoted:
            records = ends + (last not in (b"", b"\n", b"\r"))
            return records, records
    with open_regular(path) as raw, io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="") as text:
        return _records_and_lines(text, delimiter)


def count_text_records(text: str, delimiter: str) -> tuple[int, int]:
    """(records, lines) of CSV text held in memory, counted as :func:`count_records_and_lines` counts a file."""
    if '"' not in text:
        lines = text.count("\n") + text.count("\r") - text.count("\r\n") + (text[-1:] not in ("", "\n", "\r"))
        return lines, lines
    return _records_and_lines(io.StringIO(text, newline=""), delimiter)


def _records_and_lines(lines: Iterable[str], delimiter: str) -> tuple[int, int]:
    reader = csv.reader(lines, delimiter=delimiter)
    counter = itertools.count()
    collections.deque(zip(reader, counter), maxlen=0)
    return next(counter), reader.line_num


def _single_byte_newlines(encoding: str) -> bool:
    try:
        one, two = codecs.encode('\n"', encoding), codecs.encode('\n"\n"', encoding)
    except LookupError:
        return False
    return len(two) - len(one) == 2 and one.endswith(b'\n"')


def _line_ends(path: Path) -> tuple[int, bytes, bool]:
    """(line ends, the file's last byte, whether it holds a quote character), streamed in chunks."""
    ends, previous, quoted = 0, b"", False
    with open_regular(path) as fh:
        while block := fh.read(CHUNK):
            crlf = block.count(b"\r\n") + (previous == b"\r" and block[:1] == b"\n")
            ends += block.count(b"\n") + block.count(b"\r") - crlf
            quoted = quoted or b'"' in block
            previous = block[-1:]
    return ends, previous, quoted


def _check_directory(infos: list[zipfile.ZipInfo], where: str, limits: Limits) -> None:
    if len(infos) > limits.max_zip_entries:
        raise limits.exceeded(where, "the number of entries in the workbook's zip,", len(infos), "max_zip_entries")
    total = 0
    for info in infos:
        entry = f"{where} ({_entry_name(info)})"
        if info.file_size > limits.max_inflated_bytes:
            raise limits.exceeded(
                entry, "the entry's uncompressed size in bytes,", info.file_size, "max_inflated_bytes"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_inflate_ratio:
            raise limits.exceeded(entry, "the entry's compression ratio", ratio, "max_inflate_ratio")
        total += info.file_size
    if total > limits.max_inflated_bytes:
        raise limits.exceeded(where, "the workbook's total uncompressed size in bytes,", total, "max_inflated_bytes")


def _entry_name(info: zipfile.ZipInfo) -> str:
    return info.filename[:80].encode("utf-8", "backslashreplace").decode("utf-8")


#: relationship types whose target calamine reads as a sheet: worksheets, and dialog and chart sheets too (a far
#: cell in a dialogsheet's part aborted the process while the scan took worksheets only); macro sheets for good
#: measure
_SHEET_TYPES = (b"/worksheet", b"/dialogsheet", b"/chartsheet", b"/macrosheet")


def _worksheets(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The entries calamine may read as sheets: everything under xl/worksheets/ and every target of a worksheet,
    dialog sheet or chart sheet relationship (resolved as calamine resolves it: relative to xl/)."""
    targets = set()
    for info in infos:
        if not info.filename.lower().endswith(".rels"):
            continue
        if info.file_size > MAX_RELS_BYTES:
            raise UnreadableContainer(f"relationship part {_entry_name(info)} of {info.file_size:,} bytes")
        for tag in re.findall(rb"<(?:\w+:)?Relationship\b[^>]*>", b"".join(entry_blocks(zf, info))):
            kind = re.search(rb"""\bType\s*=\s*["']([^"']*)["']""", tag)
            target = re.search(rb"""\bTarget\s*=\s*["']([^"']*)["']""", tag)
            if kind and target and kind.group(1).rstrip(b"/").lower().endswith(_SHEET_TYPES):
                name = target.group(1).decode("utf-8", "replace").lstrip("/")
                targets.add(posixpath.normpath(name if name.lower().startswith("xl/") else f"xl/{name}").lower())
    return [
        i
        for i in infos
        if not i.is_dir()
        and (
            i.filename.lower() in targets
            or (i.filename.lower().startswith("xl/worksheets/") and i.filename.lower().endswith(".xml"))
        )
    ]


def _check_extent(extent: Extent, where: str, limits: Limits) -> None:
    if extent.rows > limits.max_rows:
        raise limits.exceeded(where, "the sheet's last row", extent.rows, "max_rows")
    if extent.columns > limits.max_columns:
        raise limits.exceeded(where, "the sheet's last column", extent.columns, "max_columns")
    if extent.area > limits.max_cells:
        raise limits.exceeded(
            where,
            f"the sheet's span ({extent.rows:,} rows x {extent.columns:,} columns) in cells,",
            extent.area,
            "max_cells",
        )


#: the records calamine places as cells of a binary (.xlsb) sheet, each at the row of the last BrtRowHdr and the
#: column its first four bytes hold: BrtCellRk, BrtCellError, BrtCellBool, BrtCellReal, BrtCellSt, BrtCellIsst,
#: BrtFmlaString, BrtFmlaNum, BrtFmlaBool
_XLSB_CELL = frozenset(range(0x02, 0x0B))
_XLSB_ROW, _XLSB_END = 0x0000, 0x0092  # BrtRowHdr (its first four bytes: the row), BrtEndSheetData
_XLSB_LAST_ROW = 0x0010_0000  # a row past this ends the sheet for calamine


def xlsb_extent(blocks: Iterable[bytes]) -> Extent:
    """The rectangle calamine allocates for a binary (.xlsb) sheet: its records framed as calamine frames them (a
    type of one or two bytes, a length of up to four, then the payload), every cell record counted at the row of the
    last row header and the column it names (32 bits: two cells far apart would make calamine allocate billions of
    cells, as in an .xlsx). Records before the sheet data count too, an upper bound. A Python loop over records:
    binary workbooks are rare here, and a sheet is bounded by the inflate limits."""
    max_row = max_col = cells = row = skip = 0
    data = b""
    for block in blocks:
        data += block
        pos = min(skip, len(data))  # the rest of a payload that ran past the last block
        skip -= pos
        while (header := _xlsb_header(data, pos)) is not None:
            kind, length, at = header
            if at + min(length, 4) > len(data):  # the payload's first bytes are in the next block
                break
            if kind == _XLSB_END:
                return Extent(rows=max_row, columns=max_col, cells=cells)
            if length >= 4 and (kind == _XLSB_ROW or kind in _XLSB_CELL):
                value = int.from_bytes(data[at : at + 4], "little")
                if kind == _XLSB_ROW:
                    if value > _XLSB_LAST_ROW:
                        return Extent(rows=max_row, columns=max_col, cells=cells)
                    row = value
                else:
                    max_row, max_col, cells = max(max_row, row + 1), max(max_col, value + 1), cells + 1
            pos = at + length
            if pos > len(data):
                skip, pos = pos - len(data), len(data)
                break
        data = data[pos:]
    return Extent(rows=max_row, columns=max_col, cells=cells)


def _xlsb_header(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(type, length, where the payload starts) of the record at ``pos``, or None where ``data`` ends first."""
    end = len(data)
    if pos >= end:
        return None
    kind = data[pos]
    pos += 1
    if kind & 0x80:
        if pos >= end:
            return None
        kind = (kind & 0x7F) | (data[pos] & 0x7F) << 7
        pos += 1
    length = 0
    for i in range(4):  # the fourth byte ends the length whatever its high bit says
        if pos >= end:
            return None
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            break
    return kind, length, pos


OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: BIFF records calamine turns into cells, each at the row and column of its first four bytes: NUMBER, LABEL,
#: BOOLERR, RK, LABELSST, FORMULA (MULRK, a run of columns, is read apart)
_XLS_CELL = frozenset({0x0203, 0x0204, 0x0205, 0x027E, 0x00FD, 0x0006})
_XLS_EOF, _XLS_BOUNDSHEET, _XLS_DIMENSIONS, _XLS_MULRK, _XLS_FILEPASS = 0x000A, 0x0085, 0x0200, 0x00BD, 0x002F


def xls_extents(data: bytes) -> list[Extent]:
    """The cells calamine allocates for each sheet of an old-format workbook (.xls): it builds every sheet when it
    opens the file, reserving the rectangle a sheet's DIMENSIONS record declares (32-bit rows: a 10 GB
    reservation from one record aborted the process) and allocating the rectangle of its cells (16-bit rows and
    columns: 65,536 x 65,536 cells from two). Each sheet is read from where its BoundSheet8 record points, record
    by record as calamine frames them, in every stream calamine may take for the workbook's. A container olefile
    cannot read is refused: what calamine would read from it is unknown."""
    try:
        ole = olefile.OleFileIO(data)
    except Exception as exc:  # noqa: BLE001 - olefile raises many kinds for a corrupt container
        raise UnreadableContainer(f"corrupt OLE2 container ({type(exc).__name__}: {str(exc)[:120]})") from None
    extents = []
    with ole:
        for path in ole.listdir(streams=True, storages=False):
            if len(path) != 1 or path[0].lower() not in ("workbook", "book"):
                continue
            size = ole.get_size(path)
            if size > len(data):
                raise UnreadableContainer(
                    f"corrupt OLE2 container (a {size:,}-byte stream in a {len(data):,}-byte file)"
                )
            try:
                stream = ole.openstream(path).read()
            except Exception as exc:  # noqa: BLE001
                raise UnreadableContainer(f"corrupt OLE2 container ({type(exc).__name__}: {str(exc)[:120]})") from None
            extents += [_xls_sheet(stream, at) for at in _xls_sheet_positions(stream)]
    return extents


def _xls_records(stream: bytes, at: int) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of the BIFF records from ``at`` on: a 16-bit type and length, then the payload."""
    while at + 4 <= len(stream):
        kind, length = struct.unpack_from("<HH", stream, at)
        if at + 4 + length > len(stream):
            return
        yield kind, stream[at + 4 : at + 4 + length]
        at += 4 + length


def _xls_sheet_positions(stream: bytes) -> list[int]:
    positions = []
    for kind, payload in _xls_records(stream, 0):
        if kind == _XLS_EOF:
            break
        if kind == _XLS_FILEPASS and payload[:2] != b"\0\0":  # encrypted: calamine stops here, reading no sheet
            return []
        if kind == _XLS_BOUNDSHEET and len(payload) >= 4:
            positions.append(int.from_bytes(payload[:4], "little"))
    return positions


def _xls_sheet(stream: bytes, at: int) -> Extent:
    rows = columns = cells = 0
    for kind, payload in _xls_records(stream, at):
        if kind == _XLS_EOF:
            break
        if kind in _XLS_CELL and len(payload) >= 4:
            row, column = struct.unpack_from("<HH", payload)
            rows, columns, cells = max(rows, row + 1), max(columns, column + 1), cells + 1
        elif kind == _XLS_MULRK and len(payload) >= 6:
            row, first = struct.unpack_from("<HH", payload)
            last = int.from_bytes(payload[-2:], "little")
            rows, columns, cells = max(rows, row + 1), max(columns, first + 1, last + 1), cells + 1
        elif kind == _XLS_DIMENSIONS and len(payload) in (10, 14):
            if len(payload) == 10:
                first_row, last_row, first_col, last_col = struct.unpack_from("<HHHH", payload)
            else:
                first_row, last_row, first_col, last_col = struct.unpack_from("<IIHH", payload)
            if last_row >= 1 and last_col >= 1:  # calamine reserves (last - first) of each, wrapping at 32 bits
                rows = max(rows, (last_row - first_row) & 0xFFFF_FFFF)
                columns = max(columns, (last_col - first_col) & 0xFFFF_FFFF)
    return Extent(rows=rows, columns=columns, cells=cells)


_UNIQUE_COUNT = re.compile(rb"uniqueCount\s*=\s*[\"']\+?0*(\d{1,30})")


def declared_strings(blocks: Iterable[bytes]) -> int:
    """The largest ``uniqueCount`` an entry declares (0 if none): calamine reserves that many strings for the
    shared strings table before reading one (uniqueCount="4000000000" asked for 96 GB and aborted the process). Read
    anywhere in the entry, on any element, an upper bound."""
    largest, tail = 0, b""
    for block in blocks:
        buf = tail + block
        for m in _UNIQUE_COUNT.finditer(buf):
            largest = max(largest, int(m.group(1)))
        tail = buf[-64:]
    return largest


def _check_tables(extents: list[Extent], where: str, limits: Limits, what: str = "table") -> None:
    """The tables of an OpenDocument spreadsheet or the sheets of an .xls: each within the sheet limits, and all
    of them together within ``max_cells`` (calamine builds every one when it opens the file, not the one asked
    for)."""
    for n, extent in enumerate(extents, 1):
        _check_extent(extent, f"{where}, {what} {n}", limits)
    total = sum(extent.area for extent in extents)
    if total > limits.max_cells:
        raise limits.exceeded(where, f"the cells of all the workbook's {what}s together,", total, "max_cells")


#: the elements of an OpenDocument table calamine reads, by their literal names as it matches them (quick-xml,
#: prefixes as written); attribute values may hold ">" (quoted), never "<"
_ODS_TAG = re.compile(
    rb"<(/?)table:(table|table-row|table-cell|covered-table-cell)(?=[\s/>])((?:[^<>\"']|\"[^\"<]*\"|'[^'<]*')*)(/?)>"
)
_ODS_REPEAT = {
    b"table-row": re.compile(rb"\stable:number-rows-repeated\s*=\s*[\"']\+?(\d+)[\"']"),
    b"cell": re.compile(rb"\stable:number-columns-repeated\s*=\s*[\"']\+?(\d+)[\"']"),
}
#: what makes calamine keep a cell (a value, a formula, or text content): any of these counts (an upper bound)
_ODS_VALUE = re.compile(
    rb"\s(?:office:(?:value|string-value|date-value|time-value|boolean-value|value-type)|table:formula)\s*="
)
_ODS_MAX_REPEAT = 16_384  # calamine caps a cell's number-columns-repeated at Excel's width


def ods_extents(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> list[Extent]:
    """The cells calamine allocates for each table of an OpenDocument spreadsheet's ``content.xml``.

    calamine expands ``table:number-columns-repeated`` (capped at 16,384) and ``table:number-rows-repeated``
    into cells, from the first row and column to the last row and column holding a value: a file of 800 bytes
    (a value repeated across 1,000 columns of 100,000 rows) made it allocate 6 GB, for every table when the file is
    opened. Trailing empty cells and rows (LibreOffice writes the rest of every sheet as one repeated empty row)
    cost nothing, so the bound counts, per table, the rows up to the last one holding a value (with their repeats)
    times the widest row up to its last value; any value-like attribute counts as a value, an upper bound."""
    extents: list[Extent] = []
    rows = width = last_row = 0  # the current table: rows seen, widest row, rows up to the last with a value
    row_repeat = column = last_cell = cells = 0  # the current row
    carry = b""
    for block in itertools.chain(entry_blocks(zf, info), [b""]):
        buf = carry + block
        cut = buf.rfind(b"<") if block else len(buf)  # a tag may run past the block: read from its "<" next time
        if cut < 0:
            cut = len(buf)
        for m in _ODS_TAG.finditer(buf, 0, cut):
            closing, name, attrs, empty = m.groups()
            if name == b"table":
                if closing or empty:
                    extents.append(Extent(rows=last_row, columns=width, cells=cells))
                    rows = width = last_row = cells = 0
                continue
            if name == b"table-row":
                if not closing:
                    repeat = _ODS_REPEAT[b"table-row"].search(attrs)
                    row_repeat, column, last_cell = (_repeat(repeat) if repeat else 1), 0, 0
                if closing or empty:
                    if last_cell:
                        width, last_row = max(width, last_cell), rows + row_repeat
                    rows += row_repeat
                continue
            if closing:
                continue
            repeat = _ODS_REPEAT[b"cell"].search(attrs)
            column += min(_repeat(repeat), _ODS_MAX_REPEAT) if repeat else 1
            if _ODS_VALUE.search(attrs):
                last_cell = column
                cells += row_repeat
        carry = buf[cut:]
    if rows or width:  # a table never closed
        extents.append(Extent(rows=last_row, columns=width, cells=cells))
    return extents


def _repeat(match: re.Match[bytes]) -> int:
    digits = match.group(1).lstrip(b"0") or b"0"
    return int(digits) if len(digits) <= 12 else BEYOND


def entry_blocks(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """An entry's bytes as calamine reads them, in blocks of at most ``CHUNK``, checked against the directory.

    calamine (Rust's zip crate) reads a stored entry as all its compressed bytes and a deflated one to the end of
    its deflate stream, whatever uncompressed size the directory declares; Python's zipfile stops at that declared
    size. A forged entry that inflates past its declared size (its CRC made to match the part zipfile reads, four
    bytes suffice) was scanned short here and read whole by calamine: a far cell hidden past the declared end
    aborted the process, and an entry far larger than declared passed the size and ratio limits. So the entry is
    read as calamine reads it, never past its declared size plus one byte, and one that holds other than what the
    directory says (its size, its CRC), or that is compressed in a way Excel never writes, is refused."""
    with zf.open(info):  # zipfile checks the local header: its signature, its name, no encryption
        pass
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise UnreadableContainer(
            f"entry {_entry_name(info)} is compressed with method {info.compress_type}, which Excel never writes "
            "(only stored or deflated): save the workbook again from Excel"
        )
    fp = zf.fp
    assert fp is not None  # an open ZipFile
    fp.seek(info.header_offset + 26)
    names, extra = struct.unpack("<HH", fp.read(4))
    fp.seek(info.header_offset + 30 + names + extra)
    left, size, crc = info.compress_size, 0, 0
    # Intel's ISA-L: the same inflate and CRC-32 as zlib, 2.3x and 13x faster (24 against 55 ms, 1.5 against 20 ms
    # for a 44 MB sheet), the pre-check's largest part after the scan
    inflate = isal_zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    pending = b""
    while True:
        if not pending and left:
            pending = fp.read(min(left, CHUNK))
            if not pending:
                raise UnreadableContainer(
                    f"corrupt zip container: entry {_entry_name(info)} is cut short (the file ends inside it)"
                )
            left -= len(pending)
        if inflate is None:
            block, pending = pending, b""
        else:
            block = inflate.decompress(pending, min(CHUNK, info.file_size + 1 - size))
            pending = inflate.unconsumed_tail
        size += len(block)
        if size > info.file_size:
            raise UnreadableContainer(
                f"corrupt zip container: entry {_entry_name(info)} holds more than the {info.file_size:,} bytes its "
                "directory declares"
            )
        if block:
            crc = isal_zlib.crc32(block, crc)
            yield block
        if inflate.eof if inflate is not None else not left:
            break
        if not block and not pending and not left:
            raise UnreadableContainer(
                f"corrupt zip container: entry {_entry_name(info)} is cut short (its deflate stream does not end)"
            )
    if size != info.file_size or crc != info.CRC:
        what = f"{size:,} bytes, not the {info.file_size:,} declared" if size != info.file_size else "a bad CRC-32"
        raise UnreadableContainer(f"corrupt zip container: entry {_entry_name(info)} holds {what}")


def sheet_extent(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Extent:
    """Stream one worksheet's XML and bound the rectangle calamine would allocate for it; on the way, note error
    values calamine does not know and formula cells without a saved result (:class:`_CellNotes`)."""
    max_row = max_col = row_tags = cell_tags = rows_with_ref = cells_with_ref = 0
    carry = b" " * _HISTORY  # bytes already scanned, kept so a tag's start is seen from the next chunk
    notes = _CellNotes()
    origin = -_HISTORY  # where carry's first byte lies in the sheet's XML
    read = 0  # bytes of XML read before this block
    last_formula = -1  # where the last formula element's start seen lies in the sheet's XML
    blocks = entry_blocks(zf, info)
    while True:
        block = next(blocks, b"")
        if block and len(carry) + len(block) <= _HISTORY + _TAIL:  # too short to scan yet
            notes.scan(block, formulas=True)
            carry += block
            read += len(block)
            continue
        buf = carry + block if block else carry + b"\0" * _TAIL
        end = len(buf) - _TAIL if block else len(carry)
        scan = _scan(buf, _HISTORY, end)
        if scan.last_formula >= 0:
            last_formula = origin + scan.last_formula
        # a formula cell is matched in the first block it is whole in: the regular expressions run only on one
        # holding a formula's start (or whose next one will see it: the last bytes are scanned with that one)
        notes.scan(block, formulas=last_formula >= read - len(notes.tail))
        read += len(block)
        max_row, max_col = max(max_row, scan.max_row), max(max_col, scan.max_col)
        rows_with_ref, cells_with_ref = (
            rows_with_ref + scan.row_tags_with_ref,
            cells_with_ref + scan.cell_tags_with_ref,
        )
        row_tags, cell_tags = row_tags + scan.row_tags, cell_tags + scan.cell_tags
        if not block:
            break
        carry = buf[end - _HISTORY :]
        origin += end - _HISTORY
    # a row or cell without its own r= is one past the one before: at most one step each past the last reference
    rows = max_row + row_tags - rows_with_ref
    columns = max_col + cell_tags - cells_with_ref
    return Extent(
        rows=rows,
        columns=columns,
        cells=cell_tags,
        unknown_errors=notes.unknown_errors,
        unsaved=frozenset(notes.unsaved),
    )


@dataclass
class _Scan:
    """What one chunk of a sheet's XML holds (:func:`_scan`)."""

    max_row: int = 0
    max_col: int = 0
    row_tags: int = 0
    cell_tags: int = 0
    row_tags_with_ref: int = 0  # of the row tags, those whose first attribute is their reference (_tags)
    cell_tags_with_ref: int = 0
    last_formula: int = -1  # where the last "<f" or ":f" lies (a formula element's start, or text like one)


_REF_WIDTH = 12  # bytes read from a reference's start: 4 letters (one too many) and 8 digits (one too many)
_BIT_VALUES = (1 << np.arange(_REF_WIDTH)).astype(np.uint16)
_LOWEST_BIT = np.array([(n & -n).bit_length() - 1 for n in range(1 << _REF_WIDTH)], dtype=np.int8)  # of n > 0


def _scan(buf: bytes, start: int, end: int) -> _Scan:
    """The references, tags and formula starts of ``buf`` whose first byte lies in ``buf[start:end]`` (``buf``
    holds at least ``_HISTORY`` bytes before ``start`` and ``_TAIL`` after ``end``). A reference is ``r="..."`` or
    ``r='...'`` after a space, on any element (:func:`_decode_references`); a tag is ``<row`` or ``<c`` followed by a
    space, ``>`` or ``/``, with or without a namespace prefix (calamine matches local names; a prefixed one is counted
    at its colon). Every place that matters is next to a "<" (``<c``, ``<r``, ``<f``), an "=" (``r=``) or a colon
    (a prefixed name), so those bytes are found in one pass each (C speed, without the GIL) and only they are looked
    at closely; tests/unit/test_preflight_scan.py holds the byte-by-byte reading this must equal."""
    a = np.frombuffer(buf, dtype=np.uint8)
    lt = np.flatnonzero(a[start:end] == 0x3C) + start  # every "<", then the letter after it
    after_lt = a[lt + 1]
    eq = np.flatnonzero(a == 0x3D)  # every "=", then the letter before it (and the whitespace around it)
    r_eq = eq[(eq > start) & (eq <= end)] - 1
    r_eq = r_eq[a[r_eq] == 0x72]
    formulas = lt[after_lt == 0x66]
    out = _Scan(last_formula=int(formulas[-1]) if len(formulas) else -1)
    out.max_row, out.max_col = _decode_references(buf, r_eq)
    spaced = _spaced_eq(a, eq)
    if spaced:  # r = "A1": legal XML that calamine honours, Excel never writes
        spaced_refs = _spaced_references(buf, start, end)
        out.max_row, out.max_col = max(out.max_row, spaced_refs[0]), max(out.max_col, spaced_refs[1])
    lt_c, lt_r = lt[after_lt == 0x63] + 1, lt[after_lt == 0x72] + 1  # just after "<"
    if b":" in buf:  # a prefixed name ("<x:c"): counted at its colon when only prefix bytes lead back to "<"
        colon = np.flatnonzero(a[start:end] == 0x3A) + start
        after = a[colon + 1]
        colon = colon[(after == 0x63) | (after == 0x72) | (after == 0x66)]
        opens = np.zeros(len(colon), dtype=bool)
        run = np.ones(len(colon), dtype=bool)
        for k in range(1, _HISTORY - 7):
            before = a[colon - k]
            opens |= run & (before == 0x3C)
            run &= _PREFIX[before]
        opens |= run  # a prefix longer than the bytes looked back at: counted as a tag (calamine reads any prefix)
        named = colon[opens] + 1
        lt_c = np.concatenate([lt_c, named[a[named] == 0x63]])
        lt_r = np.concatenate([lt_r, named[a[named] == 0x72]])
        prefixed = colon[a[colon + 1] == 0x66]  # ":f": a prefixed formula element, or text like one
        if len(prefixed):
            out.last_formula = max(out.last_formula, int(prefixed[-1]))
    out.row_tags, out.row_tags_with_ref = _tags(a, lt_r, b"row", spaced)
    out.cell_tags, out.cell_tags_with_ref = _tags(a, lt_c, b"c", spaced)
    return out


def _tags(a: np.ndarray, at: np.ndarray, name: bytes, spaced: bool) -> tuple[int, int]:
    """(tags, tags carrying their own reference) among the names at ``at``: a tag is ``name`` followed by
    whitespace, ``>`` or ``/``; it carries its reference when its first attribute is ``r``, after one whitespace
    character, then ``=`` and a quote (``spaced``: the buffer has an "=" with whitespace beside it, so up to
    ``_SPACING`` whitespace may lie on either side of it), as every writer puts it (the schema's order); that
    reference is among those :func:`_decode_references` and :func:`_spaced_references` read. Any other tag counts as
    one without (calamine places it one step past the one before): an ``r`` later in the tag is then counted twice
    (an upper bound), and an ``r="..."`` inside another attribute's value, on another element, or repeated, never
    hides a tag without one."""
    after = at + len(name)
    match = _DELIMITER[a[after]]
    for i, ch in enumerate(name):
        match &= a[at + i] == ch
    own = match & _IS_SPACE[a[after]] & (a[after + 1] == 0x72)
    at_eq = _past_spaces(a, after + 2) if spaced else after + 2
    own &= a[at_eq] == 0x3D
    at_quote = _past_spaces(a, at_eq + 1) if spaced else at_eq + 1
    quote = a[at_quote]
    own &= (quote == 0x22) | (quote == 0x27)
    return int(match.sum()), int(own.sum())


def _past_spaces(a: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``at`` moved past up to ``_SPACING`` whitespace bytes of ``a``."""
    for _ in range(_SPACING):
        at = np.where(_IS_SPACE[a[at]], at + 1, at)
    return at


def _spaced_eq(a: np.ndarray, eq: np.ndarray) -> bool:
    """Whether any "=" of the bytes ``a`` (at ``eq``) has whitespace beside it, where a reference may be written
    ``r = "A1"``: the neighbours of the "="s looked up at once (numpy, without the GIL), not the bytes searched
    once per whitespace character and side (eight passes holding the GIL were a fifth of a file's work)."""
    if not len(eq):
        return False
    before, after = eq[eq > 0] - 1, eq[eq < len(a) - 1] + 1
    return bool(_IS_SPACE[a[before]].any() or _IS_SPACE[a[after]].any())


_SPACED_REF = re.compile(rb"[ \t\n\r]r(?:[ \t\n\r]+=[ \t\n\r]*|=[ \t\n\r]+)")
_SPACED_QUOTE = re.compile(rb"[ \t\n\r]r[ \t\n\r]{0,%d}=[ \t\n\r]{0,%d}(['\"])" % (_SPACING, _SPACING))


def _spaced_references(buf: bytes, start: int, end: int) -> tuple[int, int]:
    """:func:`_decode_references` of the references written with whitespace around their ``=`` (``r = "XFD9"``,
    whose ``r`` lies in ``buf[start:end]``): XML allows it and calamine places the cell there, so a sheet could
    otherwise claim a huge rectangle unseen. Each is rewritten as ``r="..."`` into a small buffer of its own and
    decoded the same way; one with more than ``_SPACING`` whitespace on a side of its ``=``, or no quote after it,
    counts as beyond every limit."""
    spans = []
    for m in _SPACED_REF.finditer(buf, max(start - 1, 0)):  # to the buffer's end: a match may cross ``end``
        if m.start() + 1 >= end:
            break
        if m.start() + 1 < start:
            continue
        quoted = _SPACED_QUOTE.match(buf, m.start())
        if quoted is None:
            return BEYOND, BEYOND
        q = quoted.start(1)
        spans.append(b" r=" + buf[q : q + 13])
    if not spans:
        return 0, 0
    packed = b"".join(spans) + b"\0" * 16
    return _decode_references(packed, np.arange(len(spans), dtype=np.int64) * 16 + 1)


def _decode_references(buf: bytes, eq: np.ndarray) -> tuple[int, int]:
    """(last row, last column) of the references among the ``r=`` at ``eq`` (the
    ``r`` after a space, the ``=`` before a quote): up to 4 letters, either case, then up to 8 digits; a reference
    too long for Excel (4 letters, 8 digits) counts as beyond any limit. The 16 bytes from the
    space before each ``r`` are gathered at once (two unaligned 8-byte words) and decoded column-wise."""
    if len(eq) == 0:
        return 0, 0
    words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    window = np.empty((len(eq), 2), dtype="<u8")
    window[:, 0] = words[eq - 1]
    window[:, 1] = words[eq + 7]
    window = window.view(np.uint8)  # one row per r=: space, r, =, quote, then 12 bytes of the reference
    quote = window[:, 3]
    valid = _IS_SPACE[window[:, 0]] & ((quote == 0x22) | (quote == 0x27))
    window = window[:, 4:] if valid.all() else window[valid, 4:]
    if len(window) == 0:
        return 0, 0
    upper = window[:, :4] & np.uint8(0xDF)
    letter = (upper - np.uint8(0x41)) <= np.uint8(25)
    run = letter[:, 0].copy()
    n_letters = run.astype(np.int8)
    for k in (1, 2, 3):
        run &= letter[:, k]
        n_letters += run
    if run.any():  # four letters or more
        return BEYOND, BEYOND
    stop = (window - np.uint8(0x30)) > np.uint8(9)  # not a digit
    stop[:, -1] = True
    bits = stop.view(np.uint8) @ _BIT_VALUES  # bit j: column j is not a digit
    bits &= np.uint16(0xFFFF) << n_letters.astype(np.uint16)  # only from the first column after the letters
    n_digits = _LOWEST_BIT[bits] - n_letters  # the first non-digit after the letters
    if n_digits.max() > 7:
        return BEYOND, BEYOND
    rows = np.arange(len(window))
    padded = (window[rows, n_letters] == 0x30) & (n_digits > 1)  # leading zeros: A0000001 is A1 to calamine
    return (
        _largest_value(window, n_letters, n_digits) if padded.any() else _largest_in(window, n_letters, n_digits),
        _largest_in(upper, np.zeros_like(n_letters), n_letters, 26, 0x40),
    )


def _largest_value(window: np.ndarray, first: np.ndarray, length: np.ndarray) -> int:
    """The largest number written in decimal digits in ``window``'s rows from column ``first`` for ``length`` bytes
    (at most 7), by value: where some are written with leading zeros, the longest is not always the largest."""
    rows = np.arange(len(window))
    value = np.zeros(len(window), dtype=np.int64)
    for k in range(int(length.max())):
        digit = window[rows, np.minimum(first + k, window.shape[1] - 1)].astype(np.int64) - 0x30
        value = np.where(k < length, value * 10 + digit, value)
    return int(value.max())


def _largest_in(window: np.ndarray, first: np.ndarray, length: np.ndarray, base: int = 10, zero: int = 0x30) -> int:
    """The largest number written in ``window``'s rows from column ``first`` (0 to 3) for ``length`` bytes (digit d
    is byte ``zero + d``; at most 8 of them): a longer one is larger, and among the longest the largest is the
    greatest string, compared as big-endian integers of the same width. Only where no number has a leading zero
    (column letters have none: A is 1): else :func:`_largest_value`."""
    longest = int(length.max())
    if longest == 0:
        return 0
    rows = np.flatnonzero(length == longest)
    starts = first[rows]
    best = b""
    for column in range(int(starts.min()), int(starts.max()) + 1):
        picked = rows[starts == column] if len(rows) and starts.min() != starts.max() else rows
        if len(picked) == 0:
            continue
        part = np.zeros((len(picked), 8), dtype=np.uint8)
        part[:, :longest] = window[picked, column : column + longest]
        best = max(best, int(part.view(">u8").max()).to_bytes(8, "big")[:longest])
    value = 0
    for ch in best:
        value = value * base + ch - zero
    return value


class _CellNotes:
    """What a sheet's cells say beyond their extent, seen chunk by chunk (each chunk scanned with the last
    ``_CELL_TAIL`` bytes of the one before, so a cell cut by a chunk's end is seen whole; cells are noted by their
    reference, so one seen twice counts once). Cheap: the regular expressions run only on a chunk whose bytes
    may hold what they look for (``formulas``: whether the caller saw a formula element's start there)."""

    def __init__(self) -> None:
        self.tail = b""
        self.unknown_errors = False
        self.unsaved: set[tuple[int, int]] = set()

    def scan(self, block: bytes, formulas: bool = True) -> None:
        seg = self.tail + block if self.tail else block
        self.tail = seg[-_CELL_TAIL:]
        if not self.unknown_errors and b"#" in seg and b">#" in seg:
            self.unknown_errors = any(m.group(1) not in KNOWN_ERRORS for m in _ERROR_VALUE.finditer(seg))
        if (
            formulas
            and len(self.unsaved) < MAX_NOTED
            and (b"f></" in seg or b"/></c>" in seg or b"<v/>" in seg or b"<v></v>" in seg)
        ):
            for m in _UNSAVED.finditer(seg):
                if len(self.unsaved) >= MAX_NOTED:
                    break
                self.unsaved.add((int(m.group(2)), _column_index(m.group(1))))


def _column_index(letters: bytes) -> int:
    """0-based column of an Excel column name (A is 0, AA is 26)."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 0x40
    return n - 1

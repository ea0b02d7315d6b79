"""Cheap checks before a reader expands a file: what it is (a regular file), its size on disk, the zip directory
of a workbook, the cells a sheet really references, and how many records a CSV physically holds (flows/limits.py
says which limits and why).

calamine allocates a sheet as the rectangle from its first to its last referenced cell, whatever the sheet's
``<dimension>`` element claims (a sheet with a lying dimension reads fine; one with cells at A1 and XFD1048576
aborts the process). So every worksheet's XML is streamed once through zlib, in bounded chunks, and its ``r="..."``
references are decoded with numpy (one gather per character position, no per-cell Python loop) into the last row
and column. Elements without a reference count as one step past the last one, so the bound holds for sheets that
omit them. The workbook is read into memory once and the same bytes are checked and handed to calamine, so the file
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
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flows.limits import RATIO_FLOOR_BYTES, Limits
from flows.names import shown

CHUNK = 8 << 20
_TAIL = 16  # bytes looked at past a chunk's end: a reference (r=" + 3 letters + 8 digits) is read whole
_HISTORY = 24  # bytes kept before a chunk: a tag's "<prefix:" (prefix up to 16 characters) is seen whole
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[[0x20, 0x09, 0x0A, 0x0D]] = True
_NAME = np.zeros(256, dtype=bool)  # characters of an XML name prefix
_NAME[[*range(0x30, 0x3A), *range(0x41, 0x5B), *range(0x61, 0x7B), 0x5F, 0x2D, 0x2E]] = True
_DELIMITER = _IS_SPACE.copy()  # what may follow a tag's name
_DELIMITER[[0x3E, 0x2F]] = True
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
    """Refuse a workbook whose zip directory or sheets exceed the limits, before calamine opens it. Bytes that
    are not a zip (an old .xls, random bytes) pass: calamine tells what they are. Returns each worksheet entry's
    extent, by entry name (what else the scan saw: unknown error values, formulas without a saved result)."""
    check_size(len(data), where, limits)
    if not data.startswith(b"PK"):
        return {}
    extents = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            _check_directory(infos, where, limits)
            for info in _worksheets(zf, infos):
                extents[info.filename] = extent = sheet_extent(zf, info)
                _check_extent(extent, f"{where} ({_entry_name(info)})", limits)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError) as exc:
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


def _worksheets(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The entries calamine may read as sheets: everything under xl/worksheets/ and every target of a worksheet
    relationship (resolved as calamine resolves it: relative to xl/)."""
    targets = set()
    for info in infos:
        if not info.filename.lower().endswith(".rels"):
            continue
        if info.file_size > MAX_RELS_BYTES:
            raise UnreadableContainer(f"relationship part {_entry_name(info)} of {info.file_size:,} bytes")
        for tag in re.findall(rb"<(?:\w+:)?Relationship\b[^>]*>", zf.read(info)):
            kind = re.search(rb"""\bType\s*=\s*["']([^"']*)["']""", tag)
            target = re.search(rb"""\bTarget\s*=\s*["']([^"']*)["']""", tag)
            if kind and target and kind.group(1).rstrip(b"/").endswith(b"/worksheet"):
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


def sheet_extent(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Extent:
    """Stream one worksheet's XML and bound the rectangle calamine would allocate for it; on the way, note error
    values calamine does not know and formula cells without a saved result (:class:`_CellNotes`)."""
    max_row = max_col = row_refs = cell_refs = row_tags = cell_tags = 0
    carry = b" " * _HISTORY  # bytes already scanned, kept so a tag's start is seen from the next chunk
    notes = _CellNotes()
    with zf.open(info) as fh:
        while True:
            block = fh.read(CHUNK)
            notes.scan(block)
            if block and len(carry) + len(block) <= _HISTORY + _TAIL:  # too short to scan yet
                carry += block
                continue
            buf = carry + block if block else carry + b"\0" * _TAIL
            end = len(buf) - _TAIL if block else len(carry)
            a = np.frombuffer(buf, dtype=np.uint8)
            r, c, nr, nc = _references(a, _HISTORY, end)
            max_row, max_col, row_refs, cell_refs = max(max_row, r), max(max_col, c), row_refs + nr, cell_refs + nc
            tags = _open_tags(a, _HISTORY, end)
            row_tags, cell_tags = row_tags + tags[0], cell_tags + tags[1]
            if not block:
                break
            carry = buf[end - _HISTORY :]
    rows = max_row + max(row_tags - row_refs, 0)  # a row or cell without r= is one past the one before
    columns = max_col + max(cell_tags - cell_refs, 0)
    return Extent(
        rows=rows,
        columns=columns,
        cells=cell_tags,
        unknown_errors=notes.unknown_errors,
        unsaved=frozenset(notes.unsaved),
    )


class _CellNotes:
    """What a sheet's cells say beyond their extent, seen chunk by chunk (each chunk scanned with the last
    ``_CELL_TAIL`` bytes of the one before, so a cell cut by a chunk's end is seen whole; cells are noted by their
    reference, so one seen twice counts once). Cheap: the regular expressions run only on a chunk whose bytes
    may hold what they look for."""

    def __init__(self) -> None:
        self.tail = b""
        self.unknown_errors = False
        self.unsaved: set[tuple[int, int]] = set()

    def scan(self, block: bytes) -> None:
        seg = self.tail + block
        self.tail = seg[-_CELL_TAIL:]
        if not self.unknown_errors and b">#" in seg:
            self.unknown_errors = any(m.group(1) not in KNOWN_ERRORS for m in _ERROR_VALUE.finditer(seg))
        if len(self.unsaved) < MAX_NOTED and (
            b"f></" in seg or b"/></c>" in seg or b"<v/>" in seg or b"<v></v>" in seg
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


def _references(a: np.ndarray, start: int, end: int) -> tuple[int, int, int, int]:
    """(last row, last column, row references, cell references) of the ``r="..."`` attributes whose ``r`` lies in
    ``a[start:end]``; a reference too long for Excel (4+ letters, 8+ digits) counts as beyond any limit.
    Column-wise over the hits (one gather per character position), never a loop over cells."""
    eq = np.flatnonzero(a[start + 1 : end + 1] == 0x3D) + start + 1  # the "=" of r="
    quote = a[eq + 1]
    eq = eq[(a[eq - 1] == 0x72) & ((quote == 0x22) | (quote == 0x27)) & _IS_SPACE[a[eq - 2]]]  # r=, not sqref=
    hit = eq + 2  # the reference's first character
    if len(hit) == 0:
        return 0, 0, 0, 0
    n_letters = _run_length(a, hit, 4, 0x41, 0x5A, fold=True)  # A-Z, either case
    digits_at = hit + n_letters
    n_digits = _run_length(a, digits_at, 8, 0x30, 0x39)
    is_cell = n_letters > 0
    counts = (int((~is_cell).sum()), int(is_cell.sum()))
    if n_letters.max() > 3 or n_digits.max() > 7:
        return BEYOND, BEYOND, *counts
    return _largest(a, digits_at, n_digits, 10, 0x30), _largest(a, hit, n_letters, 26, 0x40, fold=True), *counts


def _run_length(a: np.ndarray, start: np.ndarray, width: int, low: int, high: int, fold: bool = False) -> np.ndarray:
    """How many bytes from each ``start`` (up to ``width``) lie in [low, high] (``fold``: a-z read as A-Z)."""
    length = np.zeros(len(start), dtype=np.int64)
    going = np.ones(len(start), dtype=bool)
    for k in range(width):
        ch = a[start + k] & np.uint8(0xDF) if fold else a[start + k]
        going &= (ch - np.uint8(low)) <= np.uint8(high - low)  # uint8 wraps below low
        length += going
    return length


def _largest(a: np.ndarray, start: np.ndarray, length: np.ndarray, base: int, zero: int, fold: bool = False) -> int:
    """The largest number written from the ``start``s (digit d is byte ``zero + d``): a longer one is larger, so
    only the longest are evaluated, at a fixed width."""
    longest = int(length.max())
    at = start[length == longest]
    value = np.zeros(len(at), dtype=np.int64)
    for k in range(longest):
        ch = a[at + k] & np.uint8(0xDF) if fold else a[at + k]
        value = value * base + (ch.astype(np.int64) - zero)
    return int(value.max()) if len(at) else 0


def _open_tags(a: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """How many ``<row`` and ``<c`` opening tags (with or without a namespace prefix, as calamine matches local
    names) start in ``a[start:end]``; a prefixed tag is counted at its colon."""
    names = np.flatnonzero(a[start:end] == 0x3C) + start + 1  # just after "<"
    colon = np.flatnonzero(a[start:end] == 0x3A) + start
    if len(colon):
        opens = np.zeros(len(colon), dtype=bool)
        run = np.ones(len(colon), dtype=bool)  # only name characters between "<" and the colon
        for k in range(1, _HISTORY - 7):
            before = a[colon - k]
            opens |= run & (before == 0x3C) & (k > 1)
            run &= _NAME[before]
        names = np.concatenate([names, colon[opens] + 1])
    first = a[names]
    names = names[(first == 0x63) | (first == 0x72)]  # c or r: most tags end here
    return _local_is(a, names, b"row"), _local_is(a, names, b"c")


def _local_is(a: np.ndarray, at: np.ndarray, name: bytes) -> int:
    match = _DELIMITER[a[at + len(name)]]
    for i, ch in enumerate(name):
        match &= a[at + i] == ch
    return int(match.sum())

"""Steward workbooks (warehouse/export.py), a CSV source read back: its records numbered as the loader numbers
them, in its declared encoding, with the delimiter the loader would find, so that the Data sheet puts record *n*
on row *n* and a failure's cell address points at the same cell.

The file is read as a stream, whatever its size: a first pass decodes it block by block to find the encoding the
whole file decodes in (the text is dropped as it goes), the delimiter is sniffed on its first 64 K characters, and
the records are then parsed lazily, one at a time, from the file read again block by block (the Data sheet is written
as a stream). Only a block (BLOCK bytes, decoded) and the lines of the record being parsed are held."""

from __future__ import annotations

import codecs
import csv
import io
import re
import sys
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

BLOCK = 1 << 20  # bytes read (and decoded) at a time
SNIFF_CHARS = 65536  # the delimiter is sniffed on the file's first characters


def csv_rows(
    path: Path, headers: set[str] | None = None, header_row: int = 1, declared: str | None = None
) -> tuple[Iterator[list[str]], str, str]:
    """The file's records, numbered as the loader numbers them; encoding: the source's declared one, else utf-8-sig,
    else cp1256 (the first the whole file decodes in); delimiter sniffed among , ; and tab (default ,). ``headers``
    (as the failures name them) double-check the sniffed delimiter: if the header row does not hold them all but
    another delimiter's does, that one is taken."""
    for encoding in dict.fromkeys([declared, "utf-8-sig", "cp1256"]):
        if encoding is None:
            continue
        if encoding == "utf-8" or encoding == "utf8":
            encoding = "utf-8-sig"
        if (found := _decodes(path, encoding)) is not None:
            codec, errors = found, "strict"
            break
    else:  # pragma: no cover - cp1256 maps nearly every byte
        encoding, codec, errors = "cp1256 (with replacements)", "cp1256", "replace"
    text = lambda: _text(path, codec, errors)  # noqa: E731 - the file's text, read again block by block
    head = "".join(_take(text(), SNIFF_CHARS + 1))
    sample = head[:SNIFF_CHARS]
    if len(head) > len(sample) and "\n" in sample:
        sample = sample[: sample.rfind("\n")]
    del head
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    parse: Callable[[str], Iterator[list[str]]] = lambda d: _records(_lines(text()), d)  # noqa: E731
    if headers and not _holds(parse(delimiter), headers, header_row):
        for other in (d for d in ",;\t" if d != delimiter):
            if _holds(parse(other), headers, header_row):
                return parse(other), encoding, other
    return parse(delimiter), encoding, delimiter


def _codec(path: Path, encoding: str) -> str:
    """The codec to read ``encoding`` with block by block: UTF-16 and UTF-32 without a byte order mark are read in
    the machine's byte order, as ``bytes.decode`` reads them (their incremental decoders refuse them)."""
    name = codecs.lookup(encoding).name
    if name not in ("utf-16", "utf-32"):
        return encoding
    with path.open("rb") as fh:
        start = fh.read(4)
    boms = (
        (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) if name == "utf-16" else (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
    )
    if any(start.startswith(bom) for bom in boms):
        return encoding
    return f"{name}-{'le' if sys.byteorder == 'little' else 'be'}"


def _decodes(path: Path, encoding: str) -> str | None:
    """The codec the whole file decodes with in ``encoding`` (``_codec``), read block by block; None where
    ``bytes.decode`` fails: a byte sequence the encoding refuses, an unknown encoding or one that is not a text
    encoding (an empty file decodes in any)."""
    try:
        if path.stat().st_size == 0:
            return encoding
        if not getattr(codecs.lookup(encoding), "_is_text_encoding", True):  # as bytes.decode refuses it
            return None
        codec = _codec(path, encoding)
        decoder = codecs.getincrementaldecoder(codec)("strict")
        with path.open("rb") as fh:
            while block := fh.read(BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except (UnicodeError, LookupError):
        return None
    return codec


def _text(path: Path, codec: str, errors: str) -> Iterator[str]:
    """The file's text, decoded block by block (no newline translation)."""
    decoder = None
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            decoder = decoder or codecs.getincrementaldecoder(codec)(errors)
            if chunk := decoder.decode(block):
                yield chunk
        if decoder is not None and (chunk := decoder.decode(b"", final=True)):
            yield chunk


def _take(chunks: Iterator[str], n: int) -> Iterator[str]:
    """The first ``n`` characters of a stream of text (the stream is closed after them)."""
    try:
        for chunk in chunks:
            if len(chunk) >= n:
                yield chunk[:n]
                return
            yield chunk
            n -= len(chunk)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


MAX_RECORD_LINES = 10  # as flows/extract.py: a record over more lines is a quote left open


#: the line boundaries of ``str.splitlines``
_LINE_END = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _lines(chunks: Iterator[str]) -> Iterator[str]:
    """``text.splitlines(keepends=True)`` of the text the chunks make up, one line at a time: only the line being
    read is held (a "\\r" that ends a chunk waits for the next one, which may start with its "\\n")."""
    pending: list[str] = []  # the pieces of the line not yet ended
    for chunk in chunks:
        if not _LINE_END.search(chunk):
            pending.append(chunk)
            continue
        text = "".join(pending) + chunk if pending else chunk
        pending = []
        pos = 0
        for m in _LINE_END.finditer(text):
            if m.end() == len(text) and m.group() == "\r":
                break  # perhaps the first half of a "\r\n": decided with the next chunk
            yield text[pos : m.end()]
            pos = m.end()
        if pos < len(text):
            pending.append(text[pos:])
    text = "".join(pending)  # the last line(s): a "\r" held back may end one
    pos = 0
    for m in _LINE_END.finditer(text):
        yield text[pos : m.end()]
        pos = m.end()
    if pos < len(text):
        yield text[pos:]


def _records(source: Iterator[str], delimiter: str) -> Iterator[list[str]]:
    """CSV records as the loader numbers them, from the file's lines: a quoted value may hold line breaks, but a
    record that would run over more than MAX_RECORD_LINES lines is a quote left open: its first line stands alone
    (as one cell, the loader quarantined it) and the lines after it are records again."""
    lines: list[str] = []  # the lines read ahead, from the current one on (at most MAX_RECORD_LINES + 1)
    while True:
        if not lines:
            lines.extend(islice(source, 1))
            if not lines:
                return
        j = 0
        chunk = lines[0]
        while chunk.count('"') % 2 and j < MAX_RECORD_LINES:
            if j + 1 >= len(lines):
                lines.extend(islice(source, 1))
                if j + 1 >= len(lines):
                    break
            j += 1
            chunk += lines[j]
        if chunk.count('"') % 2:  # still open: the loader set this line aside and read on from the next
            yield [lines.pop(0).rstrip("\r\n")]
            continue
        yield from csv.reader(io.StringIO(chunk, newline=""), delimiter=delimiter)
        del lines[: j + 1]


def _holds(rows: Iterator[list[str]], headers: set[str], header_row: int) -> bool:
    row = next(islice(rows, header_row - 1, None), None)
    close = getattr(rows, "close", None)
    if close is not None:
        close()  # the file it reads is closed now, not when the generator is collected
    if row is None:
        return False
    found = {cell.replace("\ufeff", "").strip() for cell in row}
    return {h.replace("\ufeff", "") for h in headers} <= found

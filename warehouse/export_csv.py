"""Steward workbooks (warehouse/export.py), a CSV source read back: its records numbered as the loader numbers
them, in its declared encoding, with the delimiter the loader would find, so that the Data sheet puts record *n*
on row *n* and a failure's cell address points at the same cell. The records are parsed lazily, one at a time (the
Data sheet is written as a stream): only the decoded text is held."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from itertools import islice
from pathlib import Path


def csv_rows(
    path: Path, headers: set[str] | None = None, header_row: int = 1, declared: str | None = None
) -> tuple[Iterator[list[str]], str, str]:
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
    del raw  # the text alone is kept
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rfind("\n")]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    parse = lambda d: _records(text, d)  # noqa: E731
    if headers and not _holds(parse(delimiter), headers, header_row):
        for other in (d for d in ",;\t" if d != delimiter):
            if _holds(parse(other), headers, header_row):
                return parse(other), encoding, other
    return parse(delimiter), encoding, delimiter


MAX_RECORD_LINES = 10  # as flows/extract.py: a record over more lines is a quote left open


#: the line boundaries of ``str.splitlines``
_LINE_END = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _lines(text: str) -> Iterator[str]:
    """``text.splitlines(keepends=True)``, one line at a time."""
    pos = 0
    for m in _LINE_END.finditer(text):
        yield text[pos : m.end()]
        pos = m.end()
    if pos < len(text):
        yield text[pos:]


def _records(text: str, delimiter: str) -> Iterator[list[str]]:
    """CSV records as the loader numbers them: a quoted value may hold line breaks, but a record that would run over
    more than MAX_RECORD_LINES lines is a quote left open: its first line stands alone (as one cell, the loader
    quarantined it) and the lines after it are records again."""
    source = _lines(text)
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
    if row is None:
        return False
    found = {cell.replace("\ufeff", "").strip() for cell in row}
    return {h.replace("\ufeff", "") for h in headers} <= found

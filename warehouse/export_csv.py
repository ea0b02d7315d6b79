"""Steward workbooks (warehouse/export.py), a CSV source read back: its records numbered as the loader numbers
them, in its declared encoding, with the delimiter the loader would find, so that the Data sheet puts record *n*
on row *n* and a failure's cell address points at the same cell."""

from __future__ import annotations

import csv
import io
from pathlib import Path


def csv_rows(
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

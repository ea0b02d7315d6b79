"""The steward export reads a CSV source as a stream (issue 17, point 8): the Python heap's peak while reading a
CSV's records back for the Data sheet is a few blocks, whatever the file's size (tracemalloc counts every Python
allocation, whatever the machine's speed), also when the file must be decoded through to its end to find its
encoding and when the header sends the reader back for another delimiter. And the records are those the reader
gave when it read the whole file: the same encoding, delimiter and records, a block boundary anywhere."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest

from warehouse import export_csv
from warehouse.export_csv import csv_rows

HEADER = "Project;Project Name;Partner;Domain;Year;Amount (EUR '000);Currency;Booking Date\n"
PAD = "\u0645\u0634\u0631\u0648\u0639 " * 150  # Arabic text: 2 bytes a character in UTF-8, 2 in memory too


def _source(path: Path, rows: int, tail: bytes = b"") -> Path:
    """A GAMI-style CSV of about 1.6 KB a record (``tail``: bytes appended at the end)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        for i in range(rows):
            fh.write(f"GAMI-P{i:06d};{PAD}{i};Atlantis;Maintenance;2024;{i % 997},50;EUR;2024-03-01\r\n")
    if tail:
        with path.open("ab") as fh:
            fh.write(tail)
    return path


def _peak_mb(path: Path, headers: set[str] | None, declared: str | None = None) -> tuple[float, int, str, str]:
    tracemalloc.start()
    try:
        rows, encoding, delimiter = csv_rows(path, headers, 1, declared)
        n = sum(1 for _ in rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, n, encoding, delimiter


@pytest.mark.parametrize(
    ("tail", "headers", "declared", "encoding", "delimiter"),
    [
        (b"", {"Project", "Partner"}, None, "utf-8-sig", ";"),
        # the last byte is not UTF-8: the whole file is decoded before cp1256 is chosen, and read again
        (b"caf\xe9;x\r\n", {"Project", "Partner"}, "utf-8", "cp1256", ";"),
        # the header does not hold the columns the failures name: every delimiter's header is read
        (b"", {"Nowhere"}, None, "utf-8-sig", ";"),
    ],
)
def test_reading_a_csv_source_holds_a_few_blocks_not_the_file(
    tmp_path, monkeypatch, tail, headers, declared, encoding, delimiter
):
    """A file of ~3.2 MB read in blocks of 16 KB: the heap's peak stays under 1 MB (a reader that holds the file
    holds its bytes or its text: over 3 MB), and a file ten times smaller costs about the same."""
    assert export_csv.BLOCK <= 1 << 20  # the real block: some 8 MB of heap at most, whatever the file's size
    monkeypatch.setattr(export_csv, "BLOCK", 16 << 10)
    small = _source(tmp_path / "small.csv", 200, tail)
    large = _source(tmp_path / "large.csv", 2_000, tail)
    assert large.stat().st_size > 3 * 2**20
    peak_small, n_small, *_ = _peak_mb(small, headers, declared)
    peak, n, found_encoding, found_delimiter = _peak_mb(large, headers, declared)
    print({"small": round(peak_small, 2), "large": round(peak, 2)})
    assert (found_encoding, found_delimiter) == (encoding, delimiter)
    assert (n_small, n) == (201 + bool(tail), 2_001 + bool(tail))
    assert peak < 1, f"{peak:.1f} MB of Python heap to read a {large.stat().st_size / 2**20:.1f} MB CSV"
    assert peak < peak_small + 0.5, f"{peak_small:.2f} -> {peak:.2f} MB: the heap grows with the file"


# -- the same records as the whole-file reader -------------------------------------------------------------------
def _whole_file(path: Path, headers: set[str] | None, header_row: int, declared: str | None):
    """The reader this module had before it streamed (the file's bytes and text held whole), for comparison."""
    import csv
    import io

    raw = path.read_bytes()
    for encoding in dict.fromkeys([declared, "utf-8-sig", "cp1256"]):
        if encoding is None:
            continue
        if encoding in ("utf-8", "utf8"):
            encoding = "utf-8-sig"
        try:
            text = raw.decode(encoding)
            break
        except (UnicodeDecodeError, LookupError):
            continue
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rfind("\n")]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","

    def parse(d: str) -> list[list[str]]:
        lines, out, i = text.splitlines(keepends=True), [], 0
        while i < len(lines):
            j, chunk = 0, lines[i]
            while chunk.count('"') % 2 and j < export_csv.MAX_RECORD_LINES and i + j + 1 < len(lines):
                j += 1
                chunk += lines[i + j]
            if chunk.count('"') % 2:
                out.append([lines[i].rstrip("\r\n")])
                i += 1
                continue
            out += list(csv.reader(io.StringIO(chunk, newline=""), delimiter=d))
            i += j + 1
        return out

    def holds(rows: list[list[str]]) -> bool:
        if len(rows) < header_row:
            return False
        found = {c.replace("\ufeff", "").strip() for c in rows[header_row - 1]}
        return {h.replace("\ufeff", "") for h in headers or ()} <= found

    if headers and not holds(parse(delimiter)):
        for other in (d for d in ",;\t" if d != delimiter):
            if holds(parse(other)):
                return parse(other), encoding, other
    return parse(delimiter), encoding, delimiter


_PIECES = ["a", "b", ",", ";", "\t", '"', "\n", "\r", "\r\n", "\x0b", "\x85", "\u2028", "\u0645", "\xe9", " ", "\ufeff"]
_CASES = [
    (b"a;b\r\nc;d\r\n", None),
    (b"a;b\r", None),
    (b"a;b\r\r\nc\rd", None),
    (b'"a\r\nb";c\n"open\nx;y\n', None),
    (b"\xef\xbb\xbfa,b\n1,2", "utf-8"),
    (b"\xff\xfea\x00;\x00b\x00\r\x00\n\x00", "utf-16"),  # a byte order mark
    (b"a\x00;\x00b\x00\n\x00", "utf-16"),  # none: read in the machine's order, as bytes.decode reads it
    (b"a\x00;", "utf-16"),  # an odd length: not UTF-16
    (b"a;\xe9\n", "utf-8"),
    (b"a;b\n", "rot13"),  # not a text encoding
    (b"", "nonsense"),  # an empty file decodes in any encoding
]


@pytest.mark.parametrize("block", [1 << 20, 2, 3, 5])
def test_the_stream_reads_the_records_the_whole_file_reader_read(tmp_path, monkeypatch, block):
    """Blocks of 2, 3 and 5 bytes split every "\\r\\n", multi-byte character and byte order mark somewhere."""
    monkeypatch.setattr(export_csv, "BLOCK", block)
    rng = random.Random(17)
    cases = list(_CASES)
    for _ in range(300):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 60)))
        encoding = rng.choice(["utf-8", "utf-8-sig", "cp1256", "utf-16", "utf-16-be"])
        data = text.encode(encoding, "replace") + (bytes([rng.randint(128, 255)]) if rng.random() < 0.2 else b"")
        cases.append((data, rng.choice([None, "utf-8", "utf-16", "cp1256", "latin-1", "nonsense"])))
    path = tmp_path / "source.csv"
    for i, (data, declared) in enumerate(cases):
        path.write_bytes(data)
        headers = [None, {"a"}, {"a", "b"}][i % 3]
        header_row = 1 + i % 2
        rows, encoding, delimiter = csv_rows(path, headers, header_row, declared)
        got = (list(rows), encoding, delimiter)
        assert got == _whole_file(path, headers, header_row, declared), (data, declared, headers, header_row)


def test_the_delimiter_is_sniffed_on_the_first_64k_characters_as_before(tmp_path):
    """The sample ends at the last line break of the first 64 K characters: a line of tabs past it changes
    nothing."""
    path = tmp_path / "source.csv"
    body = "".join(f"P{i};x{i};{i}\n" for i in range(9_000))
    path.write_text("a;b;c\n" + body + "\t".join("x" * 40) + "\n" * 3, encoding="utf-8")
    assert len(path.read_text(encoding="utf-8")) > 65536
    rows, encoding, delimiter = csv_rows(path, {"a", "b"}, 1, None)
    assert (list(rows), encoding, delimiter) == _whole_file(path, {"a", "b"}, 1, None)
    assert delimiter == ";"

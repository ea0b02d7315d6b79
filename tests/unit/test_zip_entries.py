"""The pre-check reads a workbook's zip entries as calamine reads them (flows/preflight.py entry_blocks): a stored
entry as all its bytes, a deflated one to the end of its stream, whatever size the directory declares; and
refuses one that holds other than what the directory says. For honest entries it reads what Python's zipfile
reads, in blocks of at most CHUNK bytes."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

import pytest

from flows import preflight
from flows.limits import Limits
from flows.preflight import UnreadableContainer, check_workbook, entry_blocks
from tests.hostile.zipbuild import Entry, understated, write_zip


def _zip(entries: dict[str, tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, (body, method) in entries.items():
            zf.writestr(name, body, compress_type=method)
    return out.getvalue()


def _blocks(data: bytes, name: str) -> list[bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return list(entry_blocks(zf, zf.getinfo(name)))


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
@pytest.mark.parametrize("size", [0, 1, 999, 5_000, 70_000])
def test_an_honest_entry_reads_as_zipfile_reads_it_in_bounded_blocks(method, size, monkeypatch):
    monkeypatch.setattr(preflight, "CHUNK", 1000)
    rng = random.Random(size)
    body = bytes(rng.choice(b"<c r='A1'/>x \n") for _ in range(size))
    data = _zip({"a.bin": (b"first", method), "xl/worksheets/sheet1.xml": (body, method), "z": (b"last", method)})
    blocks = _blocks(data, "xl/worksheets/sheet1.xml")
    assert b"".join(blocks) == body
    assert all(0 < len(b) <= 1000 for b in blocks)


def _entry(name: str, body: bytes, method: int, size: int | None = None, crc: int | None = None) -> Entry:
    if method == zipfile.ZIP_STORED:
        parts = [body]
    else:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        parts = [c.compress(body) + c.flush()]
    return Entry(name, parts, zlib.crc32(body) if crc is None else crc, len(body) if size is None else size, method)


def _written(tmp_path, *entries: Entry) -> bytes:
    write_zip(tmp_path / "w.zip", list(entries))
    return (tmp_path / "w.zip").read_bytes()


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_more_than_declared_is_refused_before_more_is_read(tmp_path, method, monkeypatch):
    monkeypatch.setattr(preflight, "CHUNK", 64)
    data = _written(tmp_path, understated("s.xml", b"<a>" * 10, b"<b/>" * 10_000, method))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("s.xml") == b"<a>" * 10  # Python's zipfile: the declared part, its CRC right
        blocks = entry_blocks(zf, zf.getinfo("s.xml"))
        with pytest.raises(UnreadableContainer, match="s.xml holds more than the 30 bytes its directory declares"):
            for _ in blocks:
                pass


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_less_than_declared_or_a_wrong_crc_is_refused(tmp_path, method):
    body = b"<row/>" * 100
    fewer = _written(tmp_path, _entry("s.xml", body, method, size=len(body) + 1))
    with pytest.raises(UnreadableContainer, match="s.xml holds 600 bytes, not the 601 declared"):
        _blocks(fewer, "s.xml")
    wrong = _written(tmp_path, _entry("s.xml", body, method, crc=zlib.crc32(body) ^ 1))
    with pytest.raises(UnreadableContainer, match="s.xml holds a bad CRC-32"):
        _blocks(wrong, "s.xml")


def test_a_deflate_stream_cut_short_is_refused(tmp_path):
    body = random.Random(1).randbytes(5_000)
    entry = _entry("s.xml", body, zipfile.ZIP_DEFLATED)
    entry.parts = [entry.parts[0][:-10]]  # the directory's compressed size is the cut one
    with pytest.raises(UnreadableContainer, match="s.xml is cut short"):
        _blocks(_written(tmp_path, entry), "s.xml")


def test_a_file_ending_inside_an_entry_is_refused(tmp_path):
    data = _written(tmp_path, _entry("s.xml", b"x" * 1000, zipfile.ZIP_STORED))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("s.xml")
        info.compress_size += 10_000  # past the file's end
        info.file_size += 10_000
        with pytest.raises(UnreadableContainer, match="s.xml is cut short"):
            list(entry_blocks(zf, info))


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_compression_excel_never_writes_is_refused(method):
    data = _zip(
        {"xl/worksheets/sheet1.xml": (b"<worksheet/>", zipfile.ZIP_DEFLATED), "docProps/app.xml": (b"<a/>", method)}
    )
    with pytest.raises(UnreadableContainer, match=f"docProps/app.xml is compressed with method {method}"):
        check_workbook(data, "w.xlsx", Limits.from_env())


def test_the_whole_workbook_is_checked_not_only_its_sheets(tmp_path):
    """An entry that is no sheet (shared strings: calamine reads them all into memory) may not hold more than the
    size the limits were checked against."""
    sheet = _entry("xl/worksheets/sheet1.xml", b'<worksheet><sheetData><row r="1"/></sheetData></worksheet>', 8)
    strings = understated("xl/sharedStrings.xml", b"<sst/>", b"<!--" + b"A" * 100_000 + b"-->")
    data = _written(tmp_path, sheet, strings)
    with pytest.raises(UnreadableContainer, match="sharedStrings.xml holds more than the 6 bytes"):
        check_workbook(data, "w.xlsx", Limits.from_env())
    honest = _written(tmp_path, sheet, _entry("xl/sharedStrings.xml", b"<sst/>", 8))
    assert check_workbook(honest, "w.xlsx", Limits.from_env())["xl/worksheets/sheet1.xml"].rows == 1


def test_the_local_header_is_read_for_where_the_data_start(tmp_path):
    """Data start after the local header's name and extra field, whose lengths may differ from the directory's."""
    data = bytearray(_written(tmp_path, _entry("s.xml", b"<honest/>", zipfile.ZIP_STORED)))
    # give the local header an extra field of 4 bytes: insert them and shift the directory's offsets
    names = struct.unpack_from("<H", data, 26)[0]
    data[28:30] = struct.pack("<H", 4)
    data[30 + names : 30 + names] = b"\xfe\xca\x00\x00"
    central = data.find(b"PK\x01\x02")
    end = data.find(b"PK\x05\x06")
    struct.pack_into("<I", data, end + 16, central)
    assert _blocks(bytes(data), "s.xml") == [b"<honest/>"]

"""A binary workbook (.xlsb) reaches calamine too (fastexcel detects the format from the bytes, whatever the file's
name), and calamine allocates its sheets as the rectangle of their cells: two cell records far apart aborted the
process. The pre-check reads the records as calamine frames them (flows/preflight.py xlsb_extent); these tests pin
the framing and hold the bound to calamine itself."""

from __future__ import annotations

import io
import random
import struct
import zipfile

import fastexcel
import pytest

from flows import preflight
from flows.limits import LimitExceeded, Limits
from flows.preflight import check_workbook, xlsb_extent
from tests.hostile.xlsbbuild import number, record, row_header, sheet, wide, xlsb


def bound(body: bytes, size: int | None = None) -> tuple[int, int]:
    blocks = [body] if size is None else [body[i : i + size] for i in range(0, len(body), size)]
    extent = xlsb_extent(blocks)
    return extent.rows, extent.columns


def test_the_rectangle_runs_to_the_last_row_and_column():
    body = sheet(row_header(0) + number(0) + number(2), row_header(4) + number(1))
    assert bound(body) == (5, 3)
    far = sheet(row_header(0) + number(0), row_header(1_048_575) + number(16_383))
    assert bound(far) == (1_048_576, 16_384)
    assert bound(sheet(row_header(2) + number(4_000_000_000))) == (3, 4_000_000_001)  # a column is 32 bits


def test_records_calamine_stops_at_end_the_count():
    after_end = sheet(row_header(0) + number(0)) + row_header(9) + number(9)  # past BrtEndSheetData
    assert bound(after_end) == (1, 1)
    past_last_row = sheet(row_header(0) + number(0), row_header(0x0010_0001) + number(9), row_header(3) + number(3))
    assert bound(past_last_row) == (1, 1)  # calamine ends the sheet at a row past 1,048,576


def test_lengths_and_types_are_framed_as_calamine_frames_them():
    filler = record(0x0401, bytes(20_000)) + record(0x25, b"\x05\x00\x00\x00" * 40)  # two-byte type, long lengths
    # a length whose fourth byte has its high bit set: calamine reads four bytes and no more
    odd = bytes([0x25, 0x81, 0x80, 0x80, 0x80]) + b"\x00"
    body = sheet(row_header(1) + filler + odd + number(7) + record(0x01, struct.pack("<II", 99, 0)))
    assert bound(body) == (2, 8)  # BrtCellBlank (0x01) is not a cell calamine keeps


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 4096])
def test_the_bound_does_not_depend_on_where_blocks_end(size):
    body = sheet(
        row_header(0) + number(0) + record(0x0401, bytes(300)),
        row_header(70_000) + record(0x25, bytes(5)) + number(1_000),
    )
    assert bound(body, size) == bound(body) == (70_001, 1_001)


def test_a_far_cell_in_an_xlsb_named_xlsx_is_refused():
    data = xlsb(sheet(row_header(0) + number(0), row_header(1_048_575) + number(16_383)))
    with pytest.raises(LimitExceeded, match=r"sheet1.bin\): the sheet's span \(1,048,576 rows x 16,384 columns\)"):
        check_workbook(data, "MOD_budget.xlsx", Limits.from_env())
    small = xlsb(sheet(row_header(0) + number(0), row_header(9) + number(3)))
    assert check_workbook(small, "MOD_budget.xlsx", Limits.from_env())["xl/worksheets/sheet1.bin"].area == 40


def test_a_sheet_named_like_xml_is_read_as_records_in_a_binary_workbook():
    """calamine reads the part its relationships name, whatever the name: the workbook part decides."""
    data = xlsb(sheet(row_header(0) + number(0), row_header(1_048_575) + number(16_383)))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info).replace(b"sheet1.bin", b"sheet1.xml")
            dst.writestr(info.filename.replace("sheet1.bin", "sheet1.xml"), body)
    with pytest.raises(LimitExceeded, match="1,048,576 rows x 16,384 columns"):
        check_workbook(out.getvalue(), "MOD_budget.xlsx", Limits.from_env())


def _cell(rng: random.Random, column: int) -> bytes:
    kind = rng.choice(["rk", "bool", "real", "string"])
    if kind == "rk":
        return record(0x02, struct.pack("<III", column, 0, (rng.randrange(100) << 2) | 2))
    if kind == "bool":
        return record(0x04, struct.pack("<II", column, 0) + b"\x01")
    if kind == "real":
        return number(column, rng.random())
    return record(0x06, struct.pack("<II", column, 0) + wide("s" * rng.randrange(70)))


def _filler(rng: random.Random) -> bytes:
    kind = rng.choice([0x01, 0x0B, 0x25, 0x0401, 0x1A0])
    return record(kind, rng.randbytes(rng.choice([0, 3, 4, 130, 17_000])))


@pytest.mark.parametrize("seed", range(30))
def test_the_bound_is_what_calamine_reads(seed, monkeypatch):
    monkeypatch.setattr(preflight, "CHUNK", 1 << 12)
    rng = random.Random(seed)
    rows, cells = [], []
    for r in sorted(rng.sample(range(3000), rng.randrange(1, 12))):
        columns = sorted(rng.sample(range(400), rng.randrange(1, 6)))
        rows.append(row_header(r) + b"".join(_filler(rng) + _cell(rng, c) for c in columns))
        cells += [(r, c) for c in columns]
    data = xlsb(sheet(*rows))
    read = fastexcel.read_excel(data).load_sheet(0, header_row=None)
    first_row, first_col = min(r for r, _ in cells), min(c for _, c in cells)
    last_row, last_col = max(r for r, _ in cells), max(c for _, c in cells)
    assert (read.total_height, read.width) == (last_row - first_row + 1, last_col - first_col + 1)
    assert check_workbook(data, "w.xlsx", Limits.from_env())["xl/worksheets/sheet1.bin"].rows == last_row + 1
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        extent = xlsb_extent(preflight.entry_blocks(zf, zf.getinfo("xl/worksheets/sheet1.bin")))
    assert (extent.rows, extent.columns) == (last_row + 1, last_col + 1)

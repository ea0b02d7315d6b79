"""An old-format workbook (.xls) reaches calamine too (fastexcel detects the format from the bytes, whatever the
file's name), and calamine builds every sheet when it opens it: it reserves the rectangle a DIMENSIONS record
declares and allocates the rectangle of the cells. One record declaring a million rows made it reserve 10 GB, two
cells far apart 137 GB: the process aborted. The pre-check reads the sheets' records as calamine frames them
(flows/preflight.py xls_extents); these tests pin the bound and hold it to calamine itself."""

from __future__ import annotations

import random
import struct

import fastexcel
import pytest

from flows.limits import LimitExceeded, Limits
from flows.preflight import UnreadableContainer, check_workbook, xls_extents
from tests.hostile.xlsbuild import bof, dimensions, mulrk, number, record, workbook, xls


def bounds(data: bytes) -> list[tuple[int, int]]:
    return [(e.rows, e.columns) for e in xls_extents(data)]


def test_each_sheet_runs_to_its_last_row_and_column():
    data = xls(workbook(number(0, 0) + number(3, 2), mulrk(1, 1, 3)))
    assert bounds(data) == [(4, 3), (2, 4)]
    reader = fastexcel.read_excel(data)
    read = [reader.load_sheet(i, header_row=None) for i in range(2)]
    assert [(s.total_height, s.width) for s in read] == [(4, 3), (1, 3)]  # calamine: from the first cell on


@pytest.mark.parametrize(
    "body, limit",
    [
        (number(0, 0) + number(65_535, 65_535), "DCF_MAX_COLUMNS"),  # 65,536 x 65,536 cells: 137 GB
        (dimensions(0, 4_000_000_000, 0, 256) + number(0, 0), "DCF_MAX_ROWS"),  # a 32-bit row count reserved
        (dimensions(0, 1_000_000, 0, 256) + number(0, 0), "DCF_MAX_CELLS"),  # 256 million cells reserved: 10 GB
        (dimensions(9, 1, 0, 2) + number(0, 0), "DCF_MAX_ROWS"),  # first past last: the count wraps
    ],
    ids=["far-cells", "huge-dimensions", "reserved-cells", "inverted-dimensions"],
)
def test_a_sheet_over_the_limits_is_refused_before_calamine_reads_it(body, limit):
    with pytest.raises(LimitExceeded, match=limit):
        check_workbook(xls(workbook(body)), "MOD_budget.xlsx", Limits.from_env())


def test_the_largest_sheet_of_the_old_format_is_legal():
    """BIFF8's own sheet size, 65,536 rows x 256 columns (16.8M cells), is under DCF_MAX_CELLS: a real .xls filled
    to its corner passes (a hostile-corpus variant that expected it refused broke its promise in make fuzz)."""
    data = xls(workbook(number(0, 0) + number(65_535, 255)))
    assert bounds(data) == [(65_536, 256)]
    check_workbook(data, "MOD_budget.xlsx", Limits.from_env())


def test_every_sheet_counts_toward_the_limit():
    data = xls(workbook(dimensions(0, 100, 0, 10), dimensions(0, 100, 0, 10)))
    check_workbook(data, "w.xls", Limits(max_cells=2000))
    with pytest.raises(LimitExceeded, match="all the workbook's sheets together, 2,000 is over the limit of 1,500"):
        check_workbook(data, "w.xls", Limits(max_cells=1500))


def test_a_sheet_is_read_from_where_its_boundsheet_points():
    """calamine frames a sheet's records from its BoundSheet8 offset: one pointing inside another record's payload
    reads a record hidden there, which a reading from the stream's start would step over."""
    hidden = number(60_000, 200)
    cover = record(0x00FF, b"\0\0" + hidden)  # an ignored record whose payload holds a NUMBER
    head_size = len(bof(0x0005)) + len(record(0x0085, bytes(8) + b"S")) + len(record(0x000A))
    position = head_size + len(bof(0x0010)) + 4 + 2  # inside the cover record, at the hidden NUMBER
    stream = (
        bof(0x0005)
        + record(0x0085, struct.pack("<IBB", position, 0, 0) + b"\x01\x00S")
        + record(0x000A)
        + bof(0x0010)
        + cover
        + record(0x000A)
    )
    assert bounds(xls(stream)) == [(60_001, 201)]
    assert fastexcel.read_excel(xls(stream)).load_sheet(0, header_row=None).total_height == 1  # calamine read it


def test_an_encrypted_workbook_has_no_sheets_to_bound():
    """calamine stops at FILEPASS (an encrypted workbook) before reading any sheet; the sheets' bytes are
    ciphertext, not records."""
    stream = workbook(number(0, 0) + number(65_535, 65_535))
    head = len(bof(0x0005))
    encrypted = stream[:head] + record(0x002F, b"\x01\x00" + bytes(52)) + stream[head:]
    assert bounds(xls(encrypted)) == []
    with pytest.raises(Exception, match="Cannot detect file format"):  # refused, its far cell never allocated
        fastexcel.read_excel(xls(encrypted))


def test_a_container_olefile_cannot_read_is_refused():
    with pytest.raises(UnreadableContainer, match="corrupt OLE2 container"):
        check_workbook(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000), "w.xls", Limits.from_env())


@pytest.mark.parametrize("seed", range(30))
def test_the_bound_is_what_calamine_reads(seed):
    rng = random.Random(seed)
    sheets, cells = [], []
    for _ in range(rng.randrange(1, 3)):
        body, mine = b"", []
        for _ in range(rng.randrange(1, 15)):
            row, col = rng.randrange(3000), rng.randrange(250)
            if rng.random() < 0.3:
                count = rng.randrange(1, 6)
                body += mulrk(row, col, count)
                mine += [(row, col + count - 1), (row, col)]
            else:
                body += number(row, col)
                mine.append((row, col))
            body += record(0x00FF, rng.randbytes(rng.randrange(10)))  # records calamine ignores
        sheets.append(body)
        cells.append(mine)
    data = xls(workbook(*sheets))
    reader = fastexcel.read_excel(data)
    for i, (extent, mine) in enumerate(zip(bounds(data), cells, strict=True)):
        rows, cols = [r for r, _ in mine], [c for _, c in mine]
        assert extent == (max(rows) + 1, max(cols) + 1)
        read = reader.load_sheet(i, header_row=None)
        assert (read.total_height, read.width) == (max(rows) - min(rows) + 1, max(cols) - min(cols) + 1)

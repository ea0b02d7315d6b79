"""A cell reference written with whitespace around its ``=`` (``r = "XFD50000"``) is legal XML, and calamine places
the cell there: a sheet of a few bytes so written once claimed a 50,000 x 16,384 rectangle past the pre-check and
aborted the whole process (calamine asked for 26 GB). The pre-check (flows/preflight.py) reads such references as
calamine does, so the sheet is refused by the limit, and the rectangle it finds equals calamine's for small ones."""

from __future__ import annotations

import io
import zipfile

import fastexcel
import openpyxl
import pytest

from flows import preflight
from flows.limits import LimitExceeded, Limits


def _base() -> bytes:
    wb = openpyxl.Workbook()
    wb.active["A1"] = 1
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _workbook(cell: bytes, pad: int = 0) -> bytes:
    """A one-sheet workbook (openpyxl's, its sheet's cells rewritten): A1, ``pad`` filler rows (to put the cell
    across the pre-check's chunk edges), then ``cell`` (a <c ...> start tag of a numeric cell) in a row of its own."""
    filler = b"".join(b'<row r="%d"><c r="B%d"><v>1</v></c></row>' % (i, i) for i in range(2, 2 + pad))
    cells = (
        b'<sheetData><row r="1"><c r="A1"><v>1</v></c></row>'
        + filler
        + b'<row r="%d">' % (2 + pad)
        + cell
        + b"<v>2</v></c></row>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_base())) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                start, end = body.index(b"<sheetData>"), body.index(b"</sheetData>")
                body = body[:start] + cells + body[end:]
            dst.writestr(info, body)
    return out.getvalue()


@pytest.mark.parametrize(
    "cell",
    [b'<c r = "XFD50000">', b"<c r\t=\t'XFD50000'>", b'<c r= "XFD50000">', b'<c r\n="XFD50000">'],
    ids=["spaces", "tabs-single-quotes", "after", "newline-before"],
)
def test_a_far_reference_with_spaces_is_refused_before_calamine(cell: bytes) -> None:
    with pytest.raises(LimitExceeded, match="DCF_MAX_CELLS"):
        preflight.check_workbook(_workbook(cell), "t.xlsx", Limits())


def test_a_reference_past_the_spacing_read_counts_beyond_every_limit() -> None:
    cell = b"<c r" + b" " * (preflight._SPACING + 1) + b'="C7">'
    with pytest.raises(LimitExceeded):
        preflight.check_workbook(_workbook(cell), "t.xlsx", Limits())


@pytest.mark.parametrize("pad", [0, 1, 2, 3])
@pytest.mark.parametrize("cell", [b'<c r = "C7">', b"<c r\r\n= 'D9'>"])
def test_a_near_reference_with_spaces_spans_what_calamine_reads(
    cell: bytes, pad: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preflight, "CHUNK", 61)  # chunk edges fall inside the filler rows and the spaced cell
    data = _workbook(cell, pad)
    (extent,) = preflight.check_workbook(data, "t.xlsx", Limits()).values()
    sheet = fastexcel.read_excel(data).load_sheet(0, header_row=None)
    assert (extent.rows, extent.columns) == (sheet.total_height, sheet.width)
    assert extent.rows in (7, 9)

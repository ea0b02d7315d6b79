"""A large sheet read in windows of rows (flows/read_windows.py) reads exactly as the whole sheet does, never holds
more than a window's rows in calamine, and goes back to the whole read whenever its XML is not laid out for
windows (issue 17, point 8). The windows here are a few kilobytes, so small workbooks stand for large ones."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import fastexcel
import openpyxl
import pandas as pd
import pytest

import flows.read_windows as rw
from flows.read_sheet import _cells, read_workbook
from flows.read_windows import NotWindowed, at_most, names_row_at_most, read_in_windows

PART = "xl/worksheets/sheet1.xml"


def whole(data: bytes, sheet: str):
    positions, table = _cells(fastexcel.read_excel(data), sheet)
    return positions, [table.column(i).to_pylist() for i in range(table.num_columns)]


def windowed(data: bytes, sheet: str, window: int, part: str = PART, calls: list | None = None):
    def read(book: bytes, skip):
        positions, table = _cells(fastexcel.read_excel(book), sheet, skip)
        if calls is not None:
            calls.append((skip, table.num_rows))
        return positions, table

    positions, table = read_in_windows(data, part, read, window=window, windowed_from=0)
    return positions, [table.column(i).to_pylist() for i in range(table.num_columns)]


def openpyxl_book() -> bytes:
    """A data sheet as Excel-like writers lay it out (shared strings, styles, dates), behind a first sheet: column A
    empty, column D empty all the way down, blank rows, whitespace-only cells, numbers, dates, Arabic text."""
    wb = openpyxl.Workbook()
    wb.active.title = "Cover"
    wb.active["A1"] = "cover sheet"
    ws = wb.create_sheet("Budget")
    ws["B1"], ws["C1"], ws["E1"], ws["F1"] = "Program", "Amount", "Date", "Partner"
    for r in range(2, 1500):
        if r % 97 == 0:
            continue  # a blank row
        ws.cell(r, 2, f"P-{r % 37}")
        ws.cell(r, 3, r * 1.5 if r % 5 else "n/a")
        ws.cell(r, 5, dt.date(2024, 1 + r % 12, 1 + r % 28))
        ws.cell(r, 6, "   " if r % 11 == 0 else ("السعودية" if r % 3 else f"Partner {r}"))
    ws.cell(1520, 8, "a last cell further right and down")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def raw_book(rows_xml: str, prefix: str = "", tail: str = "") -> bytes:
    """A one-sheet workbook whose sheet XML is ``rows_xml`` (inline strings; elements under ``prefix``)."""
    p = prefix
    ns = f' xmlns{":" + p[:-1] if p else ""}="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet{ns}><{p}dimension ref="A1"/><{p}sheetData>'
        f"{rows_xml}</{p}sheetData>{tail}</{p}worksheet>"
    )
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
        '+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override '
        'PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet '
        'name="Budget" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
        'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        PART: sheet,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in parts.items():
            zf.writestr(name, body)
    return out.getvalue()


def cell(ref: str, text: str, p: str = "") -> str:
    return f'<{p}c r="{ref}" t="inlineStr"><{p}is><{p}t>{text}</{p}t></{p}is></{p}c>'


def rows_of(n: int, p: str = "", start: int = 1) -> str:
    return "".join(
        f'<{p}row r="{r}">{cell(f"B{r}", f"b{r}", p)}<{p}c r="C{r}"><{p}v>{r}</{p}v></{p}c></{p}row>'
        for r in range(start, start + n)
    )


def test_windows_read_exactly_as_the_whole_sheet():
    data = openpyxl_book()
    calls: list = []
    got = windowed(data, "Budget", 4096, part="xl/worksheets/sheet2.xml", calls=calls)
    assert got == whole(data, "Budget")
    assert len(calls) > 20  # really read in windows
    assert got[0][0] == 1  # column A is empty: the first column is B, as in the whole read


def test_no_window_comes_back_with_the_rows_before_it():
    """fastexcel would give a window at row 800,000 all the rows before it, as nulls (250 MB measured): every window
    after the first is read from its own first row, one marker row before it."""
    data = raw_book(rows_of(3000))
    calls: list = []
    windowed(data, "Budget", 4096, calls=calls)
    assert calls[0][0] == 0
    assert all(skip is None for skip, _ in calls[1:])
    assert max(rows for _, rows in calls[1:]) < 200  # a window's rows (about 60) and the marker, never 3,000


@pytest.mark.parametrize(
    "rows_xml",
    [
        pytest.param(rows_of(600, "x:"), id="prefixed-elements"),
        pytest.param(rows_of(300) + rows_of(300, start=5000), id="a-gap-of-empty-rows"),
        pytest.param(
            rows_of(200) + f'<row r="201">{cell("B201", "y" * 20000)}</row>' + rows_of(200, start=202),
            id="a-row-longer-than-a-window",
        ),
        pytest.param(
            rows_of(300) + '<row r="301"/><row r="302" spans="1:3"></row>' + rows_of(300, start=303),
            id="empty-row-elements",
        ),
        pytest.param(
            "".join(
                f'<row r="{r}"><c t="inlineStr"><is><t>a{r}</t></is></c><c><v>{r}</v></c></row>' for r in range(1, 600)
            ),
            id="cells-without-references",
        ),
    ],
)
def test_layouts_read_the_same_in_windows(rows_xml):
    prefix = "x:" if "<x:row" in rows_xml else ""
    data = raw_book(
        rows_xml, prefix, tail=f'<{prefix}mergeCells count="1"><{prefix}mergeCell ref="B1:C1"/></{prefix}mergeCells>'
    )
    calls: list = []
    assert windowed(data, "Budget", 2048, calls=calls) == whole(data, "Budget")
    assert len(calls) > 3


@pytest.mark.parametrize(
    "rows_xml",
    [
        pytest.param(rows_of(300) + f"<row>{cell('B301', 'x')}</row>" + rows_of(300, start=302), id="no-reference"),
        pytest.param(
            rows_of(300) + '<row r="301"><c r="B301" t="inlineStr"><is><t><![CDATA[<row r="9">]]></t>'
            "</is></c></row>" + rows_of(300, start=302),
            id="cdata",
        ),
        pytest.param(rows_of(300) + "<!-- <row r='1'> -->" + rows_of(300, start=301), id="a-comment"),
        pytest.param(rows_of(300) + '<row r="301"><c r="B301"><v>1</v></row>' + rows_of(300, start=302), id="broken"),
    ],
)
def test_sheets_not_laid_out_for_windows_are_read_whole(rows_xml):
    """A row without its reference (placed after the previous row, which a window cannot know), markup in which
    "<row" may be text, or a window calamine cannot read: wherever the windows fall, the sheet is read whole."""
    data = raw_book(rows_xml)
    for window in range(1024, 6000, 499):
        with pytest.raises(NotWindowed):
            windowed(data, "Budget", window)


@pytest.mark.parametrize(
    "odd_row",
    [
        pytest.param(f'<row r="301">{cell("C5", "back")}</row>', id="a-cell-on-an-earlier-row"),
        pytest.param(f'<row r="301">{cell("B300", "again")}</row>', id="a-cell-on-the-row-before"),
        pytest.param(f'<row r="301">{cell("B301", "x")}</row><row r="301">{cell("C301", "y")}</row>', id="twice"),
    ],
)
def test_a_cell_placed_on_a_row_read_before_never_reads_differently(odd_row):
    """A cell whose reference points back to a row an earlier window covered: calamine would put it there in the
    whole read; a window sees it through its marker and the sheet is read whole. Wherever the windows fall, the
    result is the whole read's, and some window sizes do catch it."""
    data = raw_book(rows_of(300) + odd_row + rows_of(300, start=302))
    expected = whole(data, "Budget")
    caught = 0
    for window in range(1024, 9000, 97):
        try:
            assert windowed(data, "Budget", window) == expected
        except NotWindowed:
            caught += 1
    assert caught


def test_a_sheet_that_cannot_be_windowed_still_reads_whole(tmp_path: Path, sources, monkeypatch):
    """Through read_workbook: a large sheet with a row lacking its reference is read whole, as before."""
    monkeypatch.setattr(rw, "WINDOWED_FROM", 0)
    monkeypatch.setattr(rw, "WINDOW_BYTES", 2048)
    header = (
        '<row r="1">'
        + "".join(
            cell(f"{c}1", h)
            for c, h in zip(
                "ABCDEFG",
                [
                    "Program Code",
                    "Program Name",
                    "Partner Country",
                    "Activity Type",
                    "Fiscal Year",
                    "Amount",
                    "Currency",
                ],
            )
        )
        + "</row>"
    )
    body = "".join(f'<row r="{r}">{cell(f"A{r}", f"MOD-{r}")}{cell(f"C{r}", "Jordan")}</row>' for r in range(2, 400))
    odd = f"<row>{cell('A400', 'MOD-400')}</row>"
    path = tmp_path / "MOD_budget_FY2024.xlsx"
    path.write_bytes(raw_book(header + body + odd))
    spec = next(s for s in sources if s.agency == "MOD").spec_for(path.name)
    got = read_workbook(path, spec)
    assert len(got.frame) == 399
    assert got.frame["program_code"].iloc[-1] == "MOD-400"


@pytest.mark.parametrize("agency", ["MOD", "MOI", "GIP"])
def test_read_workbook_in_windows_gives_the_same_frame(sample_inbox, sources, monkeypatch, agency):
    """A sample agency workbook through read_workbook, in windows of 2 KB: the same frame, header and letters."""
    path = sorted((sample_inbox[0] / agency.lower()).glob("*.xlsx"))[0]
    spec = next(s for s in sources if s.agency == agency).spec_for(path.name)
    before = read_workbook(path, spec)
    opened: list = []
    real = fastexcel.read_excel
    monkeypatch.setattr(rw, "WINDOWED_FROM", 0)
    monkeypatch.setattr(rw, "WINDOW_BYTES", 2048)
    monkeypatch.setattr("flows.read_sheet.fastexcel.read_excel", lambda data: opened.append(1) or real(data))
    after = read_workbook(path, spec)
    assert len(opened) > 3
    pd.testing.assert_frame_equal(after.frame, before.frame)
    assert (after.header_row, after.column_letters, after.source_columns) == (
        before.header_row,
        before.column_letters,
        before.source_columns,
    )


@pytest.mark.parametrize(
    ("rows_xml", "tail", "window"),
    [
        pytest.param(rows_of(3) + f'<row r="4">{cell("B4", "y" * 5000)}</row>', "", 1024, id="last-row-over-a-window"),
        pytest.param(
            rows_of(300),
            "<mergeCells>" + '<mergeCell ref="D1:E1"/>' * 600 + "</mergeCells>",
            2048,
            id="a-long-tail-after-the-rows",
        ),
    ],
)
def test_the_last_rows_are_never_left_out(rows_xml, tail, window):
    """The last run of rows is read even when it, or what follows </sheetData>, is longer than a window."""
    data = raw_book(rows_xml, tail=tail)
    assert windowed(data, "Budget", window) == whole(data, "Budget")


def test_rows_under_another_prefix_are_read_in_one_piece_or_whole(monkeypatch):
    """Rows whose prefix differs from <sheetData>'s (calamine reads elements by local name): no row start is found,
    so the rows are read in one piece, never cut short, and past NO_ROW_START_MAX the sheet is read whole."""
    data = raw_book(rows_of(400, "x:"))
    assert windowed(data, "Budget", 2048) == whole(data, "Budget")
    assert len(whole(data, "Budget")[1][0]) == 400
    monkeypatch.setattr(rw, "NO_ROW_START_MAX", 3 * 2048)
    with pytest.raises(NotWindowed, match="no row start"):
        windowed(data, "Budget", 2048)


@pytest.mark.parametrize(
    "later", ['<c r="C300" t="e"><v>#N/A</v></c>', '<c r="C5" t="inlineStr"><is><t>  </t></is></c>']
)
def test_a_later_cell_that_reads_empty_on_a_row_read_before_is_caught(later):
    """A cell on a row an earlier window read, whose value reads as empty (an error, whitespace): the whole read lets
    it overwrite; windows cannot, so they are never used for such a sheet."""
    row = later.split('r="C')[1].split('"')[0]
    data = raw_book(rows_of(320) + f'<row r="{row}">{later}</row>' + rows_of(280, start=321))
    expected = whole(data, "Budget")
    for window in range(1024, 9000, 97):
        try:
            assert windowed(data, "Budget", window) == expected
        except NotWindowed:
            pass


def test_at_most_matches_exactly_the_numbers_up_to_n():
    import random
    import re

    rng = random.Random(17)
    cases = [(n, m) for n in (0, 1, 9, 10, 99, 100, 101, 1048576) for m in range(0, 200)]
    cases += [(rng.randint(0, 10**7), rng.randint(0, 10**7)) for _ in range(5000)]
    cases += [(n, n + d) for n in (rng.randint(0, 10**7) for _ in range(500)) for d in (-1, 0, 1)]
    for n, m in cases:
        if m >= 0:
            assert (re.fullmatch(at_most(n), str(m)) is not None) == (m <= n), (n, m)


@pytest.mark.parametrize(
    ("run", "rows", "expected"),
    [
        (b'<row r="301"><c r="B301"><v>1</v></c></row>', 300, False),
        (b'<row r="301"><c r="B300"><v>1</v></c></row>', 300, True),
        (b'<row r="301"><c r="B0300"><v>1</v></c></row>', 300, True),
        (b"<row r='301'><c r = 'B29' t='e'><v>#N/A</v></c></row>", 300, True),
        (b'<row\nr="5"/>', 300, True),
        (b'<row r="3000"><c r="AB3000" ref="A1"/></row>', 300, False),
        (b'<row r="301"><c r="B301"><is><t>\xff</t></is></c></row>', 300, True),
    ],
)
def test_names_row_at_most(run, rows, expected):
    assert names_row_at_most(run, rows) is expected

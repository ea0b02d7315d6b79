"""Hostile containers: corrupt zips, decompression bombs (kilobytes on disk), sheets that would make calamine
allocate billions of cells, a wall of 3,000 sheets, an 8 GiB sparse CSV."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from tests.hostile.cases import GAMI, MAIN_NS, MIB, REL_NS, Case, Ctx, case, edit_sheets, pick_xlsx
from tests.hostile.zipbuild import Entry, deflated, entries_of, repeated, understated, write_zip


# ----------------------------------------------------------------------------------------------------- containers
def truncated_xlsx(ctx: Ctx) -> Case:
    d, agency, name = pick_xlsx(ctx)
    data = ctx.base(d, name).read_bytes()
    out = ctx.dest(d, name, "_truncated")
    out.write_bytes(data[: ctx.rng.randrange(1, len(data) - 1)])
    return case(ctx, "container", "truncated_xlsx", out, agency, "failed")


def random_bytes_xlsx(ctx: Ctx) -> Case:
    d, agency, name = pick_xlsx(ctx)
    out = ctx.dest(d, name, "_random")
    prefix = ctx.rng.choice([b"", b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"])  # none, zip, old .xls magic
    out.write_bytes(prefix + ctx.rng.randbytes(ctx.rng.randrange(0, 64 * 1024)))
    return case(ctx, "container", "random_bytes_xlsx", out, agency, "failed")


def garbage_zip(ctx: Ctx) -> Case:
    d, agency, name = pick_xlsx(ctx)
    out = ctx.dest(d, name, "_garbage_zip")
    entries = [
        deflated(f"junk/{i}.bin", ctx.rng.randbytes(ctx.rng.randrange(0, 4096))) for i in range(ctx.rng.randrange(1, 8))
    ]
    if ctx.rng.random() < 0.5:  # a plausible skeleton whose parts are garbage
        entries += [
            deflated("[Content_Types].xml", ctx.rng.randbytes(200)),
            deflated("xl/workbook.xml", b"<workbook><sheets>"),
        ]
    write_zip(out, entries)
    return case(ctx, "container", "garbage_zip", out, agency, "failed")


def corrupt_sheet_entry(ctx: Ctx) -> Case:
    """Bytes flipped inside the data sheet's deflate stream: an inflate error or a CRC mismatch."""
    d, agency, name = pick_xlsx(ctx)
    data = bytearray(ctx.base(d, name).read_bytes())
    with zipfile.ZipFile(ctx.base(d, name)) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)  # the data sheet
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for _ in range(ctx.rng.randrange(1, 16)):
        pos = ctx.rng.randrange(start, start + info.compress_size)
        data[pos] ^= 1 << ctx.rng.randrange(8)
    out = ctx.dest(d, name, "_corrupt")
    out.write_bytes(bytes(data))
    return case(ctx, "container", "corrupt_sheet_entry", out, agency, "failed")


def empty_xlsx(ctx: Ctx) -> Case:
    d, agency, name = pick_xlsx(ctx)
    out = ctx.dest(d, name, "_empty")
    out.write_bytes(b"")
    return case(ctx, "container", "empty_xlsx", out, agency, "failed")


# ---------------------------------------------------------------------------------------------------------- bombs
def _with_entry(ctx: Ctx, tag: str, entry: Entry, d: str = "mod", name: str = "MOD_budget_FY2024.xlsx") -> Path:
    entries = [e for e in entries_of(ctx.base(d, name)) if e.name != entry.name] + [entry]
    out = ctx.dest(d, name, tag)
    write_zip(out, entries)
    return out


def _data_sheet(xlsx: Path) -> str:
    with zipfile.ZipFile(xlsx) as zf:
        return max(
            (i for i in zf.infolist() if i.filename.startswith("xl/worksheets/")), key=lambda i: i.file_size
        ).filename


def _two_gib_string() -> Entry:
    """Shared strings holding one 2 GiB string (about 2 MB deflated)."""
    return repeated(
        "xl/sharedStrings.xml",
        f'<sst xmlns="{MAIN_NS}" count="1" uniqueCount="1"><si><t>'.encode(),
        b"A" * MIB,
        2048,
        b"</t></si></sst>",
    )


def shared_strings_bomb(ctx: Ctx) -> Case:
    """One 2 GiB shared string (about 2 MB on disk)."""
    entry = _two_gib_string()
    return case(
        ctx, "bomb", "shared_strings_2gib", _with_entry(ctx, "_sst_bomb", entry), "MOD", "failed", "file_too_large"
    )


def whitespace_sheet_bomb(ctx: Ctx) -> Case:
    """4 GiB of whitespace inside the data sheet (about 4 MB on disk; zip64 sizes)."""
    sheet = _data_sheet(ctx.base("mod", "MOD_budget_FY2024.xlsx"))
    entry = repeated(
        sheet, f'<worksheet xmlns="{MAIN_NS}"><sheetData>'.encode(), b" " * MIB, 4096, b"</sheetData></worksheet>"
    )
    return case(
        ctx, "bomb", "whitespace_sheet_4gib", _with_entry(ctx, "_ws_bomb", entry), "MOD", "failed", "file_too_large"
    )


def empty_cells_bomb(ctx: Ctx) -> Case:
    """150M empty cells without references, in rows without references: 600 MB of XML, about 1 MB on disk."""
    sheet = _data_sheet(ctx.base("mod", "MOD_budget_FY2024.xlsx"))
    row = b"<row>" + b"<c/>" * 100 + b"</row>"
    entry = repeated(
        sheet, f'<worksheet xmlns="{MAIN_NS}"><sheetData>'.encode(), row * 1000, 1500, b"</sheetData></worksheet>"
    )
    return case(
        ctx, "bomb", "empty_cells_150m", _with_entry(ctx, "_cells_bomb", entry), "MOD", "failed", "file_too_large"
    )


def far_cells_bomb(ctx: Ctx) -> Case:
    """Two cells at A1 and XFD1048576 (a few hundred bytes): calamine would allocate 17 billion cells. The near
    cell is sometimes written with leading zeros (A0000001, which calamine reads as A1), longer than the far one's
    reference: the largest row is the largest number, not the longest."""
    col, row = ctx.rng.choice([("XFD", 1048576), ("ZZ", 1048576), ("XFD", 5000), ("AAA", 900000), ("XFD", 999999)])
    near = ctx.rng.choice(["1", "1", "0000001"])
    xml = (
        f'<worksheet xmlns="{MAIN_NS}"><dimension ref="A1"/><sheetData><row r="{row}"><c r="{col}{row}"><v>1</v></c>'
        f'</row><row r="{near}"><c r="A{near}" t="inlineStr"><is><t>x</t></is></c></row></sheetData></worksheet>'
    ).encode()
    return _sheet_bomb(ctx, "far_cells", xml)


def spaced_far_cells_bomb(ctx: Ctx) -> Case:
    """A far cell whose reference has whitespace around its '=' (and single quotes): legal XML that calamine
    honours, so the few bytes would ask for billions of cells (before issue 17's fix: the process aborted)."""
    col, row = ctx.rng.choice([("XFD", 1048576), ("XFD", 50000), ("AAA", 900000)])
    far = ctx.rng.choice(['r = "{}"', "r\t=\n'{}'", 'r  =  "{}"', "r= '{}'"]).format(f"{col}{row}")
    xml = (
        f'<worksheet xmlns="{MAIN_NS}"><dimension ref="A1"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>x</t>'
        f'</is></c></row><row r="{row}"><c {far}><v>1</v></c></row></sheetData></worksheet>'
    ).encode()
    return _sheet_bomb(ctx, "spaced_far_cells", xml)


def hidden_wide_row_bomb(ctx: Ctx) -> Case:
    """A row of cells without a reference (calamine places each one column past the one before), with as many
    references written where calamine does not read them: on other elements, inside another attribute's value, a
    second r on one cell; and a far row. Counting references instead of the cells that carry one, the pre-check
    once saw one column; calamine would allocate a million rows of 20,000."""
    n = 20_000
    bare = ctx.rng.choice(["<c/>", '<c t="n"><v>1</v></c>', "<averyveryverylongprefix:c/>", "<ф:c/>", "<:c/>"])
    decoy = ctx.rng.choice(['<x r="A1"/>', "<c x=' r=\"A1\"'/>", '<c r="A1" r="A1"/>'])
    xml = (
        f'<worksheet xmlns="{MAIN_NS}"><dimension ref="A1"/><sheetData><row r="1">{bare * n}{decoy * n}</row>'
        '<row r="1048576"><c r="A1048576"><v>1</v></c></row></sheetData></worksheet>'
    ).encode()
    return _sheet_bomb(ctx, "hidden_wide_row", xml)


def understated_sheet_bomb(ctx: Ctx) -> Case:
    """A far cell hidden past the data sheet's declared end, the CRC forged to match the declared part (stored or
    deflated): Python's zipfile reads the declared part, calamine reads the entry whole."""
    base = ctx.base("mod", "MOD_budget_FY2024.xlsx")
    sheet = _data_sheet(base)
    with zipfile.ZipFile(base) as zf:
        head = zf.read(sheet).partition(b"</sheetData>")[0]
    hidden = b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData></worksheet><!--'
    entry = understated(sheet, head, hidden, ctx.rng.choice([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]))
    return case(
        ctx, "bomb", "understated_sheet", _with_entry(ctx, "_understated", entry), "MOD", "failed", "file_unreadable"
    )


def understated_strings_bomb(ctx: Ctx) -> Case:
    """2 GiB of shared strings declared as 100 bytes: under every size and ratio limit, which read the directory."""
    entry = _two_gib_string()
    entry.size = 100
    return case(
        ctx, "bomb", "understated_strings", _with_entry(ctx, "_understated", entry), "MOD", "failed", "file_unreadable"
    )


def ods_repeat_bomb(ctx: Ctx) -> Case:
    """An OpenDocument spreadsheet under an .xlsx name (fastexcel detects the format from the bytes) whose one value
    repeats across columns and rows into 50-100 million cells: under a kilobyte on disk, gigabytes in calamine."""
    from tests.hostile.odsbuild import VALUE, cols, ods, row, table

    columns = ctx.rng.choice([1000, 5000, 16384])
    rows = ctx.rng.randrange(60_000_000 // columns, 100_000_000 // columns)
    out = ctx.dest("mod", "MOD_budget_FY2024.xlsx", "_ods_bomb")
    out.write_bytes(ods(table(row(VALUE.format(cols(columns)), rows))))
    return case(ctx, "bomb", "ods_repeat", out, "MOD", "failed", "file_too_large")


def xlsb_far_cells_bomb(ctx: Ctx) -> Case:
    """A binary workbook (.xlsb) under an .xlsx name whose two cell records lie far apart: calamine would allocate
    the rectangle between them (up to 17 billion cells); a row header past the last row or filler records may sit
    between them."""
    from tests.hostile.xlsbbuild import number, record, row_header, sheet, xlsb

    far_row, far_col = ctx.rng.choice([(1_048_575, 16_383), (999_999, 9_999), (2_000, 4_000_000_000)])
    filler = record(0x0401, bytes(ctx.rng.choice([0, 200, 20_000])))
    out = ctx.dest("mod", "MOD_budget_FY2024.xlsx", "_xlsb")
    out.write_bytes(xlsb(sheet(row_header(0) + number(0) + filler, row_header(far_row) + number(far_col))))
    return case(ctx, "bomb", "xlsb_far_cells", out, "MOD", "failed", "file_too_large")


def xls_far_cells_bomb(ctx: Ctx) -> Case:
    """An old-format workbook (.xls) under an .xlsx name whose sheet calamine would make huge at open: two cells
    far apart, or a DIMENSIONS record declaring hundreds of millions of cells (reserved before any cell is read).
    The far cell's column is past 255: a .xls sheet of 65,536 x 256 is 16.7M cells, under DCF_MAX_CELLS, so legal."""
    from tests.hostile.xlsbuild import dimensions, number, workbook, xls

    body = ctx.rng.choice(
        [
            number(0, 0) + number(65_535, ctx.rng.choice([16_383, 65_535])),
            dimensions(0, ctx.rng.choice([1_000_000, 4_000_000_000]), 0, 256) + number(0, 0),
        ]
    )
    out = ctx.dest("mod", "MOD_budget_FY2024.xlsx", "_xls")
    out.write_bytes(xls(workbook(number(0, 0), body)))
    return case(ctx, "bomb", "xls_far_cells", out, "MOD", "failed", "file_too_large")


def xls_reader_panic(ctx: Ctx) -> Case:
    """An .xls whose sheet record is too short for calamine, which panics (a BaseException through pyo3)."""
    import struct

    from tests.hostile.xlsbuild import bof, record, xls

    stream = bof(0x0005) + record(0x0085, struct.pack("<I", 0)[: ctx.rng.randrange(0, 5)]) + record(0x000A)
    out = ctx.dest("mod", "MOD_budget_FY2024.xlsx", "_panic")
    out.write_bytes(xls(stream))
    return case(ctx, "container", "xls_reader_panic", out, "MOD", "failed", "file_unreadable")


def shared_strings_count_bomb(ctx: Ctx) -> Case:
    """Shared strings declaring billions of strings (uniqueCount): calamine reserves room for them before reading
    one, in a file of a few KB."""
    count = ctx.rng.choice([1_000_000_000, 4_000_000_000, 10**15])
    sst = f'<sst xmlns="{MAIN_NS}" count="1" uniqueCount="{count}"><si><t>x</t></si></sst>'.encode()
    out = _with_entry(ctx, "_sst_count", deflated("xl/sharedStrings.xml", sst))
    return case(ctx, "bomb", "shared_strings_count", out, "MOD", "failed", "file_too_large")


def other_sheet_type_bomb(ctx: Ctx) -> Case:
    """The data sheet moved out of xl/worksheets/ behind a dialog-sheet or chart-sheet relationship (calamine reads
    either as a sheet), with a cell at the far corner."""
    base = ctx.base("mod", "MOD_budget_FY2024.xlsx")
    kind = ctx.rng.choice(["dialogsheet", "chartsheet"])
    with zipfile.ZipFile(base) as zf:
        rels = zf.read("xl/_rels/workbook.xml.rels").replace(
            b'relationships/worksheet" Target="/xl/worksheets/sheet1.xml"',
            f'relationships/{kind}" Target="/xl/other/1.xml"'.encode(),
        )
        far = zf.read("xl/worksheets/sheet1.xml").replace(
            b"</sheetData>", b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>'
        )
    moved = ("xl/_rels/workbook.xml.rels", "xl/worksheets/sheet1.xml")
    entries = [e for e in entries_of(base) if e.name not in moved]
    entries += [deflated("xl/_rels/workbook.xml.rels", rels), deflated("xl/other/1.xml", far)]
    out = ctx.dest("mod", "MOD_budget_FY2024.xlsx", "_other_sheet")
    write_zip(out, entries)
    return case(ctx, "bomb", "other_sheet_type", out, "MOD", "failed", "file_too_large")


def _sheet_bomb(ctx: Ctx, name: str, xml: bytes) -> Case:
    """MOD's budget workbook with its data sheet's XML replaced by ``xml``: refused before calamine reads it."""
    sheet = _data_sheet(ctx.base("mod", "MOD_budget_FY2024.xlsx"))
    entry = _with_entry(ctx, "_" + name, deflated(sheet, xml))
    return case(ctx, "bomb", name, entry, "MOD", "failed", "file_too_large")


def many_entries(ctx: Ctx) -> Case:
    entries = entries_of(ctx.base("mod", "MOD_budget_FY2024.xlsx")) + [
        deflated(f"customXml/item{i}.xml", b"<a/>") for i in range(10_001)
    ]
    out = ctx.dest("mod", "MOD_budget_FY2024.xlsx", "_entries")
    write_zip(out, entries)
    return case(ctx, "bomb", "many_entries", out, "MOD", "failed", "file_too_large")


def wall_of_sheets(ctx: Ctx) -> Case:
    """3,000 sheets, none of them the one MOD's config asks for: a failure whose message stays one short line."""
    n = 3000
    sheets = "".join(f'<sheet name="Sheet {i} {"x" * 30}" sheetId="{i}" r:id="rId{i}"/>' for i in range(1, n + 1))
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="worksheets/s{i}.xml"/>' for i in range(1, n + 1)
    )
    small = f'<worksheet xmlns="{MAIN_NS}"><sheetData/></worksheet>'.encode()
    entries = [
        deflated(
            "[Content_Types].xml",
            (
                b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                b'<Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'
            ),
        ),
        deflated(
            "_rels/.rels",
            (
                f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship '
                f'Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
            ).encode(),
        ),
        deflated(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheets>{sheets}</sheets></workbook>'.encode(),
        ),
        deflated(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>'.encode(),
        ),
        *[deflated(f"xl/worksheets/s{i}.xml", small) for i in range(1, n + 1)],
    ]
    out = ctx.dest("mod", "MOD_budget_FY2024.xlsx", "_3000_sheets")
    write_zip(out, entries)
    return case(ctx, "bomb", "wall_of_sheets", out, "MOD", "failed")


def lying_dimension(ctx: Ctx) -> Case:
    """A dimension claiming the whole sheet over ordinary cells: harmless (calamine sizes by the cells)."""
    d, agency, name = pick_xlsx(ctx)
    out = ctx.dest(d, name, "_dimension")
    edit_sheets(
        ctx.base(d, name),
        out,
        lambda xml: re.sub(rb"<sheetData", b'<dimension ref="A1:XFD1048576"/><sheetData', xml, count=1),
    )
    return case(ctx, "bomb", "lying_dimension", out, agency, "loaded")


def sparse_csv_8gib(ctx: Ctx) -> Case:
    d, agency, name = GAMI
    out = ctx.dest(d, name, "_8gib")
    with open(out, "wb") as fh:
        fh.write(ctx.base(d, name).read_bytes())
        fh.truncate(8 << 30)  # sparse: takes no disk space
    return case(ctx, "bomb", "sparse_csv_8gib", out, agency, "failed", "file_too_large")

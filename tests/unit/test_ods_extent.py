"""An OpenDocument spreadsheet reaches calamine too (fastexcel detects the format from the bytes, whatever the
file's name): its ``table:number-columns-repeated`` and ``table:number-rows-repeated`` expand into cells, so an
800-byte file made calamine allocate 6 GB. The pre-check bounds each table's cells as calamine counts them
(flows/preflight.py ods_extents); these tests pin the bound on small documents and hold it to calamine itself."""

from __future__ import annotations

import io
import random
import zipfile

import fastexcel
import pytest

from flows import preflight
from flows.limits import LimitExceeded, Limits
from flows.preflight import BEYOND, check_workbook, ods_extents
from tests.hostile.odsbuild import EMPTY, LIBREOFFICE, VALUE, cols, ods, row, table


def extents(data: bytes) -> list[tuple[int, int]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(e.rows, e.columns) for e in ods_extents(zf, zf.getinfo("content.xml"))]


@pytest.mark.parametrize(
    "doc, expected",
    [
        # LibreOffice writes the rest of a sheet as repeated empty cells and one repeated empty row: they cost nothing
        (LIBREOFFICE, [(2, 3)]),
        # a value repeated across 1,000 columns of 100,000 rows: 100 million cells (calamine allocated 6 GB)
        (table(row(VALUE.format(cols(1000)), 100_000)), [(100_000, 1000)]),
        # empty cells and rows before a value count: calamine fills them
        (table(row(EMPTY.format(cols(500)) + VALUE.format("")), row("", 70), row(VALUE.format(""))), [(72, 501)]),
        # calamine caps a cell's repeat at 16,384 columns
        (table(row(VALUE.format(cols(50_000_000)))), [(1, 16_384)]),
        # a ">" inside a quoted value hides no attribute after it
        (table(row('<table:table-cell x=">" table:number-columns-repeated="9" office:value="1"/>')), [(1, 9)]),
        # covered cells (under a merged one) count like cells; a formula alone is a value
        (
            table(
                row(
                    '<table:covered-table-cell table:number-columns-repeated="4"/><table:table-cell table:formula="of:=1"/>'
                )
            ),
            [(1, 5)],
        ),
        # each table on its own
        (table(row(VALUE.format(cols(3))), name="A") + table(row(VALUE.format(""), 7), name="B"), [(1, 3), (7, 1)]),
        # a repeat too long for any integer calamine reads: beyond every limit
        (table(row(VALUE.format(""), 10**15)), [(BEYOND, 1)]),
    ],
    ids=[
        "libreoffice-tail",
        "repeat-bomb",
        "leading-empties",
        "column-cap",
        "quoted-gt",
        "covered-formula",
        "tables",
        "huge",
    ],
)
def test_a_tables_cells_are_counted_as_calamine_expands_them(doc, expected):
    assert extents(ods(doc)) == expected


@pytest.mark.parametrize("chunk", [7, 13, 64, 1 << 20])
def test_the_count_does_not_depend_on_where_chunks_end(chunk, monkeypatch):
    monkeypatch.setattr(preflight, "CHUNK", chunk)
    doc = ods(LIBREOFFICE, table(row(VALUE.format(cols(1000)), 100_000), name="T"))
    assert extents(doc) == [(2, 3), (100_000, 1000)]


def test_a_bomb_is_refused_and_every_table_counts_toward_the_limit():
    bomb = ods(table(row(VALUE.format(cols(1000)), 100_000)))
    with pytest.raises(LimitExceeded, match=r"content.xml\), table 1: .*100,000,000 .*DCF_MAX_CELLS"):
        check_workbook(bomb, "MOD_budget.xlsx", Limits.from_env())
    two = ods(table(row(VALUE.format(cols(10)), 60), name="A"), table(row(VALUE.format(cols(10)), 60), name="B"))
    check_workbook(two, "MOD_budget.xlsx", Limits(max_cells=1200))
    with pytest.raises(LimitExceeded, match="all the workbook's tables together, 1,200 is over the limit of 1,000"):
        check_workbook(two, "MOD_budget.xlsx", Limits(max_cells=1000))


def _cell(rng: random.Random) -> str:
    repeat = cols(rng.choice([2, 5, 40])) if rng.random() < 0.4 else ""
    return rng.choice(
        [
            EMPTY.format(repeat),
            VALUE.format(repeat),
            f"<table:covered-table-cell{repeat}/>",
            f'<table:table-cell{repeat} office:value-type="boolean" office:boolean-value="true"/>',
            f'<table:table-cell{repeat} table:formula="of:=1+1" office:value-type="float" office:value="2"/>',
            f'<table:table-cell{repeat} office:value-type="string"><text:p>s</text:p></table:table-cell>',
        ]
    )


@pytest.mark.parametrize("seed", range(40))
def test_the_bound_is_never_below_what_calamine_reads(seed):
    rng = random.Random(seed)
    tables = [
        table(
            *(
                row("".join(_cell(rng) for _ in range(rng.randrange(6))), rng.choice([1, 1, 3, 50]))
                for _ in range(rng.randrange(8))
            ),
            name=f"S{t}",
        )
        for t in range(rng.randrange(1, 3))
    ]
    data = ods(*tables)
    reader = fastexcel.read_excel(data)
    read = [
        (s.total_height, s.width)
        for s in (reader.load_sheet(i, header_row=None) for i in range(len(reader.sheet_names)))
    ]
    bound = extents(data)
    assert len(bound) == len(read)
    assert all(b[0] >= r[0] and b[1] >= r[1] for b, r in zip(bound, read, strict=True)), (bound, read)

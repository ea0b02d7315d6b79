"""The pre-flight scan of a sheet's XML (flows/preflight.py) reads its references, row and cell tags and formula
cells faster than byte by byte; these tests hold it to the byte-by-byte reading it replaced (kept here as the
oracle), on generated hostile XML cut into chunks of every size, and pin what it must still see: references at a
chunk's edge, prefixed tags, too-long references, and formulas with no saved result whose cell spans chunks."""

from __future__ import annotations

import io
import random
import re
import zipfile

import numpy as np
import pytest

from flows import preflight
from flows.preflight import _DELIMITER, _HISTORY, _IS_SPACE, _PREFIX, _TAIL, BEYOND, _CellNotes

# ------------------------------------------------------------------------------------------- the byte-by-byte oracle


def _run_length(a, start, width, low, high, fold=False):
    length = np.zeros(len(start), dtype=np.int64)
    going = np.ones(len(start), dtype=bool)
    for k in range(width):
        ch = a[start + k] & np.uint8(0xDF) if fold else a[start + k]
        going &= (ch - np.uint8(low)) <= np.uint8(high - low)
        length += going
    return length


def _largest(a, start, length, base, zero, fold=False):
    """The largest number among the runs, by value: leading zeros count for nothing (calamine reads A0000001 as
    A1), so a longer run is not always the larger."""
    value = np.zeros(len(start), dtype=np.int64)
    for k in range(int(length.max()) if len(start) else 0):
        ch = a[start + k] & np.uint8(0xDF) if fold else a[start + k]
        value = np.where(k < length, value * base + (ch.astype(np.int64) - zero), value)
    return int(value.max()) if len(start) else 0


def _references(a, start, end):
    eq = np.flatnonzero(a[start + 1 : end + 1] == 0x3D) + start + 1
    quote = a[eq + 1]
    eq = eq[(a[eq - 1] == 0x72) & ((quote == 0x22) | (quote == 0x27)) & _IS_SPACE[a[eq - 2]]]
    hit = eq + 2
    if len(hit) == 0:
        return 0, 0, 0, 0
    n_letters = _run_length(a, hit, 4, 0x41, 0x5A, fold=True)
    digits_at = hit + n_letters
    n_digits = _run_length(a, digits_at, 8, 0x30, 0x39)
    is_cell = n_letters > 0
    counts = (int((~is_cell).sum()), int(is_cell.sum()))
    if n_letters.max() > 3 or n_digits.max() > 7:
        return BEYOND, BEYOND, *counts
    return _largest(a, digits_at, n_digits, 10, 0x30), _largest(a, hit, n_letters, 26, 0x40, fold=True), *counts


_OWN_REF = re.compile(rb"[ \t\n\r]r[ \t\n\r]{0,16}=[ \t\n\r]{0,16}['\"]")


def _tags_at(a, at, name):
    """(tags, tags whose first attribute is their reference: one whitespace byte, r, up to 16 whitespace, =, as
    many, a quote) named ``name``."""
    tags = own = 0
    for q in at:
        q = int(q)
        if bytes(a[q : q + len(name)]) != name or not _DELIMITER[a[q + len(name)]]:
            continue
        tags += 1
        own += bool(_OWN_REF.match(bytes(a[q + len(name) : q + len(name) + 40])))
    return tags, own


def _open_tags(a, start, end):
    names = [i + 1 for i in range(start, end) if a[i] == 0x3C]
    for colon in (i for i in range(start, end) if a[i] == 0x3A):  # "<prefix:name", any prefix (even none)
        k = 1
        while k <= _HISTORY - 8 and _PREFIX[a[colon - k]]:
            k += 1
        if k > _HISTORY - 8 or a[colon - k] == 0x3C:  # too long to see its start: counted
            names.append(colon + 1)
    names = np.array(names, dtype=np.int64)
    return (*_tags_at(a, names, b"row"), *_tags_at(a, names, b"c"))


_SPACED = re.compile(rb"(?<=[ \t\n\r]r)[ \t\n\r]*=[ \t\n\r]*(?=['\"])")


def oracle_extent(xml: bytes, chunk: int) -> preflight.Extent:
    """The extent and notes as the byte-by-byte scan read them (every chunk's bytes looked at one by one, the
    formula and error regular expressions run on every chunk). A reference written with whitespace around its
    ``=`` (``r = "B3"``) is a reference for calamine: the oracle reads the XML with that whitespace taken out (the
    whitespace is short here; tests/unit/test_spaced_reference.py covers long runs and chunk edges)."""
    xml = _SPACED.sub(b"=", xml)
    max_row = max_col = row_tags = cell_tags = rows_with_ref = cells_with_ref = 0
    carry = b" " * _HISTORY
    notes = _CellNotes()
    blocks = [xml[i : i + chunk] for i in range(0, len(xml), chunk)] + [b""]
    for block in blocks:
        notes.scan(block, formulas=True)
        if block and len(carry) + len(block) <= _HISTORY + _TAIL:
            carry += block
            continue
        buf = carry + block if block else carry + b"\0" * _TAIL
        end = len(buf) - _TAIL if block else len(carry)
        a = np.frombuffer(buf, dtype=np.uint8)
        r, c, _, _ = _references(a, _HISTORY, end)
        max_row, max_col = max(max_row, r), max(max_col, c)
        tags = _open_tags(a, _HISTORY, end)
        row_tags, rows_with_ref = row_tags + tags[0], rows_with_ref + tags[1]
        cell_tags, cells_with_ref = cell_tags + tags[2], cells_with_ref + tags[3]
        if not block:
            break
        carry = buf[end - _HISTORY :]
    return preflight.Extent(
        rows=max_row + row_tags - rows_with_ref,
        columns=max_col + cell_tags - cells_with_ref,
        cells=cell_tags,
        unknown_errors=notes.unknown_errors,
        unsaved=frozenset(notes.unsaved),
    )


# ---------------------------------------------------------------------------------------------------- helpers
def extent_of(xml: bytes, chunk: int, monkeypatch) -> preflight.Extent:
    monkeypatch.setattr(preflight, "CHUNK", chunk)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", xml)
    with zipfile.ZipFile(out) as zf:
        return preflight.sheet_extent(zf, zf.infolist()[0])


PIECES = [
    '<row r="{n}">',
    "<row>",
    "</row>",
    '<c r="{a}{n}">',
    "<c r='{a}{n}'>",
    "<c>",
    "<c/>",
    "</c>",
    '<x:c r="{a}{n}">',
    "</x:c>",
    "<x:row r='{n}'>",
    "<x:row>",
    '<very-long.prefix_name:c r="{a}{n}">',
    '<ns:deeper:c r="{a}{n}">',
    "<v>1</v>",
    "<f>SUM(A1)</f>",
    "<f/>",
    "<v></v>",
    "<v/>",
    "<v>#SPILL!</v>",
    "<v>#N/A</v>",
    '<c\tr="{a}{n}"\n>',
    '<c s="1" r="{a}{n}">',
    '<c\rr="{a}{n}"/>',
    " ",
    "\n",
    '<cols><col min="1"/></cols>',
    "<rowBreaks/>",
    '<c r="{a}{n}"><f>1</f></c>',
    '<c r="{a}{n}"><f/></c>',
    '<c r="{a}{n}"><x:f>A</x:f><x:v></x:v></x:c>',
    '<c r="{a}{n}" t="str"><f t="shared" si="0"/><v></v></c>',
    '<c r="{a}{n}" t="e"><v>#CALC!</v></c>',
    'r="ZZZZ1"',
    ' r="A123456789"',
    ' r="ABCD"',
    "text:c r",
    '<c r = "B3">',
    '<c r="{a}">',
    '<c r="{n}">',
    '<R r="{a}{n}">',
    '<sel sqref="{a}{n}" r="{a}{n}"/>',
    ' header="0.5" footer="1"',
    "<r><t>rich</t></r>",
    "<ф:c r='{a}{n}'>",
    "<ф:c/>",
    "<:c>",
    '<a=b:row r="{n}">',
    "<#$:row>",
]


def random_sheet(rng: random.Random) -> bytes:
    def piece() -> str:
        letters = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz") for _ in range(rng.choice([1, 1, 2, 3, 3])))
        number = rng.choice([1, 5, 99, 1048576, 1048577, rng.randrange(1, 10**7)])
        padded = f"{number:0{rng.choice([1, 2, 7, 8])}d}" if rng.random() < 0.2 else str(number)  # leading zeros
        return rng.choice(PIECES).format(a=letters, n=padded)

    body = "".join(piece() for _ in range(rng.randrange(1, 150)))
    return f'<worksheet xmlns="u"><sheetData>{body}</sheetData></worksheet>'.encode()


# ------------------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("seed", range(16))
def test_the_scan_reads_what_the_byte_by_byte_scan_read(seed, monkeypatch):
    xml = random_sheet(random.Random(seed))
    for chunk in (5, 17, 64, 333, 1 << 20):
        assert extent_of(xml, chunk, monkeypatch) == oracle_extent(xml, chunk), chunk


@pytest.mark.parametrize("chunk", [*range(3, 27), 1 << 20])
def test_a_far_reference_is_seen_wherever_the_chunks_end(chunk, monkeypatch):
    xml = b'<worksheet><sheetData><row r="1"><c r="A1"/></row><row r="2"><c r=\'xfd1048576\'/></row></sheetData>'
    got = extent_of(xml, chunk, monkeypatch)
    assert (got.rows, got.columns, got.cells) == (1048576, 16384, 2)


@pytest.mark.parametrize("chunk", [7, 50, 1 << 20])
@pytest.mark.parametrize(
    "cells,expected",
    [
        ('<c r="A1"/><c r="ABCD1"/>', (BEYOND, BEYOND)),  # four letters: no Excel column
        ('<c r="A1"/><c r="B12345678"/>', (BEYOND, BEYOND)),  # eight digits: no Excel row
        ('<c r="A7"/><c r="B1234567"/>', (1234567, 2)),
        # leading zeros: calamine reads A0000001 as A1, so the longest reference is not the last row; the cells
        # at row 900,000 must still count (the scan once took the longest digits for the largest: rows 1)
        ('<row r="900000"><c r="C900000"/></row><row r="0000001"><c r="A0000001"/></row>', (900000, 3)),
        ('<c r="XFD999999"/><c r="A0000001"/><row r="0000002"/>', (999999, 16384)),
        ('<c r="A00000001"/>', (BEYOND, BEYOND)),  # eight digits, even if zeros: no Excel row
        ('<c r="B0"/><c r="C00"/>', (0, 3)),
        ("<a:c r='c3'/><a:c/><a:c/>", (3, 5)),  # prefixed cells without a reference each step one column on
        ('<row r="9"/><abc.d-e_f:row/><row/>', (11, 0)),
    ],
)
def test_long_references_and_prefixed_tags(cells, expected, chunk, monkeypatch):
    got = extent_of(f"<worksheet><sheetData>{cells}</sheetData></worksheet>".encode(), chunk, monkeypatch)
    assert (got.rows, got.columns) == expected


@pytest.mark.parametrize("chunk", [*range(5, 48, 2), 4096])
@pytest.mark.parametrize(
    "cell,expected",
    [
        ('<c r="B40"><f>SUM(A1:A29)+A1+A2+A3+A4</f></c>', (40, 1)),
        ('<x:c r="C41" t="str"><x:f>A1&amp;"some long text to cut"</x:f></x:c>', (41, 2)),
    ],
)
def test_a_formula_cell_cut_by_chunks_is_noted(cell, expected, chunk, monkeypatch):
    """The formula regular expression runs only where a formula element starts; a cell whose formula starts chunks
    before the cell ends must still be noted (prefixed or not)."""
    filler = "".join(f'<c r="A{r}"><v>{r}</v></c>' for r in range(1, 30))
    xml = f'<worksheet><sheetData><row r="1">{filler}{cell}{filler}</row></sheetData></worksheet>'.encode()
    got = extent_of(xml, chunk, monkeypatch)
    assert got.unsaved == {expected}
    assert got == oracle_extent(xml, chunk)


def test_an_unknown_error_value_is_seen_in_the_last_chunk(monkeypatch):
    xml = b'<worksheet><sheetData><row r="1"><c r="A1" t="e"><v>#SPILL!</v></c></row></sheetData></worksheet>'
    for chunk in (3, 11, 1 << 20):
        assert extent_of(xml, chunk, monkeypatch).unknown_errors
    assert not extent_of(xml.replace(b"#SPILL!", b"#N/A"), 11, monkeypatch).unknown_errors

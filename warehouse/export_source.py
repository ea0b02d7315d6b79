"""Steward workbooks (warehouse/export.py), a workbook source read back: the values of one sheet from row 1 and
column A on (a formula without a cached value as its text), and, when the source file cannot be read, the
held-back rows of the warehouse laid out at their original rows and columns. (CSV sources: warehouse/export_csv.py.)"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Sequence
from itertools import zip_longest
from pathlib import Path

import openpyxl
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from warehouse.export_query import HeldBack

#: a formula element (``<f>``) in a worksheet's XML; warehouse/export.py checks every written workbook for it too
FORMULA_XML = re.compile(rb"<(?:\w+:)?f[\s>/]")


def _resolve_sheet(names: list[str], wanted: str | None) -> str:
    if wanted and wanted in names:
        return wanted
    if wanted:
        loose = {n.strip().casefold(): n for n in names}
        if wanted.strip().casefold() in loose:
            return loose[wanted.strip().casefold()]
        raise KeyError(f"the workbook has no sheet named '{wanted}' (sheets: {', '.join(names)})")
    return names[0]


def _has_formulas(path: Path, ws) -> bool:
    """Whether the worksheet's XML holds any <f> element (then a second pass recovers formulas without a value)."""
    part = getattr(ws, "_worksheet_path", None)
    if not part:
        return True
    try:
        with zipfile.ZipFile(path) as zf, zf.open(part.lstrip("/")) as fh:
            tail = b""
            while chunk := fh.read(1 << 20):
                if FORMULA_XML.search(tail + chunk):
                    return True
                tail = chunk[-8:]
    except (KeyError, zipfile.BadZipFile, OSError):
        return True
    return False


def _formula_text(value: object) -> str | None:
    if isinstance(value, ArrayFormula):
        return value.text
    if isinstance(value, DataTableFormula):
        return None
    if isinstance(value, str) and value.startswith("="):
        return value
    return None


def xlsx_rows(path: Path, sheet: str | None) -> tuple[str, Iterator[Sequence[object]], list]:
    """Values of one sheet from Excel row 1 and column A on: cached values, or the formula's text where a formula
    has no cached value. Returns (sheet name, rows, workbooks to close)."""
    values_wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    opened = [values_wb]
    name = _resolve_sheet(values_wb.sheetnames, sheet)
    values_ws = values_wb[name]
    values_ws.reset_dimensions()  # never trust the stored dimension: read every row the sheet holds
    rows = values_ws.iter_rows(values_only=True)
    if not _has_formulas(path, values_ws):
        return name, rows, opened
    formulas_wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    opened.append(formulas_wb)
    formulas_ws = formulas_wb[name]
    formulas_ws.reset_dimensions()

    def merged() -> Iterator[Sequence[object]]:
        for vals, forms in zip_longest(rows, formulas_ws.iter_rows(values_only=True), fillvalue=()):
            if None in vals or len(forms) > len(vals):
                vals = list(vals) + [None] * (len(forms) - len(vals))
                for i, f in enumerate(forms):
                    if vals[i] is None and f is not None:
                        vals[i] = _formula_text(f)
            yield vals

    return name, merged(), opened


def quarantine_rows(
    held: HeldBack, loaded_header_row: int | None, position: dict[str, int]
) -> tuple[Iterator[list[object]], int]:
    """The held-back rows at their Excel rows (streamed in row order), canonical names as header; a column keeps the
    letter the failures name for it (``position``, so their cell addresses still point at it), the others fill the
    free columns."""
    columns = list(held.columns)
    position = dict(position)
    columns += [c for c in position if c not in columns]
    used = set(position.values())
    free = (i for i in range(1, 16385) if i not in used)
    for c in columns:
        if c not in position:
            position[c] = next(free)
    first = held.first if held.first is not None else 2
    header_row = loaded_header_row if loaded_header_row and loaded_header_row < first else max(first - 1, 1)
    width = max(position.values(), default=0)
    head: list[object] = [None] * width
    for c in columns:
        head[position[c] - 1] = c

    def rows() -> Iterator[list[object]]:
        last = max(header_row, held.last if held.last is not None else header_row)
        stored = held.rows()
        nxt = next(stored, None)
        for r in range(1, last + 1):
            while nxt is not None and nxt[0] < r:  # a row the header hides (or before row 1)
                nxt = next(stored, None)
            if r == header_row:
                yield head
            elif nxt is not None and nxt[0] == r:
                line: list[object] = [None] * width
                for c, v in nxt[1].items():
                    line[position[c] - 1] = v
                yield line
            else:
                yield []

    return rows(), header_row

"""A years-across-columns sheet and its layout (for ``transforms/wide.py``): the :class:`Grid` of text cells and
the :class:`WideResult` of standardising it, :class:`SheetLayoutError`, the sheet found by its name pattern, the
header found by its label, and the header's cells told apart as year columns and attribute columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from schemas.sources import WideSheetSpec
from transforms.text import STR, as_text, column_letter, normalize_header


class SheetLayoutError(ValueError):
    """A sheet that does not look as its config says (no header label, no year columns); message for a steward."""


@dataclass
class Grid:
    """One worksheet as text: ``cells`` has one column per Excel column (named by its 0-based absolute index)."""

    name: str
    cells: pd.DataFrame


@dataclass
class WideResult:
    values: pd.DataFrame  # one row per entity x value column
    skipped: pd.DataFrame  # sheet, excel_row, reason, label
    quarantined: pd.DataFrame  # sheet, excel_row, + the row's cells as text
    failures: pd.DataFrame  # sheet, excel_row, cell, column, value, rule, severity, message, suggestion
    footnotes: pd.DataFrame  # key, text, sheet, excel_row
    rows_read: int = 0
    header_rows: dict[str, int] = field(default_factory=dict)  # sheet -> Excel row of its header
    captured: dict[str, dict[str, str]] = field(default_factory=dict)  # sheet -> named groups (price_base_year ...)
    sheets: list[str] = field(default_factory=list)  # the workbook's sheets the config described, in order read


def column_letters(indices: np.ndarray) -> np.ndarray:
    """0-based column indices -> Excel letters, vectorised over distinct indices."""
    uniq, inverse = np.unique(indices, return_inverse=True)
    return np.array([column_letter(int(i)) for i in uniq], dtype=object)[inverse]


def _norm(text: object) -> str:
    return normalize_header(text)


def find_sheet(names: list[str], pattern: str) -> tuple[str, dict[str, str]] | None:
    """The first sheet whose whole name matches ``pattern`` (case-insensitive), with the named groups."""
    rx = re.compile(pattern, re.IGNORECASE)
    for name in names:
        m = rx.fullmatch(name.strip())
        if m:
            return name, {k: v for k, v in m.groupdict().items() if v is not None}
    return None


def locate_header(grid: Grid, spec: WideSheetSpec) -> tuple[int, int]:
    """(row position, column) of the cell holding ``header_label`` within the first ``max_scan_rows`` rows."""
    head = grid.cells.iloc[: spec.max_scan_rows]
    want = _norm(spec.header_label)
    for pos, row in enumerate(head.itertuples(index=False, name=None)):  # a few dozen rows of the preamble
        for col, cell in zip(head.columns, row):
            if isinstance(cell, str) and _norm(cell) == want:
                return pos, int(col)
    raise SheetLayoutError(
        f"[{grid.name}]: no '{spec.header_label}' header cell in the first {spec.max_scan_rows} rows"
    )


def _preamble_text(grid: Grid, header_pos: int) -> str:
    above = grid.cells.iloc[:header_pos]
    return "\n".join(str(v) for v in above.to_numpy().ravel() if isinstance(v, str))


def _value_columns(header: pd.Series, spec: WideSheetSpec, captured: dict[str, str]) -> pd.DataFrame:
    """One row per header cell holding values: column index, year, measure, unit, scale, price_base_year."""
    rows = []
    for col, text in header.items():
        if not isinstance(text, str):
            continue
        for vc in spec.values:
            m = re.fullmatch(vc.header, text.strip())
            if m:
                rows.append(
                    (
                        int(col),
                        int(m.group("year")),
                        vc.measure or spec.measure,
                        vc.unit or spec.unit,
                        vc.scale or spec.scale,
                        captured.get("price_base_year") if vc.sheet_groups else None,
                        text.strip(),
                    )
                )
                break
    return pd.DataFrame(rows, columns=["col", "year", "measure", "unit", "scale", "price_base_year", "header"])


def _attribute_columns(header: pd.Series, spec: WideSheetSpec) -> dict[str, int]:
    wanted = {_norm(alias): attr for attr, aliases in spec.attributes.items() for alias in aliases}
    found: dict[str, int] = {}
    for col, text in header.items():
        attr = wanted.get(_norm(text)) if isinstance(text, str) else None
        if attr and attr not in found:
            found[attr] = int(col)
    return found


def _text_cells(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda c: as_text(c.astype(STR)))

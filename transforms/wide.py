"""Reference workbooks with the years across the columns (e.g. SIPRI military expenditure) -> long rows.

Pure functions over a sheet's grid of text cells (pandas, one column per Excel column, row i = Excel row i + 1):
find the header by its label, tell year columns from attribute columns by the header text, separate region and
sub-region heading rows from entity rows, and melt entity x year into one row per cell with a status: ``value``,
``missing`` (the 'no data' mark, e.g. '...': NULL, never 0), ``not_existing`` (e.g. 'xxx'), ``empty`` (a blank
cell) or ``invalid`` (anything else; a warning for the steward). Every row below the header is accounted for:
an entity row (loaded), a heading, a blank row (skipped) or a row with values and no name (quarantined).

This module holds the workbook level (:func:`standardise_workbook`, the footnotes sheet, the published year and
the edition); ``transforms/wide_layout.py`` holds the grid, the result and a sheet's layout (header, year and
attribute columns), ``transforms/wide_sheet.py`` one data sheet melted into long rows. Their public names are
re-exported here.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from schemas.sources import WideFileSpec
from transforms.text import STR
from transforms.wide_layout import (
    Grid,
    SheetLayoutError,
    WideResult,
    _text_cells,
    column_letters,
    find_sheet,
    locate_header,
)
from transforms.wide_sheet import FOOTNOTE_NUMBERS, _no_failures, split_footnote_marks, standardise_sheet

__all__ = [
    "FOOTNOTE_NUMBERS",
    "Grid",
    "SheetLayoutError",
    "WideResult",
    "column_letters",
    "edition_contradiction",
    "edition_of",
    "find_sheet",
    "locate_header",
    "published_year",
    "split_footnote_marks",
    "standardise_footnotes",
    "standardise_sheet",
    "standardise_workbook",
]


def standardise_footnotes(grid: Grid) -> WideResult:
    """A footnotes sheet: first column the mark (a symbol or a number), the first text to its right the note.
    Rows with a mark and a note load; a mark without a note (a title) is a heading; empty rows are blank."""
    cells = _text_cells(grid.cells)
    excel_row = np.arange(1, len(cells) + 1, dtype="int32")
    if cells.shape[1] == 0:
        return WideResult(
            _empty_values(),
            pd.DataFrame(columns=["sheet", "excel_row", "reason", "label"]),
            pd.DataFrame(columns=["sheet", "excel_row"]),
            _no_failures(),
            pd.DataFrame(columns=["key", "text", "sheet", "excel_row"]),
            rows_read=0,
            sheets=[grid.name],
        )
    key = cells.iloc[:, 0].reset_index(drop=True)
    rest = cells.iloc[:, 1:].reset_index(drop=True)
    text = rest.bfill(axis=1).iloc[:, 0] if rest.shape[1] else pd.Series(pd.NA, index=key.index, dtype=STR)
    is_note = key.notna() & text.notna()
    is_blank = key.isna() & text.isna()
    loose = key.isna() & text.notna()  # a note without a mark: keep it, keyed by its row
    key = key.where(~loose, "row " + pd.Series(excel_row).astype(str))
    keep = is_note | loose
    notes = pd.DataFrame(
        {
            "key": key[keep].astype(object).to_numpy(),
            "text": text[keep].astype(object).to_numpy(),
            "sheet": grid.name,
            "excel_row": excel_row[keep.to_numpy()],
        }
    )
    skip = ~keep
    skipped = pd.DataFrame(
        {
            "sheet": grid.name,
            "excel_row": excel_row[skip.to_numpy()],
            "reason": np.where(is_blank[skip], "blank", "heading"),
            "label": key[skip].astype(object).to_numpy(),
        }
    )
    return WideResult(
        _empty_values(),
        skipped,
        pd.DataFrame(columns=["sheet", "excel_row"]),
        _no_failures(),
        notes,
        rows_read=len(cells),
        sheets=[grid.name],
    )


def _empty_values() -> pd.DataFrame:
    return pd.DataFrame()


def standardise_workbook(grids: list[Grid], spec: WideFileSpec, country_lookup: pd.DataFrame) -> WideResult:
    """Every sheet the config describes, plus the footnotes sheet; raises :class:`SheetLayoutError` when a
    required sheet is missing or does not look as described (the file then fails as a whole, nothing half-loaded)."""
    names = [g.name for g in grids]
    by_name = {g.name: g for g in grids}
    severity = dict(spec.severity)
    parts: list[WideResult] = []
    for sheet_spec in spec.sheets:
        hit = find_sheet(names, sheet_spec.sheet)
        if hit is None:
            if sheet_spec.required:
                raise SheetLayoutError(
                    f"no sheet matches '{sheet_spec.sheet}' (for {sheet_spec.measure}); sheets are: {', '.join(names)}"
                )
            continue
        name, groups = hit
        parts.append(standardise_sheet(by_name[name], sheet_spec, spec, groups, country_lookup, severity))
    if spec.footnotes is not None:
        hit = find_sheet(names, spec.footnotes.sheet)
        if hit is not None:
            parts.append(standardise_footnotes(by_name[hit[0]]))
        elif spec.footnotes.required:
            raise SheetLayoutError(
                f"no footnotes sheet matches '{spec.footnotes.sheet}'; sheets are: {', '.join(names)}"
            )

    def cat(attr):
        return pd.concat(
            [getattr(p, attr) for p in parts if len(getattr(p, attr))] or [getattr(parts[0], attr)], ignore_index=True
        )

    return WideResult(
        values=cat("values"),
        skipped=cat("skipped"),
        quarantined=cat("quarantined"),
        failures=cat("failures"),
        footnotes=cat("footnotes"),
        rows_read=sum(p.rows_read for p in parts),
        header_rows={k: v for p in parts for k, v in p.header_rows.items()},
        captured={k: v for p in parts for k, v in p.captured.items()},
        sheets=[name for p in parts for name in p.sheets],
    )


def published_year(grids: list[Grid], pattern: str | None, scan_rows: int = 8) -> int | None:
    """The year a workbook states it was published (e.g. '© SIPRI 2022' in a title cell), if the config says how."""
    if not pattern:
        return None
    rx = re.compile(pattern)
    for grid in grids:
        for cell in grid.cells.iloc[:scan_rows].to_numpy().ravel():
            m = rx.search(cell) if isinstance(cell, str) else None
            if m:
                return int(m.group("year"))
    return None


def edition_contradiction(edition: dict[str, str], values: pd.DataFrame) -> str | None:
    """What the workbook's content says against the edition its name gives, or None. The groups ``first_year`` and
    ``last_year`` (when the edition pattern captures them) must be the first and last year the sheets hold values
    for: a file named 2008-2024 holding 2008-2025 is not the 2008-2024 edition, whatever its name says. Nothing is
    said when the sheets hold no value row (such a file loads nothing anyway)."""
    if not len(values) or "year" not in values.columns:
        return None
    years = pd.to_numeric(values["year"], errors="coerce").dropna()
    if not len(years):
        return None
    held = {"first_year": int(years.min()), "last_year": int(years.max())}
    named = {k: edition[k] for k in held if k in edition}
    wrong = [k for k, v in named.items() if not v.isdigit() or int(v) != held[k]]
    if not wrong:
        return None
    said = ", ".join(f"{k} {named[k]}" for k in wrong)
    return (
        f"the name says edition {edition['edition']} ({said}) but the sheets hold the years "
        f"{held['first_year']}-{held['last_year']}: not loaded. Keep the publisher's file under its own name"
    )


def edition_of(file_name: str, spec: WideFileSpec) -> dict[str, str] | None:
    """The edition label and the groups it was made of, from the file name; None when the name does not match."""
    m = re.search(spec.edition.file_name, file_name)
    if not m:
        return None
    groups = {k: v for k, v in m.groupdict().items() if v is not None}
    return {"edition": spec.edition.label.format(**groups), **groups}

"""Which rows below the header are data, totals or blank."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from transforms.text import missing_text, per_unique

DATA, TOTAL, BLANK = "data", "total", "blank"
#: the row kinds by their number in :func:`row_kinds`
KINDS = np.array([DATA, TOTAL, BLANK], dtype=object)
_STR = pd.StringDtype("pyarrow")


def classify_rows(
    frame: pd.DataFrame, value_columns: list[str], label_columns: list[str], totals_label: str | None
) -> pd.Series:
    """Cells are as the reader gives them (empty and whitespace-only cells are null).

    ``blank`` when every mapped cell is empty; ``total`` when the first non-empty label cell matches
    ``totals_label`` (case-insensitive); ``data`` otherwise."""
    kinds = row_kinds(frame, value_columns, label_columns, totals_label)
    return pd.Series(KINDS[kinds], index=frame.index, dtype=object)


def row_kinds(
    frame: pd.DataFrame, value_columns: list[str], label_columns: list[str], totals_label: str | None
) -> np.ndarray:
    """:func:`classify_rows` as numbers into :data:`KINDS` (0 data, 1 total, 2 blank): compared without a
    comparison of every row's Python string."""
    blank = frame[value_columns].isna().all(axis=1).to_numpy(dtype=bool)
    kinds = np.where(blank, 2, 0).astype(np.int8)
    if totals_label:
        label = first_present(frame, label_columns)
        is_total = per_unique(label, lambda u: _matches(u, totals_label)).fillna(False).to_numpy(dtype=bool)
        kinds[is_total & ~blank] = 1
    return kinds


def first_present(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Per row, the first of ``columns`` (those ``frame`` has) whose cell is not null, as Arrow-backed text (NA
    where none is): one pass over the columns (Arrow's coalesce), not a fill per column."""
    cells = [frame[c].astype(_STR) for c in columns if c in frame]
    if not cells:
        return missing_text(frame.index)
    if len(cells) == 1:
        return cells[0].copy(deep=False)
    first = pc.coalesce(*(pa.chunked_array(pa.array(c.array)) for c in cells))
    return pd.Series(pd.array(first, dtype=_STR), index=frame.index)


def _matches(labels: pd.Series, pattern: str) -> pd.Series:
    """Does the (distinct) label match the steward's regex? Searched with ``re`` per distinct label: pandas'
    ``str.contains`` warns for a pattern with groups ("^(grand )?total"), and silencing that is not thread-safe
    (the flow reads files on several threads)."""
    rx = re.compile(pattern, re.IGNORECASE)
    return labels.map(lambda s: bool(rx.search(s.strip())) if isinstance(s, str) else pd.NA).astype("boolean")

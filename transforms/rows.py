"""Which rows below the header are data, totals or blank."""

from __future__ import annotations

import re

import pandas as pd

from transforms.text import per_unique

DATA, TOTAL, BLANK = "data", "total", "blank"


def classify_rows(
    frame: pd.DataFrame, value_columns: list[str], label_columns: list[str], totals_label: str | None
) -> pd.Series:
    """Cells are as the reader gives them (empty and whitespace-only cells are null).

    ``blank`` when every mapped cell is empty; ``total`` when the first non-empty label cell matches
    ``totals_label`` (case-insensitive); ``data`` otherwise."""
    blank = frame[value_columns].isna().all(axis=1)
    status = pd.Series(DATA, index=frame.index, dtype=object).where(~blank, BLANK)
    if totals_label:
        label = pd.Series(pd.NA, index=frame.index, dtype=pd.StringDtype("pyarrow"))
        for col in label_columns:
            if col in frame:
                label = label.fillna(frame[col])
        is_total = per_unique(label, lambda u: _matches(u, totals_label)).fillna(False).astype(bool)
        status = status.where(~(is_total & ~blank), TOTAL)
    return status


def _matches(labels: pd.Series, pattern: str) -> pd.Series:
    """Does the (distinct) label match the steward's regex? Searched with ``re`` per distinct label: pandas'
    ``str.contains`` warns for a pattern with groups ("^(grand )?total"), and silencing that is not thread-safe
    (the flow reads files on several threads)."""
    rx = re.compile(pattern, re.IGNORECASE)
    return labels.map(lambda s: bool(rx.search(s.strip())) if isinstance(s, str) else pd.NA).astype("boolean")

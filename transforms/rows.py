"""Which rows below the header are data, totals or blank."""
from __future__ import annotations

import warnings

import pandas as pd

from transforms.text import as_text

DATA, TOTAL, BLANK = "data", "total", "blank"


def classify_rows(frame: pd.DataFrame, value_columns: list[str], label_columns: list[str], totals_label: str | None) -> pd.Series:
    """``blank`` when every mapped cell is empty; ``total`` when the first non-empty label cell matches
    ``totals_label`` (case-insensitive); ``data`` otherwise."""
    cells = frame[value_columns]
    blank = pd.Series(True, index=frame.index)
    for col in value_columns:
        blank &= as_text(cells[col]).isna()
    status = pd.Series(DATA, index=frame.index, dtype=object).where(~blank, BLANK)
    if totals_label:
        label = pd.Series(pd.NA, index=frame.index, dtype=pd.StringDtype("pyarrow"))
        for col in label_columns:
            if col in frame:
                label = label.fillna(as_text(frame[col]))
        with warnings.catch_warnings():  # a steward's regex may have groups; we only ask "does it match"
            warnings.simplefilter("ignore", UserWarning)
            is_total = label.str.contains(totals_label, case=False, regex=True).fillna(False).astype(bool)
        status = status.where(~(is_total & ~blank), TOTAL)
    return status

"""What makes two files' copies of one edition the same: their figures (what each entity reported for each year and
measure). The store uses it to say whether a second claimant differs from the loaded file; flows/editions.py to
settle the claims of one night."""

from __future__ import annotations

import pandas as pd

#: the columns that make an edition's figures: what each entity reported for each year and measure
FIGURE_COLUMNS = ["measure", "entity_type", "entity_name", "year", "value", "raw_value"]


def figures(values: pd.DataFrame) -> pd.DataFrame:
    """An edition's figures in a canonical order, for comparing two files' values."""
    cols = [c for c in FIGURE_COLUMNS if c in values.columns]
    frame = values[cols].astype({"raw_value": "string"} if "raw_value" in cols else {})
    return frame.sort_values(cols[:4], kind="stable").reset_index(drop=True)


def same_figures(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    fa, fb = figures(a), figures(b)
    return fa.shape == fb.shape and fa.equals(fb)

"""Vectorised text clean-up shared by the normalisers."""
from __future__ import annotations

import pandas as pd

ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"
EASTERN_ARABIC_INDIC = "۰۱۲۳۴۵۶۷۸۹"
_DIGITS = str.maketrans(ARABIC_INDIC + EASTERN_ARABIC_INDIC, "0123456789" * 2)


def as_text(series: pd.Series) -> pd.Series:
    """Any series -> Arrow-backed strings, stripped, with empty cells as NA."""
    s = series if isinstance(series.dtype, pd.StringDtype) else series.astype(pd.StringDtype("pyarrow"))
    s = s.str.strip()
    return s.mask(s == "")


def ascii_digits(series: pd.Series) -> pd.Series:
    """Arabic-Indic and Eastern Arabic-Indic digits -> ASCII digits; Arabic decimal/thousands marks -> . and ,"""
    s = series
    if s.str.contains(r"[\u0660-\u0669\u06F0-\u06F9\u066B\u066C]", regex=True).fillna(False).any():
        s = s.str.translate(_DIGITS).str.replace("\u066b", ".", regex=False).str.replace("\u066c", ",", regex=False)
    return s


def fold_key(series: pd.Series) -> pd.Series:
    """Lookup key for labels and names: NFKC, case-folded, inner whitespace collapsed, tatweel dropped."""
    s = series.str.normalize("NFKC").str.replace("\u0640", "", regex=False)
    return s.str.replace(r"\s+", " ", regex=True).str.strip().str.casefold()

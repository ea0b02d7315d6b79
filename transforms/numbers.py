"""Amount cells -> floats, with an explicit error policy: what cannot be read stays NA and is reported."""
from __future__ import annotations

import pandas as pd

from transforms.text import ascii_digits, as_text

_SEPARATORS = {
    # locale: (thousands separators to drop, decimal mark)
    "en": (r"[,\s\u00a0\u202f'’]", "."),
    "eu": (r"[.\s\u00a0\u202f'’]", ","),
}


def parse_amounts(cells: pd.Series, locale: str = "en") -> tuple[pd.Series, pd.Series]:
    """Parse amount cells.

    Returns ``(values, is_blank)``: ``values`` is float64 with NaN where a cell is blank or not a number;
    ``is_blank`` tells the two apart. Handles thousands separators per locale, parentheses and trailing minus
    for negatives, Arabic-Indic digits and a leading currency symbol or code.
    """
    thousands, decimal = _SEPARATORS[locale]
    text = as_text(cells)
    is_blank = text.isna()
    s = ascii_digits(text)
    negative = s.str.match(r"^\(.*\)$|^.*-$").fillna(False)
    s = s.str.replace(r"^\((.*)\)$", r"\1", regex=True).str.replace(r"-$", "", regex=True)
    s = s.str.replace(r"^(?:[A-Z]{3}|[$€£])\s*", "", regex=True)
    s = s.str.replace(thousands, "", regex=True)
    if decimal != ".":
        s = s.str.replace(decimal, ".", regex=False)
    values = pd.to_numeric(s, errors="coerce").astype("float64")
    values = values.where(~negative, -values.abs())
    return values, is_blank.astype(bool)

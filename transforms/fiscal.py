"""Fiscal-year labels -> a canonical fiscal year and its period dates.

Canonical ``fiscal_year`` is the calendar year in which the fiscal period ENDS (docs/adr/0003-fiscal-year.md).
A label that names two years ("2023/24", "2023-2024") is unambiguous; a bare year ("2024", "FY2024", "FY24")
names the start or the end year as the agency's ``fiscal_year_label`` rule says. With a January start both agree.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from transforms.text import as_text, ascii_digits, per_unique

_LABEL = (
    r"^(?:FY|F\.Y\.|السنة المالية)?\s*"
    r"(?P<first>\d{4}|\d{2})(?:\.0+)?"
    r"(?:\s*[/\-–]\s*(?P<second>\d{4}|\d{2}))?\s*$"
)


def _full_year(two_or_four: pd.Series) -> pd.Series:
    n = pd.to_numeric(two_or_four, errors="coerce")
    return n.where(n >= 100, 2000 + n)


def parse_fiscal_year(labels: pd.Series, start_month: int, label_year: str = "end") -> pd.Series:
    """Label -> canonical fiscal year (Int64, NA when the label cannot be read)."""
    return per_unique(labels, lambda u: _parse_labels(u, start_month, label_year)).astype("Int64")


def _parse_labels(labels: pd.Series, start_month: int, label_year: str) -> pd.Series:
    text = ascii_digits(as_text(labels))
    parts = text.str.upper().str.extract(_LABEL, expand=True)
    first = _full_year(parts["first"])
    second = parts["second"]
    has_second = second.notna()
    second_full = _full_year(second.where(has_second))
    # "2023/24": second year completes the first ("24" -> 2024); it must follow the first year
    second_full = second_full.where(second_full >= first)
    if start_month == 1:
        fy = first.where(~has_second, np.nan)  # a calendar fiscal year has no two-year label
    else:
        bare = first + 1 if label_year == "start" else first
        fy = bare.where(~has_second, second_full.where(second_full == first + 1))
    fy = fy.where((fy >= 1900) & (fy <= 2100))
    return fy.round().astype("Int64")


def fiscal_period(fiscal_year: pd.Series, start_month: int) -> tuple[pd.Series, pd.Series]:
    """Canonical fiscal year -> (first day, last day) of the period, as datetime64 (NaT where NA)."""
    fy = fiscal_year.astype("float64")
    start_year = fy if start_month == 1 else fy - 1
    start = pd.to_datetime(
        {"year": start_year, "month": np.full(len(fy), start_month), "day": np.ones(len(fy))}, errors="coerce"
    )
    end = (start + pd.DateOffset(years=1)) - pd.Timedelta(days=1)
    return start.set_axis(fiscal_year.index), end.set_axis(fiscal_year.index)

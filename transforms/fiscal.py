"""Fiscal-year labels -> a canonical fiscal year and its period dates.

Canonical ``fiscal_year`` is the calendar year in which the fiscal period ENDS (docs/adr/0003-fiscal-year.md).
A label that names two years ("2023/24", "2023-2024") is unambiguous; a bare year ("2024", "FY2024", "FY24")
names the start or the end year as the agency's ``fiscal_year_label`` rule says. With a January start both agree.
Hijri fiscal years ("1445", "1445H", "١٤٤٥هـ") run from 1 Muharram to the end of Dhu al-Hijjah (Umm al-Qura
calendar, via ``hijridate``); a label with an H / هـ suffix is Hijri whatever the agency's calendar.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from hijridate import Hijri

from transforms.text import as_text, ascii_digits, per_unique

_LABEL = (
    r"^(?:FY|F\.Y\.|السنة المالية)?\s*"
    r"(?P<first>\d{4}|\d{2})(?:\.0+)?"
    r"(?:\s*[/\-–]\s*(?P<second>\d{4}|\d{2}))?\s*"
    r"(?P<hijri>A\.?H\.?|H|هـ|ه)?\s*$"
)
HIJRI_YEARS = (1343, 1499)  # the Umm al-Qura tables hijridate carries (1924-2077)


def _full_year(two_or_four: pd.Series) -> pd.Series:
    n = pd.to_numeric(two_or_four, errors="coerce")
    return n.where(n >= 100, 2000 + n)


def _split(labels: pd.Series) -> pd.DataFrame:
    text = ascii_digits(as_text(labels))
    return text.str.upper().str.extract(_LABEL, expand=True)


def parse_fiscal_year(labels: pd.Series, start_month: int, label_year: str = "end") -> pd.Series:
    """Gregorian label -> canonical fiscal year (Int64, NA when the label cannot be read or is Hijri)."""
    return per_unique(labels, lambda u: _gregorian(_split(u), start_month, label_year), "Int64")


def _gregorian(parts: pd.DataFrame, start_month: int, label_year: str) -> pd.Series:
    first = _full_year(parts["first"])
    second = parts["second"]
    has_second = second.notna()
    second_full = _full_year(second.where(has_second))
    second_full = second_full.where(second_full >= first)  # "2023/24": the second year must follow the first
    if start_month == 1:
        fy = first.where(~has_second, np.nan)  # a calendar fiscal year has no two-year label
    else:
        bare = first + 1 if label_year == "start" else first
        fy = bare.where(~has_second, second_full.where(second_full == first + 1))
    fy = fy.where((fy >= 1900) & (fy <= 2100) & parts["hijri"].isna())
    return fy.round().astype("Int64")


def fiscal_period(fiscal_year: pd.Series, start_month: int) -> tuple[pd.Series, pd.Series]:
    """Canonical (Gregorian) fiscal year -> (first day, last day) of the period, as datetime64 (NaT where NA)."""
    fy = fiscal_year.astype("float64")
    start_year = fy if start_month == 1 else fy - 1
    start = pd.to_datetime(
        {"year": start_year, "month": np.full(len(fy), start_month), "day": np.ones(len(fy))}, errors="coerce"
    )
    end = (start + pd.DateOffset(years=1)) - pd.Timedelta(days=1)
    return start.set_axis(fiscal_year.index), end.set_axis(fiscal_year.index)


def hijri_year_period(hijri_year: int) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """1 Muharram .. last day of Dhu al-Hijjah of a Hijri year, in Gregorian dates (None outside the tables)."""
    if not HIJRI_YEARS[0] <= hijri_year <= HIJRI_YEARS[1]:
        return None
    start = Hijri(hijri_year, 1, 1).to_gregorian()
    end = Hijri(hijri_year + 1, 1, 1).to_gregorian() - timedelta(days=1)
    return pd.Timestamp(start.isoformat()), pd.Timestamp(end.isoformat())


def resolve_fiscal_years(
    labels: pd.Series, start_month: int, label_year: str = "end", calendar: str = "gregorian"
) -> pd.DataFrame:
    """Labels -> fiscal_year (Int64), period_start, period_end (datetime64); NA/NaT where unreadable.

    Works per distinct label (a file holds a few, the same ones as the night's other files: their years are kept,
    :data:`_YEARS`); Hijri labels go through the Umm al-Qura tables."""
    codes, uniques = pd.factorize(labels, use_na_sentinel=True)
    out = _years(pd.Series(uniques, dtype=object), start_month, label_year, calendar)
    at = np.maximum(codes, 0)
    missing = codes < 0  # a row without a label: no year, no period
    return pd.DataFrame(
        {
            "fiscal_year": out["fiscal_year"].array.take(np.where(missing, -1, codes), allow_fill=True),
            "period_start": np.where(missing, np.datetime64("NaT"), out["period_start"].to_numpy()[at]),
            "period_end": np.where(missing, np.datetime64("NaT"), out["period_end"].to_numpy()[at]),
        },
        index=labels.index,
    )


#: (label, start month, label year, calendar) -> its year and period (:func:`_years_of`), kept across files (a
#: night's files share a few labels); only from files with few distinct labels, and at most MEMO_LIMIT of them
_YEARS: dict[tuple[object, ...], tuple[object, np.datetime64, np.datetime64]] = {}
MEMO_VALUES, MEMO_LIMIT = 1_000, 10_000


def _years(u: pd.Series, start_month: int, label_year: str, calendar: str) -> pd.DataFrame:
    """:func:`_years_of` of the distinct labels ``u``, of those not seen before only (:data:`_YEARS`)."""
    if len(u) > MEMO_VALUES or not len(u):
        return _years_of(u, start_month, label_year, calendar)
    keys = [(str(label), start_month, label_year, calendar) for label in u]
    found = [_YEARS.get(k) for k in keys]
    new = [i for i, f in enumerate(found) if f is None]
    if new:
        computed = _years_of(u.iloc[new].reset_index(drop=True), start_month, label_year, calendar)
        if len(_YEARS) + len(new) > MEMO_LIMIT:
            _YEARS.clear()
        rows = zip(computed["fiscal_year"], computed["period_start"].to_numpy(), computed["period_end"].to_numpy())
        for i, row in zip(new, rows, strict=True):
            found[i] = _YEARS[keys[i]] = row
    return pd.DataFrame(
        {
            "fiscal_year": pd.array([f[0] for f in found], dtype="Int64"),  # type: ignore[index]
            "period_start": np.array([f[1] for f in found], dtype="datetime64[ns]"),  # type: ignore[index]
            "period_end": np.array([f[2] for f in found], dtype="datetime64[ns]"),  # type: ignore[index]
        }
    )


def _years_of(u: pd.Series, start_month: int, label_year: str, calendar: str) -> pd.DataFrame:
    """Per distinct label: fiscal_year (Int64), period_start and period_end (datetime64[ns]); at least one row."""
    parts = _split(u)
    fy = _gregorian(parts, start_month, label_year)
    start, end = fiscal_period(fy, start_month)
    hijri = parts["hijri"].notna() | ((calendar == "hijri") & parts["second"].isna())
    for i in np.flatnonzero(hijri.to_numpy() & parts["first"].notna().to_numpy()):
        period = hijri_year_period(int(parts["first"].iloc[i])) if len(parts["first"].iloc[i]) == 4 else None
        start.iloc[i], end.iloc[i] = period if period else (pd.NaT, pd.NaT)
        fy.iloc[i] = period[1].year if period else pd.NA
    if calendar == "hijri":
        gregorian_only = ~hijri
        fy, start, end = fy.mask(gregorian_only), start.mask(gregorian_only), end.mask(gregorian_only)
    out = pd.DataFrame({"fiscal_year": fy.astype("Int64"), "period_start": start, "period_end": end})
    if out.empty:
        out = pd.DataFrame(
            {"fiscal_year": pd.array([pd.NA], dtype="Int64"), "period_start": [pd.NaT], "period_end": [pd.NaT]}
        )
    return out.astype({"fiscal_year": "Int64", "period_start": "datetime64[ns]", "period_end": "datetime64[ns]"})

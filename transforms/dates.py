"""Date cells -> datetimes: ISO text, Excel serial numbers (1900 date system), day-first text, and Hijri
(Umm al-Qura) dates in ASCII or Arabic-Indic digits, recognised by their year (1343-1499 AH).

Parsing works at microsecond resolution (years 1-9999); the warehouse's datetime64[ns] holds 1677-09-21 to
2262-04-11 only, so a readable date outside that range (an Excel serial of 150000, year 0001, an end date in 2300)
is reported as out of range, never cast (the cast would raise ``OutOfBoundsDatetime`` for the whole file).
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
from hijridate import Hijri

from transforms.fiscal import HIJRI_YEARS
from transforms.text import as_text, ascii_digits, per_unique

EXCEL_EPOCH = pd.Timestamp("1899-12-30")
_YMD = r"^(?P<y>\d{4})[/\-.](?P<m>\d{1,2})[/\-.](?P<d>\d{1,2})\s*(?:هـ|ه|H|AH)?$"
_DMY = r"^(?P<d>\d{1,2})[/\-.](?P<m>\d{1,2})[/\-.](?P<y>\d{4})\s*(?:هـ|ه|H|AH)?$"


STORABLE = (pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-10"))  # inside datetime64[ns], whole days
STORABLE_TEXT = "1677-2262"


class ParsedDates(NamedTuple):
    dates: pd.Series  # datetime64[ns]; NaT where blank, unreadable or out of range
    is_blank: pd.Series  # bool
    out_of_range: pd.Series  # bool: a readable date the warehouse cannot store


def read_dates(cells: pd.Series) -> ParsedDates:
    """Date cells -> :class:`ParsedDates`; unreadable cells are NaT and neither blank nor out of range."""
    is_blank = as_text(cells).isna()
    wide = per_unique(cells, _parse).astype("datetime64[us]")
    outside = wide.notna() & ((wide < STORABLE[0]) | (wide > STORABLE[1]))
    return ParsedDates(wide.mask(outside).astype("datetime64[ns]"), is_blank.astype(bool), outside.astype(bool))


def parse_dates(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Returns ``(dates, is_blank)``; unreadable and out-of-range cells are NaT and not blank."""
    parsed = read_dates(cells)
    return parsed.dates, parsed.is_blank


def _hijri(text: pd.Series) -> pd.Series:
    """Hijri y/m/d (either order) -> Gregorian; NaT where not a Hijri date."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    maybe = text.str.contains(r"(?:^|\D)1[345]\d\d(?:\D|$)", regex=True).fillna(False).astype(bool)
    if not maybe.any():  # no year in the Hijri range: skip the per-value work
        return out
    text = text[maybe]
    parts = text.str.extract(_YMD).combine_first(text.str.extract(_DMY))
    y = pd.to_numeric(parts["y"], errors="coerce")
    candidates = parts.index[(y >= HIJRI_YEARS[0]) & (y <= HIJRI_YEARS[1])]
    for i in candidates:  # distinct values only (the caller works per unique cell)
        try:
            g = Hijri(int(parts.at[i, "y"]), int(parts.at[i, "m"]), int(parts.at[i, "d"])).to_gregorian()
        except (ValueError, OverflowError):
            continue
        out.at[i] = pd.Timestamp(g.isoformat())
    return out


def _parse(cells: pd.Series) -> pd.Series:
    text = ascii_digits(as_text(cells))
    serial = pd.to_numeric(text, errors="coerce")
    from_serial = EXCEL_EPOCH + pd.to_timedelta(serial.where((serial > 0) & (serial < 2_958_466)), unit="D")
    hijri = _hijri(text)
    rest = text.where(serial.isna() & hijri.isna())
    iso = pd.to_datetime(rest, errors="coerce", format="ISO8601").astype("datetime64[us]")
    dayfirst = pd.to_datetime(rest.where(iso.isna()), errors="coerce", format="%d/%m/%Y").astype("datetime64[us]")
    return hijri.fillna(iso).fillna(dayfirst).fillna(from_serial.astype("datetime64[us]"))

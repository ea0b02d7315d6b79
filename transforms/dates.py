"""Date cells -> datetimes: ISO text, Excel serial numbers (1900 date system), day-first text, and Hijri
(Umm al-Qura) dates in ASCII or Arabic-Indic digits, recognised by their year (1343-1499 AH)."""
from __future__ import annotations

import pandas as pd
from hijridate import Hijri

from transforms.fiscal import HIJRI_YEARS
from transforms.text import as_text, ascii_digits, per_unique

EXCEL_EPOCH = pd.Timestamp("1899-12-30")
_YMD = r"^(?P<y>\d{4})[/\-.](?P<m>\d{1,2})[/\-.](?P<d>\d{1,2})\s*(?:هـ|ه|H|AH)?$"
_DMY = r"^(?P<d>\d{1,2})[/\-.](?P<m>\d{1,2})[/\-.](?P<y>\d{4})\s*(?:هـ|ه|H|AH)?$"


def parse_dates(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Returns ``(dates, is_blank)``; unreadable cells are NaT and not blank."""
    is_blank = as_text(cells).isna()
    out = per_unique(cells, _parse)
    return out.astype("datetime64[ns]"), is_blank.astype(bool)


def _hijri(text: pd.Series) -> pd.Series:
    """Hijri y/m/d (either order) -> Gregorian; NaT where not a Hijri date."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
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
    iso = pd.to_datetime(rest, errors="coerce", format="ISO8601")
    dayfirst = pd.to_datetime(rest.where(iso.isna()), errors="coerce", format="%d/%m/%Y")
    return hijri.fillna(iso).fillna(dayfirst).fillna(from_serial).astype("datetime64[ns]")

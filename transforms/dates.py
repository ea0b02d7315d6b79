"""Date cells -> datetimes: ISO text, Excel serial numbers (1900 date system), day-first text."""
from __future__ import annotations

import pandas as pd

from transforms.text import as_text, ascii_digits, per_unique

EXCEL_EPOCH = pd.Timestamp("1899-12-30")


def parse_dates(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Returns ``(dates, is_blank)``; unreadable cells are NaT and not blank."""
    is_blank = as_text(cells).isna()
    out = per_unique(cells, _parse)
    return out.astype("datetime64[ns]"), is_blank.astype(bool)


def _parse(cells: pd.Series) -> pd.Series:
    text = ascii_digits(as_text(cells))
    serial = pd.to_numeric(text, errors="coerce")
    from_serial = EXCEL_EPOCH + pd.to_timedelta(serial.where((serial > 0) & (serial < 2_958_466)), unit="D")
    iso = pd.to_datetime(text.where(serial.isna()), errors="coerce", format="ISO8601")
    rest = text.where(serial.isna() & iso.isna())
    dayfirst = pd.to_datetime(rest, errors="coerce", format="%d/%m/%Y")
    return iso.fillna(dayfirst).fillna(from_serial).astype("datetime64[ns]")

"""Date cells -> datetimes: ISO text, Excel serial numbers (1900 date system), d/m/yyyy or m/d/yyyy text (``/``, ``.``
or ``-``), and Hijri (Umm al-Qura) dates in ASCII or Arabic-Indic digits, recognised by their year (1343-1499 AH).

The order of day and month is the source's declaration (``date_order: day_first | month_first``). Where none is
declared, a date that reads only one way (15/03/2024) is read that way, and one that reads both ways as different
days (03/04/2024) is *ambiguous*: a row failure naming both readings, never a guess.

Parsing works at microsecond resolution (years 1-9999); the warehouse's datetime64[ns] holds 1677-09-21 to
2262-04-11 only, so a readable date outside that range (an Excel serial of 150000, year 0001, an end date in 2300)
is reported as out of range, never cast (the cast would raise ``OutOfBoundsDatetime`` for the whole file).
"""

from __future__ import annotations

from datetime import date
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from hijridate import Hijri

from transforms.fiscal import HIJRI_YEARS
from transforms.text import as_text, ascii_digits, distinct, spread

EXCEL_EPOCH = pd.Timestamp("1899-12-30")
_YMD = r"^(?P<y>\d{4})[/\-.](?P<m>\d{1,2})[/\-.](?P<d>\d{1,2})\s*(?:هـ|ه|H|AH)?$"
_DMY = r"^(?P<d>\d{1,2})[/\-.](?P<m>\d{1,2})[/\-.](?P<y>\d{4})\s*(?:هـ|ه|H|AH)?$"


_NUMERIC = r"^(?P<a>\d{1,2})[/\-.](?P<b>\d{1,2})[/\-.](?P<y>\d{4})\s*(?:هـ|ه|H|AH)?$"  # a/b/yyyy, either order

DateOrder = Literal["day_first", "month_first"]
ORDER_TEXT = {"day_first": "day first (d/m/yyyy)", "month_first": "month first (m/d/yyyy)"}

STORABLE = (pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-10"))  # inside datetime64[ns], whole days
STORABLE_TEXT = "1677-2262"


class ParsedDates(NamedTuple):
    dates: pd.Series  # datetime64[ns]; NaT where blank, unreadable, ambiguous or out of range
    is_blank: pd.Series  # bool
    out_of_range: pd.Series  # bool: a readable date the warehouse cannot store
    ambiguous: pd.Series  # bool: reads as two different days and the source declares no order


def read_dates(cells: pd.Series, order: DateOrder | None = None) -> ParsedDates:
    """Date cells -> :class:`ParsedDates`; unreadable cells are NaT and neither blank, ambiguous nor out of range."""
    is_blank = as_text(cells).isna()
    codes, uniques = distinct(cells)  # once for both readings of the distinct values
    days, two_ways = _readings(uniques, order)
    wide = spread(pd.Series(days), codes, cells)
    outside = wide.notna() & ((wide < STORABLE[0]) | (wide > STORABLE[1]))
    ambiguous = pd.Series(np.append(two_ways, False)[codes], index=cells.index)
    return ParsedDates(
        wide.mask(outside).astype("datetime64[ns]"), is_blank.astype(bool), outside.astype(bool), ambiguous
    )


#: (order, cell text) -> (its day at microsecond resolution, whether it reads as two days): kept across files, whose
#: dates are mostly the same few hundred days; only from files with at most MEMO_VALUES distinct dates, and never
#: more than MEMO_LIMIT of them (a few MB), so a sheet of a million distinct dates costs no memory here
_READ: dict[tuple[str | None, str], tuple[np.datetime64, bool]] = {}
MEMO_VALUES, MEMO_LIMIT = 5_000, 20_000


def _readings(uniques: pd.Series, order: DateOrder | None) -> tuple[np.ndarray, np.ndarray]:
    """(days as datetime64[us], whether each reads as two different days) of distinct date cells: :func:`_parse` and
    :func:`_ambiguous` of those not read before (:data:`_READ`), the rest remembered."""
    if len(uniques) > MEMO_VALUES:
        return _read_now(uniques, order)
    texts = [str(u) for u in uniques]
    found = [_READ.get((order, t)) for t in texts]
    new = [i for i, f in enumerate(found) if f is None]
    if new:
        days, two_ways = _read_now(uniques.iloc[new].reset_index(drop=True), order)
        if len(_READ) + len(new) > MEMO_LIMIT:
            _READ.clear()
        for i, day, both in zip(new, days, two_ways, strict=True):
            found[i] = _READ[(order, texts[i])] = (day, bool(both))
    return (
        np.array([f[0] for f in found], dtype="datetime64[us]"),  # type: ignore[index]
        np.array([f[1] for f in found], dtype=bool),  # type: ignore[index]
    )


def _read_now(uniques: pd.Series, order: DateOrder | None) -> tuple[np.ndarray, np.ndarray]:
    days = _parse(uniques, order).astype("datetime64[us]").to_numpy(dtype="datetime64[us]")
    if order is not None or not len(uniques):
        return days, np.zeros(len(uniques), dtype=bool)
    return days, _ambiguous(uniques).to_numpy(dtype=bool)


def parse_dates(cells: pd.Series, order: DateOrder | None = None) -> tuple[pd.Series, pd.Series]:
    """Returns ``(dates, is_blank)``; unreadable, ambiguous and out-of-range cells are NaT and not blank."""
    parsed = read_dates(cells, order)
    return parsed.dates, parsed.is_blank


def both_readings(cells: pd.Series) -> pd.Series:
    """For ambiguous cells, the two days they could be: '3 April 2024 (day first) or 4 March 2024 (month first)'."""
    parts = ascii_digits(as_text(cells)).str.extract(_NUMERIC)
    a, b, y = (pd.to_numeric(parts[k], errors="coerce") for k in ("a", "b", "y"))

    hijri = (y >= HIJRI_YEARS[0]) & (y <= HIJRI_YEARS[1])

    def day(d: pd.Series, m: pd.Series) -> pd.Series:
        names = pd.Series(_MONTHS, index=range(1, 13))
        d_, m_, y_ = (v.astype("Int64").astype(str) for v in (d, m, y))
        gregorian = d_ + " " + m.map(names).astype(str) + " " + y_
        return gregorian.where(~hijri, "day " + d_ + " of month " + m_ + " of " + y_ + " AH")

    return (day(a, b) + " (day first) or " + day(b, a) + " (month first)").astype(object)


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _ambiguous(cells: pd.Series) -> pd.Series:
    """a/b/yyyy with both parts 1-12 and different: two different days (05/05/2024 is one day either way)."""
    parts = ascii_digits(as_text(cells)).str.extract(_NUMERIC)
    a, b = pd.to_numeric(parts["a"], errors="coerce"), pd.to_numeric(parts["b"], errors="coerce")
    return ((a >= 1) & (a <= 12) & (b >= 1) & (b <= 12) & (a != b)).fillna(False).astype(bool)


def _hijri(text: pd.Series, order: DateOrder | None = None) -> pd.Series:
    """Hijri y/m/d, or d/m/y and m/d/y as the order says (unambiguous ones without an order) -> Gregorian; NaT
    where not a Hijri date (or ambiguous)."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    maybe = text.str.contains(r"(?:^|\D)1[345]\d\d(?:\D|$)", regex=True).fillna(False).astype(bool)
    if not maybe.any():  # no year in the Hijri range: skip the per-value work
        return out
    text = text[maybe]
    numeric = text.str.extract(_DMY)  # d/m/y as written; swapped below when the order is month first
    if order == "month_first":
        numeric = numeric.rename(columns={"d": "m", "m": "d"})
    elif order is None:  # no order: only the parts that read one way (a part over 12 is the day)
        d, m = pd.to_numeric(numeric["d"], errors="coerce"), pd.to_numeric(numeric["m"], errors="coerce")
        swap = (m > 12) & (d <= 12)
        numeric.loc[swap, ["d", "m"]] = numeric.loc[swap, ["m", "d"]].to_numpy()
        numeric = numeric.where(~((d <= 12) & (m <= 12) & (d != m)))
    parts = text.str.extract(_YMD).combine_first(numeric)
    y, m, d = (pd.to_numeric(parts[k], errors="coerce").to_numpy(dtype="float64") for k in ("y", "m", "d"))
    with np.errstate(invalid="ignore"):
        at = np.flatnonzero((y >= HIJRI_YEARS[0]) & (y <= HIJRI_YEARS[1]) & (m >= 1) & (m <= 12) & (d >= 1))
    month = ((y[at] - HIJRI_YEARS[0]) * 12 + m[at] - 1).astype("int64")
    starts, lengths = _hijri_months()
    fits = d[at] <= lengths[month]  # a day past its month's end is no date (hijridate refuses it: ValueError)
    days = starts[month[fits]] + d[at][fits].astype("int64") - 1
    out.loc[parts.index[at[fits]]] = days.astype("datetime64[D]").astype("datetime64[us]")
    return out


_HIJRI_MONTHS: list[tuple[np.ndarray, np.ndarray]] = []


def _hijri_months() -> tuple[np.ndarray, np.ndarray]:
    """Per Umm al-Qura month of ``HIJRI_YEARS`` (number ``(year - first year) * 12 + month - 1``): its first day, as
    days since 1970-01-01, and its length in days, from hijridate's table (built once per process, 3 ms). A day of
    a month is then its first day plus the day - 1, for every date at once (hijridate's ``Hijri(y, m, d)`` per
    distinct date cost 0.15 ms each, 100 ms for a file of 700 dates); tests/unit/test_distinct_helpers.py compares
    the two over every year, month and day."""
    if not _HIJRI_MONTHS:  # two threads may both build it: the same table
        epoch = date(1970, 1, 1).toordinal()
        months = [Hijri(y, m, 1) for y in range(HIJRI_YEARS[0], HIJRI_YEARS[1] + 1) for m in range(1, 13)]
        starts = np.array([h.to_gregorian().toordinal() - epoch for h in months], dtype="int64")
        lengths = np.array([h.month_length() for h in months], dtype="int64")
        _HIJRI_MONTHS[:] = [(starts, lengths)]
    return _HIJRI_MONTHS[0]


def _parse(cells: pd.Series, order: DateOrder | None = None) -> pd.Series:
    text = ascii_digits(as_text(cells))
    serial = pd.to_numeric(text, errors="coerce")
    from_serial = EXCEL_EPOCH + pd.to_timedelta(serial.where((serial > 0) & (serial < 2_958_466)), unit="D")
    hijri = _hijri(text, order)
    rest = text.where(serial.isna() & hijri.isna())
    iso = pd.to_datetime(rest, errors="coerce", format="ISO8601").astype("datetime64[us]")
    numeric = rest.where(iso.isna()).str.replace(r"[.\-]", "/", regex=True)
    day_first = pd.to_datetime(numeric, errors="coerce", format="%d/%m/%Y").astype("datetime64[us]")
    month_first = pd.to_datetime(numeric, errors="coerce", format="%m/%d/%Y").astype("datetime64[us]")
    if order == "day_first":
        read = day_first
    elif order == "month_first":
        read = month_first
    else:  # the one reading there is, or both when they are the same day; two different days stay NaT
        one_way = day_first.isna() | month_first.isna() | (day_first == month_first)
        read = day_first.fillna(month_first).where(one_way)
    return hijri.fillna(iso).fillna(read).fillna(from_serial.astype("datetime64[us]"))

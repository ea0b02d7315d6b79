"""Case tables for the per-value normalisers: amounts, dates, fiscal years."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from transforms import dates, fiscal, numbers

AMOUNTS = [
    # cell, locale, expected value (None = not a number), blank?
    ("1,234.5", "en", 1234.5, False),
    ("1234", "en", 1234.0, False),
    ("(1,000)", "en", -1000.0, False),
    ("1000-", "en", -1000.0, False),
    ("-12.75", "en", -12.75, False),
    ("SAR 2,500", "en", 2500.0, False),
    ("$ 10", "en", 10.0, False),
    ("١٢٣٤٫٥", "en", 1234.5, False),  # Arabic-Indic digits, Arabic decimal separator
    ("١٬٢٣٤", "en", 1234.0, False),  # Arabic thousands separator
    ("1.234.567,89", "eu", 1234567.89, False),
    ("1 234,5", "eu", 1234.5, False),
    ("TBD", "en", None, False),
    ("n/a", "en", None, False),
    ("", "en", None, True),
    ("   ", "en", None, True),
    (None, "en", None, True),
]


@pytest.mark.parametrize("cell,locale,expected,blank", AMOUNTS)
def test_parse_amounts(cell, locale, expected, blank):
    values, is_blank = numbers.parse_amounts(pd.Series([cell], dtype=object), locale)
    if expected is None:
        assert math.isnan(values.iloc[0])
    else:
        assert values.iloc[0] == pytest.approx(expected)
    assert bool(is_blank.iloc[0]) is blank


FISCAL = [
    # label, start month, label rule, canonical fiscal year (end year) or None
    ("2024", 1, "end", 2024),
    ("FY2024", 1, "end", 2024),
    ("2024.0", 1, "end", 2024),
    ("FY2024", 10, "end", 2024),
    ("FY24", 10, "end", 2024),
    ("FY 2024", 10, "end", 2024),
    ("2023/24", 7, "end", 2024),
    ("2023-2024", 7, "end", 2024),
    ("2023/24", 1, "end", None),  # a calendar fiscal year has no two-year label
    ("2023/25", 7, "end", None),  # the years must be consecutive
    ("2024", 4, "start", 2025),  # SANG: "2024" is Apr 2024 - Mar 2025
    ("٢٠٢٤", 1, "end", 2024),
    ("next year", 1, "end", None),
    ("1850", 1, "end", None),
]


@pytest.mark.parametrize("label,start,rule,expected", FISCAL)
def test_parse_fiscal_year(label, start, rule, expected):
    fy = fiscal.parse_fiscal_year(pd.Series([label], dtype=object), start, rule)
    assert pd.isna(fy.iloc[0]) if expected is None else fy.iloc[0] == expected


@pytest.mark.parametrize(
    "fy,start,first,last",
    [
        (2024, 1, "2024-01-01", "2024-12-31"),
        (2024, 10, "2023-10-01", "2024-09-30"),
        (2024, 7, "2023-07-01", "2024-06-30"),
        (2025, 4, "2024-04-01", "2025-03-31"),
    ],
)
def test_fiscal_period(fy, start, first, last):
    s, e = fiscal.fiscal_period(pd.Series([fy], dtype="Int64"), start)
    assert (s.iloc[0], e.iloc[0]) == (pd.Timestamp(first), pd.Timestamp(last))


DATES = [
    ("2024-01-03 00:00:00", "2024-01-03", False),
    ("2024-02-29", "2024-02-29", False),
    ("45000", "2023-03-15", False),  # Excel serial date (1900 system)
    ("15/03/2023", "2023-03-15", False),
    ("not a date", None, False),
    ("", None, True),
]


@pytest.mark.parametrize("cell,expected,blank", DATES)
def test_parse_dates(cell, expected, blank):
    parsed, is_blank = dates.parse_dates(pd.Series([cell], dtype=object))
    assert pd.isna(parsed.iloc[0]) if expected is None else parsed.iloc[0] == pd.Timestamp(expected)
    assert bool(is_blank.iloc[0]) is blank


# cell -> (no order declared, day_first, month_first); "AMBIGUOUS" = NaT and flagged, never a guess
ORDERED = [
    ("15/03/2024", ("2024-03-15", "2024-03-15", None)),  # reads one way only: day 15
    ("03/15/2024", ("2024-03-15", None, "2024-03-15")),  # reads one way only: month 3, day 15
    ("03/04/2024", ("AMBIGUOUS", "2024-04-03", "2024-03-04")),  # two different days
    ("3.4.2024", ("AMBIGUOUS", "2024-04-03", "2024-03-04")),  # dots and single digits too
    ("12-11-2024", ("AMBIGUOUS", "2024-11-12", "2024-12-11")),
    ("05/05/2024", ("2024-05-05", "2024-05-05", "2024-05-05")),  # the same day either way
    ("2024-03-04", ("2024-03-04", "2024-03-04", "2024-03-04")),  # ISO is year-month-day whatever the order
    ("45000", ("2023-03-15", "2023-03-15", "2023-03-15")),  # an Excel serial has no order
    ("31/02/2024", (None, None, None)),  # no such day either way
    ("15/03/1445", ("2023-09-30", "2023-09-30", None)),  # Hijri day-first, one way only
    ("03/04/1445", ("AMBIGUOUS", "2023-10-18", "2023-09-19")),  # Hijri, two different days
]


@pytest.mark.parametrize("cell, expected", ORDERED)
@pytest.mark.parametrize("i, order", [(0, None), (1, "day_first"), (2, "month_first")])
def test_date_order_is_declared_or_the_date_fails(cell, expected, i, order):
    parsed = dates.read_dates(pd.Series([cell], dtype=object), order)
    want = expected[i]
    assert bool(parsed.ambiguous.iloc[0]) is (want == "AMBIGUOUS")
    if want in (None, "AMBIGUOUS"):
        assert pd.isna(parsed.dates.iloc[0])
    else:
        assert parsed.dates.iloc[0] == pd.Timestamp(want)


def test_an_ambiguous_date_names_both_readings():
    both = dates.both_readings(pd.Series(["03/04/2024", "03/04/1445"]))
    assert both.tolist() == [
        "3 April 2024 (day first) or 4 March 2024 (month first)",
        "day 3 of month 4 of 1445 AH (day first) or day 4 of month 3 of 1445 AH (month first)",
    ]

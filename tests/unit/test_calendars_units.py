"""Hijri calendars, Arabic-Indic digits, locale formats and units stated in headers: case tables."""

from __future__ import annotations

import pandas as pd
import pytest

from transforms import dates, fiscal, numbers

YEARS = [
    # label, start month, label rule, calendar -> fiscal_year, period start, period end
    ("1445", 1, "end", "hijri", 2024, "2023-07-19", "2024-07-06"),
    ("1445H", 1, "end", "gregorian", 2024, "2023-07-19", "2024-07-06"),  # an explicit H wins
    ("١٤٤٥هـ", 1, "end", "hijri", 2024, "2023-07-19", "2024-07-06"),
    ("1446 هـ", 1, "end", "hijri", 2025, "2024-07-07", "2025-06-25"),
    ("2024", 1, "end", "hijri", None, None, None),  # a Hijri agency does not write Gregorian years
    ("1600H", 1, "end", "gregorian", None, None, None),  # outside the Umm al-Qura tables
    ("FY2024", 10, "end", "gregorian", 2024, "2023-10-01", "2024-09-30"),
    ("2023/24", 7, "end", "gregorian", 2024, "2023-07-01", "2024-06-30"),
    ("2024", 4, "start", "gregorian", 2025, "2024-04-01", "2025-03-31"),
    (None, 1, "end", "gregorian", None, None, None),
]


@pytest.mark.parametrize("label,start,rule,calendar,fy,first,last", YEARS)
def test_resolve_fiscal_years(label, start, rule, calendar, fy, first, last):
    got = fiscal.resolve_fiscal_years(pd.Series([label, label], dtype=object), start, rule, calendar).iloc[1]
    if fy is None:
        assert pd.isna(got["fiscal_year"]) and pd.isna(got["period_start"]) and pd.isna(got["period_end"])
    else:
        assert (got["fiscal_year"], got["period_start"], got["period_end"]) == (
            fy,
            pd.Timestamp(first),
            pd.Timestamp(last),
        )


HIJRI_DATES = [
    ("1445/03/15", "2023-09-30"),
    ("١٤٤٥/٠٣/١٥", "2023-09-30"),  # Arabic-Indic digits
    ("15/03/1445", "2023-09-30"),
    ("1445-03-15 هـ", "2023-09-30"),
    ("1445/13/01", None),  # no 13th month
    ("2023-09-30", "2023-09-30"),  # Gregorian ISO still works
]


@pytest.mark.parametrize("cell,expected", HIJRI_DATES)
def test_hijri_dates(cell, expected):
    got = dates.parse_dates(pd.Series([cell]))[0].iloc[0]
    assert pd.isna(got) if expected is None else got == pd.Timestamp(expected)


UNITS = [
    ("Amount (SAR '000)", 1_000.0),
    ("Value (EUR 000s)", 1_000.0),
    ("Amount in thousands", 1_000.0),
    ("Amount (millions)", 1_000_000.0),
    ("USD mn", 1_000_000.0),
    ("المبلغ (بالألف)", 1_000.0),
    ("المبلغ بالمليون ريال", 1_000_000.0),
    ("Amount", 1.0),
    (None, 1.0),
    ("Montant (k)", 1_000.0),
]


@pytest.mark.parametrize("header,factor", UNITS)
def test_unit_from_header(header, factor):
    assert numbers.unit_from_header(header) == factor


@pytest.mark.parametrize(
    "cell,locale,expected",
    [
        ("1.234.567,89", "eu", 1234567.89),
        ("-1.000,5", "eu", -1000.5),
        ("(2.500)", "eu", -2500.0),
        ("١٬٢٣٤٬٥٦٧٫٨٩", "en", 1234567.89),
        ("٥٠٠", "en", 500.0),
        ("1 234 567,89", "eu", 1234567.89),
    ],
)
def test_locale_amounts(cell, locale, expected):
    assert numbers.parse_amounts(pd.Series([cell]), locale)[0].iloc[0] == pytest.approx(expected)

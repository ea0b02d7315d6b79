"""Constants and small helpers every SYNTHETIC sample generator shares: paths, notices, fixed times, the
planted defect kinds, number and digit styles, and the seeded random generators (the only randomness used)."""

from __future__ import annotations

import os
import random
import re
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES_DIR = ROOT / "sources"
REFERENCE_DIR = ROOT / "reference"


def reference_dir() -> Path:
    """The reference tables the samples are written for: DCF_REFERENCE (as for ``dcf run``), else reference/."""
    return Path(os.environ.get("DCF_REFERENCE") or REFERENCE_DIR)


NOTICE = "SYNTHETIC SAMPLE DATA - not real budgets"
NOTICE_AR = "بيانات اصطناعية تجريبية - ليست ميزانيات حقيقية"
FIXED_TIME = datetime(2026, 1, 1)
ZIP_TIME = (2026, 1, 1, 0, 0, 0)
MODIFIED_RE = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")
STATUS_DATE = date(2025, 1, 1)  # "today" for programme status, fixed for determinism
AGENCY_ORDER = ("MOD", "MOI", "GIP", "MOF", "SANG", "GAMI")
BAD_RATE = 0.02
#: rough units per US$, only to make amounts in local currency look plausible (the pipeline has its own rates)
SAMPLE_RATES = {"USD": 1.0, "SAR": 3.75, "AED": 3.6725, "EUR": 0.92, "GBP": 0.79, "TRY": 32.0, "PKR": 280.0}

BUDGET_DEFECTS = (
    "missing_amount",
    "text_amount",
    "unknown_currency",
    "unknown_category",
    "unknown_country",
    "negative_allocation",
    "date_out_of_range",
    "no_fx_rate",
)
PROGRAM_DEFECTS = ("duplicate_program_code",)
DEFECT_KINDS = BUDGET_DEFECTS + PROGRAM_DEFECTS
DEFECT_COLUMN = {
    "missing_amount": "amount",
    "text_amount": "amount",
    "unknown_currency": "currency",
    "unknown_category": "category",
    "unknown_country": "partner_country",
    "negative_allocation": "amount",
    "date_out_of_range": "transaction_date",
    "no_fx_rate": "currency",
    "duplicate_program_code": "program_code",
}
UNKNOWN_CURRENCY = "XYZ"
UNKNOWN_CATEGORY = "Space tourism"
UNKNOWN_COUNTRY = "Atlantis"
TEXT_AMOUNTS = ("TBD", "n/a", "pending")
#: text amounts for CSV files: "n/a", "NA", "NULL" ... would be read as empty cells by CSV readers
CSV_TEXT_AMOUNTS = ("n.v.", "k.A.", "TBD")
#: a currency that is ISO 4217 but has no rate from any provider (steward overrides, pegs, ECB)
NO_RATE_CURRENCY = "PKR"
OUT_OF_RANGE_DAYS = (1, 60)  # an out-of-range date lies this many days before the fiscal period
ARABIC_DIGITS = str.maketrans("0123456789,.", "٠١٢٣٤٥٦٧٨٩٬٫")  # digits, thousands and decimal marks

UNIT_DIVISOR = {"ones": 1, "thousands": 1_000, "millions": 1_000_000}
UNIT_DECIMALS = {"ones": 0, "thousands": 1, "millions": 2}
USD_LOG_RANGE = (4.5, 7.5)  # a budget line is worth 10**4.5 .. 10**7.5 USD

# ISO alpha-2 codes are not in reference/country_aliases.csv; GIP writes some partners that way.
ISO2 = {
    "SAU": "SA",
    "ARE": "AE",
    "BHR": "BH",
    "KWT": "KW",
    "OMN": "OM",
    "QAT": "QA",
    "JOR": "JO",
    "EGY": "EG",
    "TUR": "TR",
    "PAK": "PK",
    "MAR": "MA",
    "IDN": "ID",
    "MYS": "MY",
    "USA": "US",
    "GBR": "GB",
    "FRA": "FR",
    "ITA": "IT",
    "ESP": "ES",
    "DEU": "DE",
    "KOR": "KR",
}


def is_arabic(text: str) -> bool:
    return any("\u0600" <= ch <= "\u06ff" for ch in text)


def arabic_indic(text: str) -> str:
    return text.translate(ARABIC_DIGITS)


def european(value: float, decimals: int, thousands: bool = True) -> str:
    """1234.5 -> "1.234,50" (or "1234,50" without thousands separators)."""
    text = f"{value:,.{decimals}f}" if thousands else f"{value:.{decimals}f}"
    return text.translate(str.maketrans(",.", ".,"))


def seeded_rng(seed: int, *parts: object) -> random.Random:
    return random.Random("|".join(map(str, (seed, *parts))))

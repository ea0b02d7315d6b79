"""SYNTHETIC sample inbox generator - every file it writes is made-up data, not real budgets.

Writes agency budget files (workbooks, and GAMI's semicolon-separated CSV exports) and programme
lists that follow the agency source configs in ``sources/*.yaml`` (file-name patterns, sheet
names, header aliases, header position, totals label, units, default currency, fiscal calendar,
delimiter) and use the labels in ``reference/*.csv`` (category labels, country spellings, stage
labels, currencies).  Header labels are taken from the YAML ``columns:`` aliases so the generator
stays in sync with the configs; only the agency "habits" (title rows, value styles, currency mix,
number and date formats, ...) live in the small ``LAYOUTS`` table below.

Workbooks carry a SYNTHETIC notice in a title row or on a cover sheet.  A CSV file cannot carry
one without breaking its header on line 1, so the CSV budgets (GAMI) and programme CSVs are
marked SYNTHETIC only by this docstring and by ``MANIFEST.json`` (``"synthetic": true``).

Agency habits worth knowing:

* MOI keeps Hijri (Umm al-Qura) fiscal years: the fiscal-year cell is "١٤٤٥هـ" (Arabic-Indic
  digits), sometimes 1445 or "1445هـ"; its disbursement dates are Hijri "yyyy/mm/dd" text, mostly in
  Arabic-Indic digits, sometimes ASCII, sometimes blank; some amounts are Arabic-Indic text with
  Arabic separators ("١٬٢٣٤٬٥٦٧", "١٬٢٣٤٫٠٠").
* GAMI exports ";"-separated UTF-8 CSV with European number format ("1.234,56", "850,25"), amounts
  in thousands (the unit is in the amount header), ISO booking dates, and some lines in Pakistani
  rupees, a currency no FX provider has a rate for (the ``no_fx_rate`` defect).

Two entry points:

* :func:`generate_inbox` - the demo inbox: two budget files per agency plus one programmes
  file per agency that has a ``programs`` entry, with about 2 % deliberately bad rows (one defect
  each) recorded in ``MANIFEST.json``; beside them, when their source YAMLs are present, SIPRI's
  two workbooks (reference data), an arms transfer register and a multi-donor pledge tracker
  (``dcf/samples_records.py``, each with its planted problems and expected outcome).
* :func:`generate_corpus` - a benchmark corpus of budget workbooks only (no planted defects),
  written with openpyxl ``write_only`` mode; agencies whose budgets are CSV (GAMI) are left out,
  as the benchmark baselines read workbooks.

Output is deterministic: the same seed gives byte-identical files (fixed document properties and
fixed zip-entry timestamps; only seeded ``random.Random`` instances are used).

CLI: ``python -m dcf.samples --inbox DIR [--seed N] [--corpus-lines N --corpus-files K]``
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import json
import random
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

import yaml
from hijridate import Hijri
from openpyxl import Workbook

ROOT = Path(__file__).resolve().parents[1]
SOURCES_DIR = ROOT / "sources"
REFERENCE_DIR = ROOT / "reference"

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
_Date: TypeAlias = date  # for annotations inside LineMaker, whose method ``date`` hides the class there
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


# --------------------------------------------------------------------------- agency layouts


@dataclass(frozen=True)
class Layout:
    """Agency habits that the YAML configs do not describe."""

    budget_name: str  # format fields: y, start, end, end2
    fy_cell: str  # fiscal-year cell text (same fields); written as int when it is all digits
    title_rows: tuple[str, ...]  # format fields: name_en, name_ar, fy, unit, notice, notice_ar
    totals_text: str
    currency_weights: tuple[tuple[str | None, float], ...]  # None = blank cell (default currency)
    country_style: str  # en | ar | iso3 | codes
    label_script: str  # latin | arabic: which `*` category labels the agency uses
    star_labels: bool = True  # uses the `*` labels at all (MOF uses only its own codes)
    stage_style: str | None = None  # arabic | mixed_case | title (only if a stage column exists)
    stage_weights: tuple[tuple[str, float], ...] = (("allocated", 0.5), ("committed", 0.3), ("disbursed", 0.2))
    sheet_name: str = ""  # used when the YAML says sheet 0
    spacer_rows: int = 0  # blank rows between the titles and the header
    cover_sheet: bool = False
    notes_sheet: bool = False
    mid_blank_rows: int = 0  # blank rows scattered inside the data
    text_amount_rate: float = 0.0  # valid amounts written as text with thousands separators
    trailing_space_rate: float = 0.0  # country cells with a trailing space
    header_arabic: bool = False  # prefer an Arabic alias for headers
    years: tuple[int, ...] = (2024, 2025)  # Hijri years when the agency's fiscal_calendar is hijri
    lines: tuple[int, int] = (120, 300)  # lines per budget file in the demo inbox
    fy_variants: tuple[tuple[str, float], ...] = ()  # per-line fiscal-year cells; () = fy_cell
    amount_style: str = "number"  # number | eu_text (European "1.234,56", always text)
    decimals: int | None = None  # amount decimals; None = by unit (ones 0, thousands 1, millions 2)
    arabic_amount_rate: float = 0.0  # valid amounts written as Arabic-Indic text
    eu_plain_rate: float = 0.0  # European amounts without thousands separators ("850,25")
    text_amounts: tuple[str, ...] = TEXT_AMOUNTS  # what a text_amount defect writes
    date_style: str = "excel"  # excel (date cells) | iso ("2024-03-15" text) | hijri ("١٤٤٥/٠٣/١٥")
    date_blank_rate: float = 0.0  # lines without a date (not a defect)
    ascii_date_rate: float = 0.0  # hijri dates in ASCII digits instead of Arabic-Indic
    no_rate_currency: str | None = None  # plants no_fx_rate defects in this currency


LAYOUTS: dict[str, Layout] = {
    "MOD": Layout(
        budget_name="MOD_budget_FY{y}.xlsx",
        fy_cell="{y}",
        title_rows=(
            "{name_en} - Defense Cooperation Budget",
            "Fiscal Year {fy} - amounts in thousands of SAR",
            "{notice}",
        ),
        spacer_rows=1,
        cover_sheet=True,
        notes_sheet=True,
        totals_text="Total",
        currency_weights=((None, 0.6), ("SAR", 0.3), ("USD", 0.1)),
        country_style="en",
        label_script="latin",
        mid_blank_rows=2,
        text_amount_rate=0.05,
    ),
    "MOI": Layout(
        budget_name="MOI_budget_{y}.xlsx",
        fy_cell="{y_ar}هـ",
        fy_variants=(("{y_ar}هـ", 0.7), ("{y}", 0.15), ("{y}هـ", 0.15)),
        title_rows=("{name_ar} - ميزانية التعاون الدفاعي للسنة المالية {fy}", "{notice} / {notice_ar}"),
        totals_text="المجموع",
        currency_weights=(("SAR", 0.8), ("AED", 0.2)),
        country_style="ar",
        label_script="arabic",
        stage_style="arabic",
        header_arabic=True,
        years=(1445, 1446),
        arabic_amount_rate=0.15,
        date_style="hijri",
        date_blank_rate=0.12,
        ascii_date_rate=0.2,
    ),
    "GIP": Layout(
        budget_name="GIP_budget_{start}-{end2:02d}.xlsx",
        fy_cell="{start}/{end2:02d}",
        sheet_name="FY{start}-{end2:02d}",
        title_rows=("{name_en} - Cooperation Budget, Financial Year {fy}", "{notice}"),
        totals_text="Total",
        currency_weights=(("USD", 0.6), ("GBP", 0.25), ("EUR", 0.15)),
        country_style="codes",
        label_script="latin",
    ),
    "MOF": Layout(
        budget_name="MOF_budget_FY{y}.xlsx",
        fy_cell="FY{y}",
        title_rows=("{name_en} - Defense Cooperation Funding Lines FY{y} (amounts in {unit})", "{notice}"),
        totals_text="Total",
        currency_weights=(("USD", 0.7), ("EUR", 0.2), ("TRY", 0.1)),
        country_style="iso3",
        label_script="latin",
        star_labels=False,
        stage_style="mixed_case",
    ),
    "SANG": Layout(
        budget_name="SANG_budget_{y}.xlsx",
        fy_cell="{y}",
        title_rows=("{name_en} - Cooperation Budget {fy}", "{notice}"),
        totals_text="Total",
        currency_weights=(("SAR", 0.7), ("GBP", 0.2), ("TRY", 0.1)),
        country_style="en",
        label_script="latin",
        stage_style="title",
        stage_weights=(("allocated", 0.7), ("disbursed", 0.3)),
        trailing_space_rate=0.08,
    ),
    "GAMI": Layout(
        budget_name="GAMI_budget_{y}.csv",
        fy_cell="{y}",
        title_rows=(),
        totals_text="Total",
        currency_weights=(("EUR", 0.75), ("SAR", 0.12), (None, 0.13)),
        country_style="en",
        label_script="latin",
        lines=(150, 300),
        amount_style="eu_text",
        decimals=2,
        eu_plain_rate=0.3,
        text_amounts=CSV_TEXT_AMOUNTS,
        date_style="iso",
        no_rate_currency=NO_RATE_CURRENCY,
    ),
}

NAME_WORDS_EN = (
    (
        "Desert",
        "Falcon",
        "Gulf",
        "Northern",
        "Coastal",
        "Summit",
        "Shield",
        "Horizon",
        "Crescent",
        "Sentinel",
        "Eagle",
        "Oasis",
        "Anchor",
        "Bridge",
        "Pioneer",
    ),
    (
        "Partnership",
        "Initiative",
        "Programme",
        "Cooperation",
        "Exchange",
        "Support Package",
        "Capability Project",
        "Framework",
    ),
)
NAME_WORDS_AR = (
    ("الصقر", "الدرع", "الخليج", "الأفق", "الهلال", "الحارس", "النسر", "الواحة", "الجسر", "الرائد"),
    ("للتعاون", "للشراكة", "للتدريب", "للدعم", "للتبادل", "للتطوير"),
)


# --------------------------------------------------------------------------- reference + config


def _is_arabic(text: str) -> bool:
    return any("\u0600" <= ch <= "\u06ff" for ch in text)


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(REFERENCE_DIR / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass(frozen=True)
class Reference:
    category_rows: tuple[tuple[str, str, str], ...]  # (agency, label, code)
    alias_rows: tuple[tuple[str, str, str], ...]  # (alias, iso3, note)
    stage_rows: tuple[tuple[str, str], ...]  # (label, stage)
    fx: dict[str, float]

    @classmethod
    def load(cls) -> Reference:
        return cls(
            category_rows=tuple(
                (r["agency"], r["label"], r["category_code"]) for r in _read_csv("category_mappings.csv")
            ),
            alias_rows=tuple((r["alias"], r["iso3"], r["note"]) for r in _read_csv("country_aliases.csv")),
            stage_rows=tuple((r["label"], r["stage"]) for r in _read_csv("stage_labels.csv")),
            fx=dict(SAMPLE_RATES),
        )

    def rate(self, currency: str, year: int) -> float:
        """Rough units per US$ to make plausible local amounts (not the pipeline's rates)."""
        return self.fx[currency]


def _category_labels(ref: Reference, agency: str, layout: Layout) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {}
    for owner, label, code in ref.category_rows:
        star_ok = owner == "*" and layout.star_labels and _is_arabic(label) == (layout.label_script == "arabic")
        if owner == agency or star_ok:
            labels.setdefault(code, []).append(label)
    return labels


def _country_forms(ref: Reference, style: str) -> dict[str, list[str]]:
    forms: dict[str, list[str]] = {}
    for alias, iso3, note in ref.alias_rows:
        # partners: current countries in their usual spellings, not reference publishers' names (SIPRI's, a
        # register's accented ones: note "... (reference data)")
        if note == "former state" or note.startswith("SIPRI name") or note.endswith("(reference data)"):
            continue
        if (style == "ar" and _is_arabic(alias)) or (style == "en" and not _is_arabic(alias)):
            forms.setdefault(iso3, []).append(alias)
        elif style == "codes" and not _is_arabic(alias) and not note and iso3 not in forms:
            forms[iso3] = [ISO2[iso3], iso3, alias]
        elif style == "iso3":
            forms[iso3] = [iso3]
    return forms


def _stage_labels(ref: Reference, style: str | None) -> dict[str, list[str]]:
    if style is None:
        return {}
    if style == "arabic":
        pairs = [(lab, st) for lab, st in ref.stage_rows if _is_arabic(lab)]
    else:
        pairs = [(lab, st) for lab, st in ref.stage_rows if lab == st]
    case_forms: dict[str, tuple[Callable[[str], str], ...]] = {
        "mixed_case": (str.lower, str.title, str.upper),
        "title": (str.title,),
        "arabic": (str,),
    }
    cases = case_forms[style]
    out: dict[str, list[str]] = {}
    for label, stage in pairs:
        out.setdefault(stage, []).extend(case(label) for case in cases)
    return out


def _arabic_indic(text: str) -> str:
    return text.translate(ARABIC_DIGITS)


def _european(value: float, decimals: int, thousands: bool = True) -> str:
    """1234.5 -> "1.234,50" (or "1234,50" without thousands separators)."""
    text = f"{value:,.{decimals}f}" if thousands else f"{value:.{decimals}f}"
    return text.translate(str.maketrans(",.", ".,"))


def _unit_from_label(label: str) -> str:
    """The unit an amount header states, for sources whose YAML says ``unit: from_header``."""
    text = label.casefold()
    if "million" in text:
        return "millions"
    return "thousands" if "'000" in text or "thousand" in text else "ones"


def _header_label(aliases: list[str], prefer_arabic: bool) -> str:
    if prefer_arabic:
        arabic = [a for a in aliases if _is_arabic(a)]
        if arabic:
            return arabic[0]
    return aliases[0]


def _fiscal_period(year: int, start_month: int, label: str, calendar: str = "gregorian") -> tuple[date, date]:
    if calendar == "hijri":  # 1 Muharram .. last day of Dhu al-Hijjah (Umm al-Qura)
        return (Hijri(year, 1, 1).to_gregorian(), Hijri(year + 1, 1, 1).to_gregorian() - timedelta(days=1))
    if start_month == 1:
        return date(year, 1, 1), date(year, 12, 31)
    start_year = year - 1 if label == "end" else year
    start = date(start_year, start_month, 1)
    return start, date(start_year + 1, start_month, 1) - timedelta(days=1)


@dataclass
class Agency:
    """One agency: its YAML config, its layout habits and its rendered reference values."""

    code: str
    cfg: dict
    layout: Layout
    budget: dict
    programs_cfg: dict | None
    categories: dict[str, list[str]]
    countries: dict[str, list[str]]
    stages: dict[str, list[str]]
    headers: list[tuple[str, str]] = field(default_factory=list)  # (field, header label)

    @property
    def fields(self) -> list[str]:
        return [f for f, _ in self.headers]

    def headers_for(self, file_cfg: dict) -> list[tuple[str, str]]:
        prefer = self.layout.header_arabic
        return [(f, _header_label(a, prefer)) for f, a in file_cfg["columns"].items()]

    @property
    def hijri(self) -> bool:
        return self.cfg.get("fiscal_calendar", "gregorian") == "hijri"

    @property
    def is_csv(self) -> bool:
        return self.budget["pattern"].lower().endswith(".csv")

    @property
    def unit(self) -> str:
        unit = self.budget["unit"]
        return _unit_from_label(dict(self.headers)["amount"]) if unit == "from_header" else unit

    def period(self, year: int) -> tuple[date, date]:
        return _fiscal_period(
            year,
            self.cfg["fiscal_year_start_month"],
            self.cfg.get("fiscal_year_label", "end"),
            self.cfg.get("fiscal_calendar", "gregorian"),
        )

    def fy_fields(self, year: int) -> dict:
        if self.hijri:  # file names and labels use the Hijri year itself
            return {"y": year, "y_ar": _arabic_indic(str(year)), "start": year, "end": year, "end2": year % 100}
        start, end = self.period(year)
        return {
            "y": year,
            "y_ar": _arabic_indic(str(year)),
            "start": start.year,
            "end": end.year,
            "end2": end.year % 100,
        }

    def fy_value(self, year: int, template: str | None = None) -> int | str:
        text = (template or self.layout.fy_cell).format(**self.fy_fields(year))
        return int(text) if text.isascii() and text.isdigit() else text

    def budget_name(self, year: int) -> str:
        name = self.layout.budget_name.format(**self.fy_fields(year))
        if not fnmatch.fnmatchcase(name, self.budget["pattern"]):
            raise ValueError(f"{name} does not match {self.budget['pattern']}")
        return name

    def sheet_name(self, year: int) -> str:
        sheet = self.budget.get("sheet", 0)
        return self.layout.sheet_name.format(**self.fy_fields(year)) if sheet == 0 else sheet

    def title_rows(self, year: int) -> list[str]:
        values = dict(
            self.fy_fields(year),
            name_en=self.cfg["name_en"],
            unit=self.unit,
            name_ar=self.cfg["name_ar"],
            fy=self.fy_value(year),
            notice=NOTICE,
            notice_ar=NOTICE_AR,
        )
        return [t.format(**values) for t in self.layout.title_rows]

    def header_row(self) -> int:
        row = len(self.layout.title_rows) + self.layout.spacer_rows + 1
        header = self.budget["header"]
        if header.get("row", row) != row or row > header.get("max_scan_rows", row):
            raise ValueError(f"{self.code}: header row {row} disagrees with {header}")
        return row

    def defect_kinds(self) -> list[str]:
        kinds = ["missing_amount", "text_amount", "unknown_currency", "unknown_category", "unknown_country"]
        if "stage" in self.fields or self.budget.get("default_stage") == "allocated":
            kinds.append("negative_allocation")
        if "transaction_date" in self.fields:
            kinds.append("date_out_of_range")
        kinds.extend(self.required_defects())
        return kinds

    def required_defects(self) -> list[str]:
        """Defect kinds every budget file of this agency carries at least once."""
        return ["no_fx_rate"] if self.layout.no_rate_currency else []


def load_agencies(ref: Reference | None = None) -> dict[str, Agency]:
    ref = ref or Reference.load()
    agencies = {}
    for path in sorted(SOURCES_DIR.glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        code = cfg["agency"]
        if code not in LAYOUTS:  # a reference source (e.g. SIPRI), written by write_milex
            continue
        layout = LAYOUTS[code]
        files = {f["kind"]: f for f in cfg["files"]}
        agency = Agency(
            code=code,
            cfg=cfg,
            layout=layout,
            budget=files["budget"],
            programs_cfg=files.get("programs"),
            categories=_category_labels(ref, code, layout),
            countries=_country_forms(ref, layout.country_style),
            stages=_stage_labels(ref, layout.stage_style),
        )
        agency.headers = agency.headers_for(agency.budget)
        if not re.match(agency.budget["totals_label"], layout.totals_text, re.IGNORECASE):
            raise ValueError(f"{code}: totals text does not match {agency.budget['totals_label']}")
        agencies[code] = agency
    return {c: agencies[c] for c in AGENCY_ORDER if c in agencies}


# --------------------------------------------------------------------------- programmes


@dataclass(frozen=True)
class Program:
    code: str
    name_en: str
    name_ar: str
    category: str  # canonical category code
    partners: tuple[str, ...]  # ISO3
    start: date
    end: date

    @property
    def status(self) -> str:
        if self.start > STATUS_DATE:
            return "Planned"
        return "Completed" if self.end < STATUS_DATE else "Active"


def _program_name(rng: random.Random, words: tuple[tuple[str, ...], ...], used: set[str]) -> str:
    for _ in range(50):
        name = " ".join(rng.choice(group) for group in words)
        if name not in used:
            break
    used.add(name)
    return name


def make_programs(agency: Agency, rng: random.Random) -> list[Program]:
    isos = sorted(agency.countries)
    codes = sorted(agency.categories)
    used_en: set[str] = set()
    used_ar: set[str] = set()
    programs = []
    for i in range(1, rng.randint(30, 60) + 1):
        start = date(rng.randint(2019, 2025), rng.randint(1, 12), 1)
        programs.append(
            Program(
                code=f"{agency.code}-P{i:03d}",
                name_en=_program_name(rng, NAME_WORDS_EN, used_en),
                name_ar="برنامج " + _program_name(rng, NAME_WORDS_AR, used_ar),
                category=rng.choice(codes),
                partners=tuple(sorted(rng.sample(isos, rng.randint(1, 4)))),
                start=start,
                end=start.replace(year=start.year + rng.randint(1, 5)) - timedelta(days=1),
            )
        )
    return programs


def _program_values(agency: Agency, prog: Program, rng: random.Random, *, csv_dates: bool) -> dict:
    partners = "; ".join(rng.choice(agency.countries[iso]) for iso in prog.partners)
    as_date = (lambda d: d.isoformat()) if csv_dates else (lambda d: d)
    return {
        "program_code": prog.code,
        "name_en": prog.name_en,
        "name_ar": prog.name_ar,
        "partner_countries": partners,
        "category": rng.choice(agency.categories[prog.category]),
        "start_date": as_date(prog.start),
        "end_date": as_date(prog.end),
        "status": prog.status,
    }


def _program_records(
    agency: Agency, programs: list[Program], rng: random.Random, csv_dates: bool
) -> tuple[list[dict], int]:
    """Programme rows plus one duplicate-code row; returns (rows, index of the duplicate)."""
    rows = [_program_values(agency, p, rng, csv_dates=csv_dates) for p in programs]
    original = rng.randrange(len(rows) // 2)
    dup_at = rng.randrange(original + 1, len(rows) + 1)
    twin = dict(
        rows[original], name_en=rows[original]["name_en"] + " (revised)", name_ar=rows[original]["name_ar"] + " (معدل)"
    )
    rows.insert(dup_at, twin)
    return rows, dup_at


# --------------------------------------------------------------------------- budget lines


class LineMaker:
    """Draws budget lines for one agency and fiscal year (a Hijri year for a Hijri agency)."""

    def __init__(self, agency: Agency, programs: list[Program], year: int, ref: Reference, rng: random.Random):
        self.agency, self.programs, self.year, self.rng = agency, programs, year, rng
        self.layout = layout = agency.layout
        unit = agency.unit
        self.decimals = UNIT_DECIMALS[unit] if layout.decimals is None else layout.decimals
        default = agency.budget["default_currency"]
        self.scale = {c: ref.rate(c or default, year) / UNIT_DIVISOR[unit] * 10**self.decimals for c in (*ref.fx, None)}
        self.currencies = [c for c, _ in layout.currency_weights]
        self.currency_w = [w for _, w in layout.currency_weights]
        self.stage_names = [s for s, _ in layout.stage_weights]
        self.stage_w = [w for _, w in layout.stage_weights]
        self.period = agency.period(year)
        self.period_days = (self.period[1] - self.period[0]).days
        self.fy = agency.fy_value(year)
        self.fy_cells = [agency.fy_value(year, t) for t, _ in layout.fy_variants]
        self.fy_w = [w for _, w in layout.fy_variants]
        self.fields = set(agency.fields)

    def units(self, currency: str | None) -> int:
        usd = 10 ** self.rng.uniform(*USD_LOG_RANGE)
        return max(1, round(usd * self.scale[currency]))

    def amount_cell(self, units: int) -> float | int:
        """The numeric amount (file units) of ``units`` (file units x 10**decimals)."""
        return units / 10**self.decimals if self.decimals else units

    def plain_amount(self, units: int) -> float | int | str:
        """The amount as the agency writes it at its plainest (a number, or European text)."""
        if self.layout.amount_style == "eu_text":
            return _european(self.amount_cell(units), self.decimals)
        return self.amount_cell(units)

    def amount(self, units: int) -> float | int | str:
        """A valid amount cell in one of the agency's habitual styles."""
        rng, layout, value = self.rng, self.layout, self.amount_cell(units)
        if layout.amount_style == "eu_text":
            return _european(value, self.decimals, thousands=rng.random() >= layout.eu_plain_rate)
        if rng.random() < layout.text_amount_rate:
            return f"{value:,.{self.decimals}f}"
        if rng.random() < layout.arabic_amount_rate:
            text = f"{value:,.{self.decimals}f}"
            if rng.random() < 0.25:
                text = text.replace(",", "")  # "٥٠٠٠٠٠"
            if not self.decimals and rng.random() < 0.3:
                text += ".00"  # "١٬٢٣٤٫٠٠"
            return _arabic_indic(text)
        return value

    def fiscal_year(self) -> int | str:
        if not self.fy_cells:
            return self.fy
        return self.rng.choices(self.fy_cells, self.fy_w)[0]

    def _render_date(self, d: date) -> date | str:
        return d.isoformat() if self.layout.date_style == "iso" else d

    def _hijri_text(self, year: int, month: int, day: int) -> str:
        text = f"{year}/{month:02d}/{day:02d}"
        return text if self.rng.random() < self.layout.ascii_date_rate else _arabic_indic(text)

    def date(self) -> date | str | None:
        """A transaction date inside the fiscal period, or None (left blank)."""
        rng = self.rng
        if rng.random() < self.layout.date_blank_rate:
            return None
        if self.layout.date_style == "hijri":  # day 1-28 of any month is a valid Umm al-Qura date
            return self._hijri_text(self.year, rng.randint(1, 12), rng.randint(1, 28))
        return self._render_date(self.period[0] + timedelta(rng.randint(0, self.period_days)))

    def date_outside(self) -> _Date | str:
        """A date shortly before the fiscal period (booked in the wrong year's file)."""
        if self.layout.date_style == "hijri":
            return self._hijri_text(self.year - 1, 12, self.rng.randint(1, 28))
        return self._render_date(self.period[0] - timedelta(self.rng.randint(*OUT_OF_RANGE_DAYS)))

    def country(self, iso: str) -> str:
        text = self.rng.choice(self.agency.countries[iso])
        if self.rng.random() < self.layout.trailing_space_rate:
            text += " "
        return text

    def line(self) -> tuple[dict, int]:
        """One clean line (field -> cell value) and its amount in file units x 10**decimals."""
        rng = self.rng
        prog = rng.choice(self.programs)
        currency = rng.choices(self.currencies, self.currency_w)[0]
        units = self.units(currency)
        row: dict[str, object] = {
            "program_code": prog.code,
            "program_name": prog.name_en,
            "partner_country": self.country(rng.choice(prog.partners)),
            "category": rng.choice(self.agency.categories[prog.category]),
            "fiscal_year": self.fiscal_year(),
            "amount": self.amount(units),
            "currency": currency,
        }
        if self.layout.header_arabic:  # MOI's "اسم البرنامج" is the Arabic name
            row["program_name"] = prog.name_ar
        if "stage" in self.fields:
            stage = rng.choices(self.stage_names, self.stage_w)[0]
            row["stage"] = rng.choice(self.agency.stages[stage])
        if "transaction_date" in self.fields:
            row["transaction_date"] = self.date()
        return row, units

    def spoil(self, row: dict, units: int, defect: str) -> int | None:
        """Give a clean line exactly one defect; returns the numeric units left in the cell."""
        if defect == "missing_amount":
            row["amount"] = None
            return None
        if defect == "text_amount":
            row["amount"] = self.rng.choice(self.layout.text_amounts)
            return None
        if defect == "negative_allocation":
            units = -units
            if "stage" in row:
                row["stage"] = self.agency.stages["allocated"][0]
        elif defect == "date_out_of_range":
            row["transaction_date"] = self.date_outside()
        elif defect == "no_fx_rate":
            row["currency"] = self.layout.no_rate_currency
            units = self.units(row["currency"])
        else:
            field_, value = {
                "unknown_currency": ("currency", UNKNOWN_CURRENCY),
                "unknown_category": ("category", UNKNOWN_CATEGORY),
                "unknown_country": ("partner_country", UNKNOWN_COUNTRY),
            }[defect]
            row[field_] = value
        row["amount"] = self.plain_amount(units)  # keep the amount plain on a bad row
        return units


def _plan_defects(slots: list[tuple[int, list[str], list[str]]], rng: random.Random) -> list[list[str]]:
    """Assign defect kinds to files: each file's required kinds first, then every kind at least
    once where possible, the rest at random.  A slot is (number of defects, kinds, required)."""
    plan: list[list[str]] = [list(required[:n]) for n, _, required in slots]
    by_rarity = sorted(BUDGET_DEFECTS, key=lambda k: sum(k in kinds for _, kinds, _ in slots))
    for kind in by_rarity:
        if any(kind in p for p in plan):
            continue
        free = [i for i, (n, kinds, _) in enumerate(slots) if kind in kinds and len(plan[i]) < n]
        if free:
            plan[rng.choice(free)].append(kind)
    for i, (n, kinds, _) in enumerate(slots):
        plan[i].extend(rng.choice(kinds) for _ in range(n - len(plan[i])))
    return plan


# --------------------------------------------------------------------------- writing


def _deterministic_zip(data: bytes, path: Path) -> None:
    """Rewrite an xlsx so that every zip entry has the same fixed timestamp.

    openpyxl stamps dcterms:modified with the current time on save whatever the workbook
    properties say, so core.xml is patched here too.
    """
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            payload = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                payload = MODIFIED_RE.sub(rb"\g<1>" + stamp + rb"\g<2>", payload)
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, payload)


def save_workbook(wb: Workbook, path: Path) -> None:
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.creator = "dcf.samples (SYNTHETIC)"
    wb.properties.title = NOTICE
    buf = io.BytesIO()
    wb.save(buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    _deterministic_zip(buf.getvalue(), path)


def _text_sheet(wb: Workbook, title: str, lines: list[str]) -> None:
    ws = wb.create_sheet(title)
    for line in lines:
        ws.append([line])


def _file_entry(path: str, agency: str, kind: str, sheet: str | None, header_row: int) -> dict:
    return {
        "path": path,
        "agency": agency,
        "kind": kind,
        "sheet": sheet,
        "header_row": header_row,
        "data_rows": 0,
        "lines": 0,
        "blank_rows": 0,
        "totals_rows": 0,
        "bad_rows": [],
        "total_amount": None,
    }


def _budget_rows(
    maker: LineMaker, n_lines: int, defects: dict[int, str], blanks: set[int]
) -> Iterator[tuple[dict | None, int | None, str | None]]:
    """Yield (row, numeric units, defect) per data line, and (None, None, None) for blank rows."""
    units: int | None
    for i in range(n_lines):
        if i in blanks:
            yield None, None, None
        row, units = maker.line()
        defect = defects.get(i)
        if defect:
            units = maker.spoil(row, units, defect)
        yield row, units, defect


def _budget_preamble(wb: Workbook, agency: Agency, year: int):
    """Optional cover sheet, then the budget sheet with its title rows and header row."""
    if agency.layout.cover_sheet:
        _text_sheet(
            wb,
            "Cover",
            [
                NOTICE,
                agency.cfg["name_en"],
                f"Fiscal Year {year}",
                "Generated by dcf.samples for testing the pipeline.",
            ],
        )
    ws = wb.create_sheet(agency.sheet_name(year))
    for title in agency.title_rows(year):
        ws.append([title])
    for _ in range(agency.layout.spacer_rows):
        ws.append([])
    ws.append([label for _, label in agency.headers])
    return ws


def _budget_body(ws, agency: Agency, maker: LineMaker, n_lines: int, defects: dict[int, str], entry: dict) -> int:
    """Write the data lines and blank rows, filling the counts in entry; returns total units."""
    k_blank = max(0, min(agency.layout.mid_blank_rows, n_lines - 1))
    blanks = set(maker.rng.sample(range(1, n_lines), k_blank))
    total, excel_row = 0, entry["header_row"]
    for row, units, defect in _budget_rows(maker, n_lines, defects, blanks):
        excel_row += 1
        if row is None:
            ws.append([])
            entry["blank_rows"] += 1
            continue
        ws.append([row.get(f) for f in agency.fields])
        entry["lines"] += 1
        total += units or 0
        if defect:
            entry["bad_rows"].append({"excel_row": excel_row, "defect": defect, "column": DEFECT_COLUMN[defect]})
    return total


def _budget_totals(ws, agency: Agency, maker: LineMaker, total: int, entry: dict) -> None:
    totals: list[object] = [None] * len(agency.fields)
    totals[0] = agency.layout.totals_text
    totals[agency.fields.index("amount")] = maker.plain_amount(total)
    ws.append(totals)
    entry.update(
        total_amount=maker.amount_cell(total), totals_rows=1, data_rows=entry["lines"] + entry["blank_rows"] + 1
    )


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)


def _write_budget_csv(
    inbox: Path, rel: str, agency: Agency, maker: LineMaker, n_lines: int, defects: dict[int, str], entry: dict
) -> dict:
    """A CSV export: header on line 1 (no title rows, no notice), one line per row, so the
    manifest's excel_row is the line number.  A blank row is written as empty fields (an empty
    line would be skipped by CSV readers and shift the line numbers)."""
    table: list[list] = [[label for _, label in agency.headers]]
    total = _budget_body(table, agency, maker, n_lines, defects, entry)
    _budget_totals(table, agency, maker, total, entry)
    width = len(agency.fields)
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=agency.budget.get("encoding", "utf-8"), newline="") as fh:
        writer = csv.writer(fh, delimiter=agency.budget.get("delimiter", ","), lineterminator="\n")
        writer.writerows([_csv_cell(c) for c in row] or [""] * width for row in table)
    return entry


def write_budget(
    inbox: Path, agency: Agency, maker: LineMaker, n_lines: int, defects: dict[int, str], name: str | None = None
) -> dict:
    """Write one budget file (workbook, or CSV if the agency's pattern says so); returns its
    manifest entry."""
    year = maker.year
    rel = f"{agency.cfg['inbox_dir']}/{name or agency.budget_name(year)}"
    sheet = None if agency.is_csv else agency.sheet_name(year)
    entry = _file_entry(rel, agency.code, "budget", sheet, agency.header_row())
    if agency.is_csv:
        return _write_budget_csv(inbox, rel, agency, maker, n_lines, defects, entry)
    wb = Workbook(write_only=True)
    ws = _budget_preamble(wb, agency, year)
    total = _budget_body(ws, agency, maker, n_lines, defects, entry)
    _budget_totals(ws, agency, maker, total, entry)
    if agency.layout.notes_sheet:
        _text_sheet(
            wb,
            "Notes",
            [
                NOTICE,
                f"Amounts are in {agency.unit} of the currency in the Currency "
                f"column; a blank currency means {agency.budget['default_currency']}.",
                "Figures are provisional and subject to revision.",
            ],
        )
    save_workbook(wb, inbox / rel)
    return entry


def write_programs(inbox: Path, agency: Agency, programs: list[Program], rng: random.Random) -> dict:
    cfg = agency.programs_cfg
    assert cfg is not None, "write_programs is only called for agencies with a programs file"
    name = cfg["pattern"].replace("*", "")
    rel = f"{agency.cfg['inbox_dir']}/{name}"
    headers = agency.headers_for(cfg)
    is_csv = name.endswith(".csv")
    rows, dup_at = _program_records(agency, programs, rng, csv_dates=is_csv)
    table = [[label for _, label in headers]] + [[r[f] for f, _ in headers] for r in rows]
    header_row = 1 if is_csv else 2
    entry = _file_entry(rel, agency.code, "programs", None if is_csv else cfg["sheet"], header_row)
    entry.update(
        data_rows=len(rows),
        lines=len(rows),
        bad_rows=[{"excel_row": header_row + 1 + dup_at, "defect": "duplicate_program_code", "column": "program_code"}],
    )
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_csv:
        with open(path, "w", encoding=cfg.get("encoding", "utf-8"), newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(table)
    else:
        wb = Workbook(write_only=True)
        ws = wb.create_sheet(cfg["sheet"])
        for row in [[NOTICE]] + table:
            ws.append(row)
        save_workbook(wb, path)
    return entry


def _manifest(seed: int, entries: list[dict], inbox: Path) -> dict:
    manifest = {"synthetic": True, "notice": NOTICE, "seed": seed, "files": entries}
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "MANIFEST.json").write_text(
        json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random("|".join(map(str, (seed, *parts))))


# --------------------------------------------------------------------------- reference: military expenditure

#: SIPRI's regions, sub-regions and (a few) countries, in its spelling; the figures written for them are invented
MILEX_LAYOUT = (
    ("Africa", "North Africa", ("Algeria", "Morocco")),
    ("Africa", "sub-Saharan Africa", ("Nigeria", "South Sudan")),
    ("Americas", "North America", ("United States of America",)),
    ("Asia & Oceania", "South Asia", ("Pakistan",)),
    ("Asia & Oceania", "South East Asia", ("Indonesia", "Malaysia")),
    ("Asia & Oceania", "East Asia", ("Korea, South",)),
    ("Europe", "Western Europe", ("France", "Germany", "Italy", "Spain", "United Kingdom")),
    (
        "Middle East",
        None,
        ("Bahrain", "Egypt", "Jordan", "Kuwait", "Oman", "Qatar", "Saudi Arabia", "Türkiye", "United Arab Emirates"),
    ),
)
MILEX_YEARS = tuple(range(2008, 2026))
#: two editions side by side, as SIPRI publishes them: (last year of data, base year of constant prices); the
#: older one's last four years are preliminary figures that the newer one revises
MILEX_EDITIONS = ((2024, 2023), (2025, 2024))
MILEX_NOTICE = (
    "SYNTHETIC SAMPLE DATA in the layout of the SIPRI Military Expenditure Database - invented figures, not SIPRI's"
)


def _milex_series(rng: random.Random) -> dict[str, dict[int, object]]:
    """Current US$ m. per country and year: invented, with SIPRI's marks ('...' no data, 'xxx' did not exist)."""
    out: dict[str, dict[int, object]] = {}
    for _, _, countries in MILEX_LAYOUT:
        for name in countries:
            level, growth = 10 ** rng.uniform(2.5, 5.0), rng.uniform(-0.02, 0.06)
            out[name] = {
                y: round(level * (1 + growth) ** (y - MILEX_YEARS[0]) * rng.uniform(0.95, 1.05), 3) for y in MILEX_YEARS
            }
    out["South Sudan"].update({y: "xxx" for y in MILEX_YEARS if y < 2011})  # independent in 2011
    out["Qatar"].update({y: "..." for y in range(2011, 2021)})  # no data for a decade, as SIPRI reports for Qatar
    out["Kuwait"][MILEX_YEARS[-1]] = "..."
    return out


def write_milex_editions(inbox: Path, seed: int) -> list[dict]:
    """Both synthetic editions; the newest carries the planted bad cell."""
    series = _milex_series(_rng(seed, "milex"))
    entries = []
    for last, base in MILEX_EDITIONS:
        newest = (last, base) == MILEX_EDITIONS[-1]
        revise = _rng(seed, "milex", last)
        edition = {
            n: {
                y: (
                    v if newest or y <= last - 4 or not isinstance(v, float) else round(v * revise.uniform(0.9, 1.1), 3)
                )
                for y, v in ys.items()
                if y <= last
            }
            for n, ys in series.items()
        }
        entries.append(
            write_milex(
                inbox,
                edition,
                tuple(range(MILEX_YEARS[0], last + 1)),
                base,
                _rng(seed, "milex-cells"),
                plant_bad=newest,
            )
        )
    return entries


def write_milex(
    inbox: Path,
    current: dict[str, dict[int, object]],
    years: tuple[int, ...],
    base_year: int,
    rng: random.Random,
    plant_bad: bool,
) -> dict:
    """A SYNTHETIC workbook in the SIPRI Military Expenditure layout (sources/sipri.yaml reads it): title rows,
    years across the columns, region and sub-region heading rows, '...' and 'xxx', footnote marks, regional
    totals in US$ bn, a Footnotes sheet; with ``plant_bad``, one bad cell ('n/a'), which loads with a warning."""
    notes = {"Egypt": "§2", "Qatar": "‖1", "Saudi Arabia": "§3", "United Arab Emirates": "§", "Jordan": "†"}
    deflator = {y: (1.025 ** (base_year - y)) for y in years}
    rate = {name: round(rng.uniform(0.3, 300.0), 4) for name in current}
    gdp_share = {name: rng.uniform(0.01, 0.08) for name in current}
    num = lambda v, f: round(v * f, 6) if isinstance(v, float) else v  # noqa: E731
    sheets: dict[str, tuple[str, list[str | None], Callable[[str, int, object], object]]] = {
        f"Constant ({base_year}) US$": (
            f"Figures are in US $m., at constant {base_year} prices and exchange rates",
            ["Country", None, "Notes"],
            lambda n, y, v: num(v, deflator[y]),
        ),
        "Current US$": (
            "Figures are in US $m., in current prices, converted at the exchange rate for the given year.",
            ["Country", "Notes"],
            lambda n, y, v: v,
        ),
        "Share of GDP": (
            "Military expenditure as a share of GDP (a fraction: 0.05 = 5 %)",
            ["Country", "Notes"],
            lambda n, y, v: num(v, 0) + round(gdp_share[n], 4) if isinstance(v, float) else v,
        ),
        "Per capita": ("Figures are in current US$", ["Country", "Notes"], lambda n, y, v: num(v, 2.5)),
        "Share of Govt. spending": (
            "Share of general government expenditure (a fraction)",
            ["Country", "Notes", "Reporting year"],
            lambda n, y, v: num(v, 0) + round(gdp_share[n] * 3, 4) if isinstance(v, float) else v,
        ),
        "Local currency calendar years": (
            "Figures are in local currency at current prices",
            ["Country", "Currency", "Notes"],
            lambda n, y, v: num(v, rate[n] * 1e6),
        ),
        "Local currency financial years": (
            "Figures are in local currency at current prices and are for financial years",
            ["Country", "Currency", "Fiscal Year (Jan-Dec if not stated)", "Notes"],
            lambda n, y, v: num(v, rate[n] * 1e6),
        ),
    }
    wb = Workbook()
    wb.active.title = "Front page"
    wb.active.append([MILEX_NOTICE])
    data_rows = entity_rows = blank_rows = heading_rows = 0
    bad_rows = []
    for title, (unit_line, lead, fn) in sheets.items():
        ws = wb.create_sheet(title)
        for line in (
            f"Military expenditure by country, {title}, {years[0]}-{years[-1]}",
            MILEX_NOTICE,
            unit_line,
            '". ." = data unavailable. "xxx" = country did not exist or was not independent.',
        ):
            ws.append([line])
        ws.append([])
        ws.append([*lead, *[float(y) for y in years]])
        ws.append([])
        data_rows += 1
        blank_rows += 1
        last_region = None
        for region, sub, countries in MILEX_LAYOUT:
            if region != last_region:
                ws.append([region])
                data_rows += 1
                heading_rows += 1
                last_region = region
            if sub:
                ws.append([sub])
                data_rows += 1
                heading_rows += 1
            for name in countries:
                extra: dict[str | None, str | None] = {
                    "Notes": notes.get(name),
                    "Currency": "Local units",
                    "Reporting year": None,
                    "Fiscal Year (Jan-Dec if not stated)": "Apr-Mar" if name == "Pakistan" else None,
                }
                cells = [fn(name, y, current[name][y]) for y in years]
                if plant_bad and title == "Current US$" and name == "Jordan":
                    cells[3] = "n/a"  # planted: neither a number nor a mark
                    bad_rows.append(
                        {
                            "sheet": title,
                            "excel_row": ws.max_row + 1,
                            "defect": "value_not_number",
                            "country": name,
                            "year": years[3],
                        }
                    )
                ws.append([name, *[extra.get(h) for h in lead[1:]], *cells])
                data_rows += 1
                entity_rows += 1
    ws = wb.create_sheet("Regional totals", 1)
    for line in (
        "Military expenditure by region in constant US dollars",
        MILEX_NOTICE,
        f"Figures are in US$ b., at constant {base_year} prices and exchange rates, except for the "
        f"last figure which is in US$ b. at current prices.",
    ):
        ws.append([line])
    ws.append([])
    ws.append(["Region", *[float(y) for y in years], f"{years[-1]} (current prices)", None, "Omitted countries"])
    regions = ["World"] + list(dict.fromkeys(r for r, _, _ in MILEX_LAYOUT))
    subs = {r: [s for rr, s, _ in MILEX_LAYOUT if rr == r and s] for r in regions}
    members = lambda key: [n for r, s, cs in MILEX_LAYOUT for n in cs if key in ("World", r, s)]  # noqa: E731

    def total(key, y, f):
        return round(sum(current[n][y] * f for n in members(key) if isinstance(current[n][y], float)) / 1000, 3)

    for region in regions:
        for key in (region, *subs[region]):
            ws.append(
                [
                    key,
                    *[total(key, y, deflator[y]) for y in years],
                    total(key, years[-1], 1.0),
                    None,
                    "South Sudan" if key in ("World", "Africa", "sub-Saharan Africa") else None,
                ]
            )
            data_rows += 1
            entity_rows += 1
    ws = wb.create_sheet("Footnotes")
    for row in (
        ["Footnotes and special notes"],
        [],
        ["The following special notes are used in each worksheet"],
        ["†", "Figures do not include military pensions (synthetic note)."],
        ["‖", "Figures are highly uncertain (synthetic note)."],
        ["§", "Figures are SIPRI-style estimates (synthetic note)."],
        ["1", None, "Qatar: no data was found for 2011-20 (synthetic note)."],
        ["2", None, "Egypt: figures exclude foreign military aid (synthetic note)."],
        ["3", None, "Saudi Arabia: figures are budgets, not spending (synthetic note)."],
    ):
        ws.append(row)
        data_rows += 1
    entity_rows += 6  # the footnotes with a mark and a text
    blank_rows, heading_rows = blank_rows + 1, heading_rows + 2  # the footnotes sheet's empty row and two titles
    rel = f"sipri/SIPRI-Milex-data-{years[0]}-{years[-1]}.xlsx"
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    save_workbook(wb, path)
    entry = _file_entry(rel, "SIPRI", "years_across_columns", None, 0)
    entry.update(
        {
            "data_rows": data_rows,
            "lines": entity_rows,
            "bad_rows": bad_rows,
            "blank_rows": blank_rows,
            "heading_rows": heading_rows,
            "footnote_rows": 6,
            "years": [years[0], years[-1]],
        }
    )
    return entry


# --------------------------------------------------------------------------- public API


def generate_inbox(inbox: Path, seed: int = 42) -> dict:
    """Write the demo inbox: inbox/<inbox_dir>/<files> for every agency in ``sources/``.

    Returns the manifest dict and also writes it as inbox/MANIFEST.json.
    """
    inbox = Path(inbox)
    ref = Reference.load()
    agencies = load_agencies(ref)
    programs = {c: make_programs(a, _rng(seed, c, "programs")) for c, a in agencies.items()}
    budgets = [
        (a, y, _rng(seed, c, y, "size").randint(*a.layout.lines)) for c, a in agencies.items() for y in a.layout.years
    ]
    slots = [(max(1, round(n * BAD_RATE)), a.defect_kinds(), a.required_defects()) for a, _, n in budgets]
    plan = _plan_defects(slots, _rng(seed, "defects"))
    entries = []
    for (agency, year, n_lines), kinds in zip(budgets, plan):
        rng = _rng(seed, agency.code, year, "lines")
        defects = dict(zip(rng.sample(range(n_lines), len(kinds)), kinds))
        maker = LineMaker(agency, programs[agency.code], year, ref, rng)
        entries.append(write_budget(inbox, agency, maker, n_lines, defects))
    for code, agency in agencies.items():
        if agency.programs_cfg:
            entries.append(write_programs(inbox, agency, programs[code], _rng(seed, code, "programs-file")))
    if (SOURCES_DIR / "sipri.yaml").exists():
        entries.extend(write_milex_editions(inbox, seed))
    from dcf.samples_records import write_records_samples  # a register and a tracker (they use this module)

    entries.extend(write_records_samples(inbox, seed, SOURCES_DIR))
    return _manifest(seed, entries, inbox)


def generate_corpus(inbox: Path, total_lines: int = 100_000, n_files: int = 10, seed: int = 7) -> dict:
    """Benchmark corpus: budget workbooks only, total_lines spread evenly over n_files.

    Files go round-robin over the agencies with workbook budgets (each in its own layout; GAMI's
    CSV exports are left out, the benchmark baselines read workbooks); no planted defects.
    Returns a manifest of the same shape as generate_inbox and writes inbox/MANIFEST.json.
    """
    inbox = Path(inbox)
    ref = Reference.load()
    agencies = [a for a in load_agencies(ref).values() if not a.is_csv]
    programs = {a.code: make_programs(a, _rng(seed, a.code, "programs")) for a in agencies}
    entries = []
    for i in range(n_files):
        agency = agencies[i % len(agencies)]
        years = agency.layout.years
        year = years[(i // len(agencies)) % len(years)]
        n_lines = total_lines // n_files + (i < total_lines % n_files)
        stem, dot, ext = agency.budget_name(year).rpartition(".")
        name = f"{stem}_c{i:03d}{dot}{ext}"
        maker = LineMaker(agency, programs[agency.code], year, ref, _rng(seed, "corpus", i))
        entries.append(write_budget(inbox, agency, maker, n_lines, {}, name=name))
    return _manifest(seed, entries, inbox)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dcf.samples", description=__doc__.split("\n")[0])
    parser.add_argument("--inbox", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--corpus-lines", type=int, default=None, help="write a benchmark corpus of N lines instead of the demo inbox"
    )
    parser.add_argument("--corpus-files", type=int, default=10)
    args = parser.parse_args(argv)
    if args.corpus_lines:
        kwargs = {} if args.seed is None else {"seed": args.seed}
        manifest = generate_corpus(args.inbox, args.corpus_lines, args.corpus_files, **kwargs)
    else:
        manifest = generate_inbox(args.inbox, 42 if args.seed is None else args.seed)
    files = manifest["files"]
    lines = sum(f["lines"] for f in files)
    bad = sum(len(f["bad_rows"]) for f in files)
    print(f"{NOTICE}: wrote {len(files)} files, {lines} lines ({bad} bad rows) to {args.inbox}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

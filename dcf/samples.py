"""SYNTHETIC sample inbox generator - every file it writes is made-up data, not real budgets.

Writes agency budget workbooks and programme lists that follow the agency source configs in
``sources/*.yaml`` (file-name patterns, sheet names, header aliases, header position, totals
label, units, default currency) and use the labels in ``reference/*.csv`` (category labels,
country spellings, stage labels, currencies).  Header labels are taken from the YAML ``columns:``
aliases so the generator stays in sync with the configs; only the agency "habits" (title rows,
value styles, currency mix, ...) live in the small ``LAYOUTS`` table below.

Two entry points:

* :func:`generate_inbox` - the demo inbox: two budget workbooks per agency plus one programmes
  file per agency that has a ``programs`` entry, with about 2 % deliberately bad rows (one defect
  each) recorded in ``MANIFEST.json``.
* :func:`generate_corpus` - a benchmark corpus of budget workbooks only (no planted defects),
  written with openpyxl ``write_only`` mode.

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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterator

import yaml
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
AGENCY_ORDER = ("MOD", "MOI", "GIP", "MOF", "SANG")
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
    "duplicate_program_code": "program_code",
}
UNKNOWN_CURRENCY = "XYZ"
UNKNOWN_CATEGORY = "Space tourism"
UNKNOWN_COUNTRY = "Atlantis"
TEXT_AMOUNTS = ("TBD", "n/a", "pending")
OUT_OF_RANGE_YEAR = 2099

UNIT_DIVISOR = {"ones": 1, "thousands": 1_000, "millions": 1_000_000}
UNIT_DECIMALS = {"ones": 0, "thousands": 1, "millions": 2}
USD_LOG_RANGE = (4.5, 7.5)  # a budget line is worth 10**4.5 .. 10**7.5 USD

# ISO alpha-2 codes are not in reference/country_aliases.csv; GIP writes some partners that way.
ISO2 = {
    "SAU": "SA", "ARE": "AE", "BHR": "BH", "KWT": "KW", "OMN": "OM", "QAT": "QA", "JOR": "JO",
    "EGY": "EG", "TUR": "TR", "PAK": "PK", "MAR": "MA", "IDN": "ID", "MYS": "MY", "USA": "US",
    "GBR": "GB", "FRA": "FR", "ITA": "IT", "ESP": "ES", "DEU": "DE", "KOR": "KR",
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
    stage_weights: tuple[tuple[str, float], ...] = (
        ("allocated", 0.5), ("committed", 0.3), ("disbursed", 0.2))
    sheet_name: str = ""  # used when the YAML says sheet 0
    spacer_rows: int = 0  # blank rows between the titles and the header
    cover_sheet: bool = False
    notes_sheet: bool = False
    mid_blank_rows: int = 0  # blank rows scattered inside the data
    text_amount_rate: float = 0.0  # valid amounts written as text with thousands separators
    trailing_space_rate: float = 0.0  # country cells with a trailing space
    header_arabic: bool = False  # prefer an Arabic alias for headers
    years: tuple[int, ...] = (2024, 2025)


LAYOUTS: dict[str, Layout] = {
    "MOD": Layout(
        budget_name="MOD_budget_FY{y}.xlsx", fy_cell="{y}",
        title_rows=("{name_en} - Defense Cooperation Budget",
                    "Fiscal Year {fy} - amounts in thousands of SAR", "{notice}"),
        spacer_rows=1, cover_sheet=True, notes_sheet=True, totals_text="Total",
        currency_weights=((None, 0.6), ("SAR", 0.3), ("USD", 0.1)),
        country_style="en", label_script="latin", mid_blank_rows=2, text_amount_rate=0.05),
    "MOI": Layout(
        budget_name="MOI_budget_{y}.xlsx", fy_cell="{y}",
        title_rows=("{name_ar} - ميزانية التعاون الدفاعي للسنة المالية {fy}",
                    "{notice} / {notice_ar}"),
        totals_text="المجموع", currency_weights=(("SAR", 0.8), ("AED", 0.2)),
        country_style="ar", label_script="arabic", stage_style="arabic", header_arabic=True),
    "GIP": Layout(
        budget_name="GIP_budget_{start}-{end2:02d}.xlsx", fy_cell="{start}/{end2:02d}",
        sheet_name="FY{start}-{end2:02d}",
        title_rows=("{name_en} - Cooperation Budget, Financial Year {fy}", "{notice}"),
        totals_text="Total", currency_weights=(("USD", 0.6), ("GBP", 0.25), ("EUR", 0.15)),
        country_style="codes", label_script="latin"),
    "MOF": Layout(
        budget_name="MOF_budget_FY{y}.xlsx", fy_cell="FY{y}",
        title_rows=("{name_en} - Defense Cooperation Funding Lines FY{y} (amounts in {unit})",
                    "{notice}"),
        totals_text="Total", currency_weights=(("USD", 0.7), ("EUR", 0.2), ("TRY", 0.1)),
        country_style="iso3", label_script="latin", star_labels=False, stage_style="mixed_case"),
    "SANG": Layout(
        budget_name="SANG_budget_{y}.xlsx", fy_cell="{y}",
        title_rows=("{name_en} - Cooperation Budget {fy}", "{notice}"),
        totals_text="Total", currency_weights=(("SAR", 0.7), ("GBP", 0.2), ("TRY", 0.1)),
        country_style="en", label_script="latin", stage_style="title",
        stage_weights=(("allocated", 0.7), ("disbursed", 0.3)), trailing_space_rate=0.08),
}

NAME_WORDS_EN = (
    ("Desert", "Falcon", "Gulf", "Northern", "Coastal", "Summit", "Shield", "Horizon", "Crescent",
     "Sentinel", "Eagle", "Oasis", "Anchor", "Bridge", "Pioneer"),
    ("Partnership", "Initiative", "Programme", "Cooperation", "Exchange", "Support Package",
     "Capability Project", "Framework"),
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
    def load(cls) -> "Reference":
        return cls(
            category_rows=tuple((r["agency"], r["label"], r["category_code"])
                                for r in _read_csv("category_mappings.csv")),
            alias_rows=tuple((r["alias"], r["iso3"], r["note"])
                             for r in _read_csv("country_aliases.csv")),
            stage_rows=tuple((r["label"], r["stage"]) for r in _read_csv("stage_labels.csv")),
            fx=dict(SAMPLE_RATES),
        )

    def rate(self, currency: str, year: int) -> float:
        """Rough units per US$ to make plausible local amounts (not the pipeline's rates)."""
        return self.fx[currency]


def _category_labels(ref: Reference, agency: str, layout: Layout) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {}
    for owner, label, code in ref.category_rows:
        star_ok = (owner == "*" and layout.star_labels
                   and _is_arabic(label) == (layout.label_script == "arabic"))
        if owner == agency or star_ok:
            labels.setdefault(code, []).append(label)
    return labels


def _country_forms(ref: Reference, style: str) -> dict[str, list[str]]:
    forms: dict[str, list[str]] = {}
    for alias, iso3, note in ref.alias_rows:
        if note == "former state":  # partners are current countries
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
    cases = {"mixed_case": (str.lower, str.title, str.upper), "title": (str.title,),
             "arabic": (str,)}[style]
    out: dict[str, list[str]] = {}
    for label, stage in pairs:
        out.setdefault(stage, []).extend(case(label) for case in cases)
    return out


def _header_label(aliases: list[str], prefer_arabic: bool) -> str:
    if prefer_arabic:
        arabic = [a for a in aliases if _is_arabic(a)]
        if arabic:
            return arabic[0]
    return aliases[0]


def _fiscal_period(year: int, start_month: int, label: str) -> tuple[date, date]:
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

    def period(self, year: int) -> tuple[date, date]:
        return _fiscal_period(year, self.cfg["fiscal_year_start_month"],
                              self.cfg.get("fiscal_year_label", "end"))

    def fy_fields(self, year: int) -> dict:
        start, end = self.period(year)
        return {"y": year, "start": start.year, "end": end.year, "end2": end.year % 100}

    def fy_value(self, year: int) -> int | str:
        text = self.layout.fy_cell.format(**self.fy_fields(year))
        return int(text) if text.isdigit() else text

    def budget_name(self, year: int) -> str:
        name = self.layout.budget_name.format(**self.fy_fields(year))
        if not fnmatch.fnmatchcase(name, self.budget["pattern"]):
            raise ValueError(f"{name} does not match {self.budget['pattern']}")
        return name

    def sheet_name(self, year: int) -> str:
        sheet = self.budget.get("sheet", 0)
        return self.layout.sheet_name.format(**self.fy_fields(year)) if sheet == 0 else sheet

    def title_rows(self, year: int) -> list[str]:
        values = dict(self.fy_fields(year), name_en=self.cfg["name_en"], unit=self.budget["unit"],
                      name_ar=self.cfg["name_ar"], fy=self.fy_value(year), notice=NOTICE,
                      notice_ar=NOTICE_AR)
        return [t.format(**values) for t in self.layout.title_rows]

    def header_row(self) -> int:
        row = len(self.layout.title_rows) + self.layout.spacer_rows + 1
        header = self.budget["header"]
        if header.get("row", row) != row or row > header.get("max_scan_rows", row):
            raise ValueError(f"{self.code}: header row {row} disagrees with {header}")
        return row

    def defect_kinds(self) -> list[str]:
        kinds = ["missing_amount", "text_amount", "unknown_currency", "unknown_category",
                 "unknown_country"]
        if "stage" in self.fields or self.budget.get("default_stage") == "allocated":
            kinds.append("negative_allocation")
        if "transaction_date" in self.fields:
            kinds.append("date_out_of_range")
        return kinds


def load_agencies(ref: Reference | None = None) -> dict[str, Agency]:
    ref = ref or Reference.load()
    agencies = {}
    for path in sorted(SOURCES_DIR.glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        code = cfg["agency"]
        layout = LAYOUTS[code]
        files = {f["kind"]: f for f in cfg["files"]}
        agency = Agency(code=code, cfg=cfg, layout=layout, budget=files["budget"],
                        programs_cfg=files.get("programs"),
                        categories=_category_labels(ref, code, layout),
                        countries=_country_forms(ref, layout.country_style),
                        stages=_stage_labels(ref, layout.stage_style))
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
        programs.append(Program(
            code=f"{agency.code}-P{i:03d}",
            name_en=_program_name(rng, NAME_WORDS_EN, used_en),
            name_ar="برنامج " + _program_name(rng, NAME_WORDS_AR, used_ar),
            category=rng.choice(codes),
            partners=tuple(sorted(rng.sample(isos, rng.randint(1, 4)))),
            start=start,
            end=start.replace(year=start.year + rng.randint(1, 5)) - timedelta(days=1),
        ))
    return programs


def _program_values(agency: Agency, prog: Program, rng: random.Random, *, csv_dates: bool) -> dict:
    partners = "; ".join(rng.choice(agency.countries[iso]) for iso in prog.partners)
    as_date = (lambda d: d.isoformat()) if csv_dates else (lambda d: d)
    return {
        "program_code": prog.code, "name_en": prog.name_en, "name_ar": prog.name_ar,
        "partner_countries": partners, "category": rng.choice(agency.categories[prog.category]),
        "start_date": as_date(prog.start), "end_date": as_date(prog.end), "status": prog.status,
    }


def _program_records(agency: Agency, programs: list[Program], rng: random.Random,
                     csv_dates: bool) -> tuple[list[dict], int]:
    """Programme rows plus one duplicate-code row; returns (rows, index of the duplicate)."""
    rows = [_program_values(agency, p, rng, csv_dates=csv_dates) for p in programs]
    original = rng.randrange(len(rows) // 2)
    dup_at = rng.randrange(original + 1, len(rows) + 1)
    twin = dict(rows[original], name_en=rows[original]["name_en"] + " (revised)",
                name_ar=rows[original]["name_ar"] + " (معدل)")
    rows.insert(dup_at, twin)
    return rows, dup_at


# --------------------------------------------------------------------------- budget lines


class LineMaker:
    """Draws budget lines for one agency and fiscal year."""

    def __init__(self, agency: Agency, programs: list[Program], year: int, ref: Reference,
                 rng: random.Random):
        self.agency, self.programs, self.year, self.rng = agency, programs, year, rng
        unit = agency.budget["unit"]
        self.decimals = UNIT_DECIMALS[unit]
        default = agency.budget["default_currency"]
        self.scale = {c: ref.rate(c or default, year) / UNIT_DIVISOR[unit] * 10 ** self.decimals
                      for c, _ in agency.layout.currency_weights}
        self.currencies = [c for c, _ in agency.layout.currency_weights]
        self.currency_w = [w for _, w in agency.layout.currency_weights]
        self.stage_names = [s for s, _ in agency.layout.stage_weights]
        self.stage_w = [w for _, w in agency.layout.stage_weights]
        self.period = agency.period(year)
        self.period_days = (self.period[1] - self.period[0]).days
        self.fy = agency.fy_value(year)
        self.fields = set(agency.fields)

    def units(self, currency: str | None) -> int:
        usd = 10 ** self.rng.uniform(*USD_LOG_RANGE)
        return max(1, round(usd * self.scale[currency]))

    def amount_cell(self, units: int) -> float | int:
        return units / 10 ** self.decimals if self.decimals else units

    def country(self, iso: str) -> str:
        text = self.rng.choice(self.agency.countries[iso])
        if self.rng.random() < self.agency.layout.trailing_space_rate:
            text += " "
        return text

    def line(self) -> tuple[dict, int]:
        """One clean line (field -> cell value) and its amount in file units x 10**decimals."""
        rng = self.rng
        prog = rng.choice(self.programs)
        currency = rng.choices(self.currencies, self.currency_w)[0]
        units = self.units(currency)
        row = {"program_code": prog.code, "program_name": prog.name_en,
               "partner_country": self.country(rng.choice(prog.partners)),
               "category": rng.choice(self.agency.categories[prog.category]),
               "fiscal_year": self.fy, "amount": self.amount_cell(units), "currency": currency}
        if self.agency.layout.header_arabic:  # MOI's "اسم البرنامج" is the Arabic name
            row["program_name"] = prog.name_ar
        if "stage" in self.fields:
            stage = rng.choices(self.stage_names, self.stage_w)[0]
            row["stage"] = rng.choice(self.agency.stages[stage])
        if "transaction_date" in self.fields:
            row["transaction_date"] = self.period[0] + timedelta(rng.randint(0, self.period_days))
        if rng.random() < self.agency.layout.text_amount_rate:
            row["amount"] = f"{self.amount_cell(units):,.{self.decimals}f}"
        return row, units

    def spoil(self, row: dict, units: int, defect: str) -> int | None:
        """Give a clean line exactly one defect; returns the numeric units left in the cell."""
        if defect == "missing_amount":
            row["amount"] = None
            return None
        if defect == "text_amount":
            row["amount"] = self.rng.choice(TEXT_AMOUNTS)
            return None
        if defect == "negative_allocation":
            row["amount"] = self.amount_cell(-units)
            if "stage" in row:
                row["stage"] = self.agency.stages["allocated"][0]
            return -units
        if defect == "date_out_of_range":
            d = row["transaction_date"]
            row["transaction_date"] = date(OUT_OF_RANGE_YEAR, d.month, min(d.day, 28))
        else:
            field_, value = {"unknown_currency": ("currency", UNKNOWN_CURRENCY),
                             "unknown_category": ("category", UNKNOWN_CATEGORY),
                             "unknown_country": ("partner_country", UNKNOWN_COUNTRY)}[defect]
            row[field_] = value
        if isinstance(row["amount"], str):  # keep the amount a plain number on a bad row
            row["amount"] = self.amount_cell(units)
        return units


def _plan_defects(slots: list[tuple[int, list[str]]], rng: random.Random) -> list[list[str]]:
    """Assign defect kinds to files: every kind at least once where possible, rest at random."""
    plan: list[list[str]] = [[] for _ in slots]
    by_rarity = sorted(BUDGET_DEFECTS, key=lambda k: sum(k in kinds for _, kinds in slots))
    for kind in by_rarity:
        free = [i for i, (n, kinds) in enumerate(slots) if kind in kinds and len(plan[i]) < n]
        if free:
            plan[rng.choice(free)].append(kind)
    for i, (n, kinds) in enumerate(slots):
        plan[i].extend(rng.choice(kinds) for _ in range(n - len(plan[i])))
    return plan


# --------------------------------------------------------------------------- writing


def _deterministic_zip(data: bytes, path: Path) -> None:
    """Rewrite an xlsx so that every zip entry has the same fixed timestamp.

    openpyxl stamps dcterms:modified with the current time on save whatever the workbook
    properties say, so core.xml is patched here too.
    """
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
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
    return {"path": path, "agency": agency, "kind": kind, "sheet": sheet,
            "header_row": header_row, "data_rows": 0, "lines": 0, "blank_rows": 0,
            "totals_rows": 0, "bad_rows": [], "total_amount": None}


def _budget_rows(maker: LineMaker, n_lines: int, defects: dict[int, str],
                 blanks: set[int]) -> Iterator[tuple[dict | None, int | None, str | None]]:
    """Yield (row, numeric units, defect) per data line, and (None, None, None) for blank rows."""
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
        _text_sheet(wb, "Cover", [NOTICE, agency.cfg["name_en"], f"Fiscal Year {year}",
                                  "Generated by dcf.samples for testing the pipeline."])
    ws = wb.create_sheet(agency.sheet_name(year))
    for title in agency.title_rows(year):
        ws.append([title])
    for _ in range(agency.layout.spacer_rows):
        ws.append([])
    ws.append([label for _, label in agency.headers])
    return ws


def _budget_body(ws, agency: Agency, maker: LineMaker, n_lines: int, defects: dict[int, str],
                 entry: dict) -> int:
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
            entry["bad_rows"].append({"excel_row": excel_row, "defect": defect,
                                      "column": DEFECT_COLUMN[defect]})
    return total


def _budget_totals(ws, agency: Agency, total: float | int, entry: dict) -> None:
    totals = [None] * len(agency.fields)
    totals[0], totals[agency.fields.index("amount")] = agency.layout.totals_text, total
    ws.append(totals)
    entry.update(total_amount=total, totals_rows=1,
                 data_rows=entry["lines"] + entry["blank_rows"] + 1)


def write_budget(inbox: Path, agency: Agency, maker: LineMaker, n_lines: int,
                 defects: dict[int, str], name: str | None = None) -> dict:
    """Write one budget workbook; returns its manifest entry."""
    year = maker.year
    rel = f"{agency.cfg['inbox_dir']}/{name or agency.budget_name(year)}"
    entry = _file_entry(rel, agency.code, "budget", agency.sheet_name(year), agency.header_row())
    wb = Workbook(write_only=True)
    ws = _budget_preamble(wb, agency, year)
    total = _budget_body(ws, agency, maker, n_lines, defects, entry)
    _budget_totals(ws, agency, maker.amount_cell(total), entry)
    if agency.layout.notes_sheet:
        _text_sheet(wb, "Notes", [
            NOTICE, f"Amounts are in {agency.budget['unit']} of the currency in the Currency "
            f"column; a blank currency means {agency.budget['default_currency']}.",
            "Figures are provisional and subject to revision."])
    save_workbook(wb, inbox / rel)
    return entry


def write_programs(inbox: Path, agency: Agency, programs: list[Program],
                   rng: random.Random) -> dict:
    cfg = agency.programs_cfg
    name = cfg["pattern"].replace("*", "")
    rel = f"{agency.cfg['inbox_dir']}/{name}"
    headers = agency.headers_for(cfg)
    is_csv = name.endswith(".csv")
    rows, dup_at = _program_records(agency, programs, rng, csv_dates=is_csv)
    table = [[label for _, label in headers]] + [[r[f] for f, _ in headers] for r in rows]
    header_row = 1 if is_csv else 2
    entry = _file_entry(rel, agency.code, "programs", None if is_csv else cfg["sheet"],
                        header_row)
    entry.update(data_rows=len(rows), lines=len(rows), bad_rows=[{
        "excel_row": header_row + 1 + dup_at, "defect": "duplicate_program_code",
        "column": "program_code"}])
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
        json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n",
        encoding="utf-8")
    return manifest


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random("|".join(map(str, (seed, *parts))))


# --------------------------------------------------------------------------- public API


def generate_inbox(inbox: Path, seed: int = 42) -> dict:
    """Write the demo inbox: inbox/<inbox_dir>/<files> for the 5 agencies.

    Returns the manifest dict and also writes it as inbox/MANIFEST.json.
    """
    inbox = Path(inbox)
    ref = Reference.load()
    agencies = load_agencies(ref)
    programs = {c: make_programs(a, _rng(seed, c, "programs")) for c, a in agencies.items()}
    budgets = [(a, y, _rng(seed, c, y, "size").randint(120, 300))
               for c, a in agencies.items() for y in a.layout.years]
    slots = [(max(1, round(n * BAD_RATE)), a.defect_kinds()) for a, _, n in budgets]
    plan = _plan_defects(slots, _rng(seed, "defects"))
    entries = []
    for (agency, year, n_lines), kinds in zip(budgets, plan):
        rng = _rng(seed, agency.code, year, "lines")
        defects = dict(zip(rng.sample(range(n_lines), len(kinds)), kinds))
        maker = LineMaker(agency, programs[agency.code], year, ref, rng)
        entries.append(write_budget(inbox, agency, maker, n_lines, defects))
    for code, agency in agencies.items():
        if agency.programs_cfg:
            entries.append(write_programs(inbox, agency, programs[code],
                                          _rng(seed, code, "programs-file")))
    return _manifest(seed, entries, inbox)


def generate_corpus(inbox: Path, total_lines: int = 100_000, n_files: int = 10,
                    seed: int = 7) -> dict:
    """Benchmark corpus: budget workbooks only, total_lines spread evenly over n_files.

    Files go round-robin over the agencies (each in its own layout); no planted defects.
    Returns a manifest of the same shape as generate_inbox and writes inbox/MANIFEST.json.
    """
    inbox = Path(inbox)
    ref = Reference.load()
    agencies = list(load_agencies(ref).values())
    programs = {a.code: make_programs(a, _rng(seed, a.code, "programs")) for a in agencies}
    entries = []
    for i in range(n_files):
        agency = agencies[i % len(agencies)]
        years = agency.layout.years
        year = years[(i // len(agencies)) % len(years)]
        n_lines = total_lines // n_files + (i < total_lines % n_files)
        name = agency.budget_name(year)[: -len(".xlsx")] + f"_c{i:03d}.xlsx"
        maker = LineMaker(agency, programs[agency.code], year, ref, _rng(seed, "corpus", i))
        entries.append(write_budget(inbox, agency, maker, n_lines, {}, name=name))
    return _manifest(seed, entries, inbox)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dcf.samples",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--inbox", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--corpus-lines", type=int, default=None,
                        help="write a benchmark corpus of N lines instead of the demo inbox")
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

"""An agency as the generator sees it: its source YAML (``sources/*.yaml``), its ``Layout`` and the reference
labels (``reference/*.csv``: categories, country spellings, stages) rendered in its script and style."""

from __future__ import annotations

import csv
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import yaml
from hijridate import Hijri

from samples.common import (
    AGENCY_ORDER,
    ISO2,
    NOTICE,
    NOTICE_AR,
    SAMPLE_RATES,
    SOURCES_DIR,
    arabic_indic,
    is_arabic,
    reference_dir,
)
from samples.layouts import LAYOUTS, Layout


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(reference_dir() / name, encoding="utf-8", newline="") as fh:
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
        star_ok = owner == "*" and layout.star_labels and is_arabic(label) == (layout.label_script == "arabic")
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
        if (style == "ar" and is_arabic(alias)) or (style == "en" and not is_arabic(alias)):
            forms.setdefault(iso3, []).append(alias)
        elif style == "codes" and not is_arabic(alias) and not note and iso3 not in forms:
            forms[iso3] = [ISO2[iso3], iso3, alias]
        elif style == "iso3":
            forms[iso3] = [iso3]
    return forms


def _stage_labels(ref: Reference, style: str | None) -> dict[str, list[str]]:
    if style is None:
        return {}
    if style == "arabic":
        pairs = [(lab, st) for lab, st in ref.stage_rows if is_arabic(lab)]
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


def _unit_from_label(label: str) -> str:
    """The unit an amount header states, for sources whose YAML says ``unit: from_header``."""
    text = label.casefold()
    if "million" in text:
        return "millions"
    return "thousands" if "'000" in text or "thousand" in text else "ones"


def _header_label(aliases: list[str], prefer_arabic: bool) -> str:
    if prefer_arabic:
        arabic = [a for a in aliases if is_arabic(a)]
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
            return {"y": year, "y_ar": arabic_indic(str(year)), "start": year, "end": year, "end2": year % 100}
        start, end = self.period(year)
        return {
            "y": year,
            "y_ar": arabic_indic(str(year)),
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

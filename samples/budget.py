"""Budget files: ``LineMaker`` draws an agency's budget lines in its habits, ``plan_defects`` spreads the planted
defects over the files, and ``write_budget`` writes a workbook (title rows, header, lines, blank rows, totals row,
optional cover and notes sheets) or a CSV export."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TypeAlias

from openpyxl import Workbook

from samples.agencies import Agency, Reference
from samples.common import (
    BUDGET_DEFECTS,
    DEFECT_COLUMN,
    NOTICE,
    OUT_OF_RANGE_DAYS,
    UNIT_DECIMALS,
    UNIT_DIVISOR,
    UNKNOWN_CATEGORY,
    UNKNOWN_COUNTRY,
    UNKNOWN_CURRENCY,
    USD_LOG_RANGE,
    arabic_indic,
    european,
)
from samples.files import file_entry, save_workbook, text_sheet
from samples.programs import Program

_Date: TypeAlias = date  # for annotations inside LineMaker, whose method ``date`` hides the class there


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
            return european(self.amount_cell(units), self.decimals)
        return self.amount_cell(units)

    def amount(self, units: int) -> float | int | str:
        """A valid amount cell in one of the agency's habitual styles."""
        rng, layout, value = self.rng, self.layout, self.amount_cell(units)
        if layout.amount_style == "eu_text":
            return european(value, self.decimals, thousands=rng.random() >= layout.eu_plain_rate)
        if rng.random() < layout.text_amount_rate:
            return f"{value:,.{self.decimals}f}"
        if rng.random() < layout.arabic_amount_rate:
            text = f"{value:,.{self.decimals}f}"
            if rng.random() < 0.25:
                text = text.replace(",", "")  # "٥٠٠٠٠٠"
            if not self.decimals and rng.random() < 0.3:
                text += ".00"  # "١٬٢٣٤٫٠٠"
            return arabic_indic(text)
        return value

    def fiscal_year(self) -> int | str:
        if not self.fy_cells:
            return self.fy
        return self.rng.choices(self.fy_cells, self.fy_w)[0]

    def _render_date(self, d: date) -> date | str:
        return d.isoformat() if self.layout.date_style == "iso" else d

    def _hijri_text(self, year: int, month: int, day: int) -> str:
        text = f"{year}/{month:02d}/{day:02d}"
        return text if self.rng.random() < self.layout.ascii_date_rate else arabic_indic(text)

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


def plan_defects(slots: list[tuple[int, list[str], list[str]]], rng: random.Random) -> list[list[str]]:
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
        text_sheet(
            wb,
            "Cover",
            [
                NOTICE,
                agency.cfg["name_en"],
                f"Fiscal Year {year}",
                "Generated by dcf.samples for testing the pipeline.",  # former module name: files stay byte-identical
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
    entry = file_entry(rel, agency.code, "budget", sheet, agency.header_row())
    if agency.is_csv:
        return _write_budget_csv(inbox, rel, agency, maker, n_lines, defects, entry)
    wb = Workbook(write_only=True)
    ws = _budget_preamble(wb, agency, year)
    total = _budget_body(ws, agency, maker, n_lines, defects, entry)
    _budget_totals(ws, agency, maker, total, entry)
    if agency.layout.notes_sheet:
        text_sheet(
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

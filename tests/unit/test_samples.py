"""Tests for dcf.samples, the SYNTHETIC sample-inbox generator.

The generated files are re-read independently (openpyxl read_only / csv) and checked against the
agency YAML configs and the reference tables, not against the generator's own internals.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook

from dcf import samples

ROOT = Path(__file__).resolve().parents[2]


def _ref(name: str) -> list[dict[str, str]]:
    with open(ROOT / "reference" / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


CONFIGS = {
    cfg["agency"]: cfg
    for cfg in (yaml.safe_load(p.read_text(encoding="utf-8"))
                for p in sorted((ROOT / "sources").glob("*.yaml")))
}
CURRENCIES = set(samples.SAMPLE_RATES)
STAGES = {r["label"].lower(): r["stage"] for r in _ref("stage_labels.csv")}
COUNTRIES = ({r["alias"] for r in _ref("country_aliases.csv")}
             | {r["iso3"] for r in _ref("countries.csv")} | set(samples.ISO2.values()))


def _labels(agency: str) -> set[str]:
    return {r["label"] for r in _ref("category_mappings.csv") if r["agency"] in ("*", agency)}


def _file_cfg(agency: str, kind: str) -> dict:
    return next(f for f in CONFIGS[agency]["files"] if f["kind"] == kind)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("inbox")
    return path, samples.generate_inbox(path, seed=42)


# --------------------------------------------------------------------------- reading helpers


def _read_rows(path: Path, entry: dict, file_cfg: dict) -> list[list]:
    """All rows of the file as lists (1-based excel row n is rows[n - 1])."""
    if path.suffix == ".csv":
        with open(path, encoding=file_cfg.get("encoding", "utf-8"), newline="") as fh:
            return [list(r) for r in csv.reader(fh)]
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


def _number(value) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return None
    return None


def _period(fy_cell: str, start_month: int) -> tuple[date, date]:
    start = date(int(str(fy_cell)[:4]), start_month, 1)  # GIP "2023/24" style
    return start, date(start.year + 1, start_month, 1) - timedelta(days=1)


def _line_defects(agency: str, file_cfg: dict, line: dict) -> set[str]:
    """The defects an independent validator would see on one budget line."""
    found = set()
    amount = _number(line["amount"])
    if line["amount"] is None:
        found.add("missing_amount")
    elif amount is None:
        found.add("text_amount")
    if line.get("currency") not in (None, *CURRENCIES):
        found.add("unknown_currency")
    if line["category"] not in _labels(agency):
        found.add("unknown_category")
    if str(line["partner_country"]).strip() not in COUNTRIES:
        found.add("unknown_country")
    stage = STAGES.get(str(line.get("stage", "")).lower(), file_cfg.get("default_stage"))
    if amount is not None and amount < 0 and stage == "allocated":
        found.add("negative_allocation")
    assert amount is None or amount > 0 or "negative_allocation" in found
    if "transaction_date" in line:
        start, end = _period(line["fiscal_year"], CONFIGS[agency]["fiscal_year_start_month"])
        assert isinstance(line["transaction_date"], datetime)
        if not start <= line["transaction_date"].date() <= end:
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
    body = rows[entry["header_row"]:]
    assert len(body) == entry["data_rows"]
    totals = body[-1]
    label = next(c for c in totals if isinstance(c, str) and c.strip())
    assert re.match(file_cfg["totals_label"], label, re.IGNORECASE)
    amount_col = fields.index("amount")
    assert totals[amount_col] == entry["total_amount"]
    blank = [i for i, r in enumerate(body[:-1]) if _is_blank(r)]
    assert len(blank) == entry["blank_rows"] and entry["totals_rows"] == 1
    lines = {entry["header_row"] + 1 + i: dict(zip(fields, r))
             for i, r in enumerate(body[:-1]) if not _is_blank(r)}
    assert len(lines) == entry["lines"] == entry["data_rows"] - entry["blank_rows"] - 1
    numeric = sum(_number(line["amount"]) or 0 for line in lines.values())
    assert numeric == pytest.approx(entry["total_amount"], rel=0, abs=1e-6)
    bad = {b["excel_row"]: b["defect"] for b in entry["bad_rows"]}
    for excel_row, line in lines.items():
        expected = {bad[excel_row]} if excel_row in bad else set()
        assert _line_defects(entry["agency"], file_cfg, line) == expected, (path, excel_row)


def _check_programs(path: Path, entry: dict, file_cfg: dict, rows: list[list]) -> None:
    fields = _check_header(entry, file_cfg, rows)
    body = rows[entry["header_row"]:]
    assert len(body) == entry["data_rows"] == entry["lines"]
    if file_cfg.get("encoding") == "utf-8-sig":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    code_col = fields.index("program_code")
    seen: dict[str, int] = {}
    dups = []
    for i, row in enumerate(body):
        code = row[code_col]
        if code in seen:
            dups.append({"excel_row": entry["header_row"] + 1 + i,
                         "defect": "duplicate_program_code", "column": "program_code"})
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


def test_same_seed_gives_identical_bytes(inbox, tmp_path):
    first, manifest = inbox
    again = samples.generate_inbox(tmp_path, seed=42)
    assert again == manifest
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert all(_sha(first / n) == _sha(tmp_path / n) for n in names)


def test_manifest_file_is_written(inbox):
    root, manifest = inbox
    on_disk = json.loads((root / "MANIFEST.json").read_text(encoding="utf-8"))
    assert on_disk == manifest and manifest["synthetic"] is True and manifest["seed"] == 42
    listed = {f["path"] for f in manifest["files"]}
    written = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert written == listed | {"MANIFEST.json"}


def test_inbox_contents(inbox):
    _, manifest = inbox
    kinds = Counter((f["agency"], f["kind"]) for f in manifest["files"])
    for agency, cfg in CONFIGS.items():
        assert kinds[(agency, "budget")] == 2
        has_programs = any(f["kind"] == "programs" for f in cfg["files"])
        assert kinds[(agency, "programs")] == int(has_programs)
    assert all(120 <= f["lines"] <= 300 for f in manifest["files"] if f["kind"] == "budget")


def test_every_defect_kind_and_rate(inbox):
    _, manifest = inbox
    files = manifest["files"]
    kinds = Counter(b["defect"] for f in files for b in f["bad_rows"])
    assert set(kinds) == set(samples.DEFECT_KINDS)
    rate = sum(kinds.values()) / sum(f["lines"] for f in files)
    assert 0.01 <= rate <= 0.04


def test_files_match_manifest_and_configs(inbox):
    root, manifest = inbox
    for entry in manifest["files"]:
        _check_file(root, entry)


def test_corpus(tmp_path):
    manifest = samples.generate_corpus(tmp_path, total_lines=2000, n_files=4)
    files = manifest["files"]
    assert len(files) == 4 and sum(f["lines"] for f in files) == 2000
    assert [f["agency"] for f in files] == ["MOD", "MOI", "GIP", "MOF"]
    assert all(f["bad_rows"] == [] and f["kind"] == "budget" for f in files)
    assert len({f["path"] for f in files}) == 4
    for entry in files:
        _check_file(tmp_path, entry)


def test_cli(tmp_path, capsys):
    assert samples.main(["--inbox", str(tmp_path), "--corpus-lines", "50",
                         "--corpus-files", "5"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "MANIFEST.json").read_text())["files"]) == 5

"""Tests for samples, the SYNTHETIC sample-inbox generator.

The generated files are re-read independently (openpyxl read_only / csv with the configured
delimiter) and checked against the agency YAML configs and the reference tables, not against the
generator's own internals.  Numbers are parsed per the agency's number_locale (European "1.234,5"
for GAMI) and in Arabic-Indic digits; Hijri labels and dates are checked with hijridate.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

import samples
from tests.unit.sample_reading import (
    ARABIC_INDIC,
    ASCII,
    CONFIGS,
    EU_AMOUNT,
    HIJRI_DATE,
    ISO_CURRENCIES,
    RATED_CURRENCIES,
    _budget_lines,
    _budgets,
    _check_file,
    _date,
    _file_cfg,
    _hijri_period,
    _hijri_year,
    _locale,
    _number,
    _ref,
    _sha,
)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("inbox")
    return path, samples.generate_inbox(path, seed=42)


# --------------------------------------------------------------------------- reading helpers


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
    kinds = Counter(b["defect"] for f in files if f["agency"] in CONFIGS for b in f["bad_rows"])
    assert set(kinds) == set(samples.DEFECT_KINDS)
    assert kinds["no_fx_rate"] >= 2
    assert all(any(b["defect"] == "no_fx_rate" for b in f["bad_rows"]) for f in files if f["agency"] == "GAMI")
    rate = sum(kinds.values()) / sum(f["lines"] for f in files if f["agency"] in CONFIGS)  # of the budgets' lines
    assert 0.01 <= rate <= 0.04
    bad_rows = [(f["path"], b["excel_row"]) for f in files for b in f["bad_rows"]]
    assert len(bad_rows) == len(set(bad_rows))  # one defect per bad row


def test_files_match_manifest_and_configs(inbox):
    root, manifest = inbox
    for entry in manifest["files"]:
        if (
            entry["agency"] in CONFIGS
        ):  # the reference workbook is checked in tests/integration/test_reference_samples.py
            _check_file(root, entry)


def test_moi_hijri_years_dates_and_arabic_amounts(inbox):
    root, manifest = inbox
    entries = _budgets(manifest, "MOI")
    assert sorted(Path(e["path"]).name for e in entries) == ["MOI_budget_1445.xlsx", "MOI_budget_1446.xlsx"]
    for entry in entries:
        year = int(re.search(r"_(\d{4})\.xlsx$", entry["path"]).group(1))
        bad = {b["excel_row"]: b["defect"] for b in entry["bad_rows"]}
        lines = _budget_lines(root, entry)
        fy_forms, date_forms, arabic_amounts = Counter(), Counter(), 0
        for excel_row, line in lines.items():
            fy = line["fiscal_year"]
            assert _hijri_year(fy) == year, (excel_row, fy)  # never a Gregorian year
            fy_forms["int" if isinstance(fy, int) else "arabic" if ARABIC_INDIC.search(fy) else "ascii"] += 1
            cell = line["transaction_date"]
            if cell is None:
                date_forms["blank"] += 1
            else:
                assert isinstance(cell, str) and HIJRI_DATE.match(cell), (excel_row, cell)
                date_forms["arabic" if ARABIC_INDIC.search(cell) else "ascii"] += 1
                y, m, d = (int(part) for part in cell.translate(ASCII).split("/"))
                start, end = _hijri_period(year)
                inside = y == year and start <= _date("MOI", cell) <= end
                assert inside == (bad.get(excel_row) != "date_out_of_range"), (excel_row, cell)
            amount = line["amount"]
            if isinstance(amount, str) and ARABIC_INDIC.search(amount):
                assert excel_row not in bad
                value = _number(amount)
                assert value is not None and value > 0 and value == int(value), amount
                arabic_amounts += 1
        assert fy_forms["arabic"] > fy_forms["int"] + fy_forms["ascii"] > 0
        assert date_forms["arabic"] > date_forms["ascii"] > 0 and date_forms["blank"] > 0
        assert arabic_amounts > 0


def test_gami_semicolon_csv_in_european_format(inbox):
    root, manifest = inbox
    cfg = _file_cfg("GAMI", "budget")
    entries = _budgets(manifest, "GAMI")
    assert sorted(Path(e["path"]).name for e in entries) == ["GAMI_budget_2024.csv", "GAMI_budget_2025.csv"]
    arabic = re.compile(r"[\u0600-\u06ff]")
    labels = {
        r["label"]
        for r in _ref("category_mappings.csv")
        if r["agency"] in ("*", "GAMI") and not arabic.search(r["label"])
    }
    english = {
        r["alias"] for r in _ref("country_aliases.csv") if r["note"] != "former state" and not arabic.search(r["alias"])
    }
    for entry in entries:
        path = root / entry["path"]
        year = int(re.search(r"_(\d{4})\.csv$", entry["path"]).group(1))
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")  # UTF-8 without BOM
        text = raw.decode("utf-8").splitlines()
        assert text[0] == ";".join(aliases[0] for aliases in cfg["columns"].values())
        assert all(line.count(";") == len(cfg["columns"]) - 1 for line in text)
        assert (entry["sheet"], entry["header_row"]) == (None, 1)
        assert len(text) == 1 + entry["data_rows"] and 150 <= entry["lines"] <= 300
        bad = {b["excel_row"]: b["defect"] for b in entry["bad_rows"]}
        lines = _budget_lines(root, entry)
        total, currencies, plain = 0.0, Counter(), 0
        for excel_row, line in lines.items():
            amount, defect = line["amount"], bad.get(excel_row)
            if defect in ("missing_amount", "text_amount"):
                assert _number(amount, "eu") is None
            else:
                assert EU_AMOUNT.match(amount), (excel_row, amount)
                value = _number(amount, "eu")
                total += value
                plain += value >= 1000 and "." not in amount  # "1234,56"
            assert line["fiscal_year"] == str(year)
            assert date.fromisoformat(line["transaction_date"]).year == year
            assert re.fullmatch(r"GAMI-P[0-9]{3}", line["program_code"])
            if defect != "unknown_country":
                assert line["partner_country"] in english
            if defect != "unknown_category":
                assert line["category"] in labels
            currencies[line["currency"]] += 1
            assert (line["currency"] == "PKR") == (defect == "no_fx_rate"), (excel_row, line)
        assert total == pytest.approx(entry["total_amount"], abs=0.005)
        totals = text[-1].split(";")
        amount_at = list(cfg["columns"]).index("amount")
        stated = totals[amount_at]
        assert totals[0] == "Total" and EU_AMOUNT.match(stated) and "." in stated
        assert _number(stated, "eu") == pytest.approx(entry["total_amount"])
        assert currencies["EUR"] > currencies["SAR"] > 0 and currencies[None] > 0
        assert plain > 0


def test_no_fx_rate_rows_are_pkr(inbox):
    root, manifest = inbox
    seen = 0
    for entry in manifest["files"]:
        if entry["kind"] != "budget" or entry["agency"] not in CONFIGS:
            continue
        lines = _budget_lines(root, entry)
        for b in entry["bad_rows"]:
            if b["defect"] == "no_fx_rate":
                assert b["column"] == "currency" and lines[b["excel_row"]]["currency"] == "PKR"
                assert _number(lines[b["excel_row"]]["amount"], _locale(entry["agency"])) > 0
                seen += 1
    assert seen >= 2 and "PKR" in ISO_CURRENCIES and "PKR" not in RATED_CURRENCIES


def test_corpus(tmp_path):
    manifest = samples.generate_corpus(tmp_path, total_lines=2000, n_files=4)
    files = manifest["files"]
    assert len(files) == 4 and sum(f["lines"] for f in files) == 2000
    assert [f["agency"] for f in files] == ["MOD", "MOI", "GIP", "MOF"]
    assert all(f["bad_rows"] == [] and f["kind"] == "budget" for f in files)
    assert len({f["path"] for f in files}) == 4
    for entry in files:
        _check_file(tmp_path, entry)


def test_corpus_is_workbooks_only(tmp_path):
    manifest = samples.generate_corpus(tmp_path, total_lines=70, n_files=7)
    files = manifest["files"]
    assert [f["agency"] for f in files] == ["MOD", "MOI", "GIP", "MOF", "SANG", "MOD", "MOI"]
    assert sum(f["lines"] for f in files) == 70
    assert all(f["path"].endswith(".xlsx") for f in files)
    assert Path(files[1]["path"]).name == "MOI_budget_1445_c001.xlsx"


def test_cli(tmp_path, capsys):
    assert samples.main(["--inbox", str(tmp_path), "--corpus-lines", "50", "--corpus-files", "5"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "MANIFEST.json").read_text())["files"]) == 5

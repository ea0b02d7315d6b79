"""Each agency's sample files through the real reader and standardiser, against the generator's manifest;
invalid twins and mis-routed files fail loudly with a message, never a traceback."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from flows.process import FileTask, describe, process_file
from schemas.sources import SourceConfig, kind_name


def make_task(path: Path, source: SourceConfig, spec_from: SourceConfig | None = None) -> FileTask:
    digest, size, mtime = describe(path)
    spec = (spec_from or source).spec_for(path.name)
    return FileTask(path, f"{source.agency}/{path.name}", digest, "test", size, mtime, source, spec)


def source_of(sources, agency: str) -> SourceConfig:
    return next(s for s in sources if s.agency == agency)


def manifest_files(sample_inbox, kinds=("budget", "programs")):
    """The agencies' files (the reference workbook, kind years_across_columns, is tested in test_reference_samples)."""
    inbox, manifest = sample_inbox
    return [(inbox / f["path"], f) for f in manifest["files"] if f["kind"] in kinds]


def test_every_agency_has_budget_files(sample_inbox, sources):
    agencies = {f["agency"] for _, f in manifest_files(sample_inbox) if f["kind"] == "budget"}
    assert agencies == {s.agency for s in sources if any(kind_name(f) == "budget" for f in s.files)}
    assert {"MOD", "MOI", "GIP", "MOF", "SANG", "GAMI", "PLEDGES"} <= agencies
    assert len(manifest_files(sample_inbox)) == N_SAMPLE_FILES  # keeps the per-file parametrisation honest


N_SAMPLE_FILES = 17  # the six agencies' 12 budgets and 4 programme lists, and the pledge tracker (samples/tracker.py)


@pytest.mark.parametrize("index", range(N_SAMPLE_FILES))
def test_sample_file_matches_manifest(sample_inbox, sources, reference, index):
    files = manifest_files(sample_inbox)
    path, entry = files[index]
    batch = process_file(make_task(path, source_of(sources, entry["agency"])), reference)
    assert batch.status == "loaded", batch.message
    c = batch.counts
    # conservation: every row below the header is loaded, quarantined or skipped, exactly once
    assert c["rows_read"] == entry["data_rows"] == c["rows_loaded"] + c["rows_quarantined"] + c["rows_skipped"]
    assert c["rows_skipped"] == entry["blank_rows"] + entry["totals_rows"] + entry.get("filtered_rows", 0)
    seen = list(batch.rows["excel_row"]) + list(batch.quarantined["excel_row"]) + list(batch.skipped["excel_row"])
    header = entry["header_row"]
    assert sorted(seen) == list(range(header + 1, header + 1 + entry["data_rows"]))
    # exactly the planted bad rows are quarantined, each with a blocking failure on that row
    assert sorted(batch.quarantined["excel_row"]) == sorted(b["excel_row"] for b in entry["bad_rows"])
    assert set(batch.failures["excel_row"].dropna().astype(int)) == {b["excel_row"] for b in entry["bad_rows"]}
    assert batch.header_row == header
    if entry["kind"] == "budget" and entry.get("total_amount") is not None:
        stated = batch.skipped.loc[batch.skipped["reason"] == "total", "stated_amount"]
        assert len(stated) == 1


DEFECT_RULES = {
    "missing_amount": {"required_missing"},
    "text_amount": {"amount_not_number"},
    "unknown_currency": {"currency_unknown"},
    "unknown_category": {"category_unmapped"},
    "unknown_country": {"country_unknown"},
    "negative_allocation": {"allocation_negative"},
    "date_out_of_range": {"date_outside_period"},
    "no_fx_rate": {"fx_rate_missing"},
    "duplicate_program_code": {"program_code_duplicate"},
}


def test_each_defect_gets_its_rule(sample_inbox, sources, reference):
    checked = set()
    for path, entry in manifest_files(sample_inbox):
        batch = process_file(make_task(path, source_of(sources, entry["agency"])), reference)
        rules_by_row = {int(row): set(group) for row, group in batch.failures.groupby("excel_row")["rule"]}
        for bad in entry["bad_rows"]:  # the tracker's entry names each row's rule (samples/tracker.py)
            expected = {bad["rule"]} if "rule" in bad else DEFECT_RULES[bad["defect"]]
            assert rules_by_row[bad["excel_row"]] == expected, (path.name, bad)
            checked.add(bad["defect"])
    assert set(DEFECT_RULES) <= checked


def test_budget_files_of_one_agency_are_rejected_by_every_other_reader(sample_inbox, sources, reference):
    """A mis-routed file fails loudly (header not found), it does not load quietly."""
    budget = {f["agency"]: p for p, f in manifest_files(sample_inbox) if f["kind"] == "budget"}
    for owner, path in budget.items():
        for other in sources:
            spec = next((s for s in other.files if kind_name(s) == "budget"), None)
            if other.agency == owner or spec is None:
                continue
            digest, size, mtime = describe(path)
            task = FileTask(path, f"{other.agency}/{path.name}", digest, "t", size, mtime, other, spec)
            batch = process_file(task, reference)
            assert batch.status == "failed", f"{other.agency}'s reader accepted {owner}'s {path.name}"
            assert batch.failures["rule"].iloc[0] in {"header_not_found", "file_unreadable"}
            assert path.name in batch.message


# ---- invalid twins: the same files, broken the ways real files break --------------------------------------
def _twin_truncated(path: Path, dest: Path) -> None:
    dest.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])


def _twin_header_renamed(path: Path, dest: Path, entry: dict) -> None:
    if path.suffix == ".csv":
        text = path.read_text(encoding="utf-8-sig").splitlines()
        at = entry["header_row"] - 1  # the tracker's header is below its SYNTHETIC notice
        text[at] = ",".join(f"Col{i}" for i in range(len(text[at].split(","))))
        dest.write_text("\n".join(text) + "\n", encoding="utf-8")
        return
    wb = openpyxl.load_workbook(path)
    ws = wb[entry["sheet"]]
    for cell in ws[entry["header_row"]]:
        if cell.value is not None:
            cell.value = f"Renamed {cell.column}"
    wb.save(dest)


def _twin_wrong_encoding(path: Path, dest: Path) -> None:
    dest.write_bytes(path.read_text(encoding="utf-8-sig").encode("utf-16"))


@pytest.mark.parametrize("breakage", ["truncated", "header_renamed", "wrong_encoding"])
def test_invalid_twins_fail_with_a_message(sample_inbox, sources, reference, tmp_path, breakage):
    done = 0
    for path, entry in manifest_files(sample_inbox):
        if breakage == "wrong_encoding" and path.suffix != ".csv":
            continue
        if breakage == "truncated" and path.suffix == ".csv":
            continue
        dest = tmp_path / path.name
        {
            "truncated": lambda: _twin_truncated(path, dest),
            "header_renamed": lambda: _twin_header_renamed(path, dest, entry),
            "wrong_encoding": lambda: _twin_wrong_encoding(path, dest),
        }[breakage]()
        batch = process_file(make_task(dest, source_of(sources, entry["agency"])), reference)
        assert batch.status == "failed", (breakage, path.name)
        assert batch.message.startswith(path.name)
        assert "Traceback" not in batch.message
        assert batch.counts["rows_loaded"] == 0
        done += 1
    assert done >= 3


def test_empty_and_non_excel_files_fail_cleanly(sources, reference, tmp_path):
    mod = source_of(sources, "MOD")
    for name, content in (
        ("MOD_budget_empty.xlsx", b""),
        ("MOD_budget_text.xlsx", b"this is not a workbook"),
        ("MOD_programs_empty.csv", b""),
    ):
        path = tmp_path / name
        path.write_bytes(content)
        batch = process_file(make_task(path, mod), reference)
        assert batch.status == "failed" and name in batch.message


def test_a_file_no_pattern_claims_is_recorded_not_dropped(sources, reference, tmp_path):
    path = tmp_path / "notes.pdf"
    path.write_bytes(b"%PDF-1.4")
    batch = process_file(make_task(path, source_of(sources, "MOD")), reference)
    assert batch.status == "failed" and batch.failures["rule"].iloc[0] == "no_source_config"
    assert "notes.pdf" in batch.message


def test_csv_keeps_row_numbers_across_empty_lines_and_reads_na_as_text(sources, reference, tmp_path):
    gami = source_of(sources, "GAMI")
    path = tmp_path / "GAMI_budget_2030.csv"
    path.write_text(
        "Project;Partner;Domain;Year;Amount (EUR '000);Currency;Booking Date\n"
        "GAMI-P001;France;Cyber;2024;1.250,5;EUR;2024-03-15\n"
        "\n"
        "GAMI-P002;Atlantis;Cyber;2024;10,0;EUR;2024-03-15\n"
        "GAMI-P003;NA;Cyber;2024;n/a;EUR;2024-03-15\n",
        encoding="utf-8",
    )
    batch = process_file(make_task(path, gami), reference)
    assert batch.counts == {"rows_read": 4, "rows_loaded": 1, "rows_quarantined": 2, "rows_skipped": 1}
    assert batch.rows["amount_original"].tolist() == [1_250_500.0]  # European format, thousands from the header
    assert batch.skipped["excel_row"].tolist() == [3]
    rules = {int(r): set(g) for r, g in batch.failures.groupby("excel_row")["rule"]}
    assert rules == {4: {"country_unknown"}, 5: {"amount_not_number"}}  # "NA" is Namibia, "n/a" is not a number

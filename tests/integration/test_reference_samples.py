"""The synthetic SIPRI-layout workbook through the real reader and sources/sipri.yaml, against the generator's
manifest; its invalid twins (renamed, a sheet missing, a header renamed, truncated) fail with a message."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from flows.process import FileTask, describe, process_file


def _entry(sample_inbox):
    inbox, manifest = sample_inbox
    entry = next(
        f for f in manifest["files"] if f["kind"] == "years_across_columns" and f["bad_rows"]
    )  # the newest edition
    return inbox / entry["path"], entry


def _process(path: Path, sources, reference, key: str | None = None):
    src = next(s for s in sources if s.agency == "SIPRI")
    digest, size, mtime = describe(path)
    return process_file(
        FileTask(path, key or f"SIPRI/{path.name}", digest, "t", size, mtime, src, src.spec_for(path.name)), reference
    )


@pytest.fixture(scope="module")
def batch(sample_inbox, sources, reference):
    path, _ = _entry(sample_inbox)
    return _process(path, sources, reference)


def test_counts_match_the_manifest(batch, sample_inbox):
    _, entry = _entry(sample_inbox)
    c = batch.counts
    assert batch.status == "loaded"
    assert c["rows_read"] == entry["data_rows"] == c["rows_loaded"] + c["rows_quarantined"] + c["rows_skipped"]
    assert c["rows_loaded"] == entry["lines"] and c["rows_quarantined"] == 0
    assert len(batch.tables["ref_series_footnote"]) == entry["footnote_rows"]
    edition = batch.tables["ref_series_edition"].iloc[0]
    assert (edition["edition"], edition["first_year"], edition["last_year"], edition["price_base_year"]) == (
        "2008-2025",
        2008,
        2025,
        2024,
    )
    assert edition["sheets_ignored"] == ["Front page"] and "Front page" in batch.message


def test_only_the_planted_cell_is_reported_and_it_loads_with_a_warning(batch, sample_inbox):
    _, entry = _entry(sample_inbox)
    f = batch.failures
    planted = entry["bad_rows"][0]
    assert len(f) == 1
    row = f.iloc[0]
    assert (row["sheet"], int(row["excel_row"]), row["rule"], row["severity"], row["value"]) == (
        planted["sheet"],
        planted["excel_row"],
        "value_not_number",
        "warn",
        "n/a",
    )
    v = batch.tables["ref_series_value"]
    cell = v[
        (v["sheet"] == planted["sheet"]) & (v["excel_row"] == planted["excel_row"]) & (v["year"] == planted["year"])
    ].iloc[0]
    assert cell["status"] == "invalid" and np.isnan(cell["value"]) and cell["cell"] == row["cell"]


def test_marks_become_statuses_never_zero(batch):
    v = batch.tables["ref_series_value"]
    cur = v[v["measure"] == "milex_current_usd"]
    qatar = cur[(cur["entity_name"] == "Qatar") & cur["year"].between(2011, 2020)]
    assert len(qatar) == 10 and set(qatar["status"]) == {"missing"} and qatar["value"].isna().all()
    south_sudan = cur[(cur["entity_name"] == "South Sudan") & (cur["year"] < 2011)]
    assert set(south_sudan["status"]) == {"not_existing"} and south_sudan["value"].isna().all()
    assert (v.loc[v["status"] != "value", "value"].isna()).all()
    assert not (v["value"] == 0).any()
    countries = cur[cur["entity_type"] == "country"]
    assert countries["country_iso3"].notna().all()  # every name resolves (Korea, South; Türkiye; ...)
    ok = countries[countries["status"] == "value"]
    np.testing.assert_allclose(ok["value_base"], ok["value"] * 1e6)
    regions = v[v["entity_type"] == "region"]
    assert set(regions["sheet"]) == {"Regional totals"}  # region rows separated from the country sheets
    assert not set(regions["entity_name"]) & set(countries["entity_name"])
    assert set(v.loc[v["entity_name"] == "Jordan", "region"]) == {"Middle East"}
    assert set(v.loc[v["entity_name"] == "Morocco", "subregion"]) == {"North Africa"}


def _twin(path: Path, dest: Path, how: str) -> Path:
    if how == "truncated":
        dest.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
        return dest
    wb = openpyxl.load_workbook(path)
    if how == "sheet_missing":
        del wb["Current US$"]
    elif how == "header_renamed":
        ws = wb["Share of GDP"]
        for row in ws.iter_rows():
            for cell in row:
                if cell.value == "Country":
                    cell.value = "Nation"
    wb.save(dest)
    return dest


@pytest.mark.parametrize(
    "how, rule, text",
    [
        ("truncated", "file_unreadable", "not a readable Excel workbook"),
        ("sheet_missing", "sheet_missing", "no sheet matches 'Current US\\$'"),
        ("header_renamed", "header_not_found", "[Share of GDP]: no 'Country' header cell"),
    ],
)
def test_invalid_twins_fail_with_a_message(sample_inbox, sources, reference, tmp_path, how, rule, text):
    path, _ = _entry(sample_inbox)
    batch = _process(_twin(path, tmp_path / path.name, how), sources, reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == [rule]
    assert batch.message.startswith(path.name) and text in batch.message and "Traceback" not in batch.message
    assert batch.counts["rows_loaded"] == 0 and not batch.tables


def test_a_renamed_file_cannot_tell_its_edition(sample_inbox, sources, reference, tmp_path):
    path, _ = _entry(sample_inbox)
    dest = tmp_path / "SIPRI-Milex-data-latest.xlsx"
    shutil.copyfile(path, dest)
    batch = _process(dest, sources, reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["edition_unknown"]
    assert "does not tell the edition" in batch.message and "publisher's file name" in batch.message


def test_a_file_whose_years_are_not_its_name_s_edition_fails(sample_inbox, sources, reference, tmp_path):
    """The content decides the edition: the sample 2008-2024 workbook renamed 2009-2024 (a file another edition's
    name was given to) is refused, naming both spans; under its own name it loads."""
    path, _ = _entry(sample_inbox)
    first, last = path.stem.rsplit("-", 2)[-2:]
    dest = tmp_path / path.name.replace(f"{first}-{last}", f"{int(first) + 1}-{last}")
    shutil.copyfile(path, dest)
    batch = _process(dest, sources, reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["edition_mismatch"]
    assert batch.message == (
        f"{dest.name}: the name says edition {int(first) + 1}-{last} (first_year {int(first) + 1}) but the sheets "
        f"hold the years {first}-{last}: not loaded. Keep the publisher's file under its own name"
    )
    assert batch.counts["rows_loaded"] == 0 and not batch.tables
    assert _process(path, sources, reference).status == "loaded"

"""Two files claiming one edition of a publisher's dataset (issue: a tampered copy named so that it sorts first took
the edition and the genuine file was refused). File order never decides (flows/editions.py)."""

from __future__ import annotations

import shutil

import duckdb
import openpyxl
import pytest

from flows.nightly import run_nightly

pytestmark = pytest.mark.slow
GENUINE = "SIPRI-Milex-data-2008-2024.xlsx"


def q(wh, sql, params=None):
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture
def sipri_only(sample_inbox, tmp_path):
    """Only the publisher's folder of the sample inbox: its two editions, 2008-2024 and 2008-2025."""
    inbox, _ = sample_inbox
    dest = tmp_path / "inbox"
    shutil.copytree(inbox / "sipri", dest / "sipri")
    assert (dest / "sipri" / GENUINE).is_file()
    return dest


def _tampered(src, dest, factor=1000):
    """A copy of the workbook whose numbers are multiplied: same name pattern, same title rows, other figures."""
    wb = openpyxl.load_workbook(src)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                number = isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool)
                if number and cell.row > 6 and not (1900 <= cell.value <= 2100):  # not the year headers
                    cell.value = cell.value * factor
    wb.save(dest)


def _editions(wh):
    return q(wh, "SELECT edition, file_key FROM ref_series_edition ORDER BY edition")


def test_a_tampered_copy_that_sorts_first_takes_nothing(sipri_only, tmp_path):
    folder = sipri_only / "sipri"
    tampered = folder / "SIPRI-Milex-data-2008-2024 (tampered copy).xlsx"
    _tampered(folder / GENUINE, tampered)
    assert sorted([tampered.name, GENUINE])[0] == tampered.name  # the copy comes first in file order
    wh = tmp_path / "wh.duckdb"

    night = run_nightly(inbox=str(sipri_only), warehouse=str(wh))
    assert night.outcome == "partial"
    failed = {f["file"]: f["message"] for f in night.files if f["status"] == "failed"}
    assert set(failed) == {f"SIPRI/{tampered.name}", f"SIPRI/{GENUINE}"}  # both: neither wins by its name
    for message in failed.values():
        assert f"SIPRI/{tampered.name}" in message and f"SIPRI/{GENUINE}" in message and "differ" in message
    assert _editions(wh) == [("2008-2025", "SIPRI/SIPRI-Milex-data-2008-2025.xlsx")]
    assert q(wh, "SELECT count(*) FROM ref_series_value WHERE edition = '2008-2024'") == [(0,)]
    rules = q(
        wh,
        "SELECT DISTINCT rule FROM audit_validation_failure WHERE status = 'open' AND file_key IN (?, ?)",
        [f"SIPRI/{tampered.name}", f"SIPRI/{GENUINE}"],
    )
    assert rules == [("edition_duplicate",)]
    assert q(wh, "SELECT bool_and(reconciles) FROM file_reconciliation") == [(True,)]

    tampered.unlink()  # the steward decides: the publisher's file stays
    after = run_nightly(inbox=str(sipri_only), warehouse=str(wh))
    assert after.outcome == "success"
    assert _editions(wh) == [("2008-2024", f"SIPRI/{GENUINE}"), ("2008-2025", "SIPRI/SIPRI-Milex-data-2008-2025.xlsx")]
    assert q(wh, "SELECT status FROM audit_validation_failure WHERE file_key = ?", [f"SIPRI/{GENUINE}"]) == [
        ("resolved",)
    ]


def test_a_copy_with_the_same_figures_loads_once(sipri_only, tmp_path):
    folder = sipri_only / "sipri"
    copy = folder / "SIPRI-Milex-data-2008-2024 (1).xlsx"
    shutil.copyfile(folder / GENUINE, copy)
    wh = tmp_path / "wh.duckdb"
    night = run_nightly(inbox=str(sipri_only), warehouse=str(wh))
    failed = {f["file"]: f["message"] for f in night.files if f["status"] == "failed"}
    loaded_from = dict(_editions(wh))["2008-2024"]
    assert len(failed) == 1 and loaded_from in {f"SIPRI/{copy.name}", f"SIPRI/{GENUINE}"}
    [(key, message)] = failed.items()
    assert key != loaded_from and f"also in {loaded_from} with the same figures" in message

    # a later night, the steward having removed the duplicate: a file with other figures for the loaded edition is
    # refused, saying the figures differ from the loaded file's
    (folder / key.split("/", 1)[1]).unlink()
    other = folder / "SIPRI-Milex-data-2008-2024 (revised).xlsx"
    _tampered(folder / loaded_from.split("/", 1)[1], other, factor=2)
    later = run_nightly(inbox=str(sipri_only), warehouse=str(wh))
    msg = {f["file"]: f["message"] for f in later.files if f["status"] == "failed"}[f"SIPRI/{other.name}"]
    assert f"already loaded from {loaded_from} and this file's figures differ" in msg
    assert dict(_editions(wh))["2008-2024"] == loaded_from

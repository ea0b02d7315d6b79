"""Control totals between datasets: a summary dataset states, per donor, the total of another dataset's pledge lines.
Both are declared in YAML only (kind records, key control_totals); the check runs in the staging copy like a totals
row: a total the lines do not make is a warning on the stating record (the records load either way), and it is
resolved once the lines make it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from flows.process import FileTask, describe, process_file
from schemas.sources import SourceConfigError, load_sources
from warehouse.controls import RULE, check_control_totals
from warehouse.store import LoadInfo, Staging

YAML = """
agency: DONORS
name_en: Donor pledges (test)
inbox_dir: donors
files:
  - kind: records
    pattern: "lines_*.csv"
    dataset: pledge_lines
    columns:
      donor: {header: [Donor], required: true}
      amount: {header: [Amount], type: decimal, required: true}
  - kind: records
    pattern: "summary_*.csv"
    dataset: pledge_summary
    columns:
      donor_name: {header: [Donor], required: true}
      total: {header: [Total pledged], type: decimal}
    control_totals:
      - {column: total, by: [donor_name], dataset: pledge_lines, sum: amount, match_by: [donor], tolerance: 0.001}
"""
SUMMARY = "Donor,Total pledged\nAlpha,150\nBravo,31\nDelta,5\nCharlie,\n"  # rows 2..5
LINES_V1 = "Donor,Amount\nAlpha,100\nAlpha,50.05\nBravo,30\nCharlie,10\n"  # Alpha within 0.1 %, Bravo off by 1
LINES_V2 = LINES_V1 + "Bravo,1\n"


@pytest.fixture
def donors(tmp_path):
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "donors.yaml").write_text(YAML, encoding="utf-8")
    (tmp_path / "donors").mkdir()
    return load_sources(tmp_path / "sources"), tmp_path / "donors"


def _night(wh: Path, sources, reference, files: dict[Path, str], load_id: str, when: datetime) -> int:
    [src] = sources
    batches = []
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        digest, size, mtime = describe(path)
        task = FileTask(path, f"DONORS/{path.name}", digest, "test", size, mtime, src, src.spec_for(path.name))
        batch = process_file(task, reference)
        batch.archive_path = str(path)
        batches.append(batch)
    staging = Staging(wh)
    try:
        load = LoadInfo(load_id, when, None, "test", str(wh.parent))
        stored = staging.load_batches(batches, load, when, None)
        assert [b.status for b in stored] == ["loaded"] * len(files), [b.message for b in stored]
        mismatched = check_control_totals(staging.con, sources, load_id, when)
        staging.check()
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    return mismatched


def _controls(wh: Path) -> dict[int, tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = con.execute(
            "SELECT excel_row, status, severity, file_key, column_name, message, first_seen_load, failure_id "
            "FROM audit_validation_failure WHERE rule = ?",
            [RULE],
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_a_total_the_other_dataset_does_not_make_is_a_warning_on_its_record(donors, reference, tmp_path):
    sources, folder = donors
    wh = tmp_path / "warehouse.duckdb"
    summary, lines = folder / "summary_2025.csv", folder / "lines_2025.csv"
    t1, t2 = datetime(2026, 1, 1), datetime(2026, 1, 2)

    assert _night(wh, sources, reference, {summary: SUMMARY, lines: LINES_V1}, "L1", t1) == 2
    first = _controls(wh)
    assert sorted(first) == [3, 4]  # Bravo (31 stated, 30 made) and Delta (no lines); Alpha holds, Charlie states none
    bravo, delta = first[3], first[4]
    assert bravo[:4] == ("open", "warn", "DONORS/summary_2025.csv", "total")
    assert "states 31.00 as the total of amount for donor_name=Bravo" in bravo[4]
    assert "the 1 record(s) of dataset pledge_lines with that key sum to 30.00 (difference 1.00)" in bravo[4]
    assert "dataset pledge_lines has no records with that key" in delta[4]
    with duckdb.connect(str(wh), read_only=True) as con:  # a warning: every record loaded
        assert con.execute("SELECT count(*) FROM records_pledge_summary").fetchone() == (4,)

    # the next night brings the missing Bravo line (the summary is unchanged and not re-read)
    assert _night(wh, sources, reference, {lines: LINES_V2}, "L2", t2) == 1
    second = _controls(wh)
    assert second[3][0] == "resolved"
    assert second[4][0] == "open" and second[4][5] == "L1" and second[4][6] == delta[6]  # the same warning


@pytest.mark.parametrize(
    "change, says",
    [
        ("dataset: pledge_lines,", "no source declares dataset 'pledge_line'"),
        ("sum: amount,", "'donor' is not a number column of dataset pledge_lines"),
        ("match_by: [donor],", "dataset pledge_lines has no column(s) ['donr']"),
        ("column: total,", "column 'donor_name' must be an integer, decimal or money column"),
        ("by: [donor_name],", "by names column(s) ['nobody']"),
    ],
)
def test_a_control_that_names_nothing_real_is_refused_with_its_place(change, says, tmp_path):
    broken = {
        "dataset: pledge_lines,": "dataset: pledge_line,",
        "sum: amount,": "sum: donor,",
        "match_by: [donor],": "match_by: [donr],",
        "column: total,": "column: donor_name,",
        "by: [donor_name],": "by: [nobody],",
    }[change]
    (tmp_path / "donors.yaml").write_text(YAML.replace(change, broken), encoding="utf-8")
    with pytest.raises(SourceConfigError) as caught:
        load_sources(tmp_path)
    assert says in str(caught.value) and "control_totals[0]" in str(caught.value)

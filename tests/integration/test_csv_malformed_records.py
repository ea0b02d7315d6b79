"""A copy of GAMI's sample budget CSV with broken records (a field too many, a field missing, a stray line break):
the file loads, exactly those records are quarantined with rule record_malformed at their line numbers, the planted
defects keep their own rules, the counts reconcile, and the broken records reach the steward workbook."""

from __future__ import annotations

import shutil
from datetime import datetime

import openpyxl
import pytest

from flows.nightly_steps import _dimensions
from flows.process import FileTask, describe, process_file
from warehouse.export import ISSUE_COLUMNS, export_failures
from warehouse.store import LoadInfo, Staging

NAME = "GAMI_budget_2024.csv"
EXTRA, MISSING, BROKEN = 6, 41, 90  # lines of the sample file given a field too many, a field too few, a line break


@pytest.fixture
def broken(sample_inbox, sources, tmp_path):
    """The sample file with three broken records, its manifest entry and its batch."""
    inbox, manifest = sample_inbox
    entry = next(f for f in manifest["files"] if f["path"] == f"gami/{NAME}")
    path = tmp_path / NAME
    shutil.copyfile(inbox / entry["path"], path)
    lines = path.read_bytes().split(b"\n")  # line n is lines[n - 1]
    planted = {b["excel_row"] for b in entry["bad_rows"]}
    assert not {EXTRA, MISSING, BROKEN, BROKEN + 1} & planted and entry["header_row"] == 1
    lines[EXTRA - 1] += b";surplus"
    lines[MISSING - 1] = lines[MISSING - 1].rsplit(b";", 1)[0]
    cut = lines[BROKEN - 1].index(b";", lines[BROKEN - 1].index(b";") + 1)  # inside the record, after its 2nd field
    lines[BROKEN - 1 : BROKEN] = [lines[BROKEN - 1][:cut], lines[BROKEN - 1][cut:]]
    path.write_bytes(b"\n".join(lines))
    gami = next(s for s in sources if s.agency == "GAMI")
    digest, size, mtime = describe(path)
    task = FileTask(path, f"GAMI/{NAME}", digest, "test", size, mtime, gami, gami.spec_for(NAME))
    return path, lines, entry, task


def test_broken_records_are_quarantined_at_their_lines_and_the_file_loads(broken, reference):
    path, lines, entry, task = broken
    batch = process_file(task, reference)
    assert batch.status == "loaded", batch.message
    c = batch.counts
    # every record of the file is a row: the 160 below the header, one of them now on two lines
    assert c["rows_read"] == entry["data_rows"] + 1 == c["rows_loaded"] + c["rows_quarantined"] + c["rows_skipped"]
    malformed = batch.failures[batch.failures["rule"] == "record_malformed"]
    assert malformed["excel_row"].tolist() == [EXTRA, MISSING, BROKEN, BROKEN + 1]
    assert malformed["value"].tolist() == [lines[n - 1].decode() for n in (EXTRA, MISSING, BROKEN, BROKEN + 1)]
    messages = malformed["message"].tolist()
    assert messages[0].startswith(f"Line {EXTRA} has 9 field(s) where the header has 8: '{lines[EXTRA - 1].decode()}'")
    assert messages[1].startswith(f"Line {MISSING} has 7 field(s) where the header has 8")
    assert all(m.endswith("send it again") for m in messages)
    assert all(
        m.startswith(f"Lines {BROKEN}-{BROKEN + 1} look like one record broken in two by a line break")
        for m in messages[2:]
    )
    # the planted defects keep their rules, at their lines (one line further on after the stray line break)
    moved = {b["excel_row"] + (b["excel_row"] > BROKEN) for b in entry["bad_rows"]}
    others = batch.failures[batch.failures["rule"] != "record_malformed"]
    totals_row = len(lines) - 1  # the last line (the file ends with a line end); its total now exceeds the lines'
    assert set(others.loc[others["severity"] == "block", "excel_row"]) == moved
    assert others.loc[others["severity"] == "warn", ["excel_row", "rule"]].values.tolist() == [
        [totals_row, "totals_mismatch"]
    ]
    assert sorted(batch.quarantined["excel_row"]) == sorted({EXTRA, MISSING, BROKEN, BROKEN + 1} | moved)
    seen = [*batch.rows["excel_row"], *batch.quarantined["excel_row"], *batch.skipped["excel_row"]]
    assert sorted(seen) == list(range(2, 2 + c["rows_read"]))
    assert batch.rows["program_code"].notna().all()


def test_broken_records_reach_the_steward_workbook(broken, reference, sources, tmp_path):
    path, lines, _, task = broken
    batch = process_file(task, reference)
    batch.archive_path = str(path)
    wh = tmp_path / "wh.duckdb"
    staging = Staging(wh)
    try:
        for table, frame in _dimensions(reference, sources).items():
            staging.replace_dimension(table, frame)
        load = LoadInfo("L1", datetime.now(), None, "test", str(tmp_path))
        [stored] = staging.load_batches([batch], load, datetime.now(), None)
        assert stored.status == "loaded"
        staging.check()
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    [workbook] = export_failures(wh, tmp_path / "out")
    ws = openpyxl.load_workbook(workbook)["Issues"]
    col = {name: i for i, name in enumerate(ISSUE_COLUMNS)}
    issues = [r for r in ws.iter_rows(min_row=2, values_only=True) if r[col["Rule"]] == "record_malformed"]
    assert sorted(r[col["Row"]] for r in issues) == [EXTRA, MISSING, BROKEN, BROKEN + 1]
    by_row = {r[col["Row"]]: r for r in issues}
    assert by_row[EXTRA][col["Message"]].startswith(f"Line {EXTRA} has 9 field(s) where the header has 8")
    assert by_row[EXTRA][col["Value"]] == lines[EXTRA - 1].decode()

"""The failure lifecycle across versions of a file, as a steward lives it: failures that no longer occur in a new
version are resolved; those that still occur stay open under the same id and keep their first-seen load and date;
one that comes back after it was resolved is open again. GAMI's sample CSV, three versions, loaded one after the
other into one warehouse through the real staging and publish."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flows.nightly_steps import _dimensions
from flows.process import FileTask, describe, process_file
from warehouse import file_audit
from warehouse.store import LoadInfo, Staging

NAME = "GAMI_budget_2025.csv"


def _load(wh: Path, path: Path, load_id: str, when: datetime, reference, sources) -> None:
    gami = next(s for s in sources if s.agency == "GAMI")
    digest, size, mtime = describe(path)
    task = FileTask(path, f"GAMI/{NAME}", digest, "test", size, mtime, gami, gami.spec_for(NAME))
    batch = process_file(task, reference)
    batch.archive_path = str(path)
    staging = Staging(wh)
    try:
        for table, frame in _dimensions(reference, sources).items():
            staging.replace_dimension(table, frame)
        load = LoadInfo(load_id, when, None, "test", str(path.parent))
        [stored] = staging.load_batches([batch], load, when, None)
        assert stored.status == "loaded", stored.message
        staging.check()
        staging.publish()
    except BaseException:
        staging.discard()
        raise


def _failures(wh: Path) -> dict[tuple[int, str], dict]:
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = con.execute(
            "SELECT excel_row, rule, failure_id, status, first_seen_load, last_seen_load, first_seen_at, resolved_at "
            "FROM audit_validation_failure WHERE severity = 'block'"
        ).fetchall()
    keys = ["failure_id", "status", "first_seen_load", "last_seen_load", "first_seen_at", "resolved_at"]
    return {(r[0], r[1]): dict(zip(keys, r[2:], strict=True)) for r in rows}


@pytest.fixture
def versions(sample_inbox, tmp_path):
    """Version 1 is the sample; version 2 has the missing amount of one planted row filled in; version 3 is
    version 1 again (the steward's fix undone by the agency's next delivery)."""
    inbox, manifest = sample_inbox
    entry = next(f for f in manifest["files"] if f["path"] == f"gami/{NAME}")
    fixed_row = next(b["excel_row"] for b in entry["bad_rows"] if b["defect"] == "missing_amount")
    original = (inbox / entry["path"]).read_bytes()
    lines = original.split(b"\n")
    fields = lines[fixed_row - 1].split(b";")
    assert fields[5] == b""  # the amount column of the planted row
    fields[5] = b"12,50"
    lines[fixed_row - 1] = b";".join(fields)
    return original, b"\n".join(lines), fixed_row, {b["excel_row"] for b in entry["bad_rows"]}


def test_failures_resolve_recur_and_keep_their_first_seen_date(versions, reference, sources, tmp_path):
    v1, v2, fixed_row, planted = versions
    wh, path = tmp_path / "warehouse.duckdb", tmp_path / "drop" / NAME
    path.parent.mkdir()
    t1 = datetime(2026, 1, 1, 2, 0)
    t2, t3 = t1 + timedelta(days=1), t1 + timedelta(days=2)

    path.write_bytes(v1)
    _load(wh, path, "L1", t1, reference, sources)
    first = _failures(wh)
    assert {row for row, _ in first} == planted
    assert {f["status"] for f in first.values()} == {"open"}
    [fixed] = [key for key in first if key[0] == fixed_row]

    path.write_bytes(v2)  # a new version of the same file: one failure fixed, the others still there
    _load(wh, path, "L2", t2, reference, sources)
    second = _failures(wh)
    assert second.keys() == first.keys()
    assert second[fixed]["status"] == "resolved" and second[fixed]["resolved_at"] == t2
    for key in first.keys() - {fixed}:
        assert second[key]["status"] == "open", key
        assert second[key]["failure_id"] == first[key]["failure_id"], key  # the same failure, not a new one
        assert (second[key]["first_seen_load"], second[key]["first_seen_at"]) == ("L1", t1), key
        assert second[key]["last_seen_load"] == "L2" and second[key]["resolved_at"] is None, key

    path.write_bytes(v1)  # the fixed failure comes back
    _load(wh, path, "L3", t3, reference, sources)
    third = _failures(wh)
    assert third[fixed]["status"] == "open" and third[fixed]["resolved_at"] is None
    assert third[fixed]["failure_id"] == first[fixed]["failure_id"] and third[fixed]["last_seen_load"] == "L3"
    assert (third[fixed]["first_seen_load"], third[fixed]["first_seen_at"]) == ("L1", t1)
    assert {f["status"] for f in third.values()} == {"open"}


def _every_failure(wh: Path) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute("SELECT * FROM audit_validation_failure ORDER BY failure_id").fetchall()


def test_failures_stored_a_few_rows_at_a_time_are_the_same(versions, reference, sources, tmp_path, monkeypatch):
    """A sheet whose every row fails is stored a slice of rows at a time (FAILURE_SLICE): with slices of two
    failures, every version gives exactly the rows that one slice gives (resolved, kept, first seen)."""
    v1, v2, _, _ = versions
    got: dict[int, list] = {}
    default = file_audit.FAILURE_SLICE
    for size in (default, 2):
        monkeypatch.setattr(file_audit, "FAILURE_SLICE", size)
        wh, path = tmp_path / f"wh{size}.duckdb", tmp_path / f"drop{size}" / NAME
        path.parent.mkdir()
        for n, version in enumerate((v1, v2, v1)):
            path.write_bytes(version)
            when = datetime(2026, 1, 1 + n, 2, 0)
            _load(wh, path, f"L{n}", when, reference, sources)
            got.setdefault(size, []).append(_every_failure(wh))
    assert len(got[default][0]) >= 3
    assert got[2] == got[default]


@pytest.mark.parametrize(
    ("rows", "size", "want"),
    [
        ([2, 2, 3, 5, 5, 5, 9], 2, [(None, 3), (3, 5), (5, 9), (9, None)]),
        ([5, 5, 5, 5], 2, [(None, 5), (5, None)]),
        ([4, 3, None, 2], 3, [(None, None)]),
        ([None, None], 1, [(None, None)]),
        ([7, 1, 4], 1, [(None, 4), (4, 7), (7, None)]),
    ],
)
def test_row_slices_keep_a_row_whole_and_cover_every_row(rows, size, want):
    series = pd.Series(rows, dtype="Int64")
    assert file_audit.row_slices(series, size) == want

"""What the quiet-night check remembers so that a night with nothing new reads no table that grows with the lines
(warehouse/quiet.py): the publishing night's answer about rates to freeze (settled_rates), given only when that
night's own lock ran for the version published, and the dimensions found the same (dimensions_changed), which are
compared again whenever the frame or the version differs. Whatever is skipped must be provably what the check
would have found."""

from __future__ import annotations

import json
import os
from datetime import datetime

import duckdb
import pandas as pd
import pytest

from tests.unit.test_quiet_rates_memo import add_lines
from warehouse import quiet
from warehouse.ddl import apply_ddl

AS_OF = datetime(2025, 1, 1, 2)


def _mark(con: duckdb.DuckDBPyConnection, seq: int, as_of: datetime) -> None:
    con.execute(
        "INSERT OR REPLACE INTO warehouse_meta VALUES (?, ?)",
        [quiet.LOCK_MARK, json.dumps({"seq": seq, "as_of": as_of.isoformat()})],
    )


@pytest.fixture
def staged(tmp_path):
    """A staging copy whose night locked the rates of its closed fiscal years (2022, 2023) at AS_OF, for seq 2."""
    path = tmp_path / "staging.duckdb"
    con = duckdb.connect(str(path))
    apply_ddl(con)
    add_lines(con)
    con.execute(
        f"INSERT INTO fx_rate_lock SELECT *, TIMESTAMP '2025-01-01', 'l' FROM ({quiet.CLOSED_RATES_SQL})",
        {"as_of": AS_OF},
    )
    _mark(con, 2, AS_OF)
    yield con
    con.close()


def test_the_publishing_night_leaves_what_counting_would_find(staged):
    settled = quiet.settled_rates(staged, 2, AS_OF)
    assert settled == {
        "as_of": AS_OF.isoformat(),
        "until": quiet._next_close(staged, AS_OF),
        "count": quiet._unlocked_now(staged, AS_OF),
    }
    assert settled["count"] == 0 and settled["until"] == "2031-06-30T00:00:00"


def test_no_answer_unless_tonights_lock_ran_for_this_version(staged):
    assert quiet.settled_rates(staged, 3, AS_OF) is None  # the lock recorded another version (a replay's publish)
    assert quiet.settled_rates(staged, 2, datetime(2025, 1, 2)) is None  # locked as of another moment
    staged.execute("DELETE FROM warehouse_meta WHERE key = ?", [quiet.LOCK_MARK])
    assert quiet.settled_rates(staged, 2, AS_OF) is None  # no record of a lock


def test_the_answer_is_remembered_for_the_published_version_only(staged, tmp_path, monkeypatch):
    published = tmp_path / "warehouse.duckdb"
    version = quiet.version_path(published, 2)
    version.parent.mkdir()
    settled = quiet.settled_rates(staged, 2, AS_OF)
    staged.execute("CHECKPOINT")
    version.write_bytes((tmp_path / "staging.duckdb").read_bytes())
    quiet.remember_settled_rates(published, 2, settled)
    counted: list[datetime] = []
    real = quiet._unlocked_now
    monkeypatch.setattr(quiet, "_unlocked_now", lambda con, as_of: counted.append(as_of) or real(con, as_of))
    memo = quiet.memo_path(published)
    with duckdb.connect(str(version), read_only=True) as con:
        assert quiet.unlocked_rates(con, version, memo, datetime(2026, 1, 1)) == 0 and not counted
    os.utime(version)  # rewritten: another file, counted
    with duckdb.connect(str(version), read_only=True) as con:
        assert quiet.unlocked_rates(con, version, memo, datetime(2026, 1, 1)) == 0 and len(counted) == 1


def test_dimensions_found_the_same_are_compared_again_only_when_the_frame_or_the_version_differs(tmp_path, monkeypatch):
    version = tmp_path / "000001.duckdb"
    frame = pd.DataFrame({"code": ["A", "B"], "name": ["Alpha", None], "month": [1, 7]})
    with duckdb.connect(str(version)) as con:
        con.execute("CREATE TABLE dim_x AS SELECT * FROM frame")
        con.execute("CREATE TABLE dim_y AS SELECT * FROM frame")
    memo = tmp_path / "memo.json"
    compared: list[str] = []
    real = quiet._differs
    monkeypatch.setattr(quiet, "_differs", lambda con, table, f: compared.append(table) or real(con, table, f))
    dims = {"dim_x": frame, "dim_y": frame.copy()}
    with duckdb.connect(str(version), read_only=True) as con:
        assert quiet.dimensions_changed(con, version, memo, dims) == [] and compared == ["dim_x", "dim_y"]
        assert quiet.dimensions_changed(con, version, memo, dims) == [] and len(compared) == 2  # remembered
        for changed, differs in (
            (frame.assign(name=["Alpha", "Beta"]), True),
            (frame.assign(name=["Alpha", ""]), True),  # '' is not NULL
            (frame.assign(month=["1", "7"]), False),  # another frame (text): compared, the same as text
        ):
            compared.clear()
            found = quiet.dimensions_changed(con, version, memo, {**dims, "dim_y": changed})
            assert compared == ["dim_y"] and found == (["dim_y"] if differs else [])
        compared.clear()
        assert quiet.dimensions_changed(con, version, memo, dims) == [] and compared == ["dim_y"]  # the last one kept
        assert quiet.dimensions_changed(con, version, memo, dims) == [] and compared == ["dim_y"]
    os.utime(version)  # another version file: everything compared again
    with duckdb.connect(str(version), read_only=True) as con:
        compared.clear()
        assert quiet.dimensions_changed(con, version, memo, dims) == [] and compared == ["dim_x", "dim_y"]

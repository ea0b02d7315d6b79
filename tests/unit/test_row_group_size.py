"""A warehouse opened read-write stores row groups of at most ``ROW_GROUP_SIZE`` rows (docs/adr/0016): each file's
commit then rewrites at most that many rows of the table's last row group, not up to DuckDB's default of 122,880.
With a key too; a file opened read-only is read as it is, whatever sizes its row groups have."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from schemas.settings import KEY_ENV, KEY_SECRET_ENV
from warehouse import connect

KEY = "correct horse battery staple 42"
ROWS = 150_000
GROUPS = """
    SELECT row_group_id, sum(count) FROM pragma_storage_info('t')
    WHERE column_id = 0 AND segment_type <> 'VALIDITY' GROUP BY ALL ORDER BY 1
"""


@pytest.fixture(params=["plain", "keyed"])
def key(request, monkeypatch):
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)
    if request.param == "keyed":
        monkeypatch.setenv(KEY_ENV, KEY)
    else:
        monkeypatch.delenv(KEY_ENV, raising=False)
    return request.param


def _groups(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [int(rows) for _, rows in con.execute(GROUPS).fetchall()]


def test_a_warehouse_opened_read_write_stores_row_groups_of_the_set_size(tmp_path: Path, key):
    path = tmp_path / "w.duckdb"
    with connect.session(path, read_only=False) as con:
        con.execute("CREATE TABLE t (i INTEGER, s VARCHAR)")
        con.execute(f"INSERT INTO t SELECT range, range::VARCHAR FROM range({ROWS})")
        assert _groups(con) == [65_536, 65_536, ROWS - 2 * 65_536]
        assert connect.ROW_GROUP_SIZE == 65_536
    with connect.session(path) as con:  # read as written, by a reader opened as every reader is
        assert _groups(con) == [65_536, 65_536, ROWS - 2 * 65_536]
        assert con.execute("SELECT count(*), sum(i) FROM t").fetchone() == (ROWS, ROWS * (ROWS - 1) // 2)


def test_the_next_writer_adds_row_groups_of_the_set_size_after_the_ones_before(tmp_path: Path, key):
    path = tmp_path / "w.duckdb"
    for _ in range(2):
        with connect.session(path, read_only=False) as con:
            con.execute("CREATE TABLE IF NOT EXISTS t (i INTEGER, s VARCHAR)")
            con.execute("INSERT INTO t SELECT range, range::VARCHAR FROM range(70000)")
    with connect.session(path) as con:
        groups = _groups(con)
    assert sum(groups) == 140_000
    assert max(groups) <= 65_536


def test_a_writers_temporary_files_go_beside_the_warehouse(tmp_path: Path, key):
    path = tmp_path / "w.duckdb"
    with connect.session(path, read_only=False) as con:
        assert con.execute("SELECT current_setting('temp_directory')").fetchone() == (str(path) + ".tmp",)
        assert con.execute("SELECT current_database()").fetchone() == (connect.ALIAS,)


def test_a_file_written_with_duckdbs_default_row_groups_is_read_and_extended(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)
    path = tmp_path / "w.duckdb"
    connect.lift_storage(path)
    with duckdb.connect(str(path)) as con:  # as a warehouse written before this setting
        con.execute("CREATE TABLE t (i INTEGER, s VARCHAR)")
        con.execute("INSERT INTO t SELECT range, range::VARCHAR FROM range(130000)")
        con.execute("SET threads = 1")
    with connect.session(path, read_only=False) as con:
        con.execute("INSERT INTO t SELECT range, range::VARCHAR FROM range(70000)")
        groups = _groups(con)
    assert groups[0] == 122_880 and sum(groups) == 200_000
    assert max(groups[1:]) <= 65_536

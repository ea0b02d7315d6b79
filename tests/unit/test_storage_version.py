"""Every plain warehouse file is written in warehouse.connect.STORAGE_VERSION's storage format (docs/adr/0014): a
new one is created in it, an older one is lifted to it with its rows as they were, a newer one is left alone."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from warehouse.connect import STORAGE_VERSION, lift_storage, open_warehouse, storage_version


def _older_file(path: Path, version: str = "v1.0.0") -> None:
    with duckdb.connect(str(path), config={"storage_compatibility_version": version}) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i, 'row ' || range AS s FROM range(5000)")


def _rows(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*), sum(i), max(s) FROM t").fetchall()


def _tables(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [name for (name,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]


def test_the_shipped_duckdb_would_create_the_older_format_unless_told():
    # the reason the setting exists: if DuckDB's default ever reaches it, this fails and the setting can go
    with duckdb.connect() as con:
        default = con.execute("SELECT current_setting('storage_compatibility_version')").fetchone()[0]
    assert default < STORAGE_VERSION


def test_a_new_warehouse_file_is_created_in_the_set_format(tmp_path):
    path = tmp_path / "new.duckdb"
    with open_warehouse(path, read_only=False) as con:
        con.execute("CREATE TABLE t (i INTEGER)")
    assert storage_version(path) == STORAGE_VERSION + "+"


def test_a_file_in_an_older_format_is_lifted_with_its_rows_as_they_were(tmp_path):
    path = tmp_path / "old.duckdb"
    _older_file(path)
    before = _rows(path)
    assert storage_version(path) == "v1.0.0+"
    lift_storage(path)
    assert storage_version(path) == STORAGE_VERSION + "+"
    assert _rows(path) == before == [(5000, sum(range(5000)), "row 999")]
    assert _tables(path) == ["t"]  # the table written to carry the new version into the file is gone


def test_opening_an_older_file_read_only_leaves_it_as_it_is(tmp_path):
    path = tmp_path / "old.duckdb"
    _older_file(path)
    open_warehouse(path, read_only=True).close()
    assert storage_version(path) == "v1.0.0+"


def test_a_file_in_a_newer_format_is_left_as_it_is(tmp_path):
    path = tmp_path / "newer.duckdb"
    _older_file(path, "v1.5.0")  # DuckDB refuses to lower a file's storage version
    lift_storage(path)
    with open_warehouse(path, read_only=False) as con:
        con.execute("INSERT INTO t VALUES (5000, 'row 5000')")
    assert storage_version(path) == "v1.5.0+"
    assert _rows(path) == [(5001, sum(range(5001)), "row 999")]


def test_a_file_that_is_no_database_is_not_touched(tmp_path):
    path = tmp_path / "text.duckdb"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(duckdb.Error):
        lift_storage(path)
    assert path.read_bytes() == b"not a database" * 100


def test_an_encrypted_file_opened_for_writing_without_the_key_is_the_missing_key_and_stays_as_it_was(
    tmp_path, monkeypatch
):
    from schemas.settings import KEY_ENV, KEY_SECRET_ENV
    from warehouse.connect import httpfs_extension
    from warehouse.errors import WarehouseKeyProblem

    path = tmp_path / "sealed.duckdb"
    with duckdb.connect() as con:
        con.execute(f"LOAD '{httpfs_extension()}'")
        con.execute(f"ATTACH '{path}' AS sealed (ENCRYPTION_KEY 'correct horse battery staple 42')")
        con.execute("CREATE TABLE sealed.t AS SELECT 1 AS i")
    before = path.read_bytes()
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)
    with pytest.raises(WarehouseKeyProblem, match="is encrypted and no key is set"):
        open_warehouse(path, read_only=False)
    assert path.read_bytes() == before

"""The DDL is applied once per layout (issue 15 point 4): a warehouse stamped with the digest of this code's DDL is
left as it is (a staging copy of a version the same DDL built), any other gets every statement again, in one
transaction with the stamp."""

from __future__ import annotations

import duckdb
import pytest

from warehouse import ddl
from warehouse.ddl import DDL_DIGEST_KEY, SCHEMA_VERSION, applied_digest, apply_ddl, ddl_digest, schema_version


def _views(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}


def test_a_new_file_gets_the_ddl_and_the_stamps(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert schema_version(con) is None and applied_digest(con) is None  # no warehouse_meta yet
        apply_ddl(con)
        assert schema_version(con) == SCHEMA_VERSION
        assert applied_digest(con) == ddl_digest()
        assert {"funding_lines", "mart_funding_by_partner_year", "dataset_summary"} <= _views(con)


def test_a_copy_stamped_with_this_ddl_is_left_as_it_is(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        apply_ddl(con)
        con.execute("DROP VIEW mart_yoy_change")  # a mark: re-running the DDL would bring it back
    ran = []
    real = ddl.ddl_statements
    monkeypatch.setattr(ddl, "ddl_statements", lambda: ran.append(1) or real())
    with duckdb.connect(str(path)) as con:
        apply_ddl(con)
        assert not ran
        assert "mart_yoy_change" not in _views(con)


@pytest.mark.parametrize("stored", ["an older ddl", None])
def test_a_file_of_another_ddl_gets_it_again(tmp_path, stored):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        apply_ddl(con)
        con.execute("DROP VIEW mart_yoy_change")
        if stored is None:  # written before the digest existed
            con.execute(f"DELETE FROM warehouse_meta WHERE key = '{DDL_DIGEST_KEY}'")
        else:
            con.execute("UPDATE warehouse_meta SET value = ? WHERE key = ?", [stored, DDL_DIGEST_KEY])
        con.execute("INSERT INTO dim_agency VALUES ('MOD', 'Defence', NULL, 1, 'end', 'en')")
    with duckdb.connect(str(path)) as con:
        apply_ddl(con)
        assert "mart_yoy_change" in _views(con)
        assert applied_digest(con) == ddl_digest() and schema_version(con) == SCHEMA_VERSION
        assert con.execute("SELECT count(*) FROM dim_agency").fetchone() == (1,)  # idempotent: rows kept


def test_the_digest_follows_the_sql_and_the_schema_version(monkeypatch):
    before = ddl_digest()
    ddl.ddl_digest.cache_clear()
    try:
        monkeypatch.setattr(ddl, "SCHEMA_VERSION", "999")
        assert ddl.ddl_digest() != before
        monkeypatch.setattr(ddl, "SCHEMA_VERSION", SCHEMA_VERSION)
        ddl.ddl_digest.cache_clear()
        files = ddl._sql_files()
        monkeypatch.setattr(ddl, "_sql_files", lambda: [*files[:-1], (files[-1][0], files[-1][1] + "\n-- edited")])
        assert ddl.ddl_digest() != before
    finally:
        ddl.ddl_digest.cache_clear()


def test_a_failing_statement_leaves_nothing_half_applied(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    real = ddl.ddl_statements()
    monkeypatch.setattr(ddl, "ddl_statements", lambda: [real[0], "CREATE VIEW broken AS SELECT * FROM no_such_table"])
    with duckdb.connect(str(path)) as con:
        with pytest.raises(duckdb.CatalogException):
            apply_ddl(con)
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert tables == set()  # one transaction: the tables of 001 were rolled back with it, no stamp
        monkeypatch.setattr(ddl, "ddl_statements", lambda: real)
        apply_ddl(con)  # and the connection is usable: the next try applies it all
        assert applied_digest(con) == ddl_digest()

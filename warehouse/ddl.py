"""The warehouse's layout: the SQL files under warehouse/sql, applied in name order on every load, and the layout
version stamped into warehouse_meta. warehouse/store.py re-exports these names (``from warehouse.store import
SCHEMA_VERSION`` keeps working)."""

from __future__ import annotations

from importlib import resources

import duckdb

#: bump with every change to warehouse/sql/001_tables.sql; a published file of another version is rebuilt from the
#: inbox on the next run (every file re-processed into a fresh staging database), never patched in place
SCHEMA_VERSION = "13"

#: tables whose rows belong to one source file (replaced whole when the file changes)
FILE_TABLES = (
    "fact_funding_line",
    "dim_program",
    "quarantine_row",
    "warned_row",
    "skipped_row",
    "ref_series_value",
    "ref_series_footnote",
    "ref_series_edition",
    "record_value",
    "record_field",
)


def ddl_statements() -> list[str]:
    files = sorted(
        (p for p in resources.files("warehouse").joinpath("sql").iterdir() if p.name.endswith(".sql")),
        key=lambda p: p.name,
    )
    return [p.read_text(encoding="utf-8") for p in files]


def apply_ddl(con: duckdb.DuckDBPyConnection) -> None:
    for sql in ddl_statements():
        con.execute(sql)
    con.execute("CREATE TABLE IF NOT EXISTS warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    con.execute("INSERT OR REPLACE INTO warehouse_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])


def schema_version(con: duckdb.DuckDBPyConnection) -> str | None:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "warehouse_meta" not in tables:
        return None
    row = con.execute("SELECT value FROM warehouse_meta WHERE key = 'schema_version'").fetchone()
    return row[0] if row else None

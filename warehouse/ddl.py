"""The warehouse's layout: the SQL files under warehouse/sql, applied in name order on every load, and the layout
version stamped into warehouse_meta. warehouse/store.py re-exports these names (``from warehouse.store import
SCHEMA_VERSION`` keeps working)."""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

import duckdb

#: bump with every change to warehouse/sql/001_tables.sql; a published file of another version is rebuilt from the
#: inbox on the next run (every file re-processed into a fresh staging database), never patched in place
SCHEMA_VERSION = "13"

#: warehouse_meta key of the digest of the DDL last applied to the file (:func:`ddl_digest`)
DDL_DIGEST_KEY = "ddl_digest"

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

_META_TABLE = "CREATE TABLE IF NOT EXISTS warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"


def _sql_files() -> list[tuple[str, str]]:
    files = sorted(
        (p for p in resources.files("warehouse").joinpath("sql").iterdir() if p.name.endswith(".sql")),
        key=lambda p: p.name,
    )
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


def ddl_statements() -> list[str]:
    return [text for _, text in _sql_files()]


@functools.cache
def ddl_digest() -> str:
    """sha256 of SCHEMA_VERSION and every warehouse/sql file (name and text): a file stamped with it was built by
    exactly this DDL. Computed once per process (the SQL files ship with the code)."""
    h = hashlib.sha256(f"schema {SCHEMA_VERSION}\n{_META_TABLE}\n".encode())
    for name, text in _sql_files():
        h.update(f"\0{name}\0{len(text)}\0".encode())
        h.update(text.encode())
    return h.hexdigest()


def applied_digest(con: duckdb.DuckDBPyConnection) -> str | None:
    """The DDL digest stamped into the warehouse (None: none, or no warehouse_meta)."""
    return _meta_value(con, DDL_DIGEST_KEY)


def _meta_value(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """warehouse_meta's value for ``key`` (None: no such row, or no warehouse_meta). Straight to the row: listing
    information_schema first cost ~20 ms more on every fresh connection (a night opens the warehouse ~8 times)."""
    try:
        row = con.execute(f"SELECT value FROM warehouse_meta WHERE key = '{key}'").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def apply_ddl(con: duckdb.DuckDBPyConnection) -> None:
    """Bring the file's layout to this code's DDL. A file already stamped with :func:`ddl_digest` (a copy of a
    version this DDL built) is left as it is; otherwise every statement runs in ONE transaction with the stamp
    (``con`` must not be in a transaction already). Statement by statement, each of the ~800 CREATE and COMMENT
    statements was a transaction of its own, committed to the file: 2-3 s on every publishing night."""
    digest = ddl_digest()
    if applied_digest(con) == digest:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        for sql in ddl_statements():
            con.execute(sql)
        con.execute(_META_TABLE)
        con.execute(
            "INSERT OR REPLACE INTO warehouse_meta VALUES ('schema_version', ?), (?, ?)",
            [SCHEMA_VERSION, DDL_DIGEST_KEY, digest],
        )
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # the failed statement's own error is the one to see
        raise


def schema_version(con: duckdb.DuckDBPyConnection) -> str | None:
    return _meta_value(con, "schema_version")

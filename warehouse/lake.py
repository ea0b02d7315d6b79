"""Beyond one file: copy the published warehouse into a DuckLake (a catalog database plus Parquet data files) as
one snapshot per publish. Locally the catalog may be a DuckDB file and the data a folder; in production the catalog
is PostgreSQL and the data object storage (docs/scaling.md; tests/system/test_ducklake_postgres.py runs a real
PostgreSQL server). The extensions come from the PyPI packages ``duckdb-extension-ducklake`` and, for a PostgreSQL
catalog, ``duckdb-extension-postgres_scanner``, built for this duckdb version and loaded by path: nothing is
downloaded at run time. A PostgreSQL catalog's password never goes in the catalog string: libpq reads it from the
environment (``PGPASSWORD``, ``PGPASSFILE`` / ``~/.pgpass``, ``PGSERVICE``)."""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb

from warehouse.connect import attach, close
from warehouse.faults import faultpoint

#: what analysts query; audit and staging tables stay in the warehouse file
LAKE_TABLES = (
    "dim_agency",
    "dim_country",
    "dim_category",
    "dim_fiscal_period",
    "dim_program",
    "program_history",
    "fact_funding_line",
)


def packaged_extension(name: str) -> Path:
    """The extension ``name`` for this duckdb version, from the PyPI package ``duckdb-extension-<name>``."""
    package = importlib.import_module(f"duckdb_extension_{name}")
    found = sorted(Path(str(package.__file__)).parent.rglob(f"v{duckdb.__version__}/*.duckdb_extension"))
    if not found:
        raise RuntimeError(f"no {name} extension for duckdb {duckdb.__version__} in duckdb-extension-{name}")
    return found[0]


def ducklake_extension() -> Path:
    return packaged_extension("ducklake")


def postgres_extension() -> Path:
    return packaged_extension("postgres_scanner")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def attach_lake(con: duckdb.DuckDBPyConnection, catalog: str, data_path: str, alias: str = "lake") -> None:
    """``catalog``: a DuckDB file path, or a libpq connection string after ``postgres:`` (e.g.
    ``postgres:dbname=lake host=pg.internal user=dcf``) for a PostgreSQL catalog."""
    con.execute(f"LOAD {_literal(str(ducklake_extension()))}")
    if catalog.startswith("postgres:"):
        con.execute(f"LOAD {_literal(str(postgres_extension()))}")
    con.execute(f"ATTACH {_literal('ducklake:' + catalog)} AS {alias} (DATA_PATH {_literal(data_path)})")


def publish_to_lake(warehouse: Path, catalog: str, data_path: str, tables: tuple[str, ...] = LAKE_TABLES) -> int:
    """Replace the lake's tables with the published warehouse's, in one DuckLake transaction (one snapshot);
    returns the snapshot id. Readers of the lake see the previous snapshot until it commits; an error before the
    commit (``faultpoint("lake_table")`` after each table is where the tests inject one) leaves that snapshot
    current."""
    con = duckdb.connect()
    try:
        attach_lake(con, catalog, data_path)
        attach(con, warehouse, "wh")  # read-only; with the key when the warehouse is encrypted (ADR 0010)
        con.execute("BEGIN TRANSACTION")
        for table in tables:
            con.execute(f"CREATE OR REPLACE TABLE lake.{table} AS SELECT * FROM wh.{table}")
            faultpoint("lake_table")
        con.execute("COMMIT")
        row = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')").fetchone()
        assert row is not None  # an aggregate returns one row
        return row[0]
    finally:
        close(con)

"""Beyond one file: copy the published warehouse into a DuckLake (a catalog database plus Parquet data files) as
one snapshot per publish. Locally the catalog is a DuckDB file and the data a folder; in production the catalog is
PostgreSQL and the data object storage (docs/scaling.md). The extension comes from the PyPI package
``duckdb-extension-ducklake`` for this duckdb version, loaded by path: nothing is downloaded at run time."""

from __future__ import annotations

import pathlib
from pathlib import Path

import duckdb

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


def ducklake_extension() -> Path:
    import duckdb_extension_ducklake

    found = sorted(
        pathlib.Path(duckdb_extension_ducklake.__file__).parent.rglob(f"v{duckdb.__version__}/*.duckdb_extension")
    )
    if not found:
        raise RuntimeError(f"no DuckLake extension for duckdb {duckdb.__version__} in duckdb-extension-ducklake")
    return found[0]


def attach_lake(con: duckdb.DuckDBPyConnection, catalog: str, data_path: str, alias: str = "lake") -> None:
    """``catalog``: a DuckDB file path, or e.g. ``postgres:dbname=lake host=...`` for a PostgreSQL catalog."""
    con.execute(f"LOAD '{ducklake_extension()}'")
    con.execute(f"ATTACH 'ducklake:{catalog}' AS {alias} (DATA_PATH '{data_path}')")


def publish_to_lake(warehouse: Path, catalog: str, data_path: str, tables: tuple[str, ...] = LAKE_TABLES) -> int:
    """Replace the lake's tables with the published warehouse's, in one DuckLake transaction (one snapshot);
    returns the snapshot id. Readers of the lake see the previous snapshot until it commits."""
    con = duckdb.connect()
    try:
        attach_lake(con, catalog, data_path)
        con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
        con.execute("BEGIN TRANSACTION")
        for table in tables:
            con.execute(f"CREATE OR REPLACE TABLE lake.{table} AS SELECT * FROM wh.{table}")
        con.execute("COMMIT")
        row = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')").fetchone()
        assert row is not None  # an aggregate returns one row
        return row[0]
    finally:
        con.close()

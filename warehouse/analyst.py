"""The analyst edition (docs/adr/0010): ``warehouse.analyst.duckdb`` beside the published ``warehouse.duckdb``,
published with it whenever an agency is restricted (``restricted: true`` in its source YAML).

It holds everything analysts query, the same tables, views, marts and comments, less every row of the restricted
agencies: their funding lines, programs and program history, quarantined, warned and skipped rows (raw cells),
validation failures (values and messages), source files (names, paths, how they were read), refused inbox entries,
failure counts, fiscal periods and the agencies themselves. The night totals in ``audit_load`` are those of the
other agencies' files. It is written without encryption (so the DuckDB CLI and DBeaver open it with no key) into a
new file, never by deleting rows from a copy (a deleted row's bytes can stay in a DuckDB file until its blocks are
rewritten), and it is published by the same atomic rename as the full warehouse, behind its own WAL guard.

Which agencies are restricted is recorded in the full warehouse itself (``warehouse_meta.restricted_agencies``), so
a rollback publishes the edition that matches the version it publishes.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from warehouse.connect import STORAGE_VERSION, attach, close, current_catalog

#: warehouse_meta key of the full warehouse: the restricted agency codes, a JSON list (absent: none)
RESTRICTED_KEY = "restricted_agencies"
EDITION_KEY = "edition"


def analyst_path(published: Path) -> Path:
    """``warehouse.duckdb`` -> ``warehouse.analyst.duckdb`` (beside it)."""
    return published.with_name(f"{published.stem}.analyst{published.suffix}")


def restricted_of(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The restricted agencies a warehouse records ([] for none, or a file written before restriction existed)."""
    try:
        row = con.execute(f"SELECT value FROM warehouse_meta WHERE key = '{RESTRICTED_KEY}'").fetchone()  # no binding:
        # binding a Python value makes DuckDB import pandas (a second on a busy machine; dcf rollback has none)
    except duckdb.CatalogException:
        return []
    return sorted(json.loads(row[0])) if row else []


def _literal_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::VARCHAR[]"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build(full: Path, out: Path) -> dict[str, int] | None:
    """Write the analyst edition of the warehouse file ``full`` into ``out`` (a new file); None (and nothing written)
    when ``full`` records no restricted agency. Returns the rows left out per table."""
    con = duckdb.connect()  # in memory: a file opened read-only itself would make every ATTACH read-only too
    try:
        attach(con, full, "full_warehouse")  # with the key when the file is encrypted
        con.execute("USE full_warehouse")
        restricted = restricted_of(con)
        if not restricted:
            return None
        src = current_catalog(con)
        codes = _literal_list(restricted)
        out.unlink(missing_ok=True)
        # no key: a plain file, in the warehouse's storage format
        con.execute(
            f"ATTACH '{str(out).replace(chr(39), chr(39) * 2)}' AS analyst (STORAGE_VERSION '{STORAGE_VERSION}')"
        )
        con.execute(f"COPY FROM DATABASE {src} TO analyst (SCHEMA)")  # tables, constraints, views, comments
        con.execute(
            "CREATE TEMP TABLE restricted_file AS "
            f"SELECT DISTINCT file_key FROM {src}.main.audit_source_file WHERE list_contains({codes}, agency_code)"
        )
        columns: dict[str, set[str]] = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name IN (SELECT table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = 'main')"
        ).fetchall():
            columns.setdefault(table, set()).add(column)
        left_out: dict[str, int] = {}
        for table, cols in sorted(columns.items()):
            keep = ["true"]
            if "agency_code" in cols:
                keep.append(f"coalesce(NOT list_contains({codes}, agency_code), true)")
            if "file_key" in cols:  # <AGENCY>/<file name>; audit_source_file says whose file each one is
                keep.append(
                    f"coalesce(NOT list_contains({codes}, split_part(file_key, '/', 1)), true) "
                    "AND file_key NOT IN (SELECT file_key FROM restricted_file)"
                )
            if table == "warehouse_meta":
                keep.append(f"key NOT IN ('{RESTRICTED_KEY}', '{EDITION_KEY}')")
            name = _ident(table)
            con.execute(f"INSERT INTO analyst.main.{name} SELECT * FROM {src}.main.{name} WHERE {' AND '.join(keep)}")
            counted = con.execute(
                f"SELECT (SELECT count(*) FROM {src}.main.{name}) - (SELECT count(*) FROM analyst.main.{name})"
            ).fetchone()
            if counted and counted[0] and table != "warehouse_meta":
                left_out[table] = int(counted[0])
        if "audit_load" in columns and "audit_source_file" in columns:
            _night_totals(con, src, codes)
        con.execute(
            f"INSERT INTO analyst.main.warehouse_meta VALUES ('{EDITION_KEY}', "
            "'analyst: the restricted agencies'' rows are left out')"
        )
        con.execute("CHECKPOINT analyst")
        con.execute("DETACH analyst")
        return left_out
    finally:
        close(con)


def _night_totals(con: duckdb.DuckDBPyConnection, src: str, codes: str) -> None:
    """audit_load's counts without the restricted agencies' files: their file versions are subtracted from the load
    that read them (exact for files processed and failed and for rows), and their current files loaded by an earlier
    load, not withdrawn when a night started, from that night's unchanged files."""
    con.execute(
        f"""
        UPDATE analyst.main.audit_load AS l SET
            files_processed = greatest(0, l.files_processed - d.files),
            files_failed = greatest(0, l.files_failed - d.failed),
            files_unchanged = greatest(0, l.files_unchanged - d.unchanged),
            files_seen = greatest(0, l.files_processed - d.files) + greatest(0, l.files_unchanged - d.unchanged),
            rows_read = greatest(0, l.rows_read - d.rows_read),
            rows_loaded = greatest(0, l.rows_loaded - d.rows_loaded),
            rows_quarantined = greatest(0, l.rows_quarantined - d.rows_quarantined),
            rows_skipped = greatest(0, l.rows_skipped - d.rows_skipped)
        FROM (
            SELECT n.load_id,
                   count(f.file_key) FILTER (WHERE f.load_id = n.load_id) AS files,
                   count(f.file_key) FILTER (WHERE f.load_id = n.load_id AND f.status = 'failed') AS failed,
                   count(f.file_key) FILTER (WHERE f.load_id <> n.load_id AND f.is_current AND b.load_seq < n.load_seq
                                             AND (f.withdrawn_at IS NULL OR f.withdrawn_at > n.started_at)) AS unchanged,
                   coalesce(sum(f.rows_read) FILTER (WHERE f.load_id = n.load_id), 0) AS rows_read,
                   coalesce(sum(f.rows_loaded) FILTER (WHERE f.load_id = n.load_id), 0) AS rows_loaded,
                   coalesce(sum(f.rows_quarantined) FILTER (WHERE f.load_id = n.load_id), 0) AS rows_quarantined,
                   coalesce(sum(f.rows_skipped) FILTER (WHERE f.load_id = n.load_id), 0) AS rows_skipped
            FROM {src}.main.audit_load n
            JOIN {src}.main.audit_source_file f ON list_contains({codes}, f.agency_code)
            LEFT JOIN {src}.main.audit_load b ON b.load_id = f.load_id
            GROUP BY n.load_id
        ) d
        WHERE l.load_id = d.load_id
        """
    )

"""A night with nothing new publishes nothing (issue 14, point 8): before a staging copy is made, the last published
state is asked, read-only, whether this night would change anything. Only if it would not (no file new, changed or
withdrawn, no failed file failing differently, the same reference dimensions, no exchange rate of a fiscal year
that closed since, and the published file intact as the newest version) is the night recorded as ``nothing_new``
without a publish: every kept version stays, so idle nights never erase the rollback window, and the cost of such a
night does not grow with the warehouse (no copy, no rewrite)."""

from __future__ import annotations

import os
from collections.abc import Set as AbstractSet
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.analyst import analyst_path, restricted_of
from warehouse.connect import open_warehouse
from warehouse.ddl import SCHEMA_VERSION, schema_version
from warehouse.publish import WAL_GUARD_TARGET, published_seq, version_path, version_seqs
from warehouse.run_steps import CLOSED_RATES_SQL


def _intact(published: Path) -> str | None:
    """None if the published file is the newest kept version behind its WAL guard, else why it must be republished."""
    seqs = version_seqs(published)
    if not seqs:
        return "no version kept yet"
    if published_seq(published) != seqs[-1]:
        return f"the published file is not version {seqs[-1]}, the newest kept"
    if not _guarded(published):
        return "the published file's write-ahead-log guard is missing"
    return None


def _guarded(path: Path) -> bool:
    wal = path.with_name(path.name + ".wal")
    return wal.is_symlink() and os.readlink(wal) == WAL_GUARD_TARGET


def _differs(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> bool:
    cols = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in frame.columns)
    con.register("_dimension_now", frame)
    try:
        row = con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {cols} FROM _dimension_now EXCEPT ALL SELECT {cols} FROM {table})) "
            f"+ (SELECT count(*) FROM (SELECT {cols} FROM {table} EXCEPT ALL SELECT {cols} FROM _dimension_now))"
        ).fetchone()
    finally:
        con.unregister("_dimension_now")
    return bool(row and row[0])


def reasons_to_publish(
    published: Path,
    *,
    present: AbstractSet[str],
    skip_agencies: AbstractSet[str],
    dimensions: dict[str, pd.DataFrame],
    failed_again: list[tuple[str, str, str | None]],
    as_of: datetime,
    restricted: AbstractSet[str] = frozenset(),
) -> list[str]:
    """What this night would change in the last published state ([] = nothing). ``present``: the files in the
    inbox; ``skip_agencies``: agencies whose folder is missing (they withdraw nothing); ``failed_again``: (file_key,
    file_hash, message) of the files processed tonight, all of which failed; ``restricted``: the agencies the source
    YAMLs restrict tonight (their analyst edition must match, warehouse/analyst.py)."""
    problem = _intact(published)
    if problem:
        return [problem]
    newest = version_seqs(published)[-1]
    base = version_path(published, newest)
    with open_warehouse(base, read_only=True) as con:  # a private version: no writer, no guard needed
        if schema_version(con) != SCHEMA_VERSION:
            return ["the warehouse layout is older than this code's"]
        reasons = []
        recorded = restricted_of(con)
        edition = analyst_path(published)
        if recorded != sorted(restricted):
            reasons.append("the restricted agencies changed")
        elif recorded and published_seq(edition) != newest:
            reasons.append(f"the analyst edition is not version {newest}")
        elif recorded and not _guarded(edition):
            reasons.append("the analyst edition's write-ahead-log guard is missing")
        elif not recorded and edition.exists():
            reasons.append("an analyst edition is left from when an agency was restricted")
        con.register("_present", pa.table({"file_key": pa.array(sorted(present), pa.string())}))
        con.register("_skip", pa.table({"agency_code": pa.array(sorted(skip_agencies), pa.string())}))
        try:
            moved = con.execute(
                """
                SELECT count(*) FROM audit_source_file WHERE is_current AND (
                    (withdrawn_at IS NULL AND file_key NOT IN (SELECT file_key FROM _present)
                     AND agency_code NOT IN (SELECT agency_code FROM _skip))
                    OR (withdrawn_at IS NOT NULL AND file_key IN (SELECT file_key FROM _present)))
                """
            ).fetchone()
        finally:
            con.unregister("_present")
            con.unregister("_skip")
        if moved and moved[0]:
            reasons.append(f"{moved[0]} file(s) withdrawn from or back in the inbox")
        for file_key, file_hash, message in failed_again:
            same = con.execute(
                "SELECT count(*) FROM audit_source_file WHERE is_current AND file_key = ? AND file_hash = ? "
                "AND status = 'failed' AND message IS NOT DISTINCT FROM ?",
                [file_key, file_hash, message],
            ).fetchone()
            if not (same and same[0]):
                reasons.append(f"{file_key} failed differently")
        reasons += [f"{table} changed" for table, frame in dimensions.items() if _differs(con, table, frame)]
        unlocked = con.execute(
            f"SELECT count(*) FROM ({CLOSED_RATES_SQL}) r ANTI JOIN fx_rate_lock l "
            "USING (currency, policy, key_start, key_end, fiscal_year)",
            {"as_of": as_of},
        ).fetchone()
        if unlocked and unlocked[0]:
            reasons.append(f"{unlocked[0]} exchange rate(s) of closed fiscal years to freeze")
    return reasons

"""What the loader's last published state holds, read before a run stages anything: the trusted file (the newest
private version, warehouse/publish.py), the file versions it already has, its frozen FX rates, its archived files
and the held rows a replay can re-normalise. Each opens the trusted file read-only."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from warehouse.ddl import SCHEMA_VERSION, schema_version
from warehouse.publish import base_version, read_only


def trusted(warehouse: Path) -> Path | None:
    """The file that holds the loader's last published state: the newest private version, else (before the first
    versioned publish) the published file itself; None for a new warehouse."""
    base = base_version(warehouse)
    return base if base is not None else (warehouse if warehouse.exists() else None)


def known_versions(warehouse: Path) -> set[tuple[str, str, str]]:
    """(file_key, file_hash, config_hash) of every current file in the last published state."""
    source = trusted(warehouse)
    if source is None:
        return set()
    with read_only(source) as con:
        if schema_version(con) != SCHEMA_VERSION:
            return set()  # an older layout: everything is re-processed into a fresh database
        return {
            tuple(r)
            for r in con.execute(
                "SELECT file_key, file_hash, config_hash FROM audit_source_file WHERE is_current"
            ).fetchall()
        }


def locked_rates(warehouse: Path, release_years: frozenset[int] = frozenset()) -> pd.DataFrame:
    """The frozen rates of closed fiscal years in the last published state, less the years being re-rated."""
    empty = pd.DataFrame(
        columns=["currency", "policy", "key_start", "key_end", "fiscal_year", "units_per_usd", "rate_date", "provider"]
    )
    source = trusted(warehouse)
    if source is None:
        return empty
    with read_only(source) as con:
        if schema_version(con) != SCHEMA_VERSION:
            return empty
        frame = con.execute(
            "SELECT currency, policy, key_start, key_end, fiscal_year, units_per_usd, rate_date, provider FROM fx_rate_lock"
        ).df()
    frame = frame[~frame["fiscal_year"].isin(release_years)]
    return frame.astype(
        {
            "key_start": "datetime64[ns]",
            "key_end": "datetime64[ns]",
            "rate_date": "datetime64[ns]",
            "fiscal_year": "int64",
        }
    )


def archived_current_files(warehouse: Path) -> list[tuple[str, str, str]]:
    """(file_key, file_hash, archive_path) of the current files of the last published state that the raw archive
    holds; [] for a new warehouse or one written before the archive existed."""
    source = trusted(warehouse)
    if source is None:
        return []
    with read_only(source) as con:
        try:
            return [
                tuple(r)
                for r in con.execute(
                    "SELECT file_key, file_hash, archive_path FROM audit_source_file WHERE is_current AND archive_path IS NOT NULL "
                    "ORDER BY file_key"
                ).fetchall()
            ]
        except (duckdb.CatalogException, duckdb.BinderException):
            return []


def replay_candidates(
    warehouse: Path, rules: tuple[str, ...], kinds: tuple[str, ...] = ("budget", "programs")
) -> pd.DataFrame:
    """Quarantined rows, and rows loaded with a mapping warning, of current files whose open failures are all among
    ``rules`` (mapping problems a reference table can fix), with what is needed to re-normalise them; ``held`` says
    which (quarantined | warned)."""
    source = trusted(warehouse)
    if source is None:
        raise FileNotFoundError(f"no warehouse at {warehouse}; run 'dcf run' first")
    with read_only(source) as con:
        return con.execute(
            """
            WITH open_rules AS (
                SELECT file_key, sheet, excel_row, list(DISTINCT rule) AS rules
                FROM audit_validation_failure WHERE status = 'open' AND excel_row IS NOT NULL GROUP BY ALL
            )
            SELECT q.file_key, q.sheet, q.excel_row, q.raw_json, q.kind, q.agency_code, f.file_hash, f.config_hash,
                   f.path, f.context_json, q.held
            FROM (SELECT *, 'quarantined' AS held FROM quarantine_row
                  UNION ALL SELECT *, 'warned' AS held FROM warned_row) q
            JOIN audit_source_file f ON f.file_key = q.file_key AND f.is_current
            JOIN open_rules o ON o.file_key = q.file_key AND o.sheet = q.sheet AND o.excel_row = q.excel_row
            WHERE f.context_json IS NOT NULL AND list_has_all(?, o.rules)
              AND list_contains(?, q.kind)  -- other kinds' files are read again whole when a mapping changes
            ORDER BY q.file_key, q.excel_row
            """,
            [list(rules), list(kinds)],
        ).df()

"""Steps of a run over the whole staging copy once its files are loaded (warehouse/store.py Staging calls them on
its connection): files withdrawn from the inbox, FX rates frozen for closed fiscal years, program history, fiscal
periods, and the run's own audit rows."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.ddl import FILE_TABLES


@dataclass
class LoadInfo:
    load_id: str
    started_at: datetime
    flow_run_id: str | None
    run_by: str
    inbox: str


def mark_withdrawn(
    con: duckdb.DuckDBPyConnection,
    present: set[str],
    policy: dict[str, str],
    now: datetime,
    skip_agencies: AbstractSet[str] = frozenset(),
) -> list[dict]:
    """Current files missing from the inbox: recorded as withdrawn (when first missed); their rows kept, or
    retracted where the agency's source declares ``withdrawn: retract``. A file back in the inbox is present
    again. Returns one entry per withdrawn file for the run summary."""
    con.register("_present", pa.table({"file_key": pa.array(sorted(present), pa.string())}))
    try:
        con.execute(
            "UPDATE audit_source_file SET withdrawn_at = NULL WHERE is_current AND withdrawn_at IS NOT NULL "
            "AND file_key IN (SELECT file_key FROM _present)"
        )
        missing = con.execute(
            "SELECT file_key, agency_code FROM audit_source_file WHERE is_current "
            "AND file_key NOT IN (SELECT file_key FROM _present) ORDER BY file_key"
        ).fetchall()
    finally:
        con.unregister("_present")
    out = []
    for file_key, agency in missing:
        if agency in skip_agencies:
            continue
        con.execute(
            """UPDATE audit_source_file f SET withdrawn_at = coalesce(withdrawn_at,
                   (SELECT max(o.withdrawn_at) FROM audit_source_file o WHERE o.file_key = f.file_key), $now)
               WHERE file_key = $key AND is_current""",
            {"key": file_key, "now": now},
        )
        if policy.get(agency) == "retract":
            for table in FILE_TABLES:
                con.execute(f"DELETE FROM {table} WHERE file_key = ?", [file_key])
            con.execute(
                "UPDATE audit_validation_failure SET status = 'resolved', resolved_at = ? "
                "WHERE file_key = ? AND status = 'open'",
                [now, file_key],
            )
            con.execute("UPDATE audit_source_file SET is_current = false WHERE file_key = ? AND is_current", [file_key])
            out.append(
                {
                    "file": file_key,
                    "status": "retracted",
                    "message": "withdrawn from the inbox; its rows were removed",
                }
            )
        else:
            out.append(
                {"file": file_key, "status": "withdrawn", "message": "withdrawn from the inbox; its rows are kept"}
            )
    return out


#: the rates that rows of closed fiscal years (period ended before $as_of) use, one per lock key, in fx_rate_lock's
#: column order: what lock_closed_rates freezes, and what warehouse/quiet.py asks about before a night publishes
CLOSED_RATES_SQL = """
    SELECT currency, policy, key_start, key_end, fiscal_year, any_value(fx_rate) AS fx_rate,
           any_value(fx_rate_date) AS fx_rate_date, any_value(fx_provider) AS fx_provider
    FROM (
        SELECT currency, fiscal_year, fx_rate, fx_rate_date, fx_provider,
               CASE WHEN fx_policy = 'transaction_date' THEN 'transaction_date' ELSE 'fiscal_period_average' END AS policy,
               CASE WHEN fx_policy = 'transaction_date' THEN transaction_date ELSE period_start END AS key_start,
               CASE WHEN fx_policy = 'transaction_date' THEN transaction_date ELSE period_end END AS key_end
        FROM fact_funding_line
        WHERE period_end < $as_of AND fx_provider <> 'identity'
    )
    GROUP BY ALL
"""


def lock_closed_rates(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime,
    load_id: str,
    release_years: frozenset[int],
    locked_at: datetime,
) -> int:
    """Freeze the rates that rows of closed fiscal years (period ended before ``as_of``) use; release the
    locks of ``release_years`` first (``dcf rerate``). Returns how many rates were newly locked."""
    if release_years:
        con.execute("DELETE FROM fx_rate_lock WHERE list_contains(?, fiscal_year)", [sorted(release_years)])
    counted = con.execute("SELECT count(*) FROM fx_rate_lock").fetchone()
    assert counted is not None  # an aggregate returns one row
    before = counted[0]
    con.execute(
        f"INSERT INTO fx_rate_lock SELECT *, $now, $load FROM ({CLOSED_RATES_SQL}) ON CONFLICT DO NOTHING",
        {"now": locked_at, "load": load_id, "as_of": as_of},
    )
    counted = con.execute("SELECT count(*) FROM fx_rate_lock").fetchone()
    assert counted is not None
    return counted[0] - before


def refresh_program_history(con: duckdb.DuckDBPyConnection, seq: int, load_id: str, now: datetime) -> None:
    """Close the versions of programs that changed or disappeared; open versions for new or changed ones.
    A load that changes no program changes nothing here. Versions are ordered by the load sequence (``seq``),
    not the clock: a clock moved back changes the timestamps shown, never the order or the checks."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _programs_now AS
        SELECT agency_code, program_code, name_en, name_ar, category_code, partner_iso3, start_date, end_date, status,
               md5(concat_ws('|', name_en, coalesce(name_ar, ''), coalesce(category_code, ''),
                             coalesce(array_to_string(partner_iso3, ';'), ''), coalesce(CAST(start_date AS VARCHAR), ''),
                             coalesce(CAST(end_date AS VARCHAR), ''), coalesce(status, ''))) AS attr_hash,
               file_key
        FROM dim_program p LEFT JOIN (SELECT load_id, load_seq FROM audit_load) a USING (load_id)
        QUALIFY row_number() OVER (PARTITION BY agency_code, program_code
                                   ORDER BY coalesce(a.load_seq, $seq) DESC, file_key, excel_row) = 1
        """,
        {"seq": seq},
    )
    con.execute(
        """
        UPDATE program_history h SET valid_to = $now, valid_to_seq = $seq
        WHERE valid_to_seq IS NULL AND NOT EXISTS (
            SELECT 1 FROM _programs_now c
            WHERE c.agency_code = h.agency_code AND c.program_code = h.program_code AND c.attr_hash = h.attr_hash)
        """,
        {"now": now, "seq": seq},
    )
    con.execute(
        """
        INSERT INTO program_history
        SELECT c.*, $now, NULL, $load, $seq, NULL FROM _programs_now c
        WHERE NOT EXISTS (
            SELECT 1 FROM program_history h
            WHERE h.valid_to_seq IS NULL AND h.agency_code = c.agency_code AND h.program_code = c.program_code
              AND h.attr_hash = c.attr_hash)
        """,
        {"now": now, "load": load_id, "seq": seq},
    )


def refresh_fiscal_periods(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DELETE FROM dim_fiscal_period")
    con.execute(
        """
        INSERT INTO dim_fiscal_period
        SELECT agency_code, fiscal_year, min(period_start), max(period_end)
        FROM fact_funding_line GROUP BY ALL ORDER BY ALL
        """
    )


def record_failure_counts(con: duckdb.DuckDBPyConnection, load_id: str) -> None:
    con.execute(
        """
        INSERT INTO audit_failure_count
        SELECT $load, agency_code, rule, severity, count(*)
        FROM audit_validation_failure WHERE last_seen_load = $load GROUP BY ALL
        """,
        {"load": load_id},
    )


def open_failures(con: duckdb.DuckDBPyConnection, limit: int) -> pd.DataFrame:
    return con.execute(
        "SELECT file_key, excel_row, cell, source_column, value, message, suggestion, rule FROM open_failures LIMIT ?",
        [limit],
    ).df()


def record_refused(con: duckdb.DuckDBPyConnection, load: LoadInfo, refused: list[dict], seen_at: datetime) -> None:
    """The inbox entries this load saw and never read (flows/nightly_discover.py), one row each with the reason."""
    for entry in refused:
        con.execute(
            "INSERT OR REPLACE INTO audit_refused_entry VALUES (?, ?, ?, ?, ?)",
            [load.load_id, entry["file"], entry["file"].split("/", 1)[0], entry["message"], seen_at],
        )


def record_load(
    con: duckdb.DuckDBPyConnection,
    seq: int,
    load: LoadInfo,
    outcome: str,
    totals: dict[str, int],
    finished_at: datetime,
) -> None:
    con.execute(
        "INSERT INTO audit_load VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            load.load_id,
            load.started_at,
            finished_at,
            load.flow_run_id,
            load.run_by,
            load.inbox,
            outcome,
            totals["files_seen"],
            totals["files_processed"],
            totals["files_unchanged"],
            totals["files_failed"],
            totals["rows_read"],
            totals["rows_loaded"],
            totals["rows_quarantined"],
            totals["rows_skipped"],
            seq,
            totals.get("files_withdrawn", 0),
        ],
    )

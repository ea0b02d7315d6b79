"""Steps of a run over the whole staging copy once its files are loaded (warehouse/store.py Staging calls them on
its connection): files withdrawn from the inbox, FX rates frozen for closed fiscal years, program history, fiscal
periods, the run's own audit rows, and the checks before publishing.

A night's cost should follow the files it changed, not the warehouse's size (issue 15, ADR 0012): the checks, the
rate locks and the fiscal periods also come scoped to the night's changed files (``check_staging``,
``lock_rates_scoped``, ``refresh_fiscal_periods_scoped``). Each gives exactly what its whole-warehouse form gives;
the argument is written beside each one. Given ``None`` instead of a set of files, each does the whole warehouse
(replay, rebuild, rerate, or a staging copy that is a new database)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.ddl import FILE_TABLES

if TYPE_CHECKING:
    from schemas.batch import FileBatch


class PublishCheckFailed(RuntimeError):
    """The staging copy failed a consistency check; nothing was published."""


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


def _closed_rates_sql(scope: str = "") -> str:
    """CLOSED_RATES_SQL, its rows narrowed by ``scope`` (a condition on fact_funding_line, starting with AND)."""
    return f"""
    SELECT currency, policy, key_start, key_end, fiscal_year, any_value(fx_rate) AS fx_rate,
           any_value(fx_rate_date) AS fx_rate_date, any_value(fx_provider) AS fx_provider
    FROM (
        SELECT currency, fiscal_year, fx_rate, fx_rate_date, fx_provider,
               CASE WHEN fx_policy = 'transaction_date' THEN 'transaction_date' ELSE 'fiscal_period_average' END AS policy,
               CASE WHEN fx_policy = 'transaction_date' THEN transaction_date ELSE period_start END AS key_start,
               CASE WHEN fx_policy = 'transaction_date' THEN transaction_date ELSE period_end END AS key_end
        FROM fact_funding_line
        WHERE period_end < $as_of AND fx_provider <> 'identity' {scope}
    )
    GROUP BY ALL
"""


#: the rates that rows of closed fiscal years (period ended before $as_of) use, one per lock key, in fx_rate_lock's
#: column order: what lock_closed_rates freezes, and what warehouse/quiet.py asks about before a night publishes
CLOSED_RATES_SQL = _closed_rates_sql()


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
    return _insert_locks(con, CLOSED_RATES_SQL, {"now": locked_at, "load": load_id, "as_of": as_of})


def _insert_locks(con: duckdb.DuckDBPyConnection, rates_sql: str, params: dict) -> int:
    counted = con.execute("SELECT count(*) FROM fx_rate_lock").fetchone()
    assert counted is not None  # an aggregate returns one row
    before = counted[0]
    con.execute(f"INSERT INTO fx_rate_lock SELECT *, $now, $load FROM ({rates_sql}) ON CONFLICT DO NOTHING", params)
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


# -- scoped to the night's changes (ADR 0012) ---------------------------------------------------------------------
# Why scoping is exact. The staging copy starts from the newest private version (ADR 0006): a state this loader
# published, which nobody else can write (analysts get a copy behind a WAL guard). Every publish ran the checks
# below on it, so in that state no lineage key was stored twice, every current file reconciled and every funding
# line's country was in dim_country. Each check is a property of ONE logical file (the lineage key and the
# reconciliation both start with file_key; an orphan is one fact row against dim_country), and tonight only the
# files in ``changed`` had rows written or removed (flows/nightly.py stores, retracts or withdraws nothing else).
# So every other file still passes, and checking the changed files is checking the whole warehouse; the orphan
# check stays whole when dim_country lost a code tonight (a kept row may point at it).
# The derived tables (fx_rate_lock, dim_fiscal_period) are different: a publish that does not run their step (dcf
# replay inserts rows and refreshes neither) leaves them behind, and the next night's whole refresh repairs that. So
# each scoped refresh records, in warehouse_meta, the publish sequence of the state it brought up to date; the next
# night trusts that state only if it is the one it started from (its publish_seq), else it refreshes the whole table.

#: tables whose rows are keyed by lineage (file_key, sheet, excel_row), checked for a row stored twice
LINEAGE_KEYED = ("fact_funding_line", "dim_program", "quarantine_row", "warned_row", "skipped_row")


def night_changes(batches: Iterable[FileBatch], withdrawn: Iterable[dict]) -> frozenset[str]:
    """The logical files whose rows or audit rows this night wrote in the staging copy: every batch stored (loaded or
    failed: storing it replaces all its rows) and every file withdrawn from the inbox (retracted: its rows removed;
    kept: its withdrawn_at set; included either way). Pass the batches ``load_batches`` returned."""
    return frozenset(b.file_key for b in batches) | frozenset(w["file"] for w in withdrawn)


def country_codes(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """dim_country's codes; read them before the night replaces the dimension, for :func:`countries_removed`."""
    return frozenset(r[0] for r in con.execute("SELECT iso3 FROM dim_country").fetchall())


def countries_removed(con: duckdb.DuckDBPyConnection, before: frozenset[str]) -> bool:
    """Whether dim_country lost a code since ``before`` (a kept funding line may point at it: check them all)."""
    return not before <= country_codes(con)


def base_seq(con: duckdb.DuckDBPyConnection) -> int | None:
    """The publish sequence of the state this staging copy started from; None for a new database (nothing checked
    before: everything is checked and refreshed whole)."""
    row = con.execute("SELECT value FROM warehouse_meta WHERE key = 'publish_seq'").fetchone()
    return int(row[0]) if row else None


def _mark_key(step: str) -> str:
    return f"up_to_date:{step}"


def _trusted_mark(con: duckdb.DuckDBPyConnection, step: str) -> dict | None:
    """What ``step`` recorded when it last ran, if that run's publish is the state this copy started from."""
    row = con.execute("SELECT value FROM warehouse_meta WHERE key = ?", [_mark_key(step)]).fetchone()
    seq = base_seq(con)
    if row is None or seq is None:
        return None
    try:
        mark = json.loads(row[0])
    except ValueError:
        return None
    return mark if isinstance(mark, dict) and mark.get("seq") == seq else None


def _set_mark(con: duckdb.DuckDBPyConnection, step: str, seq: int, **extra: str) -> None:
    con.execute(
        "INSERT OR REPLACE INTO warehouse_meta VALUES (?, ?)", [_mark_key(step), json.dumps({"seq": seq, **extra})]
    )


def check_staging(
    con: duckdb.DuckDBPyConnection, changed: AbstractSet[str] | None, dimensions_changed: bool = True
) -> None:
    """The checks before publishing: no lineage key (file_key, sheet, excel_row) stored twice, every current file's
    row counts reconcile (file_reconciliation), every funding line's country is in dim_country. Raises
    PublishCheckFailed.

    ``changed``: the files this night wrote (:func:`night_changes`); only they are checked (see above why that is the
    whole warehouse), and the orphan check too unless ``dimensions_changed`` (dim_country lost a code tonight,
    :func:`countries_removed`). ``None``, or a staging copy that is a new database: the whole warehouse."""
    scoped = changed is not None and base_seq(con) is not None
    keys = sorted(changed or ()) if scoped else []
    files = {"keys": keys} if scoped else {}
    where = "WHERE list_contains($keys, file_key)" if scoped else ""
    if not scoped or keys:
        for table in LINEAGE_KEYED:
            if dup := stored_twice(con, table, keys if scoped else None):
                raise PublishCheckFailed(f"{table}: row {dup} is stored twice")
        bad = con.execute(
            f"SELECT file_key FROM file_reconciliation {where} {'AND' if scoped else 'WHERE'} NOT reconciles "
            "ORDER BY file_key",
            files,
        ).fetchall()
        if bad:
            raise PublishCheckFailed("row counts do not reconcile for: " + ", ".join(r[0] for r in bad))
    if scoped and not dimensions_changed and not keys:
        return
    some = scoped and not dimensions_changed
    counted = con.execute(
        "SELECT count(*) FROM fact_funding_line f ANTI JOIN dim_country c ON c.iso3 = f.country_iso3 "
        f"WHERE f.country_iso3 IS NOT NULL {'AND list_contains($keys, f.file_key)' if some else ''}",
        files if some else {},
    ).fetchone()
    assert counted is not None  # an aggregate returns one row
    if counted[0]:
        raise PublishCheckFailed(f"{counted[0]} funding line(s) point at a country missing from dim_country")


def stored_twice(con: duckdb.DuckDBPyConnection, table: str, keys: Iterable[str] | None) -> tuple[str, str, int] | None:
    """A lineage key (file_key, sheet, excel_row) that ``table`` holds more than once among the files ``keys`` (None:
    every file), or None. Asked one file at a time, as the key starts with the file: one GROUP BY over every row of
    a first load of 5M lines grew the flow's peak memory by ~580 MiB (DuckDB's hash table of 5M keys), one per
    file by ~30 MiB, for less CPU (measured on the 5M-line warehouse of 50 files, 2.4 s against 3.4 s); so memory
    follows the largest file, never the warehouse."""
    if keys is None:
        keys = [r[0] for r in con.execute(f"SELECT DISTINCT file_key FROM {table} ORDER BY file_key").fetchall()]
    for key in keys:
        dup = con.execute(
            f"SELECT sheet, excel_row FROM {table} WHERE file_key = ? GROUP BY ALL HAVING count(*) > 1 "
            "ORDER BY ALL LIMIT 1",
            [key],
        ).fetchone()
        if dup:
            return (key, dup[0], dup[1])
    return None


def lock_rates_scoped(
    con: duckdb.DuckDBPyConnection,
    seq: int,
    as_of: datetime,
    load_id: str,
    release_years: frozenset[int],
    locked_at: datetime,
    changed: AbstractSet[str] | None,
) -> int:
    """:func:`lock_closed_rates`, reading only the rows that can need a new lock tonight: the changed files' rows,
    and the rows whose period ended since the last lock (``period_end`` at or after that night's ``as_of``).

    Exact: the last lock (recorded with its ``as_of``, trusted only if its publish is this copy's base) inserted, or
    found, the key of every row of that state whose period had ended; locks are removed only by ``release_years``
    (then, as with ``changed`` None or no trusted record, every row is read). A row of an unchanged file whose period
    ended before that ``as_of`` was in that state, so its key is locked already and inserting it would do nothing;
    and a key not locked yet has all its rows among those read, so it gets the same candidates. ``seq``: this
    staging copy's publish sequence (Staging.seq). Returns how many rates were newly locked."""
    mark = _trusted_mark(con, "fx_rate_lock")
    since = mark.get("as_of") if mark else None
    if changed is None or release_years or not isinstance(since, str):
        locked = lock_closed_rates(con, as_of, load_id, release_years, locked_at)
    else:
        locked = _insert_locks(
            con,
            _closed_rates_sql("AND (list_contains($keys, file_key) OR period_end >= $since)"),
            {
                "now": locked_at,
                "load": load_id,
                "as_of": as_of,
                "since": datetime.fromisoformat(since),
                "keys": sorted(changed),
            },
        )
    _set_mark(con, "fx_rate_lock", seq, as_of=as_of.isoformat())
    return locked


def refresh_fiscal_periods_scoped(con: duckdb.DuckDBPyConnection, seq: int, changed: AbstractSet[str] | None) -> None:
    """:func:`refresh_fiscal_periods` for the agencies of the changed files only.

    Exact: a fiscal period is (agency, fiscal year) over that agency's funding lines, and a funding line's agency is
    the agency of the source that read its file (flows/kinds/table.py), i.e. its file's audit_source_file.agency_code
    and the first part of its file_key (ADR 0002). So an agency none of whose files changed tonight has the lines,
    and the periods, of the last refresh, if that refresh's publish is this copy's base (else, or with ``changed``
    None, every agency is refreshed). ``seq``: this staging copy's publish sequence (Staging.seq)."""
    if changed is None or _trusted_mark(con, "dim_fiscal_period") is None:
        refresh_fiscal_periods(con)
    elif changed:
        keys = {"keys": sorted(changed)}
        agencies = [
            r[0]
            for r in con.execute(
                "SELECT agency_code FROM audit_source_file WHERE list_contains($keys, file_key) "
                "UNION SELECT split_part(k, '/', 1) FROM (SELECT unnest($keys) AS k)",
                keys,
            ).fetchall()
        ]
        con.execute("DELETE FROM dim_fiscal_period WHERE list_contains(?, agency_code)", [agencies])
        con.execute(
            """
            INSERT INTO dim_fiscal_period
            SELECT agency_code, fiscal_year, min(period_start), max(period_end)
            FROM fact_funding_line WHERE list_contains($agencies, agency_code) GROUP BY ALL ORDER BY ALL
            """,
            {"agencies": agencies},
        )
    _set_mark(con, "dim_fiscal_period", seq)

"""Load into a staging copy of the warehouse, check it, and hand it to warehouse.publish.

The staging copy starts from the newest private version (warehouse/publish.py), never from the published file an
analyst may hold read-write; a failed run leaves everything as it was; one ingestion at a time (exclusive lock).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from schemas.batch import FileBatch
from warehouse.faults import faultpoint
from warehouse.publish import (  # noqa: F401  (re-exported: the flows and the CLI import them from here)
    WarehouseBusy,
    WarehouseError,
    WarehouseUnreadable,
    base_version,
    exclusive_lock,
    explain,
    next_seq,
    publish_file,
    read_only,
    recover,
    unreadable_error,
)
from warehouse.records import create_dataset_view

#: bump with every change to warehouse/sql/001_tables.sql; a published file of another version is rebuilt from the
#: inbox on the next run (every file re-processed into a fresh staging database), never patched in place
SCHEMA_VERSION = "12"


class PublishCheckFailed(RuntimeError):
    """The staging copy failed a consistency check; nothing was published."""


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


def _params(sql: str, values: dict) -> dict:
    """Only the named parameters the statement uses (DuckDB rejects extra ones)."""
    return {k: v for k, v in values.items() if f"${k}" in sql}


def _cells(letters: pd.Series, rows: pd.Series) -> pd.Series:
    """A1 addresses where both the column letter and the row are known, else None."""
    ok = letters.notna() & rows.notna()
    out = pd.Series(None, index=letters.index, dtype=object)
    out[ok] = letters[ok].astype(str) + rows[ok].astype("int64").astype(str)
    return out


def _arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


@dataclass
class LoadInfo:
    load_id: str
    started_at: datetime
    flow_run_id: str | None
    run_by: str
    inbox: str


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


class Staging:
    """A private read-write copy of the last published state (the newest kept version), numbered ``seq``."""

    def __init__(self, published: Path, log: Callable[[str], None] = print):
        self.published = published
        self.log = log
        self.path = published.with_name(f".{published.name}.staging-{os.getpid()}")
        self.replaces_schema: str | None = None  # set when an older layout is rebuilt
        self._replaced: Path | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._table_columns: dict[str, list[str]] = {}
        try:
            self._remove_files()
            self.seq = next_seq(published)
            base = trusted(published)
            if base is not None:
                found = self._schema_of(base)
                if found == SCHEMA_VERSION:
                    shutil.copyfile(base, self.path)
                    faultpoint("staging_copy")
                else:
                    self.replaces_schema, self._replaced = found or "unknown", base
            self._con = duckdb.connect(str(self.path))
            apply_ddl(self.con)
        except BaseException as exc:
            self.discard()
            if isinstance(exc, Exception) and (plain := explain(exc, published)):
                raise plain from None
            raise

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The staging connection (open from construction until publish or discard)."""
        if self._con is None:
            raise RuntimeError("the staging warehouse is closed")
        return self._con

    def _schema_of(self, base: Path) -> str | None:
        try:
            with read_only(base) as con:
                return schema_version(con)
        except WarehouseUnreadable as exc:
            if base == self.published:  # no kept version to start from
                raise unreadable_error(
                    base,
                    exc.cause or exc,
                    "no earlier version is kept: move it aside (or delete it) "
                    "and run again to rebuild it from the inbox and the raw archive",
                ) from None
            raise

    # -- loading ---------------------------------------------------------------------------------------------
    def replace_file(self, batch: FileBatch, load: LoadInfo, now: datetime) -> None:
        """Replace everything one logical file contributed with this version, in one transaction."""
        self.load_batches([batch], load, now, on_reject=None)

    def load_batches(
        self,
        batches: list[FileBatch],
        load: LoadInfo,
        now: datetime,
        on_reject: Callable[[FileBatch, Exception], FileBatch] | None,
    ) -> list[FileBatch]:
        """Replace every file's rows in ONE transaction (a commit per file costs ~40 ms). If the database rejects
        a batch, everything is rolled back, ``on_reject`` turns that batch into a failed one, and the load is
        retried, so one file the database refuses never stops the others. Returns the batches as stored."""
        pending = list(batches)
        while True:
            self.con.execute("BEGIN TRANSACTION")
            current = None
            try:
                for current in pending:
                    self._write_file(current, load, now)
                    faultpoint("loading")
                self.con.execute("COMMIT")
                return pending
            except duckdb.Error as exc:
                self._rollback()
                if plain := explain(exc, self.published):  # disk full, permissions: no file's fault
                    raise plain from exc
                if (
                    on_reject is None
                    or current is None
                    or current.status == "failed"
                    or isinstance(exc, (duckdb.IOException, duckdb.OutOfMemoryException, duckdb.FatalException))
                ):
                    raise
                pending[pending.index(current)] = on_reject(current, exc)

    def _rollback(self) -> None:
        """Roll back if a transaction is still open (a failed COMMIT has already ended it: never mask its error)."""
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def _write_file(self, batch: FileBatch, load: LoadInfo, now: datetime) -> None:
        con = self.con
        for table in FILE_TABLES:
            con.execute(f"DELETE FROM {table} WHERE file_key = ?", [batch.file_key])
        lineage = {
            "file_key": batch.file_key,
            "sheet": batch.sheet,
            "file_hash": batch.file_hash,
            "load_id": load.load_id,
        }
        own = lambda df: df.assign(**{k: v for k, v in lineage.items() if k not in df.columns})  # noqa: E731  (multi-sheet files carry their sheet)
        if batch.rows is not None and len(batch.rows):
            if batch.rows_table is None:
                raise ValueError(f"{batch.file_key}: a batch with rows names no table for them (kind {batch.kind})")
            self._insert(batch.rows_table, batch.rows.assign(**lineage))
        if "ref_series_edition" in batch.tables:
            self._claim_edition(batch)
        for table, frame in batch.tables.items():
            if len(frame):
                self._insert(table, own(frame).assign(loaded_at=now) if table == "ref_series_edition" else own(frame))
        if "record_field" in batch.tables:
            create_dataset_view(con, batch.tables["record_field"])
        if batch.quarantined is not None and len(batch.quarantined):
            self._insert("quarantine_row", own(self._quarantine_frame(batch)))
        if batch.warned is not None and len(batch.warned):
            self._insert("warned_row", own(self._held_frame(batch, batch.warned, "warn")))
        if batch.skipped is not None and len(batch.skipped):
            self._insert("skipped_row", own(batch.skipped))
        self._record_failures(batch, load, now)
        self._record_file(batch, load, now)

    def _claim_edition(self, batch: FileBatch) -> None:
        """One file per edition: a second file claiming an edition another file already loaded is refused."""
        row = batch.tables["ref_series_edition"].iloc[0]
        other = self.con.execute(
            "SELECT file_key FROM ref_series_edition WHERE dataset = ? AND edition = ? AND file_key <> ?",
            [row["dataset"], row["edition"], batch.file_key],
        ).fetchone()
        if other:
            raise duckdb.ConstraintException(
                f"edition {row['edition']} of {row['dataset']} is already loaded from "
                f"{other[0]}; keep one file per edition (remove one of them)"
            )

    def _columns(self, table: str) -> list[str]:
        if table not in self._table_columns:
            self._table_columns[table] = [
                r[0]
                for r in self.con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
            ]
        return self._table_columns[table]

    def _insert(self, table: str, df: pd.DataFrame) -> None:
        cols = self._columns(table)
        arrow = _arrow(df[[c for c in cols if c in df.columns]])
        self.con.register("_incoming", arrow)
        try:
            names = ", ".join(c for c in cols if c in df.columns)
            self.con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _incoming")
        finally:
            self.con.unregister("_incoming")

    @staticmethod
    def _quarantine_frame(batch: FileBatch) -> pd.DataFrame:
        assert batch.quarantined is not None, "only called for a batch with quarantined rows"
        return Staging._held_frame(batch, batch.quarantined, "block")

    @staticmethod
    def _held_frame(batch: FileBatch, q: pd.DataFrame, severity: str) -> pd.DataFrame:
        """Rows kept with their cells as read (quarantined: the blocking rules; warned: the warning rules)."""
        assert batch.failures is not None, "only called for a batch with failures"
        keys = [c for c in ("sheet", "excel_row") if c in q.columns]  # multi-sheet files: a row is (sheet, row)
        cells = q.drop(columns=keys).astype(object).where(q.drop(columns=keys).notna(), None)
        raw_json = [json.dumps(rec, ensure_ascii=False) for rec in cells.to_dict(orient="records")]
        blocking = batch.failures[batch.failures["severity"] == severity]
        fkeys = [c for c in keys if c in blocking.columns]
        rules = blocking.groupby(fkeys)["rule"].agg(lambda s: ",".join(sorted(set(s))))
        index = pd.MultiIndex.from_frame(q[fkeys]) if len(fkeys) > 1 else pd.Index(q["excel_row"])
        out = pd.DataFrame(
            {
                "excel_row": q["excel_row"].astype("int32").to_numpy(),
                "agency_code": batch.agency_code,
                "kind": batch.kind,
                "raw_json": raw_json,
                "rules": pd.Series(rules.reindex(index).to_numpy()).fillna("").to_numpy(),
            }
        )
        if "sheet" in q.columns:
            out["sheet"] = q["sheet"].to_numpy()
        return out

    def _record_failures(
        self, batch: FileBatch, load: LoadInfo, now: datetime, scope_rows: list[int] | None = None
    ) -> None:
        """Upsert the batch's failures; open failures of the file that no longer occur are resolved (only among
        ``scope_rows`` when given: a replay re-checks some rows, not the file)."""
        f = (
            batch.failures
            if batch.failures is not None
            else pd.DataFrame(columns=["excel_row", "column", "value", "rule", "severity", "message", "suggestion"])
        )
        letters = pd.Series(batch.column_letters, dtype=object)
        headers = pd.Series(batch.source_columns, dtype=object)
        incoming = pd.DataFrame(
            {
                "excel_row": f["excel_row"].astype("Int64"),
                "column_name": f["column"].astype(object),
                "source_column": f["column"].astype(object).map(headers),
                "cell": f["cell"].astype(object)
                if "cell" in f
                else _cells(f["column"].astype(object).map(letters), f["excel_row"]),
                "sheet": (f["sheet"] if "sheet" in f else pd.Series(None, index=f.index, dtype=object)).astype(
                    pd.StringDtype("pyarrow")
                ),
                "value": f["value"].astype(object),
                "rule": f["rule"].astype(object),
                "severity": f["severity"].astype(object),
                "message": f["message"].astype(object),
                "suggestion": f["suggestion"].astype(object),
            }
        )
        self.con.register("_failures", _arrow(incoming))
        try:
            params = {
                "file_key": batch.file_key,
                "file_hash": batch.file_hash,
                "agency": batch.agency_code,
                "sheet": batch.sheet,
                "load": load.load_id,
                "now": now,
                "scope": scope_rows or [],
            }
            run = lambda sql: self.con.execute(sql, _params(sql, params))  # noqa: E731
            run(
                """
                CREATE OR REPLACE TEMP TABLE _new_failures AS
                SELECT md5(concat_ws('|', $file_key, coalesce(sheet, $sheet), coalesce(CAST(excel_row AS VARCHAR), '-'),
                                     coalesce(column_name, '-'), rule, coalesce(value, ''))) AS failure_id, *
                FROM (SELECT DISTINCT * FROM _failures)
                """
            )
            run(
                """
                UPDATE audit_validation_failure SET status = 'resolved', resolved_at = $now
                WHERE file_key = $file_key AND status = 'open'
                  AND failure_id NOT IN (SELECT failure_id FROM _new_failures)
                """
                + ("AND list_contains($scope, excel_row)" if scope_rows is not None else "")
            )
            run(
                """
                INSERT INTO audit_validation_failure
                SELECT failure_id, $file_key, $file_hash, $agency, coalesce(sheet, $sheet), excel_row, cell, column_name, source_column,
                       value, rule, severity, message, suggestion, 'open', $load, $load, $now, $now, NULL
                FROM _new_failures
                ON CONFLICT (failure_id) DO UPDATE SET
                    status = 'open', file_hash = excluded.file_hash, last_seen_load = excluded.last_seen_load,
                    last_seen_at = excluded.last_seen_at, message = excluded.message,
                    suggestion = excluded.suggestion, resolved_at = NULL
                """
            )
        finally:
            self.con.unregister("_failures")

    def _record_file(self, batch: FileBatch, load: LoadInfo, now: datetime) -> None:
        c = batch.counts
        self.con.execute("UPDATE audit_source_file SET is_current = false WHERE file_key = ?", [batch.file_key])
        self.con.execute(
            """
            INSERT INTO audit_source_file VALUES
            ($file_key, $file_hash, $config_hash, $agency, $kind, $path, $size, $mtime,
             coalesce((SELECT min(first_seen_at) FROM audit_source_file WHERE file_key = $file_key AND file_hash = $file_hash), $now),
             $load, true, $status, $sheet, $header_row, $read, $loaded, $quarantined, $skipped, $message, $context,
             $archive, NULL)
            ON CONFLICT (file_key, file_hash, config_hash) DO UPDATE SET
                load_id = excluded.load_id, is_current = true, status = excluded.status, path = excluded.path,
                archive_path = coalesce(excluded.archive_path, audit_source_file.archive_path), withdrawn_at = NULL,
                rows_read = excluded.rows_read, rows_loaded = excluded.rows_loaded,
                rows_quarantined = excluded.rows_quarantined, rows_skipped = excluded.rows_skipped,
                message = excluded.message, context_json = excluded.context_json
            """,
            {
                "file_key": batch.file_key,
                "file_hash": batch.file_hash,
                "config_hash": batch.config_hash,
                "agency": batch.agency_code,
                "kind": batch.kind,
                "path": batch.path,
                "size": batch.size_bytes,
                "mtime": batch.modified_at,
                "now": now,
                "load": load.load_id,
                "status": batch.status,
                "sheet": batch.sheet,
                "header_row": batch.header_row,
                "read": c["rows_read"],
                "loaded": c["rows_loaded"],
                "quarantined": c["rows_quarantined"],
                "skipped": c["rows_skipped"],
                "message": batch.message,
                "context": batch.context_json,
                "archive": batch.archive_path,
            },
        )

    def apply_replay(
        self, batch: FileBatch, replayed: list[int], load: LoadInfo, now: datetime, were_loaded: int = 0
    ) -> None:
        """Held rows of one file re-normalised (quarantined ones, and ``were_loaded`` rows loaded with a mapping
        warning): rows that now pass are loaded (a warned row replaces its earlier version), the rest stay
        quarantined with their new reasons, failures of the replayed rows are resolved or refreshed, the file's
        counts move."""
        con = self.con
        lineage = {
            "file_key": batch.file_key,
            "sheet": batch.sheet,
            "file_hash": batch.file_hash,
            "load_id": load.load_id,
        }
        con.execute("BEGIN TRANSACTION")
        try:
            target = batch.rows_table or ""
            for table in ("quarantine_row", "warned_row", target):  # a replayed row is written again below
                con.execute(
                    f"DELETE FROM {table} WHERE file_key = ? AND list_contains(?, excel_row)",
                    [batch.file_key, replayed],
                )
            rows = batch.rows
            passed = 0 if rows is None else len(rows)
            if rows is not None and passed:
                self._insert(target, rows.assign(**lineage))
            if batch.quarantined is not None and len(batch.quarantined):
                self._insert("quarantine_row", self._quarantine_frame(batch).assign(**lineage))
            if batch.warned is not None and len(batch.warned):
                self._insert("warned_row", self._held_frame(batch, batch.warned, "warn").assign(**lineage))
            self._record_failures(batch, load, now, scope_rows=replayed)
            moved = passed - were_loaded  # rows that left quarantine (a warned row was already counted loaded)
            con.execute(
                "UPDATE audit_source_file SET rows_loaded = rows_loaded + ?, rows_quarantined = rows_quarantined - ? "
                "WHERE file_key = ? AND is_current",
                [moved, moved, batch.file_key],
            )
            con.execute("COMMIT")
        except Exception as exc:
            self._rollback()
            if plain := explain(exc, self.published):
                raise plain from exc
            raise

    def mark_withdrawn(
        self, present: set[str], policy: dict[str, str], now: datetime, skip_agencies: AbstractSet[str] = frozenset()
    ) -> list[dict]:
        """Current files missing from the inbox: recorded as withdrawn (when first missed); their rows kept, or
        retracted where the agency's source declares ``withdrawn: retract``. A file back in the inbox is present
        again. Returns one entry per withdrawn file for the run summary."""
        con = self.con
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
                con.execute(
                    "UPDATE audit_source_file SET is_current = false WHERE file_key = ? AND is_current", [file_key]
                )
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

    def lock_closed_rates(self, as_of: datetime, load_id: str, release_years: frozenset[int] = frozenset()) -> int:
        """Freeze the rates that rows of closed fiscal years (period ended before ``as_of``) use; release the
        locks of ``release_years`` first (``dcf rerate``). Returns how many rates were newly locked."""
        if release_years:
            self.con.execute("DELETE FROM fx_rate_lock WHERE list_contains(?, fiscal_year)", [sorted(release_years)])
        counted = self.con.execute("SELECT count(*) FROM fx_rate_lock").fetchone()
        assert counted is not None  # an aggregate returns one row
        before = counted[0]
        self.con.execute(
            """
            INSERT INTO fx_rate_lock
            SELECT currency, policy, key_start, key_end, fiscal_year, any_value(fx_rate), any_value(fx_rate_date),
                   any_value(fx_provider), $now, $load
            FROM (
                SELECT currency, fiscal_year, fx_rate, fx_rate_date, fx_provider,
                       CASE WHEN fx_policy = 'transaction_date' THEN 'transaction_date' ELSE 'fiscal_period_average' END AS policy,
                       CASE WHEN fx_policy = 'transaction_date' THEN transaction_date ELSE period_start END AS key_start,
                       CASE WHEN fx_policy = 'transaction_date' THEN transaction_date ELSE period_end END AS key_end
                FROM fact_funding_line
                WHERE period_end < $as_of AND fx_provider <> 'identity'
            )
            GROUP BY ALL
            ON CONFLICT DO NOTHING
            """,
            {"now": datetime.now(), "load": load_id, "as_of": as_of},
        )
        counted = self.con.execute("SELECT count(*) FROM fx_rate_lock").fetchone()
        assert counted is not None
        return counted[0] - before

    def replace_dimension(self, table: str, df: pd.DataFrame) -> None:
        """Reference dimensions are replaced whole from reference/ and sources/ on every load."""
        self.con.execute(f"DELETE FROM {table}")
        if len(df):
            self._insert(table, df)

    def refresh_program_history(self, load_id: str, now: datetime) -> None:
        """Close the versions of programs that changed or disappeared; open versions for new or changed ones.
        A load that changes no program changes nothing here. Versions are ordered by the load sequence (``seq``),
        not the clock: a clock moved back changes the timestamps shown, never the order or the checks."""
        self.con.execute(
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
            {"seq": self.seq},
        )
        self.con.execute(
            """
            UPDATE program_history h SET valid_to = $now, valid_to_seq = $seq
            WHERE valid_to_seq IS NULL AND NOT EXISTS (
                SELECT 1 FROM _programs_now c
                WHERE c.agency_code = h.agency_code AND c.program_code = h.program_code AND c.attr_hash = h.attr_hash)
            """,
            {"now": now, "seq": self.seq},
        )
        self.con.execute(
            """
            INSERT INTO program_history
            SELECT c.*, $now, NULL, $load, $seq, NULL FROM _programs_now c
            WHERE NOT EXISTS (
                SELECT 1 FROM program_history h
                WHERE h.valid_to_seq IS NULL AND h.agency_code = c.agency_code AND h.program_code = c.program_code
                  AND h.attr_hash = c.attr_hash)
            """,
            {"now": now, "load": load_id, "seq": self.seq},
        )

    def refresh_fiscal_periods(self) -> None:
        self.con.execute("DELETE FROM dim_fiscal_period")
        self.con.execute(
            """
            INSERT INTO dim_fiscal_period
            SELECT agency_code, fiscal_year, min(period_start), max(period_end)
            FROM fact_funding_line GROUP BY ALL ORDER BY ALL
            """
        )

    def record_failure_counts(self, load: LoadInfo) -> None:
        self.con.execute(
            """
            INSERT INTO audit_failure_count
            SELECT $load, agency_code, rule, severity, count(*)
            FROM audit_validation_failure WHERE last_seen_load = $load GROUP BY ALL
            """,
            {"load": load.load_id},
        )

    def open_failures(self, limit: int = 200) -> pd.DataFrame:
        return self.con.execute(
            "SELECT file_key, excel_row, cell, source_column, value, message, suggestion, rule FROM open_failures LIMIT ?",
            [limit],
        ).df()

    def record_load(self, load: LoadInfo, outcome: str, totals: dict[str, int], finished_at: datetime) -> None:
        self.con.execute(
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
                self.seq,
                totals.get("files_withdrawn", 0),
            ],
        )

    # -- checks and publish -------------------------------------------------------------------------------------
    LINEAGE_KEYED = ("fact_funding_line", "dim_program", "quarantine_row", "warned_row", "skipped_row")

    def check(self) -> None:
        faultpoint("checks")
        for table in self.LINEAGE_KEYED:
            dup = self.con.execute(
                f"SELECT file_key, sheet, excel_row FROM {table} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
            ).fetchone()
            if dup:
                raise PublishCheckFailed(f"{table}: row {dup} is stored twice")
        bad = self.con.execute("SELECT file_key FROM file_reconciliation WHERE NOT reconciles").fetchall()
        if bad:
            raise PublishCheckFailed("row counts do not reconcile for: " + ", ".join(r[0] for r in bad))
        counted = self.con.execute(
            "SELECT count(*) FROM fact_funding_line f ANTI JOIN dim_country c ON c.iso3 = f.country_iso3 "
            "WHERE f.country_iso3 IS NOT NULL"
        ).fetchone()
        assert counted is not None  # an aggregate returns one row
        orphans = counted[0]
        if orphans:
            raise PublishCheckFailed(f"{orphans} funding line(s) point at a country missing from dim_country")

    def publish(self) -> None:
        """Stamp the version number, checkpoint, close, and publish (warehouse/publish.py publish_file)."""
        self.con.execute(
            "INSERT OR REPLACE INTO warehouse_meta VALUES ('publish_seq', ?), ('published_at', ?)",
            [str(self.seq), datetime.now().isoformat(timespec="seconds")],
        )
        self.con.execute("CHECKPOINT")
        self.con.close()
        self._con = None
        try:
            if self.replaces_schema and self._replaced == self.published:  # keep the old layout's file and history
                keep = self.published.with_name(f"{self.published.name}.schema-{self.replaces_schema}.{self.seq:06d}")
                if not keep.exists():
                    os.link(self.published, keep)
            publish_file(self.path, self.published, self.seq, self.log)
        except OSError as exc:
            raise (explain(exc, self.published) or exc) from None

    def discard(self) -> None:
        """Close and remove the staging copy (after any failure; never raises)."""
        if self._con is not None:
            try:
                self.con.close()
            except duckdb.Error:
                pass
            self._con = None
        self._remove_files()

    def _remove_files(self) -> None:
        for p in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass

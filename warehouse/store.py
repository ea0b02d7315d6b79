"""Load into a staging copy of the warehouse, check it, and hand it to warehouse.publish.

The staging copy starts from the newest private version (warehouse/publish.py), never from the published file an
analyst may hold read-write; a failed run leaves everything as it was; one ingestion at a time (exclusive lock).

This module is the loading itself (the ``Staging`` class). Around it: the layout and its version (warehouse/ddl.py),
what the last published state holds (warehouse/published_state.py), what loading a file records besides its rows
(warehouse/file_audit.py), the whole-warehouse steps of a run (warehouse/run_steps.py), and publishing, versions,
the lock and recovery (warehouse/publish.py). Their public names are re-exported here: the flows, the CLI and the
tests import them from ``warehouse.store``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from schemas.batch import FileBatch
from warehouse import run_steps
from warehouse.analyst import RESTRICTED_KEY
from warehouse.connect import close, configured_key, encrypt_copy, is_encrypted, open_warehouse
from warehouse.ddl import (  # noqa: F401  (re-exported)
    FILE_TABLES,
    SCHEMA_VERSION,
    apply_ddl,
    ddl_statements,
    schema_version,
)
from warehouse.editions import FIGURE_COLUMNS, same_figures
from warehouse.faults import faultpoint
from warehouse.file_audit import held_frame, record_failures, record_file, store_held, to_arrow
from warehouse.filecopy import copy_file
from warehouse.memory import give_back
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
from warehouse.published_state import (  # noqa: F401  (re-exported)
    archived_current_files,
    known_versions,
    locked_rates,
    replay_candidates,
    trusted,
)
from warehouse.records import create_dataset_view
from warehouse.run_steps import LoadInfo, PublishCheckFailed  # noqa: F401  (PublishCheckFailed re-exported)

#: DuckDB's memory while it stores files: beyond it, DuckDB writes what it holds to its spill folder beside the
#: staging copy instead of growing (1,310,719 failures of a sheet whose every row fails, stored alone: +0.43 GiB
#: under 400MB, +0.68 GiB without a limit; the same failures seen again, deleted and inserted anew: +0.73 GiB under
#: 600MB, +0.99 GiB without; 400MB is too little for that). A file DuckDB cannot store within it is stored again
#: under the limit the connection was opened with (DuckDB's default: 80% of the machine's memory), with a warning:
#: the bound never costs a file. Set with DCF_STORE_MEMORY (DuckDB's units: "600MB", "1GiB"); "0" or "off": no bound.
STORE_MEMORY_ENV = "DCF_STORE_MEMORY"
STORE_MEMORY = "600MB"
_SIZE = re.compile(r"\s*\d+(\.\d+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)\s*", re.IGNORECASE)


def store_memory(log: Callable[[str], None] = print) -> str | None:
    """The memory bound for storing (None: no bound), from DCF_STORE_MEMORY or the default."""
    value = os.environ.get(STORE_MEMORY_ENV, "").strip()
    if value.lower() in ("0", "off", "none"):
        return None
    if not value:
        return STORE_MEMORY
    if _SIZE.fullmatch(value):
        return value.replace(" ", "")
    log(f"{STORE_MEMORY_ENV}={value!r} is not a size like '600MB' or '1GiB'; storing under {STORE_MEMORY}")
    return STORE_MEMORY


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
        self._memory_limit = ""
        self._bounded = False  # storing under the memory bound (store_memory) right now
        try:
            self._remove_files()
            self.seq = next_seq(published)
            base = trusted(published)
            if base is not None:
                found = self._schema_of(base)
                if found == SCHEMA_VERSION:
                    if configured_key() is not None and not is_encrypted(base):  # the key was set since
                        log(f"encrypting the warehouse: the staging copy of {base.name} is written under the key")
                        encrypt_copy(base, self.path)
                    else:
                        copy_file(base, self.path)
                    faultpoint("staging_copy")
                else:
                    self.replaces_schema, self._replaced = found or "unknown", base
            self._con = open_warehouse(self.path, read_only=False)
            #: DuckDB's memory limit as opened (its default), restored after each load (:meth:`_storing`)
            self._memory_limit = self._setting("memory_limit")
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
        """Replace every file's rows in ONE transaction (a commit per file costs ~40 ms). If storing a batch fails
        (the database rejects it, or its rows cannot be converted to Arrow), everything is rolled back,
        ``on_reject`` turns that batch into a failed one, and the load is retried, so one file never stops the
        others. The machine's problems (disk, I/O, memory of the database) stop the load. Returns the batches as
        stored."""
        with self._storing():
            return self._load_batches(list(batches), load, now, on_reject)

    @contextmanager
    def _storing(self) -> Iterator[None]:
        """DuckDB stores files on ONE thread, then gets its threads back for the checks and the publish, and lets
        go of the blocks it keeps cached.

        - A file's insert gains nothing from a second thread: measured on a 100,000-line file (27 columns, 2 cores,
          load average 8), 3.1 microseconds of CPU per line and 1.0 s of commit on one thread against 9.3 and 1.6 s
          on two, wall clock likewise, as the threads contend with each other and with the workers reading the next
          files.
        - DuckDB's buffer pool keeps every block it wrote until its memory limit (80% of the machine's memory) is
          reached: 2.8 MiB per 100,000 lines, 140 MiB of the flow's memory by the end of a 5M-line night. Once the
          files are committed nothing is pinned, so lowering the limit evicts them all (they are on disk and in the
          OS's cache); then the limit the connection was opened with is set again. Never ``RESET memory_limit``: in
          DuckDB 1.5.5 it shows the default again but leaves the buffer pool at the lowered limit (the next insert
          fails with "Out of Memory"), which the tests check against."""
        threads = int(self._setting("threads"))
        self.con.execute("SET threads = 1")
        bound = store_memory(self.log)
        if bound is not None and self._memory_limit:
            try:
                self.con.execute(f"SET memory_limit = '{bound}'")
                self._bounded = True
            except duckdb.OutOfMemoryException as exc:  # DuckDB holds more than that already: store without it
                self.log(f"storing without {STORE_MEMORY_ENV}={bound}: {str(exc).splitlines()[0][:200]}")
        try:
            yield
        finally:
            self._bounded = False
            # never hide the error that ended the load (an interrupt may land here): these only save resources
            limit = self._memory_limit.replace("'", "''")
            settings = [f"SET threads = {threads}"]
            if limit:
                settings[:0] = ["SET memory_limit = '1MB'", f"SET memory_limit = '{limit}'"]
            for statement in settings:
                for _ in range(2):  # an interrupt stops one statement, never the next one
                    if self._con is None or threads < 1:
                        break
                    try:
                        self._con.execute(statement)
                        break
                    except duckdb.Error:
                        pass

    def _setting(self, name: str) -> str:
        row = self.con.execute(f"SELECT current_setting('{name}')").fetchone()
        assert row is not None  # a scalar query returns one row
        return str(row[0])

    def _load_batches(
        self,
        pending: list[FileBatch],
        load: LoadInfo,
        now: datetime,
        on_reject: Callable[[FileBatch, Exception], FileBatch] | None,
    ) -> list[FileBatch]:
        while True:
            self.con.execute("BEGIN TRANSACTION")
            current = None
            try:
                for current in pending:
                    self._write_file(current, load, now)
                    faultpoint("loading")
                self.con.execute("COMMIT")
                return pending
            except Exception as exc:  # any error storing one file's rows is that file's failure
                self._rollback()
                if isinstance(exc, duckdb.OutOfMemoryException) and self._bounded:
                    self._unbound(current, exc)
                    continue
                if plain := explain(exc, self.published):  # disk full, permissions: no file's fault
                    raise plain from exc
                if (
                    on_reject is None
                    or current is None
                    or current.status == "failed"
                    or isinstance(
                        exc,
                        (
                            OSError,
                            duckdb.IOException,
                            duckdb.OutOfMemoryException,
                            duckdb.FatalException,
                            duckdb.InterruptException,  # a signal, never a file's fault
                        ),
                    )
                ):
                    raise
                pending[pending.index(current)] = on_reject(current, exc)

    def _unbound(self, batch: FileBatch | None, exc: Exception) -> None:
        """DuckDB could not store within the memory bound: lift it for the rest of this load (the files are
        stored again from the start of the transaction), and say so."""
        limit = self._memory_limit.replace("'", "''")
        self.con.execute(f"SET memory_limit = '{limit}'")
        self._bounded = False
        name = batch.file_key if batch is not None else "a file"
        first = str(exc).splitlines()[0][:200]
        self.log(
            f"{name}: could not be stored within {STORE_MEMORY_ENV}={store_memory(lambda _: None)} ({first}); "
            f"stored again without that bound (up to {self._memory_limit})"
        )

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
        # the lineage is given to the INSERT as parameters, not as four columns of 100,000 equal strings each;
        # a table's own frame keeps a lineage column it carries (multi-sheet files carry their sheet), the rows never
        if batch.rows is not None and len(batch.rows):
            if batch.rows_table is None:
                raise ValueError(f"{batch.file_key}: a batch with rows names no table for them (kind {batch.kind})")
            self._insert(batch.rows_table, batch.rows, lineage, True)
        if "ref_series_edition" in batch.tables:
            self._claim_edition(batch)
        for table, frame in batch.tables.items():
            if len(frame):
                self._insert(table, frame.assign(loaded_at=now) if table == "ref_series_edition" else frame, lineage)
        if "record_field" in batch.tables:
            create_dataset_view(con, batch.tables["record_field"])
        if batch.quarantined is not None and len(batch.quarantined):
            self._insert_held("quarantine_row", batch, batch.quarantined, "block", lineage)
            give_back()  # what building the held rows took (their Arrow columns, the rules) goes back
        if batch.warned is not None and len(batch.warned):
            self._insert_held("warned_row", batch, batch.warned, "warn", lineage)
        if batch.skipped is not None and len(batch.skipped):
            self._insert("skipped_row", batch.skipped, lineage)
        record_failures(con, batch, load.load_id, now)
        record_file(con, batch, load.load_id, now)

    def _claim_edition(self, batch: FileBatch) -> None:
        """One file per edition: a second file claiming an edition another file already loaded is refused, naming
        that file and saying whether the figures are the same (flows/editions.py settles claims of one night)."""
        row = batch.tables["ref_series_edition"].iloc[0]
        other = self.con.execute(
            "SELECT file_key FROM ref_series_edition WHERE dataset = ? AND edition = ? AND file_key <> ?",
            [row["dataset"], row["edition"], batch.file_key],
        ).fetchone()
        if other:
            loaded = self.con.execute(
                f"SELECT {', '.join(FIGURE_COLUMNS)} FROM ref_series_value WHERE file_key = ?", [other[0]]
            ).df()
            mine = batch.tables.get("ref_series_value", pd.DataFrame(columns=FIGURE_COLUMNS))
            same = same_figures(loaded, mine)
            raise duckdb.ConstraintException(
                f"edition {row['edition']} of {row['dataset']} is already loaded from {other[0]} "
                + ("with the same figures" if same else "and this file's figures differ from it")
                + "; keep one file per edition (remove one of them)"
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

    def _insert(
        self, table: str, df: pd.DataFrame, same: Mapping[str, object] | None = None, override: bool = False
    ) -> None:
        """Insert the frame's columns that ``table`` has; ``same``: one value for every row of a column the frame
        lacks (or, with ``override``, of that column whatever the frame holds), passed as a query parameter."""
        cols = self._columns(table)
        same = {c: v for c, v in (same or {}).items() if c in cols and (override or c not in df.columns)}
        own = [c for c in cols if c in df.columns and c not in same]
        constant = [c for c in cols if c in same]
        arrow = to_arrow(df[own])
        self.con.register("_incoming", arrow)
        try:
            names = ", ".join(own + constant)
            values = ", ".join(own + ["?"] * len(constant))
            self.con.execute(
                f"INSERT INTO {table} ({names}) SELECT {values} FROM _incoming", [same[c] for c in constant]
            )
        finally:
            self.con.unregister("_incoming")
            del arrow

    def _insert_held(
        self,
        table: str,
        batch: FileBatch,
        q: pd.DataFrame,
        severity: str,
        same: Mapping[str, object],
        override: bool = False,
    ) -> None:
        """Rows held back with their cells as JSON: built by DuckDB in the INSERT (file_audit.store_held), or by
        Python where the cells cannot go to DuckDB as they are."""
        if not store_held(self.con, table, self._columns(table), batch, q, severity, same, override):
            self._insert(table, held_frame(batch, q, severity), same, override)

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
                self._insert(target, rows, lineage, True)
            if batch.quarantined is not None and len(batch.quarantined):
                self._insert_held("quarantine_row", batch, batch.quarantined, "block", lineage, True)
            if batch.warned is not None and len(batch.warned):
                self._insert_held("warned_row", batch, batch.warned, "warn", lineage, True)
            record_failures(con, batch, load.load_id, now, scope_rows=replayed)
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

    def restrict(self, agencies: AbstractSet[str]) -> None:
        """Record which agencies are restricted (their source YAML says ``restricted: true``): each publish then
        writes an analyst edition without their rows (warehouse/analyst.py). Kept by the copies a replay or rerate
        starts from; the nightly flow sets it from the source YAMLs every night."""
        self.con.execute("DELETE FROM warehouse_meta WHERE key = ?", [RESTRICTED_KEY])
        if agencies:
            self.con.execute("INSERT INTO warehouse_meta VALUES (?, ?)", [RESTRICTED_KEY, json.dumps(sorted(agencies))])

    def replace_dimension(self, table: str, df: pd.DataFrame) -> None:
        """Reference dimensions are replaced whole from reference/ and sources/ on every load."""
        self.con.execute(f"DELETE FROM {table}")
        if len(df):
            self._insert(table, df)

    # -- whole-warehouse steps of a run (warehouse/run_steps.py) ----------------------------------------------
    def mark_withdrawn(
        self, present: set[str], policy: dict[str, str], now: datetime, skip_agencies: AbstractSet[str] = frozenset()
    ) -> list[dict]:
        """Record current files missing from the inbox as withdrawn (run_steps.mark_withdrawn)."""
        return run_steps.mark_withdrawn(self.con, present, policy, now, skip_agencies)

    def lock_closed_rates(self, as_of: datetime, load_id: str, release_years: frozenset[int] = frozenset()) -> int:
        """Freeze the rates of closed fiscal years (run_steps.lock_closed_rates); returns how many were locked."""
        return run_steps.lock_closed_rates(self.con, as_of, load_id, release_years, locked_at=datetime.now())

    def refresh_program_history(self, load_id: str, now: datetime) -> None:
        run_steps.refresh_program_history(self.con, self.seq, load_id, now)

    def refresh_fiscal_periods(self) -> None:
        run_steps.refresh_fiscal_periods(self.con)

    def record_failure_counts(self, load: LoadInfo) -> None:
        run_steps.record_failure_counts(self.con, load.load_id)

    def open_failures(self, limit: int = 200) -> pd.DataFrame:
        return run_steps.open_failures(self.con, limit)

    def record_load(self, load: LoadInfo, outcome: str, totals: dict[str, int], finished_at: datetime) -> None:
        run_steps.record_load(self.con, self.seq, load, outcome, totals, finished_at)

    def record_refused(self, load: LoadInfo, refused: list[dict], seen_at: datetime) -> None:
        run_steps.record_refused(self.con, load, refused, seen_at)

    # -- checks and publish -------------------------------------------------------------------------------------
    LINEAGE_KEYED = run_steps.LINEAGE_KEYED

    def check(self, changed: AbstractSet[str] | None = None, dimensions_changed: bool = True) -> None:
        """The checks before publishing (run_steps.check_staging): only the files ``changed`` tonight (and every
        funding line's country when ``dimensions_changed``), or the whole warehouse when ``changed`` is None."""
        faultpoint("checks")
        run_steps.check_staging(self.con, changed, dimensions_changed)

    def publish(self) -> None:
        """Stamp the version number, checkpoint, close, and publish (warehouse/publish.py publish_file)."""
        self.con.execute(
            "INSERT OR REPLACE INTO warehouse_meta VALUES ('publish_seq', ?), ('published_at', ?)",
            [str(self.seq), datetime.now().isoformat(timespec="seconds")],
        )
        self.con.execute("CHECKPOINT")
        close(self.con)
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
                close(self.con)
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
        # DuckDB's spill folder (its temp_directory, <database>.tmp): made when the buffer pool must write blocks out
        shutil.rmtree(self.path.with_name(self.path.name + ".tmp"), ignore_errors=True)

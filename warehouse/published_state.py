"""What the loader's last published state holds, read before a run stages anything: the trusted file (the newest
private version, warehouse/publish.py), the file versions it already has, its frozen FX rates, its archived files
and the held rows a replay can re-normalise. Each opens the trusted file read-only, or asks a :class:`TrustedLook`
(one connection shared by everything a night asks before it stages anything)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


class TrustedLook:
    """The last published state (:func:`trusted`, found when the look is made), opened read-only at most once for
    everything a night asks of it before it stages anything: its frozen rates (:func:`locked_rates`), its files
    (flows/nightly_discover.py) and, on a night with nothing new, whether anything would change (warehouse/quiet.py).
    Opening a warehouse costs DuckDB 40-80 ms on an idle machine, several times that on a busy one, and a night asked
    three times. Make it with the lock held (no publish moves the trusted file meanwhile); use it as a context
    manager: the connection opens on first use and closes on exit, or on :meth:`close` (before a staging copy is made
    of that file; asked again after, it opens again). ``opened`` counts the openings."""

    def __init__(self, warehouse: Path):
        self.warehouse = warehouse
        self.source = trusted(warehouse)
        self.opened = 0
        self._stack: ExitStack | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> TrustedLook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connection(self) -> duckdb.DuckDBPyConnection | None:
        """The trusted file's connection (None for a new warehouse)."""
        if self.source is None:
            return None
        if self._con is None:
            with ExitStack() as stack:
                self._con = stack.enter_context(read_only(self.source))
                self._stack = stack.pop_all()
            self.opened += 1
        return self._con

    def close(self) -> None:
        stack, self._stack, self._con = self._stack, None, None
        if stack is not None:
            stack.close()


@contextmanager
def _trusted_con(warehouse: Path, look: TrustedLook | None) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The trusted file's connection: ``look``'s (left open), else one of its own for the ``with`` block; None for a
    new warehouse."""
    if look is not None:
        yield look.connection()
        return
    source = trusted(warehouse)
    if source is None:
        yield None
        return
    with read_only(source) as con:
        yield con


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


def locked_rates(
    warehouse: Path, release_years: frozenset[int] = frozenset(), look: TrustedLook | None = None
) -> pd.DataFrame:
    """The frozen rates of closed fiscal years in the last published state, less the years being re-rated
    (``look``: asked through its connection instead of opening the trusted file)."""
    empty = pd.DataFrame(
        columns=["currency", "policy", "key_start", "key_end", "fiscal_year", "units_per_usd", "rate_date", "provider"]
    )
    with _trusted_con(warehouse, look) as con:
        if con is None or schema_version(con) != SCHEMA_VERSION:
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

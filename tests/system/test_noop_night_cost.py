"""A night with nothing new costs the same whatever the warehouse's size (issue 15): it opens the last published
state once (discovery, the frozen rates and the quiet-night check share one connection, warehouse/published_state.py
TrustedLook), the published file at most for recovery and the quiet check's version number, and reads no table that
grows with the lines: the count of closed-year rates to freeze (every fact) is left by the publishing night in the
quiet memo (warehouse/quiet.py settled_rates), and the dimensions found the same are not compared again.

Counted, not timed: every DuckDB connection and every statement of the no-op nights, on the sample inbox through the
real flow."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from prefect.tasks import Task

from flows.nightly import run_nightly
from flows.prefect_local import local_prefect
from warehouse import publish, quiet

pytestmark = pytest.mark.slow

#: tables whose rows do not grow with the lines loaded: one row per setting, file, frozen rate or reference entry
SMALL = {"warehouse_meta", "audit_source_file", "fx_rate_lock", "dim_agency", "dim_country", "dim_category"}


class _Traced:
    """A DuckDB connection that records its statements (the rest is the connection's own)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, log: list[tuple[str, str]]):
        self._con, self._path, self._log = con, path, log

    def execute(self, sql: str, *args, **kwargs):
        self._log.append((self._path, sql))
        return self._con.execute(sql, *args, **kwargs)

    def sql(self, sql: str, *args, **kwargs):
        self._log.append((self._path, sql))
        return self._con.sql(sql, *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def __enter__(self) -> _Traced:
        return self

    def __exit__(self, *exc: object) -> None:
        self._con.close()


def _night(inbox: Path, wh: Path, monkeypatch) -> tuple[list[str], list[tuple[str, str]], list[datetime]]:
    """One night whose connections (by path), statements and full counts of rates to freeze are recorded; it must
    run no Prefect task (a task run costs API calls and a walk over its parameters: a quiet night needs none)."""
    opened: list[str] = []
    tasks: list[str] = []
    statements: list[tuple[str, str]] = []
    counted: list[datetime] = []
    real_connect, real_count = duckdb.connect, quiet._unlocked_now

    def connect(database: str = ":memory:", *args, **kwargs):
        opened.append(str(database))
        return _Traced(real_connect(database, *args, **kwargs), str(database), statements)

    with monkeypatch.context() as m:
        m.setattr(duckdb, "connect", connect)
        m.setattr(quiet, "_unlocked_now", lambda con, as_of: counted.append(as_of) or real_count(con, as_of))
        for way in ("__call__", "submit", "map"):
            real = getattr(Task, way)
            m.setattr(Task, way, lambda self, *a, _real=real, **k: tasks.append(self.name) or _real(self, *a, **k))
        summary = run_nightly(inbox=str(inbox), warehouse=str(wh))
    assert summary.outcome == "nothing_new" and summary.totals["files_processed"] == 0
    assert tasks == []
    return opened, statements, counted


def _tables(sql: str, names: set[str]) -> set[str]:
    return {name for name in names if re.search(rf"\b{re.escape(name)}\b", sql, re.IGNORECASE)}


def test_a_noop_night_opens_the_published_state_once_and_reads_no_table_that_grows(sample_inbox, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    for agency in ("gami", "mod"):  # two agencies are enough (the others' folders missing: they withdraw nothing)
        shutil.copytree(sample_inbox[0] / agency, inbox / agency)
    wh = tmp_path / "warehouse.duckdb"
    with local_prefect():
        assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
        seq = publish.version_seqs(wh)[-1]
        version = publish.version_path(wh, seq)

        # what the publishing night left for the first quiet night is what counting would have found
        settled = json.loads(quiet.memo_path(wh).read_text())["rates"]
        as_of = datetime.fromisoformat(settled["as_of"])
        with duckdb.connect(str(version), read_only=True) as con:
            assert settled["count"] == quiet._unlocked_now(con, as_of) == 0
            assert settled["until"] == quiet._next_close(con, as_of)
            tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert settled["version"] == quiet._identity(version)
        growing = tables - SMALL
        assert {"fact_funding_line", "quarantine_row", "audit_validation_failure"} <= growing

        nights = [_night(inbox, wh, monkeypatch) for _ in range(2)]

    for number, (opened, statements, counted) in enumerate(nights, start=1):
        assert opened.count(str(version)) == 1, (number, opened)  # discovery, rates and the quiet check share it
        assert set(opened) <= {str(version), str(wh)}, (number, opened)  # no staging copy, no other file
        assert opened.count(str(wh)) <= 2, (number, opened)  # recovery; the quiet check's version number
        assert not counted, number  # the rates to freeze: remembered, not counted over every fact
        read = set().union(*(_tables(sql, tables) for _, sql in statements))
        assert not read & growing, (number, read & growing)
    second_read = set().union(*(_tables(sql, tables) for _, sql in nights[1][1]))
    assert not second_read & {"dim_agency", "dim_country", "dim_category"}  # found the same last night: remembered


def test_a_later_quiet_night_opens_the_published_file_at_most_once_then_not_at_all(sample_inbox, tmp_path, monkeypatch):
    """As real nights find it (hours after the publish, the file older than quiet.RACY_NS): the first quiet night
    reads the published file's version number once, for recovery, and remembers it; the quiet check and the next
    night take it from the memo (any write to the file changes its identity and it is read again)."""
    import time

    inbox = tmp_path / "inbox"
    shutil.copytree(sample_inbox[0] / "gami", inbox / "gami")
    wh = tmp_path / "warehouse.duckdb"
    with local_prefect():
        assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
        st = wh.stat()
        time.sleep(max(0.0, (max(st.st_mtime_ns, st.st_ctime_ns) + quiet.RACY_NS - time.time_ns()) / 1e9) + 0.1)
        first, second = (_night(inbox, wh, monkeypatch)[0] for _ in range(2))
    assert first.count(str(wh)) == 1, first  # recovery reads it; the quiet check uses what recovery remembered
    assert second.count(str(wh)) == 0, second

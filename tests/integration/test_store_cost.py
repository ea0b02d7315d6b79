"""What storing a file costs (issue 15): DuckDB stores a file on one thread and gets its threads back for the checks
and the publish, its buffer pool lets go of the stored blocks, the lineage (file key, sheet, hash, load) reaches the
INSERT as parameters, never as columns copied into every row of the frame (warehouse/store.py ``load_batches``,
``_insert``); the duplicate-key check groups one file at a time (warehouse/run_steps.py ``stored_twice``); a stored
batch lets go of its frames for whoever still holds it (flows/nightly_load.py, schemas/batch.py ``release``)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

import duckdb
import pytest

import flows.nightly_load as nightly_load
import warehouse.store as store
from flows.nightly_load import NightLoad
from schemas.settings import Settings
from tests.conftest import REFERENCE
from tests.integration.test_store_isolation import ROOT, _batches, _reject, _staging
from warehouse import run_steps
from warehouse.ddl import apply_ddl
from warehouse.store import LoadInfo, PublishCheckFailed, Staging

LINEAGE = {"file_key", "sheet", "file_hash", "load_id"}


def _threads(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT current_setting('threads')").fetchone()
    assert row is not None
    return int(row[0])


def _cached(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'")
    found = row.fetchone()
    assert found is not None
    return int(found[0])


def _while_writing(monkeypatch, read) -> list:
    """What ``read(connection)`` gives as each file is written (Staging._write_file spied)."""
    seen: list = []
    write = Staging._write_file

    def spy(self, batch, load, now):
        seen.append(read(self.con))
        return write(self, batch, load, now)

    monkeypatch.setattr(Staging, "_write_file", spy)
    return seen


def test_a_file_is_stored_on_one_thread_and_the_threads_come_back(sample_inbox, tmp_path, monkeypatch):
    (good, bad), reference, sources = _batches(sample_inbox)
    bad = replace(bad, rows=bad.rows.assign(program_name=[object()] * len(bad.rows)))  # refused: rolled back alone
    staging, load = _staging(tmp_path, reference, sources)
    seen = _while_writing(monkeypatch, _threads)
    try:
        staging.con.execute("CHECKPOINT")  # the dimensions on disk, then read: DuckDB caches their blocks
        staging.con.execute("SELECT * FROM dim_country, dim_agency, dim_category").fetchall()
        cached = _cached(staging.con)
        assert cached > 0
        staging.con.execute("SET threads = 3")
        stored = staging.load_batches([bad, good], load, datetime(2026, 1, 1), on_reject=_reject)
        assert [b.status for b in stored] == ["failed", "loaded"]
        assert seen and set(seen) == {1}
        assert _threads(staging.con) == 3  # the checks and the publish run on every thread again
        assert _cached(staging.con) < cached / 2  # the blocks are on disk, no longer held by DuckDB
        staging.check()
    finally:
        staging.discard()


def test_duckdb_gets_its_memory_limit_back_after_a_load(sample_inbox, tmp_path):
    """The load evicts DuckDB's cache by lowering its memory limit, then SETs the limit it was opened with again.
    Never ``RESET memory_limit``: DuckDB 1.5.5 then shows the default and keeps the lowered limit (the next file's
    insert fails with "Out of Memory"). Whether the lowering succeeds depends on what DuckDB has pinned, so the
    statements are checked."""
    (first, _), _, _ = _batches(sample_inbox)
    staging = Staging(tmp_path / "wh.duckdb")
    load = LoadInfo("L1", datetime(2026, 1, 1), None, "test", "inbox")
    opened = staging.con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert opened is not None
    recorder = _Recorder(staging.con)
    staging._con = recorder  # type: ignore[assignment]
    try:
        staging.load_batches([first], load, datetime(2026, 1, 1), on_reject=None)
        limits = [q for q in recorder.sql if "memory_limit" in q]
        # bounded while storing, lowered (tried twice when DuckDB cannot free enough, as an interrupt stops one
        # statement), then set back
        assert limits[0] == f"SET memory_limit = '{store.STORE_MEMORY}'", limits
        assert limits[-1] == f"SET memory_limit = '{opened[0]}'", limits
        assert set(limits[1:-1]) == {"SET memory_limit = '1MB'"}, limits
        staging._con = recorder.con
        staging.con.execute("CREATE TABLE big AS SELECT range::VARCHAR || repeat('x', 40) AS s FROM range(300000)")
        assert staging.con.execute("SELECT count(DISTINCT s) FROM big").fetchone() == (300000,)
    finally:
        staging._con = recorder.con
        staging.discard()


def test_the_threads_come_back_when_the_load_stops(sample_inbox, tmp_path, monkeypatch):
    (good, _), reference, sources = _batches(sample_inbox)
    staging, load = _staging(tmp_path, reference, sources)

    def interrupted(*_, **__):
        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")

    monkeypatch.setattr(Staging, "_insert", interrupted)
    try:
        staging.con.execute("SET threads = 3")
        try:
            staging.load_batches([good], load, datetime(2026, 1, 1), on_reject=_reject)
        except duckdb.InterruptException:
            pass
        else:
            raise AssertionError("an interrupted load must stop the night")
        assert _threads(staging.con) == 3
    finally:
        staging.discard()


def test_the_lineage_is_a_parameter_not_a_column_of_every_row(sample_inbox, tmp_path, monkeypatch):
    (first, second), reference, sources = _batches(sample_inbox)
    # a rows frame that carries a sheet of its own still gets the batch's (as when the lineage was assigned)
    second = replace(second, rows=second.rows.assign(sheet="not the batch's sheet"))
    staging, load = _staging(tmp_path, reference, sources)
    converted: list[set[str]] = []
    to_arrow = store.to_arrow

    def spy(df):
        converted.append(set(df.columns))
        return to_arrow(df)

    monkeypatch.setattr(store, "to_arrow", spy)
    try:
        stored = staging.load_batches([first, second], load, datetime(2026, 1, 1), on_reject=_reject)
        assert [b.status for b in stored] == ["loaded", "loaded"]
        assert converted and all(not (columns & LINEAGE) for columns in converted), converted
        got = staging.con.execute(
            "SELECT file_key, sheet, file_hash, load_id, count(*) FROM fact_funding_line GROUP BY ALL ORDER BY 1"
        ).fetchall()
        skipped = staging.con.execute(
            "SELECT file_key, sheet, file_hash, load_id, count(*) FROM skipped_row GROUP BY ALL ORDER BY 1"
        ).fetchall()
        staging.check()
    finally:
        staging.discard()
    want = sorted((b.file_key, b.sheet, b.file_hash, "L1", b.counts["rows_loaded"]) for b in (first, second))
    assert got == want
    assert skipped == sorted(
        (b.file_key, b.sheet, b.file_hash, "L1", b.counts["rows_skipped"])
        for b in (first, second)
        if b.counts["rows_skipped"]
    )


class _Recorder:
    """A connection that records the statements it runs (check_staging takes any connection)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.sql = con, []

    def __getattr__(self, name):  # register, unregister, ...: the connection's own
        return getattr(self.con, name)

    def execute(self, sql, params=None):
        self.sql.append(" ".join(sql.split()))
        return self.con.execute(sql) if params is None else self.con.execute(sql, params)


def _lines(con, file_key: str, rows: list[int]) -> None:
    con.executemany(
        "INSERT INTO skipped_row (file_key, sheet, excel_row, reason, file_hash, load_id) "
        "VALUES (?, '', ?, 'blank', 'h', 'L')",
        [[file_key, r] for r in rows],
    )


@pytest.mark.parametrize("changed", [None, {"B/b.xlsx"}])
def test_the_duplicate_check_groups_one_file_at_a_time(changed):
    con = duckdb.connect()
    apply_ddl(con)
    _lines(con, "A/a.xlsx", [2, 3, 4])
    _lines(con, "B/b.xlsx", [2, 3, 3])  # row 3 of b stored twice
    _lines(con, "C/c.xlsx", [3])  # the same row number in another file is no duplicate
    if changed is not None:  # a staging copy of a published version: only tonight's files are checked
        con.execute("INSERT INTO warehouse_meta VALUES ('publish_seq', '1')")
    recorder = _Recorder(con)
    with pytest.raises(PublishCheckFailed, match=r"skipped_row: row \('B/b.xlsx', '', 3\) is stored twice"):
        run_steps.check_staging(recorder, changed)  # type: ignore[arg-type]
    grouped = [q for q in recorder.sql if "GROUP BY" in q and "HAVING count(*) > 1" in q]
    assert grouped and all("WHERE file_key = ?" in q for q in grouped), grouped
    con.execute("DELETE FROM skipped_row WHERE file_key = 'B/b.xlsx' AND excel_row = 3")
    _lines(con, "B/b.xlsx", [3])
    run_steps.check_staging(con, changed)


def test_a_stored_batch_lets_go_of_its_frames_for_every_holder(sample_inbox, tmp_path, monkeypatch):
    (first, second), reference, sources = _batches(sample_inbox)
    counts = first.counts
    assert first.rows is not None and counts["rows_loaded"] > 0
    monkeypatch.setattr(nightly_load, "get_run_logger", lambda: logging.getLogger("test"))
    settings = Settings.resolve(
        inbox=tmp_path / "inbox",
        warehouse=tmp_path / "wh.duckdb",
        sources=ROOT / "sources",
        reference=REFERENCE,
    )
    load = LoadInfo("L1", datetime(2026, 1, 1), None, "test", "inbox")
    with NightLoad(settings, sources, reference, load, on_reject=_reject) as night:
        try:
            night.offer(0, first)
            # the flow still holds ``first`` (its loop variable) while the next file is read: it holds no frames
            assert first.rows is None and first.skipped is None and first.tables == {}
            assert first.counts == counts
            assert night.batches()[0].counts == counts
            assert night.staging is not None
            stored = night.staging.con.execute(
                "SELECT count(*) FROM fact_funding_line WHERE file_key = ?", [first.file_key]
            ).fetchone()
            assert stored == (counts["rows_loaded"],)
        finally:
            night.discard()


def test_the_staging_copy_made_ahead_is_the_one_stored_into_and_removed_when_unused(
    sample_inbox, tmp_path, monkeypatch
):
    """The flow asks for the staging copy before reading (NightLoad.prepare): it is made on the writer thread, the
    first file is stored into that very copy (made once), and a night that stores nothing removes it."""
    (first, _), reference, sources = _batches(sample_inbox)
    monkeypatch.setattr(nightly_load, "get_run_logger", lambda: logging.getLogger("test"))
    made: list[Staging] = []
    monkeypatch.setattr(nightly_load, "Staging", lambda *a, **k: made.append(Staging(*a, **k)) or made[-1])
    settings = Settings.resolve(
        inbox=tmp_path / "inbox", warehouse=tmp_path / "wh.duckdb", sources=ROOT / "sources", reference=REFERENCE
    )
    load = LoadInfo("L1", datetime(2026, 1, 1), None, "test", "inbox")
    staged = lambda: sorted(p.name for p in tmp_path.glob(".wh.duckdb.staging-*") if p.suffix != ".wal")  # noqa: E731

    with NightLoad(settings, sources, reference, load, on_reject=_reject) as night:
        night.prepare()
        night.prepare()  # asked twice: made once
        assert night._prepared is not None
        ahead = night._prepared.result()  # made on the writer thread, nothing stored yet
        assert not night.opened and staged() == [ahead.path.name]
        night.offer(0, first)
        assert night.staging is ahead and made == [ahead]
        night.discard()
    assert list(tmp_path.glob(".wh.duckdb.staging-*")) == []

    with NightLoad(settings, sources, reference, load, on_reject=_reject) as night:  # a quiet night
        night.prepare()
        night.discard()
        assert staged() == [] and len(made) == 2 and not night.opened
    assert list(tmp_path.glob(".wh.duckdb.staging-*")) == []  # its write-ahead log too


def _limit(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert row is not None
    return str(row[0])


def _as_set(limit: str) -> str:
    """What DuckDB shows once ``limit`` is SET (its display rounds: '18.8 GiB' set shows as '18.7 GiB')."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{limit}'")
    return _limit(con)


@pytest.mark.parametrize(("setting", "bound"), [(None, "600MB"), ("256MB", "256MB"), ("1 GiB", "1GiB")])
def test_files_are_stored_under_the_memory_bound(sample_inbox, tmp_path, monkeypatch, setting, bound):
    """DuckDB stores under DCF_STORE_MEMORY (default 600MB), so it spills instead of growing with a file's size,
    and has its opened limit back afterwards."""
    if setting is not None:
        monkeypatch.setenv(store.STORE_MEMORY_ENV, setting)
    (first, _), reference, sources = _batches(sample_inbox)
    staging, load = _staging(tmp_path, reference, sources)
    opened = _limit(staging.con)
    seen = _while_writing(monkeypatch, _limit)
    try:
        stored = staging.load_batches([first], load, datetime(2026, 1, 1), on_reject=_reject)
        assert [b.status for b in stored] == ["loaded"]
        assert seen == [_as_set(bound)] and seen[0] != opened
        assert _limit(staging.con) == _as_set(opened)
    finally:
        staging.discard()


@pytest.mark.parametrize("setting", ["off", "0"])
def test_the_bound_can_be_switched_off(sample_inbox, tmp_path, monkeypatch, setting):
    monkeypatch.setenv(store.STORE_MEMORY_ENV, setting)
    (first, _), reference, sources = _batches(sample_inbox)
    staging, load = _staging(tmp_path, reference, sources)
    opened = _limit(staging.con)
    recorder = _Recorder(staging.con)
    staging._con = recorder  # type: ignore[assignment]
    try:
        staging.load_batches([first], load, datetime(2026, 1, 1), on_reject=_reject)
        assert not [q for q in recorder.sql if q.startswith("SET memory_limit") and "1MB" not in q and opened not in q]
    finally:
        staging._con = recorder.con
        staging.discard()


def test_a_wrong_bound_is_said_and_the_default_used(monkeypatch):
    monkeypatch.setenv(store.STORE_MEMORY_ENV, "lots")
    said: list[str] = []
    assert store.store_memory(said.append) == store.STORE_MEMORY
    assert said and "DCF_STORE_MEMORY='lots'" in said[0] and "600MB" in said[0]


def test_a_file_that_does_not_fit_the_bound_is_stored_without_it(sample_inbox, tmp_path, monkeypatch):
    """A bound too small for a file never costs the file (nor the night): the transaction is rolled back and every
    file of it stored again under the limit the connection was opened with, and the log says so."""
    monkeypatch.setenv(store.STORE_MEMORY_ENV, "16MB")
    (first, second), reference, sources = _batches(sample_inbox)
    said: list[str] = []
    record = store.record_failures

    def hungry(con, batch, *args, **kwargs):  # the second file needs more memory than it may spill (a big list)
        if batch is second:
            assert con.execute("SELECT len(list(range)) FROM range(5000000)").fetchone() == (5000000,)
        return record(con, batch, *args, **kwargs)

    monkeypatch.setattr(store, "record_failures", hungry)
    staging, load = _staging(tmp_path, reference, sources)
    staging.log = said.append
    opened = _limit(staging.con)
    try:
        stored = staging.load_batches([first, second], load, datetime(2026, 1, 1), on_reject=_reject)
        assert [b.status for b in stored] == ["loaded", "loaded"]
        got = staging.con.execute("SELECT file_key, count(*) FROM fact_funding_line GROUP BY 1 ORDER BY 1").fetchall()
        assert got == sorted((b.file_key, b.counts["rows_loaded"]) for b in (first, second))
        assert _limit(staging.con) == _as_set(opened)
        assert any(
            "could not be stored within DCF_STORE_MEMORY=16MB" in line and "stored again" in line for line in said
        ), said
        staging.check()
    finally:
        staging.discard()


def test_a_bound_duckdb_cannot_take_is_said_and_the_file_stored(sample_inbox, tmp_path, monkeypatch):
    monkeypatch.setenv(store.STORE_MEMORY_ENV, "1KB")  # below what DuckDB holds already: SET is refused
    (first, _), reference, sources = _batches(sample_inbox)
    said: list[str] = []
    staging, load = _staging(tmp_path, reference, sources)
    staging.log = said.append
    try:
        stored = staging.load_batches([first], load, datetime(2026, 1, 1), on_reject=_reject)
        assert [b.status for b in stored] == ["loaded"]
        assert any(line.startswith("storing without DCF_STORE_MEMORY=1KB") for line in said), said
    finally:
        staging.discard()

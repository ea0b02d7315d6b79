"""Analysts open the published warehouse with the tools they use: the duckdb CLI from PyPI and Python."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from flows.nightly import run_nightly

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published(sample_inbox, tmp_path_factory) -> Path:
    inbox, _ = sample_inbox
    wh = tmp_path_factory.mktemp("analyst") / "warehouse.duckdb"
    run_nightly(inbox=str(inbox), warehouse=str(wh))
    return wh


def duckdb_cli() -> str:
    exe = Path(sys.executable).with_name("duckdb")
    found = str(exe) if exe.exists() else shutil.which("duckdb")
    if not found:
        pytest.skip("the duckdb command-line shell (PyPI package duckdb-cli) is not installed")
    return found


def test_duckdb_cli_opens_the_published_file(published):
    result = subprocess.run(
        [
            duckdb_cli(),
            "-readonly",
            "-csv",
            str(published),
            "-c",
            "SELECT count(*) AS n FROM funding_lines; SELECT count(*) AS n FROM open_failures;",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(published), read_only=True) as con:
        expected = [
            con.execute("SELECT count(*) FROM funding_lines").fetchone()[0],
            con.execute("SELECT count(*) FROM open_failures").fetchone()[0],
        ]
    assert [int(line) for line in result.stdout.split() if line.isdigit()] == expected
    assert expected[0] > 1000


def test_reader_holding_the_file_does_not_block_a_load(published, sample_inbox):
    inbox, _ = sample_inbox
    reader = duckdb.connect(str(published), read_only=True)  # an analyst's open session
    try:
        before = reader.execute("SELECT count(*) FROM audit_load").fetchone()[0]
        summary = run_nightly(inbox=str(inbox), warehouse=str(published), force=True)  # a load that publishes
        assert summary.outcome == "success"
        assert reader.execute("SELECT count(*) FROM audit_load").fetchone()[0] == before  # still the old version
    finally:
        reader.close()
    with duckdb.connect(str(published), read_only=True) as fresh:
        assert fresh.execute("SELECT count(*) FROM audit_load").fetchone()[0] == before + 1


def _reader(path: str, stop, deadline: float, out: str, beat) -> None:
    """An analyst's process: open read-only, query, close, again and again until told to stop (or a deadline);
    its result (queries, first errors, error count) written to the file ``out`` as JSON. ``beat``: when its last
    query ended (a starved reader and a hung one differ).

    Before each close it stops DuckDB's worker threads (``SET threads = 1``, what warehouse.connect.close does):
    DuckDB 1.5.5 can crash a process at the close of a database whose worker still holds a task of the last query
    (docs/adr/0015). That crash needs no load at all (readers alone, nothing published, 1 in about 24,000 closes on
    a busy machine); it is DuckDB's, in any reader, and it is not what this test is about."""
    import faulthandler
    import json as _json
    import os as _os
    import time as _time

    import duckdb as _duckdb

    crash = open(out + ".fault", "w", encoding="utf-8")  # noqa: SIM115 - open until the process ends
    faulthandler.enable(crash)  # a reader that dies of a signal leaves where it was
    done, errors = 0, []
    while not stop.is_set() and _time.time() < deadline:
        try:
            with _duckdb.connect(path, read_only=True) as con:
                con.execute("SELECT count(*), sum(amount_usd) FROM funding_lines").fetchone()
                con.execute("SELECT * FROM file_reconciliation WHERE NOT reconciles").fetchall()
                con.execute("SET threads = 1")
            done += 1
        except Exception as exc:  # noqa: BLE001 - every error counts
            errors.append(f"{type(exc).__name__}: {exc}")
        beat.value = _time.time()
    with open(out + ".tmp", "w", encoding="utf-8") as fh:
        _json.dump([done, errors[:5], len(errors)], fh)
    _os.replace(out + ".tmp", out)


def test_four_readers_see_no_error_during_repeated_loads(published, sample_inbox, tmp_path):
    """Each reader writes its result to a file of its own (a multiprocessing queue lost all four readers' results
    once, on a fresh clone's run with both cores busy: the readers had ended, the queue stayed empty)."""
    import json
    import multiprocessing as mp
    import time

    inbox, _ = sample_inbox
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    beats = [ctx.Value("d", 0.0) for _ in range(4)]
    outs = [tmp_path / f"reader-{i}.json" for i in range(4)]
    deadline = time.time() + 3600  # a safety net only: the readers run until the loads are done
    readers = [
        ctx.Process(target=_reader, args=(str(published), stop, deadline, str(o), b))
        for o, b in zip(outs, beats, strict=True)
    ]
    for r in readers:
        r.start()
    time.sleep(3)  # let them start querying
    loads = 0
    try:
        for _ in range(3):  # three full loads (each re-processes every file) publish while the readers query
            assert run_nightly(inbox=str(inbox), warehouse=str(published), force=True).outcome == "success"
            loads += 1
    finally:
        stop.set()
        for r in readers:  # a reader ends its query, then writes its result: on a busy machine that may take a while
            r.join(timeout=300)
    now = time.time()
    state = [
        (r.exitcode, round(now - b.value, 1) if b.value else None, o.exists())
        for r, b, o in zip(readers, beats, outs, strict=True)
    ]
    for r in readers:
        if r.is_alive():
            r.kill()
    fault_files = [Path(f"{o}.fault") for o in outs]
    faults = [text for f in fault_files if f.exists() and (text := f.read_text(encoding="utf-8"))]
    assert all(found for _, _, found in state), (
        f"(exit code, seconds since its last query, result) per reader: {state}; where a reader died: {faults}"
    )
    results = [json.loads(o.read_text(encoding="utf-8")) for o in outs]
    assert loads == 3
    assert all(done > 0 for done, _, _ in results), results
    assert sum(n for _, _, n in results) == 0, [e for _, e, _ in results]


def test_rollback_publishes_an_earlier_version_and_can_be_undone(published, sample_inbox):
    from warehouse.publish import list_versions, published_seq, rollback
    from warehouse.store import SCHEMA_VERSION

    # a second published state of its own: a night with nothing new publishes nothing (warehouse/quiet.py)
    assert run_nightly(inbox=str(sample_inbox[0]), warehouse=str(published), force=True).outcome == "success"
    versions = list_versions(published, SCHEMA_VERSION)
    assert len(versions) >= 2, "every publish keeps its state as a numbered version"
    current = published_seq(published)
    assert versions[0].current and versions[0].seq == current
    with duckdb.connect(str(published), read_only=True) as con:
        last = con.execute("SELECT max(load_seq) FROM audit_load").fetchone()[0]
    earlier = next(v for v in versions if v.seq < current)
    new = rollback(published, earlier.seq, SCHEMA_VERSION, log=print)
    assert new == current + 1 and published_seq(published) == new  # a rollback is a new version...
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("SELECT max(load_seq) FROM audit_load").fetchone()[0] < last
    rollback(published, current, SCHEMA_VERSION, log=print)  # ... so it can be undone
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("SELECT max(load_seq) FROM audit_load").fetchone()[0] == last


def test_dcf_sql_prints_table_csv_and_json(published):
    def dcf(*args):
        return subprocess.run(
            [sys.executable, "-m", "dcf.cli", *args, "--warehouse", str(published)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**__import__("os").environ, "COLUMNS": "200"},
        )

    q = "SELECT agency_code, count(*) AS n FROM fact_funding_line GROUP BY 1 ORDER BY 1"
    with duckdb.connect(str(published), read_only=True) as con:
        expected = con.execute(q).fetchall()
    as_csv = dcf("sql", q, "--format", "csv")
    assert as_csv.returncode == 0 and as_csv.stdout.splitlines()[1:] == [f"{a},{n}" for a, n in expected]
    as_json = dcf("sql", q, "--format", "json")
    assert __import__("json").loads(as_json.stdout) == [{"agency_code": a, "n": n} for a, n in expected]
    table = dcf("sql", q)
    assert expected[0][0] in table.stdout and f"{len(expected)} row(s)" in table.stdout
    bad = dcf("sql", "SELECT * FROM no_such_table")
    assert bad.returncode == 2 and "query failed" in bad.stderr and "Traceback" not in bad.stderr
    write = dcf("sql", "DELETE FROM fact_funding_line")
    assert write.returncode == 2  # read-only

"""warehouse/publish.py pieces on tiny files: the lock, the WAL guard, errors in words, recovery, versions."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from warehouse import publish


def tiny(path: Path, seq: int | None = None) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i FROM range(10)")
        con.execute("CREATE TABLE warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
        con.execute("INSERT INTO warehouse_meta VALUES ('schema_version', 'x')")
        con.execute(
            "CREATE TABLE audit_load (load_id VARCHAR, finished_at TIMESTAMP, load_seq BIGINT, started_at TIMESTAMP)"
        )
        if seq is not None:
            con.execute("INSERT INTO warehouse_meta VALUES ('publish_seq', ?)", [str(seq)])
    return path


def test_the_lock_is_reentrant_in_a_process_and_exclusive_across_processes(tmp_path):
    wh = tmp_path / "w.duckdb"
    probe = textwrap.dedent(f"""
        from pathlib import Path
        from warehouse.publish import WarehouseBusy, exclusive_lock
        try:
            with exclusive_lock(Path({str(wh)!r})):
                print("got it")
        except WarehouseBusy as exc:
            print("busy:", exc)
    """)
    with publish.exclusive_lock(wh):
        with publish.exclusive_lock(wh):  # the flow inside 'dcf run' takes it again
            pass
        other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        assert other.stdout.startswith("busy: another ingestion is running (pid "), other.stdout + other.stderr
    free = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert free.stdout.strip() == "got it"


def test_errors_are_said_in_words(tmp_path):
    wh = tmp_path / "w.duckdb"
    full = publish.explain(OSError(errno.ENOSPC, "No space left on device"), wh)
    assert full and "not enough free space in" in str(full) and str(tmp_path) in str(full)
    full_in_duckdb = publish.explain(duckdb.IOException('Could not write file "x": No space left on device'), wh)
    assert full_in_duckdb and "free space" in str(full_in_duckdb)
    ro = publish.explain(OSError(errno.EROFS, "Read-only file system"), wh)
    assert ro and "read-only file system" in str(ro) and "permissions" in str(ro)
    assert publish.explain(ValueError("something else"), wh) is None


def test_the_wal_guard_lets_reads_work_refuses_writes_and_moves_a_foreign_log_aside(tmp_path):
    wh = tiny(tmp_path / "w.duckdb")
    wal = tmp_path / "w.duckdb.wal"
    wal.write_bytes(b"someone else's log")
    publish.guard_wal(wh, log=lambda m: None)
    assert wal.is_symlink() and os.readlink(wal) == publish.WAL_GUARD_TARGET
    assert [p.read_bytes() for p in tmp_path.glob("w.duckdb.wal.foreign-*")] == [b"someone else's log"]
    publish.guard_wal(wh, log=lambda m: None)  # idempotent
    session = textwrap.dedent(f"""
        import duckdb
        con = duckdb.connect({str(wh)!r})  # read-write
        print(con.execute("SELECT count(*) FROM t").fetchone()[0])
        try:
            con.execute("DELETE FROM t")
            print("wrote")
        except duckdb.Error as exc:
            print("refused" if ".wal" in str(exc) else exc)
    """)
    done = subprocess.run([sys.executable, "-c", session], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["10", "refused"], done.stdout + done.stderr
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 10


def test_recovery_removes_leftovers_and_versions_never_published(tmp_path):
    wh = tiny(tmp_path / "w.duckdb", seq=2)
    vdir = publish.versions_dir(wh)
    vdir.mkdir()
    for seq in (1, 2, 3):
        tiny(publish.version_path(wh, seq), seq=seq)
    junk = [tmp_path / ".w.duckdb.staging-123", tmp_path / ".w.duckdb.publish-123", vdir / ".000004.duckdb.tmp"]
    for p in junk:
        p.write_bytes(b"x")
    said: list[str] = []
    publish.recover(wh, said.append)
    assert not any(p.exists() for p in junk)
    assert publish.version_seqs(wh) == [1, 2]  # 3 was linked, never published: the published state is 2
    assert len(said) == 4 and all(s.startswith("removed") for s in said)
    assert publish.next_seq(wh) == 3


def test_recovery_removes_a_dead_staging_copys_spill_folder(tmp_path):
    """DuckDB spills a staging copy's blocks into <staging>.tmp/ (its temp_directory); a run killed then leaves a
    folder, which the next run removes (it once stopped that run: IsADirectoryError)."""
    wh = tiny(tmp_path / "w.duckdb", seq=1)
    spill = tmp_path / ".w.duckdb.staging-123.tmp"
    (spill / "nested").mkdir(parents=True)
    (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 2_000_000)
    said: list[str] = []
    publish.recover(wh, said.append)
    assert not spill.exists()
    assert said == ["removed .w.duckdb.staging-123.tmp/ (2.0 MB) left by a run that did not finish"]


def test_versions_are_numbered_not_dated_and_pruned_by_number(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "KEEP_VERSIONS", 2)
    wh = tmp_path / "w.duckdb"
    for seq in range(1, 6):
        ready = tiny(tmp_path / f"ready-{seq}.duckdb", seq=seq)
        publish.publish_file(ready, wh, seq, log=lambda m: None)
    assert publish.version_seqs(wh) == [3, 4, 5] and publish.published_seq(wh) == 5
    assert not list(tmp_path.glob("ready-*"))

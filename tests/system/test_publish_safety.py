"""Publishing is safe against what other programs and people do: an analyst's read-write session, a clock moved
back, a garbage file published by hand, a dead run's leftovers, files withdrawn from the inbox (issue 11)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from flows.nightly import run_nightly
from flows.nightly_discover import HASHES_SUFFIX
from warehouse import publish
from warehouse.quiet import MEMO_SUFFIX
from warehouse.store import SCHEMA_VERSION

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

#: the data the loads put in, without what differs from load to load (load ids, timestamps)
STATE_SQL = {
    "fact_funding_line": "SELECT * EXCLUDE (load_id) FROM fact_funding_line",
    "dim_program": "SELECT * EXCLUDE (load_id) FROM dim_program",
    "quarantine_row": "SELECT * EXCLUDE (load_id) FROM quarantine_row",
    "skipped_row": "SELECT * EXCLUDE (load_id) FROM skipped_row",
    "files": "SELECT file_key, file_hash, status, rows_read, rows_loaded, rows_quarantined, rows_skipped FROM audit_source_file WHERE is_current",
}


def state(path: Path) -> dict[str, str]:
    """A fingerprint of the data in a warehouse file, read as a new reader of that path would (separate process)."""
    script = textwrap.dedent(f"""
        import duckdb, hashlib, json, sys
        con = duckdb.connect(sys.argv[1], read_only=True)
        out = {{}}
        for name, sql in {STATE_SQL!r}.items():
            rows = sorted(map(repr, con.execute(sql).fetchall()))
            out[name] = hashlib.md5("\\n".join(rows).encode()).hexdigest() + f":{{len(rows)}}"
        out["unreconciled"] = con.execute("SELECT count(*) FROM file_reconciliation WHERE NOT reconciles").fetchone()[0]
        print(json.dumps(out))
    """)
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


ANALYST = textwrap.dedent("""
    import duckdb, json, sys
    con = duckdb.connect(sys.argv[1])  # read-write, as DBeaver and the duckdb CLI open a file by default
    for line in sys.stdin:
        try:
            rows = con.execute(line).fetchall()
            print(json.dumps({"ok": True, "rows": [list(map(str, r)) for r in rows[:3]]}), flush=True)
        except Exception as exc:
            print(json.dumps({"ok": False, "error": str(exc)}), flush=True)
    con.close()
""")


class Analyst:
    """An analyst's read-write session in another process, kept open across loads."""

    def __init__(self, path: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ANALYST, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def __call__(self, sql: str) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(sql.replace("\n", " ") + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def test_an_analysts_read_write_session_never_reaches_a_published_file(inbox_copy, tmp_path):
    inbox, _ = inbox_copy
    wh = tmp_path / "warehouse.duckdb"
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    # the published file as an older dcf left it (no WAL guard): an analyst opens it read-write and deletes rows
    wal = wh.with_name(wh.name + ".wal")
    assert wal.is_symlink() and os.readlink(wal) == publish.WAL_GUARD_TARGET
    wal.unlink()
    analyst = Analyst(wh)
    try:
        assert analyst("DELETE FROM fact_funding_line WHERE agency_code = 'MOD'")["ok"]
        assert wal.is_file()  # their change waits in a write-ahead log named after the published PATH
        for _ in range(2):  # two loads publish while the session stays open with pending writes
            kept_before = {p.name: sha(p) for p in publish.versions_dir(wh).iterdir()}
            assert run_nightly(inbox=str(inbox), warehouse=str(wh), force=True).outcome == "success"
            newest = publish.version_path(wh, publish.version_seqs(wh)[-1])
            published = state(wh)
            assert published == state(newest), "a reader of the published file sees exactly the loaded state"
            assert published["unreconciled"] == 0 and not published["fact_funding_line"].endswith(":0")
            kept_after = {p.name: sha(p) for p in publish.versions_dir(wh).iterdir() if p.name in kept_before}
            assert kept_after == {k: v for k, v in kept_before.items() if k in kept_after}, "kept versions unchanged"
            # the session goes on writing and checkpointing: refused or harmless, never replayed into the new file
            analyst("DELETE FROM fact_funding_line WHERE agency_code = 'SANG'")
            analyst("CHECKPOINT")
            assert not analyst("CREATE TABLE scratch AS SELECT 1 AS x")["ok"]  # the published file is read-only
            assert analyst("SELECT count(*) FROM audit_load")["ok"]  # ... and still readable in that session
            assert wal.is_symlink()
        assert list(wh.parent.glob(wh.name + ".wal.foreign-*")), "the foreign log was moved aside, not deleted"
    finally:
        analyst.close()
    assert state(wh) == state(publish.version_path(wh, publish.version_seqs(wh)[-1]))
    # the session's deletions never reached any state a reader or a rollback could see
    for p in publish.versions_dir(wh).iterdir():
        with duckdb.connect(str(p), read_only=True) as con:
            assert (
                con.execute("SELECT count(*) FROM fact_funding_line WHERE agency_code IN ('MOD', 'SANG')").fetchone()[0]
                > 0
            )


class _Clock(dt.datetime):
    """datetime with now() a year in the past: the machine's clock moved back."""

    @classmethod
    def now(cls, tz=None):
        return dt.datetime.now(tz) - dt.timedelta(days=365)


def test_a_clock_moved_back_loses_no_version_and_keeps_program_history(inbox_copy, tmp_path, monkeypatch):
    inbox, _ = inbox_copy
    wh = tmp_path / "warehouse.duckdb"
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    programs = inbox / "mod" / "MOD_programs.csv"
    programs.write_text(
        programs.read_text(encoding="utf-8-sig").replace("Pioneer Partnership", "Pioneer Partnership II"),
        encoding="utf-8-sig",
    )
    import flows.nightly
    import warehouse.publish
    import warehouse.store

    for module in (flows.nightly, warehouse.store, warehouse.publish):
        monkeypatch.setattr(module, "datetime", _Clock)
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    assert publish.version_seqs(wh) == [1, 2]  # the state replaced under the wrong clock is kept, not pruned
    assert publish.published_seq(wh) == 2
    with duckdb.connect(str(wh), read_only=True) as con:
        history = con.execute(
            "SELECT name_en, valid_from_seq, valid_to_seq FROM program_history WHERE program_code = 'MOD-P001' "
            "ORDER BY valid_from_seq"
        ).fetchall()
        assert con.execute("SELECT list(load_seq ORDER BY load_seq) FROM audit_load").fetchone()[0] == [1, 2]
    assert history == [("Pioneer Partnership", 1, 2), ("Pioneer Partnership II", 2, None)]
    monkeypatch.undo()
    new = publish.rollback(wh, 1, SCHEMA_VERSION, log=print)  # the replaced state can be rolled back to
    assert new == 3 and state(wh) == state(publish.version_path(wh, 1))


def test_rollback_refuses_garbage_and_repairs_a_broken_published_file(inbox_copy, tmp_path):
    inbox, _ = inbox_copy
    wh = tmp_path / "warehouse.duckdb"
    env = {**os.environ, "COLUMNS": "200", "DCF_WAREHOUSE": str(wh)}

    def dcf(*a):
        return subprocess.run(
            [sys.executable, "-m", "dcf.cli", *a],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=ROOT,
        )

    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    good = state(wh)
    publish.version_path(wh, 7).write_bytes(b"not a database" * 1000)  # garbage among the versions
    refused = dcf("rollback", "--to", "7")
    assert refused.returncode == 2 and "cannot be published" in refused.stderr and "Traceback" not in refused.stderr
    assert state(wh) == good
    publish.version_path(wh, 7).unlink()
    wh.write_bytes(os.urandom(300_000))  # a garbage file published by hand
    status = dcf("status")
    assert status.returncode == 1 and "Traceback" not in status.stderr + status.stdout
    assert "dcf rollback" in status.stderr and str(wh) in status.stderr and "dcf-snapshot" not in status.stderr
    listed = dcf("rollback", "--list")
    assert listed.returncode == 0 and "000001" not in listed.stdout and " 1 " in listed.stdout
    repaired = dcf("rollback")
    assert repaired.returncode == 0, repaired.stderr
    assert state(wh) == good
    assert all(
        publish.check_warehouse_file(publish.version_path(wh, s), SCHEMA_VERSION) is None
        for s in publish.version_seqs(wh)
    ), "the garbage was never kept as a version"
    assert dcf("status").returncode == 0


def test_a_dead_runs_leftovers_are_cleared_and_said(inbox_copy, tmp_path, caplog):
    inbox, _ = inbox_copy
    wh = tmp_path / "warehouse.duckdb"
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    leftovers = [
        wh.with_name(f".{wh.name}.staging-99999"),
        wh.with_name(f".{wh.name}.staging-99999.wal"),
        wh.with_name(f".{wh.name}.publish-99999"),
        publish.versions_dir(wh) / ".000002.duckdb.tmp",
    ]
    for p in leftovers:
        p.write_bytes(b"x" * 1000)
    shutil.copyfile(publish.version_path(wh, 1), publish.version_path(wh, 2))  # linked, never renamed in
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "nothing_new"
    assert not any(p.exists() for p in leftovers)
    assert publish.published_seq(wh) == 1 and publish.version_seqs(wh) == [1]  # the orphan 2 removed, none needed
    logged = caplog.text
    assert f".{wh.name}.staging-99999" in logged and "did not finish" in logged
    assert "died before publishing" in logged


def test_failed_staging_is_always_discarded(inbox_copy, tmp_path, monkeypatch):
    inbox, _ = inbox_copy
    wh = tmp_path / "warehouse.duckdb"
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    before = sha(wh)
    for fault in ("staging_copy:enospc", "checks:enospc", "rename:enospc"):
        monkeypatch.setenv("DCF_FAULT", fault)
        with pytest.raises(Exception) as caught:
            run_nightly(inbox=str(inbox), warehouse=str(wh), force=True)
        assert "not enough free space" in str(caught.value), fault
        assert sha(wh) == before
        left = [p for p in tmp_path.glob(f".{wh.name}.*") if not p.name.endswith((HASHES_SUFFIX, MEMO_SUFFIX))]
        assert not left, f"{fault}: staging left behind"
    monkeypatch.delenv("DCF_FAULT")
    assert publish.version_seqs(wh) == [1]


@pytest.mark.parametrize("policy", ["keep", "retract"])
def test_a_withdrawn_file_is_reported_and_its_rows_kept_or_retracted(inbox_copy, tmp_path, policy):
    inbox, manifest = inbox_copy
    sources = tmp_path / "sources"
    shutil.copytree(ROOT / "sources", sources)
    mod = sources / "mod.yaml"
    mod.write_text(
        mod.read_text(encoding="utf-8").replace("number_locale: en\n", f"number_locale: en\nwithdrawn: {policy}\n", 1),
        encoding="utf-8",
    )
    wh = tmp_path / "warehouse.duckdb"
    run = lambda: run_nightly(inbox=str(inbox), warehouse=str(wh), sources=str(sources))  # noqa: E731
    assert run().outcome == "success"
    gone = inbox / "mod" / "MOD_budget_FY2025.xlsx"
    key = "MOD/MOD_budget_FY2025.xlsx"
    with duckdb.connect(str(wh), read_only=True) as con:
        rows_before = con.execute("SELECT count(*) FROM fact_funding_line WHERE file_key = ?", [key]).fetchone()[0]
        archived = Path(
            con.execute(
                "SELECT archive_path FROM audit_source_file WHERE file_key = ? AND is_current", [key]
            ).fetchone()[0]
        )
    assert rows_before > 0 and archived.read_bytes() == gone.read_bytes()  # the raw archive holds what was received
    gone.unlink()
    summary = run()
    entry = next(f for f in summary.files if f["file"] == key)
    assert entry["status"] == ("withdrawn" if policy == "keep" else "retracted")
    assert summary.totals["files_withdrawn"] == 1
    with duckdb.connect(str(wh), read_only=True) as con:
        rows_after = con.execute("SELECT count(*) FROM fact_funding_line WHERE file_key = ?", [key]).fetchone()[0]
        current = con.execute(
            "SELECT withdrawn_at IS NOT NULL FROM audit_source_file WHERE file_key = ? AND is_current", [key]
        ).fetchall()
        assert con.execute("SELECT count(*) FROM file_reconciliation WHERE NOT reconciles").fetchone()[0] == 0
    assert rows_after == (rows_before if policy == "keep" else 0)
    assert current == ([(True,)] if policy == "keep" else [])
    status = subprocess.run(
        [sys.executable, "-m", "dcf.cli", "status", "--warehouse", str(wh)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250"},
        cwd=ROOT,
    )
    assert ("withdrawn from the inbox: 1 file(s)" in status.stdout) == (policy == "keep"), status.stdout
    if policy == "keep":  # a layout change re-processes every file: the withdrawn one from the raw archive
        rerun = run_nightly(inbox=str(inbox), warehouse=str(wh), sources=str(sources), force=True)
        assert any(f["file"] == key and f["status"] == "loaded" for f in rerun.files)
        with duckdb.connect(str(wh), read_only=True) as con:
            assert (
                con.execute("SELECT count(*) FROM fact_funding_line WHERE file_key = ?", [key]).fetchone()[0]
                == rows_before
            )
    shutil.copyfile(archived, gone)  # the agency sends it again: present, nothing withdrawn
    again = run()
    assert again.totals["files_withdrawn"] == 0


def test_a_file_name_that_is_not_utf8_fails_or_loads_alone_and_is_shown_escaped(inbox_copy, tmp_path):
    inbox, _ = inbox_copy
    wh = tmp_path / "warehouse.duckdb"
    odd = os.fsdecode(os.fsencode(str(inbox / "mod")) + b"/MOD_budget_\xff.xlsx")
    shutil.copyfile(inbox / "mod" / "MOD_budget_FY2025.xlsx", odd)
    summary = run_nightly(inbox=str(inbox), warehouse=str(wh))
    assert summary.outcome in ("success", "partial")
    entry = next(f for f in summary.files if "\\xff" in f["file"])
    assert entry["file"] == "MOD/MOD_budget_\\xff.xlsx"
    with duckdb.connect(str(wh), read_only=True) as con:
        assert (
            con.execute("SELECT count(*) FROM audit_source_file WHERE file_key = ?", [entry["file"]]).fetchone()[0] == 1
        )
        assert con.execute("SELECT count(*) FROM file_reconciliation WHERE NOT reconciles").fetchone()[0] == 0
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "nothing_new"  # not re-processed every night

"""The dcf command as a user runs it: a real process, exit codes, readable output, no tracebacks."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REFERENCE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DCF = [sys.executable, "-m", "dcf.cli"]


def dcf(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([*DCF, *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT)


def test_run_status_failures_round_trip(inbox_copy, tmp_path):
    inbox, manifest = inbox_copy
    wh = tmp_path / "out" / "warehouse.duckdb"
    # paths through environment variables, as a deployment would set them
    env = {"DCF_INBOX": str(inbox), "DCF_WAREHOUSE": str(wh)}
    result = dcf("run", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = sum(f["data_rows"] for f in manifest["files"])
    assert f"rows {lines} read" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "cannot interrupt" not in result.stdout + result.stderr  # Prefect's per-file task-timeout warning
    assert wh.exists()

    status = dcf("status", env=env)
    assert status.returncode == 0
    assert "MOD/MOD_budget_FY2024.xlsx" in status.stdout and str(wh) in status.stdout

    bad = next(b for f in manifest["files"] if f["agency"] == "SANG" for b in f["bad_rows"])
    failures = dcf("failures", "--agency", "SANG", env=env)
    assert failures.returncode == 0
    assert f"row {bad['excel_row']}, cell " in failures.stdout
    summary = dcf("failures", "--summary", env=env)
    assert "country_unknown" in summary.stdout

    exported = dcf("failures", "--agency", "SANG", "--export", str(tmp_path / "steward"), env=env)
    assert exported.returncode == 0, exported.stderr
    books = sorted(p.name for p in (tmp_path / "steward").glob("*.xlsx"))
    sang_files = {Path(f["path"]).stem for f in manifest["files"] if f["agency"] == "SANG" and f["bad_rows"]}
    assert books == sorted(f"SANG__{stem}__failures.xlsx" for stem in sang_files)

    again = dcf("run", "--inbox", str(inbox), "--warehouse", str(wh))
    assert again.returncode == 0 and f"0 file(s) processed, {len(manifest['files'])} unchanged" in again.stdout


def test_bad_source_yaml_is_a_usage_error_without_traceback(tmp_path):
    sources = tmp_path / "sources"
    shutil.copytree(ROOT / "sources", sources)
    text = (
        (sources / "mod.yaml")
        .read_text(encoding="utf-8")
        .replace("fiscal_year_start_month: 1", "fiscal_year_start_month: 14")
    )
    (sources / "mod.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "inbox").mkdir()
    result = dcf(
        "run", "--inbox", str(tmp_path / "inbox"), "--sources", str(sources), "--warehouse", str(tmp_path / "w.duckdb")
    )
    assert result.returncode == 2
    assert "mod.yaml" in result.stderr and "fiscal_year_start_month" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_inbox_is_a_usage_error(tmp_path):
    result = dcf("run", "--inbox", str(tmp_path / "nowhere"), "--warehouse", str(tmp_path / "w.duckdb"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_second_ingestion_while_one_runs_exits_3(tmp_path):
    (tmp_path / "inbox").mkdir()
    wh = tmp_path / "w.duckdb"
    with open(tmp_path / "w.duckdb.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running ingestion holds
        result = dcf("run", "--inbox", str(tmp_path / "inbox"), "--warehouse", str(wh))
    assert result.returncode == 3
    assert "another ingestion is running" in result.stderr
    assert not wh.exists()


def test_rerate_lists_the_frozen_rates_it_moved(inbox_copy, tmp_path):
    inbox, _ = inbox_copy
    wh = tmp_path / "warehouse.duckdb"
    reference = tmp_path / "reference"
    shutil.copytree(REFERENCE, reference)
    env = {"DCF_INBOX": str(inbox), "DCF_WAREHOUSE": str(wh), "DCF_REFERENCE": str(reference)}
    assert dcf("run", env=env).returncode == 0
    with open(reference / "fx_rates.csv", "a", encoding="utf-8") as fh:  # a steward's EUR rate for every date
        fh.write("EUR,2020-01-01,2026-12-31,0.5,steward test rate\n")
    result = dcf("rerate", "--fiscal-year", "2024", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    with duckdb.connect(str(wh), read_only=True) as con:
        moved = con.execute(
            "SELECT count(*) FROM fx_rate_lock WHERE fiscal_year = 2024 AND currency = 'EUR'"
        ).fetchone()
    assert f"{moved[0]} frozen exchange rate(s) changed" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.strip().startswith("│ EUR")]
    assert len(rows) == moved[0] and all("2024" in r and "ecb" in r and "override" in r and "0.5" in r for r in rows)

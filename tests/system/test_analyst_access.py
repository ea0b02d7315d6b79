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
    result = subprocess.run([duckdb_cli(), "-readonly", "-csv", str(published), "-c",
                             "SELECT count(*) AS n FROM funding_lines; SELECT count(*) AS n FROM open_failures;"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(published), read_only=True) as con:
        expected = [con.execute("SELECT count(*) FROM funding_lines").fetchone()[0],
                    con.execute("SELECT count(*) FROM open_failures").fetchone()[0]]
    assert [int(line) for line in result.stdout.split() if line.isdigit()] == expected
    assert expected[0] > 1000


def test_reader_holding_the_file_does_not_block_a_load(published, sample_inbox):
    inbox, _ = sample_inbox
    reader = duckdb.connect(str(published), read_only=True)  # an analyst's open session
    try:
        before = reader.execute("SELECT count(*) FROM audit_load").fetchone()[0]
        summary = run_nightly(inbox=str(inbox), warehouse=str(published))
        assert summary.outcome == "nothing_new"
        assert reader.execute("SELECT count(*) FROM audit_load").fetchone()[0] == before  # still the old version
    finally:
        reader.close()
    with duckdb.connect(str(published), read_only=True) as fresh:
        assert fresh.execute("SELECT count(*) FROM audit_load").fetchone()[0] == before + 1

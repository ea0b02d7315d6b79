"""Hostile text end to end (issue "hostile input"): files whose names and cells hold rich markup and ANSI escape
sequences go through ``dcf run``; the run summary, ``dcf status`` and ``dcf failures`` print them literally (exit 0,
no raw ESC byte, ``[bold red]`` shown rather than obeyed). Unit tests: tests/unit/test_hostile_text.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ESC = "\x1b"
GAMI_NAME = "GAMI_budget_[bold red]\x1b[31m2024.csv"
GAMI_SHOWN = "GAMI/GAMI_budget_[bold red]\\x1b[31m2024.csv"


def dcf(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "dcf.cli", *args], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT
    )


@pytest.fixture
def hostile_inbox(sample_inbox, tmp_path) -> Path:
    """Two sample files under hostile names, the GAMI one with an unknown partner and an amount that is no number,
    both holding markup and escape sequences."""
    sample, _ = sample_inbox
    inbox = tmp_path / "inbox"
    (inbox / "gami").mkdir(parents=True)
    (inbox / "sang").mkdir()
    lines = (sample / "gami" / "GAMI_budget_2024.csv").read_text(encoding="utf-8").split("\n")
    for i, col, text in ((1, 2, "\x1b[31mAtlantis[/b]"), (2, 5, "12[/x]\x1b[0m")):
        cells = lines[i].split(";")
        cells[col] = text
        lines[i] = ";".join(cells)
    (inbox / "gami" / GAMI_NAME).write_text("\n".join(lines), encoding="utf-8")
    shutil.copyfile(sample / "sang" / "SANG_budget_2024.xlsx", inbox / "sang" / "SANG_[bold red]red.xlsx")
    return inbox


def test_run_status_and_failures_print_hostile_text_literally(hostile_inbox, tmp_path):
    wh = tmp_path / "wh.duckdb"
    run = dcf("run", "--inbox", str(hostile_inbox), "--warehouse", str(wh))
    assert run.returncode == 0, run.stderr[-3000:]
    status = dcf("status", "--warehouse", str(wh))
    failures = dcf("failures", "--warehouse", str(wh), "--agency", "GAMI")
    for result in (run, status, failures):
        assert result.returncode == 0, result.stderr[-3000:]
        assert ESC not in result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
    for result in (run, status):
        assert GAMI_SHOWN in result.stdout and "SANG/SANG_[bold red]red.xlsx" in result.stdout
    lines = failures.stdout.splitlines()
    assert GAMI_SHOWN in lines
    assert any(line.startswith("  row 2, cell C2 Partner = '\\x1b[31mAtlantis[/b]': ") for line in lines)
    assert any(line.startswith("  row 3, cell F3 Amount (EUR '000) = '12[/x]\\x1b[0m': ") for line in lines)

"""A steward export stopped by SIGTERM (a scheduler's stop, ``timeout``, ``kill``) leaves nothing behind: not the
workbook it was writing, not openpyxl's temporary files (a killed full-size export left 153 MB in /tmp), and it
says so in one line, exit 143 (issue 17, point 8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# the real CLI; the Data sheet's writer is wrapped so the signal comes while openpyxl's temporary file is open
SCRIPT = r"""
import os, signal, sys
import warehouse.export as ex
from openpyxl.worksheet import _writer
real = ex.write_data
def stopping(data, source, failures):
    for i in range(2000):
        data.append([f"row {i}"])
    print("TEMP", *_writer.ALL_TEMP_FILES, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    return real(data, source, failures)
ex.write_data = stopping
from dcf.cli import app
app(["failures", "--export", sys.argv[1], "--warehouse", sys.argv[2]])
"""


def test_a_stopped_export_removes_its_workbook_and_temporary_files(sample_warehouse: Path, tmp_path: Path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), str(sample_warehouse)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 143, done.stderr[-2000:]
    temps = [Path(p) for line in done.stdout.splitlines() if line.startswith("TEMP ") for p in line.split()[1:]]
    assert temps, done.stdout
    assert not [p for p in temps if p.exists()]
    assert not list(out.glob(".dcf-*")) and not list(out.glob("*.xlsx"))
    assert "the export was stopped (SIGTERM)" in done.stderr
    assert "Traceback" not in done.stderr

"""The worst-sheet benchmark's generator and its measuring (benchmarks/worst_sheet.py), on a small sheet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fastexcel

from benchmarks import worst_sheet

ROOT = Path(__file__).resolve().parents[2]


def test_the_sheet_has_the_mod_headers_every_partner_unknown_and_every_fourth_amount_not_a_number(tmp_path):
    path = tmp_path / "mod" / "MOD_budget_2024.xlsx"
    worst_sheet.write_sheet(path, rows=120)
    frame = fastexcel.read_excel(str(path)).load_sheet("Budget").to_pandas()
    assert list(frame.columns) == worst_sheet.HEADERS
    assert len(frame) == 120
    assert frame["Partner Country"].str.startswith("Atlantis ").all()
    # the column is read as numbers: its "n/a" cells are the missing ones
    assert frame["Amount (SAR '000)"].isna().sum() == sum(1 for i in range(2, 122) if (i % 50) % 4 == 0) == 31
    assert frame["Program Code"].iloc[0] == "MOD-0000002" and frame["Program Code"].iloc[-1] == "MOD-0000121"
    assert not path.with_name(path.name + ".partial").exists()


def test_measure_reports_the_childs_own_peak_and_exit_code():
    """Measured from a small process, as ``make bench-worst`` runs: Linux's ru_maxrss of a child also holds the
    high-water mark of the process it was started from (the memory exec leaves), so a measuring process must stay
    far below what it measures (a pytest worker here holds ~700 MB); the figure is then the child's own."""
    grow = "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('done'); raise SystemExit(3)"
    probe = (
        "import sys; from benchmarks import worst_sheet; "
        f"m = worst_sheet.measure([sys.executable, '-c', {grow!r}]); print(m.exit_code, m.peak_kib, m.tail)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    code, peak, tail = done.stdout.split(maxsplit=2)
    assert int(code) == 3 and tail.strip() == "done"
    assert 200 * 1024 < int(peak) < 400 * 1024  # the 200 MiB it touched (a Python start is ~10 MiB more)

"""The worst-sheet benchmark's generator and its measuring (benchmarks/worst_sheet.py), on a small sheet."""

from __future__ import annotations

import sys

import fastexcel

from benchmarks import worst_sheet


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
    grow = "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('done'); raise SystemExit(3)"
    got = worst_sheet.measure([sys.executable, "-c", grow])
    assert got.exit_code == 3 and got.tail == "done"
    assert 200 * 1024 < got.peak_kib < 600 * 1024  # the 200 MiB it touched, not this process's peak

"""Hostile input for the raw archive and the steward workbooks: a 255-byte file name (Arabic, 2 bytes a character),
a workbook that cannot be written among others, and a file with tens of thousands of quarantined rows (the export
streams: its memory does not grow with the rows)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from flows import archive
from flows.nightly_steps import _dimensions
from flows.process import FileTask, describe, process_file
from warehouse.export import export_failures, workbook_name
from warehouse.export_sheets import MAX_COMMENTS
from warehouse.store import LoadInfo, Staging

ROOT = Path(__file__).resolve().parents[2]
HEADER = "Project;Project Name;Partner;Domain;Year;Amount (EUR '000);Currency;Booking Date"
#: GAMI_budget_ + 119 Arabic letters (2 bytes each) + x.csv: 255 bytes, the longest name a file system takes
LONG_NAME = "GAMI_budget_" + "\u0645" * 119 + "x.csv"


def _csv(path: Path, rows: int) -> Path:
    """A GAMI budget file whose every record fails (an unknown partner country); names that look like formulas."""
    lines = [HEADER]
    lines += [f"GAMI-P{i:06d};=Project {i};Atlantis;Maintenance;2024;{i % 997},50;EUR;2024-03-01" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _warehouse(base: Path, files: list[Path], reference, sources) -> Path:
    """The files processed and loaded into a new warehouse (their own paths stand for the raw archive's copies)."""
    gami = next(s for s in sources if s.agency == "GAMI")
    batches = []
    for path in files:
        digest, size, mtime = describe(path)
        task = FileTask(path, f"GAMI/{path.name}", digest, "test", size, mtime, gami, gami.spec_for(path.name))
        batch = process_file(task, reference)
        batch.archive_path = str(path)
        batches.append(batch)
    wh = base / "wh.duckdb"
    staging = Staging(wh)
    try:
        for table, frame in _dimensions(reference, sources).items():
            staging.replace_dimension(table, frame)
        staging.load_batches(batches, LoadInfo("L1", datetime.now(), None, "test", str(base)), datetime.now(), None)
        staging.check()
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    return wh


def test_the_archive_keeps_a_file_with_a_255_byte_name(tmp_path):
    assert len(LONG_NAME.encode("utf-8")) == 255
    path = tmp_path / LONG_NAME
    path.write_bytes(b"Project;Amount\nP1;1\n")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    kept = archive.keep(path, digest, tmp_path / "archive")
    assert kept is not None and kept.name == LONG_NAME and kept.read_bytes() == path.read_bytes()
    assert [p.name for p in kept.parent.iterdir()] == [LONG_NAME]  # no temporary file left behind


def test_workbook_names_fit_255_bytes_and_stay_unique():
    long_a, long_b = f"GAMI/{LONG_NAME}", f"GAMI/{LONG_NAME[:-6]}y.csv"  # differ only in their last characters
    taken: set[str] = set()
    names = []
    for key in (long_a, long_b, long_a.replace(".csv", ".txt"), long_a):
        name = workbook_name("GAMI", key, taken)
        taken.add(name)
        names.append(name)
    assert all(len(n.encode("utf-8")) <= 255 for n in names), [len(n.encode()) for n in names]
    assert len(set(names)) == len(names)
    assert all(n.startswith("GAMI__GAMI_budget_\u0645") and n.endswith("__failures.xlsx") for n in names)
    assert workbook_name("GAMI", long_a) == workbook_name("GAMI", long_a)  # the same key, the same name
    assert workbook_name("MOD", "MOD/MOD_budget_FY2024.xlsx") == "MOD__MOD_budget_FY2024__failures.xlsx"  # as before


def test_a_long_name_exports_and_one_workbook_that_fails_does_not_stop_the_others(tmp_path, reference, sources):
    long_file = _csv(tmp_path / LONG_NAME, 5)
    blocked = _csv(tmp_path / "GAMI_budget_2023.csv", 5)
    last = _csv(tmp_path / "GAMI_budget_2025.csv", 5)
    wh = _warehouse(tmp_path, [long_file, blocked, last], reference, sources)
    out = tmp_path / "out"
    # a folder (with a file in it) where one workbook goes: that workbook cannot be written, the others can
    (out / workbook_name("GAMI", f"GAMI/{blocked.name}") / "keep").mkdir(parents=True)
    written = export_failures(wh, out)
    assert sorted(p.name for p in written) == sorted(workbook_name("GAMI", f"GAMI/{p.name}") for p in (long_file, last))
    assert all(p.is_file() and len(p.name.encode("utf-8")) <= 255 for p in written)
    [problem] = written.problems
    assert problem.startswith(f"GAMI/{blocked.name}: no workbook written") and "\n" not in problem
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    wb = openpyxl.load_workbook(next(p for p in written if "\u0645" in p.name))
    assert wb.sheetnames[0] == "Issues" and wb.worksheets[1]["C2"].comment is not None


#: the child's peak memory: VmHWM, its own address space's high-water mark (getrusage's ru_maxrss is no good here:
#: Linux carries it over from the parent through fork and exec, so a child of a big pytest process reports the parent)
_CHILD = """
import json, re, sys, time
from pathlib import Path
from warehouse.export import export_failures
t = time.monotonic()
written = export_failures(Path(sys.argv[1]), Path(sys.argv[2]))
hwm = int(re.search(r"VmHWM:\\s*(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"seconds": time.monotonic() - t, "peak_kb": hwm, "written": [str(p) for p in written],
                  "problems": written.problems}))
"""


def _export_in_child(wh: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(wh), str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_export_streams_tens_of_thousands_of_failing_rows(tmp_path, reference, sources):
    """Measured on 2 busy CPUs: 4,000 failing rows 174 MB peak in 5.6 s, 24,000 rows 228 MB in 26 s (most of it the
    interpreter, DuckDB and pandas; what grew then, ~2.7 KB a failure, was the failures held for sorting: they are now
    read in row order from the warehouse, tests/integration/test_export_streaming_bound.py). Before the streaming export, 20,000 rows took 468 s and 471 MB (a workbook held
    in memory, a comment object per cell, a scan of the sheet per failing row)."""
    runs = {}
    for rows in (4_000, 24_000):
        base = tmp_path / str(rows)
        base.mkdir()
        wh = _warehouse(base, [_csv(base / "GAMI_budget_2024.csv", rows)], reference, sources)
        runs[rows] = _export_in_child(wh, base / "out")
        assert not runs[rows]["problems"]
    small, large = (runs[n]["peak_kb"] / 1024 for n in (4_000, 24_000))
    print({n: (round(r["peak_kb"] / 1024), round(r["seconds"], 1)) for n, r in runs.items()})
    # 2026-12-02, 2 cores: 230 / 316 / 328 MB at 4,000 / 24,000 / 44,000 rows (a fresh clone under load: 263 and 353
    # MB), so the 4,000 -> 24,000 step is DuckDB's ranking buffer (capped at 256 MB) filling, not growth per row;
    # the export that held its workbook in memory took 471 MB for 20,000 rows
    assert large < 400, f"peak {large:.0f} MB for 24,000 failing rows"
    assert large - small < 130, f"{small:.0f} MB -> {large:.0f} MB: memory grows with the rows"
    [path] = runs[24_000]["written"]
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == ["Issues", "Data"]
    data = wb["Data"]
    notes = [r[0] for r in wb["Issues"].iter_rows(min_row=24_002, values_only=True) if r and r[0]]
    assert any(f"first {MAX_COMMENTS:,} failing cells" in n for n in notes), notes
    rows = data.iter_rows(min_row=24_001, max_row=24_001)
    last = next(rows)
    assert last[0].value == "GAMI-P023999" and last[1].value == "=Project 23999" and last[1].data_type == "s"
    assert last[2].fill.start_color.rgb == "FFFFC7CE"  # filled, past the comments' cap

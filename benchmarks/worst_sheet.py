"""The worst legal sheet (``make bench-worst``): memory of one nightly run and of the steward export on the largest
sheet Excel allows, every row of it failing (issue 17, point 8: within the 1 GiB bound of issue 15).

The sheet: one MOD budget workbook, sheet "Budget", the MOD headers and 1,048,574 data rows (Excel's 1,048,576 rows
less the header and one spare), inline strings; partner "Atlantis <k>" (k = row % 50, never a known country), so
every row is quarantined, and the amount is "n/a" where k % 4 == 0 (13 rows in 50; a second failure on them):
1,321,203 failures with 51 distinct messages. SYNTHETIC: generated here, deterministic, cached outside the repository (``$DCF_BENCH_CACHE`` or
``~/.cache/dcf-bench``), about 30 MB.

Each measured command runs in a CHILD PROCESS of its own, as a user runs it (``dcf run -q``, then ``dcf failures
--export``); its peak resident set size is the kernel's (``wait4``'s ``ru_maxrss``). The counts are read back from
the warehouse, so the figures belong to a run that kept every row.

Usage: ``python -m benchmarks.worst_sheet [--rows 1048574] [--no-export] [--out BENCHMARKS.md] [--workdir DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from benchmarks.corpus import cache_root
from benchmarks.report import machine_info, update_markdown
from dcf.commands.common import EXIT_OK, EXIT_PARTIAL

KEY = "worst-sheet"
MOD_SOURCE = Path(__file__).resolve().parents[1] / "sources" / "mod.yaml"
ROWS = 1_048_574
BOUND_KIB = 1024 * 1024  # issue 15's bound: 1 GiB
VERSION = "v1"
#: the MOD budget headers as its source declares them (each column's first name in sources/mod.yaml)
HEADERS = [names[0] for names in yaml.safe_load(MOD_SOURCE.read_text(encoding="utf-8"))["files"][0]["columns"].values()]

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Budget" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>'
)


def _text(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def _number(ref: str, value: int) -> str:
    return f'<c r="{ref}"><v>{value}</v></c>'


def write_sheet(path: Path, rows: int = ROWS) -> None:
    """The worst sheet, streamed into the zip (never the whole XML in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", _WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            )
            header = "".join(_text(f"{c}1", h) for c, h in zip("ABCDEFG", HEADERS, strict=True))
            f.write(f'<row r="1">{header}</row>'.encode())
            buf: list[str] = []
            for i in range(2, rows + 2):
                k = i % 50
                amount = _number(f"F{i}", 1000 + k) if k % 4 else _text(f"F{i}", "n/a")
                buf.append(
                    f'<row r="{i}">{_text(f"A{i}", f"MOD-{i:07d}")}{_text(f"B{i}", f"Program {k}")}'
                    f"{_text(f'C{i}', f'Atlantis {k}')}{_text(f'D{i}', 'Joint exercise')}{_number(f'E{i}', 2024)}"
                    f"{amount}{_text(f'G{i}', 'SAR')}</row>"
                )
                if len(buf) >= 20_000:
                    f.write("".join(buf).encode())
                    buf = []
            f.write("".join(buf).encode())
            f.write(b"</sheetData></worksheet>")
    partial.replace(path)


def cached_inbox(rows: int) -> tuple[Path, bool]:
    """The inbox holding the worst sheet, from the cache (written there the first time). (inbox, was cached)"""
    inbox = cache_root() / f"worst-sheet-{VERSION}-{rows}" / "inbox"
    sheet = inbox / "mod" / "MOD_budget_2024.xlsx"
    if sheet.exists():
        return inbox, True
    write_sheet(sheet, rows)
    return inbox, False


@dataclass
class Measured:
    seconds: float
    peak_kib: int
    exit_code: int
    tail: str


def measure(argv: list[str]) -> Measured:
    """One command in a child process: wall time, the kernel's peak RSS of that child, exit code, output's end.
    Linux's ru_maxrss of a child is at least the high-water mark of this process when it starts the child (exec
    records the memory it leaves), so this process stays small (~80 MiB) beside the ~1 GiB it measures."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        tail = out.read().decode("utf-8", "replace").strip().splitlines()[-3:]
    return Measured(seconds, int(usage.ru_maxrss), child.returncode, " | ".join(tail))


def dcf() -> list[str]:
    found = Path(sys.executable).with_name("dcf")
    return [str(found)] if found.exists() else [sys.executable, "-c", "from dcf.cli import main; main()"]


def counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute(
            "SELECT rows_read, rows_loaded, rows_quarantined, rows_skipped FROM audit_source_file WHERE is_current"
        ).fetchone()
        held = con.execute("SELECT count(*) FROM quarantine_row").fetchone()
        failures = con.execute("SELECT count(*) FROM audit_validation_failure WHERE status = 'open'").fetchone()
    assert row is not None and held is not None and failures is not None
    read, loaded, quarantined, skipped = (int(x) for x in row)
    return {
        "read": read,
        "loaded": loaded,
        "quarantined": quarantined,
        "skipped": skipped,
        "held_rows": int(held[0]),
        "failures": int(failures[0]),
    }


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def _verdict(kib: int) -> str:
    return "met" if kib <= BOUND_KIB else f"MISSED by {(kib - BOUND_KIB) / 1024:,.0f} MiB"


def render(
    m: dict, rows: int, cached: bool, run: Measured, got: dict[str, int], export: Measured | None, size: int
) -> str:
    """The BENCHMARKS.md section; ``m``: machine_info() taken when the run started (code version, load)."""
    lines = [
        f"<!-- bench:begin {KEY} -->",
        "## Worst legal sheet: memory of one run and of the steward export (`make bench-worst`)",
        "",
        f"One SYNTHETIC MOD workbook of {rows:,} data rows (Excel's limit), every row failing "
        f"({'cached' if cached else 'generated by this run'}; {size / 2**20:,.0f} MB). Each command in a child "
        "process of its own; peak RSS is the kernel's (`wait4`). Issue 15's bound: 1 GiB.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']:.0f} GiB; load average {m['load_start']:.1f} at "
        f"the start, {os.getloadavg()[0]:.1f} at the end; code {m['code']}; duckdb {m['duckdb']}, pandas "
        f"{m['pandas']}, prefect {m['prefect']}.",
        "",
        "| command | wall time | peak RSS | bound (1 GiB) |",
        "|---|---:|---:|---|",
        f"| `dcf run -q` | {run.seconds:,.1f} s | {_mib(run.peak_kib)} ({run.peak_kib:,} KiB) | {_verdict(run.peak_kib)} |",
    ]
    if export is not None:
        lines.append(
            f"| `dcf failures --export` | {export.seconds:,.1f} s | {_mib(export.peak_kib)} ({export.peak_kib:,} KiB) "
            f"| {_verdict(export.peak_kib)} |"
        )
    lines += [
        "",
        f"Rows: {got['read']:,} read = {got['loaded']:,} loaded + {got['quarantined']:,} quarantined + "
        f"{got['skipped']:,} skipped; {got['held_rows']:,} rows held with their cells; {got['failures']:,} open "
        "failures.",
        "<!-- bench:end -->",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="Example: make bench-worst")
    parser.add_argument("--rows", type=int, default=ROWS, help="data rows of the sheet (default: Excel's limit)")
    parser.add_argument("--no-export", action="store_true", help="skip the steward export (~8 minutes at 1M rows)")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"), help="the report to update")
    parser.add_argument("--workdir", type=Path, help="where the warehouse goes (default: a temporary folder)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dcf-worst-")) if args.workdir is None else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        machine = machine_info()  # now: the code and the load this run starts with
        started = time.perf_counter()
        inbox, cached = cached_inbox(args.rows)
        print(f"sheet: {inbox} ({'cached' if cached else f'written in {time.perf_counter() - started:.1f} s'})")
        warehouse = work / "warehouse.duckdb"
        run = measure([*dcf(), "run", "--inbox", str(inbox), "--warehouse", str(warehouse), "-q"])
        print(f"dcf run: {run.seconds:.1f} s, peak {run.peak_kib:,} KiB, exit {run.exit_code}: {run.tail}")
        if run.exit_code not in (EXIT_OK, EXIT_PARTIAL):  # partial: published, some files failed
            print("error: the run failed; nothing recorded", file=sys.stderr)
            return 1
        got = counts(warehouse)
        if got["read"] != got["loaded"] + got["quarantined"] + got["skipped"] or got["read"] != args.rows:
            print(f"error: the counts do not reconcile: {got}", file=sys.stderr)
            return 1
        export = None
        if not args.no_export:
            export = measure([*dcf(), "failures", "--warehouse", str(warehouse), "--export", str(work / "export")])
            print(f"dcf failures --export: {export.seconds:.1f} s, peak {export.peak_kib:,} KiB: {export.tail}")
        size = (inbox / "mod" / "MOD_budget_2024.xlsx").stat().st_size
        update_markdown(args.out, KEY, render(machine, args.rows, cached, run, got, export, size))
        print(f"written: {args.out}")
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

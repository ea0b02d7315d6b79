"""Ingestion benchmark: the nightly Prefect flow against a raw-speed limit and a naive script.

One run, in one process:

1. generate a synthetic corpus of budget workbooks (``dcf.samples.generate_corpus``, seed 7);
   generation time is reported but is part of no ratio;
2. start Prefect with a trivial warm-up flow (its temporary server's start-up is excluded, per
   the target "the whole flow after Prefect's start");
3. FLOW: ``nightly_ingestion`` on the corpus into a fresh warehouse, rows reconciled against the
   manifest;
4. NO-OP: the same flow again on the unchanged inbox (target: within 2 s);
5. RAW LIMIT: per file, sequentially on one core, fastexcel -> Arrow -> DuckDB (no validation);
6. NAIVE: per file, pandas.read_excel (openpyxl) -> ``executemany`` INSERT into DuckDB; above
   100,000 lines (or with ``--naive-lines N``) it is timed on the first files adding up to about
   N lines and extrapolated linearly per line, which the report says;
7. peak RSS of this process after the flow step, and of the flow alone in a child process
   (``--memory-only``, which generates nothing);
8. ratios raw/flow (target >= 1) and naive/flow (target >= 100), written as one Markdown
   section per corpus size into ``--out`` (other corpus sizes' sections are kept).

Usage: ``python -m benchmarks.run [--lines 100000] [--files 10] [--out BENCHMARKS.md]
[--workdir DIR] [--skip-naive] [--naive-lines N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "BENCHMARKS.md"
SEED = 7
RAW_TARGET = 1.0  # raw_seconds / flow_seconds
NAIVE_TARGET = 100.0  # naive_seconds / flow_seconds
NOOP_TARGET_SECONDS = 2.0
NAIVE_FULL_MAX_LINES = 100_000  # above this the naive way is timed on a subset and extrapolated
MEMORY_MARK = "BENCH-MEMORY "  # prefix of the line a --memory-only child prints
WORK_NAMES = ("inbox", "flow.duckdb", "memory.duckdb", "raw.duckdb", "naive.duckdb")

T = TypeVar("T")

INTRO = """\
# Benchmarks

Speed of the nightly ingestion flow (`flows.nightly.nightly_ingestion`) on a synthetic corpus of
budget workbooks (`dcf.samples.generate_corpus`, seed 7: SYNTHETIC data, the five agency layouts
round-robin), against two baselines measured in the same run:

* **raw limit**: each workbook read with fastexcel straight to Arrow and inserted into a fresh
  DuckDB file, one file after another on one core, no validation. Target: raw / flow >= 1.0 (the
  flow is no slower than this).
* **naive**: `pandas.read_excel(engine="openpyxl")` then `executemany` INSERT into DuckDB.
  Target: naive / flow >= 100.

Flow time is the whole `run_nightly` call (what `dcf run` runs) after Prefect's start (a warm-up flow starts the
temporary Prefect server first). The no-op night re-runs the flow on the unchanged inbox
(target: within 2 s). Peak RSS is the process's high-water mark (`VmHWM`, i.e. `ru_maxrss`
without what a child inherits from its parent); the Prefect server is a separate process and is
not included. Imports of the project's modules and Prefect's start are timed but excluded.

Reproduce: `make bench` (100,000 lines) or `make bench LINES=1000000`, i.e.
`.venv/bin/python -m benchmarks.run --lines N`. Each corpus size has its own section below; a run
replaces only the section of its own size.
"""


# --------------------------------------------------------------------------- small helpers


def timed(fn: Callable[..., T], *args, **kwargs) -> tuple[T, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def peak_rss_kib() -> int:
    """Peak resident set size of this process so far, in KiB.

    ``VmHWM`` from /proc/self/status where there is one: unlike ``ru_maxrss`` it is not inherited
    from the parent across fork + exec, so a child process reports its own peak. Elsewhere
    ``ru_maxrss`` (KiB on Linux).
    """
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"^VmHWM:\s*(\d+) kB", status, re.M).group(1))
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:,.0f} MiB"


def verdict(value: float | None, ok: bool) -> str:
    return "n/a" if value is None else ("PASS" if ok else "MISS")


# --------------------------------------------------------------------------- corpus


@dataclass
class Corpus:
    inbox: Path
    files: list[dict]  # MANIFEST.json "files" entries

    @property
    def lines(self) -> int:
        return sum(f["lines"] for f in self.files)

    @property
    def data_rows(self) -> int:
        return sum(f["data_rows"] for f in self.files)

    @property
    def skipped_rows(self) -> int:
        return sum(f["blank_rows"] + f["totals_rows"] for f in self.files)

    @property
    def size_bytes(self) -> int:
        return sum((self.inbox / f["path"]).stat().st_size for f in self.files)

    def path(self, entry: dict) -> Path:
        return self.inbox / entry["path"]


def prepare_workdir(workdir: Path | None) -> tuple[Path, bool]:
    """The work directory and whether it is a temporary one to delete at the end.

    A given --workdir is kept, but what a previous run left in it is cleared.
    """
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="dcf-bench-")), True
    workdir.mkdir(parents=True, exist_ok=True)
    for name in WORK_NAMES:
        for path in workdir.glob(f"{name}*"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    return workdir, False


def generate(inbox: Path, lines: int, n_files: int) -> Corpus:
    from dcf.samples import generate_corpus

    manifest = generate_corpus(inbox, total_lines=lines, n_files=n_files, seed=SEED)
    return Corpus(inbox, manifest["files"])


# --------------------------------------------------------------------------- Prefect flow


def import_flow() -> None:
    """Import the flow module (pandas, pandera, Prefect, DuckDB ...): process start-up, not the flow."""
    import flows.nightly  # noqa: F401


def trivial_flow() -> None:
    """Run a flow that does nothing. The first call starts the temporary Prefect server (warm-up);
    later calls measure Prefect's own cost per flow run, which the flow and no-op times include."""
    from prefect import flow

    @flow(name="benchmark-trivial")
    def trivial() -> int:
        return 1

    trivial()


def run_flow(inbox: Path, warehouse: Path):
    """The flow as ``dcf run`` runs it (flows.nightly.run_nightly: no flow-run heartbeat without a real server)."""
    from flows.nightly import run_nightly

    return run_nightly(inbox=str(inbox), warehouse=str(warehouse))


def check_flow(summary, corpus: Corpus) -> list[str]:
    """Problems with a first run on the corpus: every row read, reconciled, nothing quarantined."""
    t = summary.totals
    expected = {
        "outcome": ("success", summary.outcome),
        "files_processed": (len(corpus.files), t.get("files_processed")),
        "rows_read": (corpus.data_rows, t.get("rows_read")),
        "rows_loaded": (corpus.lines, t.get("rows_loaded")),
        "rows_quarantined": (0, t.get("rows_quarantined")),
        "rows_skipped": (corpus.skipped_rows, t.get("rows_skipped")),
    }
    return [f"flow {k}: expected {want}, got {got}" for k, (want, got) in expected.items() if want != got]


def check_noop(summary, corpus: Corpus) -> list[str]:
    t = summary.totals
    problems = []
    if summary.outcome != "nothing_new":
        problems.append(f"no-op outcome: expected nothing_new, got {summary.outcome}")
    if t.get("files_unchanged") != len(corpus.files):
        problems.append(f"no-op files_unchanged: expected {len(corpus.files)}, got {t.get('files_unchanged')}")
    return problems


# --------------------------------------------------------------------------- baselines


def raw_limit(corpus: Corpus, database: Path) -> None:
    """fastexcel -> Arrow -> DuckDB, one file after another, one table per file."""
    import duckdb
    import fastexcel

    con = duckdb.connect(str(database))
    try:
        for i, entry in enumerate(corpus.files):
            reader = fastexcel.read_excel(str(corpus.path(entry)))
            table = reader.load_sheet(entry["sheet"], header_row=entry["header_row"] - 1).to_arrow()
            con.register("t", table)
            con.execute(f"CREATE TABLE raw_{i} AS SELECT * FROM t")
            con.unregister("t")
    finally:
        con.close()


def _duckdb_type(dtype) -> str:
    import pandas as pd

    if pd.api.types.is_float_dtype(dtype):
        return "DOUBLE"
    if pd.api.types.is_integer_dtype(dtype):
        return "BIGINT"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "TIMESTAMP"
    return "VARCHAR"


def naive(files: list[dict], corpus: Corpus, database: Path) -> None:
    """pandas.read_excel (openpyxl) -> executemany INSERT, one table per file."""
    import duckdb
    import pandas as pd

    con = duckdb.connect(str(database))
    try:
        for i, entry in enumerate(files):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # openpyxl: "no default style"
                df = pd.read_excel(
                    corpus.path(entry), sheet_name=entry["sheet"], header=entry["header_row"] - 1, engine="openpyxl"
                )
            columns = ", ".join(f"c{j} {_duckdb_type(t)}" for j, t in enumerate(df.dtypes))
            con.execute(f"CREATE TABLE naive_{i} ({columns})")
            rows = df.astype(object).where(df.notna(), None).values.tolist()
            con.executemany(f"INSERT INTO naive_{i} VALUES ({', '.join('?' * df.shape[1])})", rows)
    finally:
        con.close()


def naive_subset(corpus: Corpus, naive_lines: int | None) -> list[dict]:
    """All files, or the first files that add up to about naive_lines lines (at least one)."""
    limit = (
        naive_lines
        if naive_lines is not None
        else (corpus.lines if corpus.lines <= NAIVE_FULL_MAX_LINES else NAIVE_FULL_MAX_LINES)
    )
    chosen, lines = [], 0
    for entry in corpus.files:
        if chosen and lines >= limit:
            break
        chosen.append(entry)
        lines += entry["lines"]
    return chosen


# --------------------------------------------------------------------------- memory child


def memory_child(inbox: Path, warehouse: Path) -> dict | None:
    """Run the flow alone in a child process (--memory-only); its peak RSS and flow time."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "--memory-only",
        "--inbox",
        str(inbox),
        "--warehouse",
        str(warehouse),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(MEMORY_MARK):
            return json.loads(line[len(MEMORY_MARK) :])
    print(f"memory child failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
    return None


def memory_only(inbox: Path, warehouse: Path) -> int:
    """Child mode: warm Prefect up, run the flow once, print peak RSS and flow time as JSON."""
    import_flow()
    trivial_flow()
    before = peak_rss_kib()
    summary, seconds = timed(run_flow, inbox, warehouse)
    result = {
        "peak_rss_kib": peak_rss_kib(),
        "rss_before_flow_kib": before,
        "flow_seconds": seconds,
        "rows_read": summary.totals.get("rows_read"),
    }
    print(MEMORY_MARK + json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- results


@dataclass
class Results:
    lines: int
    files: int
    corpus_bytes: int
    data_rows: int
    command: str
    generate_s: float
    import_s: float
    prefect_start_s: float
    prefect_floor_s: float
    flow_s: float
    noop_s: float
    raw_s: float
    naive_s: float | None  # for the whole corpus (extrapolated when naive_lines < lines)
    naive_lines: int | None  # lines actually timed
    naive_measured_s: float | None
    flow_totals: dict
    rss_before_flow_kib: int
    rss_after_flow_kib: int
    child: dict | None
    problems: list[str] = field(default_factory=list)
    machine: dict = field(default_factory=dict)
    when: str = field(default_factory=lambda: datetime.now().strftime("%Y-%m-%d %H:%M"))

    @property
    def raw_ratio(self) -> float:
        return self.raw_s / self.flow_s

    @property
    def naive_ratio(self) -> float | None:
        return None if self.naive_s is None else self.naive_s / self.flow_s

    @property
    def extrapolated(self) -> bool:
        return self.naive_lines is not None and self.naive_lines < self.lines

    @property
    def key(self) -> str:
        return f"lines={self.lines} files={self.files}"


def machine_info() -> dict:
    from importlib.metadata import version

    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        model = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = model.group(1).strip() if model else cpu
    except OSError:
        pass
    versions = {name: version(name) for name in ("duckdb", "fastexcel", "prefect", "pandas", "openpyxl")}
    return {
        "code": code_version(),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": psutil.virtual_memory().total / 2**30,
        "os": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }


def code_version() -> str:
    """The git commit the project code is at, and whether the pipeline's code has uncommitted changes."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "flows", "transforms", "schemas", "warehouse", "sources", "reference")
    return f"{commit} + uncommitted changes" if dirty else commit


def _rate(lines: int, seconds: float | None) -> str:
    return "" if not seconds else f"{lines / seconds:,.0f}"


def _naive_note(r: Results) -> str:
    if r.naive_s is None:
        return "skipped (--skip-naive)"
    if r.extrapolated:
        return f"EXTRAPOLATED linearly per line from {r.naive_lines:,} lines timed in {r.naive_measured_s:.1f} s"
    return "measured on the whole corpus"


def render_section(r: Results) -> str:
    m = r.machine
    t = r.flow_totals
    naive_ratio = r.naive_ratio
    rows = [
        (
            "Flow: `nightly_ingestion` (after Prefect's start)",
            r.flow_s,
            r.lines,
            f"{t.get('rows_read', 0):,} read = {t.get('rows_loaded', 0):,} loaded + "
            f"{t.get('rows_quarantined', 0):,} quarantined + {t.get('rows_skipped', 0):,} skipped",
        ),
        (
            "No-op night (inbox unchanged)",
            r.noop_s,
            None,
            f"target <= {NOOP_TARGET_SECONDS:g} s: {verdict(r.noop_s, r.noop_s <= NOOP_TARGET_SECONDS)}",
        ),
        ("Raw limit: fastexcel -> Arrow -> DuckDB, 1 core", r.raw_s, r.lines, "no validation"),
        ("Naive: pandas/openpyxl -> `executemany`", r.naive_s, r.lines, _naive_note(r)),
        ("Imports (`flows.nightly`: pandas, pandera, Prefect ...)", r.import_s, None, "excluded from the flow time"),
        ("Prefect start (warm-up flow)", r.prefect_start_s, None, "excluded from the flow time"),
        (
            "Prefect floor: a flow that does nothing",
            r.prefect_floor_s,
            None,
            "Prefect's own cost per flow run, included in the flow and no-op times",
        ),
        ("Corpus generation", r.generate_s, r.lines, "not part of any ratio"),
    ]
    lines = [
        f"<!-- bench:begin {r.key} -->",
        f"## {r.lines:,} lines in {r.files} workbooks",
        "",
        f"Run {r.when}, code at git {m['code']}, on {m['cores']} cores ({m['cpu']}), {m['ram_gib']:.1f} GiB RAM, {m['os']}; "
        f"Python {m['python']}, DuckDB {m['duckdb']}, fastexcel {m['fastexcel']}, Prefect {m['prefect']}, "
        f"pandas {m['pandas']}, openpyxl {m['openpyxl']}.",
        "",
        f"Corpus: {r.lines:,} budget lines ({r.data_rows:,} rows below the headers, with blank and "
        f"totals rows) in {r.files} workbooks, {r.corpus_bytes / 2**20:.1f} MiB.",
        "",
        "| step | seconds | lines/s | note |",
        "|---|---:|---:|---|",
        *(
            f"| {name} | {'' if s is None else f'{s:.2f}'} | {_rate(n, s) if n else ''} | {note} |"
            for name, s, n, note in rows
        ),
        "",
        "| ratio | value | target | result |",
        "|---|---:|---:|---|",
        f"| raw / flow | {r.raw_ratio:.2f} | >= {RAW_TARGET:g} | {verdict(r.raw_ratio, r.raw_ratio >= RAW_TARGET)} |",
        f"| naive / flow | {'n/a' if naive_ratio is None else f'{naive_ratio:.1f}'} | >= {NAIVE_TARGET:g} | "
        f"{verdict(naive_ratio, (naive_ratio or 0) >= NAIVE_TARGET)}"
        f"{' (naive extrapolated)' if r.extrapolated else ''} |",
        "",
        f"Peak RSS: {mib(r.rss_after_flow_kib)} for the benchmark process after the flow step "
        f"({mib(r.rss_before_flow_kib)} before it, after corpus generation and Prefect's start)"
        + (
            f"; {mib(r.child['peak_rss_kib'])} for the flow alone in a child process "
            f"({mib(r.child['rss_before_flow_kib'])} after Prefect's start, flow {r.child['flow_seconds']:.2f} s there)."
            if r.child
            else "."
        ),
        "",
        *([f"**Problems:** {'; '.join(r.problems)}", ""] if r.problems else []),
        f"Command: `{r.command}`",
        "<!-- bench:end -->",
    ]
    return "\n".join(lines) + "\n"


SECTION_RE = re.compile(r"<!-- bench:begin (lines=(\d+) files=(\d+)) -->.*?<!-- bench:end -->\n?", re.S)


def update_markdown(path: Path, r: Results) -> None:
    """Intro + one section per corpus size; this run's section replaces the one of the same size."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    sections = {(int(m[2]), int(m[3])): m[0].rstrip("\n") + "\n" for m in SECTION_RE.finditer(text)}
    sections[(r.lines, r.files)] = render_section(r)
    body = "\n".join(sections[k] for k in sorted(sections))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(INTRO + "\n" + body, encoding="utf-8")


def print_summary(r: Results, out: Path) -> None:
    naive = (
        "skipped"
        if r.naive_s is None
        else f"{r.naive_s:8.2f} s   {r.lines / r.naive_s:,.0f} lines/s"
        + (f"   EXTRAPOLATED from {r.naive_lines:,} lines" if r.extrapolated else "")
    )
    naive_ratio = "n/a" if r.naive_ratio is None else f"{r.naive_ratio:.1f}"
    print(f"\n== benchmark: {r.lines:,} lines in {r.files} workbooks ==")
    print(f"generate      {r.generate_s:8.2f} s   (not in any ratio)")
    print(f"imports       {r.import_s:8.2f} s   (excluded)")
    print(f"prefect start {r.prefect_start_s:8.2f} s   (excluded)")
    print(f"prefect floor {r.prefect_floor_s:8.2f} s   (a flow that does nothing; included in flow and no-op)")
    print(f"flow          {r.flow_s:8.2f} s   {r.lines / r.flow_s:,.0f} lines/s   totals {r.flow_totals}")
    print(f"no-op         {r.noop_s:8.2f} s   target <= {NOOP_TARGET_SECONDS:g} s")
    print(f"raw limit     {r.raw_s:8.2f} s   {r.lines / r.raw_s:,.0f} lines/s")
    print(f"naive         {naive}")
    print(
        f"raw / flow    {r.raw_ratio:8.2f}     target >= {RAW_TARGET:g}: {verdict(r.raw_ratio, r.raw_ratio >= RAW_TARGET)}"
    )
    print(
        f"naive / flow  {naive_ratio:>8}     target >= {NAIVE_TARGET:g}: "
        f"{verdict(r.naive_ratio, (r.naive_ratio or 0) >= NAIVE_TARGET)}"
    )
    child = f", flow alone (child) {mib(r.child['peak_rss_kib'])}" if r.child else ""
    print(f"peak RSS      {mib(r.rss_after_flow_kib)} after the flow step{child}")
    for problem in r.problems:
        print(f"PROBLEM: {problem}")
    print(f"written to {out}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=100_000, help="budget lines in the corpus (default 100,000)")
    p.add_argument("--files", type=int, default=10, help="workbooks in the corpus (default 10)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Markdown file to update (default {DEFAULT_OUT})")
    p.add_argument(
        "--workdir", type=Path, default=None, help="keep the corpus and databases here (default: a temp dir)"
    )
    p.add_argument("--skip-naive", action="store_true", help="do not time the naive way")
    p.add_argument(
        "--naive-lines",
        type=int,
        default=None,
        help=f"time the naive way on about N lines and extrapolate (default: all if <= {NAIVE_FULL_MAX_LINES:,})",
    )
    p.add_argument("--skip-memory-child", action="store_true", help="do not measure the flow alone in a child process")
    p.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)  # child mode
    p.add_argument("--inbox", type=Path, help=argparse.SUPPRESS)  # child mode
    p.add_argument("--warehouse", type=Path, help=argparse.SUPPRESS)  # child mode
    return p.parse_args(argv)


def step(label: str, fn: Callable[..., T], *args) -> tuple[T, float]:
    print(f"-- {label} ...", flush=True)
    result, seconds = timed(fn, *args)
    print(f"-- {label}: {seconds:.2f} s", flush=True)
    return result, seconds


def time_naive(
    args: argparse.Namespace, corpus: Corpus, workdir: Path
) -> tuple[float | None, float | None, int | None]:
    """(seconds for the whole corpus, seconds measured, lines measured); None when skipped."""
    if args.skip_naive:
        return None, None, None
    subset = naive_subset(corpus, args.naive_lines)
    lines = sum(f["lines"] for f in subset)
    _, measured = step(f"naive on {lines:,} lines", naive, subset, corpus, workdir / "naive.duckdb")
    return measured * corpus.lines / lines, measured, lines


def benchmark(args: argparse.Namespace, workdir: Path) -> Results:
    machine = machine_info()  # before any import of the pipeline: the code version that gets timed
    corpus, generate_s = step(
        f"generate {args.lines:,} lines in {args.files} workbooks", generate, workdir / "inbox", args.lines, args.files
    )
    _, import_s = step("import flows.nightly", import_flow)
    _, prefect_start_s = step("start Prefect (warm-up flow)", trivial_flow)
    _, prefect_floor_s = step("Prefect floor (a flow that does nothing)", trivial_flow)
    rss_before = peak_rss_kib()
    summary, flow_s = step("flow", run_flow, corpus.inbox, workdir / "flow.duckdb")
    rss_after = peak_rss_kib()
    noop, noop_s = step("no-op flow", run_flow, corpus.inbox, workdir / "flow.duckdb")
    _, raw_s = step("raw limit", raw_limit, corpus, workdir / "raw.duckdb")
    naive_s, naive_measured, naive_lines = time_naive(args, corpus, workdir)
    child = None
    if not args.skip_memory_child:
        child, _ = step("flow alone in a child process (memory)", memory_child, corpus.inbox, workdir / "memory.duckdb")
    return Results(
        lines=corpus.lines,
        files=len(corpus.files),
        corpus_bytes=corpus.size_bytes,
        data_rows=corpus.data_rows,
        command=shlex.join(["python", "-m", "benchmarks.run", *sys.argv[1:]]),
        generate_s=generate_s,
        import_s=import_s,
        prefect_start_s=prefect_start_s,
        prefect_floor_s=prefect_floor_s,
        flow_s=flow_s,
        noop_s=noop_s,
        raw_s=raw_s,
        naive_s=naive_s,
        naive_lines=naive_lines,
        naive_measured_s=naive_measured,
        flow_totals=summary.totals,
        rss_before_flow_kib=rss_before,
        rss_after_flow_kib=rss_after,
        child=child,
        problems=check_flow(summary, corpus) + check_noop(noop, corpus),
        machine=machine,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_only:
        return memory_only(args.inbox, args.warehouse)
    workdir, temporary = prepare_workdir(args.workdir)
    try:
        results = benchmark(args, workdir)
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)
    update_markdown(args.out, results)
    print_summary(results, args.out)
    return 1 if results.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

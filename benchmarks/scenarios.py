"""The measured scenarios: the nightly flow (and Prefect's start and floor), the no-op night, the raw-speed
limit (fastexcel -> Arrow -> DuckDB), the naive way (pandas/openpyxl -> ``executemany``), and the flow alone in a
child process for its peak RSS (``--memory-only``); with the timing and peak-RSS helpers.

Prefect: ``run_nightly`` (what ``dcf run`` runs) starts Prefect's local server for its run when no API is configured
(flows/prefect_local.py), which would put a server start (10-30 s) into every timed night. The benchmark starts that
server once (:func:`start_prefect`, timed as "Prefect start" and excluded) and runs every flow inside it, as a
long-lived ``dcf serve`` or a configured PREFECT_API_URL would."""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

from benchmarks.corpus import Corpus

ROOT = Path(__file__).resolve().parents[1]
NAIVE_FULL_MAX_LINES = 100_000  # above this the naive way is timed on a subset and extrapolated
MEMORY_MARK = "BENCH-MEMORY "  # prefix of the line a --memory-only child prints

T = TypeVar("T")


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
        found = re.search(r"^VmHWM:\s*(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        found = None
    return int(found.group(1)) if found else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --------------------------------------------------------------------------- Prefect flow


def import_flow() -> None:
    """Import the flow module (pandas, pandera, Prefect, DuckDB ...): process start-up, not the flow."""
    import flows.nightly  # noqa: F401


def start_prefect(stack: ExitStack) -> None:
    """Start Prefect's local server as ``dcf run`` does (flows/prefect_local.py), for as long as ``stack`` is open,
    and run a warm-up flow on it."""
    from flows.prefect_local import local_prefect

    stack.enter_context(local_prefect(notify=lambda message: print(f"   {message}", flush=True)))
    trivial_flow()


def trivial_flow() -> None:
    """Run a flow that does nothing: the warm-up in :func:`start_prefect`, then Prefect's own cost per flow run (the
    floor), which the flow and no-op times include."""
    from prefect import flow

    @flow(name="benchmark-trivial")
    def trivial() -> int:
        return 1

    trivial()


def run_flow(inbox: Path, warehouse: Path):
    """The flow as ``dcf run`` runs it (flows.nightly.run_nightly: no flow-run heartbeat without a real server)."""
    from flows.nightly import run_nightly

    return run_nightly(inbox=str(inbox), warehouse=str(warehouse))


def settle_after_publish(warehouse: Path) -> float:
    """Wait until the published file is older than warehouse.quiet's RACY_NS (3 s), as it is on every real night
    with nothing new (nights come hours after the last publish): only then does a night trust what it remembers of
    the file (its version number) instead of opening it again, since a write within that window might not move the
    file's times. Returns the seconds waited (excluded from every figure)."""
    from warehouse.quiet import RACY_NS

    st = warehouse.stat()
    wait = (max(st.st_mtime_ns, st.st_ctime_ns) + RACY_NS - time.time_ns()) / 1e9 + 0.05
    if wait > 0:
        time.sleep(wait)
    return max(wait, 0.0)


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


def _create_like_warehouse(database: Path) -> None:
    """Create a baseline's new file in the storage format the warehouse is written in."""
    from warehouse.connect import lift_storage

    lift_storage(database)


def raw_limit(corpus: Corpus, database: Path) -> None:
    """fastexcel -> Arrow -> DuckDB, one file after another, one table per file (in the warehouse's storage format,
    so that the flow gains nothing on the limit from a setting the limit could use as well)."""
    import duckdb
    import fastexcel

    _create_like_warehouse(database)
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
    """pandas.read_excel (openpyxl) -> executemany INSERT, one table per file (in the warehouse's storage format)."""
    import duckdb
    import pandas as pd

    _create_like_warehouse(database)
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
    chosen: list[dict] = []
    lines = 0
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
    """Child mode: start Prefect, run the flow once, print peak RSS and flow time as JSON."""
    import_flow()
    with ExitStack() as stack:
        start_prefect(stack)
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

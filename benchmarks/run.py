"""Ingestion benchmark: the nightly Prefect flow against a raw-speed limit and a naive script.

One run, in one process:

1. the corpus: a synthetic corpus of budget workbooks (``samples.generate_corpus``, seed 7) from the cache
   (``$DCF_BENCH_CACHE`` or ~/.cache/dcf-bench, benchmarks/corpus.py), generated there the first time; generation
   time is reported but is part of no ratio; the run reads hard links to the cached files;
2. start Prefect's local server once, as ``dcf run`` does, with a warm-up flow (excluded: the target is "the whole
   flow after Prefect's start"), then time a flow that does nothing (Prefect's floor);
3. FLOW: ``nightly_ingestion`` on the corpus into a fresh warehouse, rows reconciled against the manifest, its
   stages timed (benchmarks/stages.py);
4. NO-OP: the same flow again on the unchanged inbox (target: within 0.5 s of Prefect's floor);
5. RAW LIMIT: per file, sequentially on one core, fastexcel -> Arrow -> DuckDB (no validation);
6. NAIVE: per file, pandas.read_excel (openpyxl) -> ``executemany`` INSERT into DuckDB; above
   100,000 lines (or with ``--naive-lines N``) it is timed on the first files adding up to about
   N lines and extrapolated linearly per line, which the report says;
7. peak RSS of this process after the flow step, and of the flow alone in a child process
   (``--memory-only``, which generates nothing);
8. ratios raw/flow (target >= 1) and naive/flow (target >= 100), written as one Markdown
   section per corpus size into ``--out`` (other sections are kept).

Usage: ``python -m benchmarks.run [--lines 100000] [--files 10] [--out BENCHMARKS.md]
[--workdir DIR] [--cache DIR] [--skip-naive] [--naive-lines N]``

The pieces: ``benchmarks/corpus.py`` (the corpus, its cache and the work directory), ``benchmarks/scenarios.py``
(what is measured), ``benchmarks/stages.py`` (the flow's stages), ``benchmarks/report.py`` (results, BENCHMARKS.md,
the printed summary); this module runs them in order. The scaling run (``make bench-scale``) is benchmarks/scale.py.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

from benchmarks.corpus import SEED, Corpus, cached_corpus, link_inbox, prepare_workdir
from benchmarks.report import Results, machine_info, print_summary, render_section, update_markdown
from benchmarks.scenarios import (
    NAIVE_FULL_MAX_LINES,
    check_flow,
    check_noop,
    import_flow,
    memory_child,
    memory_only,
    naive,
    naive_subset,
    peak_rss_kib,
    raw_limit,
    run_flow,
    settle_after_publish,
    start_prefect,
    timed,
    trivial_flow,
)
from benchmarks.stages import StageProbe

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "BENCHMARKS.md"

T = TypeVar("T")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=100_000, help="budget lines in the corpus (default 100,000)")
    p.add_argument("--files", type=int, default=10, help="workbooks in the corpus (default 10)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Markdown file to update (default {DEFAULT_OUT})")
    p.add_argument(
        "--workdir", type=Path, default=None, help="keep the inbox (links) and databases here (default: a temp dir)"
    )
    p.add_argument(
        "--cache", type=Path, default=None, help="corpus cache (default $DCF_BENCH_CACHE or ~/.cache/dcf-bench)"
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
    (cached, origin), generate_s = step(
        f"corpus of {args.lines:,} lines in {args.files} workbooks",
        cached_corpus,
        args.lines,
        args.files,
        SEED,
        args.cache,
    )
    print(f"   {origin.note}", flush=True)
    corpus = link_inbox(cached, workdir / "inbox")
    _, import_s = step("import flows.nightly", import_flow)
    with ExitStack() as prefect:
        _, prefect_start_s = step("start Prefect (local server + warm-up flow)", start_prefect, prefect)
        _, prefect_floor_s = step("Prefect floor (a flow that does nothing)", trivial_flow)
        rss_before = peak_rss_kib()
        with StageProbe() as probe:
            summary, flow_s = step("flow", run_flow, corpus.inbox, workdir / "flow.duckdb")
        stages = probe.breakdown(flow_s)
        rss_after = peak_rss_kib()
        settle_after_publish(workdir / "flow.duckdb")  # as a real next night finds it (excluded from every figure)
        with StageProbe() as probe:
            noop, noop_s = step("no-op flow", run_flow, corpus.inbox, workdir / "flow.duckdb")
        noop_stages = probe.breakdown(noop_s)
    _, raw_s = step("raw limit", raw_limit, corpus, workdir / "raw.duckdb")
    naive_s, naive_measured, naive_lines = time_naive(args, corpus, workdir)
    child = None
    if not args.skip_memory_child:
        child, _ = step("flow alone in a child process (memory)", memory_child, corpus.inbox, workdir / "memory.duckdb")
    machine["load_end"] = os.getloadavg()[0]
    return Results(
        lines=corpus.lines,
        files=len(corpus.files),
        corpus_bytes=corpus.size_bytes,
        data_rows=corpus.data_rows,
        command=shlex.join(["python", "-m", "benchmarks.run", *sys.argv[1:]]),
        corpus_note=origin.note,
        generate_s=origin.generate_s if origin.cached else generate_s,
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
        stages=stages,
        noop_stages=noop_stages,
        problems=check_flow(summary, corpus) + check_noop(noop, corpus) + stages["problems"] + noop_stages["problems"],
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
    update_markdown(args.out, results.key, render_section(results))
    print_summary(results, args.out)
    return 1 if results.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

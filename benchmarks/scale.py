"""The scaling benchmark (``make bench-scale``): the nightly flow from 100k to 5M lines, measured in one run.

1. the corpora, one per size, from the cache (benchmarks/corpus.py; generated there the first time, timed apart and
   part of no ratio): files of ``--file-lines`` lines (100,000), never fewer than ``--min-files`` (10) workbooks, so
   100k and 300k lines are 10 smaller workbooks and 5M lines are 50 workbooks of 100,000 lines; plus one more
   100,000-line workbook with the same name as each corpus's first file and other content (seed 8): the changed file;
2. per size, smallest first, in a CHILD PROCESS of its own (so the peak RSS is that size's): start Prefect's local
   server; Prefect's floor (a flow that does nothing); the FLOW into an empty warehouse (stages timed, peak RSS right
   after it); the NO-OP night, once the published file is 3 s old as on any real next night (warehouse/quiet.py
   RACY_NS; the wait is in no figure); and, where the corpus's first workbook has ``--file-lines`` lines, the INCREMENTAL
   night (that workbook replaced by the changed file, same name) and the same changed file loaded into an EMPTY
   warehouse;
3. per size, in this process: the RAW LIMIT (fastexcel -> Arrow -> DuckDB, one core, no validation);
4. NAIVE, once, right after the 1M size (where its target is set; else after the largest): pandas/openpyxl ->
   ``executemany`` timed on the first workbooks of the smallest corpus adding up to ``--naive-lines`` (20,000) lines,
   extrapolated linearly per line to every size (the report says so);
5. the scaling exponent (least-squares slope of log flow time against log lines) and the growth of the staging copy
   and the publish with the warehouse; every issue-15 target judged; the "Scaling" section of BENCHMARKS.md.

Usage: ``python -m benchmarks.scale [--sizes 100000,300000,1000000,2000000,5000000] [--file-lines 100000]
[--min-files 10] [--naive-lines 20000] [--out BENCHMARKS.md] [--workdir DIR] [--cache DIR] [--keep] [--json FILE]``;
``python -m benchmarks.scale --from-json FILE`` writes the section again from a run's saved figures (measures nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.corpus import (
    SEED,
    Corpus,
    Origin,
    cache_root,
    cached_corpus,
    link_inbox,
    prepare_workdir,
    replace_file,
)
from benchmarks.figures import files_for
from benchmarks.report import machine_info, update_markdown
from benchmarks.scale_report import SCALE_KEY, Scale, print_scale, render_scale
from benchmarks.scenarios import (
    import_flow,
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
from warehouse.filecopy import can_clone

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "BENCHMARKS.md"
DEFAULT_SIZES = (100_000, 300_000, 1_000_000, 2_000_000, 5_000_000)
CHILD_MARK = "BENCH-SCALE "  # prefix of the line a --child process prints
CHANGED_SEED = SEED + 1
NAIVE_AT = 1_000_000  # the size the naive/flow target is set at


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n")[0])
    p.add_argument(
        "--sizes",
        default=",".join(str(n) for n in DEFAULT_SIZES),
        help="corpus sizes in lines, comma-separated (default 100k, 300k, 1M, 2M, 5M)",
    )
    p.add_argument("--file-lines", type=int, default=100_000, help="lines per workbook, and of the changed file")
    p.add_argument("--min-files", type=int, default=10, help="fewest workbooks in a corpus (default 10)")
    p.add_argument("--naive-lines", type=int, default=20_000, help="lines the naive way is timed on (default 20,000)")
    p.add_argument("--skip-naive", action="store_true", help="do not time the naive way")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Markdown file to update (default {DEFAULT_OUT})")
    p.add_argument("--workdir", type=Path, default=None, help="warehouses and inboxes here (default: a temp dir)")
    p.add_argument(
        "--cache", type=Path, default=None, help="corpus cache (default $DCF_BENCH_CACHE or ~/.cache/dcf-bench)"
    )
    p.add_argument("--keep", action="store_true", help="keep each size's warehouses in the work directory")
    p.add_argument(
        "--json", type=Path, default=None, help="the run's figures as JSON (default: <cache>/last-scale.json)"
    )
    p.add_argument(
        "--from-json", type=Path, default=None, help="write the section from a run's JSON again; measure nothing"
    )
    p.add_argument("--child", help=argparse.SUPPRESS)  # child mode: a JSON job
    return p.parse_args(argv)


def say(message: str) -> None:
    print(f"-- {message}", flush=True)


# --------------------------------------------------------------------------- the child: one size


def child(job: dict) -> int:
    """One size's flows in this (fresh) process; prints the figures as one JSON line."""
    inbox, warehouse = Path(job["inbox"]), Path(job["warehouse"])
    out: dict[str, Any] = {"load_start": os.getloadavg()[0]}
    _, out["import_s"] = timed(import_flow)
    with ExitStack() as prefect:
        _, out["prefect_start_s"] = timed(start_prefect, prefect)
        _, out["floor_s"] = timed(trivial_flow)
        out["rss_before_kib"] = peak_rss_kib()
        out["flow"] = night(inbox, warehouse)
        out["rss_flow_kib"] = peak_rss_kib()
        out["warehouse_bytes"] = warehouse.stat().st_size
        out["settled_s"] = settle_after_publish(warehouse)  # as a real next night finds it
        out["noop"] = night(inbox, warehouse)
        if job.get("changed"):
            replace_file(inbox, job["changed_rel"], Path(job["changed"]))
            out["incremental"] = night(inbox, warehouse)
            out["single"] = night(Path(job["single_inbox"]), Path(job["single_warehouse"]))
        out["rss_end_kib"] = peak_rss_kib()
    out["load_end"] = os.getloadavg()[0]
    print(CHILD_MARK + json.dumps(out), flush=True)
    return 0


def night(inbox: Path, warehouse: Path) -> dict:
    """One flow run, timed, its stages broken down, its totals."""
    with StageProbe() as probe:
        summary, seconds = timed(run_flow, inbox, warehouse)
    return {
        "seconds": seconds,
        "outcome": summary.outcome,
        "totals": summary.totals,
        "stages": probe.breakdown(seconds),
    }


# --------------------------------------------------------------------------- the parent


def run_size(corpus: Corpus, changed: Corpus, args: argparse.Namespace, workdir: Path) -> dict:
    """One size: the child's figures, checked, and the raw limit measured here."""
    lines = corpus.lines
    folder = workdir / f"scale-{lines}"
    inbox = link_inbox(corpus, folder / "inbox")
    first = corpus.files[0]
    job: dict[str, Any] = {"inbox": str(inbox.inbox), "warehouse": str(folder / "flow.duckdb")}
    incremental = first["lines"] == args.file_lines and first["path"] == changed.files[0]["path"]
    if incremental:
        single = folder / "single-inbox" / first["path"]
        single.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(changed.path(changed.files[0]), single)
        job |= {
            "changed": str(changed.path(changed.files[0])),
            "changed_rel": first["path"],
            "single_inbox": str(folder / "single-inbox"),
            "single_warehouse": str(folder / "single.duckdb"),
        }
    say(f"{lines:,} lines in {len(corpus.files)} workbooks: flows in a child process ...")
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--child", json.dumps(job)], cwd=ROOT, capture_output=True, text=True
    )
    result: dict[str, Any] = {"lines": lines, "files": len(corpus.files), "corpus_bytes": corpus.size_bytes}
    for line in proc.stdout.splitlines():
        if line.startswith(CHILD_MARK):
            result |= json.loads(line[len(CHILD_MARK) :])
    if "flow" not in result:
        tail = proc.stderr[-3000:]
        result["problems"] = [f"{lines:,} lines: the child process failed (exit {proc.returncode})"]
        print(f"child failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
        return result
    say(
        f"{lines:,} lines: flow {result['flow']['seconds']:.2f} s, no-op {result['noop']['seconds']:.2f} s"
        + (
            f", incremental {result['incremental']['seconds']:.2f} s, single file {result['single']['seconds']:.2f} s"
            if "incremental" in result
            else ""
        )
        + f" (child {time.perf_counter() - started:.0f} s)"
    )
    result["problems"] = checks(result, corpus, changed)
    say(f"{lines:,} lines: raw limit ...")
    _, result["raw_s"] = timed(raw_limit, corpus, folder / "raw.duckdb")
    say(f"{lines:,} lines: raw limit {result['raw_s']:.2f} s")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def checks(result: dict, corpus: Corpus, changed: Corpus) -> list[str]:
    """Each night did what it should: every row loaded, nothing new on the no-op, one file on the incremental."""
    n, lines, files = corpus.lines, changed.lines, len(corpus.files)
    expected: list[tuple[str, str, dict[str, Any]]] = [
        (
            "flow",
            "success",
            {"files_processed": files, "rows_loaded": n, "rows_quarantined": 0, "rows_skipped": corpus.skipped_rows},
        ),
        ("noop", "nothing_new", {"files_unchanged": files}),
    ]
    if "incremental" in result:
        expected += [
            (
                "incremental",
                "success",
                {"files_processed": 1, "files_unchanged": files - 1, "rows_loaded": lines, "rows_quarantined": 0},
            ),
            ("single", "success", {"files_processed": 1, "rows_loaded": lines, "rows_quarantined": 0}),
        ]
    problems = []
    for name, outcome, totals in expected:
        got = result[name]
        if got["outcome"] != outcome:
            problems.append(f"{n:,} lines, {name}: outcome {got['outcome']}, expected {outcome}")
        for key, want in totals.items():
            if got["totals"].get(key) != want:
                problems.append(f"{n:,} lines, {name}: {key} {got['totals'].get(key)}, expected {want}")
        problems += [f"{n:,} lines, {name}: {p}" for p in got["stages"]["problems"]]
    return problems


def time_naive(args: argparse.Namespace, smallest: Corpus, workdir: Path) -> dict[str, Any]:
    """The naive way on the smallest corpus's first workbooks: seconds, lines, and the load average it ran under."""
    if args.skip_naive:
        return {}
    subset = naive_subset(smallest, args.naive_lines)
    lines = sum(f["lines"] for f in subset)
    say(f"naive on {lines:,} lines ...")
    load = os.getloadavg()[0]
    _, seconds = timed(naive, subset, smallest, workdir / "naive.duckdb")
    (workdir / "naive.duckdb").unlink(missing_ok=True)
    say(f"naive on {lines:,} lines: {seconds:.2f} s")
    return {"naive_s": seconds, "naive_lines": lines, "naive_load": (load, os.getloadavg()[0])}


def benchmark(args: argparse.Namespace, workdir: Path) -> Scale:
    started = time.perf_counter()
    machine = machine_info()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    corpora: list[tuple[Corpus, Origin]] = []
    generating = time.perf_counter()
    for lines in reversed(sizes):  # largest first: smaller corpora of the same workbooks are its first workbooks
        files = files_for(lines, args.file_lines, args.min_files)
        corpora.insert(0, cached_corpus(lines, files, SEED, args.cache, log=print))
        say(corpora[0][1].note)
    changed, changed_origin = cached_corpus(args.file_lines, 1, CHANGED_SEED, args.cache, log=print)
    corpus_s = time.perf_counter() - generating
    # the naive way right after the size its target is judged at (1M lines, else the largest), so both run under
    # about the same load on a shared machine
    naive_after = NAIVE_AT if NAIVE_AT in sizes else sizes[-1]
    results, naive_figures = [], {}
    for corpus, _ in corpora:
        results.append(run_size(corpus, changed, args, workdir))
        if corpus.lines == naive_after:
            naive_figures = time_naive(args, corpora[0][0], workdir)
    machine["load_end"] = os.getloadavg()[0]
    machine["clones"] = can_clone(workdir)  # whether the warehouses' copies were clones or byte copies
    return Scale(
        sizes=results,
        origins=[origin for _, origin in corpora] + [changed_origin],
        file_lines=args.file_lines,
        min_files=args.min_files,
        naive_s=naive_figures.get("naive_s"),
        naive_lines=naive_figures.get("naive_lines"),
        naive_load=naive_figures.get("naive_load"),
        corpus_s=corpus_s,
        total_s=time.perf_counter() - started,
        machine=machine,
        command=shlex.join(["python", "-m", "benchmarks.scale", *sys.argv[1:]]),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    if args.from_json:
        scale = Scale.from_json(args.from_json.read_text(encoding="utf-8"))
    else:
        workdir, temporary = prepare_workdir(args.workdir)
        try:
            scale = benchmark(args, workdir)
        finally:
            if temporary:
                shutil.rmtree(workdir, ignore_errors=True)
        saved = args.json or (args.cache or cache_root()) / "last-scale.json"
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(scale.to_json(), encoding="utf-8")
        say(f"figures saved to {saved} (python -m benchmarks.scale --from-json {saved} writes the section again)")
    update_markdown(args.out, SCALE_KEY, render_scale(scale))
    print_scale(scale, args.out)
    return 1 if scale.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

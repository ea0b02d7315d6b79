"""The benchmark's results: the machine and code version measured, one Markdown section per corpus size in
BENCHMARKS.md (``make bench``) and one for the scaling run (``make bench-scale``, benchmarks/scale_report.py), other
sections kept; the stage breakdown table; the summary printed at the end of a run."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.figures import NAIVE_RATIO, NOOP_BEYOND_FLOOR, RAW_RATIO, load_note, ratio
from benchmarks.stages import ROWS

ROOT = Path(__file__).resolve().parents[1]

INTRO = """\
# Benchmarks

Speed of the nightly ingestion flow (`flows.nightly.nightly_ingestion`) on a synthetic corpus of
budget workbooks (`samples.generate_corpus`, seed 7: SYNTHETIC data, the five agency layouts
round-robin), against two baselines measured in the same run:

* **raw limit**: each workbook read with fastexcel straight to Arrow and inserted into a fresh
  DuckDB file, one file after another on one core, no validation.
* **naive**: `pandas.read_excel(engine="openpyxl")` then `executemany` INSERT into DuckDB.

Targets (issue 15), all measured in one run on this 2-core machine: raw / flow >= 1.0 at 1M lines;
naive / flow >= 100 at 1M lines; peak RSS <= 1 GiB at 5M lines; the incremental night (one changed
100k-line file on a 5M-line warehouse) <= 1.5x the time of loading the same file into an empty
warehouse; a no-op night <= 0.5 s beyond Prefect's floor; flow time exponent <= 1.05 from 100k to 5M
lines. A missed target says by how much: the gap to the target and how many times off it is.

How each figure is measured:

* **Flow time** is the whole `run_nightly` call (what `dcf run` runs) once Prefect is up: the
  benchmark starts Prefect's local server once, as `dcf run` would (flows/prefect_local.py), and
  runs every night on it; that start is timed ("Prefect start") and excluded. Imports are excluded.
* **Prefect floor**: a flow that does nothing, on the same server; Prefect's own cost per flow run.
* **No-op night**: the flow again on the unchanged inbox, started once the published file is 3 s old
  (as on any real next night, hours after a publish: a night trusts what it remembers of the file,
  its version number, only once the file is older than that; the wait is in no figure); the figure
  judged is its time minus the Prefect floor (in the scaling run: at the size where it is worst).
* **Where the time goes**: the flow's stages (read, contracts, normalise, load, publish, Prefect)
  timed by `benchmarks/stages.py`, which wraps the functions doing them with a clock for that run
  (flows/ is not changed). The wall-clock stages add up to the flow time; the per-file work runs on
  Prefect's thread pool and is split into thread-seconds summed over its threads.
* **Peak RSS** is a process's high-water mark (`VmHWM`, i.e. `ru_maxrss` without what a child
  inherits); the Prefect server is a separate process and is not included. In the scaling run each
  size runs in its own child process, so each size has its own peak.
* **Incremental night** (scaling run): the warehouse holding an N-line corpus, then one 100k-line
  workbook replaced by new content under the same name; compared with the same file loaded into an
  empty warehouse, in the same child process.
* **Publish against the warehouse's size** (scaling run): the publish (and the staging copy) of the
  first load at each size, and of the incremental night, which copies and republishes a warehouse
  of that size to change one file.
* **Scaling exponent**: least-squares slope of log(flow time) against log(lines) over the sizes
  run, each size's flow into an empty warehouse; the slopes between neighbouring sizes are shown too
  (fixed costs per night flatten the curve at the small end).
* **Corpus**: generated once per (lines, files, seed, generator version) into
  `${DCF_BENCH_CACHE:-~/.cache/dcf-bench}/lines-N-files-F-seed-S-gen-V/` and reused; generation time
  is reported but is part of no ratio. Each run reads hard links to the cached files.

Reproduce:

* `make bench` (100,000 lines in 10 workbooks; a few minutes, most of them the naive baseline) or
  `make bench LINES=1000000` (naive timed on 100,000 lines and extrapolated), i.e.
  `.venv/bin/python -m benchmarks.run --lines N --files F`: the section of that size below, with
  the flow, the no-op night, the baselines, the stage breakdown and peak RSS.
* `make bench-scale` (100k, 300k, 1M, 2M and 5M lines), i.e. `.venv/bin/python -m benchmarks.scale
  --sizes 100000,300000,1000000,2000000,5000000`: the "Scaling" section, every issue-15 target
  judged from that one run. Workbooks hold at most 100,000 lines and a corpus has at least 10 (100k
  and 300k lines: 10 smaller workbooks; 5M lines: 50 of 100,000); 1M and 2M lines are the first 10
  and 20 workbooks of the 5M corpus (hard links; byte-identical to generating them). The naive
  baseline is timed once, on 20,000 lines right after the 1M size, and extrapolated per line to
  every size. `SIZES=...`
  runs other sizes; the section then says which targets were judged at another size than theirs.
  The first run generates the corpora (5.4M lines: about 7 minutes on an idle 2-core machine, much
  longer on a busy one); the section gives the run's own duration.

* `python -m benchmarks.store_cost [--row-groups 122880,65536] [--per-column]`: a diagnostic, part of no target.
  It takes one real normalised 100k-line batch and reports the CPU of storing it as the nightly writer does
  (INSERT, then COMMIT, where DuckDB compresses and writes the rows), on 1 and 2 DuckDB threads, per row group
  size, and per column. On 2026-12-03 (2-core AMD EPYC), per 1M rows on one thread:
  - INSERT 0.59-0.65 and COMMIT 0.78-0.84 CPU-s in row groups of 65,536 rows, the writer's (docs/adr/0016);
  - INSERT 0.55-0.59 and COMMIT 1.27 CPU-s in DuckDB's default of 122,880, where each commit rewrites the last
    row group with the rows of the files before;
  - two threads did not help;
  - each column costs 0.04-0.06 CPU-s per 1M rows for numbers and dates, and 0.09-0.20 for text.

Each run replaces only its own section and says the machine's load average: the machine may be
shared with other work, which the section then says.
"""


def mib(kib: int | float | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:,.0f} MiB"


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
        "cores": os.cpu_count() or 1,
        "cpu": cpu,
        "ram_gib": psutil.virtual_memory().total / 2**30,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_start": os.getloadavg()[0],
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


def run_line(when: str, m: dict) -> str:
    """The "Run ..." paragraph: date, code, machine, versions, load average."""
    return (
        f"Run {when}, code at git {m['code']}, on {m['cores']} cores ({m['cpu']}), {m['ram_gib']:.1f} GiB RAM, "
        f"{m['os']}; Python {m['python']}, DuckDB {m['duckdb']}, fastexcel {m['fastexcel']}, Prefect {m['prefect']}, "
        f"pandas {m['pandas']}, openpyxl {m['openpyxl']}.\n\n"
        f"Machine: {load_note(m['load_start'], m.get('load_end', os.getloadavg()[0]), m['cores'])}."
    )


# --------------------------------------------------------------------------- stage breakdown


def stage_table(columns: list[tuple[str, dict[str, Any] | None]], share_of: int = 0) -> list[str]:
    """Markdown rows of the stage breakdown, one column per run (the flow and the no-op night, or one per size),
    with each wall-clock row's share of column ``share_of``'s flow time."""
    head = " | ".join(name for name, _ in columns)
    base_name, base = columns[share_of]
    lines = [f"| stage | {head} | share of {base_name} |", "|---|" + "---:|" * (len(columns) + 1)]
    for key, label, kind in ROWS:
        cells = []
        for _, fig in columns:
            value = None if fig is None else fig.get(key)
            cells.append("" if value is None else f"{value:.2f}" + (" thread-s" if kind == "thread" else ""))
        share = "" if base is None or kind == "thread" or not base.get("flow") else f"{base[key] / base['flow']:.1%}"
        shown = label if kind == "wall" else f"&nbsp;&nbsp;&nbsp;{label}"
        lines.append(f"| {shown} | {' | '.join(cells)} | {share} |")
    totals = " | ".join("" if fig is None else f"**{fig['flow']:.2f}**" for _, fig in columns)
    lines.append(f"| **flow time (the unindented rows add up to it)** | {totals} | 100% |")
    if base is not None and base.get("files"):
        lines += [
            "",
            f"Indented rows: parts of the row above (seconds), or, marked thread-s, the per-file work summed over "
            f"the threads that ran it ({base_name}: {base['files']} files on {base['threads']} thread(s)).",
        ]
    return lines


# --------------------------------------------------------------------------- one corpus size (make bench)


@dataclass
class Results:
    lines: int
    files: int
    corpus_bytes: int
    data_rows: int
    command: str
    corpus_note: str
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
    stages: dict | None = None
    noop_stages: dict | None = None
    problems: list[str] = field(default_factory=list)
    machine: dict = field(default_factory=dict)
    when: str = field(default_factory=lambda: datetime.now().strftime("%Y-%m-%d %H:%M"))

    @property
    def raw_ratio(self) -> float:
        return self.raw_s / self.flow_s

    @property
    def naive_ratio(self) -> float | None:
        return ratio(self.naive_s, self.flow_s)

    @property
    def noop_beyond_floor(self) -> float:
        return self.noop_s - self.prefect_floor_s

    @property
    def extrapolated(self) -> bool:
        return self.naive_lines is not None and self.naive_lines < self.lines

    @property
    def key(self) -> str:
        return f"lines={self.lines} files={self.files}"


def _rate(lines: int, seconds: float | None) -> str:
    return "" if not seconds else f"{lines / seconds:,.0f}"


def _naive_note(r: Results) -> str:
    if r.naive_s is None:
        return "skipped (--skip-naive)"
    if r.extrapolated:
        return f"EXTRAPOLATED linearly per line from {r.naive_lines:,} lines timed in {r.naive_measured_s:.1f} s"
    return "measured on the whole corpus"


def render_section(r: Results) -> str:
    t = r.flow_totals
    naive_ratio = r.naive_ratio
    rows = [
        (
            "Flow: `nightly_ingestion` (once Prefect is up)",
            r.flow_s,
            r.lines,
            f"{t.get('rows_read', 0):,} read = {t.get('rows_loaded', 0):,} loaded + "
            f"{t.get('rows_quarantined', 0):,} quarantined + {t.get('rows_skipped', 0):,} skipped",
        ),
        ("No-op night (inbox unchanged)", r.noop_s, None, f"{r.noop_beyond_floor:.2f} s beyond Prefect's floor"),
        ("Raw limit: fastexcel -> Arrow -> DuckDB, 1 core", r.raw_s, r.lines, "no validation"),
        ("Naive: pandas/openpyxl -> `executemany`", r.naive_s, r.lines, _naive_note(r)),
        ("Imports (`flows.nightly`: pandas, pandera, Prefect ...)", r.import_s, None, "excluded from the flow time"),
        ("Prefect start (local server + warm-up flow)", r.prefect_start_s, None, "excluded from the flow time"),
        (
            "Prefect floor: a flow that does nothing",
            r.prefect_floor_s,
            None,
            "Prefect's own cost per flow run, included in the flow and no-op times",
        ),
        ("Corpus generation", r.generate_s, r.lines, f"not part of any ratio; {r.corpus_note}"),
    ]
    naive_cell = "n/a" if naive_ratio is None else f"{naive_ratio:.1f}"
    lines = [
        f"<!-- bench:begin {r.key} -->",
        f"## {r.lines:,} lines in {r.files} workbooks",
        "",
        run_line(r.when, r.machine),
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
        f"| figure | value | target | result at {r.lines:,} lines (the ratio targets are set at 1M lines) |",
        "|---|---:|---:|---|",
        f"| raw / flow | {r.raw_ratio:.2f} | {RAW_RATIO.wanted} | {RAW_RATIO.verdict(r.raw_ratio)} |",
        f"| naive / flow | {naive_cell} | {NAIVE_RATIO.wanted} | {NAIVE_RATIO.verdict(naive_ratio)}"
        f"{' (naive extrapolated)' if r.extrapolated else ''} |",
        f"| no-op night beyond Prefect's floor | {r.noop_beyond_floor:.2f} s | {NOOP_BEYOND_FLOOR.wanted} | "
        f"{NOOP_BEYOND_FLOOR.verdict(r.noop_beyond_floor)} |",
        "",
        "Where the time goes (seconds):",
        "",
        *stage_table([("flow", r.stages), ("no-op night", r.noop_stages)]),
        "",
        f"Peak RSS: {mib(r.rss_after_flow_kib)} for the benchmark process after the flow step "
        f"({mib(r.rss_before_flow_kib)} before it, after Prefect's start)"
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


# --------------------------------------------------------------------------- BENCHMARKS.md

SECTION_RE = re.compile(r"<!-- bench:begin (.+?) -->.*?<!-- bench:end -->\n?", re.S)
SIZE_KEY_RE = re.compile(r"^lines=(\d+) files=(\d+)$")


def section_order(key: str) -> tuple:
    """Corpus sizes first, smallest first, then the scaling run (and any other section, by name)."""
    m = SIZE_KEY_RE.match(key)
    return (0, int(m[1]), int(m[2]), "") if m else (1, 0, 0, key)


def update_markdown(path: Path, key: str, section: str) -> None:
    """Intro + every section; this run's section (``key``, its begin marker) replaces the one of the same key."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    sections = {m[1]: m[0].rstrip("\n") + "\n" for m in SECTION_RE.finditer(text)}
    sections[key] = section
    body = "\n".join(sections[k] for k in sorted(sections, key=section_order))
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
    print(f"corpus        {r.generate_s:8.2f} s   (not in any ratio; {r.corpus_note})")
    print(f"imports       {r.import_s:8.2f} s   (excluded)")
    print(f"prefect start {r.prefect_start_s:8.2f} s   (excluded)")
    print(f"prefect floor {r.prefect_floor_s:8.2f} s   (a flow that does nothing; included in flow and no-op)")
    print(f"flow          {r.flow_s:8.2f} s   {r.lines / r.flow_s:,.0f} lines/s   totals {r.flow_totals}")
    print(
        f"no-op         {r.noop_s:8.2f} s   {r.noop_beyond_floor:.2f} s beyond the floor: "
        f"{NOOP_BEYOND_FLOOR.verdict(r.noop_beyond_floor)}"
    )
    print(f"raw limit     {r.raw_s:8.2f} s   {r.lines / r.raw_s:,.0f} lines/s")
    print(f"naive         {naive}")
    print(f"raw / flow    {r.raw_ratio:8.2f}     target {RAW_RATIO.wanted}: {RAW_RATIO.verdict(r.raw_ratio)}")
    print(f"naive / flow  {naive_ratio:>8}     target {NAIVE_RATIO.wanted}: {NAIVE_RATIO.verdict(r.naive_ratio)}")
    if r.stages:
        print("stages        " + ", ".join(f"{k} {r.stages[k]:.2f}" for k, _, kind in ROWS if kind != "part"))
    child = f", flow alone (child) {mib(r.child['peak_rss_kib'])}" if r.child else ""
    print(f"peak RSS      {mib(r.rss_after_flow_kib)} after the flow step{child}")
    print(f"machine       {load_note(r.machine['load_start'], r.machine['load_end'], r.machine['cores'])}")
    for problem in r.problems:
        print(f"PROBLEM: {problem}")
    print(f"written to {out}")

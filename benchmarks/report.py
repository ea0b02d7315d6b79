"""The benchmark's results: the targets, the machine and code version measured, one Markdown section per corpus
size in BENCHMARKS.md (other sizes' sections are kept), and the summary printed at the end of a run."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAW_TARGET = 1.0  # raw_seconds / flow_seconds
NAIVE_TARGET = 100.0  # naive_seconds / flow_seconds
NOOP_TARGET_SECONDS = 2.0

INTRO = """\
# Benchmarks

Speed of the nightly ingestion flow (`flows.nightly.nightly_ingestion`) on a synthetic corpus of
budget workbooks (`samples.generate_corpus`, seed 7: SYNTHETIC data, the five agency layouts
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


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:,.0f} MiB"


def verdict(value: float | None, ok: bool) -> str:
    return "n/a" if value is None else ("PASS" if ok else "MISS")


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

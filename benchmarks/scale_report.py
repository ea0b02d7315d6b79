"""The scaling run's results (benchmarks/scale.py): the "Scaling" section of BENCHMARKS.md, with every issue-15
target judged from that one run, and the summary printed at its end."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.corpus import Origin
from benchmarks.figures import (
    EXPONENT,
    INCREMENTAL_RATIO,
    NAIVE_RATIO,
    NOOP_BEYOND_FLOOR,
    RAW_RATIO,
    RSS_5M,
    Target,
    fit_exponent,
    fit_slope,
    load_note,
    ratio,
    seconds,
)
from benchmarks.report import mib, run_line, stage_table
from benchmarks.stages import ROWS

SCALE_KEY = "scale"
AT_1M, AT_5M, FROM_100K = 1_000_000, 5_000_000, 100_000


@dataclass
class Scale:
    sizes: list[dict]  # one per size, smallest first: the child's figures + lines, files, corpus_bytes, raw_s
    origins: list[Origin]  # the corpora, then the changed file
    file_lines: int
    min_files: int
    naive_s: float | None
    naive_lines: int | None
    naive_load: tuple[float, float] | None
    corpus_s: float
    total_s: float
    machine: dict
    command: str
    when: str = field(default_factory=lambda: datetime.now().strftime("%Y-%m-%d %H:%M"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Scale:
        data = json.loads(text)
        data["origins"] = [Origin(**{**o, "folder": Path(o["folder"])}) for o in data["origins"]]
        return cls(**data)

    @property
    def done(self) -> list[dict]:
        """The sizes whose child process reported figures."""
        return [s for s in self.sizes if "flow" in s]

    @property
    def problems(self) -> list[str]:
        return [p for s in self.sizes for p in s.get("problems", [])]

    def naive_for(self, lines: int) -> float | None:
        """The naive way's time for ``lines``, extrapolated linearly per line from what was timed."""
        return None if self.naive_s is None or not self.naive_lines else self.naive_s * lines / self.naive_lines

    def at(self, lines: int) -> tuple[dict | None, str]:
        """The size a target is set at, or the largest one run (with a note) when it was not run."""
        done = self.done
        exact = [s for s in done if s["lines"] == lines]
        if exact:
            return exact[0], ""
        if not done:
            return None, "no size ran"
        largest = done[-1]
        return largest, f" (at {largest['lines']:,} lines: {lines:,} was not run; indicative only)"

    def exponent(self, key: str = "flow") -> float | None:
        return fit_exponent([(s["lines"], s[key]["seconds"]) for s in self.done])

    def stage_exponent(self, stage: str) -> float | None:
        return fit_exponent([(s["lines"], s["flow"]["stages"][stage]) for s in self.done])


def _flow(s: dict) -> float:
    return s["flow"]["seconds"]


def _noop_beyond(s: dict) -> float:
    return s["noop"]["seconds"] - s["floor_s"]


def _incremental_ratio(s: dict) -> float | None:
    return ratio(s["incremental"]["seconds"], s["single"]["seconds"]) if "incremental" in s else None


def _target_row(target: Target, value: float | None, shown: str, note: str = "") -> str:
    return f"| {target.name} | {shown} | {target.wanted} | {target.verdict(value)}{note} |"


def targets(r: Scale) -> list[str]:
    """The issue-15 "done when" list, each judged from this run."""
    rows = ["| target | value | wanted | result |", "|---|---:|---:|---|"]
    s1, note1 = r.at(AT_1M)
    raw = ratio(s1.get("raw_s"), _flow(s1)) if s1 else None
    rows.append(_target_row(RAW_RATIO, raw, seconds(raw), note1))
    naive = ratio(r.naive_for(s1["lines"]), _flow(s1)) if s1 else None
    rows.append(
        _target_row(
            NAIVE_RATIO,
            naive,
            seconds(naive, 1),
            note1 + (f" (naive EXTRAPOLATED from {r.naive_lines:,} lines)" if naive is not None else ""),
        )
    )
    s5, note5 = r.at(AT_5M)
    rss = s5["rss_flow_kib"] / 1024 if s5 else None
    rows.append(_target_row(RSS_5M, rss, "n/a" if rss is None else f"{rss:,.0f} MiB", note5))
    with_incremental = [s for s in r.done if "incremental" in s]
    si = next((s for s in with_incremental if s["lines"] == AT_5M), with_incremental[-1] if with_incremental else None)
    inc = _incremental_ratio(si) if si else None
    inc_note = "" if si is None or si["lines"] == AT_5M else f" (at {si['lines']:,} lines; indicative only)"
    rows.append(_target_row(INCREMENTAL_RATIO, inc, seconds(inc), inc_note))
    worst = max(r.done, key=_noop_beyond, default=None)
    noop = _noop_beyond(worst) if worst else None
    rows.append(
        _target_row(
            NOOP_BEYOND_FLOOR,
            noop,
            "n/a" if noop is None else f"{noop:.2f} s",
            f" (the worst size: {worst['lines']:,} lines)" if worst else "",
        )
    )
    exp = r.exponent()
    lines = [s["lines"] for s in r.done]
    spans = bool(lines) and lines[0] <= FROM_100K and lines[-1] >= AT_5M
    span_note = "" if spans or not lines else f" (fitted over {lines[0]:,} to {lines[-1]:,} lines; indicative only)"
    rows.append(_target_row(EXPONENT, exp, "n/a" if exp is None else f"{exp:.3f}", span_note))
    return rows


#: short names of the breakdown's rows, for the notes under the targets
SHORT = {
    "prefect_outside": "Prefect (flow run start/end)",
    "reference": "reference tables",
    "discover": "discover",
    "per_file_wall": "per-file work (wall)",
    "read": "read",
    "contracts": "contracts",
    "normalise": "normalise",
    "quiet_check": "quiet-night check",
    "staging": "staging (copy + DDL)",
    "load": "load",
    "checks": "checks and refreshes",
    "publish": "publish",
    "prefect_rest": "Prefect and the rest",
}


def _largest(stages: dict, n: int = 3) -> str:
    walls = sorted((k for k, _, kind in ROWS if kind == "wall"), key=lambda k: -stages[k])[:n]
    return ", ".join(f"{SHORT.get(k, k)} {stages[k]:.2f} s" for k in walls)


def _per_file(stages: dict) -> str:
    return ", ".join(f"{SHORT[k]} {stages[k]:.1f}" for k in ("read", "normalise", "contracts")) + " thread-s"


def why_notes(r: Scale) -> list[str]:
    """For each target missed, what this run's figures say about where the time or memory goes (measured facts; the
    reasons behind them are for whoever changes the flow)."""
    notes: list[str] = []
    s1, _ = r.at(AT_1M)
    if s1 is not None:
        flow, st = _flow(s1), s1["flow"]["stages"]
        raw = ratio(s1.get("raw_s"), flow)
        naive_s = r.naive_for(s1["lines"])
        naive = ratio(naive_s, flow)
        where = f"its largest stages: {_largest(st)}; per-file work {_per_file(st)}"
        if raw is not None and not RAW_RATIO.met(raw):
            notes.append(
                f"raw / flow at {s1['lines']:,} lines: the flow took {flow:.1f} s against the raw limit's "
                f"{s1['raw_s']:.1f} s; {where}."
            )
        if naive_s is not None and naive is not None and not NAIVE_RATIO.met(naive):
            notes.append(
                f"naive / flow: the flow would have to take {naive_s / NAIVE_RATIO.limit:.1f} s "
                f"(it took {flow:.1f} s); {where}."
            )
    s5, _ = r.at(AT_5M)
    if s5 is not None and not RSS_5M.met(s5["rss_flow_kib"] / 1024):
        slope = fit_slope([(s["lines"] / 1e6, s["rss_flow_kib"] / 1024) for s in r.done])
        per_size = ", ".join(f"{s['lines']:,}: {mib(s['rss_flow_kib'])}" for s in r.done)
        notes.append(
            f"peak RSS grows by about {'n/a' if slope is None else f'{slope:,.0f}'} MiB per million lines "
            f"(least squares over the sizes: {per_size})."
        )
    incremental = [s for s in r.done if "incremental" in s]
    if incremental:
        si = next((s for s in incremental if s["lines"] == AT_5M), incremental[-1])
        value = _incremental_ratio(si)
        if value is not None and not INCREMENTAL_RATIO.met(value):
            inc, one = si["incremental"]["stages"], si["single"]["stages"]
            keys = sorted((k for k, _, kind in ROWS if kind == "wall"), key=lambda k: one[k] - inc[k])[:3]
            grew = ", ".join(f"{SHORT.get(k, k)} {one[k]:.2f} -> {inc[k]:.2f} s" for k in keys)
            notes.append(
                f"incremental night at {si['lines']:,} lines: {inc['flow'] - one['flow']:+.2f} s against the same "
                f"file into an empty warehouse; the stages that grew most: {grew}."
            )
    worst = max(r.done, key=_noop_beyond, default=None)
    if worst is not None and not NOOP_BEYOND_FLOOR.met(_noop_beyond(worst)):
        notes.append(
            f"no-op night at {worst['lines']:,} lines: {worst['noop']['seconds']:.2f} s against a Prefect floor of "
            f"{worst['floor_s']:.2f} s; its largest stages: {_largest(worst['noop']['stages'])}."
        )
    exp = r.exponent()
    if exp is not None and not EXPONENT.met(exp):
        notes.append(f"flow time exponent: between neighbouring sizes {local_exponents(r)}.")
    return [f"* {note}" for note in notes]


def size_table(r: Scale) -> list[str]:
    rows = [
        "| lines | workbooks | flow s | lines/s | peak RSS (flow, own process) | raw s | raw / flow | "
        "naive / flow (extrapolated) | Prefect floor s | no-op s | no-op beyond floor s | warehouse MiB | "
        "load average (1 min) at the child's start and end |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in r.done:
        flow = _flow(s)
        naive = ratio(r.naive_for(s["lines"]), flow)
        rows.append(
            f"| {s['lines']:,} | {s['files']} | {flow:.2f} | {s['lines'] / flow:,.0f} | {mib(s['rss_flow_kib'])} | "
            f"{seconds(s.get('raw_s'))} | {seconds(ratio(s.get('raw_s'), flow))} | {seconds(naive, 1)} | "
            f"{s['floor_s']:.2f} | {s['noop']['seconds']:.2f} | {_noop_beyond(s):.2f} | "
            f"{s['warehouse_bytes'] / 2**20:,.0f} | {s.get('load_start', 0):.1f} / {s.get('load_end', 0):.1f} |"
        )
    return rows


def local_exponents(r: Scale) -> str:
    done = r.done
    parts = []
    for a, b in zip(done, done[1:]):
        e = fit_exponent([(a["lines"], _flow(a)), (b["lines"], _flow(b))])
        parts.append(f"{a['lines']:,} -> {b['lines']:,}: {'n/a' if e is None else f'{e:.2f}'}")
    return "; ".join(parts)


def publish_table(r: Scale) -> list[str]:
    rows = [
        "| lines in the warehouse | warehouse MiB | first load: staging (new file + DDL) s | first load: publish s "
        "| of which publish_file s | incremental night: copy into staging s | incremental night: publish s "
        "| of which publish_file s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in r.done:
        st, inc = s["flow"]["stages"], s.get("incremental", {}).get("stages")
        rows.append(
            f"| {s['lines']:,} | {s['warehouse_bytes'] / 2**20:,.0f} | {st.get('staging_all', st['staging']):.2f} | "
            f"{st['publish']:.2f} | "
            f"{st['publish_file']:.2f} | "
            + " | ".join(
                seconds(inc.get(k + "_all", inc[k]) if k == "staging_copy" else inc[k]) if inc else "n/a"
                for k in ("staging_copy", "publish", "publish_file")
            )
            + " |"
        )
    return rows


def incremental_table(r: Scale) -> list[str]:
    rows = [
        "| lines in the warehouse | incremental night s | the same file into an empty warehouse s | ratio | result |",
        "|---:|---:|---:|---:|---|",
    ]
    for s in r.done:
        if "incremental" not in s:
            continue
        value = _incremental_ratio(s)
        rows.append(
            f"| {s['lines']:,} | {s['incremental']['seconds']:.2f} | {s['single']['seconds']:.2f} | "
            f"{seconds(value)} | {INCREMENTAL_RATIO.verdict(value)} |"
        )
    return rows


def corpus_table(r: Scale) -> list[str]:
    rows = ["| corpus | generation s | |", "|---|---:|---|"]
    for origin in r.origins:
        rows.append(f"| `{origin.key}` | {origin.generate_s:,.1f} | {origin.note} |")
    return rows


def render_scale(r: Scale) -> str:
    done = r.done
    first, last = (done[0]["lines"], done[-1]["lines"]) if done else (0, 0)
    exp = r.exponent()
    largest_inc = next((s for s in reversed(done) if "incremental" in s), None)
    stage_cols: list[tuple[str, dict[str, Any] | None]] = [(f"{s['lines']:,}", s["flow"]["stages"]) for s in done]
    pub_exp, file_exp = r.stage_exponent("publish"), r.stage_exponent("publish_file")
    lines = [
        f"<!-- bench:begin {SCALE_KEY} -->",
        f"## Scaling: {first:,} to {last:,} lines (`make bench-scale`)",
        "",
        run_line(r.when, r.machine),
        "",
        f"The whole run took {r.total_s / 60:.1f} min, of which {r.corpus_s / 60:.1f} min finding or generating the "
        "corpora (part of no figure). Workbooks of at most "
        f"{r.file_lines:,} lines, at least {r.min_files} per corpus; each size's flows ran in a child process of their "
        "own.",
        "",
        "### Issue 15 targets, from this run",
        "",
        *targets(r),
        "",
        *(["Where the missed targets stand, from this run's figures:", "", *why, ""] if (why := why_notes(r)) else []),
        "### Per size",
        "",
        *size_table(r),
        "",
        f"Naive: {'skipped' if r.naive_s is None else f'timed on {r.naive_lines:,} lines in {r.naive_s:.1f} s'}"
        + (
            ""
            if r.naive_s is None or r.naive_load is None
            else f" (load average {r.naive_load[0]:.1f} / {r.naive_load[1]:.1f}), EXTRAPOLATED linearly per line to "
            "each size"
        )
        + ". Raw limit measured at each size in the parent process; the flow, the Prefect floor and the no-op night "
        "in the size's child process.",
        "",
        f"Scaling exponent of the flow time over {len(done)} sizes: "
        f"{'n/a' if exp is None else f'{exp:.3f}'} ({EXPONENT.verdict(exp)}); between neighbouring sizes: "
        f"{local_exponents(r)}.",
        "",
        "### Publish and the staging copy against the warehouse's size",
        "",
        *publish_table(r),
        "",
        f"Exponent of the first load's publish against the lines in the warehouse: "
        f"{'n/a' if pub_exp is None else f'{pub_exp:.2f}'} (of its copy part, publish_file: "
        f"{'n/a' if file_exp is None else f'{file_exp:.2f}'}). A first load has nothing to copy into staging (a new "
        "file and its DDL); the incremental night copies the published warehouse into staging and publishes a "
        "warehouse of the same size with one file replaced. " + _copies(r.machine.get("clones")),
        "",
        f"### Incremental night: one changed {r.file_lines:,}-line workbook",
        "",
        *(incremental_table(r) if largest_inc else ["No size had workbooks of that size: not measured."]),
        "",
        *(
            [
                f"Where the time goes at {largest_inc['lines']:,} lines (seconds):",
                "",
                *stage_table(
                    [
                        ("incremental night", largest_inc["incremental"]["stages"]),
                        ("same file, empty warehouse", largest_inc["single"]["stages"]),
                    ]
                ),
                "",
            ]
            if largest_inc
            else []
        ),
        "### Where the flow's time goes, per size (seconds)",
        "",
        *stage_table(stage_cols, share_of=len(stage_cols) - 1),
        "",
        "### Corpora",
        "",
        *corpus_table(r),
        "",
        *([f"**Problems:** {'; '.join(r.problems)}", ""] if r.problems else []),
        f"Command: `{r.command}`",
        "<!-- bench:end -->",
    ]
    return "\n".join(lines) + "\n"


def print_scale(r: Scale, out: Path) -> None:
    print(f"\n== scaling benchmark: {len(r.done)} sizes, {r.total_s / 60:.1f} min ==")
    for s in r.done:
        print(
            f"{s['lines']:>10,} lines  flow {_flow(s):8.2f} s  RSS {mib(s['rss_flow_kib']):>10}  "
            f"raw/flow {seconds(ratio(s.get('raw_s'), _flow(s))):>6}  no-op-floor {_noop_beyond(s):5.2f} s"
            + (f"  incremental/single {seconds(_incremental_ratio(s))}" if "incremental" in s else "")
        )
    for row in targets(r)[2:]:
        print(row)
    print(f"machine: {load_note(r.machine['load_start'], r.machine['load_end'], r.machine['cores'])}")
    for problem in r.problems:
        print(f"PROBLEM: {problem}")
    print(f"written to {out}")


def _copies(clones: bool | None) -> str:
    """Which way the run's warehouse files were copied (warehouse/filecopy.py): it decides how the copies grow."""
    if clones is None:
        return "Whether the warehouses' folder could clone files was not recorded in this run."
    if clones:
        return (
            "The warehouses' folder can clone files (warehouse/filecopy.py), so the staging and published copies were "
            "clones, whose cost does not grow with the warehouse."
        )
    return (
        "The warehouses' folder cannot clone files (warehouse/filecopy.py: a file system without reflinks, such as "
        "ext4), so the staging and published copies were byte copies, which grow with the warehouse; on XFS or "
        "btrfs they are clones (docs/adr/0012-publish-what-changed.md)."
    )

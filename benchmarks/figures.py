"""The benchmark's pure arithmetic: the targets of issue 15 and their verdicts (PASS, or MISS and by how much), the
scaling exponent (least-squares slope of log time against log lines) and the load-average note. No I/O, no heavy
imports: tests/unit/test_bench_parts.py checks them with exact values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: above this 1-minute load average per core the machine counts as shared, and the report says so
BUSY_LOAD_PER_CORE = 0.5


@dataclass(frozen=True)
class Target:
    """One target: ``value >= limit`` when ``higher`` (a ratio to reach), else ``value <= limit`` (a cost to stay
    under). ``unit`` is appended to the figures in a verdict (" s", " MiB", "" for a ratio)."""

    name: str
    limit: float
    higher: bool
    unit: str = ""

    @property
    def wanted(self) -> str:
        return f"{'>=' if self.higher else '<='} {self.limit:g}{self.unit}"

    def met(self, value: float) -> bool:
        return value >= self.limit if self.higher else value <= self.limit

    def verdict(self, value: float | None, digits: int = 2) -> str:
        """ "PASS", "n/a" (not measured), or "MISS by <gap> (<factor>x)": the gap to the limit in the target's unit and
        how many times too slow, big or small the figure is (limit / value for a ratio to reach, value / limit for a
        cost)."""
        if value is None or math.isnan(value):
            return "n/a"
        if self.met(value):
            return "PASS"
        gap = abs(self.limit - value)
        if self.higher:
            factor = f"{self.limit / value:.{digits}f}x short" if value > 0 else "no figure above 0"
        else:
            factor = f"{value / self.limit:.{digits}f}x the limit" if self.limit > 0 else "limit is 0"
        return f"MISS by {gap:,.{digits}f}{self.unit} ({factor})"


RAW_RATIO = Target("raw / flow at 1M lines", 1.0, higher=True)
NAIVE_RATIO = Target("naive / flow at 1M lines", 100.0, higher=True)
RSS_5M = Target("peak RSS of the flow at 5M lines", 1024.0, higher=False, unit=" MiB")
INCREMENTAL_RATIO = Target("incremental night / the same file into an empty warehouse", 1.5, higher=False)
NOOP_BEYOND_FLOOR = Target("no-op night beyond Prefect's floor", 0.5, higher=False, unit=" s")
EXPONENT = Target("flow time exponent, 100k to 5M lines", 1.05, higher=False)


def fit_exponent(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of log(y) against log(x) over ``(x, y)`` points: y grows as x to this power. None with
    fewer than two distinct x, or a point that is not positive."""
    pts = [(x, y) for x, y in points if x > 0 and y > 0]
    if len(pts) != len(points) or len({x for x, _ in pts}) < 2:
        return None
    xs = [math.log(x) for x, _ in pts]
    ys = [math.log(y) for _, y in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return sxy / sxx


def fit_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of y against x (y grows by this much per unit of x); None with fewer than two
    distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def load_note(start: float, end: float, cores: int) -> str:
    """The load averages at the start and end of a run, and whether the machine was shared: above
    ``BUSY_LOAD_PER_CORE`` per core at the start, or at the end beyond what the benchmark itself adds (it keeps
    every core busy, so up to ``cores`` of the end's load is its own: a quiet 2-core run ends at 1.4-2.0)."""
    said = f"load average (1 min) {start:.2f} at the start, {end:.2f} at the end, on {cores} cores"
    if start > BUSY_LOAD_PER_CORE * cores or end > cores + BUSY_LOAD_PER_CORE * cores:
        return (
            f"{said}: the machine was SHARED with other work during this run (above {BUSY_LOAD_PER_CORE:g} per "
            "core), so the times are slower and noisier than on an idle machine; ratios measured in the same run "
            "are less affected than absolute times"
        )
    return f"{said} (quiet)"


def files_for(lines: int, file_lines: int, min_files: int) -> int:
    """Workbooks in a scaling corpus of ``lines``: files of at most ``file_lines`` lines, never fewer than
    ``min_files`` (so every size keeps the flow's worker threads busy)."""
    return max(min_files, -(-lines // file_lines))


def seconds(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b

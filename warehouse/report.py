"""The HTML report: one self-contained file from the published warehouse's marts (warehouse/sql/004_marts.sql).

Self-contained means no network at all: no CDN, fonts, scripts or images from elsewhere (a Content-Security-Policy
in the page forbids them). Each chart's data sits in the page as JSON (``<script type="application/json">``) and a
small inline script draws it into SVG; when a chart has drawn, its container gets ``data-drawn="<marks>"``. A table
under every chart holds the same numbers (for screen readers, for print, and without JavaScript).

The warehouse is opened read-only (``warehouse.store.read_only``), so a load running at the same time never blocks
the report, nor the report the load. SQL over the marts does the aggregation; Python only escapes and lays out.
Stages (allocated, committed, obligated, disbursed) are steps of the same money: a chart shows one stage, or the
stages side by side, never a sum of stages.

This module writes the file (``write_report``). What the report shows comes from warehouse/report_data.py (the
queries), the page from warehouse/report_html.py (its pieces in report_blocks.py, its styles and chart script in
report_assets.py); their public names are re-exported here.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from warehouse.report_assets import CSS, SCRIPT  # noqa: F401  (re-exported)
from warehouse.report_data import (  # noqa: F401  (re-exported: the flows, the CLI and the tests import them from here)
    LAST_YEARS,
    REQUIRED_VIEWS,
    STAGE_PREFERENCE,
    STAGES,
    TOP_CATEGORIES,
    TOP_PARTNERS,
    TOP_RULES,
    ReportError,
    gather,
)
from warehouse.report_html import STAGE_COLORS, YEAR_COLORS, render  # noqa: F401  (re-exported)
from warehouse.store import read_only


@dataclass(frozen=True)
class ReportInfo:
    path: Path
    load_id: str
    stage: str
    bytes: int
    charts: dict[str, int] = field(default_factory=dict)  # chart id -> rows of data embedded


def default_report_path(warehouse: Path, today: date | None = None) -> Path:
    """``reports/report-<date>.html`` beside the warehouse (data/reports/ for the default data/warehouse.duckdb)."""
    return Path(warehouse).parent / "reports" / f"report-{(today or date.today()).isoformat()}.html"


def _write_atomically(path: Path, text: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)


def copy_atomically(source: Path, dest: Path) -> None:
    """Replace ``dest`` with a copy of ``source`` in one rename (a reader never sees half a file)."""
    _write_atomically(dest, source.read_text(encoding="utf-8"))


def write_report(warehouse: Path, out: Path, stage: str | None = None) -> ReportInfo:
    """Read the published warehouse (read-only) and write the report to ``out``, replacing it in one rename."""
    warehouse, out = Path(warehouse), Path(out)
    if not warehouse.is_file():
        raise ReportError(f"no warehouse at {warehouse}; run 'dcf run' (or 'make demo') first")
    try:
        with read_only(warehouse) as con:
            data = gather(con, stage)
    except duckdb.Error as exc:  # not a DuckDB file, or one this DuckDB cannot read; name the file the user gave
        detail = re.sub(
            r"[^\s\"]*dcf-snapshot-[^\s\"]*?/" + re.escape(warehouse.name), str(warehouse), str(exc).splitlines()[0]
        )
        raise ReportError(f"cannot read {warehouse}: {detail}") from None
    try:
        size = _write_atomically(out, render(data, warehouse))
    except OSError as exc:
        raise ReportError(f"cannot write {out}: {exc.strerror or exc}") from None
    charts = {k: len(data[k]) for k in ("partners", "categories", "execution", "quality", "rules")}
    return ReportInfo(out.resolve(), str(data["load"]["load_id"]), data["stage"], size, charts)

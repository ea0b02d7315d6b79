"""Publish the HTML report of the published warehouse (the ``report`` deployment runs it after the nightly load):
a dated file plus a stable ``latest.html`` beside it, and a Prefect markdown artifact naming both.

The warehouse is read read-only, so the report never waits for (nor blocks) a load that runs at the same time.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from schemas.settings import Settings
from warehouse.report import ReportInfo, copy_atomically, default_report_path, write_report

LATEST = "latest.html"


def _markdown(info: ReportInfo, latest: Path | None, warehouse: Path) -> str:
    lines = [
        f"# Warehouse report for load {info.load_id}",
        "",
        f"Written to [{info.path.name}]({info.path.as_uri()}): `{info.path}` ({info.bytes / 1e3:.0f} kB)"
        + (f"; also as [{latest.name}]({latest.as_uri()}): `{latest}`." if latest else "."),
        "",
        f"From `{warehouse}`, opened read-only. Partner and category charts show the **{info.stage}** stage. The file "
        "is self-contained (no network needed): open it in any browser, or print it.",
        "",
        "| chart | rows of data |",
        "|---|---:|",
        *[f"| {name} | {rows} |" for name, rows in info.charts.items()],
    ]
    return "\n".join(lines)


@flow(name="publish-report", log_prints=True, timeout_seconds=900)
def publish_report(
    warehouse: str | None = None, out: str | None = None, stage: str | None = None, latest: bool = True
) -> ReportInfo:
    """Write the HTML report of the published warehouse.

    ``warehouse`` defaults to DCF_WAREHOUSE or data/warehouse.duckdb; ``out`` to reports/report-<today>.html beside
    the warehouse (data/reports/ by default). With ``latest``, the same report is also written as latest.html in
    the same folder (a stable address to bookmark). ``stage`` picks the stage of the partner and category charts
    (default: the stage most agencies report).
    """
    settings = Settings.resolve(warehouse=warehouse)
    target = Path(out).expanduser().resolve() if out else default_report_path(settings.warehouse, date.today())
    info = write_report(settings.warehouse, target, stage=stage)
    latest_path = None
    if latest and info.path.name != LATEST:
        latest_path = info.path.with_name(LATEST)
        copy_atomically(info.path, latest_path)
    get_run_logger().info(
        "report of load %s written to %s%s", info.load_id, info.path, f" and {latest_path}" if latest_path else ""
    )
    create_markdown_artifact(
        key="warehouse-report",
        markdown=_markdown(info, latest_path, settings.warehouse),
        description=f"HTML report of load {info.load_id}: {info.path}",
    )
    return info


if __name__ == "__main__":
    from flows.nightly import run_locally

    run_locally(publish_report)

"""``dcf``: the command line over the nightly flow and the warehouse.

Exit codes: 0 ok; 1 the run failed and nothing was published; 2 usage or configuration error;
3 another ingestion holds the warehouse; 4 the run published but some files failed (see ``dcf failures``);
130 interrupted (Ctrl-C), nothing published.
Commands that only read the warehouse (status, failures) never start Prefect. Commands that list things take
``--format table|csv|json`` (dcf/output.py); filters name the valid values when given an unknown one (exit 2).

This module is the typer app: it registers the commands of ``dcf/commands/`` (ingest: run, rerate, serve; status:
status, failures, unmapped; repair: replay, rollback; query: sql, report; sample) in the order ``dcf --help`` lists
them. The commands import Prefect, pandas and DuckDB inside their bodies, so ``dcf --help`` stays quick.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from dcf.commands import ingest, query, repair, sample, status
from dcf.commands.common import EXIT_BUSY, EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, err

app = typer.Typer(
    name="dcf",
    help="Defense-cooperation funding warehouse: ingest agency spreadsheets, inspect loads and failures.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
#: the installed distribution whose version ``dcf --version`` prints (pyproject.toml, [project] name)
DISTRIBUTION = "defense-coop-funding"


def _version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version(DISTRIBUTION)
    except PackageNotFoundError:
        number = f"unknown ({DISTRIBUTION} is not installed: pip install -e .)"
    sys.stdout.write(f"dcf {number}\n")
    raise typer.Exit(EXIT_OK)


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version of dcf and exit."
    ),
) -> None:
    """Defense-cooperation funding warehouse: ingest agency spreadsheets, inspect loads and failures."""


app.command(epilog="Example: dcf run --inbox data/inbox --warehouse data/warehouse.duckdb")(ingest.run)
app.command(epilog="Example: dcf rerate --fiscal-year 2023 --fiscal-year 2024")(ingest.rerate)
app.command(epilog="Examples: dcf status --warehouse data/warehouse.duckdb | dcf status --format json")(status.status)
app.command(
    epilog="Examples: dcf failures | dcf failures --agency MOD --rule country_unknown | dcf failures --summary | dcf failures --format csv | dcf failures --export out/"
)(status.failures)
app.command(epilog="Example: dcf unmapped, add the mapping to reference/, then: dcf replay")(repair.replay)
app.command(epilog="Examples: dcf unmapped | dcf unmapped --kind country | dcf unmapped --format csv")(status.unmapped)
app.command(
    epilog="Examples: dcf rollback --list | dcf rollback --list --format json | dcf rollback | dcf rollback --to 41"
)(repair.rollback)
app.command(
    epilog="""Examples: dcf sql "SELECT agency_code, count(*) FROM fact_funding_line GROUP BY 1" | dcf sql --format csv "FROM mart_data_quality" | dcf sql "SELECT 1; SELECT 2" """
)(query.sql)
app.command(epilog="Example: dcf report --out data/reports/report.html --warehouse data/warehouse.duckdb")(query.report)
app.command(epilog="Examples: dcf serve | dcf serve --cron '30 1 * * *' --timezone Asia/Riyadh")(ingest.serve)
app.command(epilog="Example: dcf sample --inbox data/inbox --seed 42")(sample.sample)


def main() -> None:
    """Console entry point: a warehouse fault no command caught itself is still one 'error:' line, never a traceback."""
    from warehouse.errors import WarehouseBusy, WarehouseError, WarehouseKeyProblem

    try:
        app()
    except WarehouseError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        if isinstance(exc, WarehouseKeyProblem):  # the key setting: a configuration error
            sys.exit(EXIT_USAGE)
        sys.exit(EXIT_BUSY if isinstance(exc, WarehouseBusy) else EXIT_RUN_FAILED)


if __name__ == "__main__":  # pragma: no cover
    main()

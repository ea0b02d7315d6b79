"""The commands that read the published warehouse for analysts: ``dcf sql`` (sandboxed, read-only SQL) and
``dcf report`` (a self-contained HTML report)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from dcf.commands.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    FormatOpt,
    WarehouseOpt,
    choose,
    fail,
    out,
    reading,
    resolve_settings,
)
from dcf.output import FORMATS, Result, rich_table, screen, screen_text, write


def _sandbox(spill: str) -> dict[str, str | bool | int]:
    """DuckDB settings of ``dcf sql``, fixed at connect time: no file system, extension or other database is
    reachable (COPY, read_csv, read_text, ATTACH, INSTALL/LOAD fail), and no statement can change a setting back
    (lock_configuration). Spilling goes to a private folder removed afterwards, never beside the warehouse. One
    thread: a locked configuration cannot stop DuckDB's worker threads before the close, and a worker still holding
    a task of the last query can crash the process there (warehouse/connect.py quiesce, docs/adr/0015); three
    queries over a 1M-line warehouse took 0.13 s on one thread against 0.10 s on two."""
    return {"enable_external_access": False, "lock_configuration": True, "temp_directory": spill, "threads": 1}


def _query_error(exc: Exception, number: int, count: int) -> str:
    import duckdb

    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    where = f" (statement {number} of {count})" if count > 1 else ""
    refused = isinstance(exc, duckdb.PermissionException) or any(
        text in first
        for text in ("disabled by configuration", "configuration has been locked", "external_access", "external access")
    )
    if refused:  # DuckDB's message may quote a value from the data: printed literally
        return screen_text(
            f"query refused{where}: dcf sql reads the warehouse and nothing else (no files, extensions, other "
            f"databases or settings): {first}",
            keep="",
        )
    return screen_text(f"query failed{where}: {first}", keep="")


def sql(
    query: str = typer.Argument(
        ..., help="SQL to run, read-only, against the published warehouse (one or more statements)."
    ),
    warehouse: Path | None = WarehouseOpt,
    fmt: str = FormatOpt,
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many rows per table in table format."),
) -> None:
    """Run SQL against the published warehouse and print each statement's result: a readable table, CSV (result
    sets apart by an empty line) or JSON (an array of rows per result set, one per line).

    The warehouse is opened read-only with DuckDB's external access off and its settings locked: a query reads the
    warehouse and nothing else (no COPY, read_csv, ATTACH, INSTALL or SET of a setting). DATE prints as 2023-11-01,
    TIMESTAMP as ISO 8601, lists as JSON; floats are rounded in the table only, CSV and JSON carry every digit.
    CSV is safe to open in a spreadsheet: text that would run as a formula (starting with =, +, - or @, not a number)
    gets a leading ', and a field holding a comma, quote or line break (CR or LF) is quoted.
    """
    import tempfile

    import duckdb

    choose("--format", "format", fmt, FORMATS)
    settings = resolve_settings(warehouse=warehouse)
    if not settings.warehouse.exists():
        fail(f"no warehouse at {escape(str(settings.warehouse))}; run 'dcf run' (or 'make demo') first", EXIT_USAGE)
    with tempfile.TemporaryDirectory(prefix="dcf-sql-") as spill, reading(settings.warehouse, _sandbox(spill)) as con:
        try:
            statements = con.extract_statements(query)
        except duckdb.Error as exc:
            fail(_query_error(exc, 1, 1), EXIT_USAGE)
        if not statements:
            fail("no SQL statement given", EXIT_USAGE)
        shown = 0
        for number, statement in enumerate(statements, 1):
            try:
                cursor = con.execute(statement)
                if cursor.description is None:
                    continue
                result = Result.of(cursor)
            except KeyboardInterrupt:
                fail("interrupted (Ctrl-C)", EXIT_INTERRUPTED)
            except (duckdb.Error, ValueError, OverflowError) as exc:  # a value Python cannot hold, too
                fail(_query_error(exc, number, len(statements)), EXIT_USAGE)
            if fmt == "table":
                if len(statements) > 1:  # which statement this table answers, on a line of its own
                    text = " ".join(statement.query.split()).rstrip(";").strip()
                    heading = (
                        f"{'' if number == 1 else chr(10)}-- {number}: {text[:150]}{'...' if len(text) > 150 else ''}"
                    )
                    out.print(screen(heading, "bold"), soft_wrap=True)
                out.print(rich_table(result, limit, show_lines=False))
                n = len(result.rows)
                out.print(f"{n} row(s)" + (f", first {limit} shown" if n > limit else ""), highlight=False)
            else:
                if fmt == "csv" and shown:
                    sys.stdout.write("\n")
                write(result, fmt, out, sys.stdout)
            sys.stdout.flush()
            shown += 1


def report(
    out_file: Path = typer.Option(
        ..., "--out", help="HTML file to write (replaced in one rename; folders are created)."
    ),
    warehouse: Path | None = WarehouseOpt,
    stage: str | None = typer.Option(
        None,
        "--stage",
        help="Stage of the partner and category charts: allocated, committed, "
        "obligated or disbursed (default: the stage most agencies report).",
    ),
) -> None:
    """Write a self-contained HTML report (charts with a table under each; needs no network) from the published
    warehouse, read-only: funding by partner and category, budget execution, data quality per agency."""
    from schemas.sources import STAGES
    from warehouse.report import ReportError, write_report

    if stage is not None:
        choose("--stage", "stage", stage.lower(), STAGES)
    settings = resolve_settings(warehouse=warehouse)
    if not settings.warehouse.exists():
        fail(f"no warehouse at {settings.warehouse}; run 'dcf run' (or 'make demo') first", EXIT_USAGE)
    try:
        info = write_report(settings.warehouse, out_file, stage=stage)
    except ReportError as exc:
        fail(escape(str(exc)), EXIT_USAGE)
    out.print(
        screen(
            f"report written to {info.path} ({info.bytes / 1e3:.0f} kB; load {info.load_id}; stage shown: {info.stage})",
            keep="",
        )
    )

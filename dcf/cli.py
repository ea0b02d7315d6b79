"""``dcf``: the command line over the nightly flow and the warehouse.

Exit codes: 0 ok; 1 the run failed and nothing was published; 2 usage or configuration error;
3 another ingestion holds the warehouse; 4 the run published but some files failed (see ``dcf failures``);
130 interrupted (Ctrl-C), nothing published.
Commands that only read the warehouse (status, failures) never start Prefect.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_BUSY, EXIT_PARTIAL = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

app = typer.Typer(
    name="dcf",
    help="Defense-cooperation funding warehouse: ingest agency spreadsheets, inspect loads and failures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

InboxOpt = typer.Option(
    None, "--inbox", help="Inbox folder with one sub-folder per agency (env DCF_INBOX; default data/inbox)."
)
WarehouseOpt = typer.Option(
    None, "--warehouse", help="Published DuckDB file (env DCF_WAREHOUSE; default data/warehouse.duckdb)."
)
SourcesOpt = typer.Option(None, "--sources", help="Folder of agency source YAMLs (env DCF_SOURCES; default sources/).")
ReferenceOpt = typer.Option(
    None, "--reference", help="Folder of reference tables (env DCF_REFERENCE; default reference/)."
)


def _settings(**kw):
    from schemas.settings import Settings

    return Settings.resolve(**kw)


class _NoTraceback:
    """Console log filter: a failed task's traceback stays in Prefect's own run log (the API handler), not on the
    user's terminal, where the one 'error:' line says what happened (DCF_TRACEBACKS=1 shows them)."""

    @staticmethod
    def filter(record) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _quiet_tracebacks() -> None:
    import logging
    import os

    if os.environ.get("DCF_TRACEBACKS") == "1":
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and _NoTraceback not in handler.filters:
                handler.addFilter(_NoTraceback)


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@app.command(epilog="Example: dcf run --inbox data/inbox --warehouse data/warehouse.duckdb")
def run(
    inbox: Path | None = InboxOpt,
    warehouse: Path | None = WarehouseOpt,
    sources: Path | None = SourcesOpt,
    reference: Path | None = ReferenceOpt,
    force: bool = typer.Option(False, "--force", help="Re-process every file, even unchanged ones."),
) -> None:
    """Run the nightly ingestion flow once (through Prefect, no server needed) and print a summary.

    Exit codes: 0 published (rows may be quarantined: see dcf failures); 1 failed, nothing published; 2 usage or
    configuration error; 3 another ingestion holds the warehouse; 4 published, some files failed; 130 interrupted.
    """
    _run(inbox=inbox, warehouse=warehouse, sources=sources, reference=reference, force=force)


def _run(inbox, warehouse, sources, reference, **parameters) -> None:
    from schemas.sources import SourceConfigError

    settings = _settings(inbox=inbox, warehouse=warehouse, sources=sources, reference=reference)
    if not settings.inbox.is_dir():
        _fail(f"inbox {settings.inbox} does not exist (create it, or run 'make demo' for the sample inbox)", EXIT_USAGE)
    from flows.reference import ReferenceError_, check_reference
    from schemas.sources import load_sources
    from warehouse.store import WarehouseBusy, WarehouseError, exclusive_lock

    try:  # configuration problems are usage errors, reported before Prefect starts
        load_sources(settings.sources)
        check_reference(settings.reference)
    except (SourceConfigError, ReferenceError_) as exc:
        _fail(str(exc), EXIT_USAGE)
    from flows.nightly import on_file_done, run_nightly
    from flows.prefect_local import LocalPrefectError, local_prefect

    _quiet_tracebacks()
    with ExitStack() as held:
        try:  # one ingestion at a time: taken before Prefect starts and held for the run (the flow re-enters it)
            held.enter_context(exclusive_lock(settings.warehouse))
        except WarehouseBusy as exc:
            _fail(escape(str(exc)), EXIT_BUSY)
        except WarehouseError as exc:
            _fail(escape(str(exc)), EXIT_RUN_FAILED)
        try:  # Prefect's local server runs as our child for the run (stopped even on Ctrl-C, SIGTERM or kill -9)
            with local_prefect(notify=lambda msg: err.print(escape(msg), highlight=False)), _progress_bar(on_file_done):
                summary = run_nightly(
                    inbox=str(settings.inbox),
                    warehouse=str(settings.warehouse),
                    sources=str(settings.sources),
                    reference=str(settings.reference),
                    **parameters,
                )
        except KeyboardInterrupt:  # Ctrl-C: one line, not Click's bare 'Aborted!' with exit 1
            _fail(
                "interrupted (Ctrl-C); the published warehouse was not changed and the next run starts clean",
                EXIT_INTERRUPTED,
            )
        except LocalPrefectError as exc:
            _fail(f"{escape(str(exc))}; the published warehouse was not changed", EXIT_RUN_FAILED)
        except WarehouseError as exc:  # disk full, permissions, a broken published file: the cause and the next step
            _fail(escape(str(exc)), EXIT_BUSY if isinstance(exc, WarehouseBusy) else EXIT_RUN_FAILED)
        except Exception as exc:  # noqa: BLE001 - the flow's log has the detail; the user gets one sentence
            _fail(
                escape(f"the run failed ({type(exc).__name__}: {exc}); the published warehouse was not changed"),
                EXIT_RUN_FAILED,
            )
    _print_summary(summary)
    raise typer.Exit(summary.exit_code)


@app.command(epilog="Example: dcf rerate --fiscal-year 2023 --fiscal-year 2024")
def rerate(
    fiscal_year: list[int] = typer.Option(..., "--fiscal-year", help="Canonical fiscal year to re-rate (repeatable)."),
    inbox: Path | None = InboxOpt,
    warehouse: Path | None = WarehouseOpt,
) -> None:
    """Release the frozen exchange rates of closed fiscal years and re-convert them at the providers' current rates.

    Closed fiscal years keep the rates they were first converted with; this is the one explicit way to move them.
    """
    _run(
        inbox=inbox,
        warehouse=warehouse,
        sources=None,
        reference=None,
        force=True,
        rerate_fiscal_years=list(fiscal_year),
    )


@contextmanager
def _progress_bar(register):
    """Per-file progress on a terminal (rich); elsewhere the flow's log lines say the same, one per file."""
    if not sys.stdout.isatty():
        yield
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=False,
    ) as bar:
        task = bar.add_task("files", total=None)

        def update(done: int, total: int, batch) -> None:
            bar.update(task, total=total, completed=done, description=f"{batch.file_key}: {batch.status}")

        register(update)
        yield


def _print_summary(summary) -> None:
    table = Table(title=escape(f"load {summary.load_id}: {summary.outcome}"), title_justify="left")
    for col in ("file", "status", "read", "loaded", "quarantined", "skipped"):
        table.add_column(col, justify="right" if col not in ("file", "status") else "left")
    for f in summary.files:
        if f["status"] == "unchanged":
            continue
        table.add_row(
            escape(f["file"]),
            f["status"],
            *(str(f.get(k, "")) for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_skipped")),
        )
    t = summary.totals
    if summary.files and any(f["status"] != "unchanged" for f in summary.files):
        out.print(table)
    withdrawn = sum(f["status"] in ("withdrawn", "retracted") for f in summary.files)
    out.print(
        f"{t['files_processed']} file(s) processed, {t['files_unchanged']} unchanged, {t['files_failed']} failed"
        + (f", {withdrawn} withdrawn from the inbox" if withdrawn else "")
        + "; "
        f"rows {t['rows_read']} read = {t['rows_loaded']} loaded + {t['rows_quarantined']} quarantined + "
        f"{t['rows_skipped']} skipped.\nwarehouse: {escape(summary.warehouse)}",
        highlight=False,
    )
    for f in summary.files:
        if f["status"] in ("failed", "refused", "withdrawn", "retracted"):
            colour = "red" if f["status"] in ("failed", "refused") else "yellow"
            out.print(
                f"[{colour}]{f['status']}[/] {escape(f['file'])}: {escape(str(f.get('message') or ''))}",
                highlight=False,
            )
    if t["rows_quarantined"] or t["files_failed"]:
        out.print("See what failed and why: dcf failures")


def _connect(warehouse: Path | None):
    settings = _settings(warehouse=warehouse)
    if not settings.warehouse.exists():
        _fail(f"no warehouse at {settings.warehouse}; run 'dcf run' (or 'make demo') first", EXIT_USAGE)
    return settings, _reading(settings.warehouse)


@contextmanager
def _reading(path: Path):
    """A read-only connection; a warehouse that does not open is one 'error:' line naming the way out."""
    from warehouse.store import WarehouseError, read_only

    try:
        with read_only(path) as con:
            yield con
    except WarehouseError as exc:
        _fail(escape(str(exc)), EXIT_RUN_FAILED)


def _table(title: str, cursor, limit: int | None = None) -> Table:
    cols = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    table = Table(title=title, title_justify="left")
    for c in cols:
        table.add_column(c, overflow="fold")
    for r in rows[:limit] if limit else rows:
        table.add_row(*("" if v is None else escape(str(v)) for v in r))
    return table


@app.command(epilog="Example: dcf status --warehouse data/warehouse.duckdb")
def status(
    warehouse: Path | None = WarehouseOpt,
    loads: int = typer.Option(5, "--loads", min=1, help="How many recent loads to show."),
) -> None:
    """Show where the warehouse is, the last loads, every current file with its row counts, and open failures."""
    import duckdb

    settings, ctx = _connect(warehouse)
    with ctx as con:
        size = settings.warehouse.stat().st_size
        out.print(f"warehouse: {escape(str(settings.warehouse))} ({size / 1e6:.1f} MB)", highlight=False)
        try:
            out.print(
                _table(
                    "recent loads",
                    con.execute(
                        "SELECT load_id, outcome, started_at::TIMESTAMP(0) AS started, files_processed AS processed, "
                        "files_unchanged AS unchanged, files_failed AS failed, files_withdrawn AS withdrawn, rows_loaded AS loaded, "
                        "rows_quarantined AS quarantined, rows_skipped AS skipped FROM audit_load ORDER BY load_seq DESC LIMIT ?",
                        [loads],
                    ),
                )
            )
            out.print(
                _table(
                    "current files",
                    con.execute(
                        "SELECT file_key AS file, CASE WHEN withdrawn_at IS NULL THEN status ELSE status || ', withdrawn from the inbox "
                        "since ' || CAST(withdrawn_at::DATE AS VARCHAR) END AS status, rows_read AS read, rows_loaded AS loaded, "
                        "rows_quarantined AS quarantined, rows_skipped AS skipped, load_id FROM audit_source_file WHERE is_current "
                        "ORDER BY file_key"
                    ),
                )
            )
            n_withdrawn = con.execute(
                "SELECT count(*) FROM audit_source_file WHERE is_current AND withdrawn_at IS NOT NULL"
            ).fetchone()[0]
            n_open = con.execute("SELECT count(*) FROM audit_validation_failure WHERE status = 'open'").fetchone()[0]
        except duckdb.Error as exc:
            _fail(
                escape(
                    f"the warehouse {settings.warehouse} could not be read ({str(exc).splitlines()[0]}); it may come "
                    "from another version of dcf: 'dcf run' rebuilds it, 'dcf rollback --list' shows the kept versions"
                ),
                EXIT_RUN_FAILED,
            )
    if n_withdrawn:
        out.print(f"withdrawn from the inbox: {n_withdrawn} file(s) (their rows are kept; the raw archive holds them)")
    out.print(f"open failures: {n_open}" + (" (dcf failures)" if n_open else ""))


@app.command(
    epilog="Examples: dcf failures | dcf failures --agency MOD --rule country_unknown | dcf failures --summary | dcf failures --export out/"
)
def failures(
    warehouse: Path | None = WarehouseOpt,
    agency: str | None = typer.Option(None, "--agency", help="Only this agency code (e.g. MOD)."),
    file: str | None = typer.Option(None, "--file", help="Only files whose key contains this text."),
    rule: str | None = typer.Option(None, "--rule", help="Only this rule id (e.g. amount_not_number)."),
    state: str = typer.Option("open", "--status", help="open, resolved or all."),
    summary: bool = typer.Option(False, "--summary", help="Counts per agency and rule instead of each failure."),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many failures."),
    export: Path | None = typer.Option(
        None, "--export", help="Write one steward workbook per source file into this folder."
    ),
) -> None:
    """List validation failures in plain words: file, row, cell, value, what is wrong, and a suggestion.

    With --export DIR, write a workbook per source file instead: the original rows with the failing cells filled and
    a comment holding each message, and an 'Issues' sheet a steward can sort and filter.
    """
    if state not in ("open", "resolved", "all"):
        _fail("--status must be open, resolved or all", EXIT_USAGE)
    if export is not None:
        from warehouse.export import export_failures

        settings = _settings(warehouse=warehouse)
        if not settings.warehouse.exists():
            _fail(f"no warehouse at {settings.warehouse}; run 'dcf run' first", EXIT_USAGE)
        written = export_failures(settings.warehouse, export, agency=agency, file_contains=file, status=state)
        for path in written:
            out.print(str(path), highlight=False)
        out.print(f"{len(written)} workbook(s) written to {export}" if written else f"no {state} failures to export")
        return
    where, params = ["(? = 'all' OR status = ?)"], [state, state]
    for cond, val in (
        ("agency_code = ?", agency.upper() if agency else None),
        ("file_key LIKE '%' || ? || '%'", file),
        ("rule = ?", rule),
    ):
        if val:
            where.append(cond)
            params.append(val)
    clause = " AND ".join(where)
    _, ctx = _connect(warehouse)
    with ctx as con:
        if summary:
            out.print(
                _table(
                    "failures by agency and rule",
                    con.execute(
                        f"SELECT agency_code AS agency, rule, severity, count(*) AS failures, count(DISTINCT file_key) AS files "
                        f"FROM audit_validation_failure WHERE {clause} GROUP BY ALL ORDER BY failures DESC",
                        params,
                    ),
                )
            )
            return
        rows = con.execute(
            f"SELECT file_key, sheet, excel_row, cell, source_column, value, message, suggestion, rule, status "
            f"FROM audit_validation_failure WHERE {clause} ORDER BY file_key, excel_row NULLS FIRST, cell LIMIT ?",
            [*params, limit],
        ).fetchall()
    if not rows:
        out.print(f"no {state} failures" + (" matching the filters" if len(where) > 1 else ""))
        return
    current = None
    for file_key, sheet, row, cell, column, value, message, suggestion, rule_id, st in rows:
        if file_key != current:
            current = file_key
            out.print(f"\n[bold]{file_key}[/]" + (f"  (sheet {sheet})" if sheet else ""), highlight=False)
        where_txt = "whole file" if row is None else f"row {row}" + (f", cell {cell}" if cell else "")
        shown = "" if value is None else f" = '{value}'"
        col = f" {column}{shown}" if column else ""
        flag = "" if state == "open" else f" ({st})"
        out.print(
            f"  {escape(where_txt + col)}: {escape(message)} [dim]{escape(f'[{rule_id}]')}{flag}[/]", highlight=False
        )
        if suggestion:
            out.print(f"      did you mean: {suggestion}?", highlight=False)
    out.print(f"\n{len(rows)} failure(s) shown" + (f" (limit {limit})" if len(rows) == limit else ""))


@app.command(epilog="Example: dcf unmapped, add the mapping to reference/, then: dcf replay")
def replay(warehouse: Path | None = WarehouseOpt, reference: Path | None = ReferenceOpt) -> None:
    """Re-normalise quarantined rows from their stored cells (no file is re-read) after a mapping was added, and
    load the rows that now pass. Rows held back for a data problem wait for a corrected file."""
    from flows.reference import ReferenceError_, check_reference
    from warehouse.store import WarehouseBusy, WarehouseError

    settings = _settings(warehouse=warehouse, reference=reference)
    if not settings.warehouse.exists():
        _fail(f"no warehouse at {settings.warehouse}; run 'dcf run' first", EXIT_USAGE)
    try:
        check_reference(settings.reference)
    except ReferenceError_ as exc:
        _fail(str(exc), EXIT_USAGE)
    from flows.nightly import run_locally
    from flows.prefect_local import LocalPrefectError, local_prefect
    from flows.replay import replay_quarantine

    _quiet_tracebacks()

    try:
        with local_prefect(notify=lambda msg: err.print(escape(msg), highlight=False)):
            summary = run_locally(
                replay_quarantine, warehouse=str(settings.warehouse), reference=str(settings.reference)
            )
    except LocalPrefectError as exc:
        _fail(f"{escape(str(exc))}; the published warehouse was not changed", EXIT_RUN_FAILED)
    except WarehouseError as exc:
        _fail(escape(str(exc)), EXIT_BUSY if isinstance(exc, WarehouseBusy) else EXIT_RUN_FAILED)
    except Exception as exc:  # noqa: BLE001
        _fail(
            f"the replay failed ({type(exc).__name__}: {exc}); the published warehouse was not changed", EXIT_RUN_FAILED
        )
    t = summary.totals
    out.print(
        f"replayed {t['rows_read']} quarantined row(s) in {t['files_processed']} file(s): "
        f"{t['rows_loaded']} now loaded, {t['rows_quarantined']} still quarantined (dcf failures)."
    )


@app.command(epilog="Examples: dcf unmapped | dcf unmapped --kind country")
def unmapped(
    warehouse: Path | None = WarehouseOpt,
    kind: str | None = typer.Option(None, "--kind", help="category, country, currency or stage."),
) -> None:
    """List labels waiting for a mapping (category, country, currency, stage), with counts, suggestions and the
    reference table to add them to."""
    _, ctx = _connect(warehouse)
    with ctx as con:
        cur = con.execute(
            "SELECT kind, agency_code AS agency, label, rows_waiting AS rows, files, suggestion, fix_in "
            "FROM mapping_queue WHERE ? IS NULL OR kind = ?",
            [kind, kind],
        )
        table = _table("labels waiting for a mapping", cur)
    if not table.row_count:
        out.print("nothing waits for a mapping")
        return
    out.print(table)


@app.command(epilog="Examples: dcf rollback --list | dcf rollback | dcf rollback --to 41")
def rollback(
    warehouse: Path | None = WarehouseOpt,
    to: str | None = typer.Option(
        None,
        "--to",
        help="Version number (or file name) from --list; default: the version "
        "before the published one (or, if the published file is broken, the newest good one).",
    ),
    list_only: bool = typer.Option(False, "--list", help="List the kept versions and exit."),
) -> None:
    """Publish an earlier version of the warehouse again, as a new version (so a rollback can be undone). The last
    versions are kept (DCF_KEEP_VERSIONS earlier ones, default 5); a version that does not open as a warehouse of
    this layout is refused."""
    from warehouse.publish import list_versions, published_seq
    from warehouse.publish import rollback as do_rollback
    from warehouse.store import SCHEMA_VERSION, WarehouseBusy, WarehouseError

    settings = _settings(warehouse=warehouse)
    versions = list_versions(settings.warehouse, SCHEMA_VERSION)
    if list_only or not versions:
        if not versions:
            out.print(f"no kept versions beside {settings.warehouse}")
            raise typer.Exit(EXIT_OK if list_only else EXIT_USAGE)
        table = Table(title="kept versions (newest first)", title_justify="left")
        for col in ("version", "last load", "finished", "state"):
            table.add_column(col)
        for v in versions:
            state = "published" if v.current else ("ok" if v.problem is None else f"unusable: {v.problem}")
            table.add_row(str(v.seq), v.load_id or "?", str(v.finished_at or ""), escape(state))
        out.print(table)
        return
    if to is not None:
        wanted = to.removesuffix(".duckdb")
        chosen = next((v for v in versions if wanted.isdigit() and v.seq == int(wanted)), None)
        if chosen is None:
            _fail(f"no kept version {escape(to)}; see 'dcf rollback --list'", EXIT_USAGE)
    else:
        current = published_seq(settings.warehouse)
        good = [v for v in versions if v.problem is None]
        # a published file that does not open (or is not the newest version): restore the newest good version
        candidates = [v for v in good if current is None or v.seq < current] if current is not None else good
        if not candidates:
            _fail("no earlier good version to publish; see 'dcf rollback --list'", EXIT_USAGE)
        chosen = candidates[0]
    try:
        new = do_rollback(
            settings.warehouse, chosen.seq, SCHEMA_VERSION, log=lambda m: err.print(escape(m), highlight=False)
        )
    except WarehouseBusy as exc:
        _fail(escape(str(exc)), EXIT_BUSY)
    except WarehouseError as exc:
        _fail(
            escape(str(exc)),
            EXIT_USAGE if "cannot be published" in str(exc) or "no kept version" in str(exc) else EXIT_RUN_FAILED,
        )
    out.print(
        f"published version {chosen.seq} (last load {chosen.load_id}) again as {settings.warehouse}, "
        f"now version {new}; 'dcf rollback' again undoes it",
        highlight=False,
    )


@app.command(
    epilog="""Examples: dcf sql "SELECT agency_code, count(*) FROM fact_funding_line GROUP BY 1" | dcf sql --format csv "FROM mart_data_quality" """
)
def sql(
    query: str = typer.Argument(..., help="SQL to run, read-only, against the published warehouse."),
    warehouse: Path | None = WarehouseOpt,
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many rows in table format."),
) -> None:
    """Run a query read-only against the published warehouse and print a readable table, CSV or JSON."""
    import duckdb

    if fmt not in ("table", "csv", "json"):
        _fail("--format must be table, csv or json", EXIT_USAGE)
    _, ctx = _connect(warehouse)
    with ctx as con:
        try:
            frame = con.execute(query).df()
        except duckdb.Error as exc:
            _fail(f"query failed: {str(exc).splitlines()[0]}", EXIT_USAGE)
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", force_ascii=False, date_format="iso") + "\n")
    else:
        table = Table(show_lines=False)
        for col in frame.columns:
            table.add_column(str(col), overflow="fold")
        shown = frame.head(limit).astype(object)
        for row in shown.where(shown.notna(), "").itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        out.print(table)
        out.print(f"{len(frame)} row(s)" + (f", first {limit} shown" if len(frame) > limit else ""))


@app.command(epilog="Example: dcf report --out data/reports/report.html --warehouse data/warehouse.duckdb")
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
    from warehouse.report import ReportError, write_report

    settings = _settings(warehouse=warehouse)
    if not settings.warehouse.exists():
        _fail(f"no warehouse at {settings.warehouse}; run 'dcf run' (or 'make demo') first", EXIT_USAGE)
    try:
        info = write_report(settings.warehouse, out_file, stage=stage)
    except ReportError as exc:
        _fail(escape(str(exc)), EXIT_USAGE)
    out.print(
        f"report written to {info.path} ({info.bytes / 1e3:.0f} kB; load {info.load_id}; stage shown: {info.stage})",
        highlight=False,
    )


@app.command(epilog="Examples: dcf serve | dcf serve --cron '30 1 * * *' --timezone Asia/Riyadh")
def serve(
    cron: str = typer.Option("0 2 * * *", "--cron", help="When the nightly ingestion runs."),
    timezone: str = typer.Option("Asia/Riyadh", "--timezone", help="Timezone of the cron."),
    port: int = typer.Option(4200, "--port", help="Port of the local Prefect server (when one is started)."),
    inbox: Path | None = InboxOpt,
    warehouse: Path | None = WarehouseOpt,
) -> None:
    """Schedule the nightly ingestion on this machine: start a local Prefect server on 127.0.0.1 unless
    PREFECT_API_URL names one, register the schedule, and run it until Ctrl-C (which stops both cleanly)."""
    import os

    from flows.prefect_local import LocalPrefectError, start_timeout
    from flows.serve import local_server, serve_nightly

    settings = _settings(inbox=inbox, warehouse=warehouse)
    params = {"inbox": str(settings.inbox), "warehouse": str(settings.warehouse)}
    if os.environ.get("PREFECT_API_URL"):
        out.print(f"using the Prefect server at {os.environ['PREFECT_API_URL']}")
        serve_nightly(cron, timezone, params)
        return
    try:
        limit = start_timeout()  # as dcf run: a first start on a busy machine can take minutes
    except LocalPrefectError as exc:
        _fail(escape(str(exc)), EXIT_USAGE)
    out.print(f"starting Prefect's server on 127.0.0.1:{port} (waiting up to {limit:g} s; DCF_PREFECT_START_TIMEOUT)")
    try:
        with local_server(port, timeout=limit) as api_url, _stop_within(SERVE_STOP_GRACE):
            os.environ["PREFECT_API_URL"] = api_url
            out.print(
                f"Prefect server on {api_url.removesuffix('/api')} (UI); nightly ingestion at '{cron}' {timezone}. "
                "Ctrl-C stops."
            )
            sys.stdout.flush()
            try:
                serve_nightly(cron, timezone, params)
            except KeyboardInterrupt:
                pass
    except TimeoutError as exc:  # the server did not answer in time: one line, no traceback
        _fail(escape(f"{exc}; run again with DCF_PREFECT_START_TIMEOUT set higher"), EXIT_RUN_FAILED)
    out.print("stopped")


SERVE_STOP_GRACE = 30.0  # seconds a clean stop of dcf serve may take after Ctrl-C before it exits anyway


@contextmanager
def _stop_within(seconds: float):
    """Ctrl-C stops ``dcf serve``; if Prefect's runner has not let go ``seconds`` later (its shutdown waits on
    worker threads that may be stuck in a call to a busy server), exit anyway: the Prefect server dies with this
    process (PR_SET_PDEATHSIG, flows/serve.py), so nothing is left running."""
    import os
    import signal
    import threading

    def give_up(signum: int) -> None:
        err.print(f"stopped after {seconds:g} s without a clean shutdown of Prefect's runner")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)

    def handler(signum, frame):
        timer = threading.Timer(seconds, give_up, args=(signum,))
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command(epilog="Example: dcf sample --inbox data/inbox --seed 42")
def sample(
    inbox: Path | None = InboxOpt,
    seed: int = typer.Option(42, "--seed", help="Random seed; the same seed writes byte-identical files."),
    force: bool = typer.Option(False, "--force", help="Write even if the inbox already has files."),
) -> None:
    """Write the SYNTHETIC sample inbox used by 'make demo': six agencies (~2% deliberately bad rows) and two editions of
    a reference workbook in the SIPRI military-expenditure layout (invented figures)."""
    from dcf.samples import generate_inbox

    settings = _settings(inbox=inbox)
    if settings.inbox.exists() and any(settings.inbox.iterdir()) and not force:
        out.print(f"inbox {settings.inbox} already has files; leaving it as it is (--force to rewrite)")
        return
    manifest = generate_inbox(settings.inbox, seed=seed)
    lines = sum(f["lines"] for f in manifest["files"])
    out.print(f"wrote {len(manifest['files'])} synthetic files ({lines} lines) to {settings.inbox}")


def main() -> None:
    """Console entry point: a warehouse fault no command caught itself is still one 'error:' line, never a traceback."""
    from warehouse.errors import WarehouseBusy, WarehouseError

    try:
        app()
    except WarehouseError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(EXIT_BUSY if isinstance(exc, WarehouseBusy) else EXIT_RUN_FAILED)


if __name__ == "__main__":  # pragma: no cover
    main()

"""``dcf``: the command line over the nightly flow and the warehouse.

Exit codes: 0 ok; 1 the run failed and nothing was published; 2 usage or configuration error;
3 another ingestion holds the warehouse; 4 the run published but some files failed (see ``dcf failures``);
130 interrupted (Ctrl-C), nothing published.
Commands that only read the warehouse (status, failures) never start Prefect. Commands that list things take
``--format table|csv|json`` (dcf/output.py); filters name the valid values when given an unknown one (exit 2).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dcf.output import FORMATS, Result, json_records, rich_table, write

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
FormatOpt = typer.Option("table", "--format", help="table (default, for reading), csv or json (for scripts).")
#: the installed distribution whose version ``dcf --version`` prints (pyproject.toml, [project] name)
DISTRIBUTION = "defense-coop-funding"
#: the kinds of label mapping_queue holds (warehouse/sql/002_views.sql)
MAPPING_KINDS = ("category", "country", "currency", "stage")


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
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # one line, however long: scripts grep it
    raise typer.Exit(code)


def _choose(option: str, noun: str, value: str, choices: Iterable[str]) -> None:
    """Exit 2 with one line naming the valid values unless ``value`` is one of ``choices``."""
    valid = list(choices)
    if value not in valid:
        _fail(f"{option}: unknown {noun} '{escape(value)}'; choose one of: {escape(', '.join(valid))}", EXIT_USAGE)


def _warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True, highlight=False)


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
    for warning in getattr(summary, "warnings", None) or []:  # inbox folders no source reads (flows/discover.py)
        out.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if t["rows_quarantined"] or t["files_failed"]:
        out.print("See what failed and why: dcf failures")


def _connect(warehouse: Path | None, config: dict | None = None):
    settings = _settings(warehouse=warehouse)
    if not settings.warehouse.exists():
        _fail(f"no warehouse at {settings.warehouse}; run 'dcf run' (or 'make demo') first", EXIT_USAGE)
    return settings, _reading(settings.warehouse, config)


@contextmanager
def _reading(path: Path, config: dict | None = None):
    """A read-only connection; a warehouse that does not open is one 'error:' line naming the way out."""
    from warehouse.store import WarehouseError, read_only

    try:
        with read_only(path, config) as con:
            yield con
    except WarehouseError as exc:
        _fail(escape(str(exc)), EXIT_RUN_FAILED)


@app.command(epilog="Examples: dcf status --warehouse data/warehouse.duckdb | dcf status --format json")
def status(
    warehouse: Path | None = WarehouseOpt,
    loads: int = typer.Option(5, "--loads", min=1, help="How many recent loads to show."),
    fmt: str = FormatOpt,
    inbox: Path | None = typer.Option(
        None, "--inbox", help="Inbox to check for folders no source reads (default: DCF_INBOX, else the last load's)."
    ),
    sources: Path | None = SourcesOpt,
) -> None:
    """Show where the warehouse is, the last loads, every current file with its row counts, and open failures; warn
    about inbox folders no source reads; named datasets (registers, reference workbooks) with where to read them. CSV:
    the loads, the files and the datasets tables, an empty line between; JSON: one object.
    """
    import duckdb

    _choose("--format", "format", fmt, FORMATS)
    settings, ctx = _connect(warehouse)
    with ctx as con:
        size = settings.warehouse.stat().st_size
        try:
            recent = Result.of(
                con.execute(
                    "SELECT load_id, outcome, started_at::TIMESTAMP(0) AS started, files_processed AS processed, "
                    "files_unchanged AS unchanged, files_failed AS failed, files_withdrawn AS withdrawn, rows_loaded AS loaded, "
                    "rows_quarantined AS quarantined, rows_skipped AS skipped FROM audit_load ORDER BY load_seq DESC LIMIT ?",
                    [loads],
                ),
                "recent loads",
            )
            files = Result.of(
                con.execute(
                    "SELECT file_key AS file, CASE WHEN withdrawn_at IS NULL THEN status ELSE status || ', withdrawn from the inbox "
                    "since ' || CAST(withdrawn_at::DATE AS VARCHAR) END AS status, rows_read AS read, rows_loaded AS loaded, "
                    "rows_quarantined AS quarantined, rows_skipped AS skipped, load_id FROM audit_source_file WHERE is_current "
                    "ORDER BY file_key"
                ),
                "current files",
            )
            datasets = Result.of(
                con.execute(
                    "SELECT dataset, kind, read_from, agencies, files_current AS files, rows_read AS read, "
                    "rows_loaded AS loaded, rows_quarantined AS quarantined, rows_skipped AS skipped, "
                    "open_blocking + open_warnings AS open_failures FROM dataset_summary ORDER BY dataset"
                ),
                "named datasets",
            )
            n_withdrawn = con.execute(
                "SELECT count(*) FROM audit_source_file WHERE is_current AND withdrawn_at IS NOT NULL"
            ).fetchone()[0]
            n_open = con.execute("SELECT count(*) FROM audit_validation_failure WHERE status = 'open'").fetchone()[0]
            last_inbox = con.execute(
                "SELECT inbox FROM audit_load WHERE inbox IS NOT NULL ORDER BY load_seq DESC LIMIT 1"
            ).fetchone()
        except duckdb.Error as exc:
            _fail(
                escape(
                    f"the warehouse {settings.warehouse} could not be read ({str(exc).splitlines()[0]}); it may come "
                    "from another version of dcf: 'dcf run' rebuilds it, 'dcf rollback --list' shows the kept versions"
                ),
                EXIT_RUN_FAILED,
            )
    warnings = _inbox_warnings(inbox, sources, last_inbox[0] if last_inbox else None)
    if fmt == "json":
        sys.stdout.write(
            f'{{"warehouse": {_json_str(str(settings.warehouse))}, "bytes": {size}, '
            f'"recent_loads": {json_records(recent)}, "current_files": {json_records(files)}, '
            f'"datasets": {json_records(datasets)}, '
            f'"withdrawn_files": {n_withdrawn}, "open_failures": {n_open}, '
            f'"inbox_warnings": [{", ".join(_json_str(w) for w in warnings)}]}}\n'
        )
    elif fmt == "csv":
        write([recent, files, datasets], "csv", out, sys.stdout)
    else:
        out.print(f"warehouse: {escape(str(settings.warehouse))} ({size / 1e6:.1f} MB)", highlight=False)
        out.print(rich_table(recent))
        out.print(rich_table(files))
        if datasets.rows:
            out.print(rich_table(datasets))
        if n_withdrawn:
            out.print(
                f"withdrawn from the inbox: {n_withdrawn} file(s) (their rows are kept; the raw archive holds them)"
            )
        out.print(f"open failures: {n_open}" + (" (dcf failures)" if n_open else ""))
    for warning in warnings:
        _warn(warning)


def _json_str(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


def _inbox_warnings(inbox: Path | None, sources: Path | None, recorded: str | None) -> list[str]:
    """Inbox folders no source reads (flows/discover.py), for ``dcf status``: the inbox given (flag or DCF_INBOX),
    else the one the last load read; nothing when it or the source YAMLs cannot be read (that is dcf run's to say)."""
    import os

    from flows.discover import inbox_warnings
    from schemas.sources import SourceConfigError, load_sources

    settings = _settings(inbox=inbox or os.environ.get("DCF_INBOX") or recorded, sources=sources)
    if not settings.inbox.is_dir():
        return []
    try:
        return inbox_warnings(settings.inbox, load_sources(settings.sources))
    except (SourceConfigError, OSError):
        return []


def _known_values(warehouse: Path | None) -> tuple[list[str], list[str]]:
    """(agency codes, rule ids) a failures filter may name: the source YAMLs' agencies and the rule catalogue
    (schemas/rules.py), with those the warehouse itself holds (an agency whose YAML has gone, a rule of an older dcf)."""
    import duckdb

    from schemas.rules import RULES
    from schemas.sources import SourceConfigError, load_sources
    from warehouse.store import WarehouseError, read_only

    settings = _settings(warehouse=warehouse)
    agencies: set[str] = set()
    rules = set(RULES)
    try:
        agencies |= {s.agency for s in load_sources(settings.sources)}
    except (SourceConfigError, OSError):
        pass
    if settings.warehouse.exists():
        try:
            with read_only(settings.warehouse) as con:
                agencies |= {r[0] for r in con.execute("SELECT agency_code FROM dim_agency").fetchall()}
                rules |= {r[0] for r in con.execute("SELECT DISTINCT rule FROM audit_validation_failure").fetchall()}
        except (WarehouseError, duckdb.Error):
            pass
    return sorted(a for a in agencies if a), sorted(r for r in rules if r)


@app.command(
    epilog="Examples: dcf failures | dcf failures --agency MOD --rule country_unknown | dcf failures --summary | dcf failures --format csv | dcf failures --export out/"
)
def failures(
    warehouse: Path | None = WarehouseOpt,
    agency: str | None = typer.Option(None, "--agency", help="Only this agency code (e.g. MOD)."),
    file: str | None = typer.Option(None, "--file", help="Only files whose key contains this text."),
    rule: str | None = typer.Option(None, "--rule", help="Only this rule id (e.g. amount_not_number)."),
    state: str = typer.Option("open", "--status", help="open, resolved or all."),
    summary: bool = typer.Option(False, "--summary", help="Counts per agency and rule instead of each failure."),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many failures."),
    fmt: str = FormatOpt,
    export: Path | None = typer.Option(
        None, "--export", help="Write one steward workbook per source file into this folder."
    ),
) -> None:
    """List validation failures in plain words: file, row, cell, value, what is wrong, and a suggestion.

    With --export DIR, write a workbook per source file instead: the original rows with the failing cells filled and
    a comment holding each message, and an 'Issues' sheet a steward can sort and filter.
    """
    _choose("--status", "status", state, ("open", "resolved", "all"))
    _choose("--format", "format", fmt, FORMATS)
    if export is not None and fmt != "table":
        _fail("--format does not apply to --export (it writes workbooks)", EXIT_USAGE)
    agency = agency.upper() if agency else None
    if agency or rule:
        agencies, rules = _known_values(warehouse)
        if agency and agencies:
            _choose("--agency", "agency", agency, agencies)
        if rule:
            _choose("--rule", "rule", rule, rules)
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
        ("agency_code = ?", agency),
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
            counts = Result.of(
                con.execute(
                    f"SELECT agency_code AS agency, rule, severity, count(*) AS failures, count(DISTINCT file_key) AS files "
                    f"FROM audit_validation_failure WHERE {clause} GROUP BY ALL ORDER BY failures DESC",
                    params,
                ),
                "failures by agency and rule",
            )
            write(counts, fmt, out, sys.stdout)
            return
        found = Result.of(
            con.execute(
                f"SELECT file_key AS file, sheet, excel_row AS row, cell, source_column AS column, value, message, "
                f"suggestion, rule, status FROM audit_validation_failure WHERE {clause} "
                f"ORDER BY file_key, excel_row NULLS FIRST, cell LIMIT ?",
                [*params, limit],
            )
        )
    rows = found.rows
    if fmt != "table":
        write(found, fmt, out, sys.stdout)
        if len(rows) == limit:
            _warn(f"the first {limit} failures only (--limit)")
        return
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


@app.command(epilog="Examples: dcf unmapped | dcf unmapped --kind country | dcf unmapped --format csv")
def unmapped(
    warehouse: Path | None = WarehouseOpt,
    kind: str | None = typer.Option(None, "--kind", help="category, country, currency or stage."),
    fmt: str = FormatOpt,
) -> None:
    """List labels waiting for a mapping (category, country, currency, stage), with counts, suggestions and the
    reference table to add them to."""
    _choose("--format", "format", fmt, FORMATS)
    if kind is not None:
        _choose("--kind", "kind", kind, MAPPING_KINDS)
    _, ctx = _connect(warehouse)
    with ctx as con:
        waiting = Result.of(
            con.execute(
                "SELECT kind, agency_code AS agency, label, rows_waiting AS rows, files, suggestion, fix_in "
                "FROM mapping_queue WHERE ? IS NULL OR kind = ?",
                [kind, kind],
            ),
            "labels waiting for a mapping",
        )
    if fmt == "table" and not waiting.rows:
        out.print("nothing waits for a mapping")
        return
    write(waiting, fmt, out, sys.stdout)


@app.command(
    epilog="Examples: dcf rollback --list | dcf rollback --list --format json | dcf rollback | dcf rollback --to 41"
)
def rollback(
    warehouse: Path | None = WarehouseOpt,
    to: str | None = typer.Option(
        None,
        "--to",
        help="Version number (or file name) from --list; default: the version "
        "before the published one (or, if the published file is broken, the newest good one).",
    ),
    list_only: bool = typer.Option(False, "--list", help="List the kept versions and exit."),
    fmt: str = typer.Option("table", "--format", help="With --list: table (default), csv or json."),
) -> None:
    """Publish an earlier version of the warehouse again, as a new version (so a rollback can be undone). The last
    versions are kept (DCF_KEEP_VERSIONS earlier ones, default 5); a version that does not open as a warehouse of
    this layout is refused."""
    from warehouse.publish import list_versions, published_seq
    from warehouse.publish import rollback as do_rollback
    from warehouse.store import SCHEMA_VERSION, WarehouseBusy, WarehouseError

    _choose("--format", "format", fmt, FORMATS)
    if fmt != "table" and not list_only:  # never roll back when a script only meant to list
        _fail("--format applies to --list only", EXIT_USAGE)
    settings = _settings(warehouse=warehouse)
    versions = list_versions(settings.warehouse, SCHEMA_VERSION)
    if list_only and fmt != "table":
        listed = Result(
            ["version", "last_load", "finished", "state", "path"],
            ["INTEGER", "VARCHAR", "TIMESTAMP", "VARCHAR", "VARCHAR"],
            [(v.seq, v.load_id, v.finished_at, _version_state(v), str(v.path)) for v in versions],
        )
        write(listed, fmt, out, sys.stdout)
        return
    if list_only or not versions:
        if not versions:
            out.print(f"no kept versions beside {settings.warehouse}")
            raise typer.Exit(EXIT_OK if list_only else EXIT_USAGE)
        table = Table(title="kept versions (newest first)", title_justify="left")
        for col in ("version", "last load", "finished", "state"):
            table.add_column(col)
        for v in versions:
            table.add_row(str(v.seq), v.load_id or "?", str(v.finished_at or ""), escape(_version_state(v)))
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


def _version_state(v) -> str:
    return "published" if v.current else ("ok" if v.problem is None else f"unusable: {v.problem}")


def _sandbox(spill: str) -> dict[str, str | bool]:
    """DuckDB settings of ``dcf sql``, fixed at connect time: no file system, extension or other database is
    reachable (COPY, read_csv, read_text, ATTACH, INSTALL/LOAD fail), and no statement can change a setting back
    (lock_configuration). Spilling goes to a private folder removed afterwards, never beside the warehouse."""
    return {"enable_external_access": False, "lock_configuration": True, "temp_directory": spill}


def _query_error(exc: Exception, number: int, count: int) -> str:
    import duckdb

    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    where = f" (statement {number} of {count})" if count > 1 else ""
    refused = isinstance(exc, duckdb.PermissionException) or any(
        text in first
        for text in ("disabled by configuration", "configuration has been locked", "external_access", "external access")
    )
    if refused:
        return escape(
            f"query refused{where}: dcf sql reads the warehouse and nothing else (no files, extensions, other "
            f"databases or settings): {first}"
        )
    return escape(f"query failed{where}: {first}")


@app.command(
    epilog="""Examples: dcf sql "SELECT agency_code, count(*) FROM fact_funding_line GROUP BY 1" | dcf sql --format csv "FROM mart_data_quality" | dcf sql "SELECT 1; SELECT 2" """
)
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
    """
    import tempfile

    import duckdb

    _choose("--format", "format", fmt, FORMATS)
    settings = _settings(warehouse=warehouse)
    if not settings.warehouse.exists():
        _fail(f"no warehouse at {settings.warehouse}; run 'dcf run' (or 'make demo') first", EXIT_USAGE)
    with tempfile.TemporaryDirectory(prefix="dcf-sql-") as spill, _reading(settings.warehouse, _sandbox(spill)) as con:
        try:
            statements = con.extract_statements(query)
        except duckdb.Error as exc:
            _fail(_query_error(exc, 1, 1), EXIT_USAGE)
        if not statements:
            _fail("no SQL statement given", EXIT_USAGE)
        shown = 0
        for number, statement in enumerate(statements, 1):
            try:
                cursor = con.execute(statement)
                if cursor.description is None:
                    continue
                result = Result.of(cursor)
            except KeyboardInterrupt:
                _fail("interrupted (Ctrl-C)", EXIT_INTERRUPTED)
            except (duckdb.Error, ValueError, OverflowError) as exc:  # a value Python cannot hold, too
                _fail(_query_error(exc, number, len(statements)), EXIT_USAGE)
            if fmt == "table":
                if len(statements) > 1:  # which statement this table answers, on a line of its own
                    text = " ".join(statement.query.split()).rstrip(";").strip()
                    heading = (
                        f"{'' if number == 1 else chr(10)}-- {number}: {text[:150]}{'...' if len(text) > 150 else ''}"
                    )
                    out.print(escape(heading), style="bold", soft_wrap=True, highlight=False)
                out.print(rich_table(result, limit, show_lines=False))
                n = len(result.rows)
                out.print(f"{n} row(s)" + (f", first {limit} shown" if n > limit else ""), highlight=False)
            else:
                if fmt == "csv" and shown:
                    sys.stdout.write("\n")
                write(result, fmt, out, sys.stdout)
            sys.stdout.flush()
            shown += 1


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
    from schemas.sources import STAGES
    from warehouse.report import ReportError, write_report

    if stage is not None:
        _choose("--stage", "stage", stage.lower(), STAGES)
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

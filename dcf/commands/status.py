"""The commands that list what the published warehouse holds, read-only and without Prefect: ``dcf status``,
``dcf failures`` and ``dcf unmapped``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from dcf.commands.common import (
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    FormatOpt,
    SourcesOpt,
    WarehouseOpt,
    bind,
    choose,
    connect,
    fail,
    out,
    resolve_settings,
    warn,
)
from dcf.output import FORMATS, Result, json_records, rich_table, screen, write
from flows.names import shown
from warehouse.signals import EXIT_TERMINATED, sigterm_exits

#: the kinds of label mapping_queue holds (warehouse/sql/002_views.sql)
MAPPING_KINDS = ("category", "country", "currency", "stage")


def status(
    warehouse: Path | None = WarehouseOpt,
    loads: int = typer.Option(5, "--loads", min=1, help="How many recent loads to show."),
    fmt: str = FormatOpt,
    inbox: Path | None = typer.Option(
        None,
        "--inbox",
        help="Inbox to check for folders no source reads (env DCF_INBOX; default the last load's inbox).",
    ),
    sources: Path | None = SourcesOpt,
) -> None:
    """Show where the warehouse is, the last loads, every current file with its row counts, and open failures; warn
    about inbox folders no source reads; named datasets (registers, reference workbooks) with where to read them;
    the inbox entries the last load refused (links leaving the inbox, FIFOs), with why. CSV: the loads, the files,
    the datasets and the refused entries, an empty line between; JSON: one object.
    """
    import duckdb

    choose("--format", "format", fmt, FORMATS)
    settings, ctx = connect(warehouse)
    with ctx as con:
        size = settings.warehouse.stat().st_size
        try:
            recent = Result.of(
                con.execute(
                    "SELECT load_id, outcome, started_at::TIMESTAMP(0) AS started, files_processed AS processed, "
                    "files_unchanged AS unchanged, files_failed AS failed, files_withdrawn AS withdrawn, rows_loaded AS loaded, "
                    f"rows_quarantined AS quarantined, rows_skipped AS skipped FROM audit_load ORDER BY load_seq DESC LIMIT {int(loads)}"
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
            refused = Result.of(
                con.execute(
                    "SELECT entry, reason FROM audit_refused_entry WHERE load_id = (SELECT load_id FROM audit_load "
                    "ORDER BY load_seq DESC LIMIT 1) ORDER BY entry"
                ),
                "inbox entries the last load refused (never read)",
            )
        except duckdb.Error as exc:
            fail(
                escape(
                    f"the warehouse {settings.warehouse} could not be read ({str(exc).splitlines()[0]}); it may come "
                    "from another version of dcf: 'dcf run' rebuilds it, 'dcf rollback --list' shows the kept versions"
                ),
                EXIT_RUN_FAILED,
            )
    warnings = _inbox_warnings(inbox, sources, last_inbox[0] if last_inbox else None)
    from warehouse.analyst import analyst_path

    edition = analyst_path(settings.warehouse)  # published beside it while an agency is restricted (ADR 0010)
    edition_bytes = edition.stat().st_size if edition.is_file() else None
    if fmt == "json":
        sys.stdout.write(
            f'{{"warehouse": {_json_str(str(settings.warehouse))}, "bytes": {size}, '
            f'"analyst_edition": {_json_str(str(edition)) if edition_bytes is not None else "null"}, '
            f'"recent_loads": {json_records(recent)}, "current_files": {json_records(files)}, '
            f'"datasets": {json_records(datasets)}, "refused_entries": {json_records(refused)}, '
            f'"withdrawn_files": {n_withdrawn}, "open_failures": {n_open}, '
            f'"inbox_warnings": [{", ".join(_json_str(w) for w in warnings)}]}}\n'
        )
    elif fmt == "csv":
        write([recent, files, datasets, refused], "csv", out, sys.stdout)
    else:
        out.print(screen(f"warehouse: {settings.warehouse} ({size / 1e6:.1f} MB)", keep=""))
        if edition_bytes is not None:
            out.print(
                screen(
                    f"analyst edition: {edition} ({edition_bytes / 1e6:.1f} MB; without the restricted agencies' "
                    "rows: the file to give analysts)",
                    keep="",
                )
            )
        out.print(rich_table(recent))
        out.print(rich_table(files))
        if datasets.rows:
            out.print(rich_table(datasets))
        if refused.rows:
            out.print(rich_table(refused))
        if n_withdrawn:
            out.print(
                f"withdrawn from the inbox: {n_withdrawn} file(s) (their rows are kept; the raw archive holds them)"
            )
        out.print(f"open failures: {n_open}" + (" (dcf failures)" if n_open else ""))
    for warning in warnings:
        warn(warning)


def _json_str(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


def _inbox_warnings(inbox: Path | None, sources: Path | None, recorded: str | None) -> list[str]:
    """Inbox folders no source reads (flows/discover.py), for ``dcf status``: the inbox given (flag or DCF_INBOX),
    else the one the last load read; nothing when it or the source YAMLs cannot be read (that is dcf run's to say)."""
    import os

    from flows.discover import inbox_warnings
    from schemas.outline import read_outlines

    settings = resolve_settings(inbox=inbox or os.environ.get("DCF_INBOX") or recorded, sources=sources)
    if not settings.inbox.is_dir():
        return []
    try:
        return inbox_warnings(settings.inbox, read_outlines(settings.sources))
    except (ValueError, OSError):
        return []


def _known_values(warehouse: Path | None) -> tuple[list[str], list[str]]:
    """(agency codes, rule ids) a failures filter may name: the source YAMLs' agencies and the rule catalogue
    (schemas/rules.py), with those the warehouse itself holds (an agency whose YAML has gone, a rule of an older dcf)."""
    import duckdb

    from schemas.outline import read_outlines
    from schemas.rules import RULES
    from warehouse.errors import WarehouseError
    from warehouse.publish import read_only

    settings = resolve_settings(warehouse=warehouse)
    agencies: set[str] = set()
    rules = set(RULES)
    try:
        agencies |= {s.agency for s in read_outlines(settings.sources)}
    except (ValueError, OSError):
        pass
    if settings.warehouse.exists():
        try:
            with read_only(settings.warehouse) as con:
                agencies |= {r[0] for r in con.execute("SELECT agency_code FROM dim_agency").fetchall()}
                rules |= {r[0] for r in con.execute("SELECT DISTINCT rule FROM audit_validation_failure").fetchall()}
        except (WarehouseError, duckdb.Error):
            pass
    return sorted(a for a in agencies if a), sorted(r for r in rules if r)


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
    choose("--status", "status", state, ("open", "resolved", "all"))
    choose("--format", "format", fmt, FORMATS)
    if export is not None and fmt != "table":
        fail("--format does not apply to --export (it writes workbooks)", EXIT_USAGE)
    agency = agency.upper() if agency else None
    if agency or rule:
        agencies, rules = _known_values(warehouse)
        if agency and agencies:
            choose("--agency", "agency", agency, agencies)
        if rule:
            choose("--rule", "rule", rule, rules)
    if export is not None:
        from warehouse.export import export_failures

        settings = resolve_settings(warehouse=warehouse)
        if not settings.warehouse.exists():
            fail(f"no warehouse at {escape(str(settings.warehouse))}; run 'dcf run' first", EXIT_USAGE)
        try:
            with sigterm_exits():
                written = export_failures(settings.warehouse, export, agency=agency, file_contains=file, status=state)
        except SystemExit as stop:
            if stop.code == EXIT_TERMINATED:
                warn("the export was stopped (SIGTERM); the workbook being written was removed, earlier ones stay")
            raise
        for path in written:
            out.print(screen(str(path), keep=""))
        for problem in getattr(written, "problems", []):  # a workbook that could not be written: one line each
            warn(problem)
        done = f"{len(written)} workbook(s) written to {export}" if written else f"no {state} failures to export"
        out.print(screen(done, keep=""))
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
    _, ctx = connect(warehouse)
    with ctx as con:
        if summary:
            counts = Result.of(
                con.execute(
                    bind(
                        "SELECT agency_code AS agency, rule, severity, count(*) AS failures, count(DISTINCT file_key) AS "
                        f"files FROM audit_validation_failure WHERE {clause} GROUP BY ALL ORDER BY failures DESC",
                        params,
                    )
                ),
                "failures by agency and rule",
            )
            write(counts, fmt, out, sys.stdout)
            return
        found = Result.of(
            con.execute(
                bind(
                    "SELECT file_key AS file, sheet, excel_row AS row, cell, source_column AS column, value, message, "
                    f"suggestion, rule, status FROM audit_validation_failure WHERE {clause} "
                    "ORDER BY file_key, excel_row NULLS FIRST, cell LIMIT ?",
                    [*params, limit],
                )
            )
        )
    rows = found.rows
    if fmt != "table":
        write(found, fmt, out, sys.stdout)
        if len(rows) == limit:
            warn(f"the first {limit} failures only (--limit)")
        return
    if not rows:
        out.print(f"no {state} failures" + (" matching the filters" if len(where) > 1 else ""))
        return
    from rich.text import Text

    # each line a rich Text: what the warehouse holds is printed as it is (no markup is read in a file name, value or
    # suggestion), with control characters and line breaks as backslash escapes (flows/names.py)
    current = None
    for file_key, sheet, row, cell, column, value, message, suggestion, rule_id, st in rows:
        if file_key != current:
            current = file_key
            where_sheet = f"  (sheet {sheet})" if sheet else ""
            out.print(Text.assemble("\n", screen(file_key, "bold", keep=""), screen(where_sheet, keep="")))
        where_txt = "whole file" if row is None else f"row {row}" + (f", cell {cell}" if cell else "")
        value_txt = "" if value is None else f" = '{value}'"
        col = f" {column}{value_txt}" if column else ""
        flag = "" if state == "open" else f" ({st})"
        out.print(
            Text.assemble(
                f"  {_literal(where_txt + col)}: {_literal(message)} ", screen(f"[{rule_id}]{flag}", "dim", keep="")
            )
        )
        if suggestion:
            out.print(Text(f"      did you mean: {_literal(suggestion)}?"))
    out.print(f"\n{len(rows)} failure(s) shown" + (f" (limit {limit})" if len(rows) == limit else ""))


def _literal(text: object) -> str:
    """Text from the warehouse on one line: every control character (a line break too) as a backslash escape."""
    return shown(str(text), keep="")


def unmapped(
    warehouse: Path | None = WarehouseOpt,
    kind: str | None = typer.Option(None, "--kind", help="category, country, currency or stage."),
    fmt: str = FormatOpt,
) -> None:
    """List labels waiting for a mapping (category, country, currency, stage), with counts, suggestions and the
    reference table to add them to."""
    choose("--format", "format", fmt, FORMATS)
    if kind is not None:
        choose("--kind", "kind", kind, MAPPING_KINDS)
    _, ctx = connect(warehouse)
    with ctx as con:
        waiting = Result.of(
            con.execute(
                bind(
                    "SELECT kind, agency_code AS agency, label, rows_waiting AS rows, files, suggestion, fix_in "
                    "FROM mapping_queue WHERE ? IS NULL OR kind = ?",
                    [kind, kind],
                )
            ),
            "labels waiting for a mapping",
        )
    if fmt == "table" and not waiting.rows:
        out.print("nothing waits for a mapping")
        return
    write(waiting, fmt, out, sys.stdout)

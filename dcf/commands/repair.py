"""The commands that change what is published without reading the inbox: ``dcf replay`` (re-normalise
quarantined rows after a mapping was added) and ``dcf rollback`` (publish a kept version again)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from dcf.commands.common import (
    EXIT_BUSY,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    QuietOpt,
    ReferenceOpt,
    VerboseOpt,
    WarehouseOpt,
    choose,
    err,
    fail,
    out,
    resolve_settings,
)
from dcf.output import FORMATS, Result, write


def replay(
    warehouse: Path | None = WarehouseOpt,
    reference: Path | None = ReferenceOpt,
    quiet: bool = QuietOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Re-normalise quarantined rows from their stored cells (no file is re-read) after a mapping was added, and
    load the rows that now pass. Rows held back for a data problem wait for a corrected file."""
    from dcf.commands.run_output import output_level, progress_bar, run_console

    level = output_level(quiet, verbose)
    from flows.reference import ReferenceError_, check_reference
    from warehouse.store import WarehouseBusy, WarehouseError

    settings = resolve_settings(warehouse=warehouse, reference=reference)
    if not settings.warehouse.exists():
        fail(f"no warehouse at {settings.warehouse}; run 'dcf run' first", EXIT_USAGE)
    try:
        check_reference(settings.reference)
    except ReferenceError_ as exc:
        fail(str(exc), EXIT_USAGE)
    from flows.nightly import run_locally
    from flows.prefect_local import LocalPrefectError, local_prefect
    from flows.replay import replay_quarantine

    try:
        with (
            progress_bar(level, lambda hook: None) as bar,
            run_console(err, level, bar.stage),
            local_prefect(notify=bar.notify),
        ):
            bar.stage("replaying quarantined rows")
            summary = run_locally(
                replay_quarantine, warehouse=str(settings.warehouse), reference=str(settings.reference)
            )
    except LocalPrefectError as exc:
        fail(f"{escape(str(exc))}; the published warehouse was not changed", EXIT_RUN_FAILED)
    except WarehouseError as exc:
        fail(escape(str(exc)), EXIT_BUSY if isinstance(exc, WarehouseBusy) else EXIT_RUN_FAILED)
    except Exception as exc:  # noqa: BLE001
        fail(
            escape(f"the replay failed ({type(exc).__name__}: {exc}); the published warehouse was not changed"),
            EXIT_RUN_FAILED,
        )
    t = summary.totals
    out.print(
        f"replayed {t['rows_read']} quarantined row(s) in {t['files_processed']} file(s): "
        f"{t['rows_loaded']} now loaded, {t['rows_quarantined']} still quarantined (dcf failures)."
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
    from warehouse.ddl import SCHEMA_VERSION
    from warehouse.errors import WarehouseBusy, WarehouseError, WarehouseKeyProblem
    from warehouse.publish import list_versions, published_seq
    from warehouse.publish import rollback as do_rollback

    choose("--format", "format", fmt, FORMATS)
    if fmt != "table" and not list_only:  # never roll back when a script only meant to list
        fail("--format applies to --list only", EXIT_USAGE)
    settings = resolve_settings(warehouse=warehouse)
    try:
        versions = list_versions(settings.warehouse, SCHEMA_VERSION)
    except WarehouseKeyProblem as exc:
        fail(escape(str(exc)), EXIT_USAGE)
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
            fail(f"no kept version {escape(to)}; see 'dcf rollback --list'", EXIT_USAGE)
    else:
        current = published_seq(settings.warehouse)
        good = [v for v in versions if v.problem is None]
        # a published file that does not open (or is not the newest version): restore the newest good version
        candidates = [v for v in good if current is None or v.seq < current] if current is not None else good
        if not candidates:
            fail("no earlier good version to publish; see 'dcf rollback --list'", EXIT_USAGE)
        chosen = candidates[0]
    try:
        new = do_rollback(
            settings.warehouse, chosen.seq, SCHEMA_VERSION, log=lambda m: err.print(escape(m), highlight=False)
        )
    except WarehouseBusy as exc:
        fail(escape(str(exc)), EXIT_BUSY)
    except WarehouseError as exc:
        fail(
            escape(str(exc)),
            EXIT_USAGE
            if isinstance(exc, WarehouseKeyProblem)
            or "cannot be published" in str(exc)
            or "no kept version" in str(exc)
            else EXIT_RUN_FAILED,
        )
    out.print(
        f"published version {chosen.seq} (last load {chosen.load_id}) again as {settings.warehouse}, "
        f"now version {new}; 'dcf rollback' again undoes it",
        highlight=False,
    )


def _version_state(v) -> str:
    return "published" if v.current else ("ok" if v.problem is None else f"unusable: {v.problem}")

"""The commands that run the nightly ingestion flow: ``dcf run`` (once), ``dcf rerate`` (once, re-converting
closed fiscal years) and ``dcf serve`` (on a schedule, through a local Prefect server)."""

from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from dcf.commands.common import (
    EXIT_BUSY,
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    InboxOpt,
    QuietOpt,
    ReferenceOpt,
    SourcesOpt,
    VerboseOpt,
    WarehouseOpt,
    err,
    fail,
    out,
    resolve_settings,
)
from dcf.commands.run_output import output_level, progress_bar


def run(
    inbox: Path | None = InboxOpt,
    warehouse: Path | None = WarehouseOpt,
    sources: Path | None = SourcesOpt,
    reference: Path | None = ReferenceOpt,
    force: bool = typer.Option(False, "--force", help="Re-process every file, even unchanged ones."),
    quiet: bool = QuietOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Run the nightly ingestion flow once (through Prefect, no server needed) and print a summary.

    By default: one line per file, the warnings that concern a file or the night, and a progress bar on a terminal
    that says what the run waits for; --verbose adds every failing row and Prefect's own log lines, --quiet shows
    errors and the totals only.

    Exit codes: 0 published (rows may be quarantined: see dcf failures); 1 failed, nothing published; 2 usage or
    configuration error; 3 another ingestion holds the warehouse; 4 published, some files failed; 130 interrupted.
    """
    _run(
        inbox=inbox,
        warehouse=warehouse,
        sources=sources,
        reference=reference,
        level=output_level(quiet, verbose),
        force=force,
    )


def _run(inbox, warehouse, sources, reference, level: int, **parameters) -> None:
    from schemas.sources import SourceConfigError

    settings = resolve_settings(inbox=inbox, warehouse=warehouse, sources=sources, reference=reference)
    if not settings.inbox.is_dir():
        fail(f"inbox {settings.inbox} does not exist (create it, or run 'make demo' for the sample inbox)", EXIT_USAGE)
    from flows.reference import ReferenceError_, check_reference
    from schemas.sources import load_sources
    from warehouse.errors import WarehouseKeyProblem
    from warehouse.publish import check_key
    from warehouse.store import WarehouseBusy, WarehouseError, exclusive_lock

    try:  # configuration problems are usage errors, reported before Prefect starts
        load_sources(settings.sources)
        check_reference(settings.reference)
        check_key(settings.warehouse)
    except (SourceConfigError, ReferenceError_) as exc:
        fail(str(exc), EXIT_USAGE)
    except WarehouseKeyProblem as exc:
        fail(escape(str(exc)), EXIT_USAGE)
    from dcf.commands.run_output import run_console
    from flows.nightly import on_file_done, run_nightly
    from flows.prefect_local import LocalPrefectError, local_prefect

    with ExitStack() as held:
        try:  # one ingestion at a time: taken before Prefect starts and held for the run (the flow re-enters it)
            held.enter_context(exclusive_lock(settings.warehouse))
        except WarehouseBusy as exc:
            fail(escape(str(exc)), EXIT_BUSY)
        except WarehouseError as exc:
            fail(escape(str(exc)), EXIT_RUN_FAILED)
        bar = held.enter_context(progress_bar(level, on_file_done))
        held.enter_context(run_console(err, level, bar.stage))
        try:  # Prefect's local server runs as our child for the run (stopped even on Ctrl-C, SIGTERM or kill -9)
            with local_prefect(notify=bar.notify):
                bar.stage("starting the flow run")
                summary = run_nightly(
                    inbox=str(settings.inbox),
                    warehouse=str(settings.warehouse),
                    sources=str(settings.sources),
                    reference=str(settings.reference),
                    **parameters,
                )
        except KeyboardInterrupt:  # Ctrl-C: one line, not Click's bare 'Aborted!' with exit 1
            fail(
                "interrupted (Ctrl-C); the published warehouse was not changed and the next run starts clean",
                EXIT_INTERRUPTED,
            )
        except LocalPrefectError as exc:
            fail(f"{escape(str(exc))}; the published warehouse was not changed", EXIT_RUN_FAILED)
        except WarehouseKeyProblem as exc:  # e.g. a Secret block that stopped answering: the setting, named
            fail(escape(str(exc)), EXIT_USAGE)
        except WarehouseError as exc:  # disk full, permissions, a broken published file: the cause and the next step
            fail(escape(str(exc)), EXIT_BUSY if isinstance(exc, WarehouseBusy) else EXIT_RUN_FAILED)
        except Exception as exc:  # noqa: BLE001 - the flow's log has the detail; the user gets one sentence
            fail(
                escape(f"the run failed ({type(exc).__name__}: {exc}); the published warehouse was not changed"),
                EXIT_RUN_FAILED,
            )
    _print_summary(summary, level)
    raise typer.Exit(summary.exit_code)


def rerate(
    fiscal_year: list[int] = typer.Option(..., "--fiscal-year", help="Canonical fiscal year to re-rate (repeatable)."),
    inbox: Path | None = InboxOpt,
    warehouse: Path | None = WarehouseOpt,
    quiet: bool = QuietOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Release the frozen exchange rates of closed fiscal years and re-convert them at the providers' current rates.

    Closed fiscal years keep the rates they were first converted with; this is the one explicit way to move them.
    """
    _run(
        inbox=inbox,
        warehouse=warehouse,
        sources=None,
        reference=None,
        level=output_level(quiet, verbose),
        force=True,
        rerate_fiscal_years=list(fiscal_year),
    )


def _print_summary(summary, level: int) -> None:
    from dcf.commands.run_output import QUIET

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
    if level > QUIET and summary.files and any(f["status"] != "unchanged" for f in summary.files):
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
    _print_rates_changed(getattr(summary, "rates_changed", None) or [])
    for warning in getattr(summary, "warnings", None) or []:  # inbox folders no source reads (flows/discover.py)
        out.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if t["rows_quarantined"] or t["files_failed"]:
        out.print("See what failed and why: dcf failures")


def _print_rates_changed(changed: list[dict]) -> None:
    """What ``dcf rerate`` moved: each frozen rate of a released fiscal year that is now different."""
    if not changed:
        return
    table = Table(title=f"{len(changed)} frozen exchange rate(s) changed", title_justify="left")
    for col in ("currency", "fiscal year", "rate for", "per US$ before", "per US$ after", "provider before", "after"):
        table.add_column(col, justify="right" if col.startswith("per US$") else "left")

    def period(row: dict) -> str:
        start, end = row["key_start"], row["key_end"]
        return str(start) if start == end else f"{start} .. {end}"

    for row in changed:
        before, after = row["units_per_usd_before"], row["units_per_usd_after"]
        table.add_row(
            escape(str(row["currency"])),
            str(row["fiscal_year"]),
            period(row),
            "-" if before is None else f"{before:.6g}",
            "-" if after is None else f"{after:.6g}",
            escape(str(row["provider_before"] or "-")),
            escape(str(row["provider_after"] or "-")),
        )
    out.print(table)


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

    settings = resolve_settings(inbox=inbox, warehouse=warehouse)
    params = {"inbox": str(settings.inbox), "warehouse": str(settings.warehouse)}
    if os.environ.get("PREFECT_API_URL"):
        out.print(f"using the Prefect server at {os.environ['PREFECT_API_URL']}")
        serve_nightly(cron, timezone, params)
        return
    try:
        limit = start_timeout()  # as dcf run: a first start on a busy machine can take minutes
    except LocalPrefectError as exc:
        fail(escape(str(exc)), EXIT_USAGE)
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
        fail(escape(f"{exc}; run again with DCF_PREFECT_START_TIMEOUT set higher"), EXIT_RUN_FAILED)
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

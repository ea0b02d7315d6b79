"""The nightly ingestion flow: discover -> process each new or changed file -> load, check, publish.

Runs with no Prefect server configured (Prefect starts a temporary local one). A task per file, never per row.
"""

from __future__ import annotations

import getpass
import logging
import os
import time
import uuid
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.task_runners import ThreadPoolTaskRunner

from flows import archive
from flows.discover import inbox_warnings
from flows.kinds.base import as_failed
from flows.nightly_discover import (  # noqa: F401  (re-exported)
    RETRY_DELAYS,
    InboxUnavailable,
    archived_task,
    discover,
    failed_versions,
    source_yamls,
)
from flows.nightly_load import NightLoad, in_window
from flows.nightly_steps import (
    RunSummary,
    _files,
    _locked_rates_of,
    _presence,
    _rate_changes,
    _summary_markdown,
    _top_rules,
    _totals,
    quiet_night,
)
from flows.process import FileTask, process_file
from flows.reference import read_reference
from flows.remote import drop_failures, with_origin
from schemas.batch import FileBatch
from schemas.settings import Settings
from schemas.sources import SourceConfig, load_sources
from transforms.reference import Reference
from warehouse import quiet as quiet_memo
from warehouse import run_steps
from warehouse.controls import check_control_totals
from warehouse.faults import faultpoint
from warehouse.published_state import TrustedLook
from warehouse.store import (
    LoadInfo,
    exclusive_lock,
    locked_rates,
    recover,
)

MAX_LOGGED_FAILURES = 5
#: files submitted and not yet stored: the pool's threads keep busy while the flow's thread stores the one finished,
#: and memory holds a few files' frames, never the night's (flows/nightly_load.py)
IN_FLIGHT = int(os.environ.get("DCF_IN_FLIGHT", 0)) or max(2, os.cpu_count() or 2)
#: tags for dcf's console (dcf/commands/run_output.py): a line shown by default, one failing row (--verbose only)
LINE, ROW = {"dcf": "line"}, {"dcf": "row"}

#: called as hook(done, total, batch) when a file finishes; the CLI sets it to drive a progress bar on a terminal
_progress_hooks: list = []


def on_file_done(hook) -> None:
    """Register a progress callback for runs in this process (``dcf run`` shows a bar with it)."""
    _progress_hooks.append(hook)


@task(name="process-file", task_run_name="process {file_task.file_key}", cache_policy=NO_CACHE)
def process(file_task: FileTask, reference: Reference, archive_root: Path) -> FileBatch:
    logger = get_run_logger()
    batch = with_origin(process_file(file_task, reference, log=logger.warning), file_task)  # a remote drop's URL
    faultpoint("reading")
    if not file_task.read_error and batch.file_hash != "unreadable" and "file_too_large" not in _rules(batch):
        try:  # every received file is kept (content-addressed), so re-processing never needs the inbox
            kept = archive.keep(file_task.path, batch.file_hash, archive_root)
        except Exception as exc:  # noqa: BLE001 - the file still loads; only its archive copy is missing
            kept = None
            logger.error("%s: could not be kept in the raw archive %s (%s)", batch.file_key, archive_root, exc)
        batch = replace(batch, archive_path=str(kept) if kept else None)
    c = batch.counts
    if batch.status == "failed":
        logger.error("%s: FAILED: %s", batch.file_key, batch.message)
    else:
        logger.info(
            "%s [%s]: %d read = %d loaded + %d quarantined + %d skipped (%.2f s)",
            batch.file_key,
            batch.sheet or ("csv" if str(batch.path).lower().endswith(".csv") else "all sheets"),
            c["rows_read"],
            c["rows_loaded"],
            c["rows_quarantined"],
            c["rows_skipped"],
            batch.seconds,
            extra=LINE,
        )
        failures = batch.failures
        for row in failures.head(MAX_LOGGED_FAILURES).itertuples() if failures is not None and len(failures) else []:
            logger.warning("%s row %s: %s [%s]", batch.file_key, row.excel_row, row.message, row.rule, extra=ROW)
        if failures is not None and len(failures) > MAX_LOGGED_FAILURES:
            logger.warning(
                "%s: %d more failure(s); see 'dcf failures'",
                batch.file_key,
                len(failures) - MAX_LOGGED_FAILURES,
                extra=ROW,
            )
    return batch


def _rejected(batch: FileBatch, exc: Exception) -> FileBatch:
    """The database refused a file's rows (a bug, not a data problem): record the file as failed, keep the rest."""
    if "keep one file per edition" in str(exc):  # warehouse/store.py _claim_edition: a data problem, not a bug
        rule, message = "edition_duplicate", f"{Path(batch.path).name}: {exc}"
    else:
        rule = "file_unreadable"
        message = f"{Path(batch.path).name}: could not be stored in the warehouse ({type(exc).__name__}: {exc})"
    get_run_logger().error("%s: %s", batch.file_key, message)
    return as_failed(batch, rule, message)


@task(name="load-and-publish", cache_policy=NO_CACHE)
def load_and_publish(
    settings: Settings,
    night: NightLoad,
    unchanged: list[FileTask],
    sources: list[SourceConfig],
    load: LoadInfo,
    release_years: frozenset[int] = frozenset(),
    refused: list[dict] | None = None,
) -> RunSummary:
    """The files not stored yet (editions, settled together; failed files of a night that had no staging copy),
    the night's whole-warehouse steps, the checks, and one atomic publish. A failure leaves the published state as
    it was and removes the staging copy (NightLoad's exit, in the flow)."""
    logger = get_run_logger()
    staging = night.open()
    batches = night.finish()
    in_inbox, folderless = _presence(settings, sources, batches, unchanged)
    withdrawn = staging.mark_withdrawn(
        in_inbox, {s.agency: s.withdrawn for s in sources}, datetime.now(), skip_agencies=folderless
    )
    for w in withdrawn:
        logger.warning("%s: %s", w["file"], w["message"])
    changed = None if staging.replaces_schema else run_steps.night_changes(batches, withdrawn)  # ADR 0012
    released = _locked_rates_of(staging, release_years)
    locked = run_steps.lock_rates_scoped(
        staging.con, staging.seq, load.started_at, load.load_id, release_years, datetime.now(), changed
    )
    rates_changed = _rate_changes(released, _locked_rates_of(staging, release_years))
    if locked:
        get_run_logger().info("froze %d exchange rate(s) used by closed fiscal years", locked, extra=LINE)
    run_steps.refresh_fiscal_periods_scoped(staging.con, staging.seq, changed)
    staging.refresh_program_history(load.load_id, load.started_at)
    mismatched = check_control_totals(staging.con, sources, load.load_id, datetime.now())
    if mismatched:
        logger.warning("%d control total(s) between datasets do not hold (rule control_total_mismatch)", mismatched)
    totals = _totals(batches, unchanged, withdrawn)
    totals["files_failed"] += drop_failures(refused or [])  # a remote drop not reached (flows/remote.py)
    outcome = "partial" if totals["files_failed"] else ("nothing_new" if not batches else "success")
    staging.record_load(load, outcome, totals, datetime.now())
    staging.record_refused(load, refused or [], load.started_at)
    staging.record_failure_counts(load)
    staging.check(changed, run_steps.countries_removed(staging.con, night.countries_before))
    open_failures = staging.open_failures()
    settled = quiet_memo.settled_rates(staging.con, staging.seq, load.started_at)  # tonight's lock: nothing to freeze
    staging.publish()
    quiet_memo.remember_settled_rates(settings.warehouse, staging.seq, settled)  # the next quiet night counts none
    files = _files(batches, unchanged, withdrawn, refused)
    if len(open_failures):
        create_table_artifact(
            key="open-failures",
            table=open_failures.astype(object).where(open_failures.notna(), None).to_dict(orient="records"),
            description=f"Open validation failures after load {load.load_id} (first {len(open_failures)}; all: dcf failures)",
        )
    summary = RunSummary(load.load_id, outcome, str(settings.warehouse), files, totals, _top_rules(batches))
    return replace(summary, rates_changed=rates_changed)


def discovered(
    settings: Settings, sources: list[SourceConfig], force: bool, look: TrustedLook
) -> tuple[list[FileTask], list[FileTask], list[dict]]:
    """:func:`discover` in the flow's own body (no task run: a Prefect task run costs a night 0.1-1 s of API calls
    and parameter walking), retried as its task is (``RETRY_DELAYS``) and logged under the flow run."""
    for delay in (*RETRY_DELAYS, None):
        try:
            return discover.fn(settings, sources, force, look)
        except Exception as exc:  # as Prefect's task retries: any failure is tried again
            if delay is None:
                raise
            look.close()  # its connection may be what failed: opened again for the next try
            get_run_logger().warning("discovery failed (%s: %s); retrying in %d s", type(exc).__name__, exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # the last try raises or returns


def _rules(batch: FileBatch) -> set[str]:
    return set(batch.failures["rule"]) if batch.failures is not None and len(batch.failures) else set()


def notify_failure(flow, flow_run, state) -> None:
    """Failure hook: say loudly what failed - in the log, and to DCF_WEBHOOK_URL (JSON POST) when configured."""
    import json
    import logging
    import urllib.request

    payload = {
        "flow": flow.name,
        "flow_run": flow_run.name,
        "flow_run_id": str(flow_run.id),
        "state": state.name,
        "message": state.message,
        "parameters": flow_run.parameters,
    }
    logging.getLogger("dcf.notify").error("ingestion FAILED: %s", json.dumps(payload, default=str))
    url = os.environ.get("DCF_WEBHOOK_URL")
    if url:
        request = urllib.request.Request(
            url,
            data=json.dumps(payload, default=str).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except OSError as exc:
            logging.getLogger("dcf.notify").error("could not notify %s: %s", url, exc)


@flow(
    name="nightly-ingestion",
    task_runner=ThreadPoolTaskRunner(max_workers=max(2, os.cpu_count() or 2)),  # type: ignore[arg-type]
    log_prints=True,
    on_failure=[notify_failure],
    on_crashed=[notify_failure],
    timeout_seconds=4 * 3600,
)
def nightly_ingestion(
    inbox: str | None = None,
    warehouse: str | None = None,
    sources: str | None = None,
    reference: str | None = None,
    force: bool = False,
    rerate_fiscal_years: list[int] | None = None,
) -> RunSummary:
    """Ingest new or changed agency files from the inbox into the DuckDB warehouse.

    Paths default to the project's data/ folder (or DCF_INBOX, DCF_WAREHOUSE, DCF_SOURCES, DCF_REFERENCE).
    ``force`` re-processes every file even if unchanged. ``rerate_fiscal_years`` releases the frozen exchange
    rates of those (closed) fiscal years and re-processes every file, so they are converted at today's rates.
    """
    settings = Settings.resolve(inbox=inbox, warehouse=warehouse, sources=sources, reference=reference)
    logger = get_run_logger()
    started = datetime.now()
    configs = load_sources(settings.sources)
    release = frozenset(rerate_fiscal_years or ())
    with exclusive_lock(settings.warehouse), ExitStack() as stack:
        faultpoint("startup")
        recover(settings.warehouse, logger.info, quiet_memo.remembered_seq)  # what a run that died left behind
        ref = read_reference(settings.reference)
        look = stack.enter_context(TrustedLook(settings.warehouse))  # the last published state, opened once
        ref = replace(ref, fx_chain=ref.fx_chain.with_locks(locked_rates(settings.warehouse, release, look)))
        todo, unchanged, refused = discovered(settings, configs, force or bool(release), look)
        if todo:  # files to process: a staging copy of that file may be made; a quiet check opens it again
            look.close()
        misplaced = inbox_warnings(settings.inbox, configs)  # a folder no source reads: said, never guessed at
        for warning in misplaced:
            logger.warning("%s", warning)
        faultpoint("discovery")
        flow_run = getattr(get_run_context(), "flow_run", None)  # a task run's context has none
        load = LoadInfo(
            load_id=f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
            started_at=started,
            flow_run_id=str(flow_run.id) if flow_run else None,
            run_by=getpass.getuser(),
            inbox=str(settings.inbox),
        )
        eager = force or bool(release)  # a night that publishes whatever its files do
        with NightLoad(settings, configs, ref, load, on_reject=_rejected, eager=eager) as night:
            if eager or any(not task.retried for task in todo):  # a night that will publish
                night.prepare()  # its staging copy is made while the first files are read
            submit = lambda ft: process.submit(ft, ref, settings.archive)  # noqa: E731
            for done, (position, batch) in enumerate(in_window(submit, todo, window=IN_FLIGHT), start=1):
                for hook in _progress_hooks:
                    hook(done, len(todo), batch)
                night.offer(position, batch)  # stored in the staging copy now (flows/nightly_load.py)
            quiet = None
            if not (eager or night.opened):
                night.wait_prepared()  # the published state is asked again only once no copy is being made of it
                quiet = quiet_night(settings, configs, ref, night.batches(), unchanged, refused, load, look)
            look.close()  # asked all it is asked: a staging copy of that file may be made now
            if quiet is not None and (unreached := drop_failures(refused)):  # a remote drop not reached: exit 4
                t = {**quiet.totals, "files_failed": quiet.totals["files_failed"] + unreached}
                quiet = replace(quiet, outcome="partial", totals=t)
            if quiet is not None:
                night.discard()  # a staging copy made ahead, unused: nothing is published
            summary = quiet or load_and_publish(settings, night, unchanged, configs, load, release, refused)
        summary = replace(summary, warnings=misplaced)
    logger.info("load %s: %s; warehouse %s", summary.load_id, summary.outcome, summary.warehouse)
    create_markdown_artifact(
        markdown=_summary_markdown(summary),
        key="nightly-ingestion-summary",
        description="Files and row counts of this ingestion run",
    )
    return summary


def run_locally(flow_fn, **parameters):
    """Run a flow in this process, as the ``dcf`` commands and ``python -m flows.nightly`` do.

    With no Prefect API configured, Prefect's local server is started as a child of this process for the run
    (flows/prefect_local.py: waited for as long as a first start on a busy machine needs, never outliving this
    process, heartbeats off). Against a configured server (PREFECT_API_URL) nothing changes.
    """
    from flows.prefect_local import local_prefect

    with local_prefect(notify=lambda message: logging.getLogger("dcf").warning("%s", message)):
        return flow_fn(**parameters)


def dask_runner(address: str | None = None, n_workers: int | None = None):
    """Per-file work on Dask: an existing cluster at ``address`` (e.g. tcp://scheduler:8786) or a LocalCluster of
    worker processes on this machine (docs/scaling.md)."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": n_workers or os.cpu_count() or 2,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


def configured_flow():
    """The nightly flow with the task runner the environment asks for: DCF_DASK_ADDRESS (an existing Dask cluster),
    DCF_TASK_RUNNER=dask (a LocalCluster), else the default thread pool."""
    address = os.environ.get("DCF_DASK_ADDRESS")
    if address or os.environ.get("DCF_TASK_RUNNER", "threads") == "dask":
        return nightly_ingestion.with_options(task_runner=dask_runner(address))
    return nightly_ingestion


def run_nightly(**parameters) -> RunSummary:
    """The nightly flow, run locally (see :func:`run_locally`), on the configured task runner."""
    return run_locally(configured_flow(), **parameters)


if __name__ == "__main__":
    run_nightly()

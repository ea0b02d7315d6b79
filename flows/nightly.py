"""The nightly ingestion flow: discover -> process each new or changed file -> load, check, publish.

Runs with no Prefect server configured (Prefect starts a temporary local one). A task per file, never per row.
"""

from __future__ import annotations

import functools
import getpass
import logging
import os
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows import archive
from flows.discover import describe_refused, inbox_warnings, scan_inbox
from flows.preflight import shown
from flows.process import FileTask, describe_seen, process_file
from flows.reference import config_hash, read_reference, reference_fingerprint
from flows.retry import RetryPolicy, retry_io, unreadable_message
from schemas.batch import FileBatch
from schemas.settings import Settings
from schemas.sources import SourceConfig, load_sources
from transforms.failures import file_failure
from transforms.reference import Reference, country_dimension
from warehouse.faults import faultpoint
from warehouse.store import (
    SCHEMA_VERSION,
    LoadInfo,
    Staging,
    WarehouseError,
    archived_current_files,
    exclusive_lock,
    explain,
    known_versions,
    locked_rates,
    read_only,
    recover,
    schema_version,
    trusted,
)

MAX_LOGGED_FAILURES = 5

#: called as hook(done, total, batch) when a file finishes; the CLI sets it to drive a progress bar on a terminal
_progress_hooks: list = []


def on_file_done(hook) -> None:
    """Register a progress callback for runs in this process (``dcf run`` shows a bar with it)."""
    _progress_hooks.append(hook)


@dataclass
class RunSummary:
    load_id: str
    outcome: str  # success | partial | nothing_new
    warehouse: str
    files: list[dict] = field(default_factory=list)  # one dict per file seen
    totals: dict[str, int] = field(default_factory=dict)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)  # (rule, failures) most frequent first
    warnings: list[str] = field(default_factory=list)  # what in the inbox no source reads (flows/discover.py)

    @property
    def exit_code(self) -> int:
        return 4 if self.outcome == "partial" else 0


class InboxUnavailable(OSError):
    """The inbox folder itself cannot be reached: the run fails (and notifies) rather than load an empty night."""


@task(name="discover", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])
def discover(
    settings: Settings, sources: list[SourceConfig], force: bool = False
) -> tuple[list[FileTask], list[FileTask], list[dict]]:
    """Hash every inbox file; split into (to process, unchanged, refused). Unchanged = same bytes, same config, and
    its last load did not fail (a failure's cause may lie outside the file: a limit since raised, a share that was
    down, so a failed file is tried again every run); refused = entries never read (links leaving the inbox, FIFOs,
    ...), as run-summary rows with the reason."""
    logger = get_run_logger()
    ref_fp = reference_fingerprint(settings.reference)
    yaml_by_agency = {
        s.agency: p
        for p in settings.sources.glob("*.yaml")
        for s in sources
        if p.stem.lower() == s.inbox_dir.lower() or p.stem.upper() == s.agency
    }
    known = set() if force else known_versions(settings.warehouse)
    loaded = known - failed_versions(settings.warehouse) if known else known
    todo: list[FileTask] = []
    unchanged: list[FileTask] = []
    policy = RetryPolicy.from_env()
    for delay in [*policy.delays(), None]:  # a share that is down: wait for it, then fail the run loudly
        if settings.inbox.is_dir():
            break
        if delay is None:
            raise InboxUnavailable(
                f"inbox {settings.inbox} is not reachable (missing, or the share is down) after "
                f"{policy.attempts} tries over {policy.total_wait:.1f} s; nothing was loaded"
            )
        logger.warning("inbox %s is not reachable; retrying in %.1f s", settings.inbox, delay)
        time.sleep(delay)
    found, odd = scan_inbox(settings.inbox, sources)
    for entry in odd:
        logger.warning("refused, not read: %s", describe_refused(entry, settings.inbox))
    refused = [{"file": _key(path, src, settings), "status": "refused", "message": reason} for path, src, reason in odd]
    for path, src in found:
        rel = path.relative_to(settings.inbox / src.inbox_dir).as_posix()
        yaml_path = yaml_by_agency.get(src.agency)
        ch = config_hash(yaml_path, ref_fp) if yaml_path else ref_fp[:16]
        key = _key(path, src, settings)
        try:  # one unreadable file must not stop the others: retried with backoff, then recorded as failed
            digest, size, mtime, seen = retry_io(functools.partial(describe_seen, path), key, policy, logger.warning)
        except FileNotFoundError:
            logger.warning("%s: disappeared while the inbox was being listed; skipped this run", key)
            continue
        except OSError as exc:
            todo.append(
                FileTask(
                    path,
                    key,
                    "unreadable",
                    ch,
                    0,
                    None,
                    src,
                    src.spec_for(rel),
                    read_error=unreadable_message(path, exc, policy),
                )
            )
            continue
        ft = FileTask(path, key, digest, ch, size, mtime, src, src.spec_for(rel), seen=seen)
        (unchanged if (ft.file_key, digest, ch) in loaded else todo).append(ft)
    in_inbox = {t.file_key for t in todo + unchanged}
    by_agency = {s.agency: s for s in sources}
    for key, digest, stored in archived_current_files(settings.warehouse):  # withdrawn from the inbox, rows kept
        kept, owner = archive.present(stored), by_agency.get(key.split("/", 1)[0])
        if key in in_inbox or owner is None or kept is None:
            continue
        rel = key.split("/", 1)[1]
        yaml_path = yaml_by_agency.get(owner.agency)
        ch = config_hash(yaml_path, ref_fp) if yaml_path else ref_fp[:16]
        if (key, digest, ch) not in known:  # a changed mapping or layout: re-processed from the raw archive
            st = kept.stat()
            todo.append(
                FileTask(
                    kept, key, digest, ch, st.st_size, datetime.fromtimestamp(st.st_mtime), owner, owner.spec_for(rel)
                )
            )
    logger.info(
        "inbox %s: %d file(s), %d new or changed, %d unchanged",
        settings.inbox,
        len(todo) + len(unchanged),
        len(todo),
        len(unchanged),
    )
    return todo, unchanged, refused


def failed_versions(warehouse: Path) -> set[tuple[str, str, str]]:
    """(file_key, file_hash, config_hash) of the current files whose last load failed (last published state)."""
    source = trusted(warehouse)
    if source is None:
        return set()
    with read_only(source) as con:
        if schema_version(con) != SCHEMA_VERSION:
            return set()
        rows = con.execute(
            "SELECT file_key, file_hash, config_hash FROM audit_source_file WHERE is_current AND status = 'failed'"
        ).fetchall()
    return {(key, digest, config) for key, digest, config in rows}


# no task timeout: tasks run in worker threads, which Prefect cannot interrupt (it only warned, once per file); a
# file's work is bounded by the declared limits (flows/limits.py) and the flow's own timeout
@task(name="process-file", task_run_name="process {file_task.file_key}", cache_policy=NO_CACHE)
def process(file_task: FileTask, reference: Reference, archive_root: Path) -> FileBatch:
    logger = get_run_logger()
    batch = process_file(file_task, reference, log=logger.warning)
    faultpoint("reading")
    if not file_task.read_error and batch.file_hash != "unreadable" and "file_too_large" not in _rules(batch):
        try:  # every received file is kept (content-addressed), so re-processing never needs the inbox
            kept = archive.keep(file_task.path, batch.file_hash, archive_root)
        except OSError as exc:
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
        )
        failures = batch.failures
        for row in list(failures.itertuples())[:MAX_LOGGED_FAILURES] if failures is not None and len(failures) else []:
            logger.warning("%s row %s: %s [%s]", batch.file_key, row.excel_row, row.message, row.rule)
        if failures is not None and len(failures) > MAX_LOGGED_FAILURES:
            logger.warning(
                "%s: %d more failure(s); see 'dcf failures'", batch.file_key, len(failures) - MAX_LOGGED_FAILURES
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
    return replace(
        batch,
        status="failed",
        message=message,
        rows=None,
        quarantined=None,
        skipped=None,
        rows_read=0,
        tables={},
        failures=file_failure(rule, message),
    )


def _dimensions(reference: Reference, sources: list[SourceConfig]):
    agencies = pd.DataFrame(
        [
            (s.agency, s.name_en, s.name_ar, s.fiscal_year_start_month, s.fiscal_year_label, s.number_locale)
            for s in sources
        ],
        columns=["agency_code", "name_en", "name_ar", "fiscal_year_start_month", "fiscal_year_label", "number_locale"],
    )
    return {"dim_agency": agencies, "dim_country": country_dimension(reference), "dim_category": reference.categories}


@task(name="load-and-publish", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def load_and_publish(
    settings: Settings,
    batches: list[FileBatch],
    unchanged: list[FileTask],
    reference: Reference,
    sources: list[SourceConfig],
    load: LoadInfo,
    release_years: frozenset[int] = frozenset(),
    refused: list[dict] | None = None,
) -> RunSummary:
    """Everything goes into a staging copy; checks; one atomic publish. A failure leaves the published state as it
    was and removes the staging copy."""
    logger = get_run_logger()
    staging = None
    try:
        staging = Staging(settings.warehouse, log=logger.info)
        for table, frame in _dimensions(reference, sources).items():
            staging.replace_dimension(table, frame)
        batches = staging.load_batches(batches, load, datetime.now(), on_reject=_rejected)
        in_inbox = {b.file_key for b in batches if not _archived(b.path, settings)} | {
            u.file_key for u in unchanged if not _archived(u.path, settings)
        }
        folderless = {
            s.agency for s in sources if not (settings.inbox / s.inbox_dir).is_dir()
        }  # never guess: a missing
        withdrawn = staging.mark_withdrawn(
            in_inbox,
            {s.agency: s.withdrawn for s in sources},
            datetime.now(),  # folder withdraws nothing
            skip_agencies=folderless,
        )
        for w in withdrawn:
            logger.warning("%s: %s", w["file"], w["message"])
        locked = staging.lock_closed_rates(load.started_at, load.load_id, release_years)
        if locked:
            get_run_logger().info("froze %d exchange rate(s) used by closed fiscal years", locked)
        staging.refresh_fiscal_periods()
        staging.refresh_program_history(load.load_id, load.started_at)
        totals = {
            "files_seen": len(batches) + len(unchanged),
            "files_processed": len(batches),
            "files_unchanged": len(unchanged),
            "files_failed": sum(b.status == "failed" for b in batches),
            "files_withdrawn": len(withdrawn),
            **{
                k: sum(b.counts[k] for b in batches)
                for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_skipped")
            },
        }
        outcome = "nothing_new" if not batches else ("partial" if totals["files_failed"] else "success")
        staging.record_load(load, outcome, totals, datetime.now())
        staging.record_failure_counts(load)
        staging.check()
        open_failures = staging.open_failures()
        staging.publish()
    except BaseException as exc:
        if staging is not None:
            staging.discard()
        if (
            isinstance(exc, Exception)
            and not isinstance(exc, WarehouseError)
            and (plain := explain(exc, settings.warehouse))
        ):
            raise plain from exc
        raise
    files = [{"file": b.file_key, "status": b.status, **b.counts, "message": b.message} for b in batches]
    files += withdrawn
    files += refused or []
    files += [{"file": u.file_key, "status": "unchanged"} for u in unchanged]
    if len(open_failures):
        create_table_artifact(
            key="open-failures",
            table=open_failures.astype(object).where(open_failures.notna(), None).to_dict(orient="records"),
            description=f"Open validation failures after load {load.load_id} (first {len(open_failures)}; all: dcf failures)",
        )
    reasons = pd.concat(
        [b.failures["rule"] for b in batches if b.failures is not None and len(b.failures)] or [pd.Series(dtype=object)]
    )
    top = [(str(k), int(v)) for k, v in reasons.value_counts().head(10).items()]
    return RunSummary(load.load_id, outcome, str(settings.warehouse), files, totals, top)


def _key(path: Path, src: SourceConfig, settings: Settings) -> str:
    """The logical file (ADR 0002): AGENCY/path under its inbox folder, a name that is not UTF-8 shown escaped."""
    return f"{src.agency}/{shown(path.relative_to(settings.inbox / src.inbox_dir).as_posix())}"


def _rules(batch: FileBatch) -> set[str]:
    return set(batch.failures["rule"]) if batch.failures is not None and len(batch.failures) else set()


def _archived(path: str | Path, settings: Settings) -> bool:
    """True for a file read from the raw archive (withdrawn from the inbox), not from the inbox."""
    return Path(path).is_relative_to(settings.archive)


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


def _per_agency(files: list[dict]) -> list[str]:
    frame = pd.DataFrame([f for f in files if f["status"] not in ("unchanged", "withdrawn", "retracted", "refused")])
    if frame.empty:
        return []
    frame["agency"] = frame["file"].str.split("/").str[0]
    cols = ["rows_read", "rows_loaded", "rows_quarantined", "rows_skipped"]
    grouped = frame.groupby("agency").agg(files=("file", "count"), **{c: (c, "sum") for c in cols})
    return [
        f"| {a} | {r.files} | {r.rows_read} | {r.rows_loaded} | {r.rows_quarantined} | {r.rows_skipped} |"
        for a, r in grouped.iterrows()
    ]


def _summary_markdown(summary: RunSummary) -> str:
    t = summary.totals
    lines = [
        f"# Nightly ingestion {summary.load_id}: {summary.outcome}",
        "",
        f"{t.get('files_processed', 0)} file(s) processed, {t.get('files_unchanged', 0)} unchanged, "
        f"{t.get('files_failed', 0)} failed. Rows: {t.get('rows_read', 0)} read = {t.get('rows_loaded', 0)} loaded + "
        f"{t.get('rows_quarantined', 0)} quarantined + {t.get('rows_skipped', 0)} skipped.",
        "",
        "| agency | files | read | loaded | quarantined | skipped |",
        "|---|---:|---:|---:|---:|---:|",
        *_per_agency(summary.files),
        "",
        "| file | status | read | loaded | quarantined | skipped | message |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for f in summary.files:
        lines.append(
            f"| {f['file']} | {f['status']} | {f.get('rows_read', '')} | {f.get('rows_loaded', '')} | "
            f"{f.get('rows_quarantined', '')} | {f.get('rows_skipped', '')} | {f.get('message') or ''} |"
        )
    if summary.warnings:
        lines += ["", "Inbox warnings (not read):", "", *(f"- {w}" for w in summary.warnings)]
    if summary.top_reasons:
        lines += ["", "Top reasons rows were held back:", "", "| rule | rows |", "|---|---:|"]
        lines += [f"| {rule} | {n} |" for rule, n in summary.top_reasons]
    return "\n".join(lines)


# the ignore below: Prefect's flow() wants TaskRunner[PrefectFuture[Any]], which its own ThreadPoolTaskRunner (a
# TaskRunner[PrefectConcurrentFuture[R]], invariant) does not match; Prefect casts the same way internally
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
    with exclusive_lock(settings.warehouse):
        faultpoint("startup")
        recover(settings.warehouse, logger.info)  # what a run that died left behind
        ref = read_reference(settings.reference)
        ref = replace(ref, fx_chain=ref.fx_chain.with_locks(locked_rates(settings.warehouse, release)))
        todo, unchanged, refused = discover(settings, configs, force or bool(release))
        misplaced = inbox_warnings(settings.inbox, configs)  # a folder no source reads: said, never guessed at
        for warning in misplaced:
            logger.warning("%s", warning)
        faultpoint("discovery")
        futures = [process.submit(ft, ref, settings.archive) for ft in todo]
        position = {f.task_run_id: i for i, f in enumerate(futures)}
        finished: dict[int, FileBatch] = {}
        for future in as_completed(futures):
            finished[position[future.task_run_id]] = future.result()
            for hook in _progress_hooks:
                hook(len(finished), len(futures), finished[position[future.task_run_id]])
        batches = [finished[i] for i in range(len(futures))]
        flow_run = getattr(get_run_context(), "flow_run", None)  # a task run's context has none
        load = LoadInfo(
            load_id=f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
            started_at=started,
            flow_run_id=str(flow_run.id) if flow_run else None,
            run_by=getpass.getuser(),
            inbox=str(settings.inbox),
        )
        summary = load_and_publish(settings, batches, unchanged, ref, configs, load, release, refused)
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

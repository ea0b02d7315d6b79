"""Replay: re-normalise quarantined rows from their stored cells after a steward adds a mapping, without
re-reading any file, and load what now passes. Rows held back for a data problem (not a mapping) wait for a
corrected file instead."""

from __future__ import annotations

import getpass
import json
import uuid
from dataclasses import replace
from datetime import datetime

import pandas as pd
from prefect import flow, get_run_logger
from prefect.context import get_run_context

from flows.kinds import KINDS, REPLAYABLE_KINDS
from flows.nightly import RunSummary, _rejected, archived_task, source_yamls
from flows.process import FileTask, process_file
from flows.reference import read_reference, reference_fingerprint
from schemas.batch import FileBatch
from schemas.settings import Settings
from schemas.sources import SourceConfig, load_sources
from transforms.reference import Reference
from transforms.standardise import FileContext
from warehouse.controls import check_control_totals
from warehouse.store import (
    LoadInfo,
    Staging,
    exclusive_lock,
    locked_rates,
    read_only,
    recover,
    replay_candidates,
    trusted,
)

#: failures a reference table can fix; a row is replayed only if every open failure on it is one of these
MAPPING_RULES = ("category_unmapped", "country_unknown", "fx_rate_missing", "stage_unknown")
_STR = pd.StringDtype("pyarrow")


def replay_file(rows: pd.DataFrame, reference: Reference) -> tuple[FileBatch, list[int]]:
    """One file's quarantined rows (from replay_candidates) through its standardiser again."""
    first = rows.iloc[0]
    context = json.loads(first["context_json"])
    letters = context.pop("column_letters", {})
    context.pop("encoding", None)  # how the file was read, not how its rows are normalised
    context.setdefault("date_order", "day_first")  # rows stored before date_order existed were read day first
    ctx = FileContext(**context)
    cells = pd.DataFrame([json.loads(r) for r in rows["raw_json"]]).astype(_STR)
    cells["excel_row"] = rows["excel_row"].astype("int32").to_numpy()
    kind = KINDS[first["kind"]]
    assert kind.standardise is not None  # replay_candidates only returns replayable kinds
    result = kind.standardise(cells, ctx, reference)
    batch = FileBatch(
        file_key=first["file_key"],
        file_hash=first["file_hash"],
        config_hash=first["config_hash"],
        agency_code=first["agency_code"],
        kind=first["kind"],
        path=first["path"],
        size_bytes=0,
        modified_at=None,
        sheet=first["sheet"],
        rows=result.rows,
        rows_table=kind.rows_table,
        failures=result.failures,
        quarantined=result.quarantined,
        warned=result.warned,
        column_letters=letters,
        source_columns=ctx.source_columns,
        rows_read=len(cells),
    )
    return batch, [int(x) for x in rows["excel_row"]]


def whole_file_tasks(settings: Settings, sources: list[SourceConfig]) -> list[FileTask]:
    """Current files of the kinds that keep no row-level standardiser (records, years across columns) with an open
    failure a mapping can fix, loaded before the reference tables (or their source YAML) last changed: replay reads them
    again whole from the raw archive (their rows are never re-made from stored cells). Files the archive no longer
    holds wait for the next delivery."""
    source = trusted(settings.warehouse)
    if source is None:
        return []
    with read_only(source) as con:
        rows = con.execute(
            """
            SELECT f.file_key, f.file_hash, f.archive_path, f.config_hash FROM audit_source_file f
            WHERE f.is_current AND f.archive_path IS NOT NULL AND NOT list_contains(?, f.kind)
              AND EXISTS (SELECT 1 FROM audit_validation_failure v WHERE v.file_key = f.file_key
                          AND v.status = 'open' AND v.excel_row IS NOT NULL AND list_contains(?, v.rule))
            ORDER BY f.file_key
            """,
            [list(REPLAYABLE_KINDS), list(MAPPING_RULES)],
        ).fetchall()
    yamls, ref_fp = source_yamls(settings, sources), reference_fingerprint(settings.reference)  # once, not per file
    tasks = [
        (archived_task(settings, sources, key, digest, stored, yamls, ref_fp), was) for key, digest, stored, was in rows
    ]
    return [t for t, was in tasks if t is not None and t.config_hash != was]  # same mappings: same outcome


@flow(name="replay-quarantine", log_prints=True)
def replay_quarantine(
    warehouse: str | None = None, reference: str | None = None, sources: str | None = None
) -> RunSummary:
    """Re-normalise quarantined rows whose only problems are missing mappings, and load those that now pass; files
    of kinds without a row standardiser are read again whole from the raw archive."""
    settings = Settings.resolve(warehouse=warehouse, reference=reference, sources=sources)
    logger = get_run_logger()
    started = datetime.now()
    flow_run = getattr(get_run_context(), "flow_run", None)  # a task run's context has none
    load = LoadInfo(
        f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}-replay",
        started,
        str(flow_run.id) if flow_run else None,
        getpass.getuser(),
        "(replay)",
    )
    with exclusive_lock(settings.warehouse):
        recover(settings.warehouse, logger.info)
        ref = read_reference(settings.reference)
        ref = replace(ref, fx_chain=ref.fx_chain.with_locks(locked_rates(settings.warehouse)))
        candidates = replay_candidates(settings.warehouse, MAPPING_RULES, REPLAYABLE_KINDS)
        configs = load_sources(settings.sources)
        whole = whole_file_tasks(settings, configs)
        files, totals = (
            [],
            {
                "files_seen": 0,
                "files_processed": 0,
                "files_unchanged": 0,
                "files_failed": 0,
                "rows_read": 0,
                "rows_loaded": 0,
                "rows_quarantined": 0,
                "rows_skipped": 0,
            },
        )
        staging = Staging(settings.warehouse, log=logger.info)
        try:
            now = datetime.now()
            for file_key, rows in candidates.groupby("file_key", sort=True):
                batch, replayed = replay_file(rows, ref)
                staging.apply_replay(batch, replayed, load, now, were_loaded=int((rows["held"] == "warned").sum()))
                c = batch.counts
                logger.info(
                    "%s: %d quarantined row(s) replayed, %d now load",
                    file_key,
                    len(replayed),
                    c["rows_loaded"],
                    extra={"dcf": "line"},
                )
                files.append({"file": file_key, "status": "replayed", **c, "message": None})
                for k in ("rows_read", "rows_loaded", "rows_quarantined"):
                    totals[k] += c[k]
            for task in whole:
                before = staging.con.execute(
                    "SELECT rows_loaded FROM audit_source_file WHERE file_key = ? AND is_current", [task.file_key]
                ).fetchone()
                [batch] = staging.load_batches([process_file(task, ref)], load, now, on_reject=_rejected)
                c = batch.counts
                logger.info(
                    "%s: read again whole from the raw archive (%s), %d row(s) load",
                    task.file_key,
                    batch.status,
                    c["rows_loaded"],
                    extra={"dcf": "line"},
                )
                files.append(
                    {"file": task.file_key, "status": f"re-read ({batch.status})", **c, "message": batch.message}
                )
                totals["rows_read"] += c["rows_read"]
                totals["rows_loaded"] += c["rows_loaded"] - (before[0] if before else 0)  # rows new to the warehouse
                totals["rows_quarantined"] += c["rows_quarantined"]
            if whole:
                check_control_totals(staging.con, configs, load.load_id, now)
            totals["files_seen"] = totals["files_processed"] = len(files)
            staging.record_load(load, "replay", totals, datetime.now())
            staging.check()
            staging.publish()
        except BaseException:
            staging.discard()
            raise
    logger.info(
        "replay %s: %d row(s) re-normalised, %d loaded", load.load_id, totals["rows_read"], totals["rows_loaded"]
    )
    return RunSummary(load.load_id, "replay", str(settings.warehouse), files, totals)

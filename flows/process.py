"""One file, start to finish, short of the warehouse: read -> raw contract -> normalise -> canonical contract.

Plain functions (no Prefect) so tests call them directly and any task runner can run them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from flows.discover import IGNORED_PREFIXES, find_files, refused_entries, scan_inbox  # noqa: F401 (re-exported)
from flows.extract import (
    EXCEL_ROW,
    Extracted,
    FileReadError,
    file_sha256,
    listed,
    open_regular,
    read_source_file,
    read_workbook_grids,
    shown,
)
from flows.limits import LimitExceeded, Limits
from flows.retry import FileStillChanging, RetryPolicy, retry_io, unreadable_message, wait_until_settled
from schemas.batch import FileBatch
from schemas.rules import RULES
from schemas.sources import FileSpec, SourceConfig, WideFileSpec, kind_name
from transforms.failures import ContractError, concat_failures, failures_where, file_failure
from transforms.numbers import unit_from_header
from transforms.reference import Reference
from transforms.standardise import STANDARDISERS, FileContext
from transforms.wide import SheetLayoutError, edition_of, published_year, standardise_workbook

MAX_MESSAGE = 500  # characters in a failed file's message: one line, never a 20,000-character sheet list
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class FileTask:
    """A file found in the inbox, hashed, with the config that claims it (spec is None: no pattern matched)."""

    path: Path
    file_key: str
    file_hash: str
    config_hash: str
    size_bytes: int
    modified_at: datetime | None  # None: discovery could not stat it (read_error says why)
    source: SourceConfig
    spec: FileSpec | WideFileSpec | None
    seen: tuple[int, float] | None = (
        None  # (size, mtime) when discovery hashed it: a later change means "still copying"
    )
    read_error: str | None = None  # discovery could not read it even after retries


def describe(path: Path) -> tuple[str, int, datetime]:
    return describe_seen(path)[:3]


def describe_seen(path: Path) -> tuple[str, int, datetime, tuple[int, float]]:
    """Hash, size, mtime and the (size, mtime) pair a later look compares with (stat taken before hashing, so a
    file that grows while it is hashed shows up as changed). A file over ``DCF_MAX_FILE_BYTES`` is not read to
    hash it (an 8 GiB file would hold up the night): its version is a digest of its size and mtime, and
    :func:`process_file` refuses it."""
    st = path.stat()
    mtime = datetime.fromtimestamp(st.st_mtime, tz=UTC).replace(tzinfo=None)
    if st.st_size > Limits.from_env().max_file_bytes:
        digest = hashlib.sha256(f"not hashed: {st.st_size} bytes, mtime {st.st_mtime_ns}".encode()).hexdigest()
    else:
        digest = file_sha256(path)
    return digest, st.st_size, mtime, (st.st_size, st.st_mtime)


_log = logging.getLogger("dcf.read")


def settle(task: FileTask, policy: RetryPolicy | None = None, log=_log.warning) -> FileTask:
    """The task once its file is quiet and readable: waits (with backoff) while the file is still being written or
    a share/lock error may pass, re-hashing a file that changed since discovery. Raises FileStillChanging/OSError."""
    policy = policy or RetryPolicy.from_env()
    if task.seen is not None:
        changed, settled = wait_until_settled(task.path, task.seen, policy, log)
        if changed:
            digest, size, mtime, seen = retry_io(lambda: describe_seen(task.path), task.path.name, policy, log)
            task = replace(task, file_hash=digest, size_bytes=size, modified_at=mtime, seen=seen)
    retry_io(lambda: _probe(task.path), task.path.name, policy, log)
    return task


def _probe(path: Path) -> None:
    with open_regular(path) as fh:  # a FIFO put in the file's place is refused, never waited on
        fh.read(1)


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """A message as one line of at most ``limit`` characters, safe to log and store (names that are not UTF-8
    shown with backslash escapes, control characters and line breaks as spaces)."""
    text = " ".join(_CONTROL.sub(" ", shown(message)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failed(task: FileTask, rule: str, message: str, started: float) -> FileBatch:
    message = one_line(message)
    return FileBatch(
        file_key=shown(task.file_key),
        file_hash=task.file_hash,
        config_hash=task.config_hash,
        agency_code=task.source.agency,
        kind=kind_name(task.spec),
        path=shown(str(task.path)),
        size_bytes=task.size_bytes,
        modified_at=task.modified_at,
        status="failed",
        message=message,
        failures=file_failure(rule, message),
        seconds=time.perf_counter() - started,
    )


def _unexpected(task: FileTask, exc: Exception, started: float) -> FileBatch:
    """The last guard: any error while one file is processed fails that file alone; the traceback is for
    developers (debug log), the steward gets one line."""
    _log.debug("%s: unexpected error while processing", shown(task.file_key), exc_info=True)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return _failed(
        task,
        "file_unreadable",
        f"{shown(task.path)}: could not be processed ({type(exc).__name__}: {first}); the file was not loaded",
        started,
    )


def process_file(task: FileTask, reference: Reference, log=_log.warning) -> FileBatch:
    """Never raises for a data problem: an unreadable file comes back as a failed batch with a one-line message,
    and so does any other error while this one file is processed (``Exception``, not ``BaseException``)."""
    started = time.perf_counter()
    try:
        return _process_file(task, reference, log, started)
    except Exception as exc:  # noqa: BLE001 - one file never stops the night
        return _unexpected(task, exc, started)


def _process_file(task: FileTask, reference: Reference, log, started: float) -> FileBatch:
    if task.read_error:
        return _failed(task, "file_unreadable", task.read_error, started)
    policy = RetryPolicy.from_env()
    try:
        task = settle(task, policy, log)
    except FileStillChanging as exc:
        return _failed(task, "file_unreadable", str(exc), started)
    except FileNotFoundError:
        return _failed(
            task, "file_unreadable", f"{shown(task.path)}: file disappeared before it could be read", started
        )
    except OSError as exc:
        return _failed(task, "file_unreadable", unreadable_message(task.path, exc, policy), started)
    if task.spec is None:
        patterns = ", ".join(f"'{s.pattern}'" for s in task.source.files)
        return _failed(
            task,
            "no_source_config",
            f"{shown(task.path)}: matches none of {task.source.agency}'s file patterns ({patterns}); "
            "rename it or add a pattern to its source YAML",
            started,
        )
    spec = task.spec
    if isinstance(spec, WideFileSpec):
        return process_wide_file(task, spec, reference, started)
    try:
        extracted = read_source_file(task.path, spec, Limits.from_env())
    except LimitExceeded as exc:
        return _failed(task, "file_too_large", str(exc), started)
    except FileReadError as exc:
        rule = (
            "header_not_found" if "no header found" in str(exc) or "header should be" in str(exc) else "file_unreadable"
        )
        return _failed(task, rule, str(exc), started)
    ctx = FileContext(
        agency=task.source.agency,
        fiscal_year_start_month=task.source.fiscal_year_start_month,
        fiscal_year_label=task.source.fiscal_year_label,
        number_locale=task.source.number_locale,
        date_order=spec.date_order or task.source.date_order,
        missing=list(spec.missing),
        constants=dict(spec.constants),
        keep_rows=spec.keep_rows.model_dump(by_alias=False) if spec.keep_rows else None,
        fiscal_year_from=spec.fiscal_year_from,
        unit_factor=spec.unit_factor
        if spec.unit_factor is not None
        else unit_from_header(extracted.source_columns.get("amount")),
        fiscal_calendar=task.source.fiscal_calendar,
        default_currency=spec.default_currency,
        default_stage=spec.default_stage,
        totals_label=spec.totals_label,
        fx_policy=spec.fx.policy,
        fx_policy_by_stage={stage: policy for stage, policy in spec.fx.by_stage.items()},  # Literal keys widened to str
        fx_lookback_days=spec.fx.lookback_days,
        totals_tolerance=spec.totals_tolerance,
        severity=dict(spec.severity),
        source_columns=extracted.source_columns,
    )
    context = {**asdict(ctx), "column_letters": extracted.column_letters}
    try:
        result = STANDARDISERS[spec.kind.value](extracted.frame, ctx, reference)
    except ContractError as exc:
        return _failed(task, "canonical_contract", f"{shown(task.path)}: {exc}", started)
    held, broken = _malformed(extracted, result.quarantined)
    return FileBatch(
        file_key=shown(task.file_key),
        file_hash=task.file_hash,
        config_hash=task.config_hash,
        agency_code=task.source.agency,
        kind=spec.kind.value,
        path=shown(str(task.path)),
        size_bytes=task.size_bytes,
        modified_at=task.modified_at,
        status="loaded",
        sheet=extracted.sheet,
        header_row=extracted.header_row,
        rows=result.rows,
        failures=concat_failures([result.failures, broken]),
        quarantined=_with(result.quarantined, held),
        warned=result.warned,
        skipped=result.skipped,
        column_letters=extracted.column_letters,
        source_columns=extracted.source_columns,
        rows_read=result.rows_read + len(held),
        seconds=time.perf_counter() - started,
        context_json=json.dumps(context, ensure_ascii=False, sort_keys=True),
    )


def _malformed(extracted: Extracted, quarantined: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The CSV records the reader set aside (too few or too many fields, a quote left open) as quarantined rows and
    their failures (rule record_malformed, no column, the raw text as the value, the line in the message). Their
    cells stay empty: which field belongs to which column is what cannot be told (a field too many shifts every
    one after it), so the raw text is what the steward gets. Never standardised: they are counted read and
    quarantined, and the file's other rows load."""
    records = extracted.malformed
    columns = [c for c in quarantined.columns if c != EXCEL_ROW] or [c for c in extracted.frame if c != EXCEL_ROW]
    held = pd.DataFrame({c: pd.array([None] * len(records), dtype=pd.StringDtype("pyarrow")) for c in columns})
    held[EXCEL_ROW] = pd.array([r.excel_row for r in records], dtype="int32")
    broken = failures_where(
        held,
        pd.Series(True, index=held.index),
        None,
        "record_malformed",
        pd.Series([r.message for r in records], index=held.index),
    )
    broken["value"] = pd.array([r.text for r in records], dtype=pd.StringDtype("pyarrow"))
    return held, broken


def _with(quarantined: pd.DataFrame, held: pd.DataFrame) -> pd.DataFrame:
    if not len(held):
        return quarantined
    return pd.concat([quarantined, held], ignore_index=True).sort_values(EXCEL_ROW, kind="stable", ignore_index=True)


def process_wide_file(task: FileTask, spec: WideFileSpec, reference: Reference, started: float) -> FileBatch:
    """A years-across-columns reference workbook (e.g. SIPRI): every described sheet melted to one row per entity,
    year and measure, tagged with the edition told by the file name. Never raises (see :func:`process_file`)."""
    try:
        return _process_wide_file(task, spec, reference, started)
    except Exception as exc:  # noqa: BLE001 - one file never stops the night
        return _unexpected(task, exc, started)


def _process_wide_file(task: FileTask, spec: WideFileSpec, reference: Reference, started: float) -> FileBatch:
    name = shown(task.path)
    edition = edition_of(name, spec)
    if edition is None:
        return _failed(
            task,
            "edition_unknown",
            f"{name}: the name does not tell the edition (expected to match "
            f"'{spec.edition.file_name}'); keep the publisher's file name",
            started,
        )
    try:
        grids = read_workbook_grids(task.path, Limits.from_env())
        result = standardise_workbook(grids, spec, reference.country_lookup)
    except LimitExceeded as exc:
        return _failed(task, "file_too_large", str(exc), started)
    except FileReadError as exc:
        return _failed(task, "file_unreadable", str(exc), started)
    except SheetLayoutError as exc:
        return _failed(
            task, "sheet_missing" if str(exc).startswith("no ") else "header_not_found", f"{name}: {exc}", started
        )
    tag = {"dataset": spec.dataset, "edition": edition["edition"]}
    values = result.values.assign(**tag)
    footnotes = result.footnotes.rename(columns={"key": "mark"}).assign(**tag)
    ignored = [g.name for g in grids if g.name not in result.sheets]
    bases = sorted({int(v["price_base_year"]) for v in result.captured.values() if v.get("price_base_year")})
    as_int = lambda v: int(v) if v is not None and str(v).isdigit() else None  # noqa: E731
    edition_row = pd.DataFrame(
        [
            {
                **tag,
                "file_key": shown(task.file_key),
                "published_year": published_year(grids, spec.edition.published),
                "first_year": as_int(edition.get("first_year")),
                "last_year": as_int(edition.get("last_year")),
                "price_base_year": bases[-1] if bases else None,
                "sheets": result.sheets,
                "sheets_ignored": ignored,
            }
        ]
    )
    context = {
        "dataset": spec.dataset,
        **edition,
        "header_rows": result.header_rows,
        "captured": result.captured,
        "sheets_ignored": ignored,
    }
    return FileBatch(
        file_key=shown(task.file_key),
        file_hash=task.file_hash,
        config_hash=task.config_hash,
        agency_code=task.source.agency,
        kind=spec.kind,
        path=shown(str(task.path)),
        size_bytes=task.size_bytes,
        modified_at=task.modified_at,
        status="loaded",
        sheet="",
        failures=result.failures,
        quarantined=result.quarantined if len(result.quarantined) else None,
        skipped=result.skipped,
        rows_read=result.rows_read,
        tables={"ref_series_value": values, "ref_series_footnote": footnotes, "ref_series_edition": edition_row},
        message=(
            one_line(f"sheets not described by the source config, not loaded: {listed(ignored)}") if ignored else None
        ),
        seconds=time.perf_counter() - started,
        context_json=json.dumps(context, ensure_ascii=False, sort_keys=True),
    )


def rule_title(rule: str) -> str:
    return RULES[rule].title if rule in RULES else rule

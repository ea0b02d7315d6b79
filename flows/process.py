"""One file, start to finish, short of the warehouse: read -> raw contract -> normalise -> canonical contract.

Plain functions (no Prefect) so tests call them directly and any task runner can run them.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from flows.extract import FileReadError, file_sha256, read_source_file
from schemas.batch import FileBatch
from schemas.rules import RULES
from schemas.sources import FileSpec, SourceConfig
from transforms.failures import ContractError, file_failure
from transforms.numbers import unit_from_header
from transforms.reference import Reference
from transforms.standardise import STANDARDISERS, FileContext

IGNORED_PREFIXES = ("~$", ".", "MANIFEST")


@dataclass(frozen=True)
class FileTask:
    """A file found in the inbox, hashed, with the config that claims it (spec is None: no pattern matched)."""

    path: Path
    file_key: str
    file_hash: str
    config_hash: str
    size_bytes: int
    modified_at: datetime
    source: SourceConfig
    spec: FileSpec | None


def describe(path: Path) -> tuple[str, int, datetime]:
    st = path.stat()
    return file_sha256(path), st.st_size, datetime.fromtimestamp(st.st_mtime, tz=timezone.utc).replace(tzinfo=None)


def find_files(inbox: Path, sources: list[SourceConfig]) -> list[tuple[Path, SourceConfig]]:
    """Every file in each agency's inbox folder (recursively), sorted; Office lock files and dot-files ignored."""
    found = []
    for src in sources:
        folder = inbox / src.inbox_dir
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if not path.name.startswith(IGNORED_PREFIXES):
                found.append((path, src))
    return found


def _failed(task: FileTask, rule: str, message: str, started: float) -> FileBatch:
    return FileBatch(
        file_key=task.file_key, file_hash=task.file_hash, config_hash=task.config_hash,
        agency_code=task.source.agency, kind=task.spec.kind.value if task.spec else None, path=str(task.path),
        size_bytes=task.size_bytes, modified_at=task.modified_at, status="failed", message=message,
        failures=file_failure(rule, message), seconds=time.perf_counter() - started,
    )


def process_file(task: FileTask, reference: Reference) -> FileBatch:
    """Never raises for a data problem: an unreadable file comes back as a failed batch with a message."""
    started = time.perf_counter()
    if task.spec is None:
        patterns = ", ".join(f"'{s.pattern}'" for s in task.source.files)
        return _failed(task, "no_source_config", f"{task.path.name}: matches none of {task.source.agency}'s file patterns ({patterns}); "
                       "rename it or add a pattern to its source YAML", started)
    spec = task.spec
    try:
        extracted = read_source_file(task.path, spec)
    except FileReadError as exc:
        rule = "header_not_found" if "header" in str(exc) else "file_unreadable"
        return _failed(task, rule, str(exc), started)
    ctx = FileContext(
        agency=task.source.agency,
        fiscal_year_start_month=task.source.fiscal_year_start_month,
        fiscal_year_label=task.source.fiscal_year_label,
        number_locale=task.source.number_locale,
        unit_factor=spec.unit_factor if spec.unit_factor is not None else unit_from_header(extracted.source_columns.get("amount")),
        fiscal_calendar=task.source.fiscal_calendar,
        default_currency=spec.default_currency,
        default_stage=spec.default_stage,
        totals_label=spec.totals_label,
        fx_policy=spec.fx.policy,
        fx_policy_by_stage=dict(spec.fx.by_stage),
        fx_lookback_days=spec.fx.lookback_days,
        totals_tolerance=spec.totals_tolerance,
        severity=dict(spec.severity),
        source_columns=extracted.source_columns,
    )
    context = {**asdict(ctx), "column_letters": extracted.column_letters}
    try:
        result = STANDARDISERS[spec.kind.value](extracted.frame, ctx, reference)
    except ContractError as exc:
        return _failed(task, "canonical_contract", f"{task.path.name}: {exc}", started)
    return FileBatch(
        file_key=task.file_key, file_hash=task.file_hash, config_hash=task.config_hash,
        agency_code=task.source.agency, kind=spec.kind.value, path=str(task.path), size_bytes=task.size_bytes,
        modified_at=task.modified_at, status="loaded", sheet=extracted.sheet, header_row=extracted.header_row,
        rows=result.rows, failures=result.failures, quarantined=result.quarantined, skipped=result.skipped,
        column_letters=extracted.column_letters, source_columns=extracted.source_columns,
        rows_read=result.rows_read, seconds=time.perf_counter() - started,
        context_json=json.dumps(context, ensure_ascii=False, sort_keys=True),
    )


def rule_title(rule: str) -> str:
    return RULES[rule].title if rule in RULES else rule

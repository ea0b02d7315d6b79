"""Kinds ``budget`` and ``programs``: an agency's table (a sheet or a CSV) with its columns mapped by header aliases,
each row standardised to a funding line or a programme by a pure standardiser (transforms/standardise.py)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import pandas as pd

from flows.extract import EXCEL_ROW, Extracted, FileReadError, read_source_file, shown
from flows.kinds.base import Kind, batch_of, failed
from flows.limits import LimitExceeded, Limits
from schemas.sources import FileSpec
from transforms.failures import ContractError, concat_failures, failures_where
from transforms.numbers import unit_from_header
from transforms.reference import Reference
from transforms.standardise import FileContext, standardise_budget, standardise_programs

if TYPE_CHECKING:
    from flows.process import FileTask
    from schemas.batch import FileBatch


def read_extracted(task: FileTask, spec, started: float) -> Extracted | FileBatch:
    """The file's mapped cells, or the failed batch saying why they cannot be read (shared by the table kinds)."""
    try:
        return read_source_file(task.path, spec, Limits.from_env())
    except LimitExceeded as exc:
        return failed(task, "file_too_large", str(exc), started)
    except FileReadError as exc:
        text = str(exc)
        rule = "header_not_found" if "no header found" in text or "header should be" in text else "file_unreadable"
        return failed(task, rule, text, started)


def context_for(task: FileTask, spec: FileSpec, extracted: Extracted) -> FileContext:
    source = task.source
    return FileContext(
        agency=source.agency,
        fiscal_year_start_month=source.fiscal_year_start_month,
        fiscal_year_label=source.fiscal_year_label,
        number_locale=source.number_locale,
        date_order=spec.date_order or source.date_order,
        missing=list(spec.missing),
        constants=dict(spec.constants),
        keep_rows=spec.keep_rows.model_dump(by_alias=False) if spec.keep_rows else None,
        fiscal_year_from=spec.fiscal_year_from,
        unit_factor=spec.unit_factor
        if spec.unit_factor is not None
        else unit_from_header(extracted.source_columns.get("amount")),
        fiscal_calendar=source.fiscal_calendar,
        default_currency=spec.default_currency,
        default_stage=spec.default_stage,
        totals_label=spec.totals_label,
        fx_policy=spec.fx.policy,
        fx_policy_by_stage={stage: policy for stage, policy in spec.fx.by_stage.items()},  # Literal keys widened
        fx_lookback_days=spec.fx.lookback_days,
        totals_tolerance=spec.totals_tolerance,
        severity=dict(spec.severity),
        source_columns=extracted.source_columns,
    )


def _process(task: FileTask, spec: FileSpec, reference: Reference, started: float) -> FileBatch:
    extracted = read_extracted(task, spec, started)
    if not isinstance(extracted, Extracted):
        return extracted
    ctx = context_for(task, spec, extracted)
    context = {**asdict(ctx), "column_letters": extracted.column_letters, "encoding": spec.encoding}
    kind = KINDS_BY_NAME[spec.kind.value]
    assert kind.standardise is not None
    try:
        result = kind.standardise(extracted.frame, ctx, reference)
    except ContractError as exc:
        return failed(task, "canonical_contract", f"{shown(task.path)}: {exc}", started)
    held, broken = malformed_rows(extracted, result.quarantined)
    return batch_of(
        task,
        started,
        sheet=extracted.sheet,
        header_row=extracted.header_row,
        rows=result.rows,
        rows_table=kind.rows_table,
        failures=concat_failures([result.failures, broken]),
        quarantined=with_held(result.quarantined, held),
        warned=result.warned,
        skipped=result.skipped,
        column_letters=extracted.column_letters,
        source_columns=extracted.source_columns,
        rows_read=result.rows_read + len(held),
        context_json=json.dumps(context, ensure_ascii=False, sort_keys=True),
    )


def malformed_rows(extracted: Extracted, quarantined: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
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


def with_held(quarantined: pd.DataFrame, held: pd.DataFrame) -> pd.DataFrame:
    if not len(held):
        return quarantined
    return pd.concat([quarantined, held], ignore_index=True).sort_values(EXCEL_ROW, kind="stable", ignore_index=True)


BUDGET = Kind(
    "budget",
    _process,
    rows_table="fact_funding_line",
    standardise=standardise_budget,
    description="an agency's budget lines: one funding line per row, converted to US$",
)
PROGRAMS = Kind(
    "programs",
    _process,
    rows_table="dim_program",
    standardise=standardise_programs,
    description="an agency's programme register: one programme per row",
)
KINDS_BY_NAME = {k.name: k for k in (BUDGET, PROGRAMS)}

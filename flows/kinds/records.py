"""Kind ``records``: any long-format table (a CSV or one sheet) whose columns the source YAML declares with a type,
loaded into a named dataset (table record_value, view ``records_<dataset>``). The reader is the table kinds' (header
aliases, broken CSV records set aside with their line); the standardiser is transforms/records.py."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import pandas as pd

from flows.extract import Extracted
from flows.kinds.base import Kind, batch_of
from flows.kinds.table import malformed_rows, read_extracted, with_held
from schemas.sources import RecordsFileSpec
from transforms.failures import concat_failures
from transforms.records import RecordsContext, long_values, standardise_records
from transforms.reference import Reference

if TYPE_CHECKING:
    from flows.process import FileTask
    from schemas.batch import FileBatch


def context_for(task: FileTask, spec: RecordsFileSpec, extracted: Extracted) -> RecordsContext:
    return RecordsContext(
        agency=task.source.agency,
        dataset=spec.dataset,
        columns={name: col.model_dump() for name, col in spec.columns.items()},
        date_order=spec.date_order or task.source.date_order,
        number_locale=task.source.number_locale,
        missing=list(spec.missing),
        constants=dict(spec.constants),
        keep_rows=spec.keep_rows.model_dump(by_alias=False) if spec.keep_rows else None,
        key=list(spec.key),
        fx_lookback_days=spec.fx.lookback_days,
        severity=dict(spec.severity),
        source_columns=extracted.source_columns,
    )


def _process(task: FileTask, spec: RecordsFileSpec, reference: Reference, started: float) -> FileBatch:
    extracted = read_extracted(task, spec, started)
    if not isinstance(extracted, Extracted):
        return extracted
    ctx = context_for(task, spec, extracted)
    result = standardise_records(extracted.frame, ctx, reference)
    held, broken = malformed_rows(extracted, result.quarantined)
    values = long_values(result.rows, result.fields, spec.dataset).assign(sheet=extracted.sheet)
    fields = result.fields.assign(
        dataset=spec.dataset,
        ordinal=range(1, len(result.fields) + 1),
        dataset_description=spec.description,
    )
    context = {**asdict(ctx), "column_letters": extracted.column_letters, "encoding": spec.encoding}
    return batch_of(
        task,
        started,
        sheet=extracted.sheet,
        header_row=extracted.header_row,
        failures=concat_failures([result.failures, broken]),
        quarantined=with_held(result.quarantined, held),
        skipped=result.skipped,
        column_letters=extracted.column_letters,
        source_columns=extracted.source_columns,
        rows_read=result.rows_read + len(held),
        tables={"record_value": values, "record_field": pd.DataFrame(fields)},
        context_json=json.dumps(context, ensure_ascii=False, sort_keys=True, default=str),
    )


RECORDS = Kind(
    "records",
    _process,
    description="any long-format table, columns typed by the source YAML, into a named dataset (records_<dataset>)",
)

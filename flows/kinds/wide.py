"""Kind ``years_across_columns``: a publisher's reference workbook (e.g. SIPRI's military expenditure) with one
entity per row and one year per column, melted to one value per entity, year and measure, tagged with the edition
its file name tells and its content confirms (the years it holds)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

from flows.extract import FileReadError, listed, read_workbook_grids, shown
from flows.kinds.base import Kind, batch_of, failed, one_line
from flows.limits import LimitExceeded, Limits
from schemas.sources import WideFileSpec
from transforms.reference import Reference
from transforms.wide import (
    SheetLayoutError,
    edition_contradiction,
    edition_of,
    published_year,
    standardise_workbook,
)

if TYPE_CHECKING:
    from flows.process import FileTask
    from schemas.batch import FileBatch


def _process(task: FileTask, spec: WideFileSpec, reference: Reference, started: float) -> FileBatch:
    name = shown(task.path)
    edition = edition_of(name, spec)
    if edition is None:
        return failed(
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
        return failed(task, "file_too_large", str(exc), started)
    except FileReadError as exc:
        return failed(task, "file_unreadable", str(exc), started)
    except SheetLayoutError as exc:
        return failed(
            task, "sheet_missing" if str(exc).startswith("no ") else "header_not_found", f"{name}: {exc}", started
        )
    contradiction = edition_contradiction(edition, result.values)
    if contradiction is not None:
        return failed(task, "edition_mismatch", f"{name}: {contradiction}", started)
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
    return batch_of(
        task,
        started,
        sheet="",
        failures=result.failures,
        quarantined=result.quarantined if len(result.quarantined) else None,
        skipped=result.skipped,
        rows_read=result.rows_read,
        tables={"ref_series_value": values, "ref_series_footnote": footnotes, "ref_series_edition": edition_row},
        message=(
            one_line(f"sheets not described by the source config, not loaded: {listed(ignored)}") if ignored else None
        ),
        context_json=json.dumps(context, ensure_ascii=False, sort_keys=True),
    )


YEARS_ACROSS_COLUMNS = Kind(
    "years_across_columns",
    _process,
    description="a reference workbook with years across the columns, one entity per row (tables ref_series_*)",
)

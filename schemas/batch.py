"""What one processed file hands to the warehouse: plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime

import pandas as pd


@dataclass
class FileBatch:
    file_key: str  # "<AGENCY>/<name relative to the agency's inbox folder>": the logical file
    file_hash: str  # sha256 of the bytes: the version
    config_hash: str  # sha256 of the source YAML and the reference tables it was normalised with
    agency_code: str
    kind: str | None
    path: str
    size_bytes: int
    modified_at: datetime | None
    status: str = "loaded"  # loaded | failed
    message: str | None = None
    sheet: str = ""
    header_row: int | None = None
    rows: pd.DataFrame | None = None  # FundingLine or Program rows
    rows_table: str | None = None  # the table ``rows`` go to (the file kind's, flows/kinds)
    failures: pd.DataFrame | None = None  # schemas.frames.Failure
    quarantined: pd.DataFrame | None = None  # raw cells + excel_row
    warned: pd.DataFrame | None = None  # raw cells + excel_row of loaded rows with a replayable mapping warning
    skipped: pd.DataFrame | None = None  # excel_row, reason, label, stated_amount
    column_letters: dict[str, str] = field(default_factory=dict)
    source_columns: dict[str, str] = field(default_factory=dict)
    rows_read: int = 0
    seconds: float = 0.0
    context_json: str | None = None  # the standardiser's FileContext, kept so quarantined rows can be replayed
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # reference files: target table -> rows
    archive_path: str | None = None  # the received bytes in the raw archive (flows/archive.py)
    kept_counts: dict[str, int] | None = None  # the counts of a batch whose frames were dropped once stored (slim)

    @property
    def counts(self) -> dict[str, int]:
        if self.kept_counts is not None:
            return dict(self.kept_counts)
        n = lambda df: 0 if df is None else len(df)  # noqa: E731
        return {
            "rows_read": self.rows_read,
            "rows_loaded": n(self.rows) + self._source_rows_in_tables(),
            "rows_quarantined": n(self.quarantined),
            "rows_skipped": n(self.skipped),
        }

    def slim(self) -> FileBatch:
        """This batch once its rows are stored: the counts kept, the frames dropped (only the failures' rules stay,
        for the run's summary), so a night holds the few files in flight in memory, never all of them."""
        failures = self.failures[["rule"]] if self.failures is not None and "rule" in self.failures else self.failures
        return replace(
            self,
            kept_counts=self.counts,
            rows=None,
            failures=failures,
            quarantined=None,
            warned=None,
            skipped=None,
            tables={},
        )

    def release(self) -> None:
        """Become :meth:`slim` in place, for every holder of this object: the flow keeps the batch it offered (its
        loop variable) until the next file finishes, and with it one more file's frames while the workers read."""
        slim = self.slim()
        for f in fields(self):
            setattr(self, f.name, getattr(slim, f.name))

    def _source_rows_in_tables(self) -> int:
        """Source rows behind the reference tables: one row of a sheet may become many values (one per year), so
        count distinct (sheet, Excel row) in every frame that carries them."""
        return sum(
            len(df[["sheet", "excel_row"]].drop_duplicates())
            for df in self.tables.values()
            if {"sheet", "excel_row"} <= set(df.columns)
        )

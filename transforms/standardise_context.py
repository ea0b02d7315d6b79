"""What a table standardiser (budget, programs) is given and gives back, as plain data: the file's
:class:`FileContext` (its source's declared options) and the :class:`Standardised` result (rows, failures,
quarantined, skipped and warned rows, with their counts). Re-exported by ``transforms/standardise.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class FileContext:
    """What the standardiser needs to know about the file, as plain data."""

    agency: str
    fiscal_year_start_month: int = 1
    fiscal_year_label: str = "end"
    fiscal_calendar: str = "gregorian"
    number_locale: str = "en"
    date_order: str | None = None  # day_first | month_first | None (dates that read both ways fail)
    unit_factor: float = 1.0
    default_currency: str | None = None
    default_stage: str | None = None
    totals_label: str | None = None
    fx_policy: str = "fiscal_period_average"
    fx_policy_by_stage: dict[str, str] = field(default_factory=dict)
    fx_lookback_days: int = 7
    totals_tolerance: float = 0.0001  # relative difference allowed between a stated total and the lines' sum
    severity: dict[str, str] = field(default_factory=dict)  # rule -> block | warn, overriding the catalogue
    source_columns: dict[str, str] = field(default_factory=dict)  # canonical -> header text in the file
    missing: list[str] = field(default_factory=list)  # cell texts meaning "no value" (trimmed, any case)
    constants: dict[str, str] = field(default_factory=dict)  # canonical column -> the value of every row
    keep_rows: dict | None = None  # {"column", "values" | "matches"}: rows in scope; the rest skipped as filtered
    fiscal_year_from: str | None = None  # a date column that gives the fiscal year where the file states none

    def header(self, column: str) -> str:
        return self.source_columns.get(column, column)


@dataclass
class Standardised:
    rows: pd.DataFrame  # canonical rows that pass (FundingLine or Program)
    failures: pd.DataFrame  # schemas.frames.Failure
    quarantined: pd.DataFrame  # the raw cells of rows with a blocking failure (+ excel_row)
    skipped: pd.DataFrame  # excel_row, reason (blank/total), label, stated_amount
    rows_read: int
    #: the raw cells (+ excel_row) of loaded rows that carry a replayable mapping warning (REPLAYABLE_WARNINGS)
    warned: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "rows_loaded": len(self.rows),
            "rows_quarantined": len(self.quarantined),
            "rows_skipped": len(self.skipped),
        }

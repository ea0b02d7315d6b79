"""The checks and the finish a table standardiser shares (budget, programs; some also the records standardiser):
the raw Pandera contract, countries mapped with a safe suggestion, date failures (unreadable, ambiguous, out of the
storable range), the totals row reconciled with the lines above it, the source's severities applied, warned rows
flagged, and the passing rows validated against the canonical contract (:func:`_finish`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas.rules import REPLAYABLE_WARNINGS
from transforms import countries, dates
from transforms.failures import concat_failures, empty_failures, failures_where, from_pandera
from transforms.reference import Reference
from transforms.rows import TOTAL
from transforms.standardise_context import FileContext, Standardised
from transforms.text import as_text, missing_text

_STR = pd.StringDtype("pyarrow")


def _raw_contract(model: type[pa.DataFrameModel], data: pd.DataFrame, ctx: FileContext) -> pd.DataFrame:
    try:  # on a shallow copy, in place: pandera would otherwise copy every cell first (the contract coerces nothing)
        model.validate(data.copy(deep=False), lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        return from_pandera(exc.failure_cases, data, ctx.source_columns)
    return empty_failures()


def _finish(
    canonical: pd.DataFrame,
    model: type[pa.DataFrameModel],
    data: pd.DataFrame,
    failures: pd.DataFrame,
    skipped: pd.DataFrame,
    rows_read: int,
    ctx: FileContext,
) -> Standardised:
    """Apply the source's severities; quarantine blocked rows; flag warned ones; validate the rest against the
    strict canonical contract."""
    failures, blocked, warned = apply_severity(failures, ctx.severity)
    canonical = canonical.assign(warning_rules=warning_rules(data, warned))
    canonical = canonical[list(model.to_schema().columns)]
    rows, failures, blocked = validate_passing(
        model.to_schema(), canonical, data, failures, blocked, ctx.source_columns
    )
    quarantined = rows_held(data, blocked)
    replayable = warned[warned["rule"].isin(REPLAYABLE_WARNINGS)]["excel_row"].astype(int)
    wanted = data["excel_row"].isin(set(replayable))
    if wanted.any():  # the loaded ones among them (no warned row: no lookup in a million loaded rows)
        wanted &= data["excel_row"].isin(rows["excel_row"])
    held = data[wanted]
    return Standardised(
        rows.reset_index(drop=True), failures, quarantined, skipped, rows_read, held.reset_index(drop=True)
    )


def map_country_column(data: pd.DataFrame, column: str, header: str, ref: Reference) -> tuple[pd.Series, pd.DataFrame]:
    """A country column -> ISO alpha-3 (NA where unknown) and a country_unknown failure per unknown name, with a
    suggestion only where it cannot point to another entity."""
    iso3 = countries.map_countries(data[column], ref.country_lookup)
    unknown = iso3.isna() & as_text(data[column]).notna()
    hint = (
        countries.suggest(
            data[column].where(unknown),
            ref.country_lookup["key"],
            ref.country_lookup["alias"],
            entities=ref.country_lookup["iso3"],
            kind="country",
        )
        if unknown.any()
        else None
    )
    failures = failures_where(
        data,
        unknown,
        column,
        "country_unknown",
        lambda r, v: (
            f"{header} '" + v + "' is not a known country name or code; add it to reference/country_aliases.csv."
        ),
        hint,
        reads=(),
        per_value=True,
    )
    return iso3, failures


def apply_severity(failures: pd.DataFrame, severity: dict[str, str]) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """The source's severities applied: ``(failures, rows a blocking failure holds back (their Excel rows, sorted,
    once each: an array, not a Python set of a sheet's million ints, +63 MiB), the row warnings)``."""
    if severity and len(failures):
        override = failures["rule"].astype(object).map(severity)
        failures = failures.assign(
            severity=override.where(override.notna(), failures["severity"].astype(object)).astype(_STR)
        )
    blocked = np.unique(failures.loc[failures["severity"] == "block", "excel_row"].dropna().to_numpy(dtype="int64"))
    warned = failures[(failures["severity"] == "warn") & failures["excel_row"].notna()]
    return failures, blocked, warned


def warning_rules(data: pd.DataFrame, warned: pd.DataFrame) -> pd.Series:
    """Per row of ``data``: the rules it loads with as warnings, comma-separated (NA for none)."""
    if warned.empty:  # the usual file: no lookup for a million rows
        return missing_text(data.index, name="excel_row")
    flags = warned.groupby(warned["excel_row"].astype(int))["rule"].agg(lambda s: ",".join(sorted(set(s))))
    return data["excel_row"].astype(int).map(flags).astype(_STR)


def rows_held(data: pd.DataFrame, blocked: np.ndarray) -> pd.DataFrame:
    """The rows of ``data`` whose Excel row is blocked, renumbered. When every row is, pandas (3, copy on write)
    shares the cells instead of copying them, which the tests check: a whole sheet whose every row fails is held
    once."""
    return data[data["excel_row"].isin(blocked)].reset_index(drop=True)


def validate_passing(
    schema: pa.DataFrameSchema,
    canonical: pd.DataFrame,
    data: pd.DataFrame,
    failures: pd.DataFrame,
    blocked: np.ndarray,
    headers: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The rows no blocking failure holds back, through the canonical contract; a row that breaks it is held back
    too (rule canonical_contract). Returns ``(rows, failures, blocked)``."""
    keep = ~data["excel_row"].isin(blocked)
    # a frame of our own (nothing held back: a shallow one, no copy of every row), so the contract coerces it in
    # place instead of copying it again
    rows = canonical[keep.to_numpy()] if len(blocked) else canonical.copy(deep=False)
    try:
        rows = schema.validate(rows, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        extra = from_pandera(exc.failure_cases, rows, headers).assign(rule="canonical_contract", severity="block")
        failures = concat_failures([failures, extra])
        bad = np.unique(extra["excel_row"].dropna().to_numpy(dtype="int64"))
        blocked = np.union1d(blocked, bad)
        rows = schema.validate(rows[~rows["excel_row"].isin(bad)], lazy=False)
    return rows, failures, blocked


def _reconcile_totals(amount: pd.Series, skipped: pd.DataFrame, ctx: FileContext) -> pd.DataFrame:
    """The last totals row must equal the sum of the amounts above it (every numeric amount, whatever else is
    wrong with its row) within ``ctx.totals_tolerance``; a mismatch is a failure pointing at the totals row."""
    totals = skipped[(skipped["reason"] == TOTAL) & skipped["stated_amount"].notna()]
    if totals.empty:
        return empty_failures()
    last = totals.iloc[[-1]]
    stated = float(last["stated_amount"].iloc[0])
    summed = float(amount.sum())
    if abs(summed - stated) <= ctx.totals_tolerance * max(abs(stated), 1.0):
        return empty_failures()
    message = (
        f"The totals row states {stated:,.2f} but the lines above it add up to {summed:,.2f} "
        f"(difference {summed - stated:,.2f})."
    )
    frame = last.assign(amount=last.get("stated_text", f"{stated:,.2f}"))
    return failures_where(frame, pd.Series(True, index=frame.index), "amount", "totals_mismatch", message)


def _unreadable_dates(data: pd.DataFrame, unreadable: pd.Series, column: str, ctx: FileContext) -> pd.DataFrame:
    declared = f" (this source writes dates {dates.ORDER_TEXT[ctx.date_order]})" if ctx.date_order else ""
    return failures_where(
        data,
        unreadable,
        column,
        "date_unreadable",
        lambda r, v: f"{ctx.header(column)} '" + v + f"' is not a date{declared}.",
    )


def _ambiguous_dates(data: pd.DataFrame, ambiguous: pd.Series, column: str, ctx: FileContext) -> pd.DataFrame:
    """A date that reads as two different days and no declared order: the steward declares it, we never guess.
    Both readings are spelled out for the failing cells only."""
    return failures_where(
        data,
        ambiguous,
        column,
        "date_ambiguous",
        lambda r, v: (
            f"{ctx.header(column)} '"
            + v
            + "' reads as "
            + dates.both_readings(r[column]).astype(_STR)
            + f"; declare date_order: day_first or "
            f"month_first in {ctx.agency}'s source YAML (agency-wide or per file) and re-run."
        ),
    )


def _out_of_range(data: pd.DataFrame, outside: pd.Series, column: str, ctx: FileContext) -> pd.DataFrame:
    """A readable date the warehouse cannot store (an Excel serial of 150000, year 0001, 2300-01-01): a row failure."""
    return failures_where(
        data,
        outside,
        column,
        "date_out_of_range",
        lambda r, v: (
            f"{ctx.header(column)} '" + v + f"' is a date outside {dates.STORABLE_TEXT}, "
            "the range the warehouse can store; correct the date."
        ),
    )

"""A table file's rows before the checks, as its source declares (used by the budget and programs standardisers,
and by the records standardiser): missing markers become empty cells, blank and totals rows are set aside as
skipped (with the stated total), constant columns are added, rows out of scope are skipped as ``filtered``, and
the fiscal year is derived from a date where the file states none. Also the source's declared date order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transforms import dates, numbers
from transforms.rows import KINDS, TOTAL, row_kinds
from transforms.standardise_context import FileContext
from transforms.text import as_text

_STR = pd.StringDtype("pyarrow")


def _split_rows(raw: pd.DataFrame, ctx: FileContext, labels: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    value_cols = [c for c in raw.columns if c != "excel_row"]
    kinds = row_kinds(raw, value_cols, labels, ctx.totals_label)
    at = np.flatnonzero(kinds != 0)  # the rows set aside (blank, totals): a few
    skipped = raw.iloc[at][["excel_row"]]
    skipped = skipped.assign(reason=pd.Series(KINDS[kinds[at]], index=skipped.index, dtype=object))
    label = pd.Series(pd.NA, index=skipped.index, dtype=_STR)
    for col in labels:
        if col in raw:
            label = label.fillna(as_text(raw[col].iloc[at]))
    skipped["label"] = label
    if "amount" in raw:
        cells = raw["amount"].iloc[at]
        stated, _ = numbers.parse_amounts(cells, ctx.number_locale)
        skipped["stated_amount"] = stated.where(skipped["reason"] == TOTAL) * ctx.unit_factor
        skipped["stated_text"] = cells.astype(_STR)
    else:
        skipped["stated_amount"] = float("nan")
    return data_rows(raw, kinds == 0), skipped.reset_index(drop=True)


def data_rows(raw: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows of ``raw`` where ``keep`` holds: a slice sharing raw's cells where they are one run of rows (the
    usual sheet: the lines, then a totals row), else a new frame (never copied twice)."""
    at = np.flatnonzero(keep)
    if len(at) and at[-1] - at[0] + 1 == len(at):
        return raw.iloc[at[0] : at[-1] + 1]
    return raw[keep]


def _prepare(raw: pd.DataFrame, ctx: FileContext, labels: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The source's declared options, in order: missing markers become empty cells (an amount keeps its text: it
    fails as required_missing, saying so), blank and totals rows are set aside, constant columns are added, rows
    out of scope are skipped as ``filtered`` (counted, with the cell that excluded them), and the fiscal year is
    derived from a date where the file states none. Returns ``(data, skipped, filtered_raw)``."""
    if ctx.missing:
        cells = [c for c in raw.columns if c not in ("excel_row", "amount")]
        raw = raw.assign(**{c: raw[c].mask(_is_marker(raw[c], ctx)) for c in cells})
    data, skipped = _split_rows(raw, ctx, labels)
    for col, value in ctx.constants.items():
        data[col] = pd.Series(value, index=data.index, dtype=_STR)
    filtered = data.iloc[:0]
    if ctx.keep_rows:
        column = ctx.keep_rows["column"]
        text = as_text(data[column]) if column in data else pd.Series(pd.NA, index=data.index, dtype=_STR)
        if ctx.keep_rows.get("values") is not None:
            wanted = {str(v).strip().casefold() for v in ctx.keep_rows["values"]}
            keep = text.str.casefold().isin(wanted).fillna(False).astype(bool)
        else:
            keep = text.str.contains(ctx.keep_rows["matches"], regex=True).fillna(False).astype(bool)
        filtered = data[~keep]
        out = pd.DataFrame(
            {
                "excel_row": filtered["excel_row"],
                "reason": "filtered",
                "label": (ctx.header(column) + " = " + text[~keep].fillna("(empty)")).astype(_STR),
                "stated_amount": float("nan"),
            }
        )
        skipped = pd.concat([skipped, out], ignore_index=True) if len(out) else skipped
        data = data[keep]
    if ctx.fiscal_year_from and ctx.fiscal_year_from in data:
        data = data.assign(fiscal_year=_fiscal_year_from_date(data, ctx))
    return data, skipped, filtered


def _is_marker(cells: pd.Series, ctx: FileContext) -> pd.Series:
    markers = {m.strip().casefold() for m in ctx.missing}
    return as_text(cells).str.casefold().isin(markers).fillna(False).astype(bool)


def _fiscal_year_from_date(data: pd.DataFrame, ctx: FileContext) -> pd.Series:
    """The fiscal year label of each row's date ("2023/24" for a July year, "2024" for a calendar year) where the
    file's fiscal-year cell is empty or absent; a date that cannot be read leaves it empty (and fails as a date)."""
    assert ctx.fiscal_year_from is not None
    given = as_text(data["fiscal_year"]) if "fiscal_year" in data else pd.Series(pd.NA, index=data.index, dtype=_STR)
    when = dates.read_dates(data[ctx.fiscal_year_from], _order(ctx)).dates
    m = ctx.fiscal_year_start_month
    start_year = (when.dt.year - (when.dt.month < m).astype("Int64")).astype("Int64")
    if m == 1:
        label = start_year.astype(_STR)
    else:
        label = (start_year.astype(_STR) + "/" + ((start_year + 1) % 100).astype(_STR).str.zfill(2)).astype(_STR)
    return given.fillna(label.where(when.notna()))


def _order(ctx: FileContext) -> dates.DateOrder | None:
    return "day_first" if ctx.date_order == "day_first" else "month_first" if ctx.date_order == "month_first" else None

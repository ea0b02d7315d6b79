"""Kind ``records``: a long-format table whose columns the source YAML declares with a type. One pure standardiser:
raw mapped cells -> typed rows of the dataset, failures, quarantined and skipped rows.

Every row below the header comes back exactly once: loaded (maybe with warnings), quarantined (a blocking failure)
or skipped (blank, out of scope). Each declared type has its reader and its failure rule:

============  =====================================================  =========================================
type          read as                                                fails as
============  =====================================================  =========================================
text          stripped text; ``allowed`` (any case, stored as        value_not_allowed
              declared) or ``pattern`` (the whole value)
integer       a whole number (thousands separators of the locale)    number_unreadable, value_out_of_range
decimal       a number times ``scale``                               number_unreadable, value_out_of_range
year          four digits; a range ('2022-2023', '2023/24') only     year_unreadable, value_out_of_range
              with ``ranges: first | last``
date          the source's date order (never guessed)                date_unreadable, date_ambiguous, ...
country       ISO 3166 alpha-3 through the alias table               country_unknown (with a safe suggestion)
currency      ISO 4217, historic codes before their withdrawal       currency_unknown, currency_withdrawn
money         a number times ``scale``, converted to US$ as of its   number_unreadable, fx_rate_missing, ...
              ``as_of`` column (a date: that day's rate; a year:
              the year's average), with rate, date, provider, policy
============  =====================================================  =========================================

A required column's empty cell is ``required_missing``; a repeated ``key`` is ``record_duplicate`` on every row
that shares it. Declared missing markers ('n/a', '.') are empty cells. Rules the source declares ``warn`` let the
row load with the value empty (or as read, for allowed values and ranges) and the warning recorded.

This module holds the standardiser (:func:`standardise_records`) and its finish; the rest is split by job:
``transforms/records_fields.py`` (the context and result, the output fields, the Pandera contract, the long
storage of the rows) and ``transforms/records_checks.py`` (the typed readers and their failures). Their public
names are re-exported here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transforms import currency, dates, numbers
from transforms.failures import concat_failures, failures_where
from transforms.records_checks import (
    _currency_checks,
    _currency_dates,
    _duplicates,
    _money,
    _not_number,
    _range,
    _says,
    _years,
)
from transforms.records_fields import (
    STORAGE,
    RecordsContext,
    RecordsResult,
    _typed,
    contract,
    long_values,
    output_fields,
)
from transforms.reference import Reference
from transforms.standardise_checks import (
    _ambiguous_dates,
    _out_of_range,
    _unreadable_dates,
    apply_severity,
    map_country_column,
    rows_held,
    validate_passing,
    warning_rules,
)
from transforms.standardise_context import FileContext
from transforms.standardise_rows import _is_marker, _order, _prepare
from transforms.text import as_text

__all__ = [
    "STORAGE",
    "RecordsContext",
    "RecordsResult",
    "contract",
    "long_values",
    "output_fields",
    "standardise_records",
]

_STR = pd.StringDtype("pyarrow")


def standardise_records(raw: pd.DataFrame, ctx: RecordsContext, ref: Reference) -> RecordsResult:
    cols = ctx.columns
    if ctx.missing:  # declared markers are empty cells, whatever the column
        marker_ctx = FileContext(agency=ctx.agency, missing=ctx.missing)
        raw = raw.assign(**{c: raw[c].mask(_is_marker(raw[c], marker_ctx)) for c in raw.columns if c != "excel_row"})
    fctx = FileContext(
        agency=ctx.agency,
        number_locale=ctx.number_locale,
        date_order=ctx.date_order,
        constants=ctx.constants,
        keep_rows=ctx.keep_rows,
        source_columns=ctx.source_columns,
    )
    labels = [n for n, c in cols.items() if c["type"] in ("text", "country")]
    data, skipped, _ = _prepare(raw, fctx, labels)
    for name in cols:
        if name not in data:
            data[name] = pd.Series(pd.NA, index=data.index, dtype=_STR)
    h = ctx.header
    fails: list[pd.DataFrame] = []
    out: dict[str, pd.Series] = {}
    # dates and years first: a currency's validity and a money column's rate depend on them
    order = [n for n, c in cols.items() if c["type"] in ("date", "year")]
    order += [n for n in cols if n not in order]
    for name in order:
        col = cols[name]
        cells = data[name]
        text = as_text(cells)
        t = col["type"]
        if col.get("required"):
            fails.append(
                failures_where(
                    data, text.isna(), name, "required_missing", f"The '{h(name)}' cell is empty; a record needs it."
                )
            )
        if t == "text":
            value = text
            if col.get("allowed") is not None:
                spelled = {str(a).strip().casefold(): str(a) for a in col["allowed"]}
                canon = text.str.casefold().map(spelled).astype(_STR)
                bad = text.notna() & canon.isna()
                shown = ", ".join(col["allowed"][:12]) + (" ..." if len(col["allowed"]) > 12 else "")
                fails.append(
                    failures_where(
                        data,
                        bad,
                        name,
                        "value_not_allowed",
                        _says(f"{h(name)} '", f"' is not one of: {shown}."),
                    )
                )
                value = canon.fillna(text)
            if col.get("pattern") is not None:
                bad = text.notna() & ~text.str.fullmatch(col["pattern"]).fillna(False).astype(bool)
                fails.append(
                    failures_where(
                        data,
                        bad,
                        name,
                        "value_not_allowed",
                        _says(f"{h(name)} '", f"' does not match the pattern {col['pattern']}."),
                    )
                )
            out[name] = value
        elif t in ("integer", "decimal"):
            number, blank = numbers.parse_amounts(cells, ctx.number_locale)
            if t == "integer":
                unreadable = number.notna() & (number != np.floor(number))
                fails.append(_not_number(data, unreadable, name, "a whole number", ctx))
                number = number.where(~unreadable)
                unreadable_too = number.isna() & ~blank & ~unreadable
            else:
                unreadable_too = number.isna() & ~blank
            fails.append(
                _not_number(data, unreadable_too, name, "a whole number" if t == "integer" else "a number", ctx)
            )
            number = number * float(col.get("scale", 1.0))
            fails.append(_range(data, number, name, col, ctx))
            out[name] = number.round().astype("Int64") if t == "integer" else number
        elif t == "year":
            year, unreadable, ranged = _years(text, col.get("ranges"))
            fails.append(
                failures_where(
                    data,
                    unreadable & ~ranged,
                    name,
                    "year_unreadable",
                    _says(f"{h(name)} '", "' is not a year (four digits)."),
                )
            )
            fails.append(
                failures_where(
                    data,
                    ranged,
                    name,
                    "year_unreadable",
                    _says(
                        f"{h(name)} '",
                        f"' is a range of years and {ctx.agency}'s source YAML declares no rule for ranges; add "
                        f"ranges: first or ranges: last to column '{name}' and re-run.",
                    ),
                )
            )
            fails.append(_range(data, year.astype("float64"), name, col, ctx))
            out[name] = year
        elif t == "date":
            parsed = dates.read_dates(cells, _order(fctx))
            fails.append(
                _unreadable_dates(
                    data,
                    parsed.dates.isna() & ~parsed.is_blank & ~parsed.out_of_range & ~parsed.ambiguous,
                    name,
                    fctx,
                )
            )
            fails.append(_ambiguous_dates(data, parsed.ambiguous, name, fctx))
            fails.append(_out_of_range(data, parsed.out_of_range, name, fctx))
            out[name] = parsed.dates
        elif t == "country":
            iso3, country_failures = map_country_column(data, name, h(name), ref)
            fails.append(country_failures)
            out[name] = iso3
            out[f"{name}_as_written"] = text
        elif t == "currency":
            out[name] = currency.normalize_currency(cells, None)
        elif t == "money":
            fails.append(_money(data, out, name, col, ctx, ref))
    for name, col in cols.items():  # currencies, checked as of the date their amounts are converted at
        if col["type"] == "currency":
            when = _currency_dates(name, cols, out, data.index)
            fails.append(_currency_checks(data, out[name], when, name, ctx, ref))
    if ctx.key:
        fails.append(_duplicates(data, out, ctx))
    failures = concat_failures(fails)
    return _finish(data, out, failures, skipped, len(raw), ctx)


def _finish(
    data: pd.DataFrame,
    out: dict[str, pd.Series],
    failures: pd.DataFrame,
    skipped: pd.DataFrame,
    rows_read: int,
    ctx: RecordsContext,
) -> RecordsResult:
    failures, blocked, warned = apply_severity(failures, ctx.severity)
    fields = output_fields(ctx.columns)
    rows = pd.DataFrame({"excel_row": data["excel_row"].astype("int32")}, index=data.index)
    for f, storage in zip(fields["field"], fields["storage"], strict=True):
        rows[f] = _typed(out[f], storage)
    rows["warning_rules"] = warning_rules(data, warned)
    # warned values load as read, blocked rules were quarantined above: the contract is types and required cells
    warn_rules = {r for r, s in ctx.severity.items() if s == "warn"}
    passing, failures, blocked = validate_passing(
        contract(ctx, fields, warn_rules), rows, data, failures, blocked, ctx.source_columns
    )
    quarantined = rows_held(data, blocked)
    return RecordsResult(passing.reset_index(drop=True), fields, failures, quarantined, skipped, rows_read)

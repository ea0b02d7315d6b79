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
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa

from transforms import currency, dates, fx, numbers
from transforms.failures import concat_failures, empty_failures, failures_where
from transforms.reference import Reference
from transforms.standardise import (
    FileContext,
    _ambiguous_dates,
    _is_marker,
    _order,
    _out_of_range,
    _prepare,
    _unreadable_dates,
    apply_severity,
    map_country_column,
    validate_passing,
    warning_rules,
)
from transforms.text import as_text, per_unique

_STR = pd.StringDtype("pyarrow")
_RANGE = re.compile(r"^(?P<a>\d{4})\s*[-/–—]\s*(?P<b>\d{2}|\d{4})$")
_YEAR = r"^\d{4}(?:\.0+)?$"
#: storage of each output field: the typed column of record_value that holds it
STORAGE = {"text": "text", "integer": "integer", "decimal": "decimal", "date": "date"}


@dataclass(frozen=True)
class RecordsContext:
    """What the records standardiser needs to know about the file, as plain data (JSON-able)."""

    agency: str
    dataset: str
    columns: dict[str, dict]  # declared name -> RecordColumn as a dict
    date_order: str | None = None
    number_locale: str = "en"
    missing: list[str] = field(default_factory=list)
    constants: dict[str, str] = field(default_factory=dict)
    keep_rows: dict | None = None
    key: list[str] = field(default_factory=list)
    fx_lookback_days: int = 7
    severity: dict[str, str] = field(default_factory=dict)
    source_columns: dict[str, str] = field(default_factory=dict)

    def header(self, column: str) -> str:
        return self.source_columns.get(column, column)


@dataclass
class RecordsResult:
    rows: pd.DataFrame  # one row per loaded record: excel_row, warning_rules and the output fields
    fields: pd.DataFrame  # the dataset's output fields in order: field, storage, declared_type, unit, description
    failures: pd.DataFrame
    quarantined: pd.DataFrame  # raw cells (+ excel_row) of rows with a blocking failure
    skipped: pd.DataFrame
    rows_read: int


def output_fields(columns: dict[str, dict]) -> pd.DataFrame:
    """The dataset's columns as its view shows them: each declared column, and what a country (as written) or a
    money amount (currency, US$ value and the rate that made it) adds."""
    rows: list[tuple[str, str, str, str | None, str | None]] = []
    for name, col in columns.items():
        t, unit, desc = col["type"], col.get("unit"), col.get("description")
        if t in ("text", "currency"):
            rows.append((name, "text", t, None, desc))
        elif t in ("integer", "year"):
            rows.append((name, "integer", t, unit, desc))
        elif t == "decimal":
            rows.append((name, "decimal", t, unit, desc))
        elif t == "date":
            rows.append((name, "date", t, None, desc))
        elif t == "country":
            rows.append((name, "text", t, "ISO 3166-1 alpha-3", desc))
            rows.append((f"{name}_as_written", "text", "text", None, f"{name} as the file writes it"))
        elif t == "money":
            rows += [
                (name, "decimal", t, unit or "units of its currency", desc),
                (f"{name}_currency", "text", "currency", "ISO 4217", f"the currency of {name}"),
                (f"{name}_usd", "decimal", "money", "US$", f"{name} converted to US$"),
                (f"{name}_fx_rate", "decimal", "decimal", "units per US$", f"the rate that converted {name}"),
                (f"{name}_fx_rate_date", "date", "date", None, f"the day (or period end) of {name}'s rate"),
                (f"{name}_fx_provider", "text", "text", None, f"who gave {name}'s rate"),
                (f"{name}_fx_policy", "text", "text", None, f"transaction_date or fiscal_period_average for {name}"),
            ]
    return pd.DataFrame(rows, columns=["field", "storage", "declared_type", "unit", "description"])


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


def _says(before: str, after: str) -> Callable[[pd.DataFrame, pd.Series], pd.Series]:
    """A failure message of each row: ``before`` + the cell as read + ``after``."""
    return lambda rows, values: before + values + after


def _not_number(data: pd.DataFrame, mask: pd.Series, name: str, what: str, ctx: RecordsContext) -> pd.DataFrame:
    return failures_where(
        data, mask, name, "number_unreadable", lambda r, v: f"{ctx.header(name)} '" + v + f"' is not {what}."
    )


def _range(data: pd.DataFrame, number: pd.Series, name: str, col: dict, ctx: RecordsContext) -> pd.DataFrame:
    lo, hi = col.get("min"), col.get("max")
    if lo is None and hi is None:
        return empty_failures()
    below = number < lo if lo is not None else pd.Series(False, index=number.index)
    above = number > hi if hi is not None else pd.Series(False, index=number.index)
    bounds = f"{'' if lo is None else f'at least {lo:g}'}{' and ' if lo is not None and hi is not None else ''}"
    bounds += "" if hi is None else f"at most {hi:g}"
    return failures_where(
        data,
        (below | above).fillna(False),
        name,
        "value_out_of_range",
        lambda r, v: f"{ctx.header(name)} '" + v + f"' is out of range: the source declares {bounds}.",
    )


def _years(text: pd.Series, ranges: str | None) -> tuple[pd.Series, pd.Series, pd.Series]:
    """``(year Int64, unreadable, is a range left unread)``: a range reads as its first or last year only when the
    source declares which."""

    def bounds(u: pd.Series) -> pd.DataFrame:
        parts = u.str.extract(_RANGE)
        a = pd.to_numeric(parts["a"], errors="coerce")
        b = pd.to_numeric(parts["b"], errors="coerce")
        b = b.where(parts["b"].str.len() != 2, (a // 100) * 100 + b)  # '2023/24' -> 2024
        ok = (b > a).fillna(False).astype(bool)
        return pd.DataFrame({"a": a.where(ok), "b": b.where(ok)})

    def read(u: pd.Series) -> pd.Series:
        plain = u.str.match(_YEAR).fillna(False).astype(bool)
        year = pd.Series(pd.NA, index=u.index, dtype="Int64")
        year[plain] = u[plain].str.slice(0, 4).astype("int64")
        if ranges is not None:
            r = bounds(u)["a" if ranges == "first" else "b"]
            year = year.fillna(r.round().astype("Int64"))
        return year

    def is_range(u: pd.Series) -> pd.Series:
        return bounds(u)["a"].notna().astype("boolean")

    year = per_unique(text, read).astype("Int64")
    ranged = per_unique(text, is_range).fillna(False).astype(bool)
    unreadable = text.notna() & year.isna()
    return year, unreadable, ranged & unreadable


def _as_of(col: dict, cols: dict[str, dict], out: dict[str, pd.Series], index: pd.Index) -> tuple:
    """(date, period start, period end, policy) of a money column's conversion: its as_of date's rate (with the
    look-back), or the average over its as_of year."""
    basis = col["as_of"]
    if cols[basis]["type"] == "date":
        when = out[basis]
        return when, when, when, pd.Series(fx.TRANSACTION_DATE, index=index, dtype=object)
    year = out[basis]
    start = pd.to_datetime(year.astype("string") + "-01-01", errors="coerce")
    end = pd.to_datetime(year.astype("string") + "-12-31", errors="coerce")
    nat = pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
    return nat, start, end, pd.Series(fx.PERIOD_AVERAGE, index=index, dtype=object)


def _currency_dates(name: str, cols: dict[str, dict], out: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    """The day a currency column is checked as of: the as_of date (or year start) of the money column using it."""
    for col in cols.values():
        if col["type"] == "money" and col.get("currency") == name:
            when, start, _, _ = _as_of(col, cols, out, index)
            return when.fillna(start)
    return pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")


def _currency_checks(
    data: pd.DataFrame, cur: pd.Series, when: pd.Series, name: str, ctx: RecordsContext, ref: Reference
) -> pd.DataFrame:
    unknown, withdrawn = currency.check_codes(cur, when, ref)
    hist = ref.historic_currencies
    return concat_failures(
        [
            failures_where(
                data.assign(**{name: cur}),
                unknown,
                name,
                "currency_unknown",
                lambda r, v: (
                    "Currency '" + v + "' is not an ISO 4217 currency code (current, or historic in "
                    "reference/historic_currencies.csv)."
                ),
            ),
            failures_where(
                data.assign(
                    **{name: cur},
                    _on=cur.map(hist["withdrawn_on"].dt.strftime("%Y-%m-%d")).astype(_STR),
                    _by=cur.map(hist["replaced_by"]).astype(_STR),
                    _dated=when.dt.strftime("%Y-%m-%d").astype(_STR),
                ),
                withdrawn,
                name,
                "currency_withdrawn",
                lambda r, v: (
                    "Currency '" + v + "' was withdrawn on " + r["_on"] + " (replaced by " + r["_by"] + "); this "
                    "record is dated " + r["_dated"] + ": state the amount in " + r["_by"] + ", or correct the date."
                ),
            ),
        ]
    )


def _money(
    data: pd.DataFrame, out: dict[str, pd.Series], name: str, col: dict, ctx: RecordsContext, ref: Reference
) -> pd.DataFrame:
    cells = data[name]
    amount, blank = numbers.parse_amounts(cells, ctx.number_locale)
    amount = amount * float(col.get("scale", 1.0))
    fails = [_not_number(data, amount.isna() & ~blank, name, "an amount", ctx), _range(data, amount, name, col, ctx)]
    cur_spec = col["currency"]
    cols = ctx.columns
    if cur_spec in cols:
        code = out[cur_spec] if cur_spec in out else currency.normalize_currency(data[cur_spec], None)
    else:
        code = pd.Series(cur_spec, index=data.index, dtype=_STR)
    when, start, end, policy = _as_of(col, cols, out, data.index)
    unknown, withdrawn = currency.check_codes(code, when.fillna(start), ref)
    rated = currency.normalize_for_fx(code, unknown | withdrawn)
    conv = fx.convert(amount, rated, when, start, end, policy, ref.fx_chain, ctx.fx_lookback_days)
    dated = when.notna() | start.notna()
    no_rate = conv["fx_rate"].isna() & amount.notna() & code.notna() & ~(unknown | withdrawn) & dated
    basis = ctx.header(col["as_of"])
    fails.append(
        failures_where(
            data.assign(_c=code.astype(_STR), _w=when.fillna(start).dt.strftime("%Y-%m-%d").astype(_STR)),
            no_rate,
            name,
            "fx_rate_missing",
            lambda r, v: (
                "No exchange rate for "
                + r["_c"]
                + " as of "
                + r["_w"]
                + f" ({basis}) from any provider ("
                + ", ".join(ref.fx_chain.names)
                + "); add one to reference/fx_rates.csv and re-run."
            ),
        )
    )
    fails.append(
        failures_where(
            data,
            amount.notna() & code.isna(),
            name,
            "required_missing",
            f"{ctx.header(name)} has an amount but its currency cell is empty.",
        )
    )
    fails.append(
        failures_where(
            data,
            amount.notna() & ~dated & code.notna(),
            name,
            "required_missing",
            f"{ctx.header(name)} has an amount but no {basis} to convert it as of.",
        )
    )
    out[name] = amount
    out[f"{name}_currency"] = code
    out[f"{name}_usd"] = conv["amount_usd"].astype("float64")
    out[f"{name}_fx_rate"] = conv["fx_rate"].astype("float64")
    out[f"{name}_fx_rate_date"] = conv["fx_rate_date"]
    out[f"{name}_fx_provider"] = conv["fx_provider"].astype(_STR)
    out[f"{name}_fx_policy"] = conv["fx_policy"].astype(_STR)
    return concat_failures(fails)


def _duplicates(data: pd.DataFrame, out: dict[str, pd.Series], ctx: RecordsContext) -> pd.DataFrame:
    """Every row whose key (as read) another row of the file repeats; the message names the first such row."""
    keys = pd.DataFrame({k: out[k].astype(_STR) if k in out else as_text(data[k]) for k in ctx.key})
    complete = keys.notna().all(axis=1)
    dup = keys.duplicated(keep=False) & complete
    if not dup.any():
        return empty_failures()
    repeated = data.loc[dup, "excel_row"].astype(int)
    groups = repeated.groupby([keys.loc[dup, k] for k in ctx.key]).transform(lambda s: ", ".join(map(str, s)))
    names = " + ".join(ctx.header(k) for k in ctx.key)
    return failures_where(
        data.assign(_rows=groups.reindex(data.index).astype(_STR)),
        dup,
        ctx.key[0],
        "record_duplicate",
        lambda r, v: (
            f"The key ({names}) '" + v + "' is on rows " + r["_rows"] + " of the file; a record appears once: "
            "keep one of them."
        ),
    )


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
    quarantined = data[data["excel_row"].isin(blocked)].reset_index(drop=True)
    return RecordsResult(passing.reset_index(drop=True), fields, failures, quarantined, skipped, rows_read)


def _typed(values: pd.Series, storage: str) -> pd.Series:
    if storage == "text":
        return values.astype(_STR)
    if storage == "integer":
        return values.astype("Int64")
    if storage == "decimal":
        return values.astype("float64")
    return pd.to_datetime(values).astype("datetime64[ns]")


def contract(ctx: RecordsContext, fields: pd.DataFrame, warn_rules: set[str]) -> pa.DataFrameSchema:
    """The Pandera contract of a dataset's loaded rows, built from its declaration: every field typed, declared
    required columns not null, allowed values, patterns and ranges checked unless the source lets them warn."""
    dtype = {"text": _STR, "integer": "Int64", "decimal": "float64", "date": "datetime64[ns]"}
    columns: dict[str, pa.Column] = {"excel_row": pa.Column("int32")}
    for f, storage in zip(fields["field"], fields["storage"], strict=True):
        col = ctx.columns.get(f, {})
        checks: list[pa.Check] = []
        if "value_not_allowed" not in warn_rules:
            if col.get("allowed") is not None:
                checks.append(pa.Check.isin([str(a) for a in col["allowed"]]))
            if col.get("pattern") is not None:
                checks.append(pa.Check.str_matches(f"(?:{col['pattern']})\\Z"))
        if "value_out_of_range" not in warn_rules and col.get("type") in ("integer", "decimal", "year", "money"):
            if col.get("min") is not None:
                checks.append(pa.Check.ge(col["min"]))
            if col.get("max") is not None:
                checks.append(pa.Check.le(col["max"]))
        required = bool(col.get("required")) and not _may_warn_empty(col, warn_rules)
        columns[f] = pa.Column(dtype[storage], checks=checks, nullable=not required)
    columns["warning_rules"] = pa.Column(_STR, nullable=True)
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name=f"records_{ctx.dataset}")


def _may_warn_empty(col: dict, warn_rules: set[str]) -> bool:
    """A required column may still load empty when the rule that empties it is declared warn."""
    by_type = {
        "country": "country_unknown",
        "integer": "number_unreadable",
        "decimal": "number_unreadable",
        "money": "number_unreadable",
        "year": "year_unreadable",
        "date": "date_unreadable",
    }
    rule = by_type.get(col.get("type", ""))
    return rule in warn_rules or (
        col.get("type") == "date" and bool({"date_ambiguous", "date_out_of_range"} & warn_rules)
    )


def long_values(rows: pd.DataFrame, fields: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The loaded rows as (dataset, excel_row, field, text_value, number_value, date_value): one row per record and
    field (empty values kept, so every record has every field), the storage record_value holds."""
    n = len(rows)
    parts = []
    for f, storage in zip(fields["field"], fields["storage"], strict=True):
        v = rows[f]
        parts.append(
            pd.DataFrame(
                {
                    "excel_row": rows["excel_row"].to_numpy(),
                    "field": pd.Series(f, index=range(n), dtype=_STR),
                    "text_value": (v if storage == "text" else pd.Series(pd.NA, index=v.index)).astype(_STR).to_numpy(),
                    "number_value": (v if storage in ("integer", "decimal") else pd.Series(np.nan, index=v.index))
                    .astype("float64")
                    .to_numpy(),
                    "date_value": (v if storage == "date" else pd.Series(pd.NaT, index=v.index))
                    .astype("datetime64[ns]")
                    .to_numpy(),
                }
            )
        )
    warned = rows[rows["warning_rules"].notna()] if "warning_rules" in rows else rows.iloc[:0]
    parts.append(
        pd.DataFrame(
            {
                "excel_row": warned["excel_row"].to_numpy(),
                "field": pd.Series("warning_rules", index=range(len(warned)), dtype=_STR),
                "text_value": warned["warning_rules"].astype(_STR).to_numpy() if len(warned) else [],
                "number_value": np.full(len(warned), np.nan),
                "date_value": np.full(len(warned), np.datetime64("NaT"), dtype="datetime64[ns]"),
            }
        )
    )
    long = pd.concat(parts, ignore_index=True)
    long.insert(0, "dataset", pd.Series(dataset, index=long.index, dtype=_STR))
    long["excel_row"] = long["excel_row"].astype("int32")
    long["text_value"] = long["text_value"].astype(_STR)
    return long

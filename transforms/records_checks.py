"""Reading a records dataset's typed columns, and their failures (for ``transforms/records.py``): numbers and
their declared ranges, years and ranges of years, currencies checked as of the date their amounts are converted
at, money amounts converted to US$ as of their ``as_of`` column, and records whose key another row repeats.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd

from transforms import currency, dates, fx, numbers
from transforms.failures import concat_failures, empty_failures, failures_where
from transforms.records_fields import RecordsContext
from transforms.reference import Reference
from transforms.text import as_text, per_unique

_STR = pd.StringDtype("pyarrow")
_RANGE = re.compile(r"^(?P<a>\d{4})\s*[-/–—]\s*(?P<b>\d{2}|\d{4})$")
_YEAR = r"^\d{4}(?:\.0+)?$"


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
    # a year whose days the warehouse cannot store (outside 1677-2262) has no period: its money is not dated (and
    # fails as such), instead of the file failing on a date out of range
    year = year.where((year > dates.STORABLE[0].year) & (year < dates.STORABLE[1].year))
    start = pd.to_datetime(year.astype("string") + "-01-01", errors="coerce").astype("datetime64[ns]")
    end = pd.to_datetime(year.astype("string") + "-12-31", errors="coerce").astype("datetime64[ns]")
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
    unstorable = amount.notna() & ~dated & out[col["as_of"]].notna()  # a year the warehouse has no days for
    fails.append(
        failures_where(
            data,
            unstorable,
            col["as_of"],
            "date_out_of_range",
            f"{basis} is a year outside {dates.STORABLE_TEXT}, the range the warehouse can store, so "
            f"{ctx.header(name)} cannot be converted as of it; correct the year.",
        )
    )
    fails.append(
        failures_where(
            data,
            amount.notna() & ~dated & ~unstorable & code.notna(),
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

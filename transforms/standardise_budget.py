"""The budget standardiser: raw budget cells -> FundingLine rows (amounts read and scaled, fiscal years resolved,
currencies checked and converted to US$ and constant US$, countries, categories and stages mapped, dates
checked against the fiscal period, the totals row reconciled), every row loaded, quarantined or skipped once.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from schemas.frames import FundingLine, RawBudget
from schemas.sources import STAGES
from transforms import categories, currency, dates, deflate, fiscal, fx, numbers
from transforms.failures import concat_failures, utf7_failures
from transforms.failures import failures_where as _failures_where
from transforms.reference import Reference
from transforms.standardise_checks import (
    _ambiguous_dates,
    _finish,
    _out_of_range,
    _raw_contract,
    _reconcile_totals,
    _unreadable_dates,
    map_country_column,
)
from transforms.standardise_context import FileContext, Standardised
from transforms.standardise_rows import _is_marker, _order, _prepare
from transforms.text import as_text, missing_text, per_unique_objects

_STR = pd.StringDtype("pyarrow")
#: the largest amount a line may come to in US$ (1,000 trillion, ten times the world's yearly output): above it, or
#: infinite once read and scaled by the unit, the amount is out of range (one failure, on the amount)
MAX_AMOUNT_USD = 1e15


#: transforms.failures.failures_where copying of the failing rows only what this module's messages read: the failing
#: value, and the currency a withdrawn-currency message names (``per_value=True`` where the message depends on the
#: value alone: written once per distinct value)
failures_where = partial(_failures_where, reads=("currency",))


def standardise_budget(raw: pd.DataFrame, ctx: FileContext, ref: Reference) -> Standardised:
    """Raw budget cells -> FundingLine rows."""
    data, skipped, filtered = _prepare(raw, ctx, ["program_code", "program_name", "partner_country", "category"])
    for optional in ("program_name", "currency", "stage", "transaction_date"):
        if optional not in data:
            data[optional] = missing_text(data.index)
    data = data[[c for c in RawBudget.to_schema().columns]]
    fails = [_raw_contract(RawBudget, data, ctx)]
    if ctx.fiscal_year_from:  # a year derived from an unreadable date: the date's failure says why, once
        f = fails[0]
        dated = f["excel_row"].isin(data.loc[as_text(data[ctx.fiscal_year_from]).notna(), "excel_row"])
        fails[0] = f[~((f["column"] == "fiscal_year") & dated)]
    h = ctx.header

    unscaled, amount_blank = numbers.parse_amounts(data["amount"], ctx.number_locale)
    with np.errstate(over="ignore"):
        amount = unscaled * ctx.unit_factor
    marked = _is_marker(data["amount"], ctx) if ctx.missing else pd.Series(False, index=data.index)
    fails.append(
        failures_where(
            data,
            amount.isna() & ~amount_blank & ~marked,
            "amount",
            "amount_not_number",
            lambda r, v: f"{h('amount')} '" + v + "' is not a number.",
            per_value=True,
        )
    )
    fails.append(
        failures_where(
            data,
            marked,
            "amount",
            "required_missing",
            lambda r, v: (
                f"{h('amount')} is '" + v + "', which this source declares means no value; a line needs an amount."
            ),
            per_value=True,
        )
    )

    years = fiscal.resolve_fiscal_years(
        data["fiscal_year"], ctx.fiscal_year_start_month, ctx.fiscal_year_label, ctx.fiscal_calendar
    )
    fy, period_start, period_end = years["fiscal_year"], years["period_start"], years["period_end"]
    fy_given = as_text(data["fiscal_year"]).notna()
    calendar = (
        "Hijri years" if ctx.fiscal_calendar == "hijri" else f"years starting in month {ctx.fiscal_year_start_month}"
    )
    fails.append(
        failures_where(
            data,
            fy.isna() & fy_given,
            "fiscal_year",
            "fiscal_year_unreadable",
            lambda r, v: f"{h('fiscal_year')} '" + v + f"' is not a fiscal year this agency uses ({calendar}).",
            per_value=True,
        )
    )

    tdate, tdate_blank, tdate_outside, tdate_ambiguous = dates.read_dates(data["transaction_date"], _order(ctx))
    cur = currency.normalize_currency(data["currency"], ctx.default_currency)
    unknown_currency, withdrawn = currency.check_codes(cur, tdate.fillna(period_start), ref)
    not_iso = unknown_currency | withdrawn  # no rate is looked up for either
    fails.append(
        failures_where(
            data,
            cur.isna(),
            "currency",
            "required_missing",
            lambda r, v: f"The '{h('currency')}' cell is empty and this source has no default currency.",
        )
    )
    fails.append(
        failures_where(
            data.assign(currency=cur),
            unknown_currency,
            "currency",
            "currency_unknown",
            lambda r, v: (
                "Currency '" + v + "' is not an ISO 4217 currency code (current, or historic in "
                "reference/historic_currencies.csv)."
            ),
            per_value=True,
        )
    )
    hist = ref.historic_currencies
    fails.append(
        failures_where(
            data.assign(currency=cur),
            withdrawn,
            "currency",
            "currency_withdrawn",
            lambda r, v: (
                "Currency '"
                + v
                + "' was withdrawn on "
                + r["currency"].map(hist["withdrawn_on"].dt.strftime("%Y-%m-%d")).astype(_STR)
                + " (replaced by "
                + r["currency"].map(hist["replaced_by"]).astype(_STR)
                + "); this row is dated "
                + _ymd(tdate[r.index].fillna(period_start[r.index])).astype(_STR)
                + ": state the amount in "
                + r["currency"].map(hist["replaced_by"]).astype(_STR)
                + ", or correct the date."
            ),
        )
    )

    stage = categories.map_stages(data["stage"], ref.stage_labels, ctx.default_stage)
    policy = fx_policies(stage, ctx.fx_policy_by_stage, ctx.fx_policy)
    rated = currency.normalize_for_fx(cur, not_iso)
    conv = fx.convert(amount, rated, tdate, period_start, period_end, policy, ref.fx_chain, ctx.fx_lookback_days, fy)
    no_rate = conv["fx_rate"].isna() & ~not_iso & cur.notna() & fy.notna()

    def when(at: pd.Index) -> pd.Series:
        """Which rate was looked for, for the rows at ``at`` (only the failing rows: text per row is costly)."""
        on = tdate[at]
        return pd.Series(
            "on " + _ymd(on).astype(object) + " (or the " + str(ctx.fx_lookback_days) + " days before)",
            index=at,
            dtype=object,
        ).where(
            (policy[at] == fx.TRANSACTION_DATE) & on.notna(),
            "for the fiscal period "
            + _ymd(period_start[at]).astype(object)
            + " to "
            + _ymd(period_end[at]).astype(object),
        )

    fails.append(
        failures_where(
            data.assign(currency=cur),
            no_rate,
            "currency",
            "fx_rate_missing",
            lambda r, v: (
                "No exchange rate for "
                + v
                + " "
                + when(r.index).astype(_STR)
                + " from any provider ("
                + ", ".join(ref.fx_chain.names)
                + "); add one to reference/fx_rates.csv and re-run."
            ),
        )
    )
    price_year = deflate.price_year(period_start, period_end)
    constant = deflate.deflate(conv["amount_usd"], price_year, ref.cpi_annual, ref.constant_base_year)
    usd = conv["amount_usd"].astype("float64")
    with np.errstate(invalid="ignore", over="ignore"):
        extreme = amount.notna() & (
            np.isinf(amount) | np.isinf(usd) | (usd.abs() > MAX_AMOUNT_USD) | np.isinf(constant.astype("float64"))
        )
    scaled = f", times {ctx.unit_factor:,.10g} for its unit," if ctx.unit_factor != 1 else ""
    fails.append(
        failures_where(
            data,
            extreme,
            "amount",
            "amount_out_of_range",
            lambda r, v: (
                f"{h('amount')} '"
                + v.where(v.str.len() <= 24, as_read(unscaled[r.index]))  # 1E+308 is 309 digits as text
                + f"'{scaled} is out of range: "
                "infinite, or over US$1,000 trillion once converted; correct the amount or its unit."
            ),
        )
    )

    iso3, country_failures = map_country_column(data, "partner_country", h("partner_country"), ref)
    fails.append(country_failures)
    del country_failures  # held by ``fails`` alone, so ordering them lets them go (concat_failures' release)

    cat = categories.map_labels(data["category"], ctx.agency, ref.category_mappings, "category_code")
    unmapped = cat.isna() & as_text(data["category"]).notna()
    cat_hint = (
        categories.suggest_categories(data["category"].where(unmapped), ref.category_mappings, ref.categories)
        if unmapped.any()
        else None
    )
    fails.append(
        failures_where(
            data,
            unmapped,
            "category",
            "category_unmapped",
            lambda r, v: (
                f"{h('category')} '" + v + f"' has no category mapping for {ctx.agency}; "
                "add it to reference/category_mappings.csv."
            ),
            cat_hint,
            per_value=True,
        )
    )

    fails.append(
        failures_where(
            data,
            stage.isna() & as_text(data["stage"]).isna(),
            "stage",
            "required_missing",
            lambda r, v: f"The '{h('stage')}' cell is empty and this source has no default stage.",
        )
    )
    fails.append(
        failures_where(
            data,
            stage.isna() & as_text(data["stage"]).notna(),
            "stage",
            "stage_unknown",
            lambda r, v: f"{h('stage')} '" + v + "' is not one of " + ", ".join(STAGES) + ".",
            per_value=True,
        )
    )
    fails.append(
        failures_where(
            data,
            (stage == "allocated") & (amount < 0),
            "amount",
            "allocation_negative",
            lambda r, v: f"{h('amount')} '" + v + "' is negative; an allocation cannot be below zero.",
            per_value=True,
        )
    )

    fails.append(
        _unreadable_dates(
            data, tdate.isna() & ~tdate_blank & ~tdate_outside & ~tdate_ambiguous, "transaction_date", ctx
        )
    )
    fails.append(_ambiguous_dates(data, tdate_ambiguous, "transaction_date", ctx))
    fails.append(_out_of_range(data, tdate_outside, "transaction_date", ctx))
    outside = tdate.notna() & fy.notna() & ((tdate < period_start) | (tdate > period_end))
    fails.append(
        failures_where(
            data,
            outside,
            "transaction_date",
            "date_outside_period",
            lambda r, v: (
                f"{h('transaction_date')} "
                + _ymd(tdate[r.index]).astype(_STR)
                + " lies outside fiscal period "
                + _ymd(period_start[r.index]).astype(_STR)
                + " to "
                + _ymd(period_end[r.index]).astype(_STR)
                + "."
            ),
        )
    )

    if len(filtered):  # the sheet's total covers the lines out of scope too
        out_of_scope, _ = numbers.parse_amounts(filtered["amount"], ctx.number_locale)
        amount_in_total = pd.concat([amount, out_of_scope * ctx.unit_factor])
    else:
        amount_in_total = amount
    fails.append(_reconcile_totals(amount_in_total, skipped, ctx))
    fails.append(utf7_failures(data, [c for c in data.columns if c != "excel_row"], h))
    failures = concat_failures(fails, release=True)  # before the canonical frame: the parts go first

    canonical = pd.DataFrame(
        {
            "agency_code": pd.Series(ctx.agency, index=data.index, dtype=_STR),
            "program_code": as_text(data["program_code"]),
            "program_name": as_text(data["program_name"]),
            "country_iso3": iso3,
            "category_code": cat,
            "category_label": as_text(data["category"]),
            "stage": stage,
            "fiscal_year": fy,
            "fiscal_year_label": as_text(data["fiscal_year"]),
            "period_start": period_start,
            "period_end": period_end,
            "transaction_date": tdate,
            "amount_original": amount,
            "currency": cur,
            **{c: conv[c] for c in ("amount_usd", "fx_rate", "fx_rate_date", "fx_provider", "fx_policy")},
            "amount_usd_constant": constant,
            "constant_base_year": pd.Series(ref.constant_base_year, index=data.index, dtype="int64"),
            "excel_row": data["excel_row"],
        },
        index=data.index,
    )
    # the per-line intermediates are not needed by the finish: freed before the contract runs on every row
    del fails, amount, amount_blank, marked, years, fy, cur, stage, rated, conv, constant, usd, extreme, iso3, cat
    del amount_in_total, unknown_currency, withdrawn, not_iso
    return _finish(canonical, FundingLine, data, failures, skipped, len(raw), ctx)


def _ymd(when: pd.Series) -> pd.Series:
    """Dates as YYYY-MM-DD text (NaN where NaT); a message's part, so computed for the failing rows only."""
    return when.dt.strftime("%Y-%m-%d")


def as_read(values: pd.Series) -> pd.Series:
    """Amounts as read, before the unit, in at most 6 significant digits (1E+308 is 309 digits as text)."""
    return values.map(lambda x: f"{x:.6g}").astype(_STR)


def fx_policies(stage: pd.Series, by_stage: dict[str, str], default: str) -> pd.Series:
    """Per line: the FX policy of its stage (``fx.by_stage``), else the source's policy; worked out per distinct
    stage and broadcast back (object dtype, one shared text per distinct policy; a missing stage's is the default)."""
    return per_unique_objects(
        stage, lambda u: u.astype(object).map(lambda s: by_stage.get(s, default)).astype(object), na=default
    )

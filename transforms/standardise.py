"""Per file kind, one pure standardiser: raw mapped cells -> canonical rows + failures + skipped rows.

Nothing is dropped silently: every row below the header comes back exactly once, as a canonical row, a
quarantined row (with at least one blocking failure) or a skipped row (blank, totals).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa

from schemas.frames import FundingLine, Program, RawBudget, RawPrograms
from schemas.rules import REPLAYABLE_WARNINGS
from schemas.sources import STAGES
from transforms import categories, countries, currency, dates, deflate, fiscal, fx, numbers
from transforms.failures import concat_failures, empty_failures, failures_where, from_pandera
from transforms.reference import Reference
from transforms.rows import DATA, TOTAL, classify_rows
from transforms.text import as_text

_STR = pd.StringDtype("pyarrow")


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


def _split_rows(raw: pd.DataFrame, ctx: FileContext, labels: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    value_cols = [c for c in raw.columns if c != "excel_row"]
    status = classify_rows(raw, value_cols, labels, ctx.totals_label)
    skipped = raw.loc[status != DATA, ["excel_row"]].assign(reason=status[status != DATA])
    label = pd.Series(pd.NA, index=skipped.index, dtype=_STR)
    for col in labels:
        if col in raw:
            label = label.fillna(as_text(raw.loc[skipped.index, col]))
    skipped["label"] = label
    if "amount" in raw:
        cells = raw.loc[skipped.index, "amount"]
        stated, _ = numbers.parse_amounts(cells, ctx.number_locale)
        skipped["stated_amount"] = stated.where(skipped["reason"] == TOTAL) * ctx.unit_factor
        skipped["stated_text"] = cells.astype(_STR)
    else:
        skipped["stated_amount"] = float("nan")
    return raw[status == DATA].copy(), skipped.reset_index(drop=True)


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


def _raw_contract(model: type[pa.DataFrameModel], data: pd.DataFrame, ctx: FileContext) -> pd.DataFrame:
    try:
        model.validate(data, lazy=True)
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
    quarantined = data[data["excel_row"].isin(blocked)].reset_index(drop=True)
    replayable = warned[warned["rule"].isin(REPLAYABLE_WARNINGS)]["excel_row"].astype(int)
    held = data[data["excel_row"].isin(set(replayable)) & data["excel_row"].isin(rows["excel_row"])]
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
    )
    return iso3, failures


def apply_severity(failures: pd.DataFrame, severity: dict[str, str]) -> tuple[pd.DataFrame, set[int], pd.DataFrame]:
    """The source's severities applied: ``(failures, rows a blocking failure holds back, the row warnings)``."""
    if severity and len(failures):
        override = failures["rule"].astype(object).map(severity)
        failures = failures.assign(
            severity=override.where(override.notna(), failures["severity"].astype(object)).astype(_STR)
        )
    blocked = set(failures.loc[failures["severity"] == "block", "excel_row"].dropna().astype(int))
    warned = failures[(failures["severity"] == "warn") & failures["excel_row"].notna()]
    return failures, blocked, warned


def warning_rules(data: pd.DataFrame, warned: pd.DataFrame) -> pd.Series:
    """Per row of ``data``: the rules it loads with as warnings, comma-separated (NA for none)."""
    flags = warned.groupby(warned["excel_row"].astype(int))["rule"].agg(lambda s: ",".join(sorted(set(s))))
    return data["excel_row"].astype(int).map(flags).astype(_STR)


def validate_passing(
    schema: pa.DataFrameSchema,
    canonical: pd.DataFrame,
    data: pd.DataFrame,
    failures: pd.DataFrame,
    blocked: set[int],
    headers: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame, set[int]]:
    """The rows no blocking failure holds back, through the canonical contract; a row that breaks it is held back
    too (rule canonical_contract). Returns ``(rows, failures, blocked)``."""
    keep = ~data["excel_row"].isin(blocked)
    rows = canonical[keep.to_numpy()]
    try:
        rows = schema.validate(rows, lazy=True)
    except pa.errors.SchemaErrors as exc:
        extra = from_pandera(exc.failure_cases, rows, headers).assign(rule="canonical_contract", severity="block")
        failures = concat_failures([failures, extra])
        bad = set(extra["excel_row"].dropna().astype(int))
        blocked = blocked | bad
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


def _order(ctx: FileContext) -> dates.DateOrder | None:
    return "day_first" if ctx.date_order == "day_first" else "month_first" if ctx.date_order == "month_first" else None


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
    """A date that reads as two different days and no declared order: the steward declares it, we never guess."""
    return failures_where(
        data.assign(_both=dates.both_readings(data[column]).astype(_STR)),
        ambiguous,
        column,
        "date_ambiguous",
        lambda r, v: (
            f"{ctx.header(column)} '" + v + "' reads as " + r["_both"] + f"; declare date_order: day_first or "
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


def standardise_budget(raw: pd.DataFrame, ctx: FileContext, ref: Reference) -> Standardised:
    """Raw budget cells -> FundingLine rows."""
    data, skipped, filtered = _prepare(raw, ctx, ["program_code", "program_name", "partner_country", "category"])
    for optional in ("program_name", "currency", "stage", "transaction_date"):
        if optional not in data:
            data[optional] = pd.Series(pd.NA, index=data.index, dtype=_STR)
    data = data[[c for c in RawBudget.to_schema().columns]]
    fails = [_raw_contract(RawBudget, data, ctx)]
    if ctx.fiscal_year_from:  # a year derived from an unreadable date: the date's failure says why, once
        f = fails[0]
        dated = f["excel_row"].isin(data.loc[as_text(data[ctx.fiscal_year_from]).notna(), "excel_row"])
        fails[0] = f[~((f["column"] == "fiscal_year") & dated)]
    h = ctx.header

    amount, amount_blank = numbers.parse_amounts(data["amount"], ctx.number_locale)
    amount = amount * ctx.unit_factor
    marked = _is_marker(data["amount"], ctx) if ctx.missing else pd.Series(False, index=data.index)
    fails.append(
        failures_where(
            data,
            amount.isna() & ~amount_blank & ~marked,
            "amount",
            "amount_not_number",
            lambda r, v: f"{h('amount')} '" + v + "' is not a number.",
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
        )
    )
    hist = ref.historic_currencies
    fails.append(
        failures_where(
            data.assign(
                currency=cur,
                _on=cur.map(hist["withdrawn_on"].dt.strftime("%Y-%m-%d")).astype(_STR),
                _by=cur.map(hist["replaced_by"]).astype(_STR),
                _dated=tdate.fillna(period_start).dt.strftime("%Y-%m-%d").astype(_STR),
            ),
            withdrawn,
            "currency",
            "currency_withdrawn",
            lambda r, v: (
                "Currency '" + v + "' was withdrawn on " + r["_on"] + " (replaced by " + r["_by"] + "); this row is "
                "dated " + r["_dated"] + ": state the amount in " + r["_by"] + ", or correct the date."
            ),
        )
    )

    stage = categories.map_stages(data["stage"], ref.stage_labels, ctx.default_stage)
    by_stage = stage.astype(object).map(ctx.fx_policy_by_stage).astype(object)
    policy = by_stage.where(by_stage.notna(), ctx.fx_policy)
    rated = currency.normalize_for_fx(cur, not_iso)
    conv = fx.convert(amount, rated, tdate, period_start, period_end, policy, ref.fx_chain, ctx.fx_lookback_days, fy)
    no_rate = conv["fx_rate"].isna() & ~not_iso & cur.notna() & fy.notna()
    when = pd.Series(
        "on "
        + tdate.dt.strftime("%Y-%m-%d").astype(object)
        + " (or the "
        + str(ctx.fx_lookback_days)
        + " days before)",
        index=data.index,
        dtype=object,
    ).where(
        (policy == fx.TRANSACTION_DATE) & tdate.notna(),
        "for the fiscal period "
        + period_start.dt.strftime("%Y-%m-%d").astype(object)
        + " to "
        + period_end.dt.strftime("%Y-%m-%d").astype(object),
    )
    fails.append(
        failures_where(
            data.assign(currency=cur, _when=when.astype(_STR)),
            no_rate,
            "currency",
            "fx_rate_missing",
            lambda r, v: (
                "No exchange rate for "
                + v
                + " "
                + r["_when"]
                + " from any provider ("
                + ", ".join(ref.fx_chain.names)
                + "); add one to reference/fx_rates.csv and re-run."
            ),
        )
    )
    price_year = deflate.price_year(period_start, period_end)
    constant = deflate.deflate(conv["amount_usd"], price_year, ref.cpi_annual, ref.constant_base_year)

    iso3, country_failures = map_country_column(data, "partner_country", h("partner_country"), ref)
    fails.append(country_failures)

    cat = categories.map_labels(data["category"], ctx.agency, ref.category_mappings, "category_code")
    unmapped = cat.isna() & as_text(data["category"]).notna()
    cat_hint = (
        countries.suggest(
            data["category"].where(unmapped),
            ref.category_mappings["label"].str.casefold(),
            ref.category_mappings["label"],
            entities=ref.category_mappings["category_code"],
            kind="label",
        )
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
        )
    )
    fails.append(
        failures_where(
            data,
            (stage == "allocated") & (amount < 0),
            "amount",
            "allocation_negative",
            lambda r, v: f"{h('amount')} '" + v + "' is negative; an allocation cannot be below zero.",
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
            data.assign(
                _s=period_start.dt.strftime("%Y-%m-%d"),
                _e=period_end.dt.strftime("%Y-%m-%d"),
                _d=tdate.dt.strftime("%Y-%m-%d"),
            ),
            outside,
            "transaction_date",
            "date_outside_period",
            lambda r, v: (
                f"{h('transaction_date')} "
                + r["_d"].astype(_STR)
                + " lies outside fiscal period "
                + r["_s"].astype(_STR)
                + " to "
                + r["_e"].astype(_STR)
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
    return _finish(canonical, FundingLine, data, concat_failures(fails), skipped, len(raw), ctx)


def standardise_programs(raw: pd.DataFrame, ctx: FileContext, ref: Reference) -> Standardised:
    """Raw program records -> Program rows (partner countries as a list of ISO alpha-3 codes)."""
    data, skipped, _ = _prepare(raw, ctx, ["program_code", "name_en"])
    for optional in ("name_ar", "partner_countries", "category", "start_date", "end_date", "status"):
        if optional not in data:
            data[optional] = pd.Series(pd.NA, index=data.index, dtype=_STR)
    data = data[[c for c in RawPrograms.to_schema().columns]]
    fails = [_raw_contract(RawPrograms, data, ctx)]
    h = ctx.header

    code = as_text(data["program_code"])
    first_row = data["excel_row"].groupby(code).transform("min")
    dup = code.notna() & (data["excel_row"] != first_row)
    fails.append(
        failures_where(
            data.assign(_first=first_row.astype("string")),
            dup,
            "program_code",
            "program_code_duplicate",
            lambda r, v: f"{h('program_code')} '" + v + "' already appears on row " + r["_first"].astype(_STR) + ".",
        )
    )

    parts = as_text(data["partner_countries"]).str.split(r"\s*[;؛|]\s*", regex=True).explode()
    parts = parts[as_text(parts).notna()] if len(parts) else parts
    mapped = countries.map_countries(parts, ref.country_lookup) if len(parts) else parts
    bad_parts = parts[mapped.isna()] if len(parts) else parts
    bad_rows = data.index.isin(bad_parts.index)
    bad_text = (
        bad_parts.groupby(level=0).agg(lambda s: ", ".join(map(str, s))) if len(bad_parts) else pd.Series(dtype=object)
    )
    fails.append(
        failures_where(
            data.assign(_bad=bad_text.reindex(data.index).astype(_STR)),
            pd.Series(bad_rows, index=data.index),
            "partner_countries",
            "country_unknown",
            lambda r, v: (
                f"{h('partner_countries')}: '" + r["_bad"] + "' is not a known country; "
                "add it to reference/country_aliases.csv."
            ),
        )
    )
    partner_lists = (
        mapped.dropna().groupby(level=0).agg(lambda s: sorted(set(s))) if len(parts) else pd.Series(dtype=object)
    )

    cat = categories.map_labels(data["category"], ctx.agency, ref.category_mappings, "category_code")
    fails.append(
        failures_where(
            data,
            cat.isna() & as_text(data["category"]).notna(),
            "category",
            "category_unmapped",
            lambda r, v: (
                f"{h('category')} '" + v + f"' has no category mapping for {ctx.agency}; "
                "add it to reference/category_mappings.csv."
            ),
        )
    )
    start, start_blank, start_outside, start_ambiguous = dates.read_dates(data["start_date"], _order(ctx))
    end, end_blank, end_outside, end_ambiguous = dates.read_dates(data["end_date"], _order(ctx))
    for col, parsed, blank, outside, ambiguous in (
        ("start_date", start, start_blank, start_outside, start_ambiguous),
        ("end_date", end, end_blank, end_outside, end_ambiguous),
    ):
        fails.append(_unreadable_dates(data, parsed.isna() & ~blank & ~outside & ~ambiguous, col, ctx))
        fails.append(_ambiguous_dates(data, ambiguous, col, ctx))
        fails.append(_out_of_range(data, outside, col, ctx))
    fails.append(
        failures_where(
            data,
            start.notna() & end.notna() & (end < start),
            "end_date",
            "date_outside_period",
            lambda r, v: f"{h('end_date')} '" + v + f"' is before {h('start_date')}.",
        )
    )

    canonical = pd.DataFrame(
        {
            "agency_code": pd.Series(ctx.agency, index=data.index, dtype=_STR),
            "program_code": code,
            "name_en": as_text(data["name_en"]),
            "name_ar": as_text(data["name_ar"]),
            "category_code": cat,
            "partner_iso3": partner_lists.reindex(data.index),
            "start_date": start,
            "end_date": end,
            "status": as_text(data["status"]).str.lower(),
            "excel_row": data["excel_row"],
        },
        index=data.index,
    )
    return _finish(canonical, Program, data, concat_failures(fails), skipped, len(raw), ctx)


STANDARDISERS = {"budget": standardise_budget, "programs": standardise_programs}

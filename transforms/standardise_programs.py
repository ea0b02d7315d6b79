"""The programs standardiser: raw program records -> Program rows (codes checked for repeats, partner countries
as a list of ISO alpha-3 codes, categories mapped, start and end dates read and checked), every row loaded,
quarantined or skipped once.
"""

from __future__ import annotations

import pandas as pd

from schemas.frames import Program, RawPrograms
from transforms import categories, countries, dates
from transforms.failures import concat_failures, failures_where
from transforms.reference import Reference
from transforms.standardise_checks import _ambiguous_dates, _finish, _out_of_range, _raw_contract, _unreadable_dates
from transforms.standardise_context import FileContext, Standardised
from transforms.standardise_rows import _order, _prepare
from transforms.text import as_text, missing_text

_STR = pd.StringDtype("pyarrow")


def standardise_programs(raw: pd.DataFrame, ctx: FileContext, ref: Reference) -> Standardised:
    """Raw program records -> Program rows (partner countries as a list of ISO alpha-3 codes)."""
    data, skipped, _ = _prepare(raw, ctx, ["program_code", "name_en"])
    for optional in ("name_ar", "partner_countries", "category", "start_date", "end_date", "status"):
        if optional not in data:
            data[optional] = missing_text(data.index)
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

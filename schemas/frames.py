"""Pandera contracts for the frames that move between stages.

Raw contracts check what a mapped file must hold before normalisation (no coercion: cells are text);
canonical contracts are strict and ordered: exactly what the warehouse accepts.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_
import pyarrow.compute as pc
from pandera import dtypes
from pandera.engines import pandas_engine
from pandera.typing import Series

from schemas.sources import STAGES

ISO3 = r"^[A-Z]{3}$"
AGENCY_CODE = r"^[A-Z][A-Z0-9_]+$"


def matches_each(series: pd.Series, pattern: str) -> pd.Series:
    """Per cell, whether ``pattern`` matches it from its start (``re.match``, as pandas' ``str.match`` and pandera's
    ``str_matches`` test it), worked out once per distinct value; missing cells pass (nullability is its own check)."""
    rx = re.compile(pattern)
    arrow = getattr(series.array, "_pa_array", None)
    if isinstance(arrow, pa_.ChunkedArray) and pa_.types.is_large_string(arrow.type):
        # the distinct codes from one hash pass; where all match (every file that loads), nothing per row
        bad = [u for u in pc.unique(arrow).drop_null().to_pylist() if rx.match(u) is None]
        if not bad:
            return pd.Series(True, index=series.index)
        failing = pc.fill_null(pc.is_in(arrow, value_set=pa_.array(bad, arrow.type)), False)
        return pd.Series(~np.asarray(failing), index=series.index)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    ok = np.array([rx.match(str(u)) is not None for u in uniques] + [True], dtype=bool)
    return pd.Series(ok[codes], index=series.index)


@pandas_engine.Engine.register_dtype
@dtypes.immutable(init=True)
class Text(pandas_engine.STRING):
    """Arrow-backed pandas strings, pandera's ``pd.StringDtype`` in every respect (coercion, failure cases) but one:
    a column already of this dtype passes its dtype check as one ``True``. Pandera's own check answers a whole
    column of ``True`` there, which it then filters for failures and formats into a message that is never shown:
    0.5-1 ms per text column and contract, two contracts of 9-12 text columns per file. (Checking the dtype, not a
    per-element ``str`` check, is itself ~10x cheaper.)"""

    storage: Literal["python", "pyarrow"] | None = "pyarrow"

    def check(self, pandera_dtype: dtypes.DataType, data_container: pd.Series | None = None) -> Any:
        try:
            if pandas_engine.Engine.dtype(pandera_dtype).type == self.type:
                return True
        except TypeError:
            return False
        return super().check(pandera_dtype, data_container)


class RawBudget(pa.DataFrameModel):
    """A budget sheet after column mapping: required cells present; every cell still text."""

    program_code: Series[Text] = pa.Field(nullable=False)
    program_name: Series[Text] | None = pa.Field(nullable=True)
    partner_country: Series[Text] = pa.Field(nullable=False)
    category: Series[Text] = pa.Field(nullable=False)
    fiscal_year: Series[Text] = pa.Field(nullable=False)
    amount: Series[Text] = pa.Field(nullable=False)
    currency: Series[Text] | None = pa.Field(nullable=True)
    stage: Series[Text] | None = pa.Field(nullable=True)
    transaction_date: Series[Text] | None = pa.Field(nullable=True)
    excel_row: Series[np.int32] = pa.Field(ge=1, unique=True)

    class Config:
        strict = True
        coerce = False


class RawPrograms(pa.DataFrameModel):
    program_code: Series[Text] = pa.Field(nullable=False)
    name_en: Series[Text] = pa.Field(nullable=False)
    name_ar: Series[Text] | None = pa.Field(nullable=True)
    partner_countries: Series[Text] | None = pa.Field(nullable=True)
    category: Series[Text] | None = pa.Field(nullable=True)
    start_date: Series[Text] | None = pa.Field(nullable=True)
    end_date: Series[Text] | None = pa.Field(nullable=True)
    status: Series[Text] | None = pa.Field(nullable=True)
    excel_row: Series[np.int32] = pa.Field(ge=1, unique=True)

    class Config:
        strict = True
        coerce = False


class FundingLine(pa.DataFrameModel):
    """One canonical budget line: what fact_funding_line accepts (strict, ordered)."""

    agency_code: Series[Text]
    program_code: Series[Text] = pa.Field(str_length={"min_value": 1, "max_value": 64})
    program_name: Series[Text] = pa.Field(nullable=True)
    # NULL only on a row loaded with a declared warning (country_unknown, category_unmapped) waiting for a mapping
    country_iso3: Series[Text] = pa.Field(nullable=True)
    category_code: Series[Text] = pa.Field(nullable=True)
    category_label: Series[Text] = pa.Field(nullable=True)
    stage: Series[Text] = pa.Field(isin=list(STAGES))
    fiscal_year: Series[int] = pa.Field(ge=1900, le=2100)
    fiscal_year_label: Series[Text]
    period_start: Series[pd.Timestamp]
    period_end: Series[pd.Timestamp]
    transaction_date: Series[pd.Timestamp] = pa.Field(nullable=True)
    amount_original: Series[float]
    currency: Series[Text]
    amount_usd: Series[float]
    fx_rate: Series[float] = pa.Field(gt=0)
    fx_rate_date: Series[pd.Timestamp]
    fx_provider: Series[Text]
    fx_policy: Series[Text]
    amount_usd_constant: Series[float] = pa.Field(nullable=True)
    constant_base_year: Series[int] = pa.Field(ge=1913, le=2100)
    warning_rules: Series[Text] = pa.Field(nullable=True)  # rules that warned on this row (comma-separated)
    excel_row: Series[int] = pa.Field(ge=1)

    class Config:
        strict = True
        ordered = True
        coerce = True

    # pandera's str_matches, run once per distinct code (a file holds one agency and a few countries and currencies):
    # the same result, the same failure cases and the same name in them, 1-2 ms per column instead of 5
    @pa.check("agency_code", name="str_matches", error=f"str_matches('{AGENCY_CODE}')")
    @classmethod
    def _agency_code(cls, codes: pd.Series) -> pd.Series:
        return matches_each(codes, AGENCY_CODE)

    @pa.check("country_iso3", name="str_matches", error=f"str_matches('{ISO3}')")
    @classmethod
    def _country_iso3(cls, codes: pd.Series) -> pd.Series:
        return matches_each(codes, ISO3)

    @pa.check("currency", name="str_matches", error=f"str_matches('{ISO3}')")
    @classmethod
    def _currency(cls, codes: pd.Series) -> pd.Series:
        return matches_each(codes, ISO3)

    @pa.dataframe_check(name="period_ends_after_start")
    @classmethod
    def _period(cls, df: pd.DataFrame) -> pd.Series:
        return df["period_end"] > df["period_start"]

    @pa.dataframe_check(name="usd_matches_rate", description="amount_usd == amount_original / fx_rate")
    @classmethod
    def _usd(cls, df: pd.DataFrame) -> pd.Series:
        return (df["amount_usd"] * df["fx_rate"] - df["amount_original"]).abs() <= 1e-6 * df[
            "amount_original"
        ].abs().clip(lower=1)


class Program(pa.DataFrameModel):
    agency_code: Series[Text]
    program_code: Series[Text] = pa.Field(str_length={"min_value": 1, "max_value": 64})
    name_en: Series[Text]
    name_ar: Series[Text] = pa.Field(nullable=True)
    category_code: Series[Text] = pa.Field(nullable=True)
    partner_iso3: Series[object] = pa.Field(nullable=True)  # list of ISO alpha-3 codes
    start_date: Series[pd.Timestamp] = pa.Field(nullable=True)
    end_date: Series[pd.Timestamp] = pa.Field(nullable=True)
    status: Series[Text] = pa.Field(nullable=True)
    warning_rules: Series[Text] = pa.Field(nullable=True)
    excel_row: Series[int] = pa.Field(ge=1)

    class Config:
        strict = True
        ordered = True
        coerce = True


class Failure(pa.DataFrameModel):
    """One validation failure, located to the cell."""

    excel_row: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    column: Series[Text] = pa.Field(nullable=True)
    value: Series[Text] = pa.Field(nullable=True)
    rule: Series[Text]
    severity: Series[Text] = pa.Field(isin=["block", "warn"])
    message: Series[Text]
    suggestion: Series[Text] = pa.Field(nullable=True)

    class Config:
        strict = True
        ordered = True
        coerce = True


FUNDING_LINE_COLUMNS = list(FundingLine.to_schema().columns)
PROGRAM_COLUMNS = list(Program.to_schema().columns)
FAILURE_COLUMNS = list(Failure.to_schema().columns)

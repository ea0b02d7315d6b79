"""Original amounts -> US dollars through the reference rate table (annual averages, units per US$)."""
from __future__ import annotations

import pandas as pd

from transforms.text import as_text, per_unique

FX_PROVIDER = "reference/fx_rates.csv"
FX_POLICY = "calendar_year_average_of_fiscal_year_end"


def normalize_currency(cells: pd.Series, default: str | None) -> pd.Series:
    codes = per_unique(cells, lambda u: as_text(u).str.upper())
    if default:
        codes = codes.fillna(default)
    return codes.astype(pd.StringDtype("pyarrow"))


def convert_to_usd(amount: pd.Series, currency: pd.Series, rate_year: pd.Series, fx_rates: pd.DataFrame) -> pd.DataFrame:
    """Vectorised join on (currency, year). Returns columns amount_usd, fx_rate, fx_rate_date, fx_provider,
    fx_policy; rows without a rate have NA in all of them."""
    keys = pd.DataFrame({"currency": currency.astype(object), "year": rate_year.astype("Int64")}, index=amount.index)
    rates = fx_rates[["currency", "year", "units_per_usd"]].astype({"currency": object, "year": "Int64"})
    joined = keys.merge(rates, on=["currency", "year"], how="left", validate="many_to_one")
    rate = pd.Series(joined["units_per_usd"].to_numpy(dtype="float64"), index=amount.index)
    has = rate.notna()
    rate_date = pd.to_datetime({"year": keys["year"].astype("float64"), "month": 12, "day": 31}, errors="coerce")
    return pd.DataFrame(
        {
            "amount_usd": amount / rate,
            "fx_rate": rate,
            "fx_rate_date": rate_date.where(has),
            "fx_provider": pd.Series(FX_PROVIDER, index=amount.index, dtype=pd.StringDtype("pyarrow")).where(has),
            "fx_policy": pd.Series(FX_POLICY, index=amount.index, dtype=pd.StringDtype("pyarrow")).where(has),
        },
        index=amount.index,
    )

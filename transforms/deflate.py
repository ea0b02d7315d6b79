"""Nominal US$ -> constant US$ of a base year, with US CPI-U annual averages (docs/adr/0005-constant-dollars.md)."""

from __future__ import annotations

import pandas as pd

from transforms.text import per_unique


def deflate(amount_usd: pd.Series, year: pd.Series, cpi_annual: pd.DataFrame, base_year: int) -> pd.Series:
    """``amount_usd * CPI(base_year) / CPI(year)``; NA where the year has no CPI (e.g. the current, incomplete year).

    ``cpi_annual``: year, value (annual average index)."""
    index = pd.Series(cpi_annual["value"].to_numpy(dtype="float64"), index=cpi_annual["year"].astype(int).to_numpy())
    if base_year not in index.index:
        raise ValueError(f"no CPI for the base year {base_year}; CPI covers {index.index.min()}-{index.index.max()}")
    factor = per_unique(year.astype("Int64"), lambda u: u.map(index).astype("Float64")).astype("float64")
    return (amount_usd * index[base_year] / factor).astype("float64")


def price_year(period_start: pd.Series, period_end: pd.Series) -> pd.Series:
    """The calendar year holding the middle of the fiscal period: the year whose prices an amount is in."""
    return (period_start + (period_end - period_start) / 2).dt.year.astype("Int64")

"""Our FX providers and CPI deflation against SIPRI's published conversions (SIPRI Military Expenditure
Database, 2023 release: local currency, current US$ m., constant 2021 US$ m.).

- local currency -> US$ within 2 % of SIPRI's Current US$ for Saudi Arabia (through the peg), Türkiye and
  Indonesia (ECB rates crossed through EUR), Pakistan (World Bank annual averages) and the USA, 2015-2022;
- US current -> constant 2021 US$ with our CPI-U deflation within 1 % of SIPRI's Constant (2021) US$.
"""

from __future__ import annotations

import fastexcel
import pandas as pd
import pytest

from flows.reference import cpi_annual, ecb_provider, worldbank_provider
from transforms import deflate, fx

pytestmark = pytest.mark.realdata
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
YEARS = [str(y) for y in range(2015, 2023)]
COUNTRIES = {
    "Saudi Arabia": "SAR",
    "Türkiye": "TRY",
    "Indonesia": "IDR",
    "Pakistan": "PKR",
    "United States of America": "USD",
}
TOLERANCE_FX, TOLERANCE_CPI = 0.02, 0.01


def sheet(path, name: str, header_row: int) -> pd.DataFrame:
    frame = fastexcel.read_excel(str(path)).load_sheet(name, header_row=header_row, dtypes="string").to_pandas()
    frame = frame[frame["Country"].isin(COUNTRIES)].set_index("Country")
    return frame[YEARS].apply(pd.to_numeric, errors="coerce")  # "..." (missing) and "xxx" become NaN


@pytest.fixture(scope="module")
def sipri(realdata):
    path = realdata / "sipri_milex" / "SIPRI-Milex-data-1949-2022.xlsx"
    return {
        "local": sheet(path, "Local currency calendar years", 6),
        "current": sheet(path, "Current US$", 5),
        "constant": sheet(path, "Constant (2021) US$", 5),
    }


@pytest.fixture(scope="module")
def chain(realdata):
    pegs = pd.read_csv(ROOT / "reference" / "fx_pegs.csv", dtype=str).astype({"units_per_usd": float})
    countries = pd.read_csv(ROOT / "reference" / "currency_countries.csv", dtype=str)
    wb = worldbank_provider(realdata / "fx" / "worldbank_PA.NUS.FCRF_2025-07.csv", countries)
    return fx.FxChain((fx.range_provider("peg", pegs), ecb_provider(), wb))


def comparisons(sipri, chain) -> pd.DataFrame:
    local = sipri["local"].stack().rename("local").reset_index().rename(columns={"level_1": "year"})
    local["currency"] = local["Country"].map(COUNTRIES)
    year = local["year"].astype(int)
    start = pd.to_datetime(year.astype(str) + "-01-01")
    end = pd.to_datetime(year.astype(str) + "-12-31")
    conv = fx.convert(
        local["local"],
        local["currency"],
        pd.Series(pd.NaT, index=local.index, dtype="datetime64[ns]"),
        start,
        end,
        pd.Series(fx.PERIOD_AVERAGE, index=local.index),
        chain,
    )
    local["ours_usd_m"] = conv["amount_usd"] / 1e6
    local["provider"] = conv["fx_provider"]
    local["sipri_usd_m"] = [sipri["current"].at[c, y] for c, y in zip(local["Country"], local["year"])]
    local["rel_diff"] = (local["ours_usd_m"] / local["sipri_usd_m"] - 1).abs()
    return local.dropna(subset=["sipri_usd_m"])


def test_local_currency_to_usd_within_2_percent(sipri, chain):
    result = comparisons(sipri, chain)
    assert set(result["Country"]) == set(COUNTRIES)
    assert len(result) >= 35  # 5 countries x 8 years, less the odd missing value
    assert result["ours_usd_m"].notna().all(), result[result["ours_usd_m"].isna()]
    # A plain dict: groupby().agg(set) casts the sets back to the column's (Arrow text) dtype, as lists.
    providers = {country: set(group) for country, group in result.groupby("Country")["provider"]}
    assert providers["Saudi Arabia"] == {"peg"} and providers["Pakistan"] == {"worldbank"}
    assert providers["Türkiye"] == {"ecb"} and providers["Indonesia"] == {"ecb"}
    worst = result.sort_values("rel_diff", ascending=False).head(5)
    print("\nlargest differences, local currency -> US$ vs SIPRI Current US$:\n" + worst.to_string())
    assert result["rel_diff"].max() <= TOLERANCE_FX, worst
    saudi = result[result["Country"] == "Saudi Arabia"]
    assert saudi["rel_diff"].max() < 1e-9  # exact through the peg: local / 3.75 / 1e6


def test_us_constant_dollars_within_1_percent(sipri):
    current = sipri["current"].loc["United States of America"]
    years = pd.Series([int(y) for y in YEARS], index=YEARS)
    ours = deflate.deflate(current * 1.0, years, cpi_annual(), base_year=2021)
    theirs = sipri["constant"].loc["United States of America"]
    diff = (ours / theirs - 1).abs()
    print("\nUS constant 2021 US$, ours vs SIPRI, relative difference by year:\n" + diff.to_string())
    assert diff.max() <= TOLERANCE_CPI

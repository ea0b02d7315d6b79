"""The FX provider chain and its two policies, on tiny inline rate tables with exact expected values."""

from __future__ import annotations

import pandas as pd
import pytest

from transforms import fx

ECB_WIDE = pd.DataFrame(
    {
        "Date": ["2024-01-05", "2024-01-04", "2024-01-03"],
        "USD": [1.10, 1.00, 1.20],
        "GBP": [0.88, 0.80, 0.90],
        "Unnamed: 3": [None, None, None],
    }
)
PEGS = pd.DataFrame(
    {
        "currency": ["SAR", "AED"],
        "valid_from": ["1986-06-01", "1997-11-01"],
        "valid_to": [None, None],
        "units_per_usd": [3.75, 3.6725],
    }
)
OVERRIDES = pd.DataFrame(
    {
        "currency": ["GBP", "XOF"],
        "valid_from": ["2024-01-04", "2024-01-01"],
        "valid_to": ["2024-01-04", "2024-12-31"],
        "units_per_usd": [0.5, 600.0],
    }
)
WB = pd.DataFrame({"currency": ["PKR", "PKR"], "year": [2023, 2024], "units_per_usd": [280.356, 278.0]})


def chain(*names: str) -> fx.FxChain:
    providers = {
        "override": fx.range_provider("override", OVERRIDES),
        "peg": fx.range_provider("peg", PEGS),
        "ecb": fx.ecb_from_wide(ECB_WIDE),
        "worldbank": fx.AnnualProvider("worldbank", WB),
    }
    return fx.FxChain(tuple(providers[n] for n in names))


def convert(rows: list[tuple], c: fx.FxChain, lookback: int = 7) -> pd.DataFrame:
    """rows: (amount, currency, transaction date or None, policy); fiscal period = calendar 2024."""
    df = pd.DataFrame(rows, columns=["amount", "currency", "date", "policy"])
    n = len(df)
    return fx.convert(
        df["amount"].astype(float),
        df["currency"],
        pd.to_datetime(df["date"]).astype("datetime64[ns]"),
        pd.Series([pd.Timestamp("2024-01-01")] * n),
        pd.Series([pd.Timestamp("2024-01-05")] * n),
        df["policy"],
        c,
        lookback,
    )


def test_ecb_crossed_through_eur():
    p = fx.ecb_from_wide(ECB_WIDE).table.set_index(["currency", "date"])["units_per_usd"]
    assert p[("GBP", pd.Timestamp("2024-01-05"))] == pytest.approx(0.88 / 1.10)
    assert p[("EUR", pd.Timestamp("2024-01-05"))] == pytest.approx(1 / 1.10)


CASES = [
    # amount, currency, date, policy -> rate, rate date, provider, policy recorded
    ((100, "GBP", "2024-01-05", fx.TRANSACTION_DATE), (0.8, "2024-01-05", "ecb", "transaction_date")),
    (
        (100, "GBP", "2024-01-07", fx.TRANSACTION_DATE),
        (0.8, "2024-01-05", "ecb", "transaction_date"),
    ),  # Sunday: look back
    (
        (100, "GBP", "2024-01-04", fx.TRANSACTION_DATE),
        (0.5, "2024-01-04", "override", "transaction_date"),
    ),  # steward first
    ((375, "SAR", "2024-01-07", fx.TRANSACTION_DATE), (3.75, "2024-01-07", "peg", "transaction_date")),
    ((100, "USD", "2024-01-07", fx.TRANSACTION_DATE), (1.0, "2024-01-07", "identity", "transaction_date")),
    (
        (100, "EUR", None, fx.TRANSACTION_DATE),
        ((1 / 1.1 + 1 / 1.0 + 1 / 1.2) / 3, "2024-01-05", "ecb", "fiscal_period_average (no transaction date)"),
    ),
    (
        (100, "GBP", None, fx.PERIOD_AVERAGE),
        ((0.88 / 1.1 + 0.8 / 1.0 + 0.9 / 1.2) / 3, "2024-01-05", "ecb", "fiscal_period_average"),
    ),
    ((100, "PKR", "2024-03-01", fx.TRANSACTION_DATE), (278.0, "2024-12-31", "worldbank", "transaction_date")),
    ((100, "XOF", None, fx.PERIOD_AVERAGE), (600.0, "2024-01-05", "override", "fiscal_period_average")),
]


@pytest.mark.parametrize("row,expected", CASES)
def test_chain_and_policies(row, expected):
    got = convert([row], chain("override", "peg", "ecb", "worldbank")).iloc[0]
    rate, rate_date, provider, policy = expected
    assert got["fx_rate"] == pytest.approx(rate)
    assert got["fx_rate_date"] == pd.Timestamp(rate_date)
    assert (got["fx_provider"], got["fx_policy"]) == (provider, policy)
    assert got["amount_usd"] == pytest.approx(row[0] / rate)


def test_every_case_at_once_keeps_each_lines_provider_and_policy_as_text():
    """One call over lines of both policies and several providers (each line's provider and policy are numbers
    into the distinct texts of both passes), with a line no provider has a rate for."""
    cases = CASES[::-1]  # the period-average lines meet their providers in another order than the dated ones
    rows = [row for row, _ in cases] + [(100, "YER", "2024-01-05", fx.TRANSACTION_DATE)]
    got = convert(rows, chain("override", "peg", "ecb", "worldbank"))
    assert got["fx_provider"].dtype == pd.StringDtype("pyarrow") and got["fx_policy"].dtype == got["fx_provider"].dtype
    expected = [(provider, policy) for _, (_, _, provider, policy) in cases]
    assert list(zip(got["fx_provider"].iloc[:-1], got["fx_policy"].iloc[:-1], strict=True)) == expected
    assert got["fx_provider"].iloc[-1] is pd.NA and got["fx_policy"].iloc[-1] is pd.NA


def test_no_rate_means_no_conversion():
    got = convert(
        [
            (100, "GBP", "2024-01-20", fx.TRANSACTION_DATE),  # beyond the 7-day look-back
            (100, "YER", "2024-01-05", fx.TRANSACTION_DATE),
        ],
        chain("peg", "ecb"),
    )
    assert got["fx_rate"].isna().all() and got["amount_usd"].isna().all() and got["fx_provider"].isna().all()


def test_lookback_is_bounded_by_configuration():
    row = [(100, "GBP", "2024-01-07", fx.TRANSACTION_DATE)]
    assert convert(row, chain("ecb"), lookback=1)["fx_rate"].isna().all()
    assert convert(row, chain("ecb"), lookback=2)["fx_rate"].iloc[0] == pytest.approx(0.8)


def test_order_of_the_chain_decides():
    row = [(100, "GBP", "2024-01-04", fx.TRANSACTION_DATE)]
    assert convert(row, chain("ecb", "override"))["fx_provider"].iloc[0] == "ecb"
    assert convert(row, chain("override", "ecb"))["fx_provider"].iloc[0] == "override"


def test_worldbank_from_wdi_maps_currency_through_country():
    wdi = pd.DataFrame(
        {
            "Country Name": ["Pakistan", "Euro area"],
            "Country Code": ["PAK", "EMU"],
            "2023": ["280.356", "0.924"],
            "2024": ["", "0.9239"],
            "Unnamed: 69": [None, None],
        }
    )
    p = fx.worldbank_from_wdi(wdi, pd.DataFrame({"currency": ["PKR", "EUR"], "iso3": ["PAK", "EMU"]}))
    assert sorted(map(tuple, p.table.to_numpy().tolist())) == [
        ("EUR", 2023, 0.924),
        ("EUR", 2024, 0.9239),
        ("PKR", 2023, 280.356),
    ]


def test_locked_rates_win_and_keep_their_provider():
    lock = pd.DataFrame(
        {
            "currency": ["GBP", "GBP"],
            "policy": [fx.TRANSACTION_DATE, fx.PERIOD_AVERAGE],
            "key_start": pd.to_datetime(["2024-01-05", "2024-01-01"]),
            "key_end": pd.to_datetime(["2024-01-05", "2024-01-05"]),
            "fiscal_year": [0, 0],
            "units_per_usd": [0.7, 0.75],
            "rate_date": pd.to_datetime(["2024-01-05", "2024-01-05"]),
            "provider": ["ecb", "ecb"],
        }
    )
    c = fx.FxChain((fx.LockedProvider("locked", lock), *chain("ecb").providers))
    got = convert(
        [
            (100, "GBP", "2024-01-05", fx.TRANSACTION_DATE),
            (100, "GBP", None, fx.PERIOD_AVERAGE),
            (100, "GBP", "2024-01-04", fx.TRANSACTION_DATE),
        ],
        c,
    )
    assert got["fx_rate"].tolist() == pytest.approx([0.7, 0.75, 0.8])  # the third date is not locked: live ECB
    assert got["fx_provider"].tolist() == ["ecb", "ecb", "ecb"]

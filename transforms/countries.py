"""Partner-country names and codes -> ISO 3166-1 alpha-3, through pycountry plus the steward alias table."""

from __future__ import annotations

import pandas as pd
import pycountry
from rapidfuzz import process as fuzz_process

from transforms.text import STR, as_text, fold_key, per_unique


def build_country_lookup(aliases: pd.DataFrame) -> pd.DataFrame:
    """(key, iso3) for every ISO code, pycountry name and steward alias; steward aliases win."""
    rows: list[tuple[str, str]] = []
    for c in pycountry.countries:
        for name in (c.alpha_2, c.alpha_3, c.name, getattr(c, "official_name", None), getattr(c, "common_name", None)):
            if name:
                rows.append((name, c.alpha_3))
    for c in pycountry.historic_countries:  # former states keep their own code (flagged in dim_country)
        for name in (c.alpha_3, c.name):
            if name:
                rows.append((name, c.alpha_3))
    lib = pd.DataFrame(rows, columns=["alias", "iso3"])
    steward = aliases[["alias", "iso3"]].copy()
    both = pd.concat([steward, lib], ignore_index=True)
    both["key"] = fold_key(as_text(both["alias"]))
    both = both.dropna(subset=["key"]).drop_duplicates("key", keep="first")
    return both[["key", "iso3", "alias"]].reset_index(drop=True)


def map_countries(cells: pd.Series, lookup: pd.DataFrame) -> pd.Series:
    """Country cells -> ISO alpha-3 (NA where unknown). Vectorised: one hash lookup per row."""
    mapping = pd.Series(lookup["iso3"].to_numpy(), index=lookup["key"].to_numpy())
    return per_unique(cells, lambda u: fold_key(u).map(mapping)).astype(STR)


def suggest(values: pd.Series, choices: pd.Series, labels: pd.Series | None = None, cutoff: float = 80.0) -> pd.Series:
    """Closest known spelling for each distinct unknown value (rapidfuzz), or NA. Runs per distinct value only."""
    labels = (choices if labels is None else labels).reset_index(drop=True)
    choices = choices.reset_index(drop=True)
    long_enough = choices.str.len() >= 4  # codes (AT, AUT) are no useful "did you mean"
    choices, labels = choices[long_enough].reset_index(drop=True), labels[long_enough].reset_index(drop=True)
    keys = fold_key(as_text(values))
    choice_list = choices.tolist()
    out: dict[str, str] = {}
    for key in keys.dropna().unique():
        hit = fuzz_process.extractOne(key, choice_list, score_cutoff=cutoff)
        if hit is not None:
            out[key] = str(labels.iloc[hit[2]])
    return keys.map(out).astype(pd.StringDtype("pyarrow"))

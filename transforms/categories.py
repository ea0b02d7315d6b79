"""Agency category labels -> canonical taxonomy codes, agency-specific mappings first, then shared ones."""
from __future__ import annotations

import pandas as pd

from transforms.text import as_text, fold_key


def map_labels(cells: pd.Series, agency: str, mappings: pd.DataFrame, value_column: str) -> pd.Series:
    """Map label cells through a (agency, label, <value_column>) table; agency '*' applies to every agency."""
    keys = fold_key(as_text(cells))
    table = mappings.assign(key=fold_key(as_text(mappings["label"])))
    own = table[table["agency"] == agency]
    shared = table[table["agency"] == "*"]
    result = keys.map(_lookup(own, value_column)).astype(object)
    fallback = keys.map(_lookup(shared, value_column)).astype(object)
    return result.where(result.notna(), fallback).astype(pd.StringDtype("pyarrow"))


def _lookup(table: pd.DataFrame, value_column: str) -> pd.Series:
    """key -> value, first row wins for a repeated key."""
    return pd.Series(table[value_column].to_numpy(dtype=object), index=table["key"].to_numpy()).groupby(level=0).first()


def map_stages(cells: pd.Series, stage_labels: pd.DataFrame, default: str | None) -> pd.Series:
    """Stage cells -> allocated/committed/obligated/disbursed; blank cells take the source default."""
    keys = fold_key(as_text(cells))
    mapped = keys.map(pd.Series(stage_labels["stage"].to_numpy(), index=fold_key(as_text(stage_labels["label"])).to_numpy()))
    if default is not None:
        mapped = mapped.where(keys.notna(), default)
    return mapped.astype(pd.StringDtype("pyarrow"))

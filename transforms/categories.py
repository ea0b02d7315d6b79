"""Agency category labels -> canonical taxonomy codes, agency-specific mappings first, then shared ones."""

from __future__ import annotations

import pandas as pd

from transforms.text import STR, as_text, derived, fold_key, per_unique


def map_labels(cells: pd.Series, agency: str, mappings: pd.DataFrame, value_column: str) -> pd.Series:
    """Map label cells through a (agency, label, <value_column>) table; agency '*' applies to every agency."""
    own, shared = derived(mappings, ("labels", agency, value_column), lambda: _tables(mappings, agency, value_column))

    def _map(unique: pd.Series) -> pd.Series:
        keys = fold_key(unique)
        result = keys.map(own).astype(object)
        return result.where(result.notna(), keys.map(shared).astype(object))

    return per_unique(cells, _map, STR)


def suggest_categories(values: pd.Series, mappings: pd.DataFrame, taxonomy: pd.DataFrame) -> pd.Series:
    """A did-you-mean for unmapped category labels that names the *target*, "CODE (English name)", never a label:
    another agency's mapping of the very same label would otherwise be suggested as the label itself. A typo of
    labels of one category only (``countries.suggest`` with the category codes as entities), else NA."""
    from transforms.countries import suggest

    codes = mappings["category_code"].astype(str)
    names = pd.Series(taxonomy["name_en"].to_numpy(dtype=object), index=taxonomy["category_code"].to_numpy())
    target = codes + " (" + codes.map(names).fillna(codes).astype(str) + ")"
    return suggest(values, mappings["label"].str.casefold(), target, entities=codes, kind="label")


def _tables(mappings: pd.DataFrame, agency: str, value_column: str) -> tuple[pd.Series, pd.Series]:
    """(the agency's own key -> value, the shared ones) of a mapping table."""
    table = mappings.assign(key=fold_key(mappings["label"]))
    return _lookup(table[table["agency"] == agency], value_column), _lookup(table[table["agency"] == "*"], value_column)


def _lookup(table: pd.DataFrame, value_column: str) -> pd.Series:
    """key -> value, first row wins for a repeated key."""
    return pd.Series(table[value_column].to_numpy(dtype=object), index=table["key"].to_numpy()).groupby(level=0).first()


def map_stages(cells: pd.Series, stage_labels: pd.DataFrame, default: str | None) -> pd.Series:
    """Stage cells -> allocated/committed/obligated/disbursed; blank cells take the source default."""
    table = derived(
        stage_labels,
        ("stages",),
        lambda: pd.Series(stage_labels["stage"].to_numpy(), index=fold_key(stage_labels["label"]).to_numpy()),
    )
    mapped = per_unique(cells, lambda u: fold_key(u).map(table).astype(object), STR)
    if default is not None:
        mapped = mapped.where(as_text(cells).notna(), default)
    return mapped

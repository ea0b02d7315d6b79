"""Currency cells -> ISO 4217 codes (conversion itself is transforms.fx)."""

from __future__ import annotations

import pandas as pd

from transforms.text import as_text, per_unique


def normalize_currency(cells: pd.Series, default: str | None) -> pd.Series:
    """Upper-cased, stripped codes; blank cells take the source's default currency."""
    codes = per_unique(cells, lambda u: as_text(u).str.upper())
    if default:
        codes = codes.fillna(default)
    return codes.astype(pd.StringDtype("pyarrow"))


def normalize_for_fx(codes: pd.Series, not_iso: pd.Series) -> pd.Series:
    """Codes to look rates up for: unknown codes are left out (they fail as currency_unknown instead)."""
    return codes.astype(object).where(~not_iso, None)

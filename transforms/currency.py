"""Currency cells -> ISO 4217 codes (conversion itself is transforms.fx)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from transforms.text import as_text, per_unique, per_unique_objects


def normalize_currency(cells: pd.Series, default: str | None) -> pd.Series:
    """Upper-cased, stripped codes; blank cells take the source's default currency."""
    codes = per_unique(cells, lambda u: as_text(u).str.upper())
    if default:
        codes = codes.fillna(default)
    return codes.astype(pd.StringDtype("pyarrow"))


def check_codes(codes: pd.Series, dated: pd.Series, ref) -> tuple[pd.Series, pd.Series]:
    """``(unknown, withdrawn)`` per row: a code neither current ISO 4217 nor in the historic table; a historic code
    used on or after its withdrawal (``dated``: the transaction date, else the fiscal period's start). A historic
    code before that date is valid: it still needs a rate (the ECB series holds the euro's predecessors, or a
    steward's row in fx_rates.csv)."""
    hist = ref.historic_currencies
    # per distinct code (a file holds a few), taken back to the rows
    unknown = per_unique(codes, lambda u: (~u.isin(ref.iso_currencies) & ~u.isin(hist.index)).astype("boolean"))
    ends = per_unique(codes, lambda u: pd.to_datetime(u.astype(object).map(hist["withdrawn_on"])))
    when = pd.to_datetime(dated).to_numpy()  # compared in the dates' own unit (no day out of range wraps)
    on = ends.to_numpy().astype(when.dtype)
    withdrawn = ~np.isnat(on) & ~np.isnat(when) & (when >= on)
    return unknown.fillna(False).astype(bool), pd.Series(withdrawn, index=codes.index)


def normalize_for_fx(codes: pd.Series, not_iso: pd.Series) -> pd.Series:
    """Codes to look rates up for: unknown codes are left out (they fail as currency_unknown instead). Object dtype,
    one shared text per distinct code."""
    return per_unique_objects(codes, lambda u: u.astype(object), na=pd.NA).where(~not_iso, None)

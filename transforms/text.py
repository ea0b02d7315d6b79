"""Vectorised text clean-up shared by the normalisers.

Label-like columns (countries, categories, stages, currencies, fiscal-year labels) hold a handful of distinct values
in thousands of rows, so the normalisers work on the distinct values (:func:`per_unique`) and map back by position:
the Python-level string work is proportional to the number of distinct values, not rows.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import TypeVar, cast

import numpy as np
import pandas as pd
import pyarrow.compute as pc

ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"
EASTERN_ARABIC_INDIC = "۰۱۲۳۴۵۶۷۸۹"
_DIGITS = str.maketrans(ARABIC_INDIC + EASTERN_ARABIC_INDIC, "0123456789" * 2)
STR = pd.StringDtype("pyarrow")
T = TypeVar("T")


def per_unique(series: pd.Series, fn: Callable[[pd.Series], pd.Series], dtype: object = None) -> pd.Series:
    """Apply ``fn`` to the distinct non-null values of ``series`` and broadcast the results back.
    NA stays NA. ``fn`` receives and returns a Series of the same length (any dtype). ``dtype``: the results are
    converted to it before they are broadcast (per distinct value: text from Python strings to Arrow once per
    value, not once per row, 2-5 ms per column of 100,000 rows)."""
    codes, uniques = distinct(series)
    mapped = fn(uniques)
    return spread(mapped if dtype is None else mapped.astype(dtype), codes, series)


def distinct(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """``(codes, uniques)``: the distinct non-null values of ``series`` (in order of first appearance, same dtype)
    and per row the number of its value (-1 where missing); for several functions of the same distinct values
    (:func:`spread` takes each result back to the rows)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, pd.Series(uniques, dtype=series.dtype if len(uniques) else object)


def spread(mapped: pd.Series, codes: np.ndarray, like: pd.Series) -> pd.Series:
    """Results per distinct value (:func:`distinct`) taken back to the rows of ``like``; NA where a row's value is
    missing. Every cell missing (a column the file lacks): the codes are all -1 and the empty result takes NA for
    each, at C speed (a list of a million pd.NA, converted, cost 7-15 ms per column)."""
    return pd.Series(mapped.array.take(codes, allow_fill=True), index=like.index, name=like.name)


def per_unique_objects(series: pd.Series, fn: Callable[[pd.Series], pd.Series], na: object = np.nan) -> pd.Series:
    """:func:`per_unique` for results kept as Python objects (object dtype, never inferred as text): each row holds a
    reference to its distinct value's result, so a million rows cost a million pointers, not a million strings.
    Missing cells get ``na``."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = fn(pd.Series(uniques, dtype=series.dtype if len(uniques) else object))
    table = np.empty(len(mapped) + 1, dtype=object)
    table[: len(mapped)] = np.asarray(mapped, dtype=object)
    table[-1] = na  # code -1: a missing cell
    return pd.Series(table[codes], index=series.index, name=series.name, dtype=object)


_DERIVED: dict[tuple[object, ...], tuple[pd.DataFrame, object]] = {}


def derived(table: pd.DataFrame, what: tuple[object, ...], build: Callable[[], T]) -> T:
    """``build()``, a lookup derived from a reference ``table`` (folded keys, an agency's rows), made once per table
    and kept while that very table is in use: every file of a night maps through the same tables, and folding them
    again per file cost 3-5 ms. Reference tables are never changed in place (a steward's edit is a new table), and
    the entry holds the table, so its id is not reused while cached. Thread-safe: two threads may both build it."""
    key = (id(table), *what)
    hit = _DERIVED.get(key)
    if hit is not None and hit[0] is table:
        return cast(T, hit[1])
    value = build()
    if len(_DERIVED) >= 64:  # a few tables per night: only a long-lived process with many references gets here
        _DERIVED.clear()
    _DERIVED[key] = (table, value)
    return value


def as_text(series: pd.Series) -> pd.Series:
    """Any series -> Arrow-backed strings, stripped, with empty cells as NA. Text that is that already (the usual
    cell: the readers null empty cells) comes back as it is, sharing its memory, instead of as a copy."""
    s = series if isinstance(series.dtype, pd.StringDtype) else series.astype(STR)
    stripped = s.str.strip()
    if s is series and _same_text(s, stripped):
        return series.copy(deep=False)  # a Series of its own (a caller may set values in it), the same cells
    return stripped.mask(stripped == "")


def _same_text(cells: pd.Series, stripped: pd.Series) -> bool:
    """Whether stripping changed no cell and left none empty (Arrow-backed text only; else False). Stripping only
    removes characters, so the same total length in bytes means no cell changed."""
    before, after = (getattr(x.array, "_pa_array", None) for x in (cells, stripped))
    if before is None or after is None:
        return False
    if pc.sum(pc.binary_length(before)).as_py() != pc.sum(pc.binary_length(after)).as_py():
        return False
    return not pc.any(pc.equal(after, "")).as_py()


def ascii_digits(series: pd.Series) -> pd.Series:
    """Arabic-Indic and Eastern Arabic-Indic digits -> ASCII digits; Arabic decimal/thousands marks -> . and ,"""
    s = series
    if s.str.contains(r"[\u0660-\u0669\u06F0-\u06F9\u066B\u066C]", regex=True).fillna(False).any():
        s = s.str.translate(_DIGITS).str.replace("\u066b", ".", regex=False).str.replace("\u066c", ",", regex=False)
    return s


def _fold(unique: pd.Series) -> pd.Series:
    s = unique.astype(STR).str.normalize("NFKC").str.replace("\u0640", "", regex=False)
    s = s.str.replace(r"\s+", " ", regex=True).str.strip().str.casefold()
    return s.mask(s == "")


def fold_key(series: pd.Series) -> pd.Series:
    """Lookup key for labels and names: NFKC, case-folded, inner whitespace collapsed, tatweel dropped."""
    return per_unique(series, _fold, STR)


def column_letter(index: int) -> str:
    """0-based column index -> Excel letters (0 -> A, 27 -> AB)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


_SPACE = re.compile(r"\s+")


def normalize_header(text: object) -> str:
    """Header text compared loosely: NFKC, case-folded, whitespace collapsed, Arabic tatweel dropped."""
    if text is None:
        return ""
    s = unicodedata.normalize("NFKC", str(text)).replace("\u0640", "")
    return _SPACE.sub(" ", s).strip().casefold()

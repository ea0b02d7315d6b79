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
import pyarrow as pa
import pyarrow.compute as pc

ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"
EASTERN_ARABIC_INDIC = "۰۱۲۳۴۵۶۷۸۹"
_DIGITS = str.maketrans(ARABIC_INDIC + EASTERN_ARABIC_INDIC, "0123456789" * 2)
STR = pd.StringDtype("pyarrow")
T = TypeVar("T")


def missing_text(index: pd.Index, name: object = None) -> pd.Series:
    """Arrow-backed text, every cell missing, on ``index``: one Arrow array of nulls (0.05 ms for 100,000 rows;
    ``pd.Series(pd.NA, index, dtype=STR)`` converts a scalar per row, 1-2 ms)."""
    nulls = pa.chunked_array([pa.nulls(len(index), pa.large_string())])
    return pd.Series(pd.array(nulls, dtype=STR), index=index, name=name)


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
    if s is series and _clean_already(s):
        return series.copy(deep=False)
    stripped = s.str.strip()
    if s is series and _same_text(s, stripped):
        return series.copy(deep=False)  # a Series of its own (a caller may set values in it), the same cells
    return stripped.mask(stripped == "")


# bytes a cell may not start or end with to be taken as stripped without a look at its characters: ASCII whitespace
# (tab to carriage return, the separators 0x1C-0x1F, space) and every byte of a character beyond ASCII (some are
# whitespace: U+0085, U+00A0, U+2000-U+200A, U+3000 ...)
_MAY_BE_SPACE = np.zeros(256, dtype=bool)
_MAY_BE_SPACE[0x09:0x0E] = _MAY_BE_SPACE[0x1C:0x21] = _MAY_BE_SPACE[0x80:] = True


def _clean_already(cells: pd.Series) -> bool:
    """Whether Arrow-backed text certainly has no cell that stripping would change or leave empty: no empty cell,
    and none whose first or last byte may belong to whitespace (:data:`_MAY_BE_SPACE`). Two bytes per cell read
    from the Arrow buffers, not a stripped copy of every cell (false: the caller strips as before)."""
    arrow = getattr(cells.array, "_pa_array", None)
    if not isinstance(arrow, pa.ChunkedArray) or not pa.types.is_large_string(arrow.type):
        return False
    for chunk in arrow.chunks:
        _, offsets_buffer, data_buffer = chunk.buffers()
        if len(chunk) == chunk.null_count:
            continue
        offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
        starts, ends = offsets[:-1], offsets[1:]
        if chunk.null_count:  # a missing cell has no bytes: only the others are looked at
            valid = np.asarray(chunk.is_valid())
            starts, ends = starts[valid], ends[valid]
        if (ends <= starts).any():
            return False  # an empty cell: it becomes missing
        data = np.frombuffer(data_buffer, dtype=np.uint8)
        if _MAY_BE_SPACE[data[starts]].any() or _MAY_BE_SPACE[data[ends - 1]].any():
            return False
    return True


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
    """Arabic-Indic and Eastern Arabic-Indic digits -> ASCII digits; Arabic decimal/thousands marks -> . and ,
    (``series`` itself where it holds none). Arrow-backed text is rewritten in its UTF-8 bytes at once
    (:func:`_ascii_digits_utf8`); other text per value."""
    arrow = getattr(series.array, "_pa_array", None)
    if (
        isinstance(arrow, pa.ChunkedArray)
        and pa.types.is_large_string(arrow.type)
        and isinstance(series.dtype, pd.StringDtype)
    ):
        chunks = [_ascii_digits_utf8(c) for c in arrow.chunks]
        if all(new is None for new in chunks):
            return series
        rewritten = pa.chunked_array(
            [old if new is None else new for old, new in zip(arrow.chunks, chunks, strict=True)]
        )
        return pd.Series(pd.array(rewritten, dtype=series.dtype), index=series.index, name=series.name)
    s = series
    if s.str.contains(r"[\u0660-\u0669\u06F0-\u06F9\u066B\u066C]", regex=True).fillna(False).any():
        s = s.str.translate(_DIGITS).str.replace("\u066b", ".", regex=False).str.replace("\u066c", ",", regex=False)
    return s


# the ASCII byte for the second byte of a two-byte UTF-8 character led by 0xD9 (U+0640-U+067F: the Arabic-Indic
# digits U+0660-U+0669, the decimal mark U+066B and the thousands mark U+066C) or by 0xDB (U+06C0-U+06FF: the
# Eastern Arabic-Indic digits U+06F0-U+06F9); 0 for any other character
_AFTER_D9 = np.zeros(256, dtype=np.uint8)
_AFTER_D9[0xA0:0xAA] = np.arange(0x30, 0x3A)
_AFTER_D9[0xAB], _AFTER_D9[0xAC] = ord("."), ord(",")
_AFTER_DB = np.zeros(256, dtype=np.uint8)
_AFTER_DB[0xB0:0xBA] = np.arange(0x30, 0x3A)


def _ascii_digits_utf8(chunk: pa.Array) -> pa.Array | None:
    """:func:`ascii_digits` of an Arrow large-string array by its UTF-8 bytes (None where it holds none of those
    characters): each is two bytes, 0xD9 or 0xDB then one continuation byte, and becomes one ASCII byte. 0xD9 and
    0xDB only ever lead a character, so every such pair found is one of them; the offsets move back by the bytes
    dropped before them. A few passes over the bytes instead of a Python call per cell (15,000 Arabic amounts:
    1 ms instead of 18)."""
    validity, offsets_buffer, data_buffer = chunk.buffers()
    if data_buffer is None or len(chunk) == 0:
        return None
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buffer, dtype=np.uint8)[lo:hi]
    if len(data) < 2:
        return None
    lead, second = data[:-1], data[1:]
    ascii_byte = np.where(lead == 0xD9, _AFTER_D9[second], np.where(lead == 0xDB, _AFTER_DB[second], 0))
    at = np.flatnonzero(ascii_byte)
    if not len(at):
        return None
    out = data.copy()
    out[at] = ascii_byte[at]
    dropped = np.zeros(len(data) + 1, dtype=np.int64)
    dropped[at + 2] = 1  # the byte after each pair's first one is dropped: the positions after it move back by one
    before = np.cumsum(dropped)  # bytes dropped before each position
    keep = np.ones(len(data), dtype=bool)
    keep[at + 1] = False
    relative = offsets - lo
    new_offsets = relative - before[relative]
    if chunk.offset:  # the validity bitmap starts at the chunk's offset: a copy of it starting at 0
        validity = pa.array(chunk.is_valid()).buffers()[1] if chunk.null_count else None
    return pa.Array.from_buffers(
        chunk.type,
        len(chunk),
        [validity, pa.py_buffer(new_offsets), pa.py_buffer(out[keep])],
        null_count=chunk.null_count,
    )


def _fold(unique: pd.Series) -> pd.Series:
    s = unique.astype(STR).str.normalize("NFKC").str.replace("\u0640", "", regex=False)
    s = s.str.replace(r"\s+", " ", regex=True).str.strip().str.casefold()
    return s.mask(s == "")


def fold_key(series: pd.Series) -> pd.Series:
    """Lookup key for labels and names: NFKC, case-folded, inner whitespace collapsed, tatweel dropped."""
    return per_unique(series, _fold_remembered, STR)


#: text -> its :func:`_fold` key (None: empty), kept across files (a night's files name the same few countries,
#: categories and stages); only from calls with few distinct values, at most FOLD_LIMIT of them
_FOLDED: dict[str, str | None] = {}
FOLD_VALUES, FOLD_LIMIT = 2_000, 20_000


def _fold_remembered(unique: pd.Series) -> pd.Series:
    """:func:`_fold` of distinct text, of the values not folded before only (:data:`_FOLDED`)."""
    texts = unique.tolist()
    if len(texts) > FOLD_VALUES or not all(isinstance(t, str) for t in texts):
        return _fold(unique)
    found = [_FOLDED.get(t, _UNSEEN) for t in texts]
    new = [i for i, f in enumerate(found) if f is _UNSEEN]
    if new:
        folded = _fold(pd.Series([texts[i] for i in new], dtype=STR)).astype(object)
        if len(_FOLDED) + len(new) > FOLD_LIMIT:
            _FOLDED.clear()
        for i, key in zip(new, folded, strict=True):
            found[i] = _FOLDED[texts[i]] = key if isinstance(key, str) else None
    return pd.Series(found, index=unique.index, dtype=STR)


_UNSEEN = object()


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

"""Amount cells -> floats, with an explicit error policy: what cannot be read stays NA and is reported."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from transforms.text import STR, as_text, ascii_digits

_SEPARATORS = {
    # locale: (thousands separators to drop, decimal mark)
    "en": (r"[,\s\u00a0\u202f'’]", "."),
    "eu": (r"[.\s\u00a0\u202f'’]", ","),
}
#: Python's ``\s`` (the characters ``str.isspace`` holds true for) as a class RE2 reads the same way: RE2's own ``\s``
#: is ASCII whitespace only. tests/unit/test_distinct_helpers.py compares the two over every code point.
SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
#: what :func:`_parse_text` removes, in RE2's words for Arrow's replace (the same as the Python patterns above)
_ARROW_THOUSANDS = {"en": f"[,{SPACE}'’]", "eu": f"[.{SPACE}'’]"}
_ARROW_PREFIX = f"^(?:[A-Z]{{3}}|[$€£])[{SPACE}]*"
_PLAIN = {"en": r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$", "eu": r"^-?[0-9]+([eE][-+]?[0-9]+)?$"}


def parse_amounts(cells: pd.Series, locale: str = "en") -> tuple[pd.Series, pd.Series]:
    """Parse amount cells.

    Returns ``(values, is_blank)``: ``values`` is float64 with NaN where a cell is blank or not a number;
    ``is_blank`` tells the two apart. Handles thousands separators per locale, parentheses and trailing minus
    for negatives, Arabic-Indic digits and a leading currency symbol or code. Plain numbers (the usual case,
    cells Excel stored as numbers) take a fast Arrow cast; only the rest go through the text clean-up.
    """
    text = as_text(cells)
    is_blank = text.isna().to_numpy()
    arrow = (
        pa.chunked_array(text.array._pa_array)
        if hasattr(text.array, "_pa_array")
        else pa.chunked_array([pa.array(text.astype(object))])
    )
    plain = pc.fill_null(pc.match_substring_regex(arrow, _PLAIN[locale]), False)
    values = pc.cast(pc.if_else(plain, arrow, pa.scalar(None, pa.string())), pa.float64()).to_numpy(
        zero_copy_only=False
    )
    rest = ~plain.to_numpy(zero_copy_only=False) & ~is_blank
    if rest.any():
        values = values.copy()
        values[rest] = _parse_text(text[rest], locale).to_numpy(dtype="float64", na_value=float("nan"))
    return pd.Series(values, index=cells.index, dtype="float64"), pd.Series(is_blank, index=cells.index)


def _parse_text(text: pd.Series, locale: str) -> pd.Series:
    thousands, decimal = _SEPARATORS[locale]
    s = ascii_digits(text.astype(STR))
    negative = s.str.match(r"^\(.*\)$|^.*-$").fillna(False).astype(bool)
    s = s.str.replace(r"^\((.*)\)$", r"\1", regex=True).str.replace(r"-$", "", regex=True)
    arrow = getattr(s.array, "_pa_array", None)
    if isinstance(arrow, pa.ChunkedArray):  # Arrow's replace (RE2, no call per cell; pandas calls ``re`` for ``\s``)
        arrow = pc.replace_substring_regex(arrow, _ARROW_PREFIX, "")
        arrow = pc.replace_substring_regex(arrow, _ARROW_THOUSANDS[locale], "")
        s = pd.Series(pd.array(arrow, dtype=s.dtype), index=s.index)
    else:
        s = s.str.replace(r"^(?:[A-Z]{3}|[$€£])\s*", "", regex=True)
        s = s.str.replace(thousands, "", regex=True)
    if decimal != ".":
        s = s.str.replace(decimal, ".", regex=False)
    values = pd.to_numeric(s, errors="coerce").astype("float64")
    return values.where(~negative, -values.abs())


_UNIT_WORDS = [
    (1_000_000.0, r"million|\bmn\b|\bmln\b|\(m\)|\bm\s*\)|بالمليون|ملايين|مليون"),
    (1_000.0, r"'000|’000|\b000s\b|thousand|\(k\)|\bk\s*\)|بالألف|بالآلاف|بالاف|آلاف|ألف"),
]


def unit_from_header(header: str | None) -> float:
    """The unit an amount header states: "Amount (SAR '000)" -> 1,000; "المبلغ (بالمليون)" -> 1,000,000;
    a header that states none -> 1 (full units)."""
    import re

    text = (header or "").casefold()
    for factor, pattern in _UNIT_WORDS:
        if re.search(pattern, text):
            return factor
    return 1.0

"""Build failure records (schemas.frames.Failure) from masks, vectorised; turn Pandera failure cases into them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from schemas.frames import FAILURE_COLUMNS
from schemas.rules import severity
from transforms.text import missing_text

Message = str | Callable[[pd.DataFrame, pd.Series], pd.Series]
_STR = pd.StringDtype("pyarrow")
#: a raw frame's ``attrs`` key: {column: Excel rows} of its cells that hold a formula with no saved result (a workbook
#: saved by a program that does not compute formulas); such a cell reads as empty, and its message says why
UNSAVED_FORMULAS = "unsaved_formulas"
UNSAVED_TEXT = (
    "holds a formula with no saved result; open the file in Excel or LibreOffice and save it, so the results are "
    "stored, then send it again."
)


_EMPTY = pd.DataFrame({c: pd.Series(dtype="Int64" if c == "excel_row" else _STR) for c in FAILURE_COLUMNS})


#: characters of a cell's value quoted inside a message; a longer value is cut, its length said (the failure's
#: ``value`` keeps it whole): a legal 32,767-character cell must not make a 32,000-character message or log line
MAX_QUOTED = 200


def quoted(values: pd.Series, limit: int = MAX_QUOTED) -> pd.Series:
    """Cell values as a message quotes them: at most ``limit`` characters, then "… (32,000 characters)"."""
    lengths = values.str.len()
    long = (lengths > limit).fillna(False).astype(bool)
    if not long.any():
        return values
    cut = values[long].str.slice(0, limit) + "… (" + lengths[long].map("{:,}".format).astype(_STR) + " characters)"
    return values.where(~long, cut).astype(values.dtype)


def empty_failures() -> pd.DataFrame:
    return _EMPTY.copy()


def failures_where(
    frame: pd.DataFrame,
    mask: pd.Series,
    column: str | None,
    rule: str,
    message: Message,
    suggestion: pd.Series | None = None,
    reads: tuple[str, ...] | None = None,
    per_value: bool = False,
) -> pd.DataFrame:
    """One failure per row of ``frame`` where ``mask`` holds. ``message`` is text or a function of
    (the failing rows, their values as text, cut to MAX_QUOTED characters) returning a Series of text.
    ``reads``: the columns of the failing rows the message reads (besides excel_row and ``column``); None: all.
    Only those are copied: a sheet whose every row fails copied all its cells per rule (+120 MiB at 1M rows).
    ``per_value``: the message depends on the failing value alone, so it is written once per distinct value (a
    sheet whose million partners are 50 names: 50 messages, not a million; +139 MiB resident before)."""
    mask = mask.fillna(False).astype(bool)
    if not mask.any():
        return empty_failures()
    if reads is not None:
        frame = frame[list(dict.fromkeys(c for c in ("excel_row", column, *reads) if c is not None and c in frame))]
    rows = frame[mask]
    values = rows[column].astype(_STR) if column is not None and column in rows else missing_text(rows.index)
    n = len(rows)
    if callable(message) and per_value:
        said = _per_value(rows, values, message)
    else:
        text = message(rows, quoted(values)) if callable(message) else message
        # a message function may return one sentence for every row
        said = _dictionary(text.astype(_STR)) if isinstance(text, pd.Series) else _same(str(text), n)
    out = pd.DataFrame(
        {
            "excel_row": rows["excel_row"].astype("Int64").array,
            "column": _same(column, n),
            "value": _dictionary(values),
            "rule": _same(rule, n),
            "severity": _same(severity(rule), n),
            "message": said,
            "suggestion": _dictionary(suggestion[mask].astype(_STR)) if suggestion is not None else _same(None, n),
        }
    )
    return out


def _per_value(rows: pd.DataFrame, values: pd.Series, message: Callable) -> pd.arrays.ArrowExtensionArray:
    """The message of each distinct value, given to every row holding it (indices into the distinct messages)."""
    codes, _ = pd.factorize(values, use_na_sentinel=False)  # a missing value is one more value
    _, first = np.unique(codes, return_index=True)  # where each distinct value first occurs
    said = message(rows.iloc[first], quoted(values.iloc[first]))
    if not isinstance(said, pd.Series):  # one sentence for every row
        return _same(str(said), len(values))
    texts = pa.array(said.astype(_STR), pa.large_string())
    missing = pc.is_null(texts).to_numpy(zero_copy_only=False)
    indices = pa.array(codes.astype(np.int32), mask=missing[codes] if missing.any() else None)
    return pd.arrays.ArrowExtensionArray(pa.DictionaryArray.from_arrays(indices, texts.fill_null("")))


def _same(text: str | None, n: int) -> pd.arrays.ArrowExtensionArray:
    """``n`` times one text (or missing) as a dictionary of it: no million copies of a rule's name."""
    dictionary = pa.array([] if text is None else [text], pa.large_string())
    indices = pa.nulls(n, pa.int32()) if text is None else pa.array(np.zeros(n, dtype=np.int32))
    return pd.arrays.ArrowExtensionArray(pa.DictionaryArray.from_arrays(indices, dictionary))


def _dictionary(values: pd.Series) -> pd.arrays.ArrowExtensionArray:
    """Text as a dictionary of its distinct values (TEXT): a failing sheet's messages repeat across rows."""
    arrow = values.array.__arrow_array__()
    chunks = (arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]) or [pa.array([], pa.string())]
    return pd.arrays.ArrowExtensionArray(pa.chunked_array([_encoded(c) for c in chunks], _DICTIONARY))


def file_failure(rule: str, message: str, column: str | None = None) -> pd.DataFrame:
    """A failure about the whole file (no row)."""
    return pd.DataFrame(
        {
            "excel_row": pd.array([pd.NA], dtype="Int64"),
            "column": pd.array([column], dtype=_STR),
            "value": pd.array([pd.NA], dtype=_STR),
            "rule": pd.array([rule], dtype=_STR),
            "severity": pd.array([severity(rule)], dtype=_STR),
            "message": pd.array([message], dtype=_STR),
            "suggestion": pd.array([pd.NA], dtype=_STR),
        }
    )


_PANDERA_RULES = {"not_nullable": "required_missing"}
#: the column a frame-wide check (schemas/frames.py) is about: pandera reports such a check once per column of the
#: failing row; it is one failure, on this column (a check not listed here: one failure on the row, no column)
FRAME_CHECK_COLUMNS = {"usd_matches_rate": "amount_usd", "period_ends_after_start": "period_end"}


class ContractError(Exception):
    """A frame breaks a contract as a whole (a column missing or of the wrong type): a bug, not a data problem."""


def from_pandera(failure_cases: pd.DataFrame, frame: pd.DataFrame, headers: dict[str, str]) -> pd.DataFrame:
    """Pandera's lazy ``failure_cases`` -> failure records located by Excel row. Failures that concern the whole
    frame rather than rows raise :class:`ContractError`: they must never be dropped quietly."""
    whole = failure_cases[failure_cases["index"].isna()]
    if len(whole):
        detail = "; ".join(f"{r.column}: {r.check} ({r.failure_case})" for r in whole.itertuples())
        raise ContractError(f"contract broken by the frame as a whole: {detail}")
    cases = _one_per_frame_check(failure_cases)
    if cases.empty:
        return empty_failures()
    idx = cases["index"].astype("int64").to_numpy()
    col = cases["column"].astype(object)
    rule = cases["check"].astype(str).map(_PANDERA_RULES).fillna("canonical_contract")
    header = col.map(lambda c: headers.get(c, c) if isinstance(c, str) else "row")
    excel_row = frame.loc[idx, "excel_row"].astype("Int64").to_numpy()
    unsaved = unsaved_cells(frame, col, excel_row)
    empty = ("The '" + header + "' cell is empty.").where(~unsaved, "The '" + header + "' cell " + UNSAVED_TEXT)
    message = empty.where(
        rule == "required_missing", "Check '" + cases["check"].astype(str) + "' failed on '" + header + "'."
    )
    out = pd.DataFrame(
        {
            "excel_row": excel_row,
            "column": col.to_numpy(),
            "value": cases["failure_case"]
            .astype(object)
            .where(cases["failure_case"].notna(), None)
            .astype(_STR)
            .to_numpy(),
            "rule": rule.to_numpy(),
            "severity": rule.map(severity).to_numpy(),
            "message": message.to_numpy(),
            "suggestion": pd.NA,
        }
    )
    return out.astype({c: _STR for c in FAILURE_COLUMNS if c != "excel_row"})


def _one_per_frame_check(cases: pd.DataFrame) -> pd.DataFrame:
    """A frame-wide check fails once per row, on its own column (FRAME_CHECK_COLUMNS), not once per column of the
    frame: pandera lists one case per column, of which the check's own column is kept (its value with it)."""
    frame_wide = (cases["schema_context"] == "DataFrameSchema") if "schema_context" in cases else None
    if frame_wide is None or not frame_wide.any():
        return cases
    wide = cases[frame_wide]
    own = wide["check"].astype(str).map(FRAME_CHECK_COLUMNS)
    mine = wide[wide["column"].astype(object) == own]
    keys = ["index", "check"]
    rest = wide.drop_duplicates(keys).merge(mine[keys], on=keys, how="left", indicator=True)
    rest = rest[rest["_merge"] == "left_only"].drop(columns="_merge")
    rest = rest.assign(column=None, failure_case=None)  # a check on no one column: the row, without a value
    return pd.concat([cases[~frame_wide], mine.drop_duplicates(keys), rest], ignore_index=True)


def unsaved_cells(frame: pd.DataFrame, columns: pd.Series, rows) -> pd.Series:
    """Per (column, Excel row) pair: whether the frame's reader noted that cell as a formula with no saved result
    (``frame.attrs[UNSAVED_FORMULAS]``)."""
    noted = frame.attrs.get(UNSAVED_FORMULAS) or {}
    if not noted:
        return pd.Series(False, index=columns.index)
    pairs = {(c, r) for c, rs in noted.items() for r in rs}
    return pd.Series(
        [pd.notna(r) and (c, int(r)) in pairs for c, r in zip(columns, rows)], index=columns.index, dtype=bool
    )


_UTF7_MAYBE = r"\+[A-Za-z0-9/][A-Za-z0-9+/]"
_UTF7_RUN = re.compile(r"\+([A-Za-z0-9+/]+)-?")


def utf7_decoded(values: pd.Series) -> pd.Series:
    """Per cell: its text as UTF-7 decodes it, where it holds a UTF-7 sequence ("+AOk-", "+AEkAdABhAGwAeQ-") that
    decodes to letters of an alphabetic script (Latin, Greek, Cyrillic, Hebrew, Arabic: below U+0800); NA
    elsewhere. A phone number (+966...) or "C++" decodes to no letters, or to other blocks, and is not flagged. Only
    cells with a plus sign before base64 characters are decoded (one pass in Arrow, then Python for those)."""
    text = values.astype(_STR)
    out = missing_text(values.index)
    if not _may_hold(text, 0x2B):
        return out  # most columns have no plus sign at all: told from their bytes, without a frame
    plus = text.str.contains("+", regex=False).fillna(False).astype(bool)
    if not plus.any():
        return out
    text = text[plus]
    maybe = text.str.contains(_UTF7_MAYBE, regex=True).fillna(False).astype(bool)
    for i, cell in text[maybe].items():
        decoded = _utf7(str(cell))
        if decoded is not None:
            out[i] = decoded
    return out


def _may_hold(text: pd.Series, byte: int) -> bool:
    """Whether any cell of Arrow-backed ``text`` may hold ``byte`` (an ASCII character): its chunks' character
    buffers compared at once (numpy, without the GIL). A buffer may hold bytes of cells outside the column's slice,
    so True only means "look closer"; False is certain. Any other layout: True."""
    cells = getattr(text.array, "_pa_array", None)
    if cells is None:
        return True
    for chunk in cells.chunks:
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            return True
        data = chunk.buffers()[2]
        if data is not None and data.size and bool((np.frombuffer(data, dtype=np.uint8) == byte).any()):
            return True
    return False


def _utf7(cell: str) -> str | None:
    found = False

    def one(m: re.Match[str]) -> str:
        nonlocal found
        try:
            part = ("+" + m.group(1) + "-").encode("ascii").decode("utf-7")
        except (UnicodeError, ValueError):
            return m.group(0)
        letters = any(ch.isalpha() for ch in part)
        plain = all(ord(ch) < 0x800 and unicodedata.category(ch)[0] in "LMZP" for ch in part)
        if letters and plain:
            found = True
            return part
        return m.group(0)

    decoded = _UTF7_RUN.sub(one, cell)
    return decoded if found else None


def utf7_failures(data: pd.DataFrame, columns: list[str], header: Callable[[str], str]) -> pd.DataFrame:
    """A ``text_maybe_utf7`` warning per text cell holding UTF-7 sequences (a CSV saved as UTF-7 loads as
    "+AEkAdABhAGwAeQ-" for "Italy"): the row loads, flagged, and the message shows what the text would read."""

    def message(column: str) -> Callable[[pd.DataFrame, pd.Series], pd.Series]:
        def says(r: pd.DataFrame, v: pd.Series) -> pd.Series:
            return (
                f"{header(column)} '" + v + "' holds UTF-7 sequences (as UTF-7 it reads '" + r["_decoded"] + "'): "
                "the file was probably saved as UTF-7; save it as UTF-8."
            )

        return says

    parts = []
    for column in columns:
        if column not in data:
            continue
        decoded = utf7_decoded(data[column])
        if decoded.notna().any():
            frame = data.assign(_decoded=quoted(decoded))
            parts.append(failures_where(frame, decoded.notna(), column, "text_maybe_utf7", message(column)))
    return concat_failures(parts)


def concat_failures(parts: list[pd.DataFrame], release: bool = False) -> pd.DataFrame:
    """The parts as one frame, ordered by Excel row then column (file-level failures first), stable. Put together
    and ordered in Arrow, one column at a time: with ``release`` (the caller's list is emptied, so the parts go as
    their columns are ordered) a sheet whose 1,048,575 rows all fail holds its failures about once over, not three
    times (pandas' concat, then sort: +430 MB).

    Its text columns come back dictionary-encoded (``TEXT``: Arrow dictionary of large strings, pd.NA for missing,
    ``==``, ``isin``, ``astype`` as for text; a sort or ``.str`` raises rather than guess): a failure's column, rule,
    severity and message repeat across rows (a whole sheet's 1.3M failures: 51 messages), so the frame is held as
    indices into the distinct texts (that sheet's batch after processing: 800 -> 538 MiB resident), and DuckDB reads
    the dictionary as it is."""
    kept = [_arrow(p) for p in parts if len(p)]
    if release:
        parts.clear()
    if not kept:
        return empty_failures()
    keys = pa.concat_tables([t.select(["excel_row"]).append_column("column", _plain(t.column("column"))) for t in kept])
    order = pc.sort_indices(
        keys, sort_keys=[("excel_row", "ascending", "at_start"), ("column", "ascending", "at_start")]
    )
    del keys
    columns = {}
    for name in FAILURE_COLUMNS:
        chunks = [chunk for t in kept for chunk in t.column(name).chunks]
        if name == "excel_row":
            column = pa.chunked_array(chunks, pa.int64())
        else:
            column = pa.chunked_array([_encoded(c) for c in chunks], _DICTIONARY).unify_dictionaries()
        del chunks
        kept = [t.drop_columns([name]) for t in kept]  # this column of the parts goes once it is ordered
        columns[name] = column.take(order)
        del column
    return pd.DataFrame(
        {
            name: pd.Int64Dtype().__from_arrow__(column)
            if name == "excel_row"
            else pd.arrays.ArrowExtensionArray(column)
            for name, column in columns.items()
        }
    )


_DICTIONARY = pa.dictionary(pa.int32(), pa.large_string())
#: the pandas type of a failure frame's text columns once put together (concat_failures)
TEXT = pd.ArrowDtype(_DICTIONARY)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column as plain large strings (the sort key: Arrow sorts no dictionary)."""
    chunks = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in column.chunks]
    return pa.chunked_array([c.cast(pa.large_string()) for c in chunks], pa.large_string())


def _encoded(chunk: pa.Array) -> pa.DictionaryArray:
    """One chunk of text as a dictionary of large strings with int32 indices, whichever way it came."""
    if pa.types.is_dictionary(chunk.type):
        return pa.DictionaryArray.from_arrays(chunk.indices.cast(pa.int32()), chunk.dictionary.cast(pa.large_string()))
    return pc.dictionary_encode(chunk.cast(pa.large_string()))


def _arrow(part: pd.DataFrame) -> pa.Table:
    """One part of failures in Arrow, its text shared with the part's own Arrow buffers (or dictionary)."""
    table = pa.Table.from_pandas(part[FAILURE_COLUMNS], preserve_index=False).replace_schema_metadata(None)
    at = table.schema.get_field_index("excel_row")
    return table.set_column(at, "excel_row", table.column(at).cast(pa.int64()))

"""What every file reader returns and shares: the :class:`Extracted` frame, :class:`FileReadError` and
:class:`MalformedRecord`, the header found by its aliases, Arrow columns turned into a text frame (an empty or
whitespace-only cell is null), a library's error in one line, and the cell-length limit.

Used by ``flows/read_sheet.py`` (workbooks) and ``flows/read_csv.py`` (CSV files); re-exported by ``flows/extract.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from flows.limits import ENV, LimitExceeded, Limits
from flows.preflight import shown
from schemas.sources import FileSpec, RecordsFileSpec
from transforms.text import normalize_header

EXCEL_ROW = "excel_row"
MAX_LISTED = 8  # names listed in a message (sheets); the rest are counted


class FileReadError(Exception):
    """A file that cannot be read as its source config says; the message is for a steward."""


@dataclass
class MalformedRecord:
    """A CSV record set aside by the reader: its number of fields is not the header's, or a quote left open joined
    it with the lines after it. It becomes a quarantined row (rule ``record_malformed``) with ``message``."""

    excel_row: int  # its row number, as the file's well-formed records are numbered (see read_csv)
    line: int  # the physical line on which it starts (1-based, as a text editor counts)
    last_line: int  # ... and on which it ends (a quoted value may run over several lines)
    text: str  # the raw text of the record, at most MAX_KEPT characters
    fields: int  # how many fields it has
    expected: int  # how many the header has
    open_until: int | None = None  # a quote left open joined lines line..open_until; only this line is held back
    message: str = ""


@dataclass
class Extracted:
    frame: pd.DataFrame  # canonical columns (text) + EXCEL_ROW
    sheet: str
    header_row: int  # Excel row number of the header (1-based)
    source_columns: dict[str, str] = field(default_factory=dict)  # canonical -> header text in the file
    column_letters: dict[str, str] = field(default_factory=dict)  # canonical -> Excel column letter
    malformed: list[MalformedRecord] = field(default_factory=list)  # CSV records set aside, not in ``frame``


def _match_header(cells: Sequence[object], spec: FileSpec | RecordsFileSpec) -> dict[str, int]:
    """canonical column -> position in ``cells`` for every alias found."""
    wanted = {normalize_header(a): canon for canon, aliases in spec.header_aliases.items() for a in aliases}
    found: dict[str, int] = {}
    for pos, cell in enumerate(cells):
        canon = wanted.get(normalize_header(cell))
        if canon is not None and canon not in found:
            found[canon] = pos
    return found


def _locate_header(
    rows: Sequence[Sequence[object]], spec: FileSpec | RecordsFileSpec, where: str
) -> tuple[int, dict[str, int]]:
    """Index (0-based, in ``rows``) of the header row and its column matches."""
    required = spec.required_columns
    if spec.header.row is not None:
        idx = spec.header.row - 1
        if idx >= len(rows):
            raise FileReadError(f"{where}: the header should be on row {spec.header.row}, but the sheet ends before it")
        candidates = [idx]
    else:
        candidates = list(range(len(rows)))
    best: tuple[int, int, dict[str, int]] | None = None
    for idx in candidates:
        found = _match_header(rows[idx], spec)
        if all(c in found for c in required):
            return idx, found
        if best is None or len(found) > best[1]:
            best = (idx, len(found), found)
    idx, _, found = best if best else (0, 0, {})
    missing = [c for c in required if c not in found]
    looked = "; ".join(f"{c}: {' / '.join(spec.header_aliases[c])}" for c in missing)
    scope = f"row {spec.header.row}" if spec.header.row else f"the first {len(rows)} rows"
    raise FileReadError(f"{where}: no header found in {scope}: missing column(s) {looked}")


def listed(names: list[str], limit: int = MAX_LISTED) -> str:
    """At most ``limit`` names (each cut to 30 characters), then how many more: a workbook of 3,000 sheets gives
    a one-line message, not 20,000 characters."""
    shown_names = [shown(n) if len(n) <= 30 else shown(n[:29]) + "…" for n in names[:limit]]
    more = f" and {len(names) - limit:,} more" if len(names) > limit else ""
    return ", ".join(shown_names) + more


def _blank_to_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(column), ""), False)
    if not pc.any(empty).as_py():  # nothing to null (a workbook read with whitespace_as_null): no copy
        return column
    return pc.if_else(empty, pa.scalar(None, column.type), column)


def _to_text_frame(table: pa.Table, names: dict[str, str]) -> pd.DataFrame:
    """Arrow table -> pandas with the canonical names; cells stay text (Arrow-backed strings), and empty or
    whitespace-only cells become null, so every later stage has one notion of "empty"."""
    table = pa.table([_blank_to_null(c) for c in table.columns], names=[names[c] for c in table.column_names])
    return table.to_pandas(
        types_mapper=lambda t: (
            pd.StringDtype("pyarrow") if pa.types.is_string(t) or pa.types.is_large_string(t) else None
        )
    )


def _reason(exc: Exception, path: Path) -> str:
    """A library's error in one short line a steward can read: no server paths, no stack of causes."""
    first = (str(exc).strip().splitlines() or [""])[0].replace(str(path), path.name)
    return shown(f"{type(exc).__name__}: {first[:200]}")


def check_cell_lengths(
    table: pa.Table,
    where: str,
    limits: Limits,
    first_row: int,
    headers: dict[str, str],
    rows: np.ndarray | None = None,
) -> None:
    """Refuse a sheet or CSV with a text cell over ``max_cell_chars`` (Excel's own limit by default), naming the
    first such cell; vectorised per column. ``first_row`` is the Excel row of the table's first row, or ``rows``
    gives every row's number (a CSV whose malformed records were set aside)."""
    for name in table.column_names:
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) or column.null_count == len(
            column
        ):
            continue
        lengths = pc.utf8_length(column)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limits.max_cell_chars:
            at = pc.index(pc.fill_null(pc.greater(lengths, limits.max_cell_chars), False), True).as_py()
            row = first_row + at if rows is None else int(rows[at])
            raise LimitExceeded(
                f"{where} row {row}, column '{shown(headers.get(name, name))[:60]}': a cell of {longest:,} "
                f"characters is over the limit of {limits.max_cell_chars:,} ({ENV['max_cell_chars']}); the file was "
                f"not loaded. If it is genuine, raise {ENV['max_cell_chars']} and re-run."
            )

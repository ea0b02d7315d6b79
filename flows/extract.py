"""Read one agency file into a frame of canonical columns, keeping the row number the steward sees.

I/O only: which rows are data, totals or blank, and what the cells mean, is decided in ``transforms/``.
Every cell is read as text (numbers and dates are parsed by the normalisers, with an error policy), through
fastexcel (calamine + Arrow) for workbooks and pyarrow's CSV reader for CSV files.

This module holds the entry points (:func:`read_source_file`, :func:`file_sha256`); the readers are split by job:

- ``flows/read_common.py``: what every reader returns and shares (:class:`Extracted`, :class:`FileReadError`,
  :class:`MalformedRecord`, the header found by its aliases, the text frame, the cell-length limit);
- ``flows/read_sheet.py``: workbooks (:func:`read_workbook`, :func:`read_workbook_grids`, unreadable workbooks);
- ``flows/read_csv.py``: CSV files (:func:`read_csv`: header, limits, conservation of records);
- ``flows/read_csv_records.py``: a CSV's records through pyarrow, the malformed ones set aside and explained.

Their names are re-exported here: ``from flows.extract import ...`` stays the way to reach them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flows.limits import Limits
from flows.preflight import open_regular, shown
from flows.read_common import (
    EXCEL_ROW,
    MAX_LISTED,
    Extracted,
    FileReadError,
    MalformedRecord,
    check_cell_lengths,
    listed,
)
from flows.read_csv import HEAD_BYTES, read_csv
from flows.read_csv_records import MAX_CUT_DEPTH, MAX_KEPT, MAX_RECORD_LINES, MAX_SHOWN
from flows.read_sheet import _why_unreadable, read_workbook, read_workbook_grids
from schemas.sources import FileSpec, RecordsFileSpec
from transforms.text import normalize_header

__all__ = [
    "EXCEL_ROW",
    "HEAD_BYTES",
    "MAX_CUT_DEPTH",
    "MAX_KEPT",
    "MAX_LISTED",
    "MAX_RECORD_LINES",
    "MAX_SHOWN",
    "Extracted",
    "FileReadError",
    "MalformedRecord",
    "_why_unreadable",
    "check_cell_lengths",
    "file_sha256",
    "listed",
    "normalize_header",
    "open_regular",
    "read_csv",
    "read_source_file",
    "read_workbook",
    "read_workbook_grids",
    "shown",
]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open_regular(path) as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_source_file(path: Path, spec: FileSpec | RecordsFileSpec, limits: Limits | None = None) -> Extracted:
    """Read a file as its spec says; raises :class:`FileReadError` with a steward-readable message, or
    :class:`~flows.limits.LimitExceeded` for a file over a limit."""
    if not path.exists():
        raise FileReadError(f"{shown(path)}: file disappeared before it could be read")
    return read_csv(path, spec, limits) if spec.is_csv else read_workbook(path, spec, limits)

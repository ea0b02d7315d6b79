"""What one inbox file may cost, checked before any reader expands it.

A workbook is a zip: a few megabytes on disk can inflate to gigabytes (a 2 GiB shared-strings entry, 4 GiB of
whitespace in a sheet), and two cells far apart (A1 and XFD1048576) make calamine allocate the whole rectangle
between them (17 billion cells, 512 GiB: the process aborts, it does not raise). So the zip directory and the
sheets' cell references are inspected first (flows/preflight.py) and a file over a limit fails alone, with a
message that names the limit and the environment variable that raises it.

Defaults, and why (each can be raised per deployment through its environment variable):

- ``DCF_MAX_FILE_BYTES`` = 1 GiB on disk. The largest real inputs are the benchmark's 1M-line workbook (34 MB)
  and the SIPRI workbooks (under 1 MB); a CSV of a million lines is about 100 MB. A sparse 8 GiB file is
  refused from its size alone, before it is hashed or read.
- ``DCF_MAX_INFLATED_BYTES`` = 1 GiB: the uncompressed size of one zip entry, and of all entries together. The
  1M-line benchmark workbook inflates to 361 MB (its sheet XML); a 2 GiB shared-strings entry does not pass.
- ``DCF_MAX_INFLATE_RATIO`` = 200: uncompressed / compressed size of an entry over 16 MiB (small entries such as
  styles.xml are not judged by ratio). Real sheet XML compresses 5-25x; a whitespace or repeated-cell bomb
  compresses about 1000x.
- ``DCF_MAX_ZIP_ENTRIES`` = 10,000 entries in the zip directory: a workbook has about 10 plus a few per sheet.
- ``DCF_MAX_ROWS`` = 1,048,576 and ``DCF_MAX_COLUMNS`` = 16,384: Excel's own sheet size, so a legal sheet always
  fits and a reference beyond it is forged. The row limit applies to CSV records too (a CSV a steward cannot open in
  Excel is refused; raise the limit if an agency really sends one).
- ``DCF_MAX_CELLS`` = 50,000,000: the rectangle calamine allocates for a sheet (last row x last column, at about
  32 bytes a cell: 1.6 GB). The 1M-line benchmark sheet spans 7M cells (1,000,008 rows x 7 columns), a full
  1,048,576-row sheet of 40 columns 42M; a 150M-cell sheet does not pass. The same bound holds the tables of an
  OpenDocument spreadsheet and the sheets of an .xls together (calamine builds them all when it opens the file),
  and the shared strings an .xlsx declares (calamine reserves room for ``uniqueCount`` of them first).
- ``DCF_MAX_CELL_CHARS`` = 32,767: Excel's own limit for the text of one cell. Longer cells (a 10 MB CSV field)
  fail the file with a short message, never a 10 MB log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

ENV = {
    "max_file_bytes": "DCF_MAX_FILE_BYTES",
    "max_inflated_bytes": "DCF_MAX_INFLATED_BYTES",
    "max_inflate_ratio": "DCF_MAX_INFLATE_RATIO",
    "max_zip_entries": "DCF_MAX_ZIP_ENTRIES",
    "max_rows": "DCF_MAX_ROWS",
    "max_columns": "DCF_MAX_COLUMNS",
    "max_cells": "DCF_MAX_CELLS",
    "max_cell_chars": "DCF_MAX_CELL_CHARS",
}
RATIO_FLOOR_BYTES = 16 << 20  # entries smaller than this are not judged by their compression ratio


class LimitExceeded(Exception):
    """A file over one of the :class:`Limits`; the message names the file, the limit and how to raise it."""


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 1 << 30
    max_inflated_bytes: int = 1 << 30
    max_inflate_ratio: float = 200.0
    max_zip_entries: int = 10_000
    max_rows: int = 1_048_576
    max_columns: int = 16_384
    max_cells: int = 50_000_000
    max_cell_chars: int = 32_767

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        """Defaults overridden by ``DCF_MAX_*`` variables; a value that is not a positive number is an error
        naming the variable (a typo must not silently remove a limit)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}  # int or float per field, passed as keyword arguments
        for f in fields(cls):
            raw = env.get(ENV[f.name])
            if raw is None or not raw.strip():
                continue
            try:
                value = float(raw) if f.name == "max_inflate_ratio" else int(raw.replace("_", "").strip())
            except ValueError:
                raise ValueError(f"{ENV[f.name]}={raw!r} is not a number") from None
            if value <= 0:
                raise ValueError(f"{ENV[f.name]}={raw!r} must be positive")
            values[f.name] = value
        return cls(**values)

    def exceeded(self, where: str, what: str, found: float, name: str) -> LimitExceeded:
        """The error for ``found`` over the limit ``name`` (a field), in one line a steward can act on."""
        limit = getattr(self, name)
        return LimitExceeded(
            f"{where}: {what} {found:,.0f} is over the limit of {limit:,.0f} ({ENV[name]}); "
            f"the file was not read. If it is genuine, raise {ENV[name]} and re-run."
        )

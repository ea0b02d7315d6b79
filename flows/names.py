"""File names as they may be shown: in logs, messages, the warehouse. Imports nothing heavy (``dcf status`` uses
it through flows/discover.py and must answer in well under a second)."""

from __future__ import annotations

from pathlib import Path


def shown(path: Path | str) -> str:
    """A file name safe to print, log and store: bytes that are not UTF-8 (kept by Python as surrogates) become
    backslash escapes, so ``MOD_budget_\\xff.xlsx`` names the file instead of crashing a log handler or DuckDB."""
    name = path.name if isinstance(path, Path) else str(path)
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return name.encode("utf-8", "backslashreplace").decode("utf-8")

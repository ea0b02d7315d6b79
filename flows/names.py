"""File names as they may be shown: in logs, messages, the warehouse. Imports nothing heavy (``dcf status`` uses
it through flows/discover.py and must answer in well under a second)."""

from __future__ import annotations

import re
from pathlib import Path

#: control characters: C0 (NUL to US), DEL and C1 (U+0080 to U+009F, of which U+009B starts an ANSI sequence too)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: the control characters :func:`shown` keeps by default: line breaks and tabs (a message keeps its lines; a caller
#: that wants one line, flows/kinds/base.py's one_line, makes them spaces)
WHITESPACE = "\t\n\r"


def shown(path: Path | str, *, keep: str = WHITESPACE) -> str:
    """A file name (or any text) safe to print, log and store: bytes that are not UTF-8 (kept by Python as
    surrogates) become backslash escapes, so ``MOD_budget_\\xff.xlsx`` names the file instead of crashing a log
    handler or DuckDB; so does every control character but those in ``keep`` (an escape sequence ``\\x1b[31m`` in a
    name cannot recolour the terminal, a carriage return in a cell cannot overwrite the line: ``\\x1b``, ``\\r``).
    Any other character, Arabic script and the rest of Unicode, is kept as it is."""
    name = path.name if isinstance(path, Path) else str(path)
    if name.isprintable():  # nearly every name: nothing to do
        return name
    try:
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        name = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: m[0] if m[0] in keep else m[0].encode("unicode_escape").decode("ascii"), name)

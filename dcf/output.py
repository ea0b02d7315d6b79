"""How ``dcf`` prints what it lists: a readable table on screen, or CSV / JSON for scripts.

Values are rendered from DuckDB's own Python values (not through pandas), so types read as analysts expect: a DATE
is ``2023-11-01`` (never ``2023-11-01 00:00:00``), a TIMESTAMP is ISO 8601, a list or struct is JSON (in a CSV cell
as JSON text). Floats are rounded on screen only; CSV and JSON carry every digit (DECIMAL values as exact numbers).

Data is hostile until shown otherwise (a file name, a cell a steward typed, a column alias). On screen it prints
literally: rich markup (``[bold red]``, ``[/b]``) is escaped, control characters (an ANSI ``\x1b[31m``, a carriage
return) are shown as backslash escapes (flows/names.py). In CSV, text a spreadsheet would run as a formula (``=...``,
``+...``, ``-...``, ``@...`` after leading blanks, not a number) gets a leading ``'``, and every field holding a comma,
a quote, a carriage return or a line feed is quoted, so a record is one record in any reader.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any

from flows.names import shown

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class Result:
    """One result set: column names, DuckDB type names (``DATE``, ``DOUBLE``, ``VARCHAR[]``, ...) and rows."""

    columns: list[str]
    types: list[str]
    rows: list[tuple]
    title: str | None = None

    @classmethod
    def of(cls, cursor, title: str | None = None) -> Result:
        """The rest of a DuckDB cursor's result."""
        description = cursor.description or []
        return cls([d[0] for d in description], [str(d[1]) for d in description], cursor.fetchall(), title)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


# -- one value ---------------------------------------------------------------------------------------------------
def _blob(value: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 and b != 92 else f"\\x{b:02X}" for b in value)


def _float_text(value: float, type_name: str = "") -> str:
    """Every digit that identifies the value (the shortest repr); a FLOAT column as float32 (0.1, not 0.100000001)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if type_name in ("FLOAT", "REAL"):
        import numpy as np

        return str(np.float32(value))
    return repr(value)


def _screen_float(value: float) -> str:
    """Rounded for reading: two decimals, four significant digits below 1 (0.002667), every digit in CSV/JSON."""
    if not math.isfinite(value):
        return _float_text(value)
    if value == 0 or abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4g}"


def _json_text(value: Any) -> str:
    """``value`` as JSON text: DECIMAL as an exact number, dates ISO, a NaN or infinite float as null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else "null"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_json_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {_json_text(v)}" for k, v in value.items())
            + "}"
        )
    return json.dumps(_scalar_text(value), ensure_ascii=False)


def _scalar_text(value: Any, sep: str = "T") -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=sep)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _blob(bytes(value))
    return str(value)


def cell(value: Any, type_name: str = "", *, screen: bool = False) -> str:
    """One value as text: on screen (floats rounded) or in a CSV cell (every digit). NULL is the empty string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _screen_float(value) if screen else _float_text(value, type_name)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple | dict):
        return _json_text(value)
    return _scalar_text(value, sep=" " if screen else "T")


def json_value(value: Any, type_name: str = "") -> str:
    """One value as JSON text; a JSON column's text is embedded as JSON (not as a string holding JSON)."""
    if type_name == "JSON" and isinstance(value, str):
        try:
            return json.dumps(json.loads(value), ensure_ascii=False)
        except ValueError:
            pass
    if isinstance(value, float) and type_name in ("FLOAT", "REAL") and math.isfinite(value):
        return _float_text(value, type_name)
    return _json_text(value)


# -- one result set ------------------------------------------------------------------------------------------------
def json_records(result: Result) -> str:
    """The result as one line of JSON: an array with an object per row."""
    rows = (
        "{"
        + ", ".join(
            f"{json.dumps(c, ensure_ascii=False)}: {json_value(v, t)}"
            for c, t, v in zip(result.columns, result.types, row)
        )
        + "}"
        for row in result.rows
    )
    return "[" + ", ".join(rows) + "]"


#: what a spreadsheet reads as the start of a formula (CSV injection), as warehouse/export_sheets.py's triggers
_FORMULA_TRIGGERS = frozenset("=+-@")
#: text that is a plain number (-1, +2.5, .5, 1e-3) is read as that number, never as a formula
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: a field holding one of these is quoted (Python's csv module leaves a bare CR unquoted when lines end in LF)
_QUOTE_IF = frozenset(',"\r\n')


def csv_text(text: str) -> str:
    """Text as a spreadsheet may open it: one that starts with ``=``, ``+``, ``-`` or ``@`` after leading blanks
    (spaces, tabs, CR, LF), and is not a plain number, gets a leading ``'`` so it stays text and never runs."""
    stripped = text.lstrip()
    if stripped and stripped[0] in _FORMULA_TRIGGERS and not _PLAIN_NUMBER.fullmatch(stripped.rstrip()):
        return "'" + text
    return text


def csv_field(value: Any, type_name: str = "") -> str:
    """One CSV field as written: numbers as they are (every digit, a negative number stays a number), any other
    value's text made formula-safe (:func:`csv_text`), quoted (quotes doubled) when it holds a comma, quote, CR or LF."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return cell(value, type_name)
    text = csv_text(cell(value, type_name))
    return '"' + text.replace('"', '""') + '"' if not _QUOTE_IF.isdisjoint(text) else text


def _csv_line(fields: list[str]) -> str:
    return ('""' if fields == [""] else ",".join(fields)) + "\n"  # a lone empty field is not an empty line


def write_csv(result: Result, stream: IO[str]) -> None:
    """The result as CSV, a header line then a line per row (LF endings): safe to open in a spreadsheet."""
    stream.write(_csv_line([csv_field(c) for c in result.columns]))
    for row in result.rows:
        stream.write(_csv_line([csv_field(v, t) for v, t in zip(row, result.types)]))


def screen_text(text: str, *, keep: str = "\n") -> str:
    """Text from the data to put into rich markup: markup escaped, control characters (but those in ``keep``) as
    backslash escapes (``\x1b``, ``\r``); Arabic and the rest of Unicode as it is. (Printed on its own, prefer
    :func:`screen`: rich.markup.escape doubles a trailing backslash, so that it cannot escape a tag that follows.)"""
    from rich.markup import escape

    return escape(shown(text, keep=keep))


def screen(text: str, style: str = "", *, keep: str = "\n"):
    """Text from the data as a rich Text, which rich prints as it is (no markup is read in it), control characters
    (but those in ``keep``) as backslash escapes."""
    from rich.text import Text

    return Text(shown(text, keep=keep), style=style)


def rich_table(result: Result, limit: int | None = None, **table_options):
    """A rich Table of the result, names and values printed literally (markup as text, control characters as
    backslash escapes, a line break in a value kept), at most ``limit`` rows."""
    from rich.table import Table

    table = Table(title=screen(result.title) if result.title else None, title_justify="left", **table_options)
    numeric = [t in _NUMERIC or t.startswith("DECIMAL") for t in result.types]
    for name, right in zip(result.columns, numeric):
        table.add_column(screen(name), overflow="fold", justify="right" if right else "left")
    for row in result.rows[:limit] if limit else result.rows:
        table.add_row(*(screen(cell(v, t, screen=True)) for v, t in zip(row, result.types)))
    return table


_NUMERIC = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
    | {"UHUGEINT", "FLOAT", "REAL", "DOUBLE"}
)


def write(results: Sequence[Result] | Result, fmt: str, console, stream: IO[str], limit: int | None = None) -> None:
    """Print results in ``fmt``: tables on ``console``; CSV result sets separated by an empty line; JSON as one line
    per result set (a single result set is one JSON document)."""
    many: Iterable[Result] = [results] if isinstance(results, Result) else results
    for i, result in enumerate(many):
        if fmt == "csv":
            if i:
                stream.write("\n")
            write_csv(result, stream)
        elif fmt == "json":
            stream.write(json_records(result) + "\n")
        else:
            console.print(rich_table(result, limit))

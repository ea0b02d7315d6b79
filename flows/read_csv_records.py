"""A CSV file's records through pyarrow, and the malformed ones set aside (for ``flows/read_csv.py``).

:class:`_CsvReader` parses the records serially (a record whose number of fields is not the header's comes back
set aside, not in the table), numbers them as the file's rows, and cuts a record read over more than
MAX_RECORD_LINES lines (a quote left open) into its first line, held back, and the lines after it, read again on
their own. :func:`_explained` words each :class:`~flows.read_common.MalformedRecord` for the steward.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from flows.preflight import count_text_records, open_regular
from flows.read_common import FileReadError, MalformedRecord

MAX_RECORD_LINES = 10  # a CSV record read over more lines than this is taken for a quote left open (see read_csv)
MAX_SHOWN = 200  # characters of a malformed CSV record quoted in its message
MAX_KEPT = 2_000  # characters of a malformed CSV record kept as its failure's value
MAX_CUT_DEPTH = 100  # quotes left open inside the lines read again after another one (then the file fails)
_LINE_END = re.compile(r"\r\n|\r|\n")  # line ends as pyarrow and the csv module split lines


def _line_breaks(column: pa.ChunkedArray, delimiter: str) -> tuple[np.ndarray, np.ndarray]:
    """How many line breaks each value holds (a null holds none), and whether a value holding one also holds the
    delimiter; vectorised (values with a line break, usually few, are looked at closer)."""
    breaks = np.zeros(len(column), dtype=np.int64)
    holds = np.zeros(len(column), dtype=bool)
    found = pc.or_(*(pc.not_equal(pc.find_substring(column, end), -1) for end in ("\n", "\r")))
    at = np.flatnonzero(np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False)))
    if len(at):
        values = column.take(pa.array(at))
        breaks[at] = np.asarray(pc.count_substring_regex(values, r"\r\n|\r|\n").to_numpy(zero_copy_only=False))
        holds[at] = np.asarray(pc.match_substring(values, delimiter).to_numpy(zero_copy_only=False))
    return breaks, holds


def _text_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


@dataclass
class _CsvReader:
    """What reading one CSV file's records needs, beyond the bytes: for :func:`read_csv`."""

    where: str
    delimiter: str
    width: int  # the header's number of fields
    found: dict[str, int]  # canonical column -> position
    file_lines: Callable[[], list[str]]  # the lines read (the file's, or those after a quote left open)
    line_offset: int = 1  # the file's line number of file_lines()[0]

    def parse(
        self, source: Path | bytes, encoding: str, skip: int = 0, header: int = 0, every_column: bool = True
    ) -> tuple[pa.Table, list[pacsv.InvalidRow]]:
        """pyarrow's reader over ``source``, serially, every cell as text (an empty cell is null); records whose number
        of fields is not the header's come back in the list, not in the table. A record longer than pyarrow's block
        (a quote left open) is read again with one block for the whole input."""
        names = [f"__c{i}" for i in range(self.width)]
        include = names if every_column else [f"__c{pos}" for pos in sorted(self.found.values())]
        bad: list[pacsv.InvalidRow] = []

        def set_aside(row: pacsv.InvalidRow) -> str:
            bad.append(row)
            return "skip"

        def read(block_size: int | None) -> pa.Table:
            bad.clear()
            sizing = {} if block_size is None else {"block_size": block_size}
            options = {
                "read_options": pacsv.ReadOptions(
                    encoding=encoding,
                    skip_rows=skip,
                    column_names=names,
                    skip_rows_after_names=header,
                    use_threads=False,
                    **sizing,
                ),
                # empty lines stay rows (blank rows, counted), so row numbers are the records Excel would show
                "parse_options": pacsv.ParseOptions(
                    delimiter=self.delimiter,
                    newlines_in_values=True,
                    ignore_empty_lines=False,
                    invalid_row_handler=set_aside,
                ),
                "convert_options": pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    include_columns=include,
                    null_values=[""],  # only an empty cell is empty: "n/a" is a value to report, "NA" is Namibia
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            }
            if isinstance(source, bytes):
                return pacsv.read_csv(io.BytesIO(source), **options)
            with open_regular(source) as fh:
                return pacsv.read_csv(fh, **options)

        try:
            table = read(None)
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            size = len(source) if isinstance(source, bytes) else os.stat(source).st_size
            table = read(min(3 * size + 1, 2**31 - 1))  # decoded to UTF-8, a byte may take up to 3
        if any(row.number is None for row in bad):  # pragma: no cover - pyarrow numbers rows when reading serially
            raise FileReadError(f"{self.where}: the CSV reader did not number a malformed record")
        return table, bad

    def place(
        self,
        table: pa.Table,
        bad: list[pacsv.InvalidRow],
        first_read: int,
        first_row: int,
        first_line: int,
        multiline: bool,
        depth: int = 0,
    ) -> tuple[list[pa.Table], list[np.ndarray], list[MalformedRecord]]:
        """Row numbers of the well-formed records and the malformed ones, in one pass of pyarrow's output: record
        ``first_read`` (pyarrow's number of the first record) is row ``first_row``, starting on ``first_line``.
        Vectorised over the well-formed records; Python per malformed one.

        When some record runs over several lines (``multiline``), each record's lines are counted from its values.
        A well-formed record over several lines whose multi-line value also holds the delimiter is set aside too:
        that is what a quote left open and closed a few lines on looks like (the lines in between, whole records,
        became one value), and a legitimate value seldom holds both."""
        total = table.num_rows + len(bad)
        bad = sorted(bad, key=lambda row: row.number)
        at_bad = np.array([row.number for row in bad], dtype=np.int64) - first_read
        at_good = np.setdiff1d(np.arange(total, dtype=np.int64), at_bad, assume_unique=True)  # pyarrow keeps order
        spans = np.ones(total, dtype=np.int64)  # lines per record
        joined = np.zeros(total, dtype=bool)  # well-formed, but a value holds line breaks and the delimiter
        if multiline and total:
            holds = np.zeros(table.num_rows, dtype=bool)
            for column in table.columns:
                breaks, delimited = _line_breaks(column, self.delimiter)
                spans[at_good] += breaks
                holds |= delimited
            joined[at_good] = holds
            spans[at_bad] += np.array([_text_breaks(row.text) for row in bad], dtype=np.int64)
        starts = first_line + np.cumsum(spans) - spans
        cut = spans > MAX_RECORD_LINES  # a quote left open: the record's lines are read again on their own
        extra = np.where(cut, spans - 1, 0)
        numbers = first_row + np.arange(total, dtype=np.int64) + np.cumsum(extra) - extra
        keep = ~(cut | joined)[at_good]
        tables = [table if keep.all() else table.filter(pa.array(keep))]
        kept = [numbers[at_good][keep]]
        malformed = []
        text_of: dict[int, str] = {}
        for row, i in zip(bad, at_bad.tolist()):
            text_of[i] = row.text
            if not cut[i]:
                last = int(starts[i] + spans[i] - 1)
                malformed.append(self.record(row.text, int(numbers[i]), int(starts[i]), last, row.actual_columns))
        for i in np.flatnonzero(joined & ~cut).tolist():  # set aside whole, its text from the file
            start, last = int(starts[i]), int(starts[i] + spans[i] - 1)
            malformed.append(self.record(self.lines(start, last), int(numbers[i]), start, last, self.width))
        for i in np.flatnonzero(cut).tolist():
            start, last = int(starts[i]), int(starts[i] + spans[i] - 1)
            # read as well-formed, but over too many lines: its text from the file
            text = text_of[i] if i in text_of else self.lines(start, last)
            first, rest = _LINE_END.split(text, maxsplit=1)
            fields = len(next(csv.reader([first], delimiter=self.delimiter), []))
            malformed.append(self.record(first, int(numbers[i]), start, start, fields, open_until=last))
            more = self.read_lines(rest, int(numbers[i]) + 1, start + 1, depth + 1)
            tables += more[0]
            kept += more[1]
            malformed += more[2]
        return tables, kept, malformed

    def lines(self, first: int, last: int) -> str:
        """The file's lines ``first`` to ``last`` (1-based, inclusive), as they are written."""
        return "\n".join(self.file_lines()[first - self.line_offset : last - self.line_offset + 1])

    def read_lines(
        self, text: str, first_row: int, first_line: int, depth: int
    ) -> tuple[list[pa.Table], list[np.ndarray], list[MalformedRecord]]:
        """The lines after a quote left open, read as records of their own (their first is row ``first_row``)."""
        if depth > MAX_CUT_DEPTH:
            raise FileReadError(
                f'{self.where}: more than {MAX_CUT_DEPTH} quotes (") left open, each within the lines after '
                f"another (the last on line {first_line - 1}); the file was not loaded. Balance or remove them and "
                "send it again."
            )
        records, lines = count_text_records(text, self.delimiter)
        table, bad = self.parse(text.encode("utf-8"), "utf-8")
        if table.num_rows + len(bad) != records:
            raise FileReadError(
                f"{self.where}: lines {first_line}-{first_line + lines - 1} hold {records:,} record(s) but the CSV "
                f"reader returned {table.num_rows + len(bad):,}; the file was not loaded so that no row is lost unseen"
            )
        inner = _CsvReader(
            self.where,
            self.delimiter,
            self.width,
            self.found,
            functools.cache(lambda: _LINE_END.split(text)),
            first_line,
        )
        return inner.place(table, bad, 1, first_row, first_line, lines != records, depth)

    def record(
        self, text: str, row: int, line: int, last: int, fields: int, open_until: int | None = None
    ) -> MalformedRecord:
        return MalformedRecord(row, line, last, _kept(text), fields, self.width, open_until)


def _kept(text: str, limit: int = MAX_KEPT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _excerpt(text: str) -> str:
    """A record as quoted in a message: line breaks shown as ⏎, at most MAX_SHOWN characters."""
    return "'" + _kept(_LINE_END.sub("⏎", text), MAX_SHOWN) + "'"


def _explained(records: list[MalformedRecord]) -> list[MalformedRecord]:
    """Each malformed record's message, for the steward: where it is, what is wrong, what to do. Two short lines in a
    row whose fields add up to one record (one field cut in two) are told as a record broken by a line break."""
    one_line = {r.line: r for r in records if r.last_line == r.line and r.open_until is None}

    def broken(a: MalformedRecord | None, b: MalformedRecord | None) -> bool:
        return a is not None and b is not None and a.fields < a.expected and a.fields + b.fields - 1 == a.expected

    for r in records:
        shown_text = _excerpt(r.text)
        if r.open_until is not None:
            r.message = (
                f'Line {r.line} opens a quoted value (") that is not closed before line {r.open_until}, so lines '
                f"{r.line}-{r.open_until} were read as one record; line {r.line} is held back and the lines "
                f"after it were read on their own: {shown_text}; balance or remove the quote and send the file again"
            )
        elif r.last_line > r.line and r.fields == r.expected:
            r.message = (
                f"Lines {r.line}-{r.last_line} were read as one record whose quoted value runs over "
                f'{r.last_line - r.line + 1} lines and holds the column delimiter, as when a quote (") is left open: '
                f"{shown_text}; check the quotes on these lines, correct the record and send the file again"
            )
        elif r.last_line > r.line:
            r.message = (
                f"Lines {r.line}-{r.last_line} were read as one record (a quoted value runs over "
                f"{r.last_line - r.line + 1} lines) with {r.fields} field(s) where the header has {r.expected}: "
                f'{shown_text}; check the quotes (") on these lines, correct the record and send the file again'
            )
        elif broken(r, one_line.get(r.line + 1)) or broken(one_line.get(r.line - 1), r):
            a, b = (r, one_line[r.line + 1]) if broken(r, one_line.get(r.line + 1)) else (one_line[r.line - 1], r)
            r.message = (
                f"Lines {a.line}-{b.line} look like one record broken in two by a line break (line {a.line} has "
                f"{a.fields} field(s), line {b.line} has {b.fields}, the header {r.expected}); line {r.line} reads "
                f"{shown_text}; join the two lines in the file and send it again"
            )
        else:
            r.message = (
                f"Line {r.line} has {r.fields} field(s) where the header has {r.expected}: {shown_text}; correct the "
                "record in the file and send it again"
            )
    return records

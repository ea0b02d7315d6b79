"""The streaming steward export (warehouse/export_query.py) reads in SQL what the in-memory export read in Python: a
trimmed text, a cell of a held-back row's JSON, the longest line of a value, the order of the Issues sheet. Each SQL
expression gives what the Python function gives, on awkward values."""

from __future__ import annotations

import json

import duckdb
import pytest

from warehouse import export_query as q
from warehouse.export_sheets import _display_len

TEXTS = [
    None,
    "",
    " ",
    "plain",
    "  padded\t",
    "\u00a0no-break\u3000",
    "\u2028line sep\u2029",
    "\x1c\x1d\x1e\x1finfo sep\x85",
    "\u200bzero width stays\u200b",  # not white space for str.strip
    "inner  \n  space",
    "\ufeffbom",
    "عربي ",
]


@pytest.fixture
def con():
    c = duckdb.connect()
    for name, fn, args, returns in q._UDFS:
        c.create_function(name, fn, args, returns, null_handling="special", side_effects=False)
    yield c
    c.close()


def _values(con, expr: str, column: str, values: list, order: str = "i") -> list:
    """``expr`` over a table ``q`` holding ``values`` in ``column``, ordered by ``order``."""
    con.execute(f"CREATE OR REPLACE TABLE t (i INTEGER, {column} VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    return [v for _, v in con.execute(f"SELECT i, {expr} FROM t AS q ORDER BY {order}").fetchall()]


def test_strip_is_python_strip(con):
    assert _values(con, q._strip("x"), "x", TEXTS) == [q._text(t) for t in TEXTS]


def test_a_held_back_cell_reads_as_python_reads_the_json(con):
    cells = [*TEXTS, 12, 12.0, 1e20, -0.5, True, False, [1, "a"], {"k": "v"}, "\\u00e9 \u00e9", 'quote " inside']
    raws = [json.dumps({"program_code": c, "other": 1}, ensure_ascii=False) for c in cells]
    raws += [
        None,
        "",
        "not json",
        "[1, 2]",
        '"a string"',
        "{}",
        '{"other": 1}',
        '{"program_code": NaN}',
        '{"program_code": Infinity}',
        json.dumps({"program_code": "\u00e9\U0001f600"}, ensure_ascii=True),
    ]
    got = _values(con, q._raw("program_code"), "raw_json", raws)
    assert got == [q._text(q._json(r).get("program_code")) for r in raws]


def test_display_length_is_the_longest_line(con):
    texts = [t for t in TEXTS if t is not None] + ["a\r\nbb\rccc\x0bdddd", "x" * 70, "\u2028" * 3, "a\n"]
    assert _values(con, q._display_len("x"), "x", texts) == [_display_len(t) for t in texts]


def test_sql_orders_text_as_python_does(con):
    texts = ["b", "B", "a", "", "é", "e\u0301", "z", "Z", "\U0001f600", "\uffff", "ab", "a b", "10", "9", "ع", "_"]
    assert _values(con, "x", "x", texts, order="x") == sorted(texts)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("C7", (7, 3)), ("c7", (7, 3)), ("$AB$12", (12, 28)), ("A1:B2", None), ("A0", None), ("ZZZZ1", None), ("7", None)],
)
def test_a_cell_that_is_no_cell_marks_nothing(cell, expected):
    """A range or a bad address marks no cell (the in-memory export failed the whole workbook on a range)."""
    index = q._cell_index(cell)
    assert (None if index is None else (index >> 15, index & 32767)) == expected

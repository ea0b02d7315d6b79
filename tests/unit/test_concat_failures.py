"""concat_failures orders in Arrow exactly as pandas' concat-then-stable-sort did, and with ``release`` lets the
caller's parts go (issue 17, point 8: a sheet whose every row fails held its failures three times over)."""

from __future__ import annotations

import types

import duckdb
import pandas as pd
import pyarrow as pa

from transforms.failures import TEXT, concat_failures, empty_failures, failures_where, file_failure
from warehouse import file_audit
from warehouse.ddl import apply_ddl


def parts() -> list[pd.DataFrame]:
    frame = pd.DataFrame(
        {"excel_row": [7, 3, 5, 3], "amount": ["x", None, "z", "é"], "currency": ["A", "B", None, "D"]}
    )
    return [
        failures_where(frame, pd.Series([True, True, False, True]), "amount", "amount_not_number", "not a number"),
        file_failure("amount_not_number", "the whole file"),
        failures_where(frame, pd.Series([True, False, True, True]), "currency", "currency_unknown", "unknown"),
        failures_where(frame, pd.Series([False, True, True, False]), None, "amount_not_number", "the row"),
        empty_failures(),
    ]


def plain(failures: pd.DataFrame) -> pd.DataFrame:
    """The frame with its dictionary-encoded text as plain text (what pandas' concat gives)."""
    return failures.astype({c: pd.StringDtype("pyarrow") for c in failures.columns if c != "excel_row"})


def test_the_order_is_excel_row_then_column_file_level_first_stable():
    got = concat_failures(parts())
    expected = (
        pd.concat([plain(p) for p in parts() if len(p)], ignore_index=True)
        .sort_values(["excel_row", "column"], kind="stable", na_position="first")
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(plain(got), expected)
    assert got["excel_row"].tolist()[:3] == [pd.NA, 3, 3]
    assert list(got.loc[got["excel_row"] == 3, "column"].fillna("")) == ["", "amount", "amount", "currency"]


def test_release_empties_the_callers_list_and_nothing_else_changes():
    given = parts()
    kept = concat_failures(parts())
    got = concat_failures(given, release=True)
    assert given == []
    pd.testing.assert_frame_equal(got, kept)


def test_no_parts_give_the_empty_frame_with_its_types():
    pd.testing.assert_frame_equal(concat_failures([empty_failures()]), empty_failures())


def test_text_is_held_once_per_distinct_value_and_reads_as_text():
    """Issue 17, point 8: 1.3M failures repeating 50 messages are held as indices into the distinct texts."""
    frame = pd.DataFrame({"excel_row": range(2, 2002), "amount": ["n/a", "-", "?", "x"] * 500})
    part = failures_where(frame, pd.Series(True, index=frame.index), "amount", "amount_not_number", "not a number")
    got = concat_failures([part, file_failure("header_not_found", "no header")])
    assert all(got[c].dtype == TEXT for c in got.columns if c != "excel_row")
    assert len(got["message"].array._pa_array.chunks[0].dictionary) == 2  # two texts, 2,001 rows
    assert len(got["value"].array._pa_array.chunks[0].dictionary) == 4
    assert got["value"].tolist()[:4] == [pd.NA, "n/a", "-", "?"]
    assert (got["severity"] == "block").all()
    assert got["rule"].isin(["header_not_found"]).sum() == 1


def test_storing_reads_the_dictionary_as_it_is_and_the_held_rules_in_either_path():
    """The failure table DuckDB reads keeps the dictionary (never spelled out per row), and a held row's rules are
    the same whether DuckDB builds its JSON (store_held) or Python does (held_frame)."""
    frame = pd.DataFrame({"excel_row": [2, 3, 4], "amount": ["x", "y", "1"], "currency": ["Q", "SAR", "Q"]})
    failures = concat_failures(
        [
            failures_where(frame, frame["currency"] == "Q", "currency", "currency_unknown", "unknown"),
            failures_where(frame, frame["amount"] != "1", "amount", "amount_not_number", "not a number"),
        ]
    )
    table = file_audit._failure_table(failures)
    assert pa.types.is_dictionary(table.schema.field("message").type)
    batch = types.SimpleNamespace(failures=failures, agency_code="MOD", kind="budget")
    q = frame.astype({"excel_row": "int32"})
    expected = ["amount_not_number,currency_unknown", "amount_not_number", "currency_unknown"]
    assert file_audit.held_frame(batch, q, "block")["rules"].tolist() == expected  # type: ignore[arg-type]
    con = duckdb.connect()
    apply_ddl(con)
    cols = [r[0] for r in con.execute("SELECT * FROM quarantine_row LIMIT 0").description]
    lineage = {"file_key": "k", "sheet": "S", "file_hash": "h", "load_id": "L"}
    assert file_audit.store_held(con, "quarantine_row", cols, batch, q, "block", lineage)  # type: ignore[arg-type]
    assert [r[0] for r in con.execute("SELECT rules FROM quarantine_row ORDER BY rowid").fetchall()] == expected

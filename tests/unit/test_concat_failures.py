"""concat_failures orders in Arrow exactly as pandas' concat-then-stable-sort did, and with ``release`` lets the
caller's parts go (issue 17, point 8: a sheet whose every row fails held its failures three times over)."""

from __future__ import annotations

import pandas as pd

from transforms.failures import concat_failures, empty_failures, failures_where, file_failure


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


def test_the_order_is_excel_row_then_column_file_level_first_stable():
    got = concat_failures(parts())
    expected = (
        pd.concat([p for p in parts() if len(p)], ignore_index=True)
        .sort_values(["excel_row", "column"], kind="stable", na_position="first")
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(got, expected)
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

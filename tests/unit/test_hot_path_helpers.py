"""The vectorised helpers of the per-file hot path (issue 15 point 2, issue 17 point 8): work per distinct value or
per distinct key, share memory where nothing changes, and give exactly what the per-row code gave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from transforms.currency import check_codes, normalize_for_fx
from transforms.deflate import deflate
from transforms.failures import _may_hold, utf7_decoded
from transforms.fx import key_codes
from transforms.standardise_budget import as_read, fx_policies
from transforms.standardise_checks import warning_rules
from transforms.standardise_rows import data_rows
from transforms.text import as_text, per_unique_objects

STR = pd.StringDtype("pyarrow")


def test_per_unique_objects_shares_one_object_per_distinct_value():
    cells = pd.Series(["a", None, "b", "a"], dtype=STR, index=[10, 11, 12, 13], name="c")
    out = per_unique_objects(cells, lambda u: u.astype(object).map({"a": "x"}).astype(object))
    assert out.dtype == object and out.name == "c" and list(out.index) == [10, 11, 12, 13]
    assert out.iloc[0] == "x" and out.iloc[3] == "x" and out.iloc[0] is out.iloc[3]
    assert np.isnan(out.iloc[1]) and np.isnan(out.iloc[2])  # missing cell: the default NA; unmapped: the map's NaN


def test_per_unique_objects_takes_the_na_asked_for_and_handles_nothing():
    cells = pd.Series([None, "USD"], dtype=STR)
    assert per_unique_objects(cells, lambda u: u.astype(object), na=pd.NA).tolist() == [pd.NA, "USD"]
    assert per_unique_objects(pd.Series([], dtype=STR), lambda u: u).tolist() == []


def test_fx_policies_by_stage_then_the_default():
    stage = pd.Series(["committed", None, "allocated", "committed"], dtype=STR)
    out = fx_policies(stage, {"committed": "transaction_date"}, "fiscal_period_average")
    assert out.dtype == object
    assert out.tolist() == ["transaction_date", "fiscal_period_average", "fiscal_period_average", "transaction_date"]


def test_normalize_for_fx_leaves_out_unknown_codes():
    codes = pd.Series(["EUR", "XXX", None, "EUR"], dtype=STR)
    out = normalize_for_fx(codes, pd.Series([False, True, False, False]))
    assert out.dtype == object and out.tolist() == ["EUR", None, pd.NA, "EUR"]


def test_key_codes_numbers_distinct_keys_in_order_and_skips_missing_values():
    cur = pd.Series(["EUR", "USD", "EUR", None, "EUR", "USD"], dtype=object)
    day = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", None]))
    year = pd.Series([2024, 2024, 2024, 2024, 2024, 2024])
    key, first = key_codes([cur, day, year])
    assert key.tolist() == [0, 1, 0, -1, 2, -1]
    assert first.tolist() == [0, 1, 4]


def test_key_codes_do_not_mix_up_keys_whose_parts_swap():
    a = pd.Series([1, 2, 1, 2])
    b = pd.Series([2, 1, 2, 1])
    key, first = key_codes([a, b])
    assert key.tolist() == [0, 1, 0, 1] and first.tolist() == [0, 1]
    key, first = key_codes([pd.Series([], dtype="int64")])
    assert key.tolist() == [] and first.tolist() == []


def test_as_text_shares_clean_text_and_cleans_the_rest():
    clean = pd.Series(["a", None, "b c"], dtype=STR, name="n")
    shared = as_text(clean)
    assert shared is not clean and shared.array._pa_array is clean.array._pa_array  # the same cells, not a copy
    pd.testing.assert_series_equal(shared, clean)
    messy = pd.Series([" a ", "", None, "b"], dtype=STR, name="n")
    out = as_text(messy)
    assert out.dtype == STR and out.name == "n" and out.tolist() == ["a", pd.NA, pd.NA, "b"]
    only_empty = pd.Series(["a", ""], dtype=STR)  # nothing to strip, but an empty cell
    assert as_text(only_empty).tolist() == ["a", pd.NA]
    assert as_text(pd.Series([1.5, None])).tolist() == ["1.5", pd.NA]


def test_data_rows_slices_one_run_and_filters_the_rest():
    raw = pd.DataFrame({"x": pd.array(["a", "b", "c", "d"], dtype=STR), "excel_row": np.arange(2, 6, dtype="int32")})
    run = data_rows(raw, np.array([False, True, True, False]))
    assert run["x"].tolist() == ["b", "c"] and list(run.index) == [1, 2]
    gaps = data_rows(raw, np.array([True, False, True, True]))
    assert gaps["excel_row"].tolist() == [2, 4, 5] and list(gaps.index) == [0, 2, 3]
    assert data_rows(raw, np.zeros(4, dtype=bool)).empty


def test_as_read_and_utf7_on_few_rows():
    assert as_read(pd.Series([1e308, 12.5])).tolist() == ["1e+308", "12.5"]
    cells = pd.Series(["no plus", "+AEkAdABhAGwAeQ-", None, "C++"], dtype=STR)
    assert utf7_decoded(cells).tolist() == [pd.NA, "Italy", pd.NA, pd.NA]


def test_warning_rules_without_warnings_is_all_missing():
    data = pd.DataFrame({"excel_row": np.array([3, 4], dtype="int32")}, index=[5, 6])
    empty = pd.DataFrame({"excel_row": pd.array([], dtype="Int64"), "rule": pd.array([], dtype=STR)})
    out = warning_rules(data, empty)
    assert out.dtype == STR and out.isna().all() and list(out.index) == [5, 6] and out.name == "excel_row"
    warned = pd.DataFrame({"excel_row": pd.array([4, 4], dtype="Int64"), "rule": pd.array(["b", "a"], dtype=STR)})
    assert warning_rules(data, warned).tolist() == [pd.NA, "a,b"]


class _Currencies:
    """The two tables check_codes reads of the reference, inline."""

    iso_currencies = pd.Index(["USD", "EUR"])
    historic_currencies = pd.DataFrame({"withdrawn_on": ["2023-01-01"]}, index=pd.Index(["HRK"], name="code"))


def test_check_codes_per_distinct_code_withdrawn_from_its_day_on():
    codes = pd.Series(["HRK", "HRK", "HRK", "XYZ", None, "USD", "HRK"], dtype=STR, index=range(10, 17))
    dated = pd.Series(
        pd.to_datetime(["2022-12-31", "2023-01-01", "2023-07-01", "2023-07-01", "2023-07-01", None, None])
    )
    dated.index = codes.index
    unknown, withdrawn = check_codes(codes, dated, _Currencies())
    assert unknown.dtype == bool and withdrawn.dtype == bool and list(unknown.index) == list(range(10, 17))
    assert unknown.tolist() == [False, False, False, True, False, False, False]  # a missing code is not unknown
    assert withdrawn.tolist() == [False, True, True, False, False, False, False]  # undated: cannot say


def test_deflate_per_distinct_year_and_nothing_where_the_year_has_no_cpi():
    cpi = pd.DataFrame({"year": [2020, 2023, 2024], "value": [100.0, 120.0, 150.0]})
    amount = pd.Series([10.0, 10.0, 10.0, 10.0], index=[5, 6, 7, 8])
    year = pd.Series([2020, 2024, None, 2019], index=amount.index, dtype="Int64")
    out = deflate(amount, year, cpi, 2024)
    assert list(out.index) == [5, 6, 7, 8]
    assert out.iloc[:2].tolist() == [15.0, 10.0] and out.iloc[2:].isna().all()


def test_may_hold_is_certain_only_when_it_says_no():
    plain = pd.Series(["Italy", None, "France"], dtype=STR)
    assert _may_hold(plain, ord("+")) is False
    assert _may_hold(pd.Series(["C++"], dtype=STR), ord("+")) is True
    sliced = pd.Series(["+AOk-", "Italy"], dtype=STR).iloc[1:]  # the buffer still holds the first cell's bytes
    assert _may_hold(sliced, ord("+")) is True and utf7_decoded(sliced).isna().all()
    assert _may_hold(pd.Series(["a+b"], dtype=object), ord("+")) is True  # not Arrow text: look closer
    coded = pa.chunked_array([pa.array(["a+b", "c"]).dictionary_encode()])  # Arrow, but not laid out as text
    assert _may_hold(pd.Series(pd.arrays.ArrowExtensionArray(coded)), ord("+")) is True
    assert utf7_decoded(pd.Series(["+AEkAdABhAGwAeQ-"], dtype=object)).tolist() == ["Italy"]


def test_check_codes_compares_dates_in_their_own_unit():
    """Dates in microseconds (pandas 3's default) beyond nanoseconds' range (1677-2262) compare as dates, not wrapped."""
    codes = pd.Series(["HRK", "HRK", "HRK"], dtype=STR)
    dated = pd.Series(np.array(["1500-01-01", "3000-01-01", "2022-06-30"], dtype="datetime64[us]"))
    unknown, withdrawn = check_codes(codes, dated, _Currencies())
    assert withdrawn.tolist() == [False, True, False] and not unknown.any()

"""The per-distinct-value helpers of the budget standardiser (issue 15 point 2): each gives exactly what the per-row
code before it gave (the Hijri table against hijridate for every day; the canonical contract's code checks against
pandera's own str_matches), only once per distinct value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_
import pyarrow.compute as pc
import pytest
from hijridate import Hijri
from pandera.typing import Series

from schemas.frames import ISO3, FundingLine, Text, matches_each
from transforms import dates
from transforms.fiscal import HIJRI_YEARS, resolve_fiscal_years
from transforms.numbers import SPACE, parse_amounts
from transforms.rows import classify_rows, first_present, row_kinds
from transforms.text import (
    _DIGITS,
    STR,
    as_text,
    ascii_digits,
    derived,
    distinct,
    fold_key,
    missing_text,
    per_unique,
    spread,
)

# ---- per distinct value ---------------------------------------------------------------------------------------


def test_per_unique_converts_the_distinct_results_before_taking_them_back():
    cells = pd.Series(["a", None, "b", "a"], dtype=STR, index=[5, 6, 7, 8], name="c")
    out = per_unique(cells, lambda u: u.astype(object).map({"a": "X", "b": None}), STR)
    assert out.dtype == STR and out.name == "c" and list(out.index) == [5, 6, 7, 8]
    assert out.tolist() == ["X", pd.NA, pd.NA, "X"]


def test_per_unique_of_a_column_without_a_value_is_all_missing_in_the_result_dtype():
    cells = pd.Series([None] * 4, dtype=STR)
    assert per_unique(cells, lambda u: u.astype(object), STR).isna().all()
    out = per_unique(cells, lambda u: u.isna().astype("boolean"))
    assert out.dtype == "boolean" and out.isna().all() and len(out) == 4


def test_distinct_then_spread_is_per_unique():
    cells = pd.Series(["x", "y", None, "x"], dtype=STR)
    codes, uniques = distinct(cells)
    assert codes.tolist() == [0, 1, -1, 0] and uniques.tolist() == ["x", "y"]
    assert spread(uniques.str.upper(), codes, cells).tolist() == ["X", "Y", pd.NA, "X"]


def test_derived_is_built_once_per_table_and_again_for_another_table():
    built = []
    table = pd.DataFrame({"a": [1]})

    def build() -> int:
        built.append(1)
        return len(built)

    assert derived(table, ("t",), build) == 1
    assert derived(table, ("t",), build) == 1  # the same table: kept
    assert derived(table, ("other",), build) == 2  # another lookup of it
    assert derived(table.copy(), ("t",), build) == 3  # an equal table, not the same one: built again


# ---- row kinds ------------------------------------------------------------------------------------------------


def test_row_kinds_numbers_data_totals_and_blank_rows():
    frame = pd.DataFrame(
        {
            "code": pd.array(["P1", None, None, None], dtype=STR),
            "name": pd.array(["Drill", "Total", None, "Grand total"], dtype=STR),
            "amount": pd.array(["5", "5", None, None], dtype=STR),
        }
    )
    kinds = row_kinds(frame, ["code", "name", "amount"], ["code", "name"], "total")
    assert kinds.tolist() == [0, 1, 2, 1]
    assert classify_rows(frame, ["code", "name", "amount"], ["code", "name"], "total").tolist() == [
        "data",
        "total",
        "blank",
        "total",
    ]
    assert classify_rows(frame, ["code", "name", "amount"], ["code", "name"], None).dtype == object


def test_first_present_takes_the_first_label_column_with_a_value():
    frame = pd.DataFrame(
        {"a": pd.array([None, "x", None], dtype=STR), "b": pd.array(["y", "z", None], dtype=STR), "n": [1, 2, 3]}
    )
    assert first_present(frame, ["a", "b"]).tolist() == ["y", "x", pd.NA]
    assert first_present(frame, ["b", "a"]).tolist() == ["y", "z", pd.NA]
    assert first_present(frame, ["missing"]).isna().all()
    assert first_present(frame, ["a"]).dtype == STR


# ---- Hijri dates by table -------------------------------------------------------------------------------------


def test_hijri_table_gives_hijridates_day_for_every_date_and_refuses_what_it_refuses():
    starts, lengths = dates._hijri_months()
    epoch = pd.Timestamp("1970-01-01").toordinal()
    for y in range(HIJRI_YEARS[0], HIJRI_YEARS[1] + 1):
        for m in range(0, 14):
            for d in (0, 1, 15, 28, 29, 30, 31):
                try:
                    expected = Hijri(y, m, d).to_gregorian().toordinal() - epoch
                except ValueError:
                    expected = None
                ok = 1 <= m <= 12 and 1 <= d <= lengths[(y - HIJRI_YEARS[0]) * 12 + m - 1]
                got = int(starts[(y - HIJRI_YEARS[0]) * 12 + m - 1]) + d - 1 if ok else None
                assert got == expected, (y, m, d)


def test_hijri_dates_read_by_label_among_other_dates():
    cells = pd.Series(
        ["2024-01-05", "1445/05/16", "x", "١٤٤٥/٠٧/١١", "16/05/1445", "1445/13/01", "1445/02/30", None, "1445/01/30"],
        dtype=STR,
        index=[10, 11, 12, 13, 14, 15, 16, 17, 18],
    )
    got = dates._parse(cells)
    want = {11: (1445, 5, 16), 13: (1445, 7, 11), 14: (1445, 5, 16), 16: (1445, 2, 30)}
    for label, (y, m, d) in want.items():
        assert got[label] == pd.Timestamp(Hijri(y, m, d).to_gregorian().isoformat()), label
    assert got[10] == pd.Timestamp("2024-01-05")
    assert got[[12, 15, 17]].isna().all()  # not a date, month 13, empty
    assert Hijri(1445, 1, 1).month_length() == 29
    hijri = dates._hijri(cells)
    assert pd.isna(hijri[18])  # day 30 of a 29-day month is no Hijri date (read on as ISO text, year 1445)
    assert hijri[16] == got[16] and pd.isna(hijri[10])


# ---- the canonical contract's checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"), [("USD", True), ("usd", False), ("US1", False), ("ÉUR", False), ("ABCD", False), ("AB", False)]
)
def test_matches_each_is_pandas_str_match(value, ok):
    cells = pd.Series([value, None, value], dtype=STR)
    assert matches_each(cells, ISO3).tolist() == [ok, True, ok]  # Arrow text: by its distinct values
    assert matches_each(cells.astype(object), ISO3).tolist() == [ok, True, ok]  # any other: factorised
    assert bool(cells.str.match(ISO3).iloc[0]) is ok


def _canonical_row() -> pd.DataFrame:
    day = pd.Timestamp("2024-01-01")
    row = {
        "agency_code": "MOD",
        "program_code": "P1",
        "program_name": "Drill",
        "country_iso3": "FRA",
        "category_code": "TRN",
        "category_label": "Training",
        "stage": "allocated",
        "fiscal_year": 2024,
        "fiscal_year_label": "2024",
        "period_start": day,
        "period_end": pd.Timestamp("2024-12-31"),
        "transaction_date": day,
        "amount_original": 10.0,
        "currency": "EUR",
        "amount_usd": 5.0,
        "fx_rate": 2.0,
        "fx_rate_date": day,
        "fx_provider": "ecb",
        "fx_policy": "transaction_date",
        "amount_usd_constant": 5.0,
        "constant_base_year": 2020,
        "warning_rules": None,
        "excel_row": 2,
    }
    frame = pd.DataFrame([row, {**row, "excel_row": 3}, {**row, "excel_row": 4}])
    text = [c for c, v in row.items() if isinstance(v, str) or v is None]
    return frame.astype(dict.fromkeys(text, STR))


def test_canonical_code_checks_fail_as_pandera_str_matches_did():
    frame = _canonical_row()
    frame.loc[0, "agency_code"] = "mod"
    frame.loc[1, "country_iso3"] = "France"
    frame.loc[2, "currency"] = "eu"
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        FundingLine.validate(frame, lazy=True)
    cases = caught.value.failure_cases
    got = sorted(zip(cases["column"], cases["check"], cases["failure_case"], cases["index"], strict=True))
    assert got == [
        ("agency_code", "str_matches('^[A-Z][A-Z0-9_]+$')", "mod", 0),
        ("country_iso3", "str_matches('^[A-Z]{3}$')", "France", 1),
        ("currency", "str_matches('^[A-Z]{3}$')", "eu", 2),
    ]


def test_canonical_contract_passes_a_good_frame_and_a_missing_country():
    frame = _canonical_row()
    frame.loc[1, "country_iso3"] = None
    assert len(FundingLine.validate(frame, lazy=True)) == 3


class _Texts(pa.DataFrameModel):
    t: Series[Text] = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = False


def test_text_dtype_passes_arrow_text_as_one_answer_and_fails_anything_else_per_cell():
    assert Text().check(Text()) is True
    _Texts.validate(pd.DataFrame({"t": pd.array(["a", None], dtype=STR)}))
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        _Texts.validate(pd.DataFrame({"t": pd.Series(["a", 3, None], dtype=object)}), lazy=True)
    cases = caught.value.failure_cases
    assert cases["failure_case"].tolist() == [3] and cases["index"].tolist() == [1]
    with pytest.raises(pa.errors.SchemaErrors):
        _Texts.validate(pd.DataFrame({"t": np.array([1.0, 2.0])}), lazy=True)


# ---- Arabic digits, stripping and separators by bytes ---------------------------------------------------------

_POOL = ["1", "2,5", " x", "y ", "", "é", "日本", "\u00a0z", "z\u3000", "\t", "\x1c1", "q\x85", "١٩٬٩٦٦", "۱۲۳٫۵"]
_POOL += ["x١y", "\u066a٥", "\U0001f600٣", "ok", None]


def _per_value_digits(cells: pd.Series) -> pd.Series:
    return (
        cells.astype(object)
        .map(lambda v: v.translate(_DIGITS).replace("\u066b", ".").replace("\u066c", ",") if isinstance(v, str) else v)
        .astype(STR)
    )


def _per_value_text(cells: pd.Series) -> pd.Series:
    stripped = cells.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
    return stripped.map(lambda v: None if v == "" else v).astype(STR)


@pytest.mark.parametrize("seed", range(4))
def test_ascii_digits_and_as_text_by_bytes_equal_the_per_value_rewrite(seed):
    rng = np.random.default_rng(seed)
    values = [_POOL[i] for i in rng.integers(0, len(_POOL), 400)]
    cells = pd.Series(values, dtype=STR, index=range(7, 407))
    for part in (cells, cells.iloc[3:], cells.iloc[5:9]):  # sliced: Arrow arrays with an offset
        digits = ascii_digits(part)
        assert digits.tolist() == _per_value_digits(part).tolist() and list(digits.index) == list(part.index)
        text = as_text(part)
        assert text.tolist() == _per_value_text(part).tolist() and list(text.index) == list(part.index)


def test_ascii_digits_and_as_text_give_back_clean_text_unchanged():
    cells = pd.Series(["P1", None, "Drill"], dtype=STR)
    assert ascii_digits(cells) is cells
    same = as_text(cells)
    assert same is not cells and same.array._pa_array is cells.array._pa_array  # shares the cells


def test_space_class_is_pythons_whitespace_for_every_code_point():
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    found = pc.match_substring_regex(pa_.array(points, pa_.large_string()), f"^[{SPACE}]$").to_pylist()
    assert found == [p.isspace() for p in points]


def test_amounts_with_prefixes_and_separators_read_as_before():
    cells = pd.Series(
        ["USD 1,234", "$\u00a05", "SAR\u20031 000", "usd 5", "(1\u202f234)", "١٬٢٣٤", "12-", "€ 1'000’5", None],
        dtype=STR,
    )
    values, blank = parse_amounts(cells, "en")
    assert values.tolist()[:8] == [
        1234.0,
        5.0,
        1000.0,
        pytest.approx(float("nan"), nan_ok=True),
        -1234.0,
        1234.0,
        -12.0,
        10005.0,
    ]
    assert blank.tolist() == [False] * 8 + [True]
    eu, _ = parse_amounts(pd.Series(["EUR 1.234,5", "1\u00a0234,25"], dtype=STR), "eu")
    assert eu.tolist() == [1234.5, 1234.25]


# ---- fiscal years per distinct label, kept across files -------------------------------------------------------


def test_fiscal_years_from_the_memo_are_equal_and_not_shared():
    labels = pd.Series(["2023/24", None, "x", "2023/24"], dtype=STR, index=[4, 5, 6, 7])
    first = resolve_fiscal_years(labels, 7)
    assert first["fiscal_year"].tolist() == [2024, pd.NA, pd.NA, 2024]
    assert first["period_start"].tolist()[0] == pd.Timestamp("2023-07-01") and pd.isna(first["period_start"][5])
    assert first.dtypes.astype(str).tolist() == ["Int64", "datetime64[ns]", "datetime64[ns]"]
    first.loc[4, "fiscal_year"] = 1999  # a caller's change stays its own
    again = resolve_fiscal_years(labels, 7)
    assert again["fiscal_year"].tolist() == [2024, pd.NA, pd.NA, 2024] and list(again.index) == [4, 5, 6, 7]
    assert resolve_fiscal_years(labels, 1)["fiscal_year"].isna().all()  # another start month: not the memo's


def test_missing_text_is_arrow_text_all_missing_on_the_index():
    out = missing_text(pd.Index([4, 9, 2]), name="c")
    assert out.dtype == STR and out.name == "c" and list(out.index) == [4, 9, 2]
    assert out.isna().all() and out.equals(pd.Series(pd.NA, index=[4, 9, 2], dtype=STR))
    out[9] = "set"  # a Series of its own: a caller may set values in it
    assert out.tolist() == [pd.NA, "set", pd.NA]


def test_dates_remembered_per_order_across_files(monkeypatch):
    monkeypatch.setattr(dates, "_READ", {})
    cells = pd.Series(["03/04/2024", "15/03/2024", None, "03/04/2024"], dtype=STR)
    first = dates.read_dates(cells)
    assert first.ambiguous.tolist() == [True, False, False, True] and pd.isna(first.dates[0])
    assert first.dates[1] == pd.Timestamp("2024-03-15")
    again = dates.read_dates(cells.iloc[::-1].reset_index(drop=True))  # the next file: the same values, remembered
    assert again.dates.tolist()[::-1][1] == pd.Timestamp("2024-03-15") and again.ambiguous.tolist()[::-1][0]
    assert len(dates._READ) == 2  # one entry per (order, text), none for the empty cell
    day_first = dates.read_dates(cells, "day_first")  # another order: read again, never taken from the other
    assert day_first.dates[0] == pd.Timestamp("2024-04-03") and not day_first.ambiguous.any()
    assert len(dates._READ) == 4


def test_dates_of_a_file_with_many_distinct_values_are_not_remembered(monkeypatch):
    monkeypatch.setattr(dates, "_READ", {})
    monkeypatch.setattr(dates, "MEMO_VALUES", 1)
    out = dates.read_dates(pd.Series(["2024-01-01", "2024-01-02"], dtype=STR))
    assert out.dates.tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02")]
    assert dates._READ == {}


def test_fold_key_remembered_equals_folding_each_time(monkeypatch):
    import transforms.text as text

    monkeypatch.setattr(text, "_FOLDED", {})
    cells = pd.Series(["  Saudi\u00a0 ARABIA ", "ﻣﺼﺮ", "مـصـر", "", None, "Ｆｒａｎｃｅ", "saudi arabia"], dtype=STR)
    expected = text._fold(cells).tolist()
    assert (
        fold_key(cells).tolist() == expected == ["saudi arabia", "مصر", "مصر", pd.NA, pd.NA, "france", "saudi arabia"]
    )
    assert len(text._FOLDED) == 6  # one entry per distinct non-missing text, the empty one too
    assert fold_key(cells.iloc[::-1]).tolist() == expected[::-1]  # the next file: from the memo
    monkeypatch.setattr(text, "FOLD_VALUES", 1)
    monkeypatch.setattr(text, "_FOLDED", {})
    assert fold_key(cells).tolist() == expected and text._FOLDED == {}  # many distinct values: not remembered

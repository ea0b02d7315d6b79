"""The records kind's standardiser on tiny inline frames: each declared type read exactly, each failure rule at its
row, the dataset's Pandera contract built from the declaration, and the long storage form."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from schemas.sources import RecordsFileSpec, SourceConfig
from transforms.records import RecordsContext, contract, long_values, output_fields, standardise_records

S = pd.StringDtype("pyarrow")


def frame(**columns: list) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    out = pd.DataFrame({k: pd.array(v, dtype=S) for k, v in columns.items()})
    out["excel_row"] = pd.array(range(2, n + 2), dtype="int32")
    return out


def ctx(columns: dict[str, dict], **kw) -> RecordsContext:
    spec = RecordsFileSpec.model_validate(
        {"kind": "records", "pattern": "*.csv", "dataset": "t", "columns": columns, **kw}
    )
    return RecordsContext(
        agency="T",
        dataset="t",
        columns={n: c.model_dump() for n, c in spec.columns.items()},
        date_order=spec.date_order,
        missing=list(spec.missing),
        constants=dict(spec.constants),
        keep_rows=spec.keep_rows.model_dump(by_alias=False) if spec.keep_rows else None,
        key=list(spec.key),
        severity=dict(spec.severity),
    )


def rules_by_row(result) -> dict[int, list[str]]:
    f = result.failures
    return {int(r): sorted(f.loc[f["excel_row"] == r, "rule"]) for r in sorted(set(f["excel_row"].dropna()))}


def test_each_type_is_read_exactly(reference):
    c = ctx(
        {
            "name": {"header": ["Name"]},
            "n": {"header": ["N"], "type": "integer"},
            "x": {"header": ["X"], "type": "decimal", "scale": 1000},
            "y": {"header": ["Y"], "type": "year"},
            "d": {"header": ["D"], "type": "date"},
            "who": {"header": ["Who"], "type": "country"},
            "cur": {"header": ["Cur"], "type": "currency"},
        },
        date_order="month_first",
    )
    raw = frame(
        name=[" Alpha ", "Beta"],
        n=["1,200", "7"],
        x=["2.5", "(3)"],
        y=["2021", "2019.0"],
        d=["03/04/2024", "2024-12-31"],
        who=["Côte d'Ivoire", "DEU"],
        cur=["eur", "USD"],
    )
    r = standardise_records(raw, c, reference)
    assert r.failures.empty and len(r.quarantined) == 0
    rows = r.rows.set_index("excel_row")
    assert rows.loc[2, "name"] == "Alpha" and rows.loc[2, "n"] == 1200 and rows.loc[3, "n"] == 7
    assert rows.loc[2, "x"] == 2500.0 and rows.loc[3, "x"] == -3000.0
    assert list(rows["y"]) == [2021, 2019]
    assert rows.loc[2, "d"] == pd.Timestamp("2024-03-04")  # month first, as declared
    assert list(rows["who"]) == ["CIV", "DEU"] and rows.loc[2, "who_as_written"] == "Côte d'Ivoire"
    assert list(rows["cur"]) == ["EUR", "USD"]


def test_each_failure_rule_lands_on_its_row(reference):
    c = ctx(
        {
            "id": {"header": ["ID"], "required": True, "pattern": r"D-\d+"},
            "n": {"header": ["N"], "type": "integer", "min": 0},
            "y": {"header": ["Y"], "type": "year", "max": 2030},
            "s": {"header": ["S"], "allowed": ["Open", "Closed"]},
            "who": {"header": ["Who"], "type": "country"},
            "d": {"header": ["D"], "type": "date"},
        },
        key=["id"],
    )
    raw = frame(
        id=["D-1", "X-2", None, "D-4", "D-5", "D-6", "D-6", "D-8"],
        n=["1", "1", "1", "1.5", "-1", "1", "1", "1"],
        y=["2020", "2020", "2020", "2020", "2031", "20x0", "2020", "2020"],
        s=["open", "Open", "Open", "Open", "Open", "Open", "Shut", "Open"],
        who=["France", "France", "France", "France", "France", "France", "France", "Atlantis"],
        d=[None, None, None, None, None, None, None, "03/04/2024"],
    )
    r = standardise_records(raw, c, reference)
    assert rules_by_row(r) == {
        3: ["value_not_allowed"],  # pattern
        4: ["required_missing"],
        5: ["number_unreadable"],  # 1.5 is not a whole number
        6: ["value_out_of_range", "value_out_of_range"],  # n below min, year above max
        7: ["record_duplicate", "year_unreadable"],
        8: ["record_duplicate", "value_not_allowed"],
        9: ["country_unknown", "date_ambiguous"],  # no date order declared: 03/04/2024 is never guessed
    }
    assert list(r.rows["excel_row"]) == [2] and r.rows.loc[0, "s"] == "Open"  # allowed values as declared
    assert sorted(r.quarantined["excel_row"]) == [3, 4, 5, 6, 7, 8, 9]
    dup = r.failures[r.failures["rule"] == "record_duplicate"]["message"].iloc[0]
    assert "rows 7, 8" in dup


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [(None, [2021, None, None, None]), ("first", [2021, 2022, 2023, None]), ("last", [2021, 2023, 2024, None])],
)
def test_year_ranges_are_read_only_as_declared(reference, ranges, expected):
    col = {"header": ["Y"], "type": "year"} | ({"ranges": ranges} if ranges else {})
    r = standardise_records(frame(y=["2021", "2022-2023", "2023/24", "2024-2023"]), ctx({"y": col}), reference)
    got = dict(zip(r.rows["excel_row"], r.rows["y"], strict=True))
    assert [got.get(row) for row in (2, 3, 4, 5)] == expected
    messages = r.failures.set_index("excel_row")["message"]
    assert "declares no rule for ranges" in messages.get(3, "declares no rule for ranges")  # only when undeclared
    assert "is not a year" in messages[5]  # a backwards range is no range


def test_money_is_converted_as_of_its_year_or_date(reference):
    c = ctx(
        {
            "v": {"header": ["V"], "type": "money", "currency": "cur", "as_of": "y", "scale": 1000},
            "w": {"header": ["W"], "type": "money", "currency": "USD", "as_of": "d"},
            "cur": {"header": ["Cur"], "type": "currency"},
            "y": {"header": ["Y"], "type": "year"},
            "d": {"header": ["D"], "type": "date"},
        },
        date_order="day_first",
    )
    raw = frame(v=["2", "1", "5"], w=["10", "10", "10"], cur=["USD", "HRK", "HRK"], y=["2020", "2022", "2024"])
    raw["d"] = pd.array(["15/06/2020", "15/06/2022", "15/06/2024"], dtype=S)
    r = standardise_records(raw, c, reference)
    rows = r.rows.set_index("excel_row")
    assert rows.loc[2, "v"] == 2000.0 and rows.loc[2, "v_usd"] == 2000.0 and rows.loc[2, "v_fx_provider"] == "identity"
    assert rows.loc[2, "v_fx_policy"] == "fiscal_period_average"  # a year: the year's average
    assert rows.loc[2, "w_fx_policy"] == "transaction_date" and rows.loc[2, "w_usd"] == 10.0
    assert rows.loc[3, "v_currency"] == "HRK" and rows.loc[3, "v_usd"] == pytest.approx(1000 / rows.loc[3, "v_fx_rate"])
    assert rows.loc[3, "v_fx_rate"] > 5  # kuna per US$ in 2022, from the ECB series (the kuna was current)
    assert rules_by_row(r) == {4: ["currency_withdrawn"]}  # the kuna after the euro: once, on its currency cell
    assert list(r.quarantined["excel_row"]) == [4]


def test_missing_markers_keep_rows_constants_and_blank_rows(reference):
    c = ctx(
        {
            "id": {"header": ["ID"], "required": True},
            "who": {"header": ["Who"], "type": "country"},
            "st": {"header": ["St"]},
            "src": {"header": ["Src"]},
        },
        missing=["n/a", "."],
        keep_rows={"column": "st", "in": ["Active"]},
        constants={"src": "register"},
    )
    raw = frame(id=["A", "B", None, "n/a"], who=["n/a", "France", None, "France"], st=["Active", "Old", None, "Active"])
    r = standardise_records(raw, c, reference)
    assert list(r.rows["excel_row"]) == [2] and pd.isna(r.rows.loc[0, "who"]) and r.rows.loc[0, "src"] == "register"
    assert dict(zip(r.skipped["excel_row"], r.skipped["reason"], strict=True)) == {3: "filtered", 4: "blank"}
    assert rules_by_row(r) == {5: ["required_missing"]}  # 'n/a' is no id
    assert len(r.rows) + len(r.quarantined) + len(r.skipped) == 4


def test_warned_rules_load_the_row_and_record_the_warning(reference):
    c = ctx(
        {"who": {"header": ["Who"], "type": "country", "required": True}, "s": {"header": ["S"], "allowed": ["A"]}},
        severity={"country_unknown": "warn", "value_not_allowed": "warn"},
    )
    r = standardise_records(frame(who=["Atlantis", "France"], s=["B", "A"]), c, reference)
    assert list(r.rows["excel_row"]) == [2, 3] and r.quarantined.empty
    row = r.rows.set_index("excel_row").loc[2]
    assert pd.isna(row["who"]) and row["who_as_written"] == "Atlantis" and row["s"] == "B"
    assert row["warning_rules"] == "country_unknown,value_not_allowed"
    assert set(r.failures["severity"]) == {"warn"}


def test_the_contract_is_built_from_the_declaration():
    c = ctx({"n": {"header": ["N"], "type": "integer", "min": 0, "required": True}, "s": {"header": ["S"]}})
    schema = contract(c, output_fields(c.columns), set())
    assert list(schema.columns) == ["excel_row", "n", "s", "warning_rules"]
    assert schema.columns["n"].nullable is False and schema.columns["s"].nullable is True
    good = pd.DataFrame(
        {
            "excel_row": pd.array([2], dtype="int32"),
            "n": pd.array([3], dtype="Int64"),
            "s": pd.array(["x"], dtype=S),
            "warning_rules": pd.array([None], dtype=S),
        }
    )
    schema.validate(good)
    with pytest.raises(Exception, match="greater_than_or_equal_to"):
        schema.validate(good.assign(n=pd.array([-1], dtype="Int64")))


def test_long_values_keep_every_field_of_every_record():
    c = ctx({"n": {"header": ["N"], "type": "integer"}, "d": {"header": ["D"], "type": "date"}})
    fields = output_fields(c.columns)
    rows = pd.DataFrame(
        {
            "excel_row": pd.array([2, 3], dtype="int32"),
            "n": pd.array([1, None], dtype="Int64"),
            "d": pd.to_datetime(["2024-01-02", None]),
            "warning_rules": pd.array([None, "x"], dtype=S),
        }
    )
    long = long_values(rows, fields, "t")
    assert len(long) == 2 * 2 + 1  # two fields per record, and one record's warnings
    n = long[long["field"] == "n"].set_index("excel_row")["number_value"]
    assert n[2] == 1.0 and pd.isna(n[3])
    assert long.loc[long["field"] == "warning_rules", "text_value"].tolist() == ["x"]


@pytest.mark.parametrize(
    ("columns", "extra", "message"),
    [
        ({"v": {"header": ["V"], "type": "money"}}, {}, "needs 'currency'"),
        ({"v": {"header": ["V"], "type": "money", "currency": "usd", "as_of": "y"}}, {}, "neither a column"),
        ({"v": {"header": ["V"], "type": "text", "min": 1}}, {}, "'min' and 'max' apply"),
        ({"v": {"header": ["V"], "ranges": "first"}}, {}, "'ranges' applies to year"),
        ({"excel_row": {"header": ["V"]}}, {}, "reserved"),
        ({"Bad Name": {"header": ["V"]}}, {}, "lower-case"),
        ({"v": {"header": ["V"]}}, {"key": ["w"]}, "not declared"),
        ({"v": {"header": ["V"]}}, {"severity": {"fx_rate_missing": "warn"}}, "cannot be 'warn'"),
        (
            {"v": {"header": ["V"], "type": "money", "currency": "USD", "as_of": "v_usd"}, "v_usd": {"header": ["U"]}},
            {},
            "clash",
        ),
    ],
)
def test_declarations_that_cannot_work_are_refused(columns, extra, message):
    with pytest.raises(ValidationError, match=message):
        RecordsFileSpec.model_validate(
            {"kind": "records", "pattern": "*.csv", "dataset": "t", "columns": columns, **extra}
        )


def test_a_records_source_validates_as_one_of_the_file_kinds():
    cfg = SourceConfig.model_validate(
        {
            "agency": "REG",
            "name_en": "x",
            "inbox_dir": "reg",
            "files": [{"kind": "records", "pattern": "*.csv", "dataset": "r", "columns": {"a": {"header": ["A"]}}}],
        }
    )
    assert isinstance(cfg.files[0], RecordsFileSpec) and cfg.spec_for("x.csv") is cfg.files[0]


def test_money_as_of_a_year_the_warehouse_cannot_store_costs_that_record_only(reference):
    """A year outside 1677-2262 has no days the warehouse can store: that record fails on its year cell, saying so;
    the others load (it once raised OutOfBoundsDatetime and failed the whole file)."""
    c = ctx(
        {
            "v": {"header": ["V"], "type": "money", "currency": "USD", "as_of": "y"},
            "y": {"header": ["Y"], "type": "year"},
        }
    )
    r = standardise_records(frame(v=["2", "1", "5"], y=["2020", "3000", "1500"]), c, reference)
    assert list(r.rows["excel_row"]) == [2] and r.rows["v_usd"].tolist() == [2.0]
    assert rules_by_row(r) == {3: ["date_out_of_range"], 4: ["date_out_of_range"]}
    f = r.failures.set_index("excel_row")
    assert f.loc[3, "column"] == "y" and f.loc[3, "value"] == "3000"
    assert "outside 1677-2262" in f.loc[4, "message"] and "correct the year" in f.loc[4, "message"]

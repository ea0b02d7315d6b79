"""The budget and programs standardisers on tiny inline frames, with exact expected values."""

from __future__ import annotations

import pandas as pd
import pytest

from transforms.standardise import FileContext, standardise_budget, standardise_programs

S = pd.StringDtype("pyarrow")


def frame(rows: list[dict], first_row: int = 5) -> pd.DataFrame:
    df = pd.DataFrame(rows).astype(S)
    df["excel_row"] = pd.Series(range(first_row, first_row + len(df)), dtype="int32")
    return df


CTX = FileContext(
    agency="MOD",
    fiscal_year_start_month=7,
    unit_factor=1000.0,
    default_currency="SAR",
    default_stage="allocated",
    totals_label="^total",
    source_columns={"amount": "Amount (SAR '000)", "partner_country": "Partner"},
)

BUDGET = [
    {
        "program_code": "P1",
        "partner_country": "KSA",
        "category": "Training",
        "fiscal_year": "2023/24",
        "amount": "1,500",
        "currency": None,
    },
    {
        "program_code": "P2",
        "partner_country": "Türkiye",
        "category": "Equipment",
        "fiscal_year": "2023/24",
        "amount": "75",
        "currency": "usd",
    },
    {
        "program_code": None,
        "partner_country": None,
        "category": None,
        "fiscal_year": None,
        "amount": None,
        "currency": None,
    },
    {
        "program_code": "P3",
        "partner_country": "Atlantis",
        "category": "Training",
        "fiscal_year": "2023/24",
        "amount": "10",
        "currency": None,
    },
    {
        "program_code": "P4",
        "partner_country": "KSA",
        "category": "Training",
        "fiscal_year": "2023/24",
        "amount": "TBD",
        "currency": None,
    },
    {
        "program_code": "P5",
        "partner_country": "KSA",
        "category": "Training",
        "fiscal_year": "2023/24",
        "amount": "-3",
        "currency": None,
    },
    {
        "program_code": "Total",
        "partner_country": None,
        "category": None,
        "fiscal_year": None,
        "amount": "1,582",
        "currency": None,
    },
]


def test_budget_lines_normalised_exactly(reference):
    result = standardise_budget(frame(BUDGET), CTX, reference)
    rows = result.rows.set_index("program_code")
    assert list(rows.index) == ["P1", "P2"]
    p1, p2 = rows.loc["P1"], rows.loc["P2"]
    assert p1["amount_original"] == 1_500_000.0 and p1["currency"] == "SAR"
    assert p1["amount_usd"] == pytest.approx(400_000.0) and p1["fx_rate"] == 3.75 and p1["fx_provider"] == "peg"
    assert p1["fx_policy"] == "fiscal_period_average" and p1["fx_rate_date"] == pd.Timestamp("2024-06-30")
    assert p1["constant_base_year"] == reference.constant_base_year
    cpi = reference.cpi_annual.set_index("year")[
        "value"
    ]  # prices of 2023: the period Jul 2023-Jun 2024 is centred on 30 Dec 2023
    assert p1["amount_usd_constant"] == pytest.approx(400_000.0 * cpi[reference.constant_base_year] / cpi[2023])
    assert p1["country_iso3"] == "SAU" and p1["category_code"] == "TRAINING" and p1["stage"] == "allocated"
    assert p1["fiscal_year"] == 2024 and p1["period_start"] == pd.Timestamp("2023-07-01")
    assert p1["period_end"] == pd.Timestamp("2024-06-30") and p1["excel_row"] == 5
    assert p2["country_iso3"] == "TUR" and p2["currency"] == "USD" and p2["amount_usd"] == 75_000.0


def test_every_row_accounted_for_with_reasons(reference):
    result = standardise_budget(frame(BUDGET), CTX, reference)
    assert result.counts == {"rows_read": 7, "rows_loaded": 2, "rows_quarantined": 3, "rows_skipped": 2}
    assert sorted(result.quarantined["excel_row"]) == [8, 9, 10]
    assert dict(zip(result.skipped["excel_row"], result.skipped["reason"])) == {7: "blank", 11: "total"}
    assert result.skipped.set_index("excel_row").loc[11, "stated_amount"] == 1_582_000.0
    by_row = dict(zip(result.failures["excel_row"], result.failures["rule"]))
    assert by_row == {8: "country_unknown", 9: "amount_not_number", 10: "allocation_negative"}
    msg = result.failures.set_index("excel_row").loc[8, "message"]
    assert msg == "Partner 'Atlantis' is not a known country name or code; add it to reference/country_aliases.csv."


def test_missing_rate_quarantines_with_currency_and_year(reference):
    rows = [
        {
            "program_code": "P1",
            "partner_country": "KSA",
            "category": "Training",
            "fiscal_year": "2023/24",
            "amount": "1",
            "currency": "PKR",
        }
    ]
    result = standardise_budget(frame(rows), CTX, reference)
    assert result.failures["rule"].tolist() == ["fx_rate_missing"]
    assert (
        result.failures["message"]
        .iloc[0]
        .startswith("No exchange rate for PKR for the fiscal period 2023-07-01 to 2024-06-30")
    )


def test_programs_duplicates_and_country_lists(reference):
    rows = [
        {
            "program_code": "A-1",
            "name_en": "Alpha",
            "partner_countries": "KSA; Turkey",
            "start_date": "2024-01-01",
            "end_date": "2025-12-31",
        },
        {
            "program_code": "A-2",
            "name_en": "Beta",
            "partner_countries": "Korea, South",
            "start_date": None,
            "end_date": None,
        },
        {
            "program_code": "A-1",
            "name_en": "Alpha again",
            "partner_countries": "KSA",
            "start_date": None,
            "end_date": None,
        },
        {
            "program_code": "A-3",
            "name_en": "Gamma",
            "partner_countries": "KSA; Narnia",
            "start_date": None,
            "end_date": None,
        },
    ]
    ctx = FileContext(agency="MOD", source_columns={"program_code": "Program Code"})
    result = standardise_programs(frame(rows, first_row=2), ctx, reference)
    assert result.rows["program_code"].tolist() == ["A-1", "A-2"]
    assert [list(x) for x in result.rows["partner_iso3"]] == [["SAU", "TUR"], ["KOR"]]
    f = result.failures.set_index("excel_row")
    assert f.loc[4, "rule"] == "program_code_duplicate"
    assert f.loc[4, "message"] == "Program Code 'A-1' already appears on row 2."
    assert f.loc[5, "rule"] == "country_unknown" and "Narnia" in f.loc[5, "message"]


def test_totals_row_mismatch_is_a_failure_on_the_totals_row(reference):
    rows = [dict(r) for r in BUDGET]
    rows[-1]["amount"] = "1,600"  # the lines add up to 1,582 (thousands)
    result = standardise_budget(frame(rows), CTX, reference)
    mismatch = result.failures[result.failures["rule"] == "totals_mismatch"]
    assert mismatch["excel_row"].tolist() == [11] and mismatch["severity"].tolist() == ["warn"]
    assert mismatch["value"].tolist() == ["1,600"]  # what the cell says
    assert mismatch["message"].iloc[0] == (
        "The totals row states 1,600,000.00 but the lines above it add up to 1,582,000.00 (difference -18,000.00)."
    )
    assert result.counts["rows_loaded"] == 2  # a warning blocks nothing


def test_totals_within_tolerance_pass(reference):
    rows = [dict(r) for r in BUDGET]
    rows[-1]["amount"] = "1,582.1"
    ctx = FileContext(**{**CTX.__dict__, "totals_tolerance": 0.001})
    assert "totals_mismatch" not in set(standardise_budget(frame(rows), ctx, reference).failures["rule"])


def test_a_rule_declared_warn_loads_the_row_with_a_flag(reference):
    ctx = FileContext(**{**CTX.__dict__, "severity": {"allocation_negative": "warn"}})
    result = standardise_budget(frame(BUDGET), ctx, reference)
    flagged = result.rows.set_index("program_code").loc["P5"]
    assert flagged["warning_rules"] == "allocation_negative" and flagged["amount_original"] == -3000.0
    assert pd.isna(result.rows.set_index("program_code").loc["P1", "warning_rules"])
    assert sorted(result.quarantined["excel_row"]) == [8, 9]


def _dated(*cells: str) -> pd.DataFrame:
    rows = [
        {
            "program_code": f"D{i}",
            "partner_country": "KSA",
            "category": "Training",
            "fiscal_year": "2023/24",
            "amount": "10",
            "currency": "SAR",
            "transaction_date": c,
        }
        for i, c in enumerate(cells, 1)
    ]
    return frame(rows)


def test_a_date_that_reads_both_ways_fails_until_the_order_is_declared(reference):
    cells = ("03/04/2024", "15/03/2024", "05/05/2024")  # ambiguous, one way only, the same day either way
    undeclared = standardise_budget(_dated(*cells), CTX, reference)
    assert sorted(undeclared.rows["program_code"]) == ["D2", "D3"]
    failed = undeclared.failures.set_index("excel_row")
    assert list(failed["rule"]) == ["date_ambiguous"] and list(failed.index) == [5]
    assert failed.loc[5, "message"] == (
        "transaction_date '03/04/2024' reads as 3 April 2024 (day first) or 4 March 2024 (month first); declare "
        "date_order: day_first or month_first in MOD's source YAML (agency-wide or per file) and re-run."
    )
    day_first = standardise_budget(
        _dated(*cells), FileContext(**{**CTX.__dict__, "date_order": "day_first"}), reference
    )
    assert len(day_first.rows) == 3 and day_first.failures.empty
    dates_read = day_first.rows.set_index("program_code")["transaction_date"]
    assert dates_read["D1"] == pd.Timestamp("2024-04-03")


def test_a_date_impossible_in_the_declared_order_says_which_order(reference):
    ctx = FileContext(**{**CTX.__dict__, "date_order": "day_first"})
    result = standardise_budget(_dated("03/15/2024"), ctx, reference)
    assert result.rows.empty
    assert result.failures["message"].tolist() == [
        "transaction_date '03/15/2024' is not a date (this source writes dates day first (d/m/yyyy))."
    ]


def test_a_withdrawn_currency_is_valid_before_its_withdrawal_and_refused_after(reference):
    rows = [
        {
            "program_code": "H1",
            "partner_country": "KSA",
            "category": "Training",
            "fiscal_year": "2021/22",
            "amount": "10",
            "currency": "hrk",
        },  # kuna, fiscal period 2021-07-01 to 2022-06-30: still current
        {
            "program_code": "H2",
            "partner_country": "KSA",
            "category": "Training",
            "fiscal_year": "2023/24",
            "amount": "10",
            "currency": "HRK",
        },  # period starts 2023-07-01: the euro had replaced it
        {
            "program_code": "H3",
            "partner_country": "KSA",
            "category": "Training",
            "fiscal_year": "2023/24",
            "amount": "10",
            "currency": "XYZ",
        },
    ]
    result = standardise_budget(frame(rows), CTX, reference)
    loaded = result.rows.set_index("program_code")
    assert list(loaded.index) == ["H1"]
    assert loaded.loc["H1", "currency"] == "HRK" and loaded.loc["H1", "fx_provider"] == "ecb"
    assert 6.0 < loaded.loc["H1", "amount_original"] / loaded.loc["H1", "amount_usd"] < 8.0  # HRK per USD then
    by_row = result.failures.set_index("excel_row")
    assert by_row.loc[6, "rule"] == "currency_withdrawn"
    assert by_row.loc[6, "message"] == (
        "Currency 'HRK' was withdrawn on 2023-01-01 (replaced by EUR); this row is dated 2023-07-01: state the amount "
        "in EUR, or correct the date."
    )
    assert by_row.loc[7, "rule"] == "currency_unknown"
    assert len(result.failures) == 2  # no second failure (no rate was looked up for either)


def _tracker_rows() -> list[dict]:
    base = {"program_code": "T", "category": "Training", "fiscal_year": None, "currency": "n/a"}
    return [
        {**base, "program_code": "T1", "amount": "35,000", "stage": "Committed", "transaction_date": "2023-08-15"},
        {**base, "program_code": "T2", "amount": "Not given", "stage": "Committed", "transaction_date": "2023-09-01"},
        {**base, "program_code": "T3", "amount": "12", "stage": "Pledged", "transaction_date": "2024-02-01"},
        {**base, "program_code": "T4", "amount": "7", "stage": "committed", "transaction_date": "2024-06-30"},
    ]


def test_declared_options_missing_markers_constants_scope_and_year_from_date(reference):
    ctx = FileContext(
        **{
            **CTX.__dict__,
            "unit_factor": 1.0,
            "default_currency": "USD",
            "default_stage": None,
            "missing": ["Not given", "n/a", "."],
            "constants": {"partner_country": "Jordan"},
            "keep_rows": {"column": "stage", "values": ["committed"]},
            "fiscal_year_from": "transaction_date",
            "source_columns": {"amount": "Amount", "stage": "Status"},
        }
    )
    result = standardise_budget(frame(_tracker_rows()), ctx, reference)
    assert result.counts == {"rows_read": 4, "rows_loaded": 2, "rows_quarantined": 1, "rows_skipped": 1}
    loaded = result.rows.set_index("program_code")
    assert list(loaded.index) == ["T1", "T4"]
    assert set(loaded["country_iso3"]) == {"JOR"} and set(loaded["currency"]) == {"USD"}  # 'n/a' -> the default
    assert loaded["fiscal_year"].tolist() == [2024, 2024]  # July years: 2023-08-15 and 2024-06-30 are in FY2024
    assert loaded["fiscal_year_label"].tolist() == ["2023/24", "2023/24"]
    failure = result.failures.set_index("excel_row").loc[6]
    assert (failure["rule"], failure["message"]) == (
        "required_missing",
        "Amount is 'Not given', which this source declares means no value; a line needs an amount.",
    )
    skipped = result.skipped.set_index("excel_row")
    assert skipped.loc[7, "reason"] == "filtered" and skipped.loc[7, "label"] == "Status = Pledged"


def test_keep_rows_by_pattern_and_totals_still_cover_lines_out_of_scope(reference):
    rows = [dict(r) for r in BUDGET]
    ctx = FileContext(**{**CTX.__dict__, "keep_rows": {"column": "program_code", "matches": "^P[12]$"}})
    result = standardise_budget(frame(rows), ctx, reference)
    assert sorted(result.rows["program_code"]) == ["P1", "P2"]
    assert set(result.skipped["reason"]) == {"blank", "total", "filtered"}
    assert "totals_mismatch" not in set(result.failures["rule"])  # the total is of every line, in scope or not
    c = result.counts
    assert c["rows_read"] == c["rows_loaded"] + c["rows_quarantined"] + c["rows_skipped"]


def test_a_totals_label_with_groups_matches_without_a_warning():
    """'^(grand )?total' (MOD's YAML) marks totals rows; pandas would warn about its group on every file, from
    several threads at once, where silencing warnings is not safe."""
    import warnings

    from transforms.rows import _matches

    labels = pd.Series([" Grand Total ", "TOTAL", "Subtotal", "Training", None], dtype=pd.StringDtype("pyarrow"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _matches(labels, "^(grand )?total")
    assert got.tolist() == [True, True, False, False, pd.NA]

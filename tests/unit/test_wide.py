"""Years-across-columns reference sheets (SIPRI layout): tiny inline grids, exact expected rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from schemas.sources import WideFileSpec
from transforms.countries import build_country_lookup
from transforms.wide import (
    Grid,
    SheetLayoutError,
    edition_contradiction,
    edition_of,
    published_year,
    split_footnote_marks,
    standardise_footnotes,
    standardise_workbook,
)

LOOKUP = build_country_lookup(pd.DataFrame({"alias": ["Korea, South"], "iso3": ["KOR"]}))


def grid(name: str, rows: list[list[object]]) -> Grid:
    width = max(len(r) for r in rows)
    frame = pd.DataFrame([r + [None] * (width - len(r)) for r in rows], dtype=object)
    return Grid(name, frame.astype(pd.StringDtype("pyarrow")).rename(columns=int))


def spec(**over) -> WideFileSpec:
    base = {
        "kind": "years_across_columns",
        "pattern": "M-*.xlsx",
        "dataset": "milex",
        "edition": {
            "file_name": r"M-(?P<first_year>\d{4})-(?P<last_year>\d{4})",
            "label": "{first_year}-{last_year}",
            "published": r"© X (?P<year>\d{4})",
        },
        "regions": ["Middle East", "Asia"],
        "other_entities": ["European Union"],
        "sheets": [
            {
                "sheet": r"Constant \((?P<price_base_year>\d{4})\) US\$",
                "measure": "milex_constant_usd",
                "unit": "US$ m.",
                "scale": 1e6,
                "base_unit": "USD",
                "header_label": "Country",
                "attributes": {"notes": ["Notes"]},
            }
        ],
    }
    base.update(over)
    return WideFileSpec.model_validate(base)


SHEET = [
    ["Military expenditure, constant (2021) US$ m.   © X 2022"],
    ['". ." = no data'],
    ["Country", "Notes", "2020.0", "2021"],
    [None],
    ["Middle East"],
    ["Saudi Arabia", "§‖3", "1.5", "..."],
    ["Yemen", None, "xxx", "2"],
    ["Asia"],
    ["East Asia"],
    ["Korea, South", "†", "10", "n/a"],
    [None, None, "7", None],
    ["Atlantis", None, "1", "1"],
    ["European Union", None, "3", "3"],
]


def test_sheet_melts_entities_by_year_with_statuses_units_and_regions():
    out = standardise_workbook([grid("Constant (2021) US$", SHEET)], spec(), LOOKUP)
    v = out.values.sort_values(["excel_row", "year"]).reset_index(drop=True)
    assert (
        v["entity_name"].tolist()
        == ["Saudi Arabia"] * 2 + ["Yemen"] * 2 + ["Korea, South"] * 2 + ["Atlantis"] * 2 + ["European Union"] * 2
    )
    assert v["year"].tolist() == [2020, 2021] * 5
    assert v["status"].tolist() == [
        "value",
        "missing",
        "not_existing",
        "value",
        "value",
        "invalid",
        "value",
        "value",
        "value",
        "value",
    ]
    np.testing.assert_array_equal(v["value"].to_numpy(), [1.5, np.nan, np.nan, 2.0, 10.0, np.nan, 1.0, 1.0, 3.0, 3.0])
    np.testing.assert_array_equal(
        v["value_base"].to_numpy(), [1.5e6, np.nan, np.nan, 2e6, 1e7, np.nan, 1e6, 1e6, 3e6, 3e6]
    )
    assert v["country_iso3"].tolist()[:6] == ["SAU", "SAU", "YEM", "YEM", "KOR", "KOR"]
    assert v["country_iso3"].iloc[6:].isna().all()  # Atlantis unknown, the EU is not a country
    assert v["entity_type"].tolist() == ["country"] * 8 + ["other"] * 2
    assert v["region"].tolist() == ["Middle East"] * 4 + ["Asia"] * 6
    assert v["subregion"].iloc[:4].isna().all()  # the Middle East has no sub-region heading
    assert v["subregion"].iloc[4:].tolist() == ["East Asia"] * 6
    assert v["price_base_year"].tolist() == [2021] * 10
    assert v["cell"].tolist()[:4] == ["C6", "D6", "C7", "D7"]
    assert (
        v.loc[0, "notes"] == "§‖3"
        and v.loc[0, "footnote_symbols"] == "§‖"
        and list(v.loc[0, "footnote_numbers"]) == [3]
    )
    # every row below the header: 5 entity rows, 1 orphan (values, no name), 3 headings, 1 blank
    assert out.rows_read == 10
    assert sorted(out.skipped["reason"]) == ["blank", "region_heading", "region_heading", "subregion_heading"]
    assert out.quarantined["excel_row"].tolist() == [11]
    f = out.failures.set_index("rule")
    assert f.loc["entity_missing", "cell"] == "A11" and f.loc["entity_missing", "severity"] == "block"
    assert f.loc["value_not_number", "cell"] == "D10" and f.loc["value_not_number", "severity"] == "warn"
    assert f.loc["country_unknown", "value"] == "Atlantis" and f.loc["country_unknown", "severity"] == "block"


def test_severity_override_and_conservation_per_sheet():
    out = standardise_workbook([grid("Constant (2021) US$", SHEET)], spec(severity={"country_unknown": "warn"}), LOOKUP)
    assert out.failures.set_index("rule").loc["country_unknown", "severity"] == "warn"
    loaded = out.values[["sheet", "excel_row"]].drop_duplicates().shape[0]
    assert loaded + len(out.skipped) + len(out.quarantined) == out.rows_read


def test_region_sheet_with_extra_value_column_and_preamble_capture():
    s = spec(
        sheets=[
            {
                "sheet": "Regional totals",
                "entity": "region",
                "measure": "milex_constant_usd",
                "unit": "US$ bn",
                "scale": 1e9,
                "base_unit": "USD",
                "header_label": "Region",
                "preamble": r"constant (?P<price_base_year>\d{4}) prices",
                "values": [
                    {"header": r"^(?P<year>\d{4})(\.0+)?$"},
                    {
                        "header": r"^(?P<year>\d{4}) \(current prices\)$",
                        "measure": "milex_current_usd",
                        "sheet_groups": False,
                    },
                ],
                "attributes": {"omitted_countries": ["Omitted countries"]},
            }
        ]
    )
    g = grid(
        "Regional totals",
        [
            ["In US$ b. at constant 2021 prices"],
            [],
            ["Region", "2021", "2022 (current prices)", "Omitted countries"],
            ["Middle East", "180", "190", "Syria"],
            ["Gulf", "100", "...", None],
        ],
    )
    v = standardise_workbook([g], s, LOOKUP).values
    assert v[["entity_name", "region", "subregion", "measure", "year", "value_base", "price_base_year"]].astype(
        object
    ).where(v.notna(), None).values.tolist() == [
        ["Middle East", "Middle East", None, "milex_constant_usd", 2021, 1.8e11, 2021],
        ["Middle East", "Middle East", None, "milex_current_usd", 2022, 1.9e11, None],
        ["Gulf", "Middle East", "Gulf", "milex_constant_usd", 2021, 1e11, 2021],
        ["Gulf", "Middle East", "Gulf", "milex_current_usd", 2022, None, None],
    ]
    assert v["entity_type"].unique().tolist() == ["region"] and v["country_iso3"].isna().all()
    assert v["omitted_countries"].tolist()[:2] == ["Syria", "Syria"]


def test_fractions_keep_their_value_as_base():
    s = spec(
        sheets=[
            {
                "sheet": "Share of GDP",
                "measure": "share",
                "unit": "fraction",
                "base_unit": "fraction",
                "header_label": "Country",
            }
        ]
    )
    v = standardise_workbook([grid("Share of GDP", [["Country", "2020"], ["Jordan", "0.043"]])], s, LOOKUP).values
    assert v["value"].tolist() == [0.043] and v["value_base"].tolist() == [0.043]


def test_missing_required_sheet_and_missing_header_are_layout_errors():
    with pytest.raises(SheetLayoutError, match=r"no sheet matches .*sheets are: Other"):
        standardise_workbook([grid("Other", [["x"]])], spec(), LOOKUP)
    with pytest.raises(SheetLayoutError, match="no 'Country' header cell"):
        standardise_workbook([grid("Constant (2021) US$", [["Land", "2020"], ["Oman", "1"]])], spec(), LOOKUP)
    with pytest.raises(SheetLayoutError, match="no year columns"):
        standardise_workbook([grid("Constant (2021) US$", [["Country", "Notes"], ["Oman", "1"]])], spec(), LOOKUP)


def test_footnotes_sheet_keys_marks_and_skips_titles():
    out = standardise_footnotes(
        grid("Footnotes", [["Footnotes"], [], ["§", "Estimate"], ["12", None, "Libya: note"], [None, "loose note"]])
    )
    assert out.footnotes[["key", "text", "excel_row"]].values.tolist() == [
        ["§", "Estimate", 3],
        ["12", "Libya: note", 4],
        ["row 5", "loose note", 5],
    ]
    assert out.skipped[["excel_row", "reason"]].values.tolist() == [[1, "heading"], [2, "blank"]]
    assert out.rows_read == 5


def test_footnote_marks_split_into_symbols_and_numbers():
    symbols, numbers = split_footnote_marks(
        pd.Series(["‡§¶16", "§98", "‖", None, "1, 4"], dtype=pd.StringDtype("pyarrow"))
    )
    assert symbols.tolist()[:3] == ["‡§¶", "§", "‖"] and pd.isna(symbols.iloc[3]) and pd.isna(symbols.iloc[4])
    assert [list(n) if isinstance(n, list) else None for n in numbers] == [[16], [98], [], None, [1, 4]]


def test_edition_from_file_name_and_published_year_from_title():
    s = spec()
    assert edition_of("M-1949-2022.xlsx", s) == {"edition": "1949-2022", "first_year": "1949", "last_year": "2022"}
    assert edition_of("milex.xlsx", s) is None
    assert published_year([grid("Constant (2021) US$", SHEET)], s.edition.published) == 2022
    assert published_year([grid("x", [["no mark"]])], s.edition.published) is None


def test_the_years_held_must_be_the_edition_the_name_says():
    edition = {"edition": "2008-2024", "first_year": "2008", "last_year": "2024"}
    held = pd.DataFrame({"year": [2008, 2015, 2024, 2024]})
    assert edition_contradiction(edition, held) is None
    assert edition_contradiction(edition, pd.DataFrame({"year": [2008, 2025]})) == (
        "the name says edition 2008-2024 (last_year 2024) but the sheets hold the years 2008-2025: not loaded. "
        "Keep the publisher's file under its own name"
    )
    assert edition_contradiction(edition, pd.DataFrame({"year": [2009, 2023]})) == (
        "the name says edition 2008-2024 (first_year 2008, last_year 2024) but the sheets hold the years "
        "2009-2023: not loaded. Keep the publisher's file under its own name"
    )
    assert edition_contradiction({"edition": "v7"}, pd.DataFrame({"year": [1990]})) is None  # no span in the name
    assert edition_contradiction(edition, pd.DataFrame({"year": []})) is None  # nothing held: nothing loads anyway


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"edition": {"file_name": "M-(?P<y>\\d{4})", "label": "{first_year}"}}, "label uses"),
        ({"edition": {"file_name": "M-(", "label": "x"}}, "not a valid regular expression"),
        (
            {
                "sheets": [
                    {
                        "sheet": "S",
                        "measure": "m",
                        "unit": "u",
                        "base_unit": "USD",
                        "header_label": "Country",
                        "values": [{"header": "^\\d{4}$"}],
                    }
                ]
            },
            "named group",
        ),
        ({"severity": {"no_such_rule": "warn"}}, "unknown rule"),
    ],
)
def test_config_errors_name_the_problem(bad, message):
    with pytest.raises(ValidationError, match=message):
        spec(**bad)

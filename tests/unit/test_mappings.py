"""Case tables for countries, categories, stages, currencies and row classification."""

from __future__ import annotations

import pandas as pd
import pytest

from transforms import categories, countries
from transforms.rows import classify_rows

COUNTRIES = [
    ("KSA", "SAU"),
    ("Saudi Arabia", "SAU"),
    ("المملكة العربية السعودية", "SAU"),
    ("Turkey", "TUR"),
    ("Türkiye", "TUR"),
    ("Turkiye", "TUR"),
    ("تركيا", "TUR"),
    ("U.A.E.", "ARE"),
    ("  uae ", "ARE"),
    ("GB", "GBR"),
    ("fra", "FRA"),
    ("Republic of Korea", "KOR"),
    ("Korea, South", "KOR"),
    ("Pakistan ", "PAK"),
    ("Atlantis", None),
    (None, None),
    ("Soviet Union", "SUN"),
    ("USSR", "SUN"),
    ("الاتحاد السوفيتي", "SUN"),
    ("Yugoslavia", "YUG"),  # former states
]


def test_country_dimension_flags_former_states_and_carries_region_and_oic(reference):
    from transforms.reference import country_dimension

    dim = country_dimension(reference).set_index("iso3")
    assert bool(dim.at["SUN", "is_former"]) and not bool(dim.at["RUS", "is_former"])
    assert dim.at["SAU", "region"] == "Asia" and dim.at["SAU", "subregion"] == "Western Asia"
    assert bool(dim.at["TUR", "oic_member"]) and not bool(dim.at["FRA", "oic_member"])
    assert int(dim["oic_member"].sum()) == 57
    assert dim.at["EGY", "name_ar"] == "مصر"
    assert dim.index.is_unique and len(dim) >= 249


@pytest.mark.parametrize("cell,iso3", COUNTRIES)
def test_map_countries(reference, cell, iso3):
    got = countries.map_countries(pd.Series([cell], dtype=object), reference.country_lookup).iloc[0]
    assert pd.isna(got) if iso3 is None else got == iso3


def test_country_suggestion_is_a_name_not_a_code(reference):
    hint = countries.suggest(
        pd.Series(["Jordann", "Atlantis"]), reference.country_lookup["key"], reference.country_lookup["alias"]
    )
    assert hint.iloc[0] == "Jordan"
    assert pd.isna(hint.iloc[1]) or len(hint.iloc[1]) > 3


MAPPINGS = pd.DataFrame(
    {
        "agency": ["*", "*", "MOF", "*"],
        "label": ["Training", "التدريب", "15210", "Equipment"],
        "category_code": ["TRAINING", "TRAINING", "TRAINING", "EQUIPMENT"],
    }
)


@pytest.mark.parametrize(
    "agency,label,expected",
    [
        ("MOD", "training", "TRAINING"),
        ("MOD", " Training  ", "TRAINING"),
        ("MOI", "التدريب", "TRAINING"),
        ("MOF", "15210", "TRAINING"),
        ("MOD", "15210", None),
        ("MOD", "Space tourism", None),
    ],
)
def test_map_category_labels(agency, label, expected):
    got = categories.map_labels(pd.Series([label]), agency, MAPPINGS, "category_code").iloc[0]
    assert pd.isna(got) if expected is None else got == expected


def test_agency_mapping_wins_over_shared():
    table = pd.DataFrame(
        {"agency": ["*", "GIP"], "label": ["Other", "Other"], "category_code": ["OTHER", "INTEL_SHARING"]}
    )
    got = categories.map_labels(pd.Series(["Other", "Other"]), "GIP", table, "category_code")
    assert got.tolist() == ["INTEL_SHARING", "INTEL_SHARING"]
    assert categories.map_labels(pd.Series(["Other"]), "MOD", table, "category_code").tolist() == ["OTHER"]


def test_map_stages_with_default(reference):
    got = categories.map_stages(
        pd.Series(["Disbursed", None, "مصروف", "paid later"]), reference.stage_labels, "allocated"
    )
    assert got.iloc[:3].tolist() == ["disbursed", "allocated", "disbursed"]
    assert pd.isna(got.iloc[3])


def test_classify_rows():
    frame = pd.DataFrame(
        {
            "program_code": ["P1", None, "Grand Total", None, "P2"],
            "amount": ["5", None, "9", "4", "4"],
            "excel_row": [2, 3, 4, 5, 6],
        }
    )
    status = classify_rows(frame, ["program_code", "amount"], ["program_code"], "^(grand )?total")
    assert status.tolist() == ["data", "blank", "total", "data", "data"]


def test_every_rule_says_what_to_fix():
    """The steward workbook's 'What to fix' column has a sentence for every rule a failure can carry."""
    from schemas.rules import FIXES, RULES

    assert set(FIXES) == set(RULES)
    assert all(text.endswith(".") and len(text) < 120 for text in FIXES.values())

"""'Did you mean' suggestions for unknown partner countries cannot point to a different entity.

A steward may accept a suggestion into reference/country_aliases.csv, so a wrong one corrupts data. The case table
pairs each unknown value with the entity it really names (ISO3), or None where no country is that entity
(organisations, regions, former states the reference has no code for, values ambiguous between two countries).
The rule: a suggestion, if any, maps to the same ISO3; where the entity is None, no suggestion at all.
"""

from __future__ import annotations

import pandas as pd
import pytest

from transforms import countries
from transforms.text import as_text, fold_key

# value -> the entity it names; a suggestion may be missing but never another entity
LOOK_ALIKES: list[tuple[str, str | None]] = [
    # the issue report
    ("DR Congo", "COD"),
    ("United Nations", None),
    ("East Germany", "DDR"),
    ("African Union", None),
    ("South Vietnam", None),
    # Congo / DR Congo
    ("D.R. Congo", "COD"),
    ("DRC", "COD"),
    ("Congo DR", "COD"),
    ("Congo-Kinshasa", "COD"),
    ("Congo (Kinshasa)", "COD"),
    ("Democratic Republic of Congo", "COD"),
    ("Dem. Rep. Congo", "COD"),
    ("Congo DRC", "COD"),
    ("Congo Republic", "COG"),
    ("Republic of Congo", "COG"),
    ("Congo-Brazzaville", "COG"),
    ("Congo Rep", "COG"),
    # Niger / Nigeria
    ("Nigera", None),  # one edit from Niger and from Nigeria
    ("Nigeri", None),
    ("Nigerian", "NGA"),
    ("Niger Republic", "NER"),
    ("Republic of Niger", "NER"),
    ("Nigeria Federal Republic", "NGA"),
    ("Niger-Nigeria", None),
    # Sudan / South Sudan
    ("South-Sudan", "SSD"),
    ("Southsudan", "SSD"),
    ("Sudan South", "SSD"),
    ("S. Sudan", "SSD"),
    ("Sudan (South)", "SSD"),
    ("North Sudan", "SDN"),
    ("Republic of Sudan", "SDN"),
    # the Guineas
    ("Guinea Bissau", "GNB"),
    ("Guineabissau", "GNB"),
    ("Guinea-Conakry", "GIN"),
    ("Guinea Republic", "GIN"),
    ("Guinee", "GIN"),
    ("Guinea Equatorial", "GNQ"),
    ("Equatorial-Guinea", "GNQ"),
    ("New Guinea", None),  # an island shared by two countries
    ("Papua Guinea", "PNG"),
    ("Papua New-Guinea", "PNG"),
    ("Guiana", None),  # French Guiana or Guyana
    ("Guineas", None),  # the group, not Guinea
    # Dominica / Dominican Republic
    ("Dominican", None),  # the adjective of both
    ("Dominican Rep.", "DOM"),
    ("Dominica Republic", None),
    ("Commonwealth Dominica", "DMA"),
    # the Koreas
    ("Korea", None),
    ("Korea North", "PRK"),
    ("Korea (South)", "KOR"),
    ("DPRK", "PRK"),
    ("D.P.R.K.", "PRK"),
    ("ROK", "KOR"),
    ("Korea DPR", "PRK"),
    ("Korea Rep.", "KOR"),
    ("Republic Korea", "KOR"),
    ("Democratic Korea", "PRK"),
    ("N. Korea", "PRK"),
    ("S. Korea", "KOR"),
    # former states
    ("West Germany", None),
    ("W. Germany", None),
    ("Germany West", None),
    ("FRG", None),
    ("E. Germany", "DDR"),
    ("Germany (East)", "DDR"),
    ("GDR", "DDR"),
    ("North Vietnam", "VDR"),
    ("Vietnam South", None),
    ("Republic of Vietnam", None),  # South Vietnam's own name
    ("Former Yugoslavia", None),
    ("Ex-Yugoslavia", None),
    ("Yugoslavia (former)", None),
    ("Former Soviet Union", None),
    ("Soviet", None),
    ("U.S.S.R", "SUN"),
    ("Czecho-Slovakia", "CSK"),
    ("South Yemen", "YMD"),
    ("Prussia", None),  # not Russia
    ("Rhodesia", "RHO"),
    ("Ottoman Empire", None),
    # organisations and groupings
    ("UN", None),
    ("U.N.", None),
    ("United Nation", None),
    ("Untied Nations", None),
    ("European Union", None),
    ("EU", None),
    ("E.U.", None),
    ("Africa Union", None),
    ("AU", None),
    ("NATO", None),
    ("N.A.T.O.", None),
    ("Gulf Cooperation Council", None),
    ("GCC", None),
    ("Arab League", None),
    ("League of Arab States", None),
    ("Organisation of Islamic Cooperation", None),
    ("ASEAN", None),
    ("Gulf States", None),
    ("Arab States", None),
    # regions
    ("Americas", None),  # not America (USA)
    ("Central Africa", None),  # not the Central African Republic
    ("Middle East", None),
    ("Multilateral", None),
    ("Roman", None),  # not Oman
    ("Various", None),
]

# typos of one country's name: the right country, always
TYPOS: list[tuple[str, str]] = [
    ("Germnay", "DEU"),
    ("Saudi Arabai", "SAU"),
    ("Frnace", "FRA"),
    ("Untied States", "USA"),
    ("Untied Kingdom", "GBR"),
    ("United Arab Emirats", "ARE"),
    ("Jordann", "JOR"),
    ("Egpyt", "EGY"),
    ("Pakistn", "PAK"),
    ("Indonesa", "IDN"),
    ("Malaysai", "MYS"),
    ("Morrocco", "MAR"),
    ("Kuwiat", "KWT"),
    ("Bahrian", "BHR"),
    ("Quatar", "QAT"),
    ("Turky", "TUR"),
    ("Phillipines", "PHL"),
    ("Swtizerland", "CHE"),
    ("Veitnam", "VNM"),
    ("Soth Korea", "KOR"),
    ("Domincan Republic", "DOM"),
    ("Equitorial Guinea", "GNQ"),
    ("Papua New Guniea", "PNG"),
    ("Guinea-Bisau", "GNB"),
]

# how the pipeline calls suggest(): transforms/standardise.py, transforms/wide.py, and with entity codes
STYLES = ["standardise", "wide", "entities"]


def _suggest(lookup: pd.DataFrame, values: pd.Series, style: str) -> pd.Series:
    if style == "standardise":
        return countries.suggest(values, lookup["key"], lookup["alias"])
    if style == "wide":
        return countries.suggest(values, fold_key(as_text(lookup["alias"])), lookup["alias"])
    return countries.suggest(values, lookup["key"], lookup["alias"], entities=lookup["iso3"], kind="country")


@pytest.fixture(scope="module")
def suggested(reference) -> dict[str, dict[str, str | None]]:
    """style -> value -> ISO3 of the suggestion (None: no suggestion); one suggest() call per style."""
    lookup = reference.country_lookup
    values = pd.Series([v for v, _ in LOOK_ALIKES + TYPOS], dtype=object)
    out: dict[str, dict[str, str | None]] = {}
    for style in STYLES:
        hint = _suggest(lookup, values, style)
        iso3 = countries.map_countries(hint, lookup)
        assert hint.notna().equals(iso3.notna()), "every suggestion is a known spelling"
        out[style] = {v: (None if pd.isna(i) else str(i)) for v, i in zip(values, iso3)}
    return out


def test_case_table_is_big_enough():
    assert len(LOOK_ALIKES) >= 40 and len(TYPOS) >= 10
    assert len({v for v, _ in LOOK_ALIKES + TYPOS}) == len(LOOK_ALIKES) + len(TYPOS)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("value,entity", LOOK_ALIKES)
def test_no_suggestion_points_to_another_entity(suggested, style, value, entity):
    got = suggested[style][value]
    if entity is None:
        assert got is None, f"{value!r} names no country in the reference, yet the suggestion maps to {got}"
    else:
        assert got in (None, entity), f"{value!r} is {entity}, the suggestion maps to {got}"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("value,entity", TYPOS)
def test_typos_get_the_right_country(suggested, style, value, entity):
    assert suggested[style][value] == entity


@pytest.mark.parametrize(
    "missing,value",
    [
        ("COD", "Democratic Republic of the Congo"),
        ("COD", "Congo, DR"),
        ("NER", "Niger"),
        ("NGA", "Nigeria"),
        ("SSD", "South Sudan"),
        ("GNB", "Guinea-Bissau"),
        ("GNQ", "Equatorial Guinea"),
        ("PNG", "Papua New Guinea"),
        ("DOM", "Dominican Republic"),
        ("DMA", "Dominica"),
        ("PRK", "North Korea"),
        ("KOR", "South Korea"),
        ("DDR", "East Germany"),
        ("AUS", "Australia"),
        ("AUT", "Austria"),
    ],
)
def test_an_entity_missing_from_the_reference_gets_no_look_alike(reference, missing, value):
    """With every spelling of an entity taken out of the reference, its name must not be 'corrected' into a
    neighbour (Niger into Nigeria, South Sudan into Sudan)."""
    lookup = reference.country_lookup
    rest = lookup[lookup["iso3"] != missing].reset_index(drop=True)
    values = pd.Series([value])
    assert countries.suggest(values, rest["key"], rest["alias"]).isna().all()
    assert countries.suggest(values, rest["key"], rest["alias"], entities=rest["iso3"], kind="country").isna().all()


def test_result_is_aligned_with_values(reference):
    lookup = reference.country_lookup
    values = pd.Series(["Germnay", None, "United Nations", "Germnay", "  frnace "], index=[10, 11, 12, 13, 14])
    hint = countries.suggest(values, lookup["key"], lookup["alias"])
    assert isinstance(hint.dtype, pd.StringDtype)
    assert hint.index.tolist() == [10, 11, 12, 13, 14]
    assert hint.tolist()[0] == "Germany" and hint.tolist()[3] == "Germany" and hint.tolist()[4] == "France"
    assert hint.isna().tolist() == [False, True, True, False, False]


@pytest.mark.parametrize(
    "value,expected",
    [
        ("Joint Exercies", "Joint exercises"),
        ("Trainng", "Training"),
        ("Equipement", "Equipment"),
        ("Intelligence sharng", "Intelligence sharing"),
        ("Peacekeepng", "Peacekeeping"),
        ("Research and developement", "Research and development"),
        ("Space tourism", None),
    ],
)
@pytest.mark.parametrize("explicit", [False, True])
def test_category_label_typos_still_get_suggestions(reference, value, expected, explicit):
    mappings = reference.category_mappings
    extra = {"kind": "label", "entities": mappings["category_code"]} if explicit else {}
    hint = countries.suggest(pd.Series([value]), mappings["label"].str.casefold(), mappings["label"], **extra).iloc[0]
    assert (pd.isna(hint) and expected is None) or hint == expected


def test_a_category_suggestion_names_the_category_never_the_label():
    """Another agency's mapping of the very label (SANG maps 'Space tourism') must not come back as the suggestion
    'Space tourism': the steward needs the target to write into category_mappings.csv."""
    from transforms.categories import suggest_categories

    mappings = pd.DataFrame(
        {
            "agency": ["SANG", "*", "*"],
            "label": ["Space tourism", "Training", "Joint exercises"],
            "category_code": ["OTHER", "TRAINING", "JOINT_EXERCISE"],
        }
    )
    taxonomy = pd.DataFrame(
        {
            "category_code": ["OTHER", "TRAINING", "JOINT_EXERCISE"],
            "name_en": ["Other", "Training and education", "Joint exercises and drills"],
        }
    )
    got = suggest_categories(pd.Series(["Space tourism", "Trainning", "Astrology", None]), mappings, taxonomy)
    assert got.tolist()[:2] == ["OTHER (Other)", "TRAINING (Training and education)"]
    assert got.isna().tolist()[2:] == [True, True]

"""Many layouts, one answer: the same five budget lines, saved by hand in each agency's own layout (units of ones,
thousands or millions, English, European and Arabic-Indic numbers, Hijri, July-June, October-September and
April-March fiscal years, Arabic headers and labels, ISO codes and country names, title rows and a totals row), load
to identical canonical rows, compared value by value. A unit ignored (``thousands`` read as ones), a locale or a
calendar misread, a mapping or a header alias lost shows as a difference naming the agency and the column.

The amounts are in Saudi riyals, which are pegged to the US dollar, so the US$ figures must agree too whatever the
agency's FX policy (fiscal-period average or the transaction's date)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from flows.process import FileTask, describe, process_file

# program, partner (ISO3), category, amount in SAR
LINES = [
    ("P001", "JOR", "JOINT_EXERCISE", 1_250_000),
    ("P002", "EGY", "TRAINING", 37_500_000),
    ("P003", "FRA", "EQUIPMENT", 2_000_000),
    ("P004", "GBR", "INTEL_SHARING", 990_000),
    ("P005", "TUR", "CYBER", 10_000),
]
TOTAL = sum(line[3] for line in LINES)

COUNTRY = {  # how each layout names the partners
    "MOD": {"JOR": "Jordan", "EGY": "Egypt", "FRA": "France", "GBR": "United Kingdom", "TUR": "Turkey"},
    "MOI": {"JOR": "الأردن", "EGY": "مصر", "FRA": "فرنسا", "GBR": "المملكة المتحدة", "TUR": "تركيا"},
    "GIP": {"JOR": "JO", "EGY": "EGY", "FRA": "FR", "GBR": "GBR", "TUR": "TR"},
    "MOF": {"JOR": "JOR", "EGY": "EGY", "FRA": "FRA", "GBR": "GBR", "TUR": "TUR"},
    "SANG": {"JOR": "Jordan", "EGY": "Egypt", "FRA": "France", "GBR": "UK", "TUR": "Türkiye"},
    "GAMI": {"JOR": "Jordan", "EGY": "Egypt", "FRA": "France", "GBR": "United Kingdom", "TUR": "Turkey"},
}
CATEGORY = {  # and the activities
    "MOD": {
        "JOINT_EXERCISE": "Joint exercises",
        "TRAINING": "Training",
        "EQUIPMENT": "Equipment",
        "INTEL_SHARING": "Intelligence sharing",
        "CYBER": "Cyber defense",
    },
    "MOI": {
        "JOINT_EXERCISE": "تمارين مشتركة",
        "TRAINING": "التدريب",
        "EQUIPMENT": "المعدات",
        "INTEL_SHARING": "تبادل المعلومات الاستخباراتية",
        "CYBER": "الدفاع السيبراني",
    },
    "GIP": {
        "JOINT_EXERCISE": "Joint drills",
        "TRAINING": "Training and education",
        "EQUIPMENT": "Equipment and materiel",
        "INTEL_SHARING": "Analytic exchange",
        "CYBER": "Cyber defence",
    },
    "MOF": {
        "JOINT_EXERCISE": "EXER",
        "TRAINING": "15210",
        "EQUIPMENT": "EQUIP",
        "INTEL_SHARING": "Intelligence cooperation",
        "CYBER": "CYB",
    },
    "SANG": {
        "JOINT_EXERCISE": "Combined drills",
        "TRAINING": "Officer exchange",
        "EQUIPMENT": "Equipment",
        "INTEL_SHARING": "Intelligence sharing",
        "CYBER": "Cyber defence",
    },
    "GAMI": {
        "JOINT_EXERCISE": "Exercises",
        "TRAINING": "Training",
        "EQUIPMENT": "Equipment",
        "INTEL_SHARING": "Intelligence sharing",
        "CYBER": "Cyber defense",
    },
}
STAGE = {
    "MOD": "allocated",
    "MOI": "allocated",
    "GIP": "committed",
    "MOF": "allocated",
    "SANG": "allocated",
    "GAMI": "committed",
}
ARABIC_INDIC = str.maketrans("0123456789,", "٠١٢٣٤٥٦٧٨٩٬")


def _sheet(path: Path, title: str, rows: list[list[object]]) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    wb.save(path)


def mod(path: Path) -> None:  # title rows, English headers, amounts in thousands, a grand total
    header = [
        "Program Code",
        "Program Name",
        "Partner Country",
        "Activity Type",
        "Fiscal Year",
        "Amount (SAR '000)",
        "Currency",
    ]
    rows = [[c, f"Program {c}", COUNTRY["MOD"][p], CATEGORY["MOD"][k], 2024, a / 1_000, "SAR"] for c, p, k, a in LINES]
    _sheet(
        path,
        "Budget",
        [
            ["Ministry of Defense - cooperation budget FY2024"],
            [],
            header,
            *rows,
            ["Grand Total", None, None, None, None, TOTAL / 1_000],
        ],
    )


def moi(path: Path) -> None:  # Arabic headers and labels, Hijri year, Arabic-Indic digits in text cells
    header = [
        "رمز البرنامج",
        "اسم البرنامج",
        "الدولة الشريكة",
        "نوع النشاط",
        "السنة المالية",
        "المبلغ",
        "العملة",
        "المرحلة",
    ]
    rows = [
        [
            c,
            f"برنامج {c}",
            COUNTRY["MOI"][p],
            CATEGORY["MOI"][k],
            "١٤٤٥هـ",
            f"{a:,}".translate(ARABIC_INDIC),
            None,
            "مخصص",
        ]
        for c, p, k, a in LINES
    ]
    total = ["الإجمالي", None, None, None, None, f"{TOTAL:,}".translate(ARABIC_INDIC)]
    _sheet(path, "الميزانية", [["وزارة الداخلية - ميزانية ١٤٤٥هـ"], header, *rows, total])


def gip(path: Path) -> None:  # July-June year "2023/24", ISO codes, numbers as text with commas, commitment dates
    header = [
        "Programme Ref",
        "Programme",
        "Partner (ISO)",
        "Cooperation Area",
        "Financial Year",
        "Value",
        "CCY",
        "Commitment Date",
    ]
    rows = [
        [c, f"Programme {c}", COUNTRY["GIP"][p], CATEGORY["GIP"][k], "2023/24", f"{a:,}", "SAR", datetime(2024, 1, 15)]
        for c, p, k, a in LINES
    ]
    _sheet(path, "Sheet1", [["GIP commitments"], header, *rows, ["Total", None, None, None, None, f"{TOTAL:,}"]])


def mof(path: Path) -> None:  # header on row 3, October-September "FY2024", a stage column, amounts in millions
    header = ["Program", "Country Code", "Purpose", "FY", "Stage", "Amount (millions)", "Currency"]
    rows = [
        [c, COUNTRY["MOF"][p], CATEGORY["MOF"][k], "FY2024", "Allocated", a / 1_000_000, "SAR"] for c, p, k, a in LINES
    ]
    _sheet(
        path,
        "Lines",
        [
            ["Ministry of Finance"],
            ["Cooperation lines"],
            header,
            *rows,
            ["Total", None, None, None, None, TOTAL / 1_000_000],
        ],
    )


def sang(path: Path) -> None:  # April-March year labelled by its start, country-name variants
    header = [
        "Code",
        "Programme Title",
        "Partner Nation",
        "Type of Cooperation",
        "Fiscal Year",
        "Budget",
        "Currency",
        "Status",
    ]
    rows = [
        [c, f"Programme {c}", COUNTRY["SANG"][p], CATEGORY["SANG"][k], 2023, a, "SAR", "budgeted"]
        for c, p, k, a in LINES
    ]
    _sheet(path, "Budget", [["National Guard"], header, *rows, ["Total", None, None, None, None, TOTAL]])


def gami(path: Path) -> None:  # semicolon CSV, European numbers, the unit in the amount header, booking dates
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, delimiter=";")
        out.writerow(
            ["Project", "Project Name", "Partner", "Domain", "Year", "Amount (EUR '000)", "Currency", "Booking Date"]
        )
        for c, p, k, a in LINES:
            amount = f"{a / 1_000:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
            out.writerow(
                [c, f"Project {c}", COUNTRY["GAMI"][p], CATEGORY["GAMI"][k], 2024, amount, "SAR", "2024-03-01"]
            )
        out.writerow(
            [
                "Total",
                "",
                "",
                "",
                "",
                f"{TOTAL / 1_000:,.2f}".replace(",", " ").replace(".", ",").replace(" ", "."),
                "",
                "",
            ]
        )


LAYOUTS = {
    "MOD": (mod, "MOD_budget_FY2024.xlsx"),
    "MOI": (moi, "MOI_budget_1445.xlsx"),
    "GIP": (gip, "GIP_budget_2023-24.xlsx"),
    "MOF": (mof, "MOF_budget_FY2024.xlsx"),
    "SANG": (sang, "SANG_budget_2023.xlsx"),
    "GAMI": (gami, "GAMI_budget_2024.csv"),
}
COMPARED = ["program_code", "country_iso3", "category_code", "fiscal_year", "amount_original", "currency", "amount_usd"]


def _load(agency: str, sources, reference, folder: Path) -> pd.DataFrame:
    write, name = LAYOUTS[agency]
    path = folder / name
    write(path)
    src = next(s for s in sources if s.agency == agency)
    digest, size, mtime = describe(path)
    batch = process_file(
        FileTask(path, f"{agency}/{name}", digest, "test", size, mtime, src, src.spec_for(name)), reference
    )
    assert batch.status == "loaded", (agency, batch.message)
    assert batch.failures is None or batch.failures.empty, (agency, batch.failures.to_dict("records"))
    c = batch.counts
    assert (c["rows_loaded"], c["rows_quarantined"], c["rows_skipped"]) == (len(LINES), 0, 1), (agency, c)
    assert set(batch.rows["stage"]) == {STAGE[agency]}, agency
    return batch.rows


@pytest.fixture(scope="module")
def canonical(sources, reference, tmp_path_factory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("layouts")
    return {agency: _load(agency, sources, reference, folder) for agency in LAYOUTS}


def test_every_layout_loads_the_same_canonical_rows(canonical):
    expected = pd.DataFrame([(c, p, k, 2024, float(a), "SAR", a / 3.75) for c, p, k, a in LINES], columns=COMPARED)
    for agency, rows in canonical.items():
        got = rows[COMPARED].sort_values("program_code").reset_index(drop=True)
        got = got.astype({"fiscal_year": "int64", "amount_original": "float64", "amount_usd": "float64"})
        for column in COMPARED:  # value by value, so a difference names the agency and the column
            pd.testing.assert_series_equal(
                got[column].astype(expected[column].dtype),
                expected[column],
                check_names=False,
                rtol=1e-9,
                obj=f"{agency}.{column}",
            )

"""The agencies' habits that their source YAMLs do not describe (title rows, value styles, currency mix, number
and date formats, ...): one ``Layout`` per agency in ``LAYOUTS``; everything else the generator takes from
``sources/*.yaml`` and ``reference/*.csv``. Also the words programme names are drawn from."""

from __future__ import annotations

from dataclasses import dataclass

from samples.common import CSV_TEXT_AMOUNTS, NO_RATE_CURRENCY, TEXT_AMOUNTS


@dataclass(frozen=True)
class Layout:
    """Agency habits that the YAML configs do not describe."""

    budget_name: str  # format fields: y, start, end, end2
    fy_cell: str  # fiscal-year cell text (same fields); written as int when it is all digits
    title_rows: tuple[str, ...]  # format fields: name_en, name_ar, fy, unit, notice, notice_ar
    totals_text: str
    currency_weights: tuple[tuple[str | None, float], ...]  # None = blank cell (default currency)
    country_style: str  # en | ar | iso3 | codes
    label_script: str  # latin | arabic: which `*` category labels the agency uses
    star_labels: bool = True  # uses the `*` labels at all (MOF uses only its own codes)
    stage_style: str | None = None  # arabic | mixed_case | title (only if a stage column exists)
    stage_weights: tuple[tuple[str, float], ...] = (("allocated", 0.5), ("committed", 0.3), ("disbursed", 0.2))
    sheet_name: str = ""  # used when the YAML says sheet 0
    spacer_rows: int = 0  # blank rows between the titles and the header
    cover_sheet: bool = False
    notes_sheet: bool = False
    mid_blank_rows: int = 0  # blank rows scattered inside the data
    text_amount_rate: float = 0.0  # valid amounts written as text with thousands separators
    trailing_space_rate: float = 0.0  # country cells with a trailing space
    header_arabic: bool = False  # prefer an Arabic alias for headers
    years: tuple[int, ...] = (2024, 2025)  # Hijri years when the agency's fiscal_calendar is hijri
    lines: tuple[int, int] = (120, 300)  # lines per budget file in the demo inbox
    fy_variants: tuple[tuple[str, float], ...] = ()  # per-line fiscal-year cells; () = fy_cell
    amount_style: str = "number"  # number | eu_text (European "1.234,56", always text)
    decimals: int | None = None  # amount decimals; None = by unit (ones 0, thousands 1, millions 2)
    arabic_amount_rate: float = 0.0  # valid amounts written as Arabic-Indic text
    eu_plain_rate: float = 0.0  # European amounts without thousands separators ("850,25")
    text_amounts: tuple[str, ...] = TEXT_AMOUNTS  # what a text_amount defect writes
    date_style: str = "excel"  # excel (date cells) | iso ("2024-03-15" text) | hijri ("١٤٤٥/٠٣/١٥")
    date_blank_rate: float = 0.0  # lines without a date (not a defect)
    ascii_date_rate: float = 0.0  # hijri dates in ASCII digits instead of Arabic-Indic
    no_rate_currency: str | None = None  # plants no_fx_rate defects in this currency


LAYOUTS: dict[str, Layout] = {
    "MOD": Layout(
        budget_name="MOD_budget_FY{y}.xlsx",
        fy_cell="{y}",
        title_rows=(
            "{name_en} - Defense Cooperation Budget",
            "Fiscal Year {fy} - amounts in thousands of SAR",
            "{notice}",
        ),
        spacer_rows=1,
        cover_sheet=True,
        notes_sheet=True,
        totals_text="Total",
        currency_weights=((None, 0.6), ("SAR", 0.3), ("USD", 0.1)),
        country_style="en",
        label_script="latin",
        mid_blank_rows=2,
        text_amount_rate=0.05,
    ),
    "MOI": Layout(
        budget_name="MOI_budget_{y}.xlsx",
        fy_cell="{y_ar}هـ",
        fy_variants=(("{y_ar}هـ", 0.7), ("{y}", 0.15), ("{y}هـ", 0.15)),
        title_rows=("{name_ar} - ميزانية التعاون الدفاعي للسنة المالية {fy}", "{notice} / {notice_ar}"),
        totals_text="المجموع",
        currency_weights=(("SAR", 0.8), ("AED", 0.2)),
        country_style="ar",
        label_script="arabic",
        stage_style="arabic",
        header_arabic=True,
        years=(1445, 1446),
        arabic_amount_rate=0.15,
        date_style="hijri",
        date_blank_rate=0.12,
        ascii_date_rate=0.2,
    ),
    "GIP": Layout(
        budget_name="GIP_budget_{start}-{end2:02d}.xlsx",
        fy_cell="{start}/{end2:02d}",
        sheet_name="FY{start}-{end2:02d}",
        title_rows=("{name_en} - Cooperation Budget, Financial Year {fy}", "{notice}"),
        totals_text="Total",
        currency_weights=(("USD", 0.6), ("GBP", 0.25), ("EUR", 0.15)),
        country_style="codes",
        label_script="latin",
    ),
    "MOF": Layout(
        budget_name="MOF_budget_FY{y}.xlsx",
        fy_cell="FY{y}",
        title_rows=("{name_en} - Defense Cooperation Funding Lines FY{y} (amounts in {unit})", "{notice}"),
        totals_text="Total",
        currency_weights=(("USD", 0.7), ("EUR", 0.2), ("TRY", 0.1)),
        country_style="iso3",
        label_script="latin",
        star_labels=False,
        stage_style="mixed_case",
    ),
    "SANG": Layout(
        budget_name="SANG_budget_{y}.xlsx",
        fy_cell="{y}",
        title_rows=("{name_en} - Cooperation Budget {fy}", "{notice}"),
        totals_text="Total",
        currency_weights=(("SAR", 0.7), ("GBP", 0.2), ("TRY", 0.1)),
        country_style="en",
        label_script="latin",
        stage_style="title",
        stage_weights=(("allocated", 0.7), ("disbursed", 0.3)),
        trailing_space_rate=0.08,
    ),
    "GAMI": Layout(
        budget_name="GAMI_budget_{y}.csv",
        fy_cell="{y}",
        title_rows=(),
        totals_text="Total",
        currency_weights=(("EUR", 0.75), ("SAR", 0.12), (None, 0.13)),
        country_style="en",
        label_script="latin",
        lines=(150, 300),
        amount_style="eu_text",
        decimals=2,
        eu_plain_rate=0.3,
        text_amounts=CSV_TEXT_AMOUNTS,
        date_style="iso",
        no_rate_currency=NO_RATE_CURRENCY,
    ),
}

NAME_WORDS_EN = (
    (
        "Desert",
        "Falcon",
        "Gulf",
        "Northern",
        "Coastal",
        "Summit",
        "Shield",
        "Horizon",
        "Crescent",
        "Sentinel",
        "Eagle",
        "Oasis",
        "Anchor",
        "Bridge",
        "Pioneer",
    ),
    (
        "Partnership",
        "Initiative",
        "Programme",
        "Cooperation",
        "Exchange",
        "Support Package",
        "Capability Project",
        "Framework",
    ),
)
NAME_WORDS_AR = (
    ("الصقر", "الدرع", "الخليج", "الأفق", "الهلال", "الحارس", "النسر", "الواحة", "الجسر", "الرائد"),
    ("للتعاون", "للشراكة", "للتدريب", "للدعم", "للتبادل", "للتطوير"),
)

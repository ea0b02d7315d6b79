"""The reference workbook: two SYNTHETIC editions in the layout of the SIPRI Military Expenditure Database
(``sources/sipri.yaml``, kind ``years_across_columns``), with invented figures and one planted bad cell."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from openpyxl import Workbook

from samples.common import seeded_rng
from samples.files import file_entry, save_workbook

#: SIPRI's regions, sub-regions and (a few) countries, in its spelling; the figures written for them are invented
MILEX_LAYOUT = (
    ("Africa", "North Africa", ("Algeria", "Morocco")),
    ("Africa", "sub-Saharan Africa", ("Nigeria", "South Sudan")),
    ("Americas", "North America", ("United States of America",)),
    ("Asia & Oceania", "South Asia", ("Pakistan",)),
    ("Asia & Oceania", "South East Asia", ("Indonesia", "Malaysia")),
    ("Asia & Oceania", "East Asia", ("Korea, South",)),
    ("Europe", "Western Europe", ("France", "Germany", "Italy", "Spain", "United Kingdom")),
    (
        "Middle East",
        None,
        ("Bahrain", "Egypt", "Jordan", "Kuwait", "Oman", "Qatar", "Saudi Arabia", "Türkiye", "United Arab Emirates"),
    ),
)
MILEX_YEARS = tuple(range(2008, 2026))
#: two editions side by side, as SIPRI publishes them: (last year of data, base year of constant prices); the
#: older one's last four years are preliminary figures that the newer one revises
MILEX_EDITIONS = ((2024, 2023), (2025, 2024))
MILEX_NOTICE = (
    "SYNTHETIC SAMPLE DATA in the layout of the SIPRI Military Expenditure Database - invented figures, not SIPRI's"
)


def _milex_series(rng: random.Random) -> dict[str, dict[int, object]]:
    """Current US$ m. per country and year: invented, with SIPRI's marks ('...' no data, 'xxx' did not exist)."""
    out: dict[str, dict[int, object]] = {}
    for _, _, countries in MILEX_LAYOUT:
        for name in countries:
            level, growth = 10 ** rng.uniform(2.5, 5.0), rng.uniform(-0.02, 0.06)
            out[name] = {
                y: round(level * (1 + growth) ** (y - MILEX_YEARS[0]) * rng.uniform(0.95, 1.05), 3) for y in MILEX_YEARS
            }
    out["South Sudan"].update({y: "xxx" for y in MILEX_YEARS if y < 2011})  # independent in 2011
    out["Qatar"].update({y: "..." for y in range(2011, 2021)})  # no data for a decade, as SIPRI reports for Qatar
    out["Kuwait"][MILEX_YEARS[-1]] = "..."
    return out


def write_milex_editions(inbox: Path, seed: int) -> list[dict]:
    """Both synthetic editions; the newest carries the planted bad cell."""
    series = _milex_series(seeded_rng(seed, "milex"))
    entries = []
    for last, base in MILEX_EDITIONS:
        newest = (last, base) == MILEX_EDITIONS[-1]
        revise = seeded_rng(seed, "milex", last)
        edition = {
            n: {
                y: (
                    v if newest or y <= last - 4 or not isinstance(v, float) else round(v * revise.uniform(0.9, 1.1), 3)
                )
                for y, v in ys.items()
                if y <= last
            }
            for n, ys in series.items()
        }
        entries.append(
            write_milex(
                inbox,
                edition,
                tuple(range(MILEX_YEARS[0], last + 1)),
                base,
                seeded_rng(seed, "milex-cells"),
                plant_bad=newest,
            )
        )
    return entries


def write_milex(
    inbox: Path,
    current: dict[str, dict[int, object]],
    years: tuple[int, ...],
    base_year: int,
    rng: random.Random,
    plant_bad: bool,
) -> dict:
    """A SYNTHETIC workbook in the SIPRI Military Expenditure layout (sources/sipri.yaml reads it): title rows,
    years across the columns, region and sub-region heading rows, '...' and 'xxx', footnote marks, regional
    totals in US$ bn, a Footnotes sheet; with ``plant_bad``, one bad cell ('n/a'), which loads with a warning."""
    notes = {"Egypt": "§2", "Qatar": "‖1", "Saudi Arabia": "§3", "United Arab Emirates": "§", "Jordan": "†"}
    deflator = {y: (1.025 ** (base_year - y)) for y in years}
    rate = {name: round(rng.uniform(0.3, 300.0), 4) for name in current}
    gdp_share = {name: rng.uniform(0.01, 0.08) for name in current}
    num = lambda v, f: round(v * f, 6) if isinstance(v, float) else v  # noqa: E731
    sheets: dict[str, tuple[str, list[str | None], Callable[[str, int, object], object]]] = {
        f"Constant ({base_year}) US$": (
            f"Figures are in US $m., at constant {base_year} prices and exchange rates",
            ["Country", None, "Notes"],
            lambda n, y, v: num(v, deflator[y]),
        ),
        "Current US$": (
            "Figures are in US $m., in current prices, converted at the exchange rate for the given year.",
            ["Country", "Notes"],
            lambda n, y, v: v,
        ),
        "Share of GDP": (
            "Military expenditure as a share of GDP (a fraction: 0.05 = 5 %)",
            ["Country", "Notes"],
            lambda n, y, v: num(v, 0) + round(gdp_share[n], 4) if isinstance(v, float) else v,
        ),
        "Per capita": ("Figures are in current US$", ["Country", "Notes"], lambda n, y, v: num(v, 2.5)),
        "Share of Govt. spending": (
            "Share of general government expenditure (a fraction)",
            ["Country", "Notes", "Reporting year"],
            lambda n, y, v: num(v, 0) + round(gdp_share[n] * 3, 4) if isinstance(v, float) else v,
        ),
        "Local currency calendar years": (
            "Figures are in local currency at current prices",
            ["Country", "Currency", "Notes"],
            lambda n, y, v: num(v, rate[n] * 1e6),
        ),
        "Local currency financial years": (
            "Figures are in local currency at current prices and are for financial years",
            ["Country", "Currency", "Fiscal Year (Jan-Dec if not stated)", "Notes"],
            lambda n, y, v: num(v, rate[n] * 1e6),
        ),
    }
    wb = Workbook()
    wb.active.title = "Front page"
    wb.active.append([MILEX_NOTICE])
    data_rows = entity_rows = blank_rows = heading_rows = 0
    bad_rows = []
    for title, (unit_line, lead, fn) in sheets.items():
        ws = wb.create_sheet(title)
        for line in (
            f"Military expenditure by country, {title}, {years[0]}-{years[-1]}",
            MILEX_NOTICE,
            unit_line,
            '". ." = data unavailable. "xxx" = country did not exist or was not independent.',
        ):
            ws.append([line])
        ws.append([])
        ws.append([*lead, *[float(y) for y in years]])
        ws.append([])
        data_rows += 1
        blank_rows += 1
        last_region = None
        for region, sub, countries in MILEX_LAYOUT:
            if region != last_region:
                ws.append([region])
                data_rows += 1
                heading_rows += 1
                last_region = region
            if sub:
                ws.append([sub])
                data_rows += 1
                heading_rows += 1
            for name in countries:
                extra: dict[str | None, str | None] = {
                    "Notes": notes.get(name),
                    "Currency": "Local units",
                    "Reporting year": None,
                    "Fiscal Year (Jan-Dec if not stated)": "Apr-Mar" if name == "Pakistan" else None,
                }
                cells = [fn(name, y, current[name][y]) for y in years]
                if plant_bad and title == "Current US$" and name == "Jordan":
                    cells[3] = "n/a"  # planted: neither a number nor a mark
                    bad_rows.append(
                        {
                            "sheet": title,
                            "excel_row": ws.max_row + 1,
                            "defect": "value_not_number",
                            "country": name,
                            "year": years[3],
                        }
                    )
                ws.append([name, *[extra.get(h) for h in lead[1:]], *cells])
                data_rows += 1
                entity_rows += 1
    ws = wb.create_sheet("Regional totals", 1)
    for line in (
        "Military expenditure by region in constant US dollars",
        MILEX_NOTICE,
        f"Figures are in US$ b., at constant {base_year} prices and exchange rates, except for the "
        f"last figure which is in US$ b. at current prices.",
    ):
        ws.append([line])
    ws.append([])
    ws.append(["Region", *[float(y) for y in years], f"{years[-1]} (current prices)", None, "Omitted countries"])
    regions = ["World"] + list(dict.fromkeys(r for r, _, _ in MILEX_LAYOUT))
    subs = {r: [s for rr, s, _ in MILEX_LAYOUT if rr == r and s] for r in regions}
    members = lambda key: [n for r, s, cs in MILEX_LAYOUT for n in cs if key in ("World", r, s)]  # noqa: E731

    def total(key, y, f):
        return round(sum(current[n][y] * f for n in members(key) if isinstance(current[n][y], float)) / 1000, 3)

    for region in regions:
        for key in (region, *subs[region]):
            ws.append(
                [
                    key,
                    *[total(key, y, deflator[y]) for y in years],
                    total(key, years[-1], 1.0),
                    None,
                    "South Sudan" if key in ("World", "Africa", "sub-Saharan Africa") else None,
                ]
            )
            data_rows += 1
            entity_rows += 1
    ws = wb.create_sheet("Footnotes")
    for row in (
        ["Footnotes and special notes"],
        [],
        ["The following special notes are used in each worksheet"],
        ["†", "Figures do not include military pensions (synthetic note)."],
        ["‖", "Figures are highly uncertain (synthetic note)."],
        ["§", "Figures are SIPRI-style estimates (synthetic note)."],
        ["1", None, "Qatar: no data was found for 2011-20 (synthetic note)."],
        ["2", None, "Egypt: figures exclude foreign military aid (synthetic note)."],
        ["3", None, "Saudi Arabia: figures are budgets, not spending (synthetic note)."],
    ):
        ws.append(row)
        data_rows += 1
    entity_rows += 6  # the footnotes with a mark and a text
    blank_rows, heading_rows = blank_rows + 1, heading_rows + 2  # the footnotes sheet's empty row and two titles
    rel = f"sipri/SIPRI-Milex-data-{years[0]}-{years[-1]}.xlsx"
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    save_workbook(wb, path)
    entry = file_entry(rel, "SIPRI", "years_across_columns", None, 0)
    entry.update(
        {
            "data_rows": data_rows,
            "lines": entity_rows,
            "bad_rows": bad_rows,
            "blank_rows": blank_rows,
            "heading_rows": heading_rows,
            "footnote_rows": 6,
            "years": [years[0], years[-1]],
        }
    )
    return entry

"""SYNTHETIC multi-donor pledge tracker - every value is made up.

:func:`write_tracker` writes a pledge tracker (``sources/pledges.yaml``, kind ``budget``): a UTF-8 CSV with the
SYNTHETIC notice on the line above its header, donors' pledges to one recipient the file never names (Jordan, a
constant of the source), month-first dates (03/04/2024 is 4 March), amounts as text with thousands separators
("35,000,000"), several currencies with Croatian kuna before the euro and one kuna pledge dated after it, "Not given",
"." and "n/a" markers, pledges out of scope ('Pledged', 'Withdrawn': skipped as filtered).

The manifest entry is shaped like :func:`samples.files.file_entry`'s (``bad_rows``: ``excel_row``, ``defect``,
``column`` and the ``rule`` the pipeline must report), plus ``expected`` (rows read, loaded, quarantined, skipped),
``skipped_rows`` (row -> reason) and the cells planted to load (``checks``). Rows are the file's physical lines (no
value holds a line break). Deterministic: seeded ``random.Random`` only, fixed text, fixed line ends.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from samples.common import seeded_rng
from samples.files import file_entry

TRACKER_DIR = "pledges"
TRACKER_NAME = "pledges_2025-06.csv"
TRACKER_NOTICE = "SYNTHETIC SAMPLE DATA - invented pledges, not a real tracker"
TRACKER_HEADER = ("Pledge ID", "Donor", "Project", "Sector", "Amount", "Currency", "Status", "Date")
TRACKER_RECIPIENT = ("Jordan", "JOR")  # implied by the tracker: sources/pledges.yaml states it as a constant
#: donor -> currency (Croatia: kuna before the euro, see _currency)
DONORS = {
    "Germany": "EUR",
    "France": "EUR",
    "Japan": "JPY",
    "United Kingdom": "GBP",
    "United States": "USD",
    "Sweden": "SEK",
    "Norway": "NOK",
    "Switzerland": "CHF",
    "Canada": "CAD",
    "Denmark": "DKK",
    "Australia": "AUD",
    "Croatia": "HRK",
}
EURO_IN_CROATIA = date(2023, 1, 1)
#: rough units per US$, only to make pledges look plausible in their currency (the pipeline has its own rates)
PLEDGE_RATES = {
    "USD": 1.0,
    "EUR": 0.92,
    "JPY": 145.0,
    "GBP": 0.79,
    "SEK": 10.5,
    "NOK": 10.6,
    "CHF": 0.88,
    "CAD": 1.35,
    "DKK": 6.9,
    "AUD": 1.5,
    "HRK": 7.0,
}
SECTORS = {  # sector (as the tracker writes it, mapped in reference/category_mappings.csv) -> project names
    "Training": ("Officer courses", "Training centre", "Language school", "Staff college exchange"),
    "Equipment": ("Night-vision equipment", "Patrol vehicles", "Field hospital kit", "Radios"),
    "Border security": ("Border posts", "Surveillance towers", "Border crossing scanners"),
    "Mine action": ("Humanitarian demining", "Mine risk education", "Survey of suspected areas"),
    "Capacity building": ("Logistics advisers", "Maintenance workshop", "Procurement reform"),
}
STATUS_WEIGHTS = (("Committed", 0.5), ("Disbursed", 0.32), ("Pledged", 0.12), ("Withdrawn", 0.06))
IN_SCOPE = ("Committed", "Disbursed")  # keep_rows in sources/pledges.yaml
TRACKER_RECORDS = (180, 240)
TRACKER_FIRST, TRACKER_LAST = date(2021, 1, 1), date(2025, 6, 30)
#: the tracker's planted problems: defect -> (canonical column, the rule the pipeline must report)
TRACKER_DEFECTS = {
    "withdrawn_currency": ("currency", "currency_withdrawn"),  # kuna dated after the euro came
    "not_given_amount": ("amount", "required_missing"),
    "missing_currency": ("currency", "required_missing"),  # 'n/a', and the source has no default currency
    "missing_sector": ("category", "required_missing"),  # '.'
    "day_first_date": ("transaction_date", "date_unreadable"),  # 13/01/2024 is no month-first date
}


def _month_first(d: date) -> str:
    return f"{d.month:02d}/{d.day:02d}/{d.year}"


def _currency(donor: str, when: date) -> str:
    return "EUR" if donor == "Croatia" and when >= EURO_IN_CROATIA else DONORS[donor]


def _amount_text(rng: random.Random, value: float) -> str:
    """A pledge as trackers write it: text with thousands separators, sometimes cents, sometimes plain."""
    style = rng.random()
    if style < 0.15:
        return f"{value:,.2f}"
    if style < 0.25:
        return f"{round(value, -3):.0f}"
    return f"{round(value, -3):,.0f}"


def _pledge(rng: random.Random, pledge_id: str) -> dict:
    donor = rng.choice(sorted(DONORS))
    when = TRACKER_FIRST + timedelta(rng.randint(0, (TRACKER_LAST - TRACKER_FIRST).days))
    if donor == "Croatia" and date(2022, 12, 15) < when < EURO_IN_CROATIA:
        when = date(2022, 12, 15)  # a kuna rate is a working day's: well before the ECB's last kuna fixing
    currency = _currency(donor, when)
    sector = rng.choice(sorted(SECTORS))
    value = 10 ** rng.uniform(5.0, 7.7) * PLEDGE_RATES[currency]
    return {
        "Pledge ID": pledge_id,
        "Donor": donor,
        "Project": rng.choice(SECTORS[sector]),
        "Sector": sector,
        "Amount": _amount_text(rng, value),
        "Currency": currency,
        "Status": rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0],
        "Date": _month_first(when),
        "_date": when,
        "_amount": value,
    }


def _csv_line(cells: list[str]) -> str:
    """A CSV line: a value with a comma (an amount such as 35,000,000) is quoted."""
    return ",".join(f'"{c}"' if "," in c else c for c in cells)


def write_tracker(inbox: Path, seed: int) -> list[dict]:
    """The synthetic pledge tracker (one file) in ``inbox/pledges/``; returns its manifest entry in a list."""
    rng = seeded_rng(seed, "pledges", "tracker")
    n = rng.randint(*TRACKER_RECORDS)
    pledges = [_pledge(rng, f"JOR-PL-{i:04d}") for i in range(1, n + 1)]
    in_scope = [i for i, p in enumerate(pledges) if p["Status"] in IN_SCOPE]
    spots = rng.sample(in_scope, 9)
    planted = dict(zip(spots, [*TRACKER_DEFECTS, "month_first", "kuna_before_euro", "project_marker", "scoped_out"]))
    for i, what in planted.items():
        p = pledges[i]
        if what == "withdrawn_currency":
            p.update(Donor="Croatia", Currency="HRK", Date="03/15/2023", Amount="800,000", _date=date(2023, 3, 15))
        elif what == "not_given_amount":
            p["Amount"] = "Not given"
        elif what == "missing_currency":
            p["Currency"] = "n/a"
        elif what == "missing_sector":
            p["Sector"] = "."
        elif what == "day_first_date":
            p.update(Date="13/01/2024", _date=None)
        elif what == "month_first":  # read month first it is 4 March 2024; day first it would be 3 April
            p.update(Donor="Germany", Currency="EUR", Amount="35,000,000", Date="03/04/2024", _date=date(2024, 3, 4))
            p["_amount"] = 35_000_000.0
        elif what == "kuna_before_euro":
            p.update(Donor="Croatia", Currency="HRK", Amount="4,500,000.00", Date="11/30/2022")
            p.update(_date=date(2022, 11, 30), _amount=4_500_000.0)
        elif what == "project_marker":  # a marker in a column a line may leave empty: it loads without a project
            p["Project"] = "n/a"
        elif what == "scoped_out":  # a marker on a pledge out of scope: skipped as filtered, never quarantined
            p.update(Status="Withdrawn", Amount="Not given")

    lines = [TRACKER_NOTICE, ",".join(TRACKER_HEADER)]
    header_row = len(lines)
    bad_rows: list[dict] = []
    skipped_rows: list[dict] = []
    checks: dict[str, object] = {}
    loaded: dict[int, dict] = {}
    for i, p in enumerate(pledges):
        lines.append(_csv_line([p[h] for h in TRACKER_HEADER]))
        row = len(lines)
        kind = planted.get(i)
        if kind in TRACKER_DEFECTS:
            column, rule = TRACKER_DEFECTS[kind]
            bad_rows.append({"excel_row": row, "defect": kind, "column": column, "rule": rule})
        elif p["Status"] not in IN_SCOPE:
            skipped_rows.append({"excel_row": row, "reason": "filtered", "status": p["Status"]})
        else:
            loaded[row] = p
        if kind and kind not in TRACKER_DEFECTS:
            checks[kind] = {
                "excel_row": row,
                "pledge_id": p["Pledge ID"],
                "date": p["_date"].isoformat(),
                "amount": p["Amount"],
                "currency": p["Currency"],
            }
    rel = f"{TRACKER_DIR}/{TRACKER_NAME}"
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")

    data_rows = len(lines) - header_row
    by_currency: dict[str, float] = {}
    for p in loaded.values():
        amount = float(p["Amount"].replace(",", ""))
        by_currency[p["Currency"]] = round(by_currency.get(p["Currency"], 0.0) + amount, 2)
    entry = file_entry(rel, "PLEDGES", "budget", None, header_row)
    entry.update(
        {
            "synthetic": True,
            "notice": TRACKER_NOTICE,
            "encoding": "utf-8",
            "data_rows": data_rows,
            "lines": data_rows,
            "bad_rows": bad_rows,
            "skipped_rows": skipped_rows,
            "filtered_rows": len(skipped_rows),
            "expected": {
                "rows_read": data_rows,
                "rows_loaded": len(loaded),
                "rows_quarantined": len(bad_rows),
                "rows_skipped": len(skipped_rows),
            },
            "checks": {
                **checks,
                "partner_iso3": TRACKER_RECIPIENT[1],
                "amount_loaded_by_currency": dict(sorted(by_currency.items())),
                "fiscal_years_loaded": sorted({p["_date"].year for p in loaded.values()}),
            },
        }
    )
    return [entry]

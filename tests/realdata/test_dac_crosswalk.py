"""The category taxonomy's crosswalk points at real, active OECD DAC purpose codes in 152xx (IATI copy)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.realdata
ROOT = Path(__file__).resolve().parents[2]


def test_crosswalk_codes_are_active_152xx_codes(realdata):
    sectors = pd.read_csv(realdata / "codelists" / "IATI_Sector.csv", dtype=str).set_index("code")
    categories = pd.read_csv(ROOT / "reference" / "categories.csv", dtype=str)
    mapped = categories.dropna(subset=["dac_code"])
    assert {"PEACEKEEPING", "TRAINING"} <= set(mapped["category_code"])
    for row in mapped.itertuples():
        assert row.dac_code in sectors.index, row
        assert row.dac_code.startswith("152") and sectors.at[row.dac_code, "status"] == "active"
    assert (
        sectors.at[categories.set_index("category_code").at["PEACEKEEPING", "dac_code"], "name"]
        == "Participation in international peacekeeping operations"
    )

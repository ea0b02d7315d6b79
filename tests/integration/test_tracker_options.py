"""A multi-donor pledge tracker onboarded by configuration alone: the README's DONORS example source (month-first
dates, text amounts with 'Not given', a recipient implied by the file, rows out of scope, the fiscal year from the
date) over a small synthetic CSV. Every row ends loaded, quarantined with a reason, or skipped with one."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from flows.process import process_file
from schemas.sources import SourceConfig
from tests.integration.test_sources_samples import make_task

ROOT = Path(__file__).resolve().parents[2]

TRACKER = """Pledge ID,Sector,Amount,Currency,Status,Date
PL-1,Training,"35,000,000",USD,Committed,08/15/2023
PL-2,Training,Not given,USD,Committed,09/01/2023
PL-3,Training,12000,EUR,Pledged,02/01/2024
PL-4,Training,7000,n/a,Disbursed,06/30/2024
PL-5,Training,500,HRK,Disbursed,11/30/2022
PL-6,Training,800,HRK,Disbursed,03/15/2023
PL-7,Training,100,USD,Committed,13/01/2024
"""


def _donors() -> SourceConfig:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Options every file", 1)[1]
    return SourceConfig.model_validate(yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1)))


def test_the_readme_tracker_config_reads_a_tracker(tmp_path, reference):
    source = _donors()
    path = tmp_path / "donors" / "pledges_2024.csv"
    path.parent.mkdir()
    path.write_text(TRACKER, encoding="utf-8")
    batch = process_file(make_task(path, source), reference)
    assert batch.status == "loaded", batch.message
    c = batch.counts
    assert c == {"rows_read": 7, "rows_loaded": 2, "rows_quarantined": 4, "rows_skipped": 1}
    rows = batch.rows.set_index("program_code")
    assert sorted(rows.index) == ["PL-1", "PL-5"]
    assert set(rows["country_iso3"]) == {"JOR"}  # implied by the file (constants)
    assert rows.loc["PL-1", "transaction_date"].strftime("%Y-%m-%d") == "2023-08-15"  # month first, as declared
    assert rows.loc["PL-1", "amount_original"] == 35_000_000.0
    assert rows.loc["PL-5", "currency"] == "HRK" and rows.loc["PL-5", "fiscal_year"] == 2023  # kuna before 2023
    assert rows.loc["PL-1", "fiscal_year_label"] == "2023/24"  # July fiscal years, from the date
    rules = dict(zip(batch.failures["excel_row"], batch.failures["rule"], strict=True))
    # 'Not given' amount; 'n/a' currency with no default (one failure each, never a contract error); the kuna
    # after the euro; 13/01/2024 is no month-first date (and its fiscal year is not reported a second time)
    assert rules == {3: "required_missing", 5: "required_missing", 7: "currency_withdrawn", 8: "date_unreadable"}
    assert batch.skipped.set_index("excel_row").loc[4, "reason"] == "filtered"  # 'Pledged' is out of scope

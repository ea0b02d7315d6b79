"""Both real SIPRI editions onboard through configuration alone (sources/sipri.yaml): the same reader, standardiser
and warehouse load as the nightly flow, into a temporary DuckDB, then checked against SIPRI's own identities.

Reproduce: .venv/bin/python -m pytest tests/realdata/test_sipri_onboarding.py -s
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from flows.process import FileTask, describe, process_file
from warehouse.store import LoadInfo, Staging

EDITIONS = {
    "SIPRI-Milex-data-1949-2022.xlsx": ("1949-2022", 2021),
    "SIPRI-Milex-data-1948-2023.xlsx": ("1948-2023", 2022),
}


@pytest.fixture(scope="module")
def wh(realdata, sources, reference, tmp_path_factory):
    src = next(s for s in sources if s.agency == "SIPRI")
    batches = []
    for name in EDITIONS:
        path = realdata / "sipri_milex" / name
        digest, size, mtime = describe(path)
        batches.append(
            process_file(FileTask(path, f"SIPRI/{name}", digest, "t", size, mtime, src, src.spec_for(name)), reference)
        )
    target = tmp_path_factory.mktemp("sipri") / "wh.duckdb"
    staging = Staging(target)
    load = LoadInfo("test-load", datetime.now(), None, "test", str(realdata))
    staging.load_batches(batches, load, datetime.now(), on_reject=None)
    staging.check()  # the pre-publish checks, reconciliation included
    staging.publish()
    con = duckdb.connect(str(target), read_only=True)
    yield batches, con
    con.close()


def one(con, sql, params=None):
    return con.execute(sql, params or []).fetchone()


def test_both_editions_load_and_reconcile(wh):
    batches, con = wh
    assert [b.status for b in batches] == ["loaded", "loaded"], [b.message for b in batches]
    rows = con.execute(
        "SELECT edition, price_base_year, published_year, sheets_ignored FROM ref_series_edition ORDER BY edition"
    ).fetchall()
    assert rows == [("1948-2023", 2022, 2023, ["Front page"]), ("1949-2022", 2021, 2022, ["Front page"])]
    assert one(con, "SELECT bool_and(reconciles), count(*) FROM file_reconciliation") == (True, 2)
    for b in batches:
        c = b.counts
        assert (
            c["rows_read"] == c["rows_loaded"] + c["rows_skipped"] + c["rows_quarantined"]
            and c["rows_quarantined"] == 0
        )
    # every country name resolves (aliases for SIPRI's spellings); only the European Union is not a country
    assert one(con, "SELECT count(*) FROM audit_validation_failure WHERE file_key LIKE 'SIPRI/%'") == (0,)
    assert con.execute("SELECT DISTINCT entity_name FROM ref_series_value WHERE entity_type = 'other'").fetchall() == [
        ("European Union",)
    ]
    assert one(con, "SELECT count(*) FROM ref_series_value WHERE entity_type = 'country' AND country_iso3 IS NULL") == (
        0,
    )


def test_missing_is_null_never_zero_and_xxx_is_did_not_exist(wh):
    _, con = wh
    assert one(
        con,
        "SELECT count(*) FROM ref_series_value WHERE raw_value IN ('...', '. .') AND (status <> 'missing' OR value IS NOT NULL)",
    ) == (0,)
    assert one(
        con,
        "SELECT count(*) FROM ref_series_value WHERE raw_value = 'xxx' AND (status <> 'not_existing' OR value IS NOT NULL)",
    ) == (0,)
    assert one(con, "SELECT count(*) > 1000 FROM ref_series_value WHERE status = 'missing'") == (True,)
    # the USSR did not exist after 1991; Russia before 1992 (in these editions)
    assert one(
        con,
        "SELECT status FROM ref_series_value WHERE edition = '1949-2022' AND measure = 'milex_current_usd' "
        "AND entity_name = 'USSR' AND year = 2000",
    ) == ("not_existing",)
    assert one(con, "SELECT count(*) FROM ref_series_value WHERE status = 'invalid'") == (0,)


def test_footnotes_kept_and_regions_separated(wh):
    _, con = wh
    libya = one(
        con,
        "SELECT notes, footnote_symbols, footnote_numbers FROM ref_series_value WHERE edition = '1949-2022' "
        "AND entity_name = 'Libya' AND measure = 'milex_current_usd' LIMIT 1",
    )
    assert libya == ("‡§¶16", "‡§¶", [16])
    note = one(con, "SELECT text FROM ref_series_footnote WHERE edition = '1949-2022' AND mark = '16'")[0]
    assert note.startswith("Libya")
    assert one(con, "SELECT count(*) FROM ref_series_footnote WHERE edition = '1948-2023' AND mark = '§'") == (1,)
    # region rows: only from 'Regional totals'; in the country sheets they are headings (skipped), never values
    assert con.execute("SELECT DISTINCT sheet FROM ref_series_value WHERE entity_type = 'region'").fetchall() == [
        ("Regional totals",)
    ]
    assert one(
        con,
        "SELECT count(*) FROM ref_series_value WHERE entity_type = 'country' AND entity_name IN ('Middle East', 'Africa', 'Europe', 'North Africa')",
    ) == (0,)
    assert one(con, "SELECT count(*) FROM skipped_row WHERE file_key LIKE 'SIPRI/%' AND reason = 'region_heading'") == (
        70,
    )
    assert one(con, "SELECT region, subregion FROM ref_series_value WHERE entity_name = 'Saudi Arabia' LIMIT 1") == (
        "Middle East",
        None,
    )
    assert one(con, "SELECT region, subregion FROM ref_series_value WHERE entity_name = 'Algeria' LIMIT 1") == (
        "Africa",
        "North Africa",
    )


def test_units_per_sheet_and_sipri_identities(wh):
    _, con = wh
    for edition, base in EDITIONS.values():
        # constant (base year) == current in the base year, for every country with a figure (Myanmar, whose
        # figures SIPRI converts by financial year, is the one exception seen in the 2022 edition)
        diff = one(
            con,
            """
            SELECT count(*), count(*) FILTER (WHERE abs(c.value_base - k.value_base) / k.value_base > 1e-6)
            FROM ref_series_value c JOIN ref_series_value k USING (edition, entity_name, year)
            WHERE c.edition = ? AND c.measure = 'milex_constant_usd' AND k.measure = 'milex_current_usd'
              AND c.entity_type = 'country' AND c.year = ? AND c.status = 'value' AND k.status = 'value' AND k.value_base > 0""",
            [edition, base],
        )
        assert diff[0] > 100 and diff[1] <= 1
        # SAR is pegged at 3.75: local currency / 3.75 == current US$ (both in full units after scaling)
        sau = one(
            con,
            """
            SELECT max(abs(l.value_base / 3.75 - c.value_base) / c.value_base)
            FROM ref_series_value l JOIN ref_series_value c USING (edition, entity_name, year)
            WHERE l.edition = ? AND l.entity_name = 'Saudi Arabia' AND l.measure = 'milex_local_currency_calendar_year'
              AND c.measure = 'milex_current_usd' AND l.status = 'value' AND c.status = 'value' AND l.year >= 1990""",
            [edition],
        )
        assert sau[0] < 0.01
    # US$ m. -> US$; US$ bn -> US$; share of GDP stays a fraction
    usa = one(
        con,
        "SELECT value, value_base FROM ref_series_value WHERE edition = '1949-2022' AND entity_name = 'United States of America' "
        "AND measure = 'milex_current_usd' AND year = 2022",
    )
    assert 800_000 < usa[0] < 900_000 and usa[1] == pytest.approx(usa[0] * 1e6)
    world = one(
        con,
        "SELECT value, value_base FROM ref_series_value WHERE edition = '1949-2022' AND entity_name = 'World' "
        "AND measure = 'milex_current_usd' AND year = 2022",
    )
    assert 2000 < world[0] < 2500 and world[1] == pytest.approx(world[0] * 1e9)
    # a fraction (0.02), not a percentage (2.0); Kuwait in 1991 spent 117 % of GDP, the one value above 1
    share = one(
        con,
        "SELECT median(value), count(*) FILTER (WHERE value > 1) FROM ref_series_value "
        "WHERE measure = 'milex_share_of_gdp' AND status = 'value' AND edition = '1949-2022'",
    )
    assert 0.01 < share[0] < 0.05 and share[1] == 1


def test_editions_side_by_side_and_revisions_queryable(wh):
    _, con = wh
    both = con.execute(
        "SELECT edition, value FROM ref_series_value WHERE entity_name = 'Saudi Arabia' "
        "AND measure = 'milex_current_usd' AND year = 2022 ORDER BY edition"
    ).fetchall()
    assert [e for e, _ in both] == ["1948-2023", "1949-2022"]
    revision = one(
        con,
        "SELECT previous_edition, edition, previous_value, value FROM ref_series_revisions "
        "WHERE entity_name = 'Saudi Arabia' AND measure = 'milex_current_usd' AND year = 2022",
    )
    assert revision == ("1949-2022", "1948-2023", both[1][1], both[0][1])
    # constant prices change base year between editions, so they never pair as revisions
    assert one(con, "SELECT count(*) FROM ref_series_revisions WHERE measure = 'milex_constant_usd'") == (0,)
    assert one(con, "SELECT edition FROM ref_series_latest_edition WHERE dataset = 'sipri_milex'") == ("1948-2023",)
    latest = one(
        con, "SELECT milex_current_usd, share_of_gdp FROM milex_country_year WHERE country_iso3 = 'SAU' AND year = 2023"
    )
    assert latest[0] > 5e10 and 0 < latest[1] < 0.2

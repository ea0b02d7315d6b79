"""DuckLake, tried here: the published warehouse copied into a lake (DuckDB-file catalog, Parquet data folder) reads
back identically, and each publish is its own snapshot (time travel to the previous one)."""

from __future__ import annotations

import duckdb
import pytest

from flows.nightly import run_nightly
from warehouse.lake import attach_lake, publish_to_lake

pytestmark = pytest.mark.slow


def test_publish_to_ducklake_round_trips_with_snapshots(sample_inbox, tmp_path):
    inbox, _ = sample_inbox
    wh = tmp_path / "warehouse.duckdb"
    run_nightly(inbox=str(inbox), warehouse=str(wh))
    catalog, data = str(tmp_path / "lake.ducklake"), str(tmp_path / "lake-data") + "/"
    first = publish_to_lake(wh, catalog, data)
    second = publish_to_lake(wh, catalog, data)
    assert second > first
    assert list((tmp_path / "lake-data").rglob("*.parquet"))
    con = duckdb.connect()
    attach_lake(con, catalog, data)
    with duckdb.connect(str(wh), read_only=True) as src:
        expected = src.execute(
            "SELECT count(*), sum(amount_usd), count(DISTINCT country_iso3) FROM fact_funding_line"
        ).fetchone()
    assert (
        con.execute(
            "SELECT count(*), sum(amount_usd), count(DISTINCT country_iso3) FROM lake.fact_funding_line"
        ).fetchone()
        == expected
    )
    assert (
        con.execute(f"SELECT count(*) FROM lake.fact_funding_line AT (VERSION => {first})").fetchone()[0] == expected[0]
    )
    con.close()

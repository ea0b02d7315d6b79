"""The nightly flow writes the warehouse in warehouse.connect.STORAGE_VERSION's storage format (docs/adr/0014), and
the first night that changes something lifts a warehouse written before the setting, keeping every row."""

from __future__ import annotations

import duckdb
import pytest

from flows.nightly import run_nightly
from warehouse import connect, publish
from warehouse.connect import STORAGE_VERSION, storage_version

pytestmark = pytest.mark.slow


def _facts(wh) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(
            "SELECT file_key, count(*), sum(amount_usd) FROM fact_funding_line GROUP BY ALL ORDER BY ALL"
        ).fetchall()


def test_the_published_warehouse_and_its_version_are_in_the_set_format(sample_warehouse):
    assert storage_version(sample_warehouse) == STORAGE_VERSION + "+"
    newest = publish.version_path(sample_warehouse, publish.version_seqs(sample_warehouse)[-1])
    assert storage_version(newest) == STORAGE_VERSION + "+"


def test_a_warehouse_written_in_the_older_format_is_lifted_by_the_next_changing_night(
    inbox_copy, tmp_path, monkeypatch
):
    inbox, _ = inbox_copy
    wh = tmp_path / "warehouse.duckdb"
    held_back = inbox / "gami" / "GAMI_budget_2025.csv"
    later = tmp_path / held_back.name
    held_back.rename(later)
    with monkeypatch.context() as m:  # the code before the setting: DuckDB's default format
        m.setattr(connect, "lift_storage", lambda path: None)
        assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    assert storage_version(wh) == "v1.0.0+"
    before = _facts(wh)
    later.rename(held_back)  # a new file: the night writes
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    assert storage_version(wh) == STORAGE_VERSION + "+"
    after = _facts(wh)
    assert [row for row in after if not row[0].startswith("GAMI/GAMI_budget_2025")] == before
    assert len(after) > len(before)

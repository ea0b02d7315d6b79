"""The quiet-night check's count of closed-year rates to freeze scans every fact, so it is remembered per version
with the span of nights over which it cannot change (warehouse/quiet.py unlocked_rates): the same count as the
query every night, the query run again once a fiscal period closes or the version is another file."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import duckdb
import pytest

from warehouse import quiet
from warehouse.ddl import apply_ddl
from warehouse.quiet import _unlocked_now, unlocked_rates

LINE = (
    "'MOD/f.xlsx', 'Budget', {row}, 'MOD', 'P1', NULL, 'FRA', NULL, NULL, 'allocated', {fy}, 'FY', "
    "DATE '{start}', DATE '{end}', NULL, 1.0, '{cur}', 1.0, 1.5, DATE '{end}', 'ecb', 'fiscal_period_average', "
    "NULL, 2024, NULL, 'h', 'l'"
)


def add_lines(con: duckdb.DuckDBPyConnection) -> None:
    """Three funding lines: fiscal years 2022 (EUR) and 2023 (GBP), closed, and 2031 (JPY), open."""
    for row, (fy, start, end, cur) in enumerate(
        [
            (2022, "2021-07-01", "2022-06-30", "EUR"),
            (2023, "2022-07-01", "2023-06-30", "GBP"),
            (2031, "2030-07-01", "2031-06-30", "JPY"),
        ],
        start=2,
    ):
        con.execute(
            f"INSERT INTO fact_funding_line VALUES ({LINE.format(row=row, fy=fy, start=start, end=end, cur=cur)})"
        )


@pytest.fixture
def version(tmp_path):
    path = tmp_path / "000001.duckdb"
    with duckdb.connect(str(path)) as con:
        apply_ddl(con)
        add_lines(con)
        con.execute(
            "INSERT INTO fx_rate_lock VALUES ('EUR', 'fiscal_period_average', DATE '2021-07-01', DATE '2022-06-30', "
            "2022, 1.5, DATE '2022-06-30', 'ecb', TIMESTAMP '2024-01-01', 'l')"
        )
    return path


@pytest.fixture
def queries(monkeypatch) -> list[datetime]:
    """Every time the facts are scanned to count."""
    asked: list[datetime] = []
    real = quiet._unlocked_now
    monkeypatch.setattr(quiet, "_unlocked_now", lambda con, as_of: asked.append(as_of) or real(con, as_of))
    return asked


def test_the_count_is_remembered_until_a_period_closes(version, tmp_path, queries):
    memo = tmp_path / ".warehouse.duckdb.quiet-memo.json"
    nights = [datetime(2025, 1, 1, 2), datetime(2025, 1, 2, 2), datetime(2030, 1, 1, 2), datetime(2031, 6, 30)]
    with duckdb.connect(str(version), read_only=True) as con:
        counts = [unlocked_rates(con, version, memo, night) for night in nights]
        assert counts == [_unlocked_now(con, night) for night in nights] == [1, 1, 1, 1]  # GBP 2023 is not locked
        assert queries == [nights[0]]  # counted once, then remembered
        saved = json.loads(memo.read_text())["rates"]
        assert saved["until"] == "2031-06-30T00:00:00" and saved["count"] == 1
        later = datetime(2031, 6, 30, 0, 0, 1)  # the JPY period has ended: counted again
        assert unlocked_rates(con, version, memo, later) == 2 == _unlocked_now(con, later)
        assert queries == [nights[0], later]
        assert json.loads(memo.read_text())["rates"]["until"] is None  # every fact counted: no later night can differ
        assert unlocked_rates(con, version, memo, datetime(2099, 1, 1)) == 2 and len(queries) == 2
        earlier = datetime(2025, 1, 1)  # the clock moved back: counted again
        assert unlocked_rates(con, version, memo, earlier) == 1 and queries[-1] == earlier


def test_another_version_or_a_damaged_memo_is_counted_again(version, tmp_path, queries):
    memo = tmp_path / "memo.json"
    night = datetime(2025, 1, 1, 2)
    with duckdb.connect(str(version), read_only=True) as con:
        unlocked_rates(con, version, memo, night)
        saved = json.loads(memo.read_text())
        saved["rates"]["count"] = 7  # a remembered answer is used as it is...
        memo.write_text(json.dumps(saved))
        assert unlocked_rates(con, version, memo, night) == 7 and len(queries) == 1
    os.utime(version)  # ...for that file only: rewritten, it is another version
    with duckdb.connect(str(version), read_only=True) as con:
        assert unlocked_rates(con, version, memo, night) == 1 and len(queries) == 2
        memo.write_text("{not json")
        assert unlocked_rates(con, version, memo, night) == 1 and len(queries) == 3
        assert unlocked_rates(con, version, memo, datetime(2025, 1, 1, 2, tzinfo=None) + timedelta(days=1)) == 1
        assert len(queries) == 3


def test_an_unwritable_folder_only_means_counting(version, tmp_path, queries):
    memo = tmp_path / "missing-folder" / "memo.json"
    with duckdb.connect(str(version), read_only=True) as con:
        assert unlocked_rates(con, version, memo, datetime(2025, 1, 1)) == 1
        assert unlocked_rates(con, version, memo, datetime(2025, 1, 1)) == 1
    assert len(queries) == 2 and not memo.parent.exists()


def test_the_memo_relies_on_the_query_reading_as_of_only_through_period_end():
    assert "period_end < $as_of" in quiet.CLOSED_RATES_SQL and quiet.CLOSED_RATES_SQL.count("$as_of") == 1


def test_the_published_files_number_is_read_again_unless_it_is_the_same_settled_file(version, tmp_path, monkeypatch):
    from warehouse import publish

    opened: list[object] = []
    real = publish.published_seq
    monkeypatch.setattr(quiet, "published_seq", lambda p: opened.append(p) or real(p))
    published = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(version)) as con:
        con.execute("INSERT INTO warehouse_meta VALUES ('publish_seq', '1')")
    published.write_bytes(version.read_bytes())
    memo = tmp_path / "memo.json"
    assert quiet._published_seq(published, memo) == 1
    assert quiet._published_seq(published, memo) == 1
    assert len(opened) == 2  # just written: its times are not safely older than the reading, read again
    saved = json.loads(memo.read_text())
    saved["published"]["read_at"] += 2 * quiet.RACY_NS  # as if read well after it was written
    memo.write_text(json.dumps(saved))
    assert quiet._published_seq(published, memo) == 1 and len(opened) == 2  # the same settled file: not opened
    saved["published"]["seq"] = 5
    memo.write_text(json.dumps(saved))
    assert quiet._published_seq(published, memo) == 5  # (the remembered number is what is used)
    data = published.read_bytes()
    published.unlink()
    published.write_bytes(data)  # another file in its place (an analyst's copy saved over it): read again
    assert quiet._published_seq(published, memo) == 1 and len(opened) == 3
    published.unlink()
    assert quiet._published_seq(published, memo) is None and len(opened) == 4

"""benchmarks/close_race.py, the stress run of DuckDB's close race (docs/adr/0015): it counts sessions, errors and
readers that died, and says so in its exit code."""

from __future__ import annotations

import json

import duckdb
import pytest

from benchmarks.close_race import main

pytestmark = pytest.mark.slow


def _file(path, *, with_tables: bool):
    with duckdb.connect(str(path)) as con:
        if with_tables:
            con.execute("CREATE TABLE funding_lines AS SELECT range * 1.5 AS amount_usd FROM range(1000)")
            con.execute("CREATE TABLE file_reconciliation AS SELECT range % 2 = 0 AS reconciles FROM range(10)")
        else:
            con.execute("CREATE TABLE other (i INTEGER)")
    return path


def _summary(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_readers_count_their_sessions(tmp_path, capsys):
    wh = _file(tmp_path / "w.duckdb", with_tables=True)
    assert main([str(wh), "--readers", "2", "--seconds", "2", "--round", "2"]) == 0
    found = _summary(capsys.readouterr().out)
    assert found["rounds"] == 1 and found["died"] == 0 and found["errors"] == 0
    assert found["sessions"] > 0


def test_errors_are_counted_not_hidden(tmp_path, capsys):
    wh = _file(tmp_path / "w.duckdb", with_tables=False)  # the queries' tables are missing: every session fails
    assert main([str(wh), "--readers", "1", "--seconds", "1", "--round", "1", "--plain"]) == 0
    found = _summary(capsys.readouterr().out)
    assert found["sessions"] == 0 and found["errors"] > 0 and found["died"] == 0


def test_a_missing_file_is_a_usage_error(tmp_path, capsys):
    assert main([str(tmp_path / "none.duckdb")]) == 2
    assert "no warehouse file" in capsys.readouterr().err


def test_a_reader_that_died_is_exit_code_1_and_says_where(tmp_path, capsys, monkeypatch):
    import benchmarks.close_race as close_race

    wh = _file(tmp_path / "w.duckdb", with_tables=True)
    died = {"rounds": 1, "sessions": 10, "died": 1, "errors": 0, "where": ["Fatal Python error: Segmentation fault"]}
    monkeypatch.setattr(close_race, "run", lambda *args: died)  # a crash cannot be made to order
    assert main([str(wh)]) == 1
    captured = capsys.readouterr()
    assert _summary(captured.out)["died"] == 1 and "Segmentation fault" in captured.err

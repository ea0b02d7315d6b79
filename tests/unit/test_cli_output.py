"""A quiet, honest command line (issue 14), through the CLI on a small DuckDB file: ``dcf sql`` reads the warehouse
and nothing else, runs every statement, renders types as analysts expect; every --format and filter value is
checked; ``dcf --version``; the inbox guard's sentences. (On the sample warehouse: tests/system/test_cli_honest.py.)"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from dcf.cli import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small(tmp_path) -> Path:
    """A DuckDB file with one table of awkward types."""
    path = tmp_path / "small.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE t AS SELECT 1 AS id, DATE '2023-11-01' AS d, TIMESTAMP '2023-11-01 12:34:56' AS ts, "
            "['a,b', 'c\"d'] AS tags, 1/3 AS third, 123456789.123456789::DOUBLE AS big, 12.345::DECIMAL(12,3) AS dec, "
            "NULL::VARCHAR AS nothing, '{\"k\": [1, 2]}'::JSON AS doc, 0.1::FLOAT AS f32"
        )
    return path


def dcf(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def one_error_line(result) -> str:
    """The command failed the way dcf fails: exit 2, one 'error:' line on stderr, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# -- 1. dcf sql touches no file -------------------------------------------------------------------------------------
OUTSIDE = [
    "COPY t TO '{tmp}/x.csv'",
    "COPY (SELECT 1) TO '{tmp}/x.parquet' (FORMAT parquet)",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM 'data.csv'",
    "SELECT * FROM glob('/etc/*')",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "EXPORT DATABASE '{tmp}/export'",
    "SET enable_external_access = true",
    "SET enable_external_access = true; SELECT * FROM read_text('/etc/hostname')",
    "SET profiling_output = '{tmp}/profile.json'",  # only the locked configuration refuses this one
    "SET allowed_directories = ['/']",
]


@pytest.mark.parametrize("statement", OUTSIDE)
def test_sql_cannot_reach_the_file_system(small, tmp_path, statement):
    result = dcf("sql", statement.format(tmp=tmp_path), "--warehouse", str(small))
    line = one_error_line(result)
    assert "query refused" in line and "reads the warehouse and nothing else" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.duckdb"], "nothing was written beside it"


def test_sql_still_reads_and_refuses_writes(small):
    ok = dcf("sql", "SELECT count(*) AS n FROM t", "--warehouse", str(small), "--format", "json")
    assert ok.exit_code == 0 and json.loads(ok.stdout) == [{"n": 1}]
    write = dcf("sql", "DELETE FROM t", "--warehouse", str(small))
    assert "read-only" in one_error_line(write)
    for bad in ("SELEC 1", "SELECT * FROM no_such_table", ";"):
        assert one_error_line(dcf("sql", bad, "--warehouse", str(small)))


def test_sql_sandbox_in_a_fresh_process(small, tmp_path):
    """The installed entry point, as an analyst runs it: the same refusal, no traceback, nothing written."""
    exe = Path(sys.executable).with_name("dcf")
    result = subprocess.run(
        [str(exe), "sql", f"COPY t TO '{tmp_path}/x.csv'", "--warehouse", str(small)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: query refused"), result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "x.csv").exists()


# -- 2. every statement, types as analysts expect ----------------------------------------------------------------------
def test_sql_runs_every_statement(small):
    table = dcf("sql", "SELECT 1 AS first_one; SELECT 2 AS second_one", "--warehouse", str(small))
    assert table.exit_code == 0, table.output
    assert "first_one" in table.stdout and "second_one" in table.stdout
    assert table.stdout.count("1 row(s)") == 2 and table.stdout.count("┏") == 2  # a table each
    as_csv = dcf("sql", "SELECT 1 AS a; SELECT 2 AS b", "--warehouse", str(small), "--format", "csv")
    assert as_csv.stdout == "a\n1\n\nb\n2\n"
    as_json = dcf("sql", "SELECT 1 AS a; SELECT 2 AS b", "--warehouse", str(small), "--format", "json")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [[{"a": 1}], [{"b": 2}]]
    failed = dcf("sql", "SELECT 1; SELECT * FROM nowhere", "--warehouse", str(small))
    assert "statement 2 of 2" in one_error_line(failed)


def test_sql_json_types(small):
    result = dcf("sql", "FROM t", "--warehouse", str(small), "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["d"] == "2023-11-01" and row["ts"] == "2023-11-01T12:34:56"
    assert row["tags"] == ["a,b", 'c"d'] and row["doc"] == {"k": [1, 2]} and row["nothing"] is None
    assert row["third"] == 1 / 3 and row["big"] == 123456789.123456789  # every digit
    assert '"dec": 12.345' in result.stdout and row["f32"] == 0.1


def test_sql_csv_types(small):
    result = dcf("sql", "FROM t", "--warehouse", str(small), "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["d"] == "2023-11-01" and row["ts"] == "2023-11-01T12:34:56"
    assert json.loads(row["tags"]) == ["a,b", 'c"d']  # a list is JSON text in its cell
    assert float(row["third"]) == 1 / 3 and float(row["big"]) == 123456789.123456789
    assert row["dec"] == "12.345" and row["nothing"] == "" and row["f32"] == "0.1"


def test_sql_table_rounds_floats_and_shows_dates_plainly(small):
    result = dcf("sql", "FROM t", "--warehouse", str(small))
    assert result.exit_code == 0, result.output
    assert "2023-11-01 " in result.stdout and "2023-11-01 00:00:00" not in result.stdout
    assert "0.3333" in result.stdout and "0.33333333" not in result.stdout
    assert "123456789.12" in result.stdout and "123456789.1234" not in result.stdout


# -- 3 and 4. formats and filters name their valid values ------------------------------------------------------------
@pytest.mark.parametrize(
    "args, named",
    [
        (["sql", "SELECT 1", "--format", "xml"], "table, csv, json"),
        (["status", "--format", "yaml"], "table, csv, json"),
        (["failures", "--format", "html"], "table, csv, json"),
        (["unmapped", "--format", "md"], "table, csv, json"),
        (["rollback", "--list", "--format", "tsv"], "table, csv, json"),
        (["unmapped", "--kind", "colour"], "category, country, currency, stage"),
        (["failures", "--agency", "XYZ"], "GAMI, GIP, MOD"),
        (["failures", "--rule", "no_such_rule"], "country_unknown"),
        (["failures", "--status", "closed"], "open, resolved, all"),
        (["report", "--out", "r.html", "--stage", "paid"], "allocated, committed, obligated, disbursed"),
    ],
)
def test_unknown_values_name_the_valid_ones(small, args, named):
    line = one_error_line(dcf(*args, "--warehouse", str(small)))
    assert "choose one of" in line and named in line, line


def test_format_of_rollback_only_lists(small):
    """'dcf rollback --format json' would roll back where a script meant to list: refused."""
    assert "--list" in one_error_line(dcf("rollback", "--format", "json", "--warehouse", str(small)))


# -- 5. --version ----------------------------------------------------------------------------------------------------------
def test_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    result = dcf("--version")
    assert result.exit_code == 0 and result.stdout == f"dcf {project['version']}\n"
    exe = Path(sys.executable).with_name("dcf")
    installed = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0 and installed.stdout.strip() == f"dcf {project['version']}"


# -- 6. the inbox guard ----------------------------------------------------------------------------------------------------
def test_inbox_guard_sentences(tmp_path):
    from flows.discover import inbox_warnings
    from schemas.sources import load_sources

    sources = [s for s in load_sources(ROOT / "sources") if s.agency in ("MOD", "GAMI")]
    inbox = tmp_path / "inbox"
    for folder in ("gami", "MOD", "misc", ".snapshot"):
        (inbox / folder).mkdir(parents=True)
    (inbox / "MOD_budget_FY2026.xlsx").write_bytes(b"")
    (inbox / "MANIFEST.json").write_text("{}")
    warnings = inbox_warnings(inbox, sources)
    assert len(warnings) == 3, warnings
    assert f"{inbox / 'MOD'} is not read" in warnings[0] and str(inbox / "mod") in warnings[0]
    assert f"{inbox / 'misc'} matches no source" in warnings[1] and "gami/, mod/" in warnings[1]
    assert "MOD_budget_FY2026.xlsx" in warnings[2] and str(inbox / "mod") in warnings[2]

    deep = tmp_path / "data" / "inbox" / "mod"
    deep.mkdir(parents=True)
    (deep / "MOD_budget_FY2024.xlsx").write_bytes(b"")
    (too_deep,) = inbox_warnings(deep, sources)
    assert "one level too deep" in too_deep and str(deep.parent) in too_deep

    correct = tmp_path / "correct"
    for folder in ("gami", "mod"):
        (correct / folder).mkdir(parents=True)
    (correct / "MANIFEST.json").write_text("{}")
    assert inbox_warnings(correct, sources) == []
    assert inbox_warnings(tmp_path / "empty-and-missing", sources) == []


def test_bind_inlines_parameters_as_sql_literals():
    """The read-only commands inline their filter values (DuckDB's parameter binding imports pandas): quotes are
    doubled, numbers stay numbers, None is NULL, and a value never becomes SQL."""
    from dcf.commands.common import bind

    sql = bind("SELECT ? AS a, ? AS b, ? IS NULL AS c", ["O'Neil'); DROP TABLE x; --", 3, None])
    assert sql == "SELECT 'O''Neil''); DROP TABLE x; --' AS a, 3 AS b, NULL IS NULL AS c"
    assert duckdb.connect().execute(sql).fetchone() == ("O'Neil'); DROP TABLE x; --", 3, True)
    with pytest.raises(ValueError, match="2 placeholder"):
        bind("SELECT ?, ?", [1])
    with pytest.raises(TypeError):
        bind("SELECT ?", [1.5])

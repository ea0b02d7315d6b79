"""Every CLI command's --help carries an example (GUIDE practice 10)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dcf.cli import app

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_there_are_commands():
    assert {"run", "status", "failures", "sample"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_example(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example" in result.output


def test_status_without_warehouse_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["status", "--warehouse", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2
    assert "no warehouse" in result.output and "Traceback" not in result.output

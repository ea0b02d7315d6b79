"""What dcf run prints from each log record, by verbosity (dcf/commands/run_output.py): exact lines."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from dcf.commands.run_output import MAX_LINE, NORMAL, QUIET, VERBOSE, RunConsoleHandler, shown_at


def record(level: int, message: str, tag: str | None = None, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("prefect.task_runs", level, __file__, 1, message, None, None)
    if tag:
        rec.dcf = tag
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


@pytest.mark.parametrize(
    ("level", "tag", "quiet", "normal", "verbose"),
    [
        (logging.INFO, None, False, False, True),  # Prefect's own "Finished in state Completed()"
        (logging.INFO, "line", False, True, True),  # one file's counts
        (logging.INFO, "stage", False, False, True),  # what the run does now: the bar's text
        (logging.WARNING, "row", False, False, True),  # one failing row
        (logging.WARNING, None, False, True, True),  # a refused entry, a control total
        (logging.ERROR, None, True, True, True),  # a file that failed
        (logging.DEBUG, "line", False, False, False),
    ],
)
def test_what_each_verbosity_shows(level, tag, quiet, normal, verbose):
    rec = record(level, "x", tag)
    assert [shown_at(rec, v) for v in (QUIET, NORMAL, VERBOSE)] == [quiet, normal, verbose]


def printed(level: int, *records: logging.LogRecord, stages: list | None = None) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=300, color_system=None)
    handler = RunConsoleHandler(console, level, stages.append if stages is not None else None)
    for rec in records:
        handler.emit(rec)
    return buffer.getvalue()


def test_default_lines_are_plain_with_a_level_word_and_markup_is_text():
    assert printed(NORMAL, record(logging.INFO, "GAMI/a.csv [csv]: 3 read", "line")) == "GAMI/a.csv [csv]: 3 read\n"
    assert printed(NORMAL, record(logging.WARNING, "refused, not read: x")) == "warning: refused, not read: x\n"
    assert printed(NORMAL, record(logging.ERROR, "SANG/[bold red]b.xlsx: FAILED [/b]")) == (
        "error: SANG/[bold red]b.xlsx: FAILED [/b]\n"
    )


def test_verbose_lines_name_the_run_and_the_level():
    line = printed(VERBOSE, record(logging.WARNING, "row 3: bad", "row", task_run_name="process GAMI/a.csv"))
    assert line.endswith(" | WARNING | Task run 'process GAMI/a.csv' - row 3: bad\n")
    assert printed(VERBOSE, record(logging.INFO, "go", flow_run_name="cream-toucanet")).endswith(
        " | INFO    | Flow run 'cream-toucanet' - go\n"
    )


def test_stages_move_the_bar_and_control_characters_cannot_reach_the_terminal():
    stages: list[str] = []
    assert printed(NORMAL, record(logging.INFO, "publishing: 2 files", "stage"), stages=stages) == ""
    assert stages == ["publishing: 2 files"]
    assert printed(NORMAL, record(logging.ERROR, "a\x1b[31mred\rb")) == "error: a\\x1b[31mred\\rb\n"


def test_a_huge_line_is_cut_saying_how_long_it_was():
    line = printed(NORMAL, record(logging.WARNING, "v" * 32_000))
    assert line == "warning: " + "v" * MAX_LINE + "… (32,000 characters; the whole line is in the run log)\n"

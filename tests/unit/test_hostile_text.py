"""Hostile text (issue "hostile input"): what a file name or a cell says is printed literally, and what dcf writes as
CSV is safe to open in a spreadsheet.

On screen, rich markup in the data (``[/b]``, ``[bold red]``) is text, not markup (no MarkupError, nothing hidden),
and control characters (an ANSI ``\\x1b[31m``, a C1 ``\\x9b``, a carriage return) are shown as backslash escapes,
Arabic and the rest of Unicode as they are. In CSV, text starting with ``=``, ``+``, ``-`` or ``@`` (after leading
blanks) that is not a number gets a leading ``'``; a field with a comma, quote, CR or LF is quoted."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dcf.cli import app
from dcf.output import Result, csv_text, rich_table, screen, screen_text, write, write_csv
from flows.names import shown

ROOT = Path(__file__).resolve().parents[2]
ESC = "\x1b"
ARABIC = "ميزانية\u200c الدفاع"  # with a zero-width non-joiner: ordinary Arabic text, kept as it is


def dcf(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def printed(*renderables) -> str:
    """What rich prints for ``renderables`` (a console that is not a terminal: no colour codes of its own)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None, highlight=False)
    for r in renderables:
        console.print(r)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- names and values
@pytest.mark.parametrize(
    "text,expected",
    [
        ("SANG_\x1b[31mred.xlsx", "SANG_\\x1b[31mred.xlsx"),
        ("a\x07b\x00c\x7fd", "a\\x07b\\x00c\\x7fd"),
        ("\x9b2Jcleared", "\\x9b2Jcleared"),  # C1 CSI: an escape sequence in one character
        ("GAMI/sub[/b]x.csv", "GAMI/sub[/b]x.csv"),  # markup is rich's business, not a name's
        (ARABIC + ".xlsx", ARABIC + ".xlsx"),
        ("two\nlines\tand\rback", "two\nlines\tand\rback"),  # line breaks and tabs kept by default (one_line's job)
        ("MOD_budget_\udcff.xlsx", "MOD_budget_\\xff.xlsx"),  # a byte that is not UTF-8, as before
    ],
)
def test_a_name_shows_control_characters_as_escapes(text, expected):
    assert shown(text) == expected
    assert shown(Path("/inbox/sang") / text.replace("/", "_")) == expected.replace("/", "_")


def test_shown_escapes_line_breaks_and_tabs_unless_kept():
    assert shown("a\nb\tc\rd", keep="") == "a\\nb\\tc\\rd"
    assert shown("a\nb\r\x1b", keep="\n") == "a\nb\\r\\x1b"


@pytest.mark.parametrize(
    "text,expected_source,expected_printed",
    [
        ("GAMI/sub[/b]x.csv", "GAMI/sub\\[/b]x.csv", "GAMI/sub[/b]x.csv"),
        ("SANG_[bold red]red.xlsx", "SANG_\\[bold red]red.xlsx", "SANG_[bold red]red.xlsx"),
        ("value [/x] \x1b[31mred", "value \\[/x] \\x1b[31mred", "value [/x] \\x1b[31mred"),
        (ARABIC, ARABIC, ARABIC),
    ],
)
def test_screen_text_is_printed_literally(text, expected_source, expected_printed):
    assert screen_text(text) == expected_source
    assert printed(screen_text(text)) == expected_printed + "\n"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("ends in a backslash\\", "ends in a backslash\\"),
        ("[bold red]\x1b[31mred\r[/]", "[bold red]\\x1b[31mred\\r[/]"),
        ("two\nlines", "two\nlines"),
    ],
)
def test_screen_prints_text_as_it_is(text, expected):
    assert printed(screen(text)) == expected + "\n"
    assert printed(screen(text, keep="")) == expected.replace("\n", "\\n") + "\n"


def test_a_table_shows_names_and_values_literally():
    result = Result(
        ["file", "value [/b]"],
        ["VARCHAR", "VARCHAR"],
        [
            ("GAMI/sub[/b]x.csv", "[bold red]loud"),
            ("SANG_[bold red]red.xlsx", "\x1b[31mred\x1b[0m"),
            (ARABIC, "cr\rinside"),
            ("ends in a backslash\\", "[b]bold?[/b]\\"),
        ],
        title="files [/i]",
    )
    text = printed(rich_table(result, box=None, show_header=True))
    assert ESC not in text and "\r" not in text
    lines = [line.rstrip() for line in text.splitlines()]
    assert lines[0] == "files [/i]"
    assert re.split(r"\s{2,}", lines[1].strip()) == ["file", "value [/b]"]
    assert [re.split(r"\s{2,}", line.strip()) for line in lines[2:]] == [
        ["GAMI/sub[/b]x.csv", "[bold red]loud"],
        ["SANG_[bold red]red.xlsx", "\\x1b[31mred\\x1b[0m"],
        [ARABIC, "cr\\rinside"],
        ["ends in a backslash\\", "[b]bold?[/b]\\"],
    ]


# ---------------------------------------------------------------------------------------------------------- CSV
@pytest.mark.parametrize(
    "text,expected",
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ('=HYPERLINK("http://x.example","click")', '\'=HYPERLINK("http://x.example","click")'),
        ("@SUM(1,1)", "'@SUM(1,1)"),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("  =1+1", "'  =1+1"),
        ("\t=1+1", "'\t=1+1"),
        ("\r\n@SUM(1)", "'\r\n@SUM(1)"),
        ("-12.5", "-12.5"),  # text that is a plain number is read as that number
        ("+3", "+3"),
        (" -1e3 ", " -1e3 "),
        ("-", "'-"),
        ("a=b", "a=b"),
        ("", ""),
        (ARABIC, ARABIC),
    ],
)
def test_formula_like_text_is_neutralised(text, expected):
    assert csv_text(text) == expected


def test_csv_is_safe_to_open_and_one_record_per_row():
    result = Result(
        ["label", "amount", "=header"],
        ["VARCHAR", "DOUBLE", "VARCHAR"],
        [
            ("=cmd|' /C calc'!A0", -12.5, "plain"),
            ('=HYPERLINK("http://x.example","click")', -3, None),
            ("@SUM(1,1)", Decimal("-1.50"), "+1+1"),
            ("-1+1", 0.0, " \t-2+3"),
            ("cr\rinside", 1.0, "lf\nand, comma"),
            ("-7", -7, ARABIC),
        ],
    )
    stream = io.StringIO()
    write_csv(result, stream)
    assert stream.getvalue().split("\n") == [
        "label,amount,'=header",
        "'=cmd|' /C calc'!A0,-12.5,plain",
        '"\'=HYPERLINK(""http://x.example"",""click"")",-3,',
        "\"'@SUM(1,1)\",-1.50,'+1+1",
        "'-1+1,0.0,' \t-2+3",
        '"cr\rinside",1.0,"lf',
        'and, comma"',
        f"-7,-7,{ARABIC}",
        "",
    ]
    records = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))
    assert len(records) == 7
    assert records[5] == ["cr\rinside", "1.0", "lf\nand, comma"]
    assert records[2] == ['\'=HYPERLINK("http://x.example","click")', "-3", ""]


def test_a_lone_empty_field_is_not_an_empty_line():
    stream = io.StringIO()
    write_csv(Result(["x"], ["VARCHAR"], [(None,), ("",)]), stream)
    assert stream.getvalue() == 'x\n""\n""\n'


def test_every_csv_format_goes_through_the_safe_writer():
    stream = io.StringIO()
    write([Result(["a"], ["VARCHAR"], [("=1+1",)]), Result(["b"], ["INTEGER"], [(-1,)])], "csv", None, stream)
    assert stream.getvalue() == "a\n'=1+1\n\nb\n-1\n"


def test_dcf_sql_csv_is_safe_and_says_so(tmp_path):
    path = tmp_path / "small.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE t AS SELECT '=cmd|'' /C calc''!A0' AS a, -1 AS n, 'x' || chr(13) || 'y' AS cr, "
            "-2.5::DECIMAL(4,1) AS d, '-1' AS numeric_text"
        )
    result = dcf("sql", "FROM t", "--warehouse", str(path), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "a,n,cr,d,numeric_text\n'=cmd|' /C calc'!A0,-1,\"x\ry\",-2.5,-1\n"
    assert list(csv.reader(io.StringIO(result.stdout, newline="")))[1] == [
        "'=cmd|' /C calc'!A0",
        "-1",
        "x\ry",
        "-2.5",
        "-1",
    ]
    helped = " ".join(dcf("sql", "--help").stdout.replace("│", " ").split())
    assert "CSV is safe to open in a spreadsheet: text that would run as a formula" in helped


# ------------------------------------------------------------------------------------------------- dcf failures
def _failures_table() -> str:
    ddl = (ROOT / "warehouse" / "sql" / "001_tables.sql").read_text(encoding="utf-8")
    match = re.search(r"CREATE TABLE IF NOT EXISTS audit_validation_failure \(.*?\n\);", ddl, re.S)
    assert match, "audit_validation_failure is no longer in 001_tables.sql"
    return match.group(0)


@pytest.fixture
def hostile_failures(tmp_path) -> Path:
    """A warehouse whose only failures name hostile files and quote hostile cells."""
    path = tmp_path / "wh.duckdb"
    rows = [
        ("f1", "GAMI/sub[/b]x.csv", "GAMI", "Sheet [/b]", 7, "C7", "amount", "12[/x]", "amount_not_number",
         "amount is not a number [/i]", "[bold red]12\\"),
        ("f2", "SANG/SANG_[bold red]red.xlsx", "SANG", "Data", 3, "B3", "country", "\x1b[31mFrance\x1b[0m",
         "country_unknown", "country '\x1b[31mFrance' is not known", "France\x1b[2J[/x]\n[/]"),
        ("f3", "SANG/SANG_\x1b[31mesc.xlsx", "SANG", "Data", None, None, None, None, "file_empty",
         "the file holds no rows", None),
    ]  # fmt: skip
    with duckdb.connect(str(path)) as con:
        con.execute(_failures_table())
        for fid, key, agency, sheet, row, cell, column, value, rule, message, suggestion in rows:
            con.execute(
                "INSERT INTO audit_validation_failure (failure_id, file_key, file_hash, agency_code, sheet, excel_row, "
                "cell, source_column, value, rule, severity, message, suggestion, status, first_seen_load, "
                "last_seen_load, first_seen_at, last_seen_at) VALUES (?, ?, 'h', ?, ?, ?, ?, ?, ?, ?, 'block', ?, ?, "
                "'open', 'L1', 'L1', TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-01')",
                [fid, key, agency, sheet, row, cell, column, value, rule, message, suggestion],
            )
    return path


def test_dcf_failures_prints_hostile_text_literally(hostile_failures):
    result = dcf("failures", "--warehouse", str(hostile_failures))
    assert result.exit_code == 0, (result.output, result.exception)
    assert ESC not in result.output
    lines = result.stdout.splitlines()
    assert lines == [
        "",
        "GAMI/sub[/b]x.csv  (sheet Sheet [/b])",
        "  row 7, cell C7 amount = '12[/x]': amount is not a number [/i] [amount_not_number]",
        "      did you mean: [bold red]12\\?",
        "",
        "SANG/SANG_\\x1b[31mesc.xlsx  (sheet Data)",
        "  whole file: the file holds no rows [file_empty]",
        "",
        "SANG/SANG_[bold red]red.xlsx  (sheet Data)",
        "  row 3, cell B3 country = '\\x1b[31mFrance\\x1b[0m': country '\\x1b[31mFrance' is not known [country_unknown]",
        "      did you mean: France\\x1b[2J[/x]\\n[/]?",
        "",
        "3 failure(s) shown",
    ]


def test_dcf_failures_csv_of_hostile_text(hostile_failures):
    result = dcf("failures", "--warehouse", str(hostile_failures), "--format", "csv")
    assert result.exit_code == 0, result.output
    records = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    assert [r["file"] for r in records] == [
        "GAMI/sub[/b]x.csv",
        "SANG/SANG_\x1b[31mesc.xlsx",
        "SANG/SANG_[bold red]red.xlsx",  # CSV carries the data as it is (for scripts), made formula-safe only
    ]

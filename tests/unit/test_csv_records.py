"""Malformed CSV records never cost the file: a record with too few or too many fields, a stray line break or a quote
left open is set aside with its line number(s) and raw text (a quarantined row, rule record_malformed), the other
records load, and the counts reconcile (flows/extract.py read_csv, flows/process.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import preflight
from flows.extract import MAX_RECORD_LINES, read_csv
from flows.process import FileTask, describe, process_file
from schemas.sources import FileKind, FileSpec, HeaderSpec

HEADER = b"Code;Country;Cat;Year;Amount"


def spec(**kw) -> FileSpec:
    return FileSpec(
        kind=FileKind.budget,
        pattern="*.csv",
        encoding=kw.pop("encoding", "utf-8"),
        delimiter=";",
        header=kw.pop("header", HeaderSpec(row=1)),
        default_currency="EUR",
        default_stage="committed",
        columns={
            "program_code": ["Code"],
            "partner_country": ["Country"],
            "category": ["Cat"],
            "fiscal_year": ["Year"],
            "amount": ["Amount"],
        },
        **kw,
    )


def record(i: int) -> bytes:
    return b"P%d;Italy;Training;2024;%d" % (i, i)


def write(tmp_path: Path, lines: list[bytes], end: bytes = b"\n", name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(end.join(lines) + end)
    return path


def rows_of(extracted) -> list[int]:
    return extracted.frame["excel_row"].tolist()


def malformed_of(extracted) -> list[tuple[int, int, int, int]]:
    """(excel_row, line, last_line, fields) of each record set aside."""
    return [(m.excel_row, m.line, m.last_line, m.fields) for m in extracted.malformed]


# ------------------------------------------------------------------------------------------------ field counts
def test_a_well_formed_file_reads_every_record_at_its_line(tmp_path):
    x = read_csv(write(tmp_path, [HEADER, *(record(i) for i in range(1, 6))]), spec())
    assert rows_of(x) == [2, 3, 4, 5, 6] and x.malformed == []
    assert x.frame["program_code"].tolist() == ["P1", "P2", "P3", "P4", "P5"]


def test_too_many_and_too_few_fields_are_set_aside_with_their_line_and_text(tmp_path):
    lines = [HEADER, record(1), record(2) + b";extra", record(3), b"P4;Italy;Training", record(5)]
    x = read_csv(write(tmp_path, lines), spec())
    assert rows_of(x) == [2, 4, 6]
    assert malformed_of(x) == [(3, 3, 3, 6), (5, 5, 5, 3)]
    extra, short = x.malformed
    assert extra.text == "P2;Italy;Training;2024;2;extra" and short.text == "P4;Italy;Training"
    assert extra.message == (
        "Line 3 has 6 field(s) where the header has 5: 'P2;Italy;Training;2024;2;extra'; correct the record in the "
        "file and send it again"
    )
    assert short.message.startswith("Line 5 has 3 field(s) where the header has 5: 'P4;Italy;Training'")


def test_a_stray_line_break_is_told_as_one_record_broken_in_two(tmp_path):
    lines = [HEADER, record(1), b"P2;Ita", b"ly;Training;2024;2", record(3)]
    x = read_csv(write(tmp_path, lines), spec())
    assert rows_of(x) == [2, 5]
    assert malformed_of(x) == [(3, 3, 3, 2), (4, 4, 4, 4)]
    first, second = x.malformed
    assert first.message == (
        "Lines 3-4 look like one record broken in two by a line break (line 3 has 2 field(s), line 4 has 4, the "
        "header 5); line 3 reads 'P2;Ita'; join the two lines in the file and send it again"
    )
    assert second.message.startswith("Lines 3-4 look like one record broken in two") and "'ly;Training;2024;2'" in (
        second.message
    )


def test_crlf_lines_with_a_stray_lf_and_a_last_line_without_its_end(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"\r\n".join([HEADER, record(1), b"P2;Italy\n;Training;2024;2", record(3), b"P4;Italy"]))
    x = read_csv(path, spec())
    assert rows_of(x) == [2, 5]
    assert malformed_of(x) == [(3, 3, 3, 2), (4, 4, 4, 4), (6, 6, 6, 2)]
    assert x.malformed[2].message.startswith("Line 6 has 2 field(s) where the header has 5: 'P4;Italy'")


def test_a_latin1_register_with_a_preamble_keeps_physical_line_numbers(tmp_path):
    """The report: latin-1, a dozen preamble lines, a few records broken across two lines."""
    preamble = [b"Registre des cr\xe9dits", *(b"note %d;;" % i for i in range(1, 11)), b""]
    body = [record(i).replace(b"Italy", b"C\xf4te d'Ivoire") for i in range(1, 101)]
    body[9:10] = [b"P10;C\xf4te d'Ivoire;Tra", b"ining;2024;10"]  # lines 23-24
    body[50] = body[50] + b";;"  # line 64
    path = write(tmp_path, [*preamble, HEADER, *body])
    x = read_csv(path, spec(encoding="latin-1", header=HeaderSpec(detect=True)))
    assert x.header_row == 13
    assert malformed_of(x) == [(23, 23, 23, 3), (24, 24, 24, 3), (64, 64, 64, 7)]
    assert x.malformed[0].text == "P10;Côte d'Ivoire;Tra"
    assert len(x.frame) == 98 and rows_of(x) == [r for r in range(14, 115) if r not in (23, 24, 64)]
    assert x.frame["partner_country"].eq("Côte d'Ivoire").all()


def test_every_record_malformed_leaves_an_empty_frame_not_a_failed_read(tmp_path):
    x = read_csv(write(tmp_path, [HEADER, b"a;b", b"c", b"d;e;f;g;h;i"]), spec())
    assert len(x.frame) == 0 and [m.excel_row for m in x.malformed] == [2, 3, 4]


# ------------------------------------------------------------------------------------------------------ quotes
def test_a_quote_left_open_costs_its_line_not_the_rest_of_the_file(tmp_path):
    n = 30_000  # over 1 MiB after the quote: more than one of pyarrow's blocks
    body = [record(i) for i in range(1, n + 1)]
    body[99] = b'"' + body[99]  # line 101, no other quote in the file
    x = read_csv(write(tmp_path, [HEADER, *body]), spec())
    assert malformed_of(x) == [(101, 101, 101, 1)]
    assert len(x.frame) == n - 1 and rows_of(x) == [r for r in range(2, n + 2) if r != 101]
    assert x.frame["program_code"].iloc[99] == "P101"
    message = x.malformed[0].message
    assert message.startswith(
        f'Line 101 opens a quoted value (") that is not closed before line {n + 1}, so lines 101-{n + 1} were '
        "read as one record; line 101 is held back and the lines after it were read on their own: "
        "'\"P100;Italy;Training;2024;100'"
    )


def test_a_quote_left_open_before_a_record_of_the_right_width_is_still_cut(tmp_path):
    """A quote opening the last field swallows the lines after it into one field: the record has the header's number
    of fields, so only the number of lines it runs over tells it apart."""
    body = [record(i) for i in range(1, 41)]
    body[4] = b'P5;Italy;Training;2024;"5'  # line 6
    x = read_csv(write(tmp_path, [HEADER, *body]), spec())
    assert malformed_of(x) == [(6, 6, 6, 5)]
    assert rows_of(x) == [r for r in range(2, 42) if r != 6]


def test_a_quote_closed_a_few_lines_later_sets_those_lines_aside_as_one_record(tmp_path):
    """The quote on line 4 runs to the quote on line 6: three lines read as one record that happens to have the
    header's five fields. A value over several lines that holds the delimiter is told apart from a legitimate one."""
    body = [record(i) for i in range(1, 11)]
    body[2] = b'P3;"Italy;Training;2024;3'  # line 4
    body[4] = b'P5;"Italy";Training;2024;5'  # line 6
    x = read_csv(write(tmp_path, [HEADER, *body]), spec())
    assert malformed_of(x) == [(4, 4, 6, 5)]
    [m] = x.malformed
    assert m.text == 'P3;"Italy;Training;2024;3\nP4;Italy;Training;2024;4\nP5;"Italy";Training;2024;5'
    assert m.message.startswith(
        "Lines 4-6 were read as one record whose quoted value runs over 3 lines and holds the column delimiter, as "
        'when a quote (") is left open: \'P3;"Italy;Training;2024;3⏎P4;Italy;Training;2024;4⏎P5;'
    )
    assert rows_of(x) == [2, 3, 5, 6, 7, 8, 9]  # records 5-9 (Excel's rows: it also reads lines 4-6 as one)
    assert x.frame["program_code"].tolist() == ["P1", "P2", "P6", "P7", "P8", "P9", "P10"]


def test_a_record_with_a_quoted_line_break_and_a_field_too_many_is_set_aside_whole(tmp_path):
    lines = [HEADER, record(1), b'P2;"Italy', b'and more";Training;2024;2;extra', record(3)]
    x = read_csv(write(tmp_path, lines), spec())
    assert malformed_of(x) == [(3, 3, 4, 6)] and rows_of(x) == [2, 4]
    assert x.malformed[0].message.startswith(
        "Lines 3-4 were read as one record (a quoted value runs over 2 lines) with 6 field(s) where the header has 5"
    )


def test_quoted_line_breaks_are_values_and_rows_stay_the_records_excel_shows(tmp_path):
    lines = [HEADER, b'P1;"Italy', b'and more";Training;2024;1', b"P2;Italy;Training", record(3)]
    x = read_csv(write(tmp_path, lines), spec())
    assert rows_of(x) == [2, 4] and x.frame["partner_country"].iloc[0] == "Italy\nand more"
    # record 3 (Excel's row 3) starts on line 4 of the file
    assert malformed_of(x) == [(3, 4, 4, 3)]
    assert x.malformed[0].message.startswith("Line 4 has 3 field(s)")


def test_a_legitimate_multi_line_value_up_to_the_bound_is_not_cut(tmp_path):
    value = b"\n".join([b"line"] * MAX_RECORD_LINES)
    x = read_csv(write(tmp_path, [HEADER, b'P1;Italy;"' + value + b'";2024;1', record(2)]), spec())
    assert rows_of(x) == [2, 3] and x.malformed == []


# ------------------------------------------------------------------------------------------------- counting
@pytest.mark.parametrize(
    "data,expected",
    [
        (b"h\na\nb\n", (3, 3)),
        (b'h\n"a\nstill a"\nb\n', (3, 4)),
        (b'h\n"open\nx\ny\n', (2, 4)),  # a quote left open: one record to the end
        (b"h\na;b\n\nc;d;e", (4, 4)),  # field counts do not matter to the count
    ],
)
def test_records_and_lines_are_counted_apart(tmp_path, data, expected):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert preflight.count_records_and_lines(path, "utf-8", ";") == expected
    assert preflight.count_text_records(data.decode(), ";") == expected
    assert preflight.count_records(path, "utf-8", ";") == expected[0]


def test_a_quoted_field_over_the_csv_modules_own_limit_is_counted_not_refused(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b'h\n"' + b"x" * 200_000 + b"\n" + b"y\n" * 10)
    assert preflight.count_records_and_lines(path, "utf-8", ";") == (2, 12)


# ----------------------------------------------------------------------------------- through process_file
def test_malformed_records_are_quarantined_and_the_counts_reconcile(sample_inbox, sources, reference, tmp_path):
    lines = (sample_inbox[0] / "gami" / "GAMI_budget_2024.csv").read_bytes().split(b"\n")[:12]  # header + 11
    lines[3] += b";extra"  # line 4
    lines[7] = lines[7].rsplit(b";", 2)[0]  # line 8
    path = write(tmp_path, lines, end=b"\n", name="GAMI_budget_2024.csv")
    gami = next(s for s in sources if s.agency == "GAMI")
    digest, size, mtime = describe(path)
    batch = process_file(
        FileTask(path, "GAMI/x.csv", digest, "t", size, mtime, gami, gami.spec_for(path.name)), reference
    )
    assert batch.status == "loaded", batch.message
    c = batch.counts
    assert c["rows_read"] == 11 == c["rows_loaded"] + c["rows_quarantined"] + c["rows_skipped"]
    malformed = batch.failures[batch.failures["rule"] == "record_malformed"]
    assert malformed["excel_row"].tolist() == [4, 8]
    assert malformed["column"].isna().all() and (malformed["severity"] == "block").all()
    assert malformed["value"].tolist() == [lines[3].decode(), lines[7].decode()]
    assert malformed["message"].iloc[0].startswith("Line 4 has 9 field(s) where the header has 8")
    assert {4, 8} <= set(batch.quarantined["excel_row"])
    held = batch.quarantined.set_index("excel_row").loc[[4, 8]]
    assert held.isna().all().all()  # which field is which column cannot be told: the raw text is the failure's value
    seen = [*batch.rows["excel_row"], *batch.quarantined["excel_row"], *batch.skipped["excel_row"]]
    assert sorted(seen) == list(range(2, 13))

"""One file can never stop the night: each escape the hostile-file trial found, pinned by a test that fails without
its fix (dates out of range, a blank stage cell, the catch-all, the CSV field limit, rows lost by the CSV reader,
names that are not UTF-8, limits before expansion, links and FIFOs)."""

from __future__ import annotations

import logging
import os
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from flows import preflight
from flows.discover import find_files, refused_entries
from flows.limits import Limits
from flows.process import FileTask, describe_seen, process_file
from transforms import dates
from transforms.failures import failures_where
from transforms.standardise import FileContext, standardise_programs

S = pd.StringDtype("pyarrow")
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def task_for(path: Path, source, key: str | None = None) -> FileTask:
    digest, size, mtime, seen = describe_seen(path)
    return FileTask(
        path,
        key or f"{source.agency}/{path.name}",
        digest,
        "t",
        size,
        mtime,
        source,
        source.spec_for(path.name),
        seen=seen,
    )


def source(sources, agency: str):
    return next(s for s in sources if s.agency == agency)


# ------------------------------------------------------------------------------------------------------ dates
def test_dates_outside_the_nanosecond_range_are_flagged_not_raised():
    cells = pd.Series(
        ["150000", "0001-01-02 00:00:00", "2300-01-01", "2958465", "2024-01-05", "45000", "x", None], dtype=S
    )
    parsed = dates.read_dates(cells)
    assert parsed.out_of_range.tolist() == [True, True, True, True, False, False, False, False]
    assert parsed.dates.dtype == "datetime64[ns]" and parsed.dates.iloc[:4].isna().all()
    assert parsed.dates.iloc[4] == pd.Timestamp("2024-01-05") and parsed.dates.iloc[5] == pd.Timestamp("2023-03-15")
    assert dates.parse_dates(cells)[0].iloc[:4].isna().all()  # the two-value form still works


def test_a_date_out_of_range_is_a_row_failure(reference):
    raw = (
        pd.DataFrame(
            [
                {"program_code": "P1", "name_en": "One", "start_date": "150000", "end_date": "2024-01-01"},
                {"program_code": "P2", "name_en": "Two", "start_date": "2020-01-01", "end_date": "2300-01-01"},
                {"program_code": "P3", "name_en": "Three", "start_date": "2020-01-01", "end_date": "2024-01-01"},
            ]
        )
        .astype(S)
        .assign(excel_row=pd.Series([2, 3, 4], dtype="int32"))
    )
    result = standardise_programs(
        raw, FileContext(agency="GIP", source_columns={"start_date": "Start", "end_date": "End"}), reference
    )
    assert list(result.rows["program_code"]) == ["P3"] and list(result.quarantined["excel_row"]) == [2, 3]
    fails = result.failures.set_index("excel_row")
    assert fails.loc[2, "rule"] == "date_out_of_range" and "outside 1677-2262" in fails.loc[2, "message"]
    assert (
        fails.loc[3, "message"]
        == "End '2300-01-01' is a date outside 1677-2262, the range the warehouse can store; correct the date."
    )


# ---------------------------------------------------------------------------------------------- failure messages
def test_a_message_function_may_return_one_sentence_for_every_row():
    frame = pd.DataFrame({"stage": pd.array([None, "x"], dtype=S), "excel_row": [5, 6]})
    out = failures_where(
        frame, pd.Series([True, False]), "stage", "required_missing", lambda r, v: "The 'Stage' cell is empty."
    )
    assert out["message"].tolist() == ["The 'Stage' cell is empty."] and out["excel_row"].tolist() == [5]


def test_a_blank_stage_cell_quarantines_its_row(sample_inbox, sources, reference, tmp_path):
    import openpyxl

    inbox, _ = sample_inbox
    path = tmp_path / "MOF_budget_FY2024.xlsx"
    wb = openpyxl.load_workbook(inbox / "mof" / "MOF_budget_FY2024.xlsx")
    wb["Lines"]["E5"] = None
    wb.save(path)
    batch = process_file(task_for(path, source(sources, "MOF")), reference)
    assert batch.status == "loaded"
    row5 = batch.failures[batch.failures["excel_row"] == 5]
    assert row5["rule"].tolist() == ["required_missing"] and 5 in set(batch.quarantined["excel_row"])


# --------------------------------------------------------------------------------------------------- the last guard
def test_any_error_inside_one_file_becomes_its_failed_batch(sample_inbox, sources, reference, monkeypatch, caplog):
    from dataclasses import replace

    import flows.kinds.table as table

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line of a long library message")

    monkeypatch.setitem(table.KINDS_BY_NAME, "budget", replace(table.BUDGET, standardise=broken))
    inbox, _ = sample_inbox
    with caplog.at_level(logging.DEBUG, logger="dcf.read"):
        batch = process_file(task_for(inbox / "mod" / "MOD_budget_FY2024.xlsx", source(sources, "MOD")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_unreadable"]
    assert (
        batch.message == "MOD_budget_FY2024.xlsx: could not be processed (RuntimeError: boom); the file was not loaded"
    )
    assert any(r.levelno == logging.DEBUG and r.exc_info for r in caplog.records)  # the traceback, for developers


def test_the_guard_covers_reference_workbooks_too(sample_inbox, sources, reference, monkeypatch):
    import flows.kinds.wide as wide

    monkeypatch.setattr(wide, "standardise_workbook", lambda *a: (_ for _ in ()).throw(KeyError("x")))
    inbox, _ = sample_inbox
    path = next((inbox / "sipri").glob("*.xlsx"))
    batch = process_file(task_for(path, source(sources, "SIPRI")), reference)
    assert batch.status == "failed" and "KeyError" in batch.message and len(batch.message) <= 500


# ------------------------------------------------------------------------------------------------------------- CSV
def gami_lines(sample_inbox) -> list[bytes]:
    return (sample_inbox[0] / "gami" / "GAMI_budget_2024.csv").read_bytes().split(b"\n")


def test_a_header_field_over_the_csv_module_limit_fails_the_file(sample_inbox, sources, reference, tmp_path):
    lines = gami_lines(sample_inbox)
    path = tmp_path / "GAMI_budget_wide.csv"
    path.write_bytes(b"\n".join([lines[0] + b";" + b"x" * 140_000, *lines[1:]]))
    batch = process_file(task_for(path, source(sources, "GAMI")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_too_large"]
    assert "DCF_MAX_CELL_CHARS" in batch.message and len(batch.message) <= 500


def test_a_nul_byte_before_the_first_line_end_loses_no_row_unseen(sample_inbox, sources, reference, tmp_path):
    """pyarrow's skip_rows_after_names drops a record after a NUL in the header line; the record count of the
    file itself (counted apart) must disagree and fail the file, never load 159 of 160 rows as if complete."""
    lines = gami_lines(sample_inbox)
    path = tmp_path / "GAMI_budget_nul.csv"
    path.write_bytes(b"\n".join([lines[0] + b"\0", *lines[1:]]))
    batch = process_file(task_for(path, source(sources, "GAMI")), reference)
    assert batch.status == "failed", batch.counts
    assert "holds 160 record(s) below the header but the CSV reader returned 159" in batch.message
    assert "NUL" in batch.message


def test_nul_bytes_inside_cells_keep_every_row(sample_inbox, sources, reference, tmp_path):
    lines = gami_lines(sample_inbox)
    path = tmp_path / "GAMI_budget_nulcells.csv"
    path.write_bytes(b"\n".join([lines[0], *[line.replace(b";", b"\0;", 2) for line in lines[1:]]]))
    batch = process_file(task_for(path, source(sources, "GAMI")), reference)
    c = batch.counts
    assert (
        batch.status == "loaded"
        and c["rows_read"] == 160 == c["rows_loaded"] + c["rows_quarantined"] + c["rows_skipped"]
    )


@pytest.mark.parametrize(
    "data,records",
    [
        (b"h\na\nb\n", 3),
        (b"h\na\nb", 3),
        (b"h\r\na\r\nb\r\n", 3),
        (b"h\ra\rb", 3),
        (b"h\n\n\nb\n", 4),
        (b'h\n"a\nstill a"\nb\n', 3),
        (b'h\r\n"x\r\ny";z\r\n', 2),
        (b"", 0),
    ],
)
def test_records_are_counted_apart_from_the_parser(tmp_path, data, records):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert preflight.count_records(path, "utf-8", ";") == records
    path.write_bytes(data.decode().encode("utf-16"))
    assert preflight.count_records(path, "utf-16", ";") == records


# ------------------------------------------------------------------------------------------------------ file names
@pytest.mark.parametrize("name,agency", [(b"GAMI_budget_\xff\xfe.csv", "GAMI"), (b"MOD_budget_\xe9t\xe9.xlsx", "MOD")])
def test_a_name_that_is_not_utf8_is_read_and_shown_escaped(sample_inbox, sources, reference, tmp_path, name, agency):
    base = {"GAMI": "gami/GAMI_budget_2024.csv", "MOD": "mod/MOD_budget_FY2024.xlsx"}[agency]
    path = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), name)))
    shutil.copyfile(sample_inbox[0] / base, path)
    batch = process_file(task_for(path, source(sources, agency)), reference)
    assert batch.status == "loaded"
    escaped = name.decode("utf-8", "backslashreplace")
    assert batch.file_key == f"{agency}/{escaped}" and batch.path.endswith(escaped)
    batch.file_key.encode("utf-8"), batch.path.encode("utf-8")  # storable (no surrogates)


# ------------------------------------------------------------------------------------------------------- limits
def test_limits_come_from_the_environment_and_refuse_typos():
    assert Limits.from_env({}) == Limits()
    assert Limits.from_env({"DCF_MAX_ROWS": "2_000_000", "DCF_MAX_INFLATE_RATIO": "50.5"}).max_rows == 2_000_000
    with pytest.raises(ValueError, match="DCF_MAX_CELLS"):
        Limits.from_env({"DCF_MAX_CELLS": "lots"})
    with pytest.raises(ValueError, match="DCF_MAX_FILE_BYTES"):
        Limits.from_env({"DCF_MAX_FILE_BYTES": "-1"})


def sheet_zip(path: Path, sheet_xml: str) -> Path:
    from tests.hostile.zipbuild import deflated, write_zip

    write_zip(path, [deflated("xl/worksheets/sheet1.xml", sheet_xml.encode())])
    return path


@pytest.mark.parametrize(
    "cells,expected",
    [
        ('<row r="1"><c r="A1"/></row><row r="1048576"><c r="XFD1048576"/></row>', (1048576, 16384)),
        ('<row r="3"><c r="B3"/><c r="AB3"/></row>', (3, 28)),
        ("<row><c/><c/></row><row><c/></row>", (2, 3)),  # no references: each element is one step on (an upper bound)
        ("<x:row r='7'><x:c r='c7'/></x:row>", (7, 3)),  # prefixed elements, single quotes, lower case
        ('<row r="2"><c r="AAAA2"/></row>', (preflight.BEYOND, preflight.BEYOND)),  # no Excel column has 4 letters
        # leading zeros (calamine reads A0000001 as A1): the last row is the largest number, not the longest
        ('<row r="999999"><c r="XFD999999"/></row><row r="0000001"><c r="A0000001"/></row>', (999999, 16384)),
        # cells without a reference count whatever references lie elsewhere (calamine places each one column on):
        ('<row r="1">' + "<c/>" * 300 + '</row><row r="2">' + '<x r="A2"/>' * 300 + "</row>", (2, 301)),
        ('<row r="1">' + "<c x=' r=\"A1\"'/>" * 300 + "</row>", (1, 301)),  # r= inside another attribute's value
        ('<row r="1">' + '<c r="B1" r="B1"/>' * 300 + "<c/>" * 300 + "</row>", (1, 302)),  # a second r on a cell
        ('<row r="1">' + "<averyveryverylongprefix:c/>" * 300 + "</row>", (1, 300)),  # any prefix is a cell's
        ('<row r="1"><c t="n" r="C1"/></row>', (1, 4)),  # r not first: counted as a step too (an upper bound)
        # calamine reads any prefix, to the first colon: non-ASCII, punctuation, even none
        ('<row r="1">' + "<ф:c/>" * 300 + "</row>", (1, 300)),
        ('<row r="1">' + "<a=b:c/><#$%:c/><:c/>" * 100 + "</row>", (1, 300)),
        ("<ф:row><c/></ф:row>" * 300, (300, 300)),
        ('<row r="1">' + "<ns:deeper:c/>" * 300 + "</row>", (1, 0)),  # local name "deeper:c": not a cell for calamine
    ],
)
def test_a_sheets_extent_is_read_from_its_cell_references(tmp_path, cells, expected):
    path = sheet_zip(
        tmp_path / "s.xlsx",
        f'<worksheet xmlns="{MAIN_NS}"><dimension ref="A1"/><sheetData>{cells}</sheetData></worksheet>',
    )
    with zipfile.ZipFile(path) as zf:
        extent = preflight.sheet_extent(zf, zf.infolist()[0])
    assert (extent.rows, extent.columns) == expected


def test_the_extent_does_not_depend_on_where_chunks_end(sample_inbox, monkeypatch):
    path = sample_inbox[0] / "mod" / "MOD_budget_FY2024.xlsx"
    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)
        whole = preflight.sheet_extent(zf, info)
        for chunk in (17, 64, 1000, 4096):
            monkeypatch.setattr(preflight, "CHUNK", chunk)
            assert preflight.sheet_extent(zf, info) == whole
    assert (whole.rows, whole.columns) == (212, 7)


@pytest.mark.parametrize(
    "near,far",
    [
        ('<row r="1"><c r="A1"><v>1</v></c></row>', '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'),
        # A0000001 is A1 to calamine: a longer reference than XFD999999, yet the nearer cell
        ('<row r="0000001"><c r="A0000001"><v>1</v></c></row>', '<row r="999999"><c r="XFD999999"><v>1</v></c></row>'),
        # 10,000 cells without a reference (each a column past the one before) and as many references on other
        # elements, then one far row: a million rows of 10,000 columns
        (
            '<row r="1">' + "<c/>" * 10_000 + '<x r="A1"/>' * 10_000 + "</row>",
            '<row r="1048576"><c r="A1048576"/></row>',
        ),
    ],
    ids=["far-cell", "leading-zeros", "hidden-wide-row"],
)
def test_far_apart_cells_are_refused_and_a_lying_dimension_is_not(
    sample_inbox, sources, reference, tmp_path, near, far
):
    """calamine sizes a sheet by its cells, not by <dimension>: two cells at A1 and XFD1048576 would make it
    allocate 17 billion cells (the process aborts); a dimension claiming the whole sheet over small data is fine."""
    from tests.hostile.zipbuild import deflated, entries_of, write_zip

    base = sample_inbox[0] / "mod" / "MOD_budget_FY2024.xlsx"
    entries = entries_of(base)
    sheet = max(entries, key=lambda e: e.size)
    far = f'<worksheet xmlns="{MAIN_NS}"><sheetData>{far}{near}</sheetData></worksheet>'
    write_zip(
        tmp_path / "MOD_budget_far.xlsx", [e for e in entries if e is not sheet] + [deflated(sheet.name, far.encode())]
    )
    batch = process_file(task_for(tmp_path / "MOD_budget_far.xlsx", source(sources, "MOD")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_too_large"]
    assert "DCF_MAX_CELLS" in batch.message
    with zipfile.ZipFile(base) as zf:
        xml = zf.read(sheet.name).replace(b"<sheetData", b'<dimension ref="A1:XFD1048576"/><sheetData', 1)
    write_zip(tmp_path / "MOD_budget_dim.xlsx", [e for e in entries if e is not sheet] + [deflated(sheet.name, xml)])
    assert (
        process_file(task_for(tmp_path / "MOD_budget_dim.xlsx", source(sources, "MOD")), reference).status == "loaded"
    )


def test_a_file_over_the_size_limit_is_neither_hashed_nor_read(sample_inbox, sources, reference, tmp_path, monkeypatch):
    import flows.process as process

    path = tmp_path / "GAMI_budget_big.csv"
    shutil.copyfile(sample_inbox[0] / "gami" / "GAMI_budget_2024.csv", path)
    monkeypatch.setenv("DCF_MAX_FILE_BYTES", "1000")
    monkeypatch.setattr(process, "file_sha256", lambda p: pytest.fail("an oversize file was hashed"))
    batch = process_file(task_for(path, source(sources, "GAMI")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_too_large"]
    assert "over the limit of 1,000 (DCF_MAX_FILE_BYTES)" in batch.message


def test_a_csv_with_more_records_than_the_row_limit_is_refused(sample_inbox, sources, reference, tmp_path, monkeypatch):
    path = tmp_path / "GAMI_budget_rows.csv"
    shutil.copyfile(sample_inbox[0] / "gami" / "GAMI_budget_2024.csv", path)
    monkeypatch.setenv("DCF_MAX_ROWS", "100")
    batch = process_file(task_for(path, source(sources, "GAMI")), reference)
    assert batch.status == "failed" and "DCF_MAX_ROWS" in batch.message


def test_a_wall_of_sheets_gives_a_short_message(sources, reference, tmp_path):
    import random

    from tests.hostile.cases import Ctx
    from tests.hostile.containers import wall_of_sheets

    case = wall_of_sheets(Ctx(tmp_path / "samples", tmp_path / "inbox", tmp_path / "out", random.Random(0), 0))
    batch = process_file(task_for(Path(case.path), source(sources, "MOD")), reference)
    assert batch.status == "failed" and len(batch.message) <= 500 and "and 2,992 more" in batch.message


# ----------------------------------------------------------------------------------------------- links and FIFOs
def test_discovery_reads_only_regular_files_inside_the_agency_folder(sources, tmp_path):
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    gami = inbox / "gami"
    (gami / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "x.csv").write_text("elsewhere")
    (gami / "GAMI_budget_ok.csv").write_text("a")
    (gami / "sub" / "GAMI_budget_deep.csv").write_text("b")
    os.symlink(gami / "GAMI_budget_ok.csv", gami / "GAMI_budget_alias.csv")
    os.symlink(outside / "x.csv", gami / "GAMI_budget_out.csv")
    os.symlink("/etc/passwd", gami / "GAMI_budget_passwd.csv")
    os.symlink(gami / "nothing.csv", gami / "GAMI_budget_dangling.csv")
    os.symlink(gami / "GAMI_budget_loop2.csv", gami / "GAMI_budget_loop1.csv")
    os.symlink(gami / "GAMI_budget_loop1.csv", gami / "GAMI_budget_loop2.csv")
    os.symlink(outside, gami / "linked_dir")
    os.symlink(gami / "sub", gami / "inner_dir")
    os.mkfifo(gami / "GAMI_budget_fifo.csv")
    gami_src = [s for s in sources if s.agency == "GAMI"]
    found = [p.relative_to(gami).as_posix() for p, _ in find_files(inbox, gami_src)]
    assert found == ["GAMI_budget_alias.csv", "GAMI_budget_ok.csv", "sub/GAMI_budget_deep.csv"]
    reasons = {p.name: r for p, _, r in refused_entries(inbox, gami_src)}
    assert set(reasons) == {
        "GAMI_budget_out.csv",
        "GAMI_budget_passwd.csv",
        "GAMI_budget_dangling.csv",
        "GAMI_budget_loop1.csv",
        "GAMI_budget_loop2.csv",
        "linked_dir",
        "inner_dir",
        "GAMI_budget_fifo.csv",
    }
    assert "outside" in reasons["GAMI_budget_passwd.csv"] and "dangling" in reasons["GAMI_budget_dangling.csv"]
    assert "loop" in reasons["GAMI_budget_loop1.csv"] and "FIFO" in reasons["GAMI_budget_fifo.csv"]
    assert "folder" in reasons["inner_dir"] and "outside" in reasons["linked_dir"]


def test_a_folder_that_cannot_be_listed_is_reported(sources, tmp_path, monkeypatch):
    import flows.discover as discover

    (tmp_path / "gami" / "locked").mkdir(parents=True)
    real = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(discover.os, "scandir", scandir)
    refused = refused_entries(tmp_path, [s for s in sources if s.agency == "GAMI"])
    assert [(p.name, r) for p, _, r in refused] == [
        ("locked", "folder cannot be listed (PermissionError: Permission denied); its files are not read")
    ]


def test_a_fifo_swapped_in_after_discovery_is_refused_without_blocking(sample_inbox, sources, reference, tmp_path):
    import signal

    path = tmp_path / "GAMI_budget_2024.csv"
    shutil.copyfile(sample_inbox[0] / "gami" / "GAMI_budget_2024.csv", path)
    task = task_for(path, source(sources, "GAMI"))
    path.unlink()
    os.mkfifo(path)
    signal.alarm(20)  # opening the FIFO for reading would block forever: fail loudly instead
    try:
        batch = process_file(task, reference)
    finally:
        signal.alarm(0)
    assert batch.status == "failed" and "not a regular file" in batch.message


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", "the file is empty (0 bytes): ask the agency to send it again"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64 + "EncryptionInfo".encode("utf-16-le"),
            "the workbook is password-protected (encrypted): declare where its password comes from in the source "
            "YAML (password: {env: VARIABLE}), or ask the agency for a copy saved without a password",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64,
            "an old-format Office file (OLE2, e.g. .xls) that cannot be read; "
            "if it is password-protected, ask the agency for a copy saved without a password, otherwise ask for it saved as .xlsx",
        ),
        (
            "opendocument-encrypted",
            "the spreadsheet (OpenDocument) is password-protected: ask the agency for a copy saved without a password",
        ),
        ("opendocument-plain", None),
        (b"PK\x03\x04 not a zip at all", None),
        (b"some text", None),
    ],
)
def test_an_unreadable_workbook_says_why_when_its_bytes_tell(data, expected):
    import io
    import zipfile

    from flows.extract import _why_unreadable

    if isinstance(data, str):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
            entry = (
                '<manifest:encryption-data manifest:checksum-type="SHA1/1K"/>' if data.endswith("-encrypted") else ""
            )
            zf.writestr(
                "META-INF/manifest.xml",
                f"<manifest:manifest><manifest:file-entry>{entry}</manifest:file-entry></manifest:manifest>",
            )
        data = buf.getvalue()
    assert _why_unreadable(data) == expected


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_a_far_cell_hidden_past_a_sheets_declared_size_is_refused(sample_inbox, sources, reference, tmp_path, method):
    """calamine reads a stored entry's every byte and a deflated one to the end of its stream, whatever size the
    directory declares; Python's zipfile stops at the declared size. A far cell hidden past a worksheet's declared
    end (the CRC forged to match the declared part) passed the pre-check unseen and made calamine allocate 470 GB:
    the process aborted. The workbook is refused instead, as one whose directory lies."""
    from tests.hostile.zipbuild import entries_of, understated, write_zip

    base = sample_inbox[0] / "mod" / "MOD_budget_FY2024.xlsx"
    entries = entries_of(base)
    sheet = max(entries, key=lambda e: e.size)
    with zipfile.ZipFile(base) as zf:
        head = zf.read(sheet.name).partition(b"</sheetData>")[0]
    hidden = b'<row r="900000"><c r="XFD900000"><v>1</v></c></row></sheetData></worksheet><!--'
    path = tmp_path / "MOD_budget_hidden.xlsx"
    write_zip(path, [e for e in entries if e is not sheet] + [understated(sheet.name, head, hidden, method)])
    with zipfile.ZipFile(path) as zf:
        assert zf.read(sheet.name) == head  # all Python's zipfile sees, its CRC right
    batch = process_file(task_for(path, source(sources, "MOD")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_unreadable"]
    assert f"{sheet.name} holds more than the {len(head):,} bytes its directory declares" in batch.message


@pytest.mark.parametrize("part", ["xl/styles.xml", "xl/_rels/workbook.xml.rels", "docProps/app.xml"])
def test_any_entry_holding_more_than_declared_is_refused(sample_inbox, sources, reference, tmp_path, part):
    """The size and ratio limits read the directory's sizes: an entry calamine reads (shared strings, styles, the
    relationships naming the sheets) that holds more than declared could carry gigabytes past them, or a sheet
    nobody scanned. Every entry is read to its end and must hold what is declared."""
    from tests.hostile.zipbuild import entries_of, understated, write_zip

    base = sample_inbox[0] / "mod" / "MOD_budget_FY2024.xlsx"
    entries = entries_of(base)
    with zipfile.ZipFile(base) as zf:
        body = zf.read(part)
    path = tmp_path / "MOD_budget_more.xlsx"
    write_zip(path, [e for e in entries if e.name != part] + [understated(part, body, b"<!-- more -->")])
    batch = process_file(task_for(path, source(sources, "MOD")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_unreadable"]
    assert f"{part} holds more than the {len(body):,} bytes its directory declares" in batch.message


def test_an_opendocument_repeat_bomb_is_refused_whatever_its_name(sources, reference, tmp_path):
    """fastexcel reads an OpenDocument spreadsheet named .xlsx (it detects the format from the bytes): 800 bytes
    repeating a value across 1,000 columns of 100,000 rows made calamine allocate 6 GB. A LibreOffice-like sheet,
    whose rest is one repeated empty row, is not refused."""
    from tests.hostile.odsbuild import EMPTY, LIBREOFFICE, VALUE, cols, ods, row, table

    bomb = tmp_path / "MOD_budget_ods.xlsx"
    bomb.write_bytes(ods(table(row(VALUE.format(cols(1000)), 100_000))))
    assert bomb.stat().st_size < 2000
    batch = process_file(task_for(bomb, source(sources, "MOD")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_too_large"]
    assert "100,000,000" in batch.message and "DCF_MAX_CELLS" in batch.message
    plain = tmp_path / "MOD_budget_plain.xlsx"
    plain.write_bytes(ods(LIBREOFFICE, table(row(EMPTY.format(cols(16384)), 1_048_576), name="Empty")))
    batch = process_file(task_for(plain, source(sources, "MOD")), reference)
    assert "file_too_large" not in batch.failures["rule"].tolist()


def test_a_binary_workbook_with_far_cells_is_refused_whatever_its_name(sources, reference, tmp_path):
    """fastexcel reads a binary workbook (.xlsb) named .xlsx; two cell records at A1 and XFD1048576 made calamine
    allocate 17 billion cells (the process aborted): the pre-check read the sheet as XML and saw nothing."""
    from tests.hostile.xlsbbuild import number, row_header, sheet, xlsb

    path = tmp_path / "MOD_budget_xlsb.xlsx"
    path.write_bytes(xlsb(sheet(row_header(0) + number(0), row_header(1_048_575) + number(16_383))))
    batch = process_file(task_for(path, source(sources, "MOD")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_too_large"]
    assert "1,048,576 rows x 16,384 columns" in batch.message and "DCF_MAX_CELLS" in batch.message


def test_an_old_format_workbook_with_far_cells_is_refused_whatever_its_name(sources, reference, tmp_path):
    """fastexcel reads an .xls named .xlsx, and calamine builds all its sheets at once: two cells at A1 and
    (65536, 65536) made it allocate 137 GB, a DIMENSIONS record declaring a million rows reserve 10 GB (the process
    aborted). The pre-check never looked at an .xls."""
    from tests.hostile.xlsbuild import dimensions, number, workbook, xls

    for name, body, limit in [
        ("far", number(0, 0) + number(65_535, 65_535), "DCF_MAX_COLUMNS"),
        ("dims", dimensions(0, 1_000_000, 0, 256) + number(0, 0), "DCF_MAX_CELLS"),
    ]:
        path = tmp_path / f"MOD_budget_{name}.xlsx"
        path.write_bytes(xls(workbook(number(0, 0), body)))
        batch = process_file(task_for(path, source(sources, "MOD")), reference)
        assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_too_large"], batch.message
        assert limit in batch.message and "sheet 2" in batch.message


def test_a_readers_panic_fails_its_file_alone(sources, reference, tmp_path):
    """calamine panics on some malformed records (a BoundSheet8 record of 4 bytes: index out of bounds); pyo3
    raises that as a BaseException, which ended the whole night with a traceback. It fails the file alone."""
    import struct

    from tests.hostile.xlsbuild import bof, record, xls

    stream = bof(0x0005) + record(0x0085, struct.pack("<I", 0)) + record(0x000A)
    path = tmp_path / "MOD_budget_panic.xlsx"
    path.write_bytes(xls(stream))
    batch = process_file(task_for(path, source(sources, "MOD")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_unreadable"]
    assert "its reader stopped on malformed content (index out of bounds" in batch.message


def test_shared_strings_declaring_billions_are_refused(sample_inbox, sources, reference, tmp_path):
    """calamine reserves room for the uniqueCount strings a workbook's shared strings declare before reading one:
    uniqueCount="4000000000" asked for 96 GB and aborted the process, in a file of a few KB."""
    from tests.hostile.zipbuild import deflated, entries_of, write_zip

    base = sample_inbox[0] / "mod" / "MOD_budget_FY2024.xlsx"
    sst = b'<sst xmlns="x" count="1" uniqueCount="4000000000"><si><t>x</t></si></sst>'
    path = tmp_path / "MOD_budget_sst.xlsx"
    write_zip(path, [*entries_of(base), deflated("xl/sharedStrings.xml", sst)])
    batch = process_file(task_for(path, source(sources, "MOD")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_too_large"]
    assert "uniqueCount" in batch.message and "4,000,000,000" in batch.message


@pytest.mark.parametrize("size", [1, 3, 7, 1 << 20])
def test_a_declared_string_count_is_read_wherever_blocks_end(size):
    xml = b'<?xml version="1.0"?>' + b" " * 50 + b'<sst count="3" uniqueCount = "0123456789"><si/></sst>'
    blocks = [xml[i : i + size] for i in range(0, len(xml), size)]
    assert preflight.declared_strings(blocks) == 123_456_789
    assert preflight.declared_strings([b"<sst count='9'/>"]) == 0


@pytest.mark.parametrize("kind", ["dialogsheet", "chartsheet"])
def test_a_far_cell_in_a_sheet_of_another_type_is_refused(sample_inbox, sources, reference, tmp_path, kind):
    """calamine reads the target of a dialog-sheet or chart-sheet relationship as a sheet too; a far cell in one
    kept outside xl/worksheets/ made it allocate 512 GB (the process aborted) while the scan took worksheets only."""
    from tests.hostile.zipbuild import deflated, entries_of, write_zip

    base = sample_inbox[0] / "mod" / "MOD_budget_FY2024.xlsx"
    with zipfile.ZipFile(base) as zf:
        rels = zf.read("xl/_rels/workbook.xml.rels")
        sheet = zf.read("xl/worksheets/sheet1.xml")
    rels = rels.replace(
        b'relationships/worksheet" Target="/xl/worksheets/sheet1.xml"',
        f'relationships/{kind}" Target="/xl/m/1.xml"'.encode(),
    )
    assert f"/{kind}".encode() in rels
    far = sheet.replace(b"</sheetData>", b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>')
    keep = [e for e in entries_of(base) if e.name not in ("xl/_rels/workbook.xml.rels", "xl/worksheets/sheet1.xml")]
    path = tmp_path / "MOD_budget_other.xlsx"
    write_zip(path, [*keep, deflated("xl/_rels/workbook.xml.rels", rels), deflated("xl/m/1.xml", far)])
    batch = process_file(task_for(path, source(sources, "MOD")), reference)
    assert batch.status == "failed" and batch.failures["rule"].tolist() == ["file_too_large"]
    assert "xl/m/1.xml" in batch.message and "DCF_MAX_CELLS" in batch.message

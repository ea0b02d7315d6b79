"""Read a workbook through fastexcel (calamine + Arrow), every cell as text: the sheet the source config names,
its header found by its aliases (:func:`read_workbook`), or every sheet as a grid for years-across-columns
reference files (:func:`read_workbook_grids`). The bytes are checked against the limits before calamine opens
them; a workbook it cannot open is told in plain words where its bytes say why (empty, password-protected, an old
OLE2 file).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import fastexcel
import pandas as pd
import pyarrow as pa

from flows.limits import Limits
from flows.preflight import UnreadableContainer, check_workbook, read_bounded, shown
from flows.read_common import (
    EXCEL_ROW,
    Extracted,
    FileReadError,
    _locate_header,
    _reason,
    _to_text_frame,
    check_cell_lengths,
    listed,
)
from schemas.rules import ISSUE_COLUMNS, ISSUES_SHEET
from schemas.sources import FileSpec, RecordsFileSpec
from transforms.text import column_letter, normalize_header


def _steward_issues(reader: fastexcel.ExcelReader) -> bool:
    """Whether the workbook is a steward export dropped back (warehouse/export.py): its first sheet is the Issues
    sheet, with the Issues header on its first row. That sheet is never data."""
    names = reader.sheet_names
    if len(names) < 2 or names[0] != ISSUES_SHEET:
        return False
    try:
        first = reader.load_sheet(names[0], header_row=None, n_rows=1, dtypes="string").to_arrow()
    except Exception:  # noqa: BLE001 - an unreadable first sheet is not ours; the data sheet's read says the rest
        return False
    row = [first.column(i)[0].as_py() if first.num_rows else None for i in range(first.num_columns)]
    return row[: len(ISSUE_COLUMNS)] == ISSUE_COLUMNS


def _data_sheets(reader: fastexcel.ExcelReader) -> list[str]:
    """The workbook's sheets that may hold data: all but a steward export's Issues sheet."""
    names = list(reader.sheet_names)
    return names[1:] if _steward_issues(reader) else names


def _resolve_sheet(reader: fastexcel.ExcelReader, sheet: str | int, path: Path) -> str:
    names = reader.sheet_names
    if isinstance(sheet, int):
        names = _data_sheets(reader)  # position #0 of a dropped-back steward export is its data sheet
        if sheet >= len(names):
            raise FileReadError(f"{shown(path)}: has {len(names)} sheet(s), the source config asks for sheet #{sheet}")
        return names[sheet]
    if sheet in names:
        return sheet
    loose = {normalize_header(n): n for n in names}
    if normalize_header(sheet) in loose:
        return loose[normalize_header(sheet)]
    raise FileReadError(f"{shown(path)}: no sheet named '{sheet}'; its {len(names):,} sheet(s): {listed(names)}")


def _open_workbook(path: Path, limits: Limits) -> fastexcel.ExcelReader:
    """calamine's reader over the file's bytes, once its zip directory and every sheet's extent are within the
    limits. The bytes checked are the bytes read (no second open by name, which also serves names that are not
    UTF-8 and cannot cross into Rust as a path)."""
    try:
        data = read_bounded(path, limits)
        check_workbook(data, shown(path), limits)
    except UnreadableContainer as exc:
        raise FileReadError(f"{shown(path)}: not a readable Excel workbook ({exc})") from None
    except FileNotFoundError:
        raise FileReadError(f"{shown(path)}: file disappeared before it could be read") from None
    except OSError as exc:
        raise FileReadError(f"{shown(path)}: cannot open ({exc.strerror or exc})") from None
    try:
        return fastexcel.read_excel(data)
    except Exception as exc:  # noqa: BLE001 - calamine raises many kinds; all mean "not a readable workbook"
        plain = _why_unreadable(data)
        raise FileReadError(
            f"{shown(path)}: {plain or f'not a readable Excel workbook ({_reason(exc, path)})'}"
        ) from None


_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")  # the stream Office puts in an encrypted xlsx/xlsb
_ASK_UNPROTECTED = "ask the agency for a copy saved without a password"


def _why_unreadable(data: bytes) -> str | None:
    """What a steward can act on when calamine cannot open a file whose cause is plain from its bytes."""
    if not data:
        return "the file is empty (0 bytes): ask the agency to send it again"
    if data.startswith(_OLE2_MAGIC):
        if _ENCRYPTION_INFO in data:
            return f"the workbook is password-protected (encrypted): {_ASK_UNPROTECTED}"
        return (
            "an old-format Office file (OLE2, e.g. .xls) that cannot be read; if it is password-protected, "
            f"{_ASK_UNPROTECTED}, otherwise ask for it saved as .xlsx"
        )
    if data.startswith(b"PK") and _encrypted_opendocument(data):
        return f"the spreadsheet (OpenDocument) is password-protected: {_ASK_UNPROTECTED}"
    return None


def _encrypted_opendocument(data: bytes) -> bool:
    """An OpenDocument file whose manifest declares encrypted parts (the manifest is read at most 1 MiB deep)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf, zf.open("META-INF/manifest.xml") as fh:
            return b"encryption-data" in fh.read(1 << 20)
    except Exception:  # noqa: BLE001 - not an OpenDocument zip: no claim either way
        return False


def read_workbook(path: Path, spec: FileSpec | RecordsFileSpec, limits: Limits | None = None) -> Extracted:
    limits = limits or Limits.from_env()
    reader = _open_workbook(path, limits)
    sheet = _resolve_sheet(reader, spec.sheet, path)
    where = f"{shown(path)} [{shown(sheet)}]"
    try:  # one pass: every cell as text, from Excel row 1, so positions are Excel rows and columns
        sheet_data = reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string", whitespace_as_null=True)
        abs_index = [c.absolute_index for c in sheet_data.available_columns()]
        table = sheet_data.to_arrow()
    except Exception as exc:  # noqa: BLE001
        raise FileReadError(f"{where}: cannot read the sheet ({_reason(exc, path)})") from None
    scan_rows = spec.header.row if spec.header.row else spec.header.max_scan_rows
    head = table.slice(0, scan_rows)
    rows = [list(r) for r in zip(*(col.to_pylist() for col in head.columns))] if head.num_columns else []
    h, found = _locate_header(rows, spec, where)
    header_cells = rows[h]
    body = table.slice(h + 1)
    picked = {f"__c{pos}": canon for canon, pos in found.items()}
    body = pa.table([body.column(pos) for pos in found.values()], names=list(picked))
    check_cell_lengths(body, where, limits, h + 2, {k: str(header_cells[found[v]]) for k, v in picked.items()})
    frame = _to_text_frame(body, picked)
    frame[EXCEL_ROW] = pd.RangeIndex(h + 2, h + 2 + len(frame)).to_numpy(dtype="int32")
    return Extracted(
        frame=frame,
        sheet=sheet,
        header_row=h + 1,
        source_columns={canon: str(header_cells[pos]).strip() for canon, pos in found.items()},
        column_letters={canon: column_letter(abs_index[pos]) for canon, pos in found.items()},
    )


def read_workbook_grids(path: Path, limits: Limits | None = None) -> list:
    """Every sheet of a workbook as a grid of text cells (for years-across-columns reference files), in one pass
    per sheet through fastexcel; columns keep their absolute Excel positions, row i is Excel row i + 1."""
    from transforms.wide import Grid

    limits = limits or Limits.from_env()
    reader = _open_workbook(path, limits)
    grids = []
    for name in _data_sheets(reader):
        where = f"{shown(path)} [{shown(name)}]"
        try:
            data = reader.load_sheet(name, header_row=None, skip_rows=0, dtypes="string", whitespace_as_null=True)
            positions = [c.absolute_index for c in data.available_columns()]
            table = data.to_arrow()
        except Exception as exc:  # noqa: BLE001
            raise FileReadError(f"{where}: cannot read the sheet ({_reason(exc, path)})") from None
        check_cell_lengths(
            table, where, limits, 1, {c: column_letter(p) for c, p in zip(table.column_names, positions)}
        )
        frame = _to_text_frame(table, {c: c for c in table.column_names})
        frame.columns = positions
        grids.append(Grid(name, frame))
    return grids

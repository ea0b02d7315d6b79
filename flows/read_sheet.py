"""Read a workbook through fastexcel (calamine + Arrow), every cell as text: the sheet the source config names,
its header found by its aliases (:func:`read_workbook`), or every sheet as a grid for years-across-columns
reference files (:func:`read_workbook_grids`). The bytes are checked against the limits before calamine opens
them; a workbook it cannot open is told in plain words where its bytes say why (empty, password-protected, an old
OLE2 file).
"""

from __future__ import annotations

import io
import posixpath
import re
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import fastexcel
import pandas as pd
import pyarrow as pa

from flows.limits import Limits
from flows.passwords import PasswordProblem, decrypt
from flows.preflight import KNOWN_ERRORS, Extent, UnreadableContainer, check_workbook, read_bounded, shown
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
from flows.read_windows import NotWindowed, read_in_windows
from schemas.rules import ISSUE_COLUMNS, ISSUES_SHEET
from schemas.sources import FileSpec, RecordsFileSpec
from schemas.spec_base import PasswordSpec
from transforms.failures import UNSAVED_FORMULAS
from transforms.text import column_letter, normalize_header
from warehouse.memory import give_back


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
    """The sheet the source config names: by name (any sheet, hidden ones too, matched loosely if need be), or by
    position among the visible data sheets (``sheet: 0`` is the first sheet a person sees, not a hidden one)."""
    names = reader.sheet_names
    if isinstance(sheet, int):
        names = _visible(reader, _data_sheets(reader), sheet + 1)  # #0 of a dropped-back export is its data sheet
        if sheet >= len(names):
            raise FileReadError(
                f"{shown(path)}: has {len(names)} visible sheet(s), the source config asks for sheet #{sheet}"
            )
        return names[sheet]
    if sheet in names:
        return sheet
    loose = {normalize_header(n): n for n in names}
    if normalize_header(sheet) in loose:
        return loose[normalize_header(sheet)]
    raise FileReadError(f"{shown(path)}: no sheet named '{sheet}'; its {len(names):,} sheet(s): {listed(names)}")


@dataclass
class _SheetNotes:
    """What the workbook's bytes told about its sheets, by sheet name: which are hidden (None: not told, e.g. not an
    xlsx; fastexcel is asked then) and the cells holding a formula with no saved result ((Excel row, 0-based column),
    flows/preflight.py)."""

    hidden: set[str] | None = None
    unsaved: dict[str, frozenset[tuple[int, int]]] = field(default_factory=dict)
    #: the zip entry holding each sheet (for a large one, read in windows: flows/read_windows.py)
    parts: dict[str, str] = field(default_factory=dict)
    #: the workbook's bytes as calamine reads them
    data: bytes = b""


_NOTES: weakref.WeakKeyDictionary[fastexcel.ExcelReader, _SheetNotes] = weakref.WeakKeyDictionary()


def _visible(reader: fastexcel.ExcelReader, names: list[str], wanted: int) -> list[str]:
    """The visible ones among ``names``, in order (at least the first ``wanted`` of them, where there are so many:
    a workbook whose bytes did not say is asked sheet by sheet, and each ask loads the sheet)."""
    notes = _NOTES.get(reader)
    if notes is not None and notes.hidden is not None:
        hidden = notes.hidden
        return [n for n in names if n not in hidden]
    shown_names: list[str] = []
    for name in names:
        if len(shown_names) >= wanted:
            break
        try:
            visible = reader.load_sheet(name, header_row=None, n_rows=0).visible
        except Exception:  # noqa: BLE001 - a sheet that cannot be loaded is for the read to report, not skipped here
            visible = "visible"
        if visible == "visible":
            shown_names.append(name)
    return shown_names


def unsaved_formulas(reader: fastexcel.ExcelReader, sheet: str) -> frozenset[tuple[int, int]]:
    """(Excel row, 0-based column) of the sheet's cells that hold a formula with no saved result."""
    notes = _NOTES.get(reader)
    return notes.unsaved.get(sheet, frozenset()) if notes is not None else frozenset()


def _note_unsaved(frame: pd.DataFrame, cells: frozenset[tuple[int, int]], columns: dict[str, int]) -> None:
    """Keep on the frame (``attrs``, which pandas carries through the standardiser's selections) which of its cells
    hold a formula with no saved result, as {column: Excel rows}, so an empty one says why (transforms/failures.py)."""
    if not cells:
        return
    by_position: dict[int, set[int]] = {}
    for row, col in cells:
        by_position.setdefault(col, set()).add(row)
    noted = {canon: sorted(by_position[pos]) for canon, pos in columns.items() if pos in by_position}
    if noted:
        frame.attrs[UNSAVED_FORMULAS] = noted


_SHEET_TAG = re.compile(rb"<(?:[\w.-]+:)?sheet\b[^>]*>")
_REL_TAG = re.compile(rb"<(?:[\w.-]+:)?Relationship\b[^>]*>")
_STATE = re.compile(rb"""\sstate\s*=\s*["'](hidden|veryHidden)["']""")
_REL_ID = re.compile(rb"""\s[\w.-]+:id\s*=\s*["']([^"']*)["']""")
_ATTR = {key: re.compile(rb"\s" + key.encode() + rb"""\s*=\s*["']([^"']*)["']""") for key in ("Id", "Target")}


def _sheet_notes(data: bytes, names: list[str], extents: dict[str, Extent]) -> _SheetNotes:
    """Hidden sheets and unsaved formula cells by sheet name, from xl/workbook.xml (its <sheet> elements, in the
    order calamine lists them) and its relationships (which worksheet part each sheet is). Anything unexpected
    leaves the notes empty: they only make messages clearer and positions skip hidden sheets."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            book = zf.read("xl/workbook.xml")
            rels = zf.read("xl/_rels/workbook.xml.rels")
    except Exception:  # noqa: BLE001 - not an xlsx laid out as Excel writes it (ods, xlsb, odd zips)
        return _SheetNotes()
    tags = _SHEET_TAG.findall(book)
    if len(tags) != len(names):
        return _SheetNotes()
    targets = {}
    for rel in _REL_TAG.findall(rels):
        rid, target = _ATTR["Id"].search(rel), _ATTR["Target"].search(rel)
        if rid and target:
            name = target.group(1).decode("utf-8", "replace")
            part = name.lstrip("/") if name.startswith("/") else posixpath.normpath(f"xl/{name}")
            targets[rid.group(1)] = part.lower()
    parts = {entry.lower(): extent for entry, extent in extents.items()}
    entries = {entry.lower(): entry for entry in extents}
    notes = _SheetNotes(hidden=set(), data=data)
    for name, tag in zip(names, tags):
        if _STATE.search(tag):
            assert notes.hidden is not None
            notes.hidden.add(name)
        ref = _REL_ID.search(tag)
        entry = targets.get(ref.group(1), "") if ref else ""
        extent = parts.get(entry)
        if extent is not None and extent.unsaved:
            notes.unsaved[name] = extent.unsaved
        if entry in entries:
            notes.parts[name] = entries[entry]
    return notes


_ERROR_CELL = re.compile(
    rb"""<((?:[\w.-]+:)?)c\b([^>]*?)\st\s*=\s*["']e["']([^>]*)>(.*?)</\1c>""",
    re.S,
)
_VALUE = re.compile(rb"<(?:[\w.-]+:)?v>([^<]*)</")


def _as_text_cell(m: re.Match[bytes]) -> bytes:
    """An error cell calamine does not know (#SPILL!, #CALC!, ...) as an inline string of its text, so it costs
    only its row (the amount "'#SPILL!' is not a number") instead of the whole sheet; known ones stay errors."""
    prefix, before, after, inner = m.groups()
    value = _VALUE.search(inner)
    if value is None or value.group(1) in KNOWN_ERRORS:
        return m.group(0)
    return (
        b"<"
        + prefix
        + b"c"
        + before
        + b' t="inlineStr"'
        + after.rstrip(b"/")
        + b"><"
        + prefix
        + b"is><"
        + prefix
        + b"t>"
        + value.group(1)
        + b"</"
        + prefix
        + b"t></"
        + prefix
        + b"is></"
        + prefix
        + b"c>"
    )


def _known_errors(data: bytes, entries: set[str]) -> bytes:
    """The workbook's bytes with the unknown error cells of ``entries`` (worksheet parts) turned into text cells,
    rebuilt in memory (never written anywhere)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst,
    ):
        done = set()
        for info in src.infolist():
            if info.filename in done:  # a repeated entry name: the first one is the one readers see
                continue
            done.add(info.filename)
            body = src.read(info)
            if info.filename in entries:
                body = _ERROR_CELL.sub(_as_text_cell, body)
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, body)
    return out.getvalue()


def _open_workbook(path: Path, limits: Limits, password: PasswordSpec | None = None) -> fastexcel.ExcelReader:
    """calamine's reader over the file's bytes, once its zip directory and every sheet's extent are within the
    limits. The bytes checked are the bytes read (no second open by name, which also serves names that are not
    UTF-8 and cannot cross into Rust as a path). Cells holding an error value calamine does not know are made text
    cells first (in memory), so they cost their row, not the file; what the bytes tell of the sheets (hidden ones,
    formulas with no saved result) is kept beside the reader (:func:`_visible`, :func:`unsaved_formulas`). An
    encrypted workbook whose source declares a ``password`` is decrypted in memory first (flows/passwords.py)."""
    try:
        data = read_bounded(path, limits)
        if password is not None and data.startswith(_OLE2_MAGIC):
            data = decrypt(data, password)
        extents = check_workbook(data, shown(path), limits)
        unknown = {entry for entry, extent in extents.items() if extent.unknown_errors}
        if unknown:
            data = _known_errors(data, unknown)
    except PasswordProblem as exc:
        raise FileReadError(f"{shown(path)}: {exc}") from None
    except UnreadableContainer as exc:
        raise FileReadError(f"{shown(path)}: not a readable Excel workbook ({exc})") from None
    except FileNotFoundError:
        raise FileReadError(f"{shown(path)}: file disappeared before it could be read") from None
    except OSError as exc:
        raise FileReadError(f"{shown(path)}: cannot open ({exc.strerror or exc})") from None
    try:
        reader = fastexcel.read_excel(data)
    except Exception as exc:  # noqa: BLE001 - calamine raises many kinds; all mean "not a readable workbook"
        plain = _why_unreadable(data)
        raise FileReadError(
            f"{shown(path)}: {plain or f'not a readable Excel workbook ({_reason(exc, path)})'}"
        ) from None
    if data.startswith(b"PK"):
        _NOTES[reader] = _sheet_notes(data, list(reader.sheet_names), extents)
    return reader


_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")  # the stream Office puts in an encrypted xlsx/xlsb
_ASK_UNPROTECTED = "ask the agency for a copy saved without a password"


def _why_unreadable(data: bytes) -> str | None:
    """What a steward can act on when calamine cannot open a file whose cause is plain from its bytes."""
    if not data:
        return "the file is empty (0 bytes): ask the agency to send it again"
    if data.startswith(_OLE2_MAGIC):
        if _ENCRYPTION_INFO in data:
            return (
                "the workbook is password-protected (encrypted): declare where its password comes from in the "
                f"source YAML (password: {{env: VARIABLE}}), or {_ASK_UNPROTECTED}"
            )
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
    reader = _open_workbook(path, limits, spec.password)
    sheet = _resolve_sheet(reader, spec.sheet, path)
    where = f"{shown(path)} [{shown(sheet)}]"
    abs_index, table = _read_sheet(reader, sheet, where, path)
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
    _note_unsaved(frame, unsaved_formulas(reader, sheet), {canon: abs_index[pos] for canon, pos in found.items()})
    return Extracted(
        frame=frame,
        sheet=sheet,
        header_row=h + 1,
        source_columns={canon: str(header_cells[pos]).strip() for canon, pos in found.items()},
        column_letters={canon: column_letter(abs_index[pos]) for canon, pos in found.items()},
    )


def _cells(reader: fastexcel.ExcelReader, sheet: str, skip_rows: int | None = 0) -> tuple[list[int], pa.Table]:
    """One pass: every cell of the sheet as text, from Excel row 1, so positions are Excel rows; with the columns'
    absolute 0-based positions (fastexcel leaves out empty columns before the first one used)."""
    sheet_data = reader.load_sheet(
        sheet, header_row=None, skip_rows=skip_rows, dtypes="string", whitespace_as_null=True
    )
    abs_index = [c.absolute_index for c in sheet_data.available_columns()]
    return abs_index, sheet_data.to_arrow()  # calamine's cells are freed when sheet_data goes, on return


def _read_sheet(reader: fastexcel.ExcelReader, sheet: str, where: str, path: Path) -> tuple[list[int], pa.Table]:
    """The sheet's cells (:func:`_cells`); a large sheet of an xlsx one window of rows at a time, so calamine never
    holds all its cells at once (flows/read_windows.py), unless its XML is not laid out for that."""
    notes = _NOTES.get(reader)
    part = notes.parts.get(sheet) if notes is not None else None
    if notes is not None and part is not None:
        try:
            return read_in_windows(notes.data, part, lambda book, skip: _cells(fastexcel.read_excel(book), sheet, skip))
        except NotWindowed:
            pass
        finally:
            give_back()  # calamine's windows, read and freed: their pages go back before the next phase
    try:
        return _cells(reader, sheet)
    except Exception as exc:  # noqa: BLE001
        raise FileReadError(f"{where}: cannot read the sheet ({_reason(exc, path)})") from None
    finally:
        give_back()


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

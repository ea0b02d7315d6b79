"""Binary workbooks (.xlsb) built record by record, for the pre-check's tests and the hostile corpus: a workbook
part naming its sheets, their relationships, and sheets of row headers and cell records (MS-XLSB)."""

from __future__ import annotations

import io
import struct
import zipfile

REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
WORKSHEET = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"


def record(kind: int, payload: bytes = b"") -> bytes:
    """One record: its type in one or two bytes, its length in up to four (7 bits each, high bit: more)."""
    head = bytes([kind]) if kind < 0x80 else bytes([(kind & 0x7F) | 0x80, kind >> 7])
    length, size = bytearray(), len(payload)
    while True:
        length.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    return head + bytes(length) + payload


def wide(text: str) -> bytes:
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def row_header(row: int) -> bytes:
    """BrtRowHdr: the 0-based row, then style, height and flags (17 bytes in all)."""
    return record(0x00, struct.pack("<I", row) + bytes(13))


def number(column: int, value: float = 1.0) -> bytes:
    """BrtCellReal: the 0-based column, style and flags, then the value."""
    return record(0x05, struct.pack("<II", column, 0) + struct.pack("<d", value))


def sheet(*rows: bytes) -> bytes:
    """BrtBeginSheet, BrtWsDim, BrtBeginSheetData, the rows, BrtEndSheetData, BrtEndSheet."""
    return record(0x81) + record(0x94, bytes(16)) + record(0x91) + b"".join(rows) + record(0x92) + record(0x82)


def xlsb(*sheets: bytes) -> bytes:
    out = io.BytesIO()
    bundles = b"".join(
        record(0x9C, struct.pack("<II", 0, n) + wide(f"rId{n}") + wide(f"Sheet{n}")) for n in range(1, len(sheets) + 1)
    )
    book = record(0x83) + record(0x8F) + bundles + record(0x90) + record(0x84)
    rels = "".join(
        f'<Relationship Id="rId{n}" Type="{WORKSHEET}" Target="worksheets/sheet{n}.bin"/>'
        for n in range(1, len(sheets) + 1)
    )
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.bin", book)
        zf.writestr(
            "xl/_rels/workbook.bin.rels", f'<?xml version="1.0"?><Relationships xmlns="{REL_NS}">{rels}</Relationships>'
        )
        for n, body in enumerate(sheets, 1):
            zf.writestr(f"xl/worksheets/sheet{n}.bin", body)
    return out.getvalue()

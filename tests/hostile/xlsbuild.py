"""Old-format workbooks (.xls: BIFF8 records in an OLE2 compound file) built byte by byte, for the pre-check's
tests and the hostile corpus: a globals substream naming the sheets, then each sheet's records (MS-XLS, MS-CFB)."""

from __future__ import annotations

import struct

SECTOR = 512
FREE, END_OF_CHAIN, FAT_SECTOR = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD


def record(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(payload)) + payload


def bof(kind: int) -> bytes:
    """BOF: BIFF8, a workbook globals (0x0005) or worksheet (0x0010) substream."""
    return record(0x0809, struct.pack("<HHHHII", 0x0600, kind, 0, 0, 0, 0))


def dimensions(first_row: int, last_row: int, first_col: int, last_col: int) -> bytes:
    """DIMENSIONS (BIFF8): rows as 32 bits, columns as 16, each last one past the end."""
    return record(0x0200, struct.pack("<IIHHH", first_row, last_row, first_col, last_col, 0))


def number(row: int, col: int, value: float = 1.0) -> bytes:
    return record(0x0203, struct.pack("<HHH", row, col, 0) + struct.pack("<d", value))


def mulrk(row: int, first_col: int, count: int) -> bytes:
    """MULRK: ``count`` RK numbers from ``first_col`` on, the last column at the end."""
    rks = b"".join(struct.pack("<HI", 0, (1 << 2) | 2) for _ in range(count))
    return record(0x00BD, struct.pack("<HH", row, first_col) + rks + struct.pack("<H", first_col + count - 1))


def workbook(*sheets: bytes) -> bytes:
    """The Workbook stream: globals (BOF, a BoundSheet8 per sheet pointing at its substream, EOF), then the sheets
    (each BOF ... EOF around the records given)."""
    names = [f"Sheet{n}".encode("latin-1") for n in range(1, len(sheets) + 1)]
    bound = [len(record(0x0085, bytes(8) + name)) for name in names]
    globals_size = len(bof(0x0005)) + sum(bound) + len(record(0x000A))
    bodies = [bof(0x0010) + body + record(0x000A) for body in sheets]
    positions, at = [], globals_size
    for body in bodies:
        positions.append(at)
        at += len(body)
    head = bof(0x0005) + b"".join(
        record(0x0085, struct.pack("<IBB", pos, 0, 0) + bytes([len(name), 0]) + name)
        for pos, name in zip(positions, names, strict=True)
    )
    return head + record(0x000A) + b"".join(bodies)


def xls(stream: bytes) -> bytes:
    """An OLE2 compound file (version 3, 512-byte sectors) holding ``stream`` as "Workbook" (padded to 4,096 bytes
    so it lives in regular sectors, not the mini stream)."""
    stream = stream + b"\0" * max(0, 4096 - len(stream))
    data_sectors = -(-len(stream) // SECTOR)
    fat_sectors = 1
    while (data_sectors + fat_sectors + 1) > fat_sectors * (SECTOR // 4):
        fat_sectors += 1
    dir_sector = data_sectors  # sectors: the stream, then the directory, then the FAT
    fat = [i + 1 for i in range(data_sectors - 1)] + [END_OF_CHAIN, END_OF_CHAIN] + [FAT_SECTOR] * fat_sectors
    fat += [FREE] * (fat_sectors * (SECTOR // 4) - len(fat))

    def entry(name: str, kind: int, start: int, size: int, child: int = 0xFFFFFFFF) -> bytes:
        encoded = (name + "\0").encode("utf-16-le")
        return (
            encoded.ljust(64, b"\0")
            + struct.pack("<HBB", len(encoded), kind, 1)
            + struct.pack("<III", 0xFFFFFFFF, 0xFFFFFFFF, child)
            + bytes(16 + 4 + 16)
            + struct.pack("<IQ", start, size)
        )

    directory = entry("Root Entry", 5, END_OF_CHAIN, 0, child=1) + entry("Workbook", 2, 0, len(stream))
    directory = directory.ljust(SECTOR, b"\0")
    difat = [data_sectors + 1 + i for i in range(fat_sectors)] + [FREE] * (109 - fat_sectors)
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<IIIIIIIII", 0, fat_sectors, dir_sector, 0, 4096, END_OF_CHAIN, 0, END_OF_CHAIN, 0)
        + struct.pack("<109I", *difat)
    )
    body = stream.ljust(data_sectors * SECTOR, b"\0") + directory + struct.pack(f"<{len(fat)}I", *fat)
    return header + body

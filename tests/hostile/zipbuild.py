"""Write zip files byte by byte, so a decompression bomb costs kilobytes and milliseconds to build.

A deflate stream that repeats one block N times is the block compressed once after a full flush (which resets the
compressor, so every repetition compresses to the same bytes) repeated N times; its CRC-32 is combined from the
block's CRC without inflating anything (zlib's crc32_combine, here in Python). Entries over 4 GiB get zip64 sizes.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Entry:
    name: str
    parts: list[bytes]  # the raw deflate stream, in pieces (the same piece may repeat)
    crc: int
    size: int  # uncompressed
    method: int = zipfile.ZIP_DEFLATED  # or ZIP_STORED: parts hold the bytes as they are


def deflated(name: str, data: bytes) -> Entry:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return Entry(name, [c.compress(data) + c.flush()], zlib.crc32(data), len(data))


def repeated(name: str, prefix: bytes, block: bytes, count: int, suffix: bytes) -> Entry:
    """``prefix + block * count + suffix``, deflated without ever holding it."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    piece = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.compress(suffix) + c.flush()
    crc = crc32_combine(zlib.crc32(prefix), _crc_repeat(block, count), len(block) * count)
    crc = crc32_combine(crc, zlib.crc32(suffix), len(suffix))
    return Entry(name, [head, *([piece] * count), tail], crc, len(prefix) + len(block) * count + len(suffix))


def understated(name: str, declared: bytes, hidden: bytes, method: int = zipfile.ZIP_DEFLATED) -> Entry:
    """An entry whose directory declares ``declared`` (its size, its CRC-32) while its data hold ``declared`` and
    then ``hidden`` and four bytes that make the whole's CRC-32 the declared part's: Python's zipfile reads the
    declared bytes and finds the CRC right; calamine reads a stored entry's every byte and a deflated one to the end
    of its stream."""
    whole = declared + hidden
    whole += forge_crc(whole, zlib.crc32(declared))
    if method == zipfile.ZIP_STORED:
        return Entry(name, [whole], zlib.crc32(declared), len(declared), method)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return Entry(name, [c.compress(whole) + c.flush()], zlib.crc32(declared), len(declared), method)


def forge_crc(data: bytes, target: int) -> bytes:
    """Four bytes that, appended to ``data``, make its CRC-32 ``target`` (CRC-32 is linear: the register after
    ``data`` is walked back from the wanted one through the table's entries, whose top bytes are all distinct)."""
    table = [_crc_byte(i) for i in range(256)]
    by_top = {entry >> 24: i for i, entry in enumerate(table)}
    want, picks = target ^ 0xFFFFFFFF, []
    for _ in range(4):
        index = by_top[want >> 24]
        picks.append(index)
        want = ((want ^ table[index]) << 8) & 0xFFFFFFFF
    register, out = zlib.crc32(data) ^ 0xFFFFFFFF, bytearray()
    for index in reversed(picks):
        out.append((register ^ index) & 0xFF)
        register = (register >> 8) ^ table[index]
    assert zlib.crc32(data + out) == target
    return bytes(out)


def _crc_byte(value: int) -> int:
    for _ in range(8):
        value = (value >> 1) ^ 0xEDB88320 if value & 1 else value >> 1
    return value


def entries_of(xlsx: Path) -> list[Entry]:
    """Every entry of an existing workbook, re-deflated (to be replaced or extended)."""
    with zipfile.ZipFile(xlsx) as zf:
        return [deflated(i.filename, zf.read(i)) for i in zf.infolist()]


def write_zip(path: Path, entries: list[Entry]) -> None:
    central = []
    with open(path, "wb") as fh:
        for e in entries:
            offset, name, comp = fh.tell(), e.name.encode("utf-8"), sum(len(p) for p in e.parts)
            big = e.size >= 0xFFFFFFFF or comp >= 0xFFFFFFFF
            extra = struct.pack("<HHQQ", 1, 16, e.size, comp) if big else b""
            sizes = (0xFFFFFFFF, 0xFFFFFFFF) if big else (comp, e.size)
            # version needed, flags, method, time, date, CRC, sizes, name and extra lengths: in both headers
            common = (45 if big else 20, 0, e.method, 0, 0x21, e.crc, *sizes, len(name), len(extra))
            fh.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *common) + name + extra)
            for part in e.parts:
                fh.write(part)
            central.append(
                struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, *common, 0, 0, 0, 0, offset) + name + extra
            )
        start = fh.tell()
        fh.write(b"".join(central))
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), fh.tell() - start, start, 0))


def _gf2_times(matrix: list[int], vector: int) -> int:
    out, i = 0, 0
    while vector:
        if vector & 1:
            out ^= matrix[i]
        vector >>= 1
        i += 1
    return out


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from crc(A), crc(B) and len(B) (zlib's algorithm)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _crc_repeat(block: bytes, count: int) -> int:
    """CRC-32 of ``block * count`` by doubling."""
    result, power, power_len = 0, zlib.crc32(block), len(block)
    while count:
        if count & 1:
            result = crc32_combine(result, power, power_len)
        power, power_len = crc32_combine(power, power, power_len), power_len * 2
        count >>= 1
    return result

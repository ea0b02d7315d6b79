"""Other spreadsheet readers' own test workbooks, run through our pipeline as agency files.

The files are not committed: each archive is a published package (PyPI sdist, npm tarball) pinned by URL and
SHA-256, downloaded once into a cache folder (``DCF_PEER_CACHE``, default ``~/.cache/dcf-peer-workbooks``) and read
from there. What they add over our generated corpus: workbooks written by other tools (LibreOffice, Excel for Mac,
Google Sheets, old Excel, Java and JavaScript writers), in formats we do not expect in an ``.xlsx`` slot (xls, xlsb,
ods), password-protected ones, empty ones, tables, rich text, shared formulas and odd styles.

    python -m tests.hostile.peers            # fetch (if needed) and list the workbooks with their origin
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
_PYPI = "https://files.pythonhosted.org/packages"


@dataclass(frozen=True)
class PeerArchive:
    name: str  # the peer and version, used in file names
    url: str
    sha256: str


PEERS = [
    # calamine (the reader we use) through its Python binding: xls/xlsb/ods/xlsx twins, password-protected files,
    # empty files, tables
    PeerArchive(
        "python-calamine-0.9.1",
        f"{_PYPI}/68/ec/923684e9d817b4b317942c9dd36a66cd213a3c0abcb3c58d2cb22e3a4355/python_calamine-0.9.1.tar.gz",
        "458094c3dd41bd330c0a43d20e23489964ba28b3301687f1c5acc03c81d06a9f",
    ),
    # xlsx2csv: workbooks from many writers (weird input, junk, no cell ids, odd namespaces, inline strings, xlsm)
    PeerArchive(
        "xlsx2csv-0.8.6",
        f"{_PYPI}/62/36/9d53c4a72dcdc08fcf46f3d02f71f22bc693bb66e87bd935e0c9668500ad/xlsx2csv-0.8.6.tar.gz",
        "618fc502612860de8ab8e3d6195e99ef332fffc68337f6b89e59690aad0d20b5",
    ),
    # pyexcel-xlsx: merged cells, hidden sheets, an empty sheet, date fields, an .xls
    PeerArchive(
        "pyexcel-xlsx-0.6.1",
        f"{_PYPI}/b0/a2/f54dd1f3c57c8a7fc7ac40bf96688f5725fd33becf104f1468ef284ffb4c/pyexcel_xlsx-0.6.1.tar.gz",
        "80b7985d394b73abf5c52212027bbbc0c7f6090192bcbc76403f8672d74c7960",
    ),
    # xlsx-populate (JavaScript): its examples, an encrypted workbook among them
    PeerArchive(
        "xlsx-populate-1.21.0",
        "https://registry.npmjs.org/xlsx-populate/-/xlsx-populate-1.21.0.tgz",
        "7e7431c2b706062c8ea5460a574eeede2e65f8264d7be604af10d9f4e46d3eb4",
    ),
]


def cache_dir() -> Path:
    return Path(os.environ.get("DCF_PEER_CACHE") or Path.home() / ".cache" / "dcf-peer-workbooks")


class PeersUnavailable(RuntimeError):
    """The archives are not cached and cannot be downloaded (no network)."""


def _archive(peer: PeerArchive, cache: Path) -> bytes:
    path = cache / f"{peer.name}.archive"
    if path.is_file():
        data = path.read_bytes()
    else:
        try:
            with urllib.request.urlopen(peer.url, timeout=60) as response:
                data = response.read()
        except OSError as exc:
            raise PeersUnavailable(f"cannot download {peer.url}: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != peer.sha256:
        path.unlink(missing_ok=True)
        raise ValueError(f"{peer.name}: SHA-256 {digest} is not the pinned {peer.sha256}")
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


def workbooks(cache: Path | None = None) -> list[tuple[str, str, bytes]]:
    """``(peer, member path, content)`` of every workbook in the pinned archives, in a stable order."""
    cache = cache or cache_dir()
    found = []
    for peer in PEERS:
        with tarfile.open(fileobj=io.BytesIO(_archive(peer, cache)), mode="r:gz") as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if member.isfile() and member.name.lower().endswith(WORKBOOK_SUFFIXES):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found.append((peer.name, member.name, handle.read()))
    return found


if __name__ == "__main__":
    for peer, member, data in workbooks():
        print(f"{peer:24} {len(data):>9} {member}")

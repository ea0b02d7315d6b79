"""Writing sample files deterministically: workbooks with fixed document properties and zip-entry timestamps,
the manifest entry every generated file gets, and ``MANIFEST.json``."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from openpyxl import Workbook

from samples.common import FIXED_TIME, MODIFIED_RE, NOTICE, ZIP_TIME


def _deterministic_zip(data: bytes, path: Path) -> None:
    """Rewrite an xlsx so that every zip entry has the same fixed timestamp.

    openpyxl stamps dcterms:modified with the current time on save whatever the workbook
    properties say, so core.xml is patched here too.
    """
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            payload = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                payload = MODIFIED_RE.sub(rb"\g<1>" + stamp + rb"\g<2>", payload)
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, payload)


def save_workbook(wb: Workbook, path: Path) -> None:
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.creator = "dcf.samples (SYNTHETIC)"  # the former module name: files stay byte-identical
    wb.properties.title = NOTICE
    buf = io.BytesIO()
    wb.save(buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    _deterministic_zip(buf.getvalue(), path)


def text_sheet(wb: Workbook, title: str, lines: list[str]) -> None:
    ws = wb.create_sheet(title)
    for line in lines:
        ws.append([line])


def file_entry(path: str, agency: str, kind: str, sheet: str | None, header_row: int) -> dict:
    return {
        "path": path,
        "agency": agency,
        "kind": kind,
        "sheet": sheet,
        "header_row": header_row,
        "data_rows": 0,
        "lines": 0,
        "blank_rows": 0,
        "totals_rows": 0,
        "bad_rows": [],
        "total_amount": None,
    }


def write_manifest(seed: int, entries: list[dict], inbox: Path) -> dict:
    manifest = {"synthetic": True, "notice": NOTICE, "seed": seed, "files": entries}
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "MANIFEST.json").write_text(
        json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n", encoding="utf-8"
    )
    return manifest

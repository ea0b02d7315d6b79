"""OpenDocument spreadsheets built as text, for the pre-check's tests and the hostile corpus: a table's rows and
cells with their repeat counts (what calamine expands into cells)."""

from __future__ import annotations

import io
import zipfile

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
    "<office:body><office:spreadsheet>"
)
TAIL = "</office:spreadsheet></office:body></office:document-content>"
MANIFEST = (
    '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
    '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
    "</manifest:manifest>"
)
VALUE = '<table:table-cell office:value-type="float" office:value="1"{}/>'
EMPTY = "<table:table-cell{}/>"


def cols(n: int) -> str:
    return f' table:number-columns-repeated="{n}"'


def row(cells: str, repeat: int = 1) -> str:
    attr = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
    return f"<table:table-row{attr}>{cells}</table:table-row>"


def table(*rows: str, name: str = "S") -> str:
    return f'<table:table table:name="{name}">{"".join(rows)}</table:table>'


def ods(*tables: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", compress_type=zipfile.ZIP_STORED)
        zf.writestr("content.xml", HEAD + "".join(tables) + TAIL, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("META-INF/manifest.xml", MANIFEST, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


#: the way LibreOffice writes a sheet: its values, then the rest of the sheet as repeated empty cells and rows
LIBREOFFICE = table(
    row(VALUE.format("") * 3 + EMPTY.format(cols(1021))),
    row(EMPTY.format("") + VALUE.format("") + EMPTY.format(cols(1022))),
    row(EMPTY.format(cols(1024)), 1048574),
)

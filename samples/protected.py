"""A password-protected twin of a SYNTHETIC sample workbook, as defense agencies deliver their budgets: the same
workbook encrypted (Office "agile" encryption, msoffcrypto-tool) with a password the caller gives. No password is
shipped: the tests choose their own, and a source YAML names where the pipeline reads it (``password: {env: ...}``
or ``{secret: ...}``, README "Adding an agency")."""

from __future__ import annotations

import io
from pathlib import Path


def write_protected(src: Path, dest: Path, password: str) -> Path:
    """Write ``src`` (an .xlsx) encrypted with ``password`` to ``dest`` (which may be ``src`` itself)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(src.read_bytes())).encrypt(password, out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(out.getvalue())
    return dest

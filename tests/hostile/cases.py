"""What a hostile case is: a file (or link) written into the corpus inbox, the agency whose source config claims it,
and what must happen to it: ``loaded`` (with a rule its quarantined rows must carry, if any), ``failed`` (with the
rule of the file failure, if certain), ``refused`` by discovery (links, FIFOs), ``accepted`` (read at all) or ``any``
(the only promise: no exception escapes and a failure reads as one short line). Helpers shared by the generators.
"""

from __future__ import annotations

import random
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.hostile.zipbuild import deflated, write_zip

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
MIB = 1 << 20


@dataclass(frozen=True)
class Case:
    category: str
    kind: str
    path: str  # absolute path of the file or link written into the inbox
    agency: str
    expect: str = "any"  # loaded | failed | refused | accepted | any
    rule: str | None = None  # failed: the file's rule; loaded: a rule at least one quarantined row carries


@dataclass
class Ctx:
    samples: Path  # the generated sample inbox (read only)
    inbox: Path  # where the corpus is written
    outside: Path  # a folder beside the inbox (link targets that leave it)
    rng: random.Random
    n: int  # the case's number, for unique names

    def base(self, agency_dir: str, name: str) -> Path:
        return self.samples / agency_dir / name

    def dest(self, agency_dir: str, base_name: str, tag: str) -> Path:
        """A name the agency's pattern still matches: the tag goes before the extension."""
        stem, dot, ext = base_name.rpartition(".")
        folder = self.inbox / agency_dir
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{stem}_h{self.n:04d}{tag}{dot}{ext}"


XLSX_BASES = [
    ("mod", "MOD", "MOD_budget_FY2024.xlsx"),
    ("mof", "MOF", "MOF_budget_FY2024.xlsx"),
    ("gip", "GIP", "GIP_budget_2023-24.xlsx"),
    ("moi", "MOI", "MOI_budget_1445.xlsx"),
    ("sang", "SANG", "SANG_budget_2024.xlsx"),
    ("gip", "GIP", "GIP_programs.xlsx"),
]
GAMI = ("gami", "GAMI", "GAMI_budget_2024.csv")


def pick_xlsx(ctx: Ctx) -> tuple[str, str, str]:
    return ctx.rng.choice(XLSX_BASES)


def case(
    ctx: Ctx, category: str, kind: str, path: Path, agency: str, expect: str = "any", rule: str | None = None
) -> Case:
    return Case(category, kind, str(path), agency, expect, rule)


def edit_sheets(src: Path, out: Path, edit: Callable[[bytes], bytes]) -> None:
    """Copy a workbook, passing the XML of every worksheet through ``edit``."""
    entries = []
    with zipfile.ZipFile(src) as zf:
        for info in zf.infolist():
            data = zf.read(info)
            entries.append(deflated(info.filename, edit(data) if info.filename.startswith("xl/worksheets/") else data))
    write_zip(out, entries)


def data_rows(xml: bytes, first: int, edit: Callable[[bytes], bytes]) -> bytes:
    return re.sub(
        rb'<row r="(\d+)"[^>]*>.*?</row>',
        lambda m: edit(m.group(0)) if int(m.group(1)) >= first else m.group(0),
        xml,
        flags=re.S,
    )

"""A seeded corpus of hostile inbox files, made by mutating the synthetic sample inbox (samples/) so that every
file routes to a real source config (sources/*.yaml) and reaches the reader its agency uses.

Nothing here is committed: the corpus is written into a temporary folder. Bombs are built with tests/hostile/zipbuild.py
(kilobytes on disk, milliseconds to write). Each case says what must happen to it (tests/hostile/cases.py); the
generators live in tests/hostile/containers.py and tests/hostile/oddities.py.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from tests.hostile import containers as c
from tests.hostile import oddities as o
from tests.hostile.cases import Case, Ctx

KINDS: dict[str, Callable[[Ctx], Case | None]] = {
    f.__name__: f
    for f in [
        c.truncated_xlsx,
        c.random_bytes_xlsx,
        c.garbage_zip,
        c.corrupt_sheet_entry,
        c.empty_xlsx,
        c.shared_strings_bomb,
        c.whitespace_sheet_bomb,
        c.empty_cells_bomb,
        c.far_cells_bomb,
        c.spaced_far_cells_bomb,
        c.hidden_wide_row_bomb,
        c.understated_sheet_bomb,
        c.understated_strings_bomb,
        c.ods_repeat_bomb,
        c.xlsb_far_cells_bomb,
        c.xls_far_cells_bomb,
        c.shared_strings_count_bomb,
        c.other_sheet_type_bomb,
        c.xls_reader_panic,
        c.many_entries,
        c.wall_of_sheets,
        c.lying_dimension,
        c.sparse_csv_8gib,
        o.extreme_dates,
        o.blank_stage,
        o.nul_cells,
        o.formulas_without_values,
        o.error_cells,
        o.hidden_first_sheet,
        o.nul_before_newline,
        o.nul_in_cells,
        o.huge_header_field,
        o.huge_cell,
        o.unbalanced_quote,
        o.stray_cr,
        o.wrong_encoding,
        o.utf7ish,
        o.quoted_newlines,
        o.non_utf8_name,
        o.long_name,
        o.markup_name,
        o.link_outside,
        o.link_passwd,
        o.link_dangling,
        o.link_loop,
        o.link_dir_outside,
        o.link_inside,
        o.fifo,
        o.unix_socket,
    ]
}
#: kinds whose files are all alike: one is enough, however large the corpus
ONCE = {
    "shared_strings_bomb",
    "whitespace_sheet_bomb",
    "empty_cells_bomb",
    "many_entries",
    "wall_of_sheets",
    "sparse_csv_8gib",
    "link_passwd",
}


def build(
    samples: Path, root: Path, seed: int = 0, count: int | None = None, kinds: list[str] | None = None
) -> list[Case]:
    """Write a corpus under ``root`` (``root/inbox`` plus ``root/outside`` for link targets) and return its cases.
    ``count`` None: one file per kind; otherwise about ``count`` files spread over the kinds (seeded)."""
    names = kinds or list(KINDS)
    rng = random.Random(seed)
    ctx = Ctx(samples, root / "inbox", root / "outside", rng, 0)
    plan = list(names)
    if count is not None:
        repeatable = [k for k in names if k not in ONCE]
        plan += [rng.choice(repeatable) for _ in range(max(count - len(names), 0))]
    cases = []
    for n, kind in enumerate(plan):
        ctx.n = n
        case = KINDS[kind](ctx)
        if case is not None:
            cases.append(replace(case, kind=kind))  # named after its generator
    (root / "cases.json").write_text(json.dumps([asdict(c) for c in cases], ensure_ascii=True))
    return cases


def load_cases(root: Path) -> list[Case]:
    return [Case(**c) for c in json.loads((root / "cases.json").read_text())]

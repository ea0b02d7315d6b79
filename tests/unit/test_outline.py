"""schemas/outline.py: the few keys dcf status reads from the source YAMLs without building the pydantic models
must say exactly what the validated configs say about who owns which inbox entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.outline import SourceOutline, first_match, read_outlines
from schemas.sources import load_sources

ROOT = Path(__file__).resolve().parents[2]


def test_first_match_is_the_first_matching_pattern():
    assert first_match(["*.csv", "MOD_*.csv"], "MOD_programs.csv") == 0
    assert first_match(["*.xlsx", "MOD_*.csv"], "MOD_programs.csv") == 1
    assert first_match(("*.xlsx",), "MOD_programs.csv") is None
    assert first_match([], "x.csv") is None


def test_outlines_agree_with_the_validated_sources():
    outlines = read_outlines(ROOT / "sources")
    configs = load_sources(ROOT / "sources")
    assert [(o.agency, o.inbox_dir, o.patterns) for o in outlines] == [
        (c.agency, c.inbox_dir, tuple(f.pattern for f in c.files)) for c in configs
    ]
    names = [
        "MOD_budget_FY2024.xlsx",
        "MOD_programs.csv",
        "GIP_programs.xlsx",
        "SIPRI-Milex-data-2008-2024.xlsx",
        "transfer_register_2025.csv",
        "pledges_2025-06.csv",
        "notes.txt",
    ]
    for outline, config in zip(outlines, configs):
        for name in names:
            spec = config.spec_for(name)
            assert outline.spec_for(name) == (None if spec is None else config.files.index(spec)), (outline, name)


@pytest.mark.parametrize(
    "text",
    [
        "agency: MOD\ninbox_dir: mod\n",  # no files
        "agency: MOD\ninbox_dir: mod\nfiles: {pattern: x}\n",  # files not a list
        "agency: MOD\nfiles:\n  - pattern: '*.csv'\n",  # no inbox_dir
        "agency: [MOD]\ninbox_dir: mod\nfiles:\n  - pattern: '*.csv'\n",  # agency not text
        "agency: MOD\ninbox_dir: mod\nfiles:\n  - kind: budget\n",  # a file without a pattern
        "agency: MOD\ninbox_dir: mod\nfiles:\n  - pattern: '*.csv\n",  # broken YAML
        "- just a list\n",
    ],
)
def test_a_yaml_that_cannot_be_outlined_is_refused_never_guessed(tmp_path, text):
    (tmp_path / "mod.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="mod.yaml"):
        read_outlines(tmp_path)


def test_outlines_are_sorted_by_agency(tmp_path):
    for code in ("ZED", "ABC"):
        (tmp_path / f"{code.lower()}.yaml").write_text(
            f"agency: {code}\ninbox_dir: {code.lower()}\nfiles:\n  - pattern: '{code}_*.csv'\n", encoding="utf-8"
        )
    assert read_outlines(tmp_path) == [
        SourceOutline("ABC", "abc", ("ABC_*.csv",)),
        SourceOutline("ZED", "zed", ("ZED_*.csv",)),
    ]

"""One hostile file of every kind (tests/hostile/corpus.py) through discovery and ``process_file``: nothing escapes,
every file gets an outcome a steward can read, the bombs are refused fast and without expanding (in a child process
whose address space is capped), and the good sample files beside them load exactly as they do alone.

The whole corpus (about 2,000 files) runs with ``make fuzz`` (tests/hostile/test_hostile_fuzz.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.hostile.corpus import KINDS, build
from tests.hostile.run import REFERENCE, ROOT, run_corpus

BOMBS = [
    "shared_strings_bomb",
    "whitespace_sheet_bomb",
    "empty_cells_bomb",
    "far_cells_bomb",
    "spaced_far_cells_bomb",
    "hidden_wide_row_bomb",
    "understated_sheet_bomb",
    "understated_strings_bomb",
    "ods_repeat_bomb",
    "xlsb_far_cells_bomb",
    "xls_far_cells_bomb",
    "shared_strings_count_bomb",
    "other_sheet_type_bomb",
    "many_entries",
    "wall_of_sheets",
    "lying_dimension",
    "sparse_csv_8gib",
]
OTHERS = [k for k in KINDS if k not in BOMBS]


@pytest.fixture(scope="module")
def corpus(sample_inbox, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    build(sample_inbox[0], root, seed=7, kinds=OTHERS)
    return root


@pytest.fixture(scope="module")
def outcomes(corpus):
    return run_corpus(corpus)


def test_every_kind_is_in_the_corpus(outcomes):
    assert set(OTHERS) - {o.kind for o in outcomes} <= {"unix_socket"}  # a socket needs a short path


@pytest.mark.parametrize("kind", OTHERS)
def test_no_exception_escapes_and_every_promise_holds(outcomes, kind):
    """Per case: no exception, a FileBatch, a failed file has one line of at most 500 characters naming it and a
    catalogued rule, a loaded file's counts reconcile, and what the case expects happened (tests/hostile/run.py)."""
    mine = [o for o in outcomes if o.kind == kind]
    if not mine and kind == "unix_socket":
        pytest.skip("the temporary path is too long for an AF_UNIX socket")
    assert mine, f"no outcome for {kind}"
    for o in mine:
        assert o.status != "crashed", o.message
        assert not o.problems, (o.path, o.problems, o.message)
        if o.status == "failed":
            assert (
                Path(o.path).name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")[:20]
                in o.message
            )


def test_files_nobody_planted_are_judged_too(outcomes):
    """Discovery finds what the corpus did not list (a link's target, the second link of a loop): still no crash."""
    assert all(o.status != "crashed" and not o.problems for o in outcomes)


def test_bombs_are_refused_fast_without_expanding(sample_inbox, tmp_path):
    """In a child process whose address space is capped at its size after imports plus 1 GiB: a bomb that got
    past the checks would be expanded and kill the child (calamine aborts on a failed allocation)."""
    build(sample_inbox[0], tmp_path, seed=11, kinds=BOMBS)
    run = subprocess.run(
        [sys.executable, "-m", "tests.hostile.run", "--root", str(tmp_path), "--reuse", "--json", "--memory-gib", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-2000:]
    results = {o["kind"]: o for o in map(json.loads, run.stdout.splitlines())}
    assert set(results) == set(BOMBS)
    for kind, o in results.items():
        if kind == "lying_dimension":  # harmless: calamine sizes the sheet by its cells
            assert o["status"] == "loaded", o
            continue
        assert o["status"] == "failed" and len(o["message"]) <= 500 and "\n" not in o["message"], o
        if kind == "wall_of_sheets":  # not refused: calamine reads its 3,000 sheet names, then the sheet is missing
            assert "3,000 sheet(s)" in o["message"] and o["cpu_seconds"] < 20, o
        elif kind.startswith("understated_"):  # refused as its entry outgrows the size its directory declares
            assert o["rule"] == "file_unreadable" and "its directory declares" in o["message"], o
            assert o["cpu_seconds"] < 2.0, o
        else:  # refused from the zip directory or the sheet scan, before calamine opens it
            assert o["rule"] == "file_too_large" and "DCF_MAX_" in o["message"] and o["cpu_seconds"] < 2.0, o


def test_good_files_load_the_same_beside_hostile_ones(sample_inbox, tmp_path):
    """The hostile corpus written into a copy of the sample inbox, beside the good files: every good file gives
    exactly the rows, failures and counts it gives alone."""
    from flows.discover import find_files
    from flows.process import process_file
    from flows.reference import read_reference
    from schemas.sources import load_sources
    from tests.hostile.run import _task

    sources, reference = load_sources(ROOT / "sources"), read_reference(REFERENCE)
    clean = sample_inbox[0]
    mixed = tmp_path / "inbox"
    shutil.copytree(clean, mixed)
    build(clean, tmp_path, seed=7, kinds=OTHERS)
    found = {p.relative_to(mixed): (p, s) for p, s in find_files(mixed, sources)}
    good = [p for p, _ in find_files(clean, sources)]
    assert len(good) >= 17 and len(found) > len(good)
    for path in good:
        rel = path.relative_to(clean)
        mixed_path, src = found[rel]
        alone = process_file(_task(path, clean, src), reference)
        beside = process_file(_task(mixed_path, mixed, src), reference)
        assert beside.status == alone.status == "loaded" and beside.counts == alone.counts, rel
        for name in ("rows", "failures", "quarantined", "skipped"):
            a, b = getattr(alone, name), getattr(beside, name)
            if a is None:
                assert b is None
            else:
                pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), obj=f"{rel} {name}")
        for table, frame in alone.tables.items():
            pd.testing.assert_frame_equal(frame, beside.tables[table], obj=f"{rel} {table}")


def test_refused_entries_are_reported_with_a_reason(corpus):
    from flows.discover import describe_refused, refused_entries
    from schemas.sources import load_sources

    refused = refused_entries(corpus / "inbox", load_sources(ROOT / "sources"))
    lines = [describe_refused(r, corpus / "inbox") for r in refused]
    assert len(lines) >= 7 and all(line.startswith("GAMI/") and ": " in line for line in lines)
    assert any(
        line.endswith("symbolic link that leads outside the agency's inbox folder; not read (copy the file in instead)")
        and "link_passwd" in line
        for line in lines
    )

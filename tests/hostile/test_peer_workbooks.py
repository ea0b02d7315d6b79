"""Other readers' test workbooks (tests/hostile/peers.py: python-calamine, xlsx2csv, pyexcel-xlsx, xlsx-populate) put
into agency slots of a copy of the sample inbox: once where the source reads the first sheet whatever its name and
finds the header itself (GIP's budget, so the peer's content is read through), once where a named sheet is expected
(a budget or programme register of another agency, in turn): no
exception escapes ``process_file``, every file gets an outcome a steward can read (one line naming the file and a
catalogued rule, or counts that reconcile), the encrypted ones fail, and the good sample files beside them load
exactly as they do alone. Skipped (with the reason) only when the archives are neither cached nor downloadable."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.hostile.cases import XLSX_BASES, Case
from tests.hostile.peers import PeersUnavailable, workbooks
from tests.hostile.run import run_corpus

FIRST_SHEET_SLOT = ("gip", "GIP", "GIP_budget_2023-24.xlsx")  # sources/gip.yaml: sheet 0, header detected
NAMED_SHEET_SLOTS = [b for b in XLSX_BASES if b != FIRST_SHEET_SLOT]


@pytest.fixture(scope="module")
def peer_files():
    try:
        found = workbooks()
    except PeersUnavailable as exc:
        pytest.skip(f"peer workbooks unavailable: {exc}")
    assert len(found) >= 50, len(found)  # the pinned archives hold 55
    return found


@pytest.fixture(scope="module")
def run(peer_files, sample_inbox, tmp_path_factory):
    root = tmp_path_factory.mktemp("peers")
    inbox = root / "inbox"
    shutil.copytree(sample_inbox[0], inbox)
    cases = []
    for n, (peer, member, data) in enumerate(peer_files):
        tag = re.sub(r"[^A-Za-z0-9]+", "-", f"{peer}-{Path(member).name}")[:80]
        for folder, agency, base in (FIRST_SHEET_SLOT, NAMED_SHEET_SLOTS[n % len(NAMED_SHEET_SLOTS)]):
            stem, _, ext = base.rpartition(".")
            dest = inbox / folder / f"{stem}_p{n:03d}_{tag}.{ext}"
            dest.write_bytes(data)
            encrypted = "password" in member or "encryption/out" in member
            cases.append(Case("peer", f"{peer}:{member}", str(dest), agency, "failed" if encrypted else "any"))
    (root / "cases.json").write_text(json.dumps([asdict(c) for c in cases], ensure_ascii=True))
    outcomes = run_corpus(root)
    alone = {Path(o.path).relative_to(sample_inbox[0]): o for o in run_corpus_clean(sample_inbox[0], tmp_path_factory)}
    return cases, outcomes, alone, inbox


def run_corpus_clean(samples: Path, tmp_path_factory) -> list:
    """The sample files alone, through the same runner (a corpus with no cases)."""
    root = tmp_path_factory.mktemp("peers-alone")
    shutil.copytree(samples, root / "inbox")
    (root / "cases.json").write_text("[]")
    outcomes = run_corpus(root)
    for o in outcomes:
        o.path = str(samples / Path(o.path).relative_to(root / "inbox"))
    return outcomes


def test_every_peer_workbook_gets_an_outcome_and_nothing_escapes(run):
    cases, outcomes, _, _ = run
    by_path = {o.path: o for o in outcomes}
    assert {c.path for c in cases} <= set(by_path)
    problems = [
        (o.kind, o.status, o.problems, (o.message or "")[:200]) for o in outcomes if o.problems or o.status == "crashed"
    ]
    assert not problems, problems
    for c in cases:
        o = by_path[c.path]
        assert o.status in ("loaded", "failed"), (c.kind, o.status, o.message)
        if o.status == "failed":  # one line that names the file, so a steward knows which one
            assert Path(c.path).name[:20] in (o.message or ""), (c.kind, o.message)


def test_encrypted_workbooks_fail_with_a_plain_reason(run):
    cases, outcomes, _, _ = run
    by_path = {o.path: o for o in outcomes}
    encrypted = [by_path[c.path] for c in cases if c.expect == "failed"]
    assert len(encrypted) >= 8  # four password-protected calamine files and xlsx-populate's, in two slots each
    assert all(o.status == "failed" and o.rule == "file_unreadable" for o in encrypted), encrypted
    # what the steward can act on, not calamine's "Cannot detect file format" (xls hides its FILEPASS record deeper)
    plain = [o for o in encrypted if "password-protected" in (o.message or "")]
    assert len(plain) == len(encrypted) and all("without a password" in o.message for o in plain), [
        (o.kind, o.message) for o in encrypted
    ]
    empty = [
        o for c, o in ((c, by_path[c.path]) for c in cases) if c.kind.endswith(("/empty_file.xlsx", "/empty_file.ods"))
    ]
    assert len(empty) == 4 and all("the file is empty (0 bytes)" in o.message for o in empty), empty


def test_good_files_beside_peer_workbooks_load_as_they_do_alone(run):
    _, outcomes, alone, inbox = run
    beside = {Path(o.path).relative_to(inbox): o for o in outcomes if not re.search(r"_p\d{3}_", Path(o.path).name)}
    assert len(alone) >= 17 and set(alone) == set(beside)
    for rel, o in alone.items():
        assert o.status == beside[rel].status == "loaded", rel
        assert o.counts == beside[rel].counts, rel

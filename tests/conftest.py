"""Shared fixtures. The sample inbox is generated once per session (it is synthetic and deterministic)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "sources"
#: the reference tables the tests are written against: a frozen copy, so a steward's new mapping in reference/ (the
#: live tables) never changes what a test expects; every flow and ``dcf`` the tests start reads it (DCF_REFERENCE)
REFERENCE = ROOT / "tests" / "fixtures" / "reference"
os.environ["DCF_REFERENCE"] = str(REFERENCE)


@pytest.fixture(scope="session")
def reference():
    from flows.reference import read_reference

    return read_reference(REFERENCE)


@pytest.fixture(scope="session")
def sources():
    from schemas.sources import load_sources

    return load_sources(SOURCES)


@pytest.fixture(scope="session")
def sample_inbox(tmp_path_factory) -> tuple[Path, dict]:
    """The demo inbox (read-only for tests: copy it before changing anything) and its manifest."""
    from samples import generate_inbox

    inbox = tmp_path_factory.mktemp("sample") / "inbox"
    manifest = generate_inbox(inbox, seed=42)
    return inbox, manifest


@pytest.fixture
def inbox_copy(sample_inbox, tmp_path) -> tuple[Path, dict]:
    inbox, manifest = sample_inbox
    dest = tmp_path / "inbox"
    shutil.copytree(inbox, dest)
    return dest, json.loads(json.dumps(manifest))

"""The whole hostile corpus (about 2,000 seeded files, every kind): ``make fuzz``, or ``DCF_FUZZ=1 pytest -m fuzz``.
Skipped in the normal run (it takes minutes); tests/hostile/test_hostile_fast.py runs one file of each kind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.hostile.run import ROOT

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.skipif(
        os.environ.get("DCF_FUZZ") != "1", reason="the whole hostile corpus runs with make fuzz (DCF_FUZZ=1)"
    ),
]


def test_the_whole_corpus_breaks_no_promise():
    count = os.environ.get("DCF_FUZZ_COUNT", "2000")
    run = subprocess.run(
        [sys.executable, "-m", "tests.hostile.run", "--count", count, "--memory-gib", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=7200,
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]

"""The flow itself is exclusive, however it is started: not only ``dcf run``'s early check, but the nightly flow run
as ``python -m flows.nightly`` (what a deployment's worker does: it calls the flow function) and the replay flow,
refuse to start while another process holds the warehouse's ingestion lock, and touch nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from warehouse.publish import exclusive_lock

ROOT = Path(__file__).resolve().parents[2]

STARTS = {
    "python -m flows.nightly": [sys.executable, "-m", "flows.nightly"],
    "the replay flow": [
        sys.executable,
        "-c",
        textwrap.dedent("""
            from flows.nightly import run_locally
            from flows.replay import replay_quarantine
            run_locally(replay_quarantine)
        """),
    ],
}


@pytest.mark.parametrize("how", sorted(STARTS))
def test_a_flow_started_without_the_cli_waits_for_no_one_and_writes_nothing(how, inbox_copy, tmp_path):
    inbox, _ = inbox_copy
    wh = tmp_path / "wh" / "warehouse.duckdb"
    wh.parent.mkdir()
    env = {**os.environ, "DCF_INBOX": str(inbox), "DCF_WAREHOUSE": str(wh)}
    with exclusive_lock(wh):  # another ingestion (this process) holds the warehouse
        held = subprocess.run(STARTS[how], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert held.returncode != 0, held.stdout + held.stderr
    assert "another ingestion is running (pid " in held.stdout + held.stderr
    assert not wh.exists()  # nothing created, nothing published
    assert sorted(p.name for p in wh.parent.iterdir()) == ["warehouse.duckdb.lock"]

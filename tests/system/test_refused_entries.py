"""Inbox entries that are not regular files inside the agency folder (a link to /etc/passwd, a link leaving the
inbox, a FIFO) are never read, and the load records each with its reason (audit_refused_entry), which
``dcf status`` shows; the steward export writes nothing of them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from flows.nightly import run_nightly

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_refused_entries_are_recorded_with_their_reason_and_never_read(sample_inbox, tmp_path):
    inbox, _ = sample_inbox
    dest = tmp_path / "inbox"
    shutil.copytree(inbox / "gami", dest / "gami")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "GAMI_budget_2030.csv"
    secret.write_text("not for the warehouse\n")
    os.symlink("/etc/passwd", dest / "gami" / "GAMI_budget_2031.csv")
    os.symlink(secret, dest / "gami" / "GAMI_budget_2030.csv")
    os.mkfifo(dest / "gami" / "GAMI_budget_2032.csv")
    wh = tmp_path / "wh.duckdb"

    summary = run_nightly(inbox=str(dest), warehouse=str(wh))
    assert summary.exit_code == 0, summary.files  # refused entries fail no file and publish as usual
    with duckdb.connect(str(wh), read_only=True) as con:
        refused = dict(con.execute("SELECT entry, reason FROM audit_refused_entry").fetchall())
        read = {r[0] for r in con.execute("SELECT file_key FROM audit_source_file").fetchall()}
    names = {f"GAMI/GAMI_budget_{y}.csv" for y in (2030, 2031, 2032)}
    assert set(refused) == names and not (read & names)
    assert "outside" in refused["GAMI/GAMI_budget_2031.csv"] and "FIFO" in refused["GAMI/GAMI_budget_2032.csv"]

    env = {**os.environ, "COLUMNS": "200"}
    status = subprocess.run(
        [sys.executable, "-m", "dcf.cli", "status", "--warehouse", str(wh), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    shown = {e["entry"]: e["reason"] for e in json.loads(status.stdout)["refused_entries"]}
    assert shown == refused

    export = subprocess.run(
        [sys.executable, "-m", "dcf.cli", "failures", "--warehouse", str(wh), "--export", str(tmp_path / "steward")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert export.returncode == 0, export.stderr
    for book in (tmp_path / "steward").glob("*.xlsx"):
        assert "2030" not in book.name and "2031" not in book.name and "2032" not in book.name
        assert b"root:x:0:0" not in book.read_bytes()

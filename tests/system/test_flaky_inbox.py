"""A flaky inbox, for real: a workbook still being copied into the inbox while the nightly flow runs is waited for
(retries with backoff within the run) and loads complete, instead of failing as a truncated file. No timing: the
copy is made to go on between discovery and reading."""

from __future__ import annotations

import hashlib
import logging

import duckdb

from flows.nightly import run_nightly


def test_a_file_still_being_copied_is_waited_for_and_loads_whole(inbox_copy, tmp_path, monkeypatch, caplog):
    """Deterministic, whatever the machine's speed: the copy goes on exactly between discovery (which hashes the
    first third of the workbook) and reading (which must notice, wait for the file to settle and read it whole)."""
    from flows import nightly_discover

    inbox, manifest = inbox_copy
    entry = next(f for f in manifest["files"] if f["path"].endswith("MOD_budget_FY2024.xlsx"))
    path = inbox / entry["path"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    found = nightly_discover.describe_seen

    def discovered_then_copied(p):
        seen = found(p)
        if p == path and path.stat().st_size < len(data):
            with path.open("ab") as fh:  # the rest of the copy arrives after discovery looked
                fh.write(data[len(data) // 3 :])
        return seen

    monkeypatch.setattr(nightly_discover, "describe_seen", discovered_then_copied)
    monkeypatch.setenv("DCF_READ_ATTEMPTS", "8")
    monkeypatch.setenv("DCF_READ_BACKOFF", "1.0")
    caplog.set_level(logging.WARNING)
    summary = run_nightly(inbox=str(inbox), warehouse=str(tmp_path / "wh.duckdb"))
    assert path.read_bytes() == data
    mod = next(f for f in summary.files if f["file"] == "MOD/MOD_budget_FY2024.xlsx")
    assert mod["status"] == "loaded", mod["message"]
    assert mod["rows_read"] == entry["data_rows"] and summary.outcome == "success"
    assert any("changed since it was found (still being copied?)" in r.getMessage() for r in caplog.records)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    try:  # the version recorded is the complete file, so tomorrow's run sees it as unchanged
        stored = con.execute(
            "SELECT file_hash FROM audit_source_file WHERE file_key = 'MOD/MOD_budget_FY2024.xlsx' AND is_current"
        ).fetchone()[0]
        assert stored == hashlib.sha256(data).hexdigest()
        assert con.execute("SELECT bool_and(reconciles) FROM file_reconciliation").fetchone()[0]
    finally:
        con.close()

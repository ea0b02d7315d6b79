"""A flaky inbox, for real: a workbook still being copied into the inbox while the nightly flow runs is waited for
(retries with backoff within the run) and loads complete, instead of failing as a truncated file."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import duckdb

from flows.nightly import run_nightly


def test_a_file_still_being_copied_is_waited_for_and_loads_whole(inbox_copy, tmp_path, monkeypatch, caplog):
    inbox, manifest = inbox_copy
    entry = next(f for f in manifest["files"] if f["path"].endswith("MOD_budget_FY2024.xlsx"))
    path = inbox / entry["path"]
    data = path.read_bytes()
    head, rest = data[: len(data) // 3], data[len(data) // 3 :]
    path.write_bytes(head)
    chunks = [rest[i : i + max(1, len(rest) // 120)] for i in range(0, len(rest), max(1, len(rest) // 120))]

    def copy_slowly():  # like a large file arriving over a share: ~6 s of small appends
        for chunk in chunks:
            time.sleep(0.05)
            with path.open("ab") as fh:
                fh.write(chunk)

    monkeypatch.setenv("DCF_READ_ATTEMPTS", "8")
    monkeypatch.setenv("DCF_READ_BACKOFF", "1.0")  # waits 1, 2, 4, 8, 8 ... s: plenty for the copy to finish
    writer = threading.Thread(target=copy_slowly)
    caplog.set_level(logging.WARNING)
    writer.start()
    try:
        summary = run_nightly(inbox=str(inbox), warehouse=str(tmp_path / "wh.duckdb"))
    finally:
        writer.join()
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

"""Per-file extraction and validation on Dask (prefect-dask, a LocalCluster of worker processes) loads exactly
what the default thread-pool runner loads."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from flows.nightly import dask_runner, nightly_ingestion, run_locally

pytestmark = pytest.mark.slow
COMPARED = {
    "fact_funding_line": "* EXCLUDE (load_id)",
    "dim_program": "* EXCLUDE (load_id)",
    "quarantine_row": "* EXCLUDE (load_id)",
    "skipped_row": "* EXCLUDE (load_id)",
    "audit_validation_failure": "file_key, sheet, excel_row, cell, source_column, value, rule, severity, message, suggestion, status",
    "audit_source_file": "file_key, file_hash, status, rows_read, rows_loaded, rows_quarantined, rows_skipped, message",
}


def content(path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            t: hashlib.sha256(repr(con.execute(f"SELECT {cols} FROM {t} ORDER BY ALL").fetchall()).encode()).hexdigest()
            for t, cols in COMPARED.items()
        }


def test_dask_run_loads_exactly_what_the_default_runner_loads(sample_inbox, tmp_path):
    inbox, manifest = sample_inbox
    default = run_locally(nightly_ingestion, inbox=str(inbox), warehouse=str(tmp_path / "threads.duckdb"))
    on_dask = run_locally(
        nightly_ingestion.with_options(task_runner=dask_runner(n_workers=2)),
        inbox=str(inbox),
        warehouse=str(tmp_path / "dask.duckdb"),
    )
    assert on_dask.totals == default.totals and default.totals["files_processed"] == len(manifest["files"])
    assert content(tmp_path / "dask.duckdb") == content(tmp_path / "threads.duckdb")

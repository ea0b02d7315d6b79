"""One file whose rows cannot be stored (here: a value Arrow cannot convert, not a database error) fails alone; the
other files of the load are stored, and the machine's own problems still stop the load (warehouse/store.py
``load_batches``)."""

from __future__ import annotations

import errno
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from flows.kinds.base import as_failed
from flows.nightly_steps import _dimensions
from flows.process import FileTask, describe, process_file
from flows.reference import read_reference
from schemas.sources import load_sources
from tests.conftest import REFERENCE
from warehouse.store import LoadInfo, Staging

ROOT = Path(__file__).resolve().parents[2]


def _batches(sample_inbox):
    inbox, _ = sample_inbox
    sources = load_sources(ROOT / "sources")
    reference = read_reference(REFERENCE)
    gami = next(s for s in sources if s.agency == "GAMI")
    out = []
    for name in ("GAMI_budget_2024.csv", "GAMI_budget_2025.csv"):
        path = inbox / "gami" / name
        digest, size, mtime = describe(path)
        out.append(
            process_file(FileTask(path, f"GAMI/{name}", digest, "t", size, mtime, gami, gami.spec_for(name)), reference)
        )
    return out, reference, sources


def _reject(batch, exc):
    return as_failed(batch, "file_unreadable", f"could not be stored ({type(exc).__name__})")


def _staging(tmp_path, reference, sources):
    staging = Staging(tmp_path / "wh.duckdb")
    for table, frame in _dimensions(reference, sources).items():
        staging.replace_dimension(table, frame)
    return staging, LoadInfo("L1", datetime(2026, 1, 1), None, "test", "inbox")


def test_a_batch_arrow_cannot_convert_fails_alone(sample_inbox, tmp_path):
    (good, bad), reference, sources = _batches(sample_inbox)
    bad = replace(bad, rows=bad.rows.assign(program_name=[object()] * len(bad.rows)))  # not text, not anything
    staging, load = _staging(tmp_path, reference, sources)
    try:
        stored = staging.load_batches([bad, good], load, datetime(2026, 1, 1), on_reject=_reject)
        assert [b.status for b in stored] == ["failed", "loaded"]
        assert "ArrowInvalid" in stored[0].message or "ArrowTypeError" in stored[0].message
        staging.check()
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        per_file = dict(con.execute("SELECT file_key, count(*) FROM fact_funding_line GROUP BY ALL").fetchall())
        status = dict(con.execute("SELECT file_key, status FROM audit_source_file").fetchall())
    assert per_file == {good.file_key: good.counts["rows_loaded"]}
    assert status == {good.file_key: "loaded", bad.file_key: "failed"}


def test_the_machines_problems_still_stop_the_load(sample_inbox, tmp_path, monkeypatch):
    (good, _), reference, sources = _batches(sample_inbox)
    staging, load = _staging(tmp_path, reference, sources)

    def disk_full(*_):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(Staging, "_insert", disk_full)
    try:
        with pytest.raises(OSError):
            staging.load_batches([good], load, datetime(2026, 1, 1), on_reject=_reject)
    finally:
        staging.discard()

"""A night with nothing new publishes nothing and keeps every version (issue 14, point 8): idle nights never use up
the kept versions (the rollback window), never rewrite the published file, and a night that changes something still
publishes. What counts as a change is asked of the last published state (warehouse/quiet.py)."""

from __future__ import annotations

import os
import shutil
from datetime import datetime

import duckdb
import pytest

import flows.nightly_load as nightly_load
from flows.nightly import run_nightly
from flows.nightly_steps import _dimensions
from warehouse import publish
from warehouse.quiet import reasons_to_publish

pytestmark = pytest.mark.slow


def _current_keys(wh) -> set[str]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return {k for (k,) in con.execute("SELECT file_key FROM audit_source_file WHERE is_current").fetchall()}


def test_idle_nights_keep_every_version_and_leave_the_published_file_alone(inbox_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("DCF_KEEP_VERSIONS", "1")  # a short window (2 versions): idle nights would erase it
    monkeypatch.setattr(publish, "KEEP_VERSIONS", 1)
    inbox, _ = inbox_copy
    wh = tmp_path / "warehouse.duckdb"
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    (inbox / "gami" / "GAMI_budget_2025.csv").unlink()  # withdrawn: a change, published
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).totals["files_withdrawn"] == 1
    assert publish.version_seqs(wh) == [1, 2]
    before = os.stat(wh)
    for _ in range(4):
        night = run_nightly(inbox=str(inbox), warehouse=str(wh))
        assert night.outcome == "nothing_new" and night.totals["files_processed"] == 0
    after = os.stat(wh)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not even rewritten
    assert publish.version_seqs(wh) == [1, 2] and publish.published_seq(wh) == 2
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM audit_load").fetchone() == (2,)

    # a corrupt file (fails the same way every night) is processed and reported, but changes nothing after night 1
    (inbox / "mod" / "MOD_budget_FY2030.xlsx").write_bytes(b"PK\x03\x04 cut short")
    first, second = (run_nightly(inbox=str(inbox), warehouse=str(wh)) for _ in range(2))
    assert first.outcome == second.outcome == "partial" and second.totals["files_failed"] == 1
    assert publish.version_seqs(wh) == [2, 3] and publish.published_seq(wh) == 3
    assert list(tmp_path.glob(f".{wh.name}.staging-*")) == []  # the copy made ahead for the quiet night: removed

    # the published file replaced behind the loader's back (not a warehouse): the next night publishes again
    wh.unlink()
    wh.write_bytes(b"an analyst's export saved over the warehouse")
    run_nightly(inbox=str(inbox), warehouse=str(wh))
    assert publish.published_seq(wh) == 4 and publish.version_seqs(wh) == [3, 4]


def test_what_would_change_is_asked_of_the_published_state(sample_warehouse, reference, sources, sample_inbox):
    wh = sample_warehouse
    keys = _current_keys(wh)
    dims = _dimensions(reference, sources)
    now = datetime.now()
    ask = dict(present=keys, skip_agencies=set(), dimensions=dims, failed_again=[], as_of=now)
    assert reasons_to_publish(wh, **ask) == []
    gone = sorted(keys)[0]
    assert reasons_to_publish(wh, **{**ask, "present": keys - {gone}}) == [
        "1 file(s) withdrawn from or back in the inbox"
    ]
    assert reasons_to_publish(wh, **{**ask, "present": keys - {gone}, "skip_agencies": {gone.split("/")[0]}}) == []
    renamed = {**dims, "dim_agency": dims["dim_agency"].assign(name_en=lambda d: d["name_en"] + " (renamed)")}
    assert reasons_to_publish(wh, **{**ask, "dimensions": renamed}) == ["dim_agency changed"]
    assert reasons_to_publish(wh, **{**ask, "as_of": datetime(2100, 1, 1)}) == []  # every closed year is frozen
    failed = [(gone, "0" * 64, "a file that did not fail before")]
    assert reasons_to_publish(wh, **{**ask, "failed_again": failed}) == [f"{gone} failed differently"]


def test_a_fiscal_year_that_closed_since_the_last_load_publishes(sample_warehouse, reference, sources, tmp_path):
    """The sample's fiscal years have all closed (so their rates were frozen at load). In a copy of the published
    state whose 2024 rates were never frozen, a night with no new file must still publish, to freeze them."""
    wh = tmp_path / "warehouse.duckdb"
    shutil.copyfile(sample_warehouse, wh)
    shutil.copytree(publish.versions_dir(sample_warehouse), publish.versions_dir(wh))
    publish.guard_wal(wh, print)
    newest = publish.version_path(wh, publish.version_seqs(wh)[-1])
    with duckdb.connect(str(newest)) as con:
        thawed = con.execute("DELETE FROM fx_rate_lock WHERE fiscal_year = 2024").fetchone()[0]
    assert thawed > 0
    ask = dict(
        present=_current_keys(wh), skip_agencies=set(), dimensions=_dimensions(reference, sources), failed_again=[]
    )
    assert reasons_to_publish(wh, **ask, as_of=datetime(2024, 1, 1)) == []  # 2024 not closed yet: nothing to freeze
    later = reasons_to_publish(wh, **ask, as_of=datetime.now())
    assert later == [f"{thawed} exchange rate(s) of closed fiscal years to freeze"]


def test_a_staging_copy_is_made_ahead_only_on_a_night_that_will_publish(inbox_copy, tmp_path, monkeypatch):
    """A night with a new or changed file makes its staging copy while the files are read, once; a night whose only
    files are failures tried again makes none (issue 14, point 8: such a night's cost does not grow with the
    warehouse). Counted by a spy that hands every call to the real Staging."""
    made: list[object] = []
    real = nightly_load.Staging

    def counted(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(nightly_load, "Staging", counted)
    inbox, _ = inbox_copy
    wh = tmp_path / "warehouse.duckdb"
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success" and len(made) == 1
    (inbox / "mod" / "MOD_budget_FY2030.xlsx").write_bytes(b"PK\x03\x04 cut short")
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "partial" and len(made) == 2  # new: recorded
    again = run_nightly(inbox=str(inbox), warehouse=str(wh))
    assert again.outcome == "partial" and again.totals["files_failed"] == 1
    assert len(made) == 2 and publish.published_seq(wh) == 2  # failing the same way: no copy, nothing published
    (inbox / "gami" / "GAMI_budget_2025.csv").unlink()  # withdrawn: published beside the same failure
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).totals["files_withdrawn"] == 1
    assert len(made) == 3 and publish.published_seq(wh) == 3  # made once, at the first need (no file to read)
    assert list(tmp_path.glob(f".{wh.name}.staging-*")) == []

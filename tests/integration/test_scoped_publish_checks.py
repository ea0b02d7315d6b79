"""A night's checks and refreshes scoped to the files it changed (warehouse/run_steps.py, ADR 0012) catch what the
whole-warehouse ones catch in those files, and leave exactly the same derived tables.

A tiny warehouse is built here from the sample inbox: night 1 publishes three budget files (GAMI 2024 and 2025,
MOD FY2025) and a program file; night 2 reloads GAMI 2024 only (the changed file) a year later, so rows of files it
does not touch have closed fiscal years to lock. Each night-2 case runs twice on fresh staging copies: the whole
steps, then the scoped ones."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from flows.nightly_steps import _dimensions
from flows.process import FileTask, describe, process_file
from flows.reference import read_reference
from schemas.sources import load_sources
from tests.conftest import REFERENCE
from warehouse import run_steps
from warehouse.run_steps import PublishCheckFailed
from warehouse.store import LoadInfo, Staging

ROOT = Path(__file__).resolve().parents[2]
FILES = {
    "GAMI/GAMI_budget_2024.csv": ("gami", "GAMI_budget_2024.csv"),
    "GAMI/GAMI_budget_2025.csv": ("gami", "GAMI_budget_2025.csv"),
    "MOD/MOD_budget_FY2025.xlsx": ("mod", "MOD_budget_FY2025.xlsx"),
    "MOD/MOD_programs.csv": ("mod", "MOD_programs.csv"),
}
CHANGED = "GAMI/GAMI_budget_2024.csv"
NIGHT1 = datetime(2025, 6, 1)  # 2024 closed, 2025 open
NIGHT2 = datetime(2026, 6, 1)  # 2025 closed too: the untouched files' 2025 rates are locked tonight
DERIVED = {
    "fx_rate_lock": "SELECT * EXCLUDE (locked_at, load_id) FROM fx_rate_lock ORDER BY ALL",
    "dim_fiscal_period": "SELECT * FROM dim_fiscal_period ORDER BY ALL",
}


@pytest.fixture(scope="module")
def loaded(sample_inbox):
    inbox, _ = sample_inbox
    sources = load_sources(ROOT / "sources")
    reference = read_reference(REFERENCE)
    batches = {}
    for key, (folder, name) in FILES.items():
        source = next(s for s in sources if s.agency == key.split("/")[0])
        path = inbox / folder / name
        digest, size, mtime = describe(path)
        task = FileTask(path, key, digest, "t", size, mtime, source, source.spec_for(name))
        batches[key] = process_file(task, reference)
    return batches, reference, sources


def _night(
    warehouse: Path,
    loaded,
    keys: list[str],
    as_of: datetime,
    scoped: bool,
    tamper: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    countries: Callable | None = None,
    publish: bool = False,
    steps: bool = True,
) -> dict[str, list]:
    """One night as flows/nightly.py runs it (dimensions, load, bookkeeping, checks), whole or scoped; ``tamper``
    damages the staging copy before the checks. Returns the derived tables (the copy is discarded unless
    ``publish``)."""
    batches, reference, sources = loaded
    staging = Staging(warehouse, log=lambda _: None)
    load = LoadInfo(f"L{staging.seq}", as_of, None, "test", "inbox")
    try:
        con = staging.con
        codes = run_steps.country_codes(con)
        for table, frame in _dimensions(reference, sources).items():
            staging.replace_dimension(table, countries(frame) if countries and table == "dim_country" else frame)
        stored = staging.load_batches([batches[k] for k in keys], load, as_of, on_reject=None)
        changed = run_steps.night_changes(stored, [])
        if steps and scoped:
            run_steps.lock_rates_scoped(con, staging.seq, as_of, load.load_id, frozenset(), as_of, changed)
            run_steps.refresh_fiscal_periods_scoped(con, staging.seq, changed)
        elif steps:
            staging.lock_closed_rates(as_of, load.load_id)
            staging.refresh_fiscal_periods()
        staging.refresh_program_history(load.load_id, as_of)
        if tamper:
            tamper(con)
        if scoped:
            run_steps.check_staging(con, changed, run_steps.countries_removed(con, codes))
        else:
            run_steps.check_staging(con, None)
        derived = {name: con.execute(sql).fetchall() for name, sql in DERIVED.items()}
        if publish:
            staging.publish()
        return derived
    finally:
        staging.discard()  # after a publish: nothing left to remove


@pytest.fixture(scope="module")
def night1(tmp_path_factory, loaded) -> Path:
    """Night 1 published: every file loaded and checked whole (a new database)."""
    wh = tmp_path_factory.mktemp("night1") / "wh" / "wh.duckdb"
    wh.parent.mkdir()
    _night(wh, loaded, list(FILES), NIGHT1, scoped=True, publish=True)
    return wh


@pytest.fixture
def warehouse(tmp_path, night1) -> Path:
    """A private copy of night 1's warehouse folder (the published file and its versions)."""
    shutil.copytree(night1.parent, tmp_path / "wh", symlinks=True)
    return tmp_path / "wh" / night1.name


def _both(warehouse: Path, loaded, **kw) -> tuple:
    """Night 2 (the changed file only), whole then scoped: each one's derived tables, or the check's error."""
    out = []
    for scoped in (False, True):
        try:
            out.append(_night(warehouse, loaded, [CHANGED], NIGHT2, scoped=scoped, **kw))
        except PublishCheckFailed as exc:
            out.append(str(exc))
    return tuple(out)


def test_a_clean_night_gives_the_same_locks_and_fiscal_periods(warehouse, loaded):
    whole, scoped = _both(warehouse, loaded)
    assert whole == scoped
    years = {row[4] for row in scoped["fx_rate_lock"]}
    assert {2024, 2025} <= years  # the untouched files' 2025 rates closed since night 1: locked tonight by both
    assert {row[0] for row in scoped["dim_fiscal_period"]} == {"GAMI", "MOD"}


def _first_row(table: str) -> str:
    return f"(SELECT min(rowid) FROM {table} WHERE file_key = '{CHANGED}')"


@pytest.mark.parametrize("table", ["fact_funding_line", "quarantine_row", "skipped_row"])
def test_a_row_stored_twice_in_the_changed_file_is_caught(warehouse, loaded, table):
    def twice(con):
        con.execute(f"INSERT INTO {table} SELECT * FROM {table} WHERE rowid = {_first_row(table)}")

    whole, scoped = _both(warehouse, loaded, tamper=twice)
    assert whole == scoped
    assert isinstance(scoped, str) and scoped.startswith(f"{table}: row ('{CHANGED}'") and "stored twice" in scoped


def test_a_changed_file_that_does_not_reconcile_is_caught(warehouse, loaded):
    def lose_a_row(con):
        con.execute(f"DELETE FROM fact_funding_line WHERE rowid = {_first_row('fact_funding_line')}")

    whole, scoped = _both(warehouse, loaded, tamper=lose_a_row)
    assert whole == scoped == f"row counts do not reconcile for: {CHANGED}"


def test_an_unknown_country_in_the_changed_file_is_caught(warehouse, loaded):
    def nowhere(con):
        con.execute(
            f"UPDATE fact_funding_line SET country_iso3 = 'QQQ' WHERE rowid = {_first_row('fact_funding_line')}"
        )

    whole, scoped = _both(warehouse, loaded, tamper=nowhere)
    assert whole == scoped == "1 funding line(s) point at a country missing from dim_country"


def test_a_country_removed_from_dim_country_is_checked_in_every_file(warehouse, loaded):
    """MOD's file is not reloaded, but dim_country lost a country its lines use: all lines are checked again."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        iso3, n, in_changed = con.execute(
            f"SELECT country_iso3, count(*), count(*) FILTER (file_key = '{CHANGED}') FROM fact_funding_line "
            "WHERE country_iso3 IN (SELECT country_iso3 FROM fact_funding_line WHERE agency_code = 'MOD') "
            "GROUP BY ALL ORDER BY 3, 2 DESC LIMIT 1"
        ).fetchone()
    assert n > in_changed  # lines of files night 2 does not reload use it
    whole, scoped = _both(warehouse, loaded, countries=lambda frame: frame[frame["iso3"] != iso3])
    assert whole == scoped == f"{n} funding line(s) point at a country missing from dim_country"


def test_scoped_checks_read_only_the_changed_files(warehouse, loaded):
    """The other side of the scope: damage in an untouched file (which no publish could have let through) is not
    read by the scoped check; the whole check still sees it. This is what makes the scoped check cheap."""

    def elsewhere(con):
        con.execute("INSERT INTO skipped_row SELECT * FROM skipped_row WHERE file_key = 'MOD/MOD_budget_FY2025.xlsx'")

    whole, scoped = _both(warehouse, loaded, tamper=elsewhere)
    assert isinstance(whole, str) and "stored twice" in whole
    assert isinstance(scoped, dict)


def test_a_new_database_is_checked_whole_whatever_it_is_told(tmp_path, loaded):
    def twice(con):
        con.execute("INSERT INTO skipped_row SELECT * FROM skipped_row WHERE file_key = 'MOD/MOD_budget_FY2025.xlsx'")

    with pytest.raises(PublishCheckFailed, match="skipped_row: row .*MOD_budget_FY2025.* is stored twice"):
        _night(tmp_path / "wh.duckdb", loaded, list(FILES), NIGHT1, scoped=True, tamper=twice)


def test_after_a_publish_that_skipped_the_refreshes_they_run_whole(warehouse, loaded):
    """dcf replay publishes without refreshing the derived tables (the next whole refresh repairs them): a scoped
    refresh must not trust a state it did not bring up to date. Here a publish between the nights moves MOD's lines
    (as a replay may add some) and refreshes nothing; night 2 does not touch MOD's file."""
    _night(
        warehouse,
        loaded,
        [],
        NIGHT1,
        scoped=True,
        steps=False,
        publish=True,
        tamper=lambda con: con.execute(
            "UPDATE fact_funding_line SET period_end = period_end + INTERVAL 1 DAY WHERE agency_code = 'MOD'"
        ),
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        stale = con.execute(DERIVED["dim_fiscal_period"]).fetchall()
    whole, scoped = _both(warehouse, loaded)
    assert whole == scoped
    assert stale != scoped["dim_fiscal_period"]  # the published state was behind; both refreshes repaired it


def test_night_changes_and_removed_countries():
    class Stored:
        def __init__(self, key):
            self.file_key = key

    assert run_steps.night_changes([Stored("A/a.csv")], [{"file": "B/b.csv", "status": "retracted"}]) == {
        "A/a.csv",
        "B/b.csv",
    }
    con = duckdb.connect()
    con.execute("CREATE TABLE dim_country (iso3 VARCHAR)")
    con.execute("INSERT INTO dim_country VALUES ('FRA'), ('DEU')")
    assert not run_steps.countries_removed(con, frozenset({"FRA"}))  # one added: no kept line can be orphaned
    assert run_steps.countries_removed(con, frozenset({"FRA", "ITA"}))

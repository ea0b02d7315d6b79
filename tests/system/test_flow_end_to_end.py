"""The nightly flow end to end through Prefect, Pandera and a DuckDB file in a temporary folder."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pytest

from flows.nightly import nightly_ingestion
from schemas.batch import FileBatch
from tests.conftest import REFERENCE
from warehouse import store
from warehouse.store import LoadInfo, Staging

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

NON_AUDIT = [
    "dim_agency",
    "dim_country",
    "dim_category",
    "dim_fiscal_period",
    "dim_program",
    "fact_funding_line",
    "quarantine_row",
    "skipped_row",
]


def run(inbox: Path, wh: Path, **kw):
    return nightly_ingestion(inbox=str(inbox), warehouse=str(wh), **kw)


def query(wh: Path, sql: str, params=None) -> pd.DataFrame:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql, params or []).df()


def snapshot(wh: Path, tables=NON_AUDIT, where: str = "") -> dict[str, str]:
    """Content hash of each table, order-independent."""
    out = {}
    with duckdb.connect(str(wh), read_only=True) as con:
        for t in tables:
            rows = con.execute(
                f"SELECT * FROM {t} {where if 'file_key' in [c[0] for c in con.execute(f'DESCRIBE {t}').fetchall()] else ''} ORDER BY ALL"
            ).fetchall()
            out[t] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def test_conservation_every_row_loaded_quarantined_or_skipped(inbox_copy, tmp_path):
    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    summary = run(inbox, wh)
    assert summary.outcome == "success" and summary.exit_code == 0
    files = query(wh, "SELECT * FROM file_reconciliation").set_index("file_key")
    assert files["reconciles"].all()
    for entry in manifest["files"]:
        key = f"{entry['agency']}/{Path(entry['path']).name}"
        row = files.loc[key]
        assert row["rows_read"] == entry["data_rows"]
        # the reference workbook's planted cell is a warning: its row loads (tests/system/test_reference_flow.py)
        held = [] if entry["kind"] == "years_across_columns" else entry["bad_rows"]
        assert row["rows_quarantined"] == len(held)
        skipped = entry["blank_rows"] + entry["totals_rows"] + entry.get("heading_rows", 0)
        assert row["rows_skipped"] == skipped + entry.get("filtered_rows", 0)  # the tracker's rows out of scope
        q = query(wh, "SELECT excel_row FROM quarantine_row WHERE file_key = ? ORDER BY 1", [key])["excel_row"].tolist()
        assert q == sorted(b["excel_row"] for b in held)
    # every quarantined row has at least one open blocking failure with a message, located to a cell
    orphans = query(
        wh,
        """SELECT count(*) AS n FROM quarantine_row q ANTI JOIN audit_validation_failure f
                           ON f.file_key = q.file_key AND f.excel_row = q.excel_row AND f.severity = 'block'""",
    )
    assert orphans["n"].iloc[0] == 0
    located = query(wh, "SELECT rule, cell FROM audit_validation_failure WHERE excel_row IS NOT NULL")
    # a broken CSV record (the register's) is located to its line, not a cell: which field is which cannot be told
    whole = located["rule"] == "record_malformed"
    assert located.loc[~whole, "cell"].str.fullmatch(r"[A-Z]+\d+").all() and located.loc[whole, "cell"].isna().all()
    totals = summary.totals
    assert totals["rows_read"] == totals["rows_loaded"] + totals["rows_quarantined"] + totals["rows_skipped"]
    assert totals["rows_read"] == sum(f["data_rows"] for f in manifest["files"])


def test_running_twice_changes_no_non_audit_table(inbox_copy, tmp_path):
    inbox, _ = inbox_copy
    wh = tmp_path / "wh.duckdb"
    first = run(inbox, wh)
    before = snapshot(wh)
    second = run(inbox, wh)
    assert second.outcome == "nothing_new" and second.totals["files_unchanged"] == first.totals["files_processed"]
    assert snapshot(wh) == before
    assert query(wh, "SELECT count(*) AS n FROM audit_load")["n"].iloc[0] == 1  # nothing new: nothing published


def test_changed_file_replaces_only_its_own_rows_and_resolves_fixed_failures(inbox_copy, tmp_path):
    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    run(inbox, wh)
    entry = next(
        f
        for f in manifest["files"]
        if f["kind"] == "budget"
        and f["path"].endswith(".xlsx")
        and any(b["defect"] == "text_amount" for b in f["bad_rows"])
    )
    key = f"{entry['agency']}/{Path(entry['path']).name}"
    bad = next(b for b in entry["bad_rows"] if b["defect"] == "text_amount")
    others_before = snapshot(
        wh, ["fact_funding_line", "quarantine_row", "skipped_row", "dim_program"], f"WHERE file_key <> '{key}'"
    )
    # the steward finds the cell in the failure record, fixes it in the workbook and drops it back in the inbox
    cell = query(
        wh, "SELECT cell FROM audit_validation_failure WHERE file_key = ? AND excel_row = ?", [key, bad["excel_row"]]
    )["cell"].item()
    path = inbox / entry["path"]
    wb = openpyxl.load_workbook(path)
    wb[entry["sheet"]][cell].value = 42.5
    wb.save(path)
    unit = {"MOD": 1000.0, "MOF": 1_000_000.0}.get(entry["agency"], 1.0)

    summary = run(inbox, wh)
    assert summary.totals["files_processed"] == 1
    assert (
        snapshot(
            wh, ["fact_funding_line", "quarantine_row", "skipped_row", "dim_program"], f"WHERE file_key <> '{key}'"
        )
        == others_before
    )
    fixed = query(
        wh,
        "SELECT amount_original FROM fact_funding_line WHERE file_key = ? AND excel_row = ?",
        [key, bad["excel_row"]],
    )
    assert fixed["amount_original"].tolist() == [42.5 * unit]  # the agency's unit (thousands, millions) applied
    status = query(
        wh,
        "SELECT status, resolved_at FROM audit_validation_failure WHERE file_key = ? AND excel_row = ?",
        [key, bad["excel_row"]],
    )
    assert status["status"].tolist() == ["resolved"] and status["resolved_at"].notna().all()
    assert (
        query(wh, "SELECT count(*) AS n FROM quarantine_row WHERE file_key = ?", [key])["n"].iloc[0]
        == len(entry["bad_rows"]) - 1
    )
    current = query(wh, "SELECT count(*) AS n FROM audit_source_file WHERE file_key = ? AND is_current", [key])
    assert current["n"].iloc[0] == 1


def test_corrupt_file_is_recorded_and_the_others_load(inbox_copy, tmp_path):
    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    (inbox / "mod" / "MOD_budget_FY2026.xlsx").write_bytes(b"PK\x03\x04 this zip is cut short")
    summary = run(inbox, wh)
    assert summary.outcome == "partial" and summary.exit_code == 4
    failed = query(wh, "SELECT file_key, status, message FROM audit_source_file WHERE status = 'failed'")
    assert failed["file_key"].tolist() == ["MOD/MOD_budget_FY2026.xlsx"]
    assert "MOD_budget_FY2026.xlsx: not a readable Excel workbook" in failed["message"].iloc[0]
    loaded = query(wh, "SELECT count(*) AS n FROM audit_source_file WHERE status = 'loaded'")["n"].iloc[0]
    assert loaded == len(manifest["files"])
    f = query(wh, "SELECT rule, excel_row FROM audit_validation_failure WHERE file_key = 'MOD/MOD_budget_FY2026.xlsx'")
    assert f["rule"].tolist() == ["file_unreadable"] and f["excel_row"].isna().all()


def test_failed_load_leaves_the_published_warehouse_untouched(inbox_copy, tmp_path):
    inbox, _ = inbox_copy
    wh = tmp_path / "wh.duckdb"
    run(inbox, wh)
    digest = hashlib.sha256(wh.read_bytes()).hexdigest()
    # a batch that breaks a warehouse constraint (stage must be one of four) fails inside the staging copy
    good = query(wh, "SELECT * EXCLUDE (file_key, sheet, file_hash, load_id) FROM fact_funding_line LIMIT 1")
    bad = good.assign(stage="bogus")
    batch = FileBatch(
        file_key="MOD/x.xlsx",
        file_hash="h",
        config_hash="c",
        agency_code="MOD",
        kind="budget",
        path="x",
        size_bytes=1,
        modified_at=None,
        sheet="Budget",
        rows=bad,
        rows_table="fact_funding_line",
        rows_read=1,
    )
    staging = Staging(wh)
    with pytest.raises(duckdb.ConstraintException):
        staging.replace_file(batch, LoadInfo("L", pd.Timestamp.now(), None, "t", "i"), pd.Timestamp.now())
    staging.discard()
    assert hashlib.sha256(wh.read_bytes()).hexdigest() == digest
    assert not list(tmp_path.glob(".wh.duckdb.staging-*"))


def test_a_warehouse_of_an_older_layout_is_rebuilt_and_kept_aside(inbox_copy, tmp_path):
    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    with duckdb.connect(str(wh)) as con:  # what an earlier version of the project left behind
        con.execute("CREATE TABLE fact_funding_line (file_key VARCHAR, amount DOUBLE)")
        con.execute("INSERT INTO fact_funding_line VALUES ('old', 1)")
    summary = run(inbox, wh)
    assert summary.totals["files_processed"] == len(manifest["files"])
    assert (
        query(wh, "SELECT value FROM warehouse_meta WHERE key = 'schema_version'")["value"].item()
        == store.SCHEMA_VERSION
    )
    kept = list(tmp_path.glob("wh.duckdb.schema-unknown.*"))
    assert len(kept) == 1
    assert query(kept[0], "SELECT * FROM fact_funding_line")["file_key"].tolist() == ["old"]


def test_closed_years_keep_their_rates_until_rerated(inbox_copy, tmp_path):
    inbox, _ = inbox_copy
    wh = tmp_path / "wh.duckdb"
    run(inbox, wh)
    assert query(wh, "SELECT count(*) AS n FROM fx_rate_lock")["n"].item() > 0
    eur = "SELECT fiscal_year, fx_rate, fx_provider FROM fact_funding_line WHERE currency = 'EUR' ORDER BY ALL"
    before = query(wh, eur)
    assert set(before["fx_provider"]) == {"ecb"} and 2024 in set(before["fiscal_year"])
    # a steward adds an EUR rate; the mapping change re-processes every file, but closed years keep their rates
    reference = tmp_path / "reference"
    shutil.copytree(REFERENCE, reference)
    with open(reference / "fx_rates.csv", "a", encoding="utf-8") as fh:
        fh.write("EUR,2020-01-01,2026-12-31,0.5,steward test rate\n")
    second = run(inbox, wh, reference=str(reference))
    assert second.totals["files_processed"] > 0
    assert query(wh, eur).equals(before)
    # an explicit re-rate of 2024 moves 2024 only, and says which frozen rates it moved
    locks = "SELECT currency, fiscal_year, units_per_usd, provider FROM fx_rate_lock WHERE fiscal_year = 2024"
    locked_before = query(wh, locks)
    rerated = run(inbox, wh, reference=str(reference), rerate_fiscal_years=[2024])
    after = query(wh, eur)
    moved = pd.DataFrame(rerated.rates_changed)
    assert len(moved) and set(moved["fiscal_year"]) == {2024} and set(moved["currency"]) == {"EUR"}
    assert set(moved["provider_before"]) == {"ecb"} and set(moved["provider_after"]) == {"override"}
    assert set(moved["units_per_usd_after"]) == {0.5} and not (moved["units_per_usd_before"] == 0.5).any()
    unmoved = locked_before[locked_before["currency"] != "EUR"]
    assert len(moved) == len(locked_before) - len(unmoved)  # every other frozen rate of 2024 stayed as it was
    assert set(after.loc[after["fiscal_year"] == 2024, "fx_provider"]) == {"override"}
    assert set(after.loc[after["fiscal_year"] == 2024, "fx_rate"]) == {0.5}
    untouched = lambda df: df[df["fiscal_year"] != 2024].reset_index(drop=True)  # noqa: E731
    assert untouched(after).equals(untouched(before))


def test_replay_loads_quarantined_rows_once_a_mapping_exists(inbox_copy, tmp_path):
    from flows.nightly import run_locally
    from flows.replay import replay_quarantine

    inbox, _ = inbox_copy
    wh = tmp_path / "wh.duckdb"
    run(inbox, wh)
    waiting = query(
        wh,
        "SELECT file_key, excel_row FROM audit_validation_failure WHERE status = 'open' AND rule = 'country_unknown' AND value = 'Atlantis'",
    )
    assert len(waiting) >= 2
    files_before = query(wh, "SELECT file_key, file_hash FROM audit_source_file WHERE is_current ORDER BY ALL")
    reference = tmp_path / "reference"
    shutil.copytree(REFERENCE, reference)
    with open(reference / "country_aliases.csv", "a", encoding="utf-8") as fh:
        fh.write("Atlantis,GRC,steward test mapping\n")
    summary = run_locally(replay_quarantine, warehouse=str(wh), reference=str(reference))
    assert summary.outcome == "replay" and summary.totals["rows_loaded"] >= len(waiting)
    loaded = query(wh, "SELECT file_key, excel_row, country_iso3 FROM fact_funding_line WHERE country_iso3 = 'GRC'")
    assert set(zip(loaded["file_key"], loaded["excel_row"])) >= set(zip(waiting["file_key"], waiting["excel_row"]))
    status = query(wh, "SELECT DISTINCT status FROM audit_validation_failure WHERE value = 'Atlantis'")[
        "status"
    ].tolist()
    assert status == ["resolved"]
    assert query(wh, "SELECT bool_and(reconciles) AS ok FROM file_reconciliation")["ok"].item()
    # no file was re-read: the same file versions are current, and the data problems still wait
    assert query(wh, "SELECT file_key, file_hash FROM audit_source_file WHERE is_current ORDER BY ALL").equals(
        files_before
    )
    assert query(wh, "SELECT count(*) AS n FROM quarantine_row WHERE rules LIKE '%amount_not_number%'")["n"].item() > 0


def test_run_publishes_prefect_artifacts_and_keeps_validation_history(inbox_copy, tmp_path):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    summary = run(inbox, wh)

    async def latest(key: str):
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            return sorted(found, key=lambda a: a.created)[-1]

    markdown = asyncio.run(latest("nightly-ingestion-summary")).data
    assert f"Nightly ingestion {summary.load_id}: success" in markdown
    assert "| agency | files | read | loaded | quarantined | skipped |" in markdown and "| GAMI |" in markdown
    assert "Top reasons rows were held back" in markdown and "country_unknown" in markdown
    table = asyncio.run(latest("open-failures")).data
    assert "Atlantis" in str(table)
    history = query(
        wh, "SELECT agency_code, rule, failures FROM audit_failure_count WHERE load_id = ?", [summary.load_id]
    )
    bad = sum(len(f["bad_rows"]) for f in manifest["files"])
    assert history["failures"].sum() >= bad and {"MOD", "GAMI"} <= set(history["agency_code"])


def test_totals_mismatch_is_caught_and_points_at_the_totals_row(inbox_copy, tmp_path):
    inbox, manifest = inbox_copy
    entry = next(f for f in manifest["files"] if f["agency"] == "SANG" and f["totals_rows"] == 1)
    path = inbox / entry["path"]
    wb = openpyxl.load_workbook(path)
    ws = wb[entry["sheet"]]
    total_row = entry["header_row"] + entry["data_rows"]  # the totals row is the last row
    amount_col = next(c.column for c in ws[entry["header_row"]] if c.value == "Budget")
    stated = ws.cell(total_row, amount_col).value
    ws.cell(total_row, amount_col).value = stated + 1000 + round(stated / 100)  # 1 % off: beyond the tolerance
    wb.save(path)
    wh = tmp_path / "wh.duckdb"
    run(inbox, wh)
    key = f"SANG/{Path(entry['path']).name}"
    found = query(
        wh,
        "SELECT excel_row, cell, rule, severity, message FROM audit_validation_failure "
        "WHERE file_key = ? AND rule = 'totals_mismatch'",
        [key],
    )
    assert found["excel_row"].tolist() == [total_row] and found["severity"].tolist() == ["warn"]
    assert found["cell"].item().endswith(str(total_row))
    assert f"(difference -{1000 + round(stated / 100):,.2f})" in found["message"].item()
    # a warning holds nothing back: the file's lines load as before
    counts = query(
        wh, "SELECT rows_loaded, rows_quarantined FROM audit_source_file WHERE file_key = ? AND is_current", [key]
    )
    assert counts["rows_quarantined"].item() == len(entry["bad_rows"])


def test_program_changes_are_kept_as_history(inbox_copy, tmp_path):
    inbox, _ = inbox_copy
    wh = tmp_path / "wh.duckdb"
    run(inbox, wh)
    before = query(wh, "SELECT count(*) AS n, count(valid_to) AS closed FROM program_history")
    assert before["closed"].item() == 0 and before["n"].item() > 100
    path = inbox / "mod" / "MOD_programs.csv"
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    code = lines[1].split(",")[0]
    lines[1] = lines[1].rsplit(",", 1)[0] + ",Suspended"  # the status column is the last one
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    run(inbox, wh)
    versions = query(
        wh,
        "SELECT status, valid_to FROM program_history WHERE agency_code = 'MOD' AND program_code = ? "
        "ORDER BY valid_from",
        [code],
    )
    assert versions["status"].tolist()[-1] == "suspended" and len(versions) == 2
    assert pd.notna(versions["valid_to"].iloc[0]) and pd.isna(versions["valid_to"].iloc[1])
    after = query(wh, "SELECT count(*) AS n, count(valid_to) AS closed FROM program_history")
    assert (after["n"].item(), after["closed"].item()) == (before["n"].item() + 1, 1)


def test_progress_is_reported_once_per_file(inbox_copy, tmp_path):
    from flows import nightly

    inbox, manifest = inbox_copy
    calls = []
    nightly.on_file_done(lambda done, total, batch: calls.append((done, total, batch.file_key)))
    try:
        run(inbox, tmp_path / "wh.duckdb")
    finally:
        nightly._progress_hooks.clear()
    n = len(manifest["files"])
    assert [c[0] for c in calls] == list(range(1, n + 1)) and {c[1] for c in calls} == {n}
    assert len({c[2] for c in calls}) == n

"""A rule a source declares ``warn`` lets the row load: the unmapped field NULL, the warning recorded, the label in
mapping_queue; once a steward maps it, ``dcf replay`` completes the very same rows (no duplicate, counts unchanged)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from tests.conftest import REFERENCE
from tests.system.test_flow_end_to_end import ROOT, query, run

pytestmark = pytest.mark.slow


def _warn_sources(dest: Path, rules: dict[str, str]) -> Path:
    """A copy of sources/ whose budget files declare ``rules``."""
    shutil.copytree(ROOT / "sources", dest)
    for path in dest.glob("*.yaml"):
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        for spec in cfg["files"]:
            if spec["kind"] == "budget":
                spec["severity"] = {**spec.get("severity", {}), **rules}
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


def test_a_warned_country_loads_null_and_replay_completes_it(inbox_copy, tmp_path):
    from flows.nightly import run_locally
    from flows.replay import replay_quarantine

    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    sources = _warn_sources(tmp_path / "sources", {"country_unknown": "warn"})
    assert run(inbox, wh, sources=str(sources)).outcome == "success"

    atlantis = query(
        wh,
        "SELECT file_key, excel_row, severity FROM audit_validation_failure "
        "WHERE status = 'open' AND rule = 'country_unknown' AND value = 'Atlantis' ORDER BY ALL",
    )
    assert len(atlantis) >= 2 and set(atlantis["severity"]) == {"warn"}
    keys = list(zip(atlantis["file_key"], atlantis["excel_row"]))
    loaded = query(wh, "SELECT file_key, excel_row, country_iso3, warning_rules FROM fact_funding_line ORDER BY ALL")
    mine = loaded[[k in keys for k in zip(loaded["file_key"], loaded["excel_row"])]]
    assert len(mine) == len(keys), "every warned row loads"
    assert mine["country_iso3"].isna().all() and set(mine["warning_rules"]) == {"country_unknown"}
    # no second failure on the empty country (the contract accepts NULL for a declared warning), none quarantined
    rules_on_them = query(
        wh, "SELECT DISTINCT rule FROM audit_validation_failure WHERE value = 'Atlantis' OR rule = 'canonical_contract'"
    )
    assert rules_on_them["rule"].tolist() == ["country_unknown"]
    # (the budgets' rows: the register's unknown recipient still blocks, as its source, not changed here, declares)
    held = query(
        wh,
        "SELECT s.kind, count(*) AS n FROM quarantine_row q JOIN audit_source_file s ON s.file_key = q.file_key "
        "AND s.is_current WHERE q.rules LIKE '%country_unknown%' GROUP BY ALL",
    )
    unknown = [b for f in manifest["files"] if f["kind"] == "records" for b in f["bad_rows"]]
    n_records = sum(b["rule"] == "country_unknown" for b in unknown)
    assert held.to_dict("records") == ([{"kind": "records", "n": n_records}] if n_records else [])
    queue = query(wh, "SELECT kind, sum(rows_waiting) AS n FROM mapping_queue WHERE label = 'Atlantis' GROUP BY kind")
    assert queue.to_dict("records") == [{"kind": "country", "n": len(keys)}]
    assert query(wh, "SELECT bool_and(reconciles) AS ok FROM file_reconciliation")["ok"].item()
    counts_before = query(
        wh, "SELECT file_key, rows_loaded, rows_quarantined FROM audit_source_file WHERE is_current ORDER BY ALL"
    )

    reference = tmp_path / "reference"
    shutil.copytree(REFERENCE, reference)
    with open(reference / "country_aliases.csv", "a", encoding="utf-8") as fh:
        fh.write("Atlantis,GRC,steward test mapping\n")
    summary = run_locally(replay_quarantine, warehouse=str(wh), reference=str(reference))
    assert summary.outcome == "replay"

    after = query(wh, "SELECT file_key, excel_row, country_iso3, warning_rules FROM fact_funding_line ORDER BY ALL")
    assert len(after) == len(loaded), "replay replaced the warned rows, it did not add them again"
    done = after[[k in keys for k in zip(after["file_key"], after["excel_row"])]]
    assert set(done["country_iso3"]) == {"GRC"} and done["warning_rules"].isna().all()
    status = query(wh, "SELECT DISTINCT status FROM audit_validation_failure WHERE value = 'Atlantis'")
    assert status["status"].tolist() == ["resolved"]
    assert query(wh, "SELECT count(*) AS n FROM warned_row")["n"].item() == 0
    assert query(wh, "SELECT count(*) AS n FROM mapping_queue WHERE label = 'Atlantis'")["n"].item() == 0
    assert query(wh, "SELECT bool_and(reconciles) AS ok FROM file_reconciliation")["ok"].item()
    # rows that were already loaded stay counted once; rows quarantined for other mapping problems may have moved
    counts_after = query(
        wh, "SELECT file_key, rows_loaded, rows_quarantined FROM audit_source_file WHERE is_current ORDER BY ALL"
    )
    moved = counts_after.set_index("file_key") - counts_before.set_index("file_key")
    assert ((moved["rows_loaded"] + moved["rows_quarantined"]) == 0).all()


def test_warn_is_refused_for_a_rule_that_leaves_nothing_to_load(tmp_path):
    from schemas.sources import SourceConfigError, load_sources

    sources = _warn_sources(tmp_path / "sources", {"amount_not_number": "warn"})
    with pytest.raises(SourceConfigError, match=r"\['amount_not_number'\] cannot be 'warn' for budget files"):
        load_sources(sources)


def test_marts_keep_a_warned_row_visible(inbox_copy, tmp_path):
    """A NULL country is a group of its own in the marts, never dropped (the amounts still add up)."""
    inbox, _ = inbox_copy
    wh = tmp_path / "wh.duckdb"
    sources = _warn_sources(tmp_path / "sources", {"country_unknown": "warn", "category_unmapped": "warn"})
    assert run(inbox, wh, sources=str(sources)).outcome == "success"
    with duckdb.connect(str(wh), read_only=True) as con:
        facts = con.execute("SELECT count(*), sum(amount_usd) FROM fact_funding_line").fetchone()
        nulls = con.execute(
            "SELECT count(*) FILTER (WHERE country_iso3 IS NULL), count(*) FILTER (WHERE category_code IS NULL) "
            "FROM fact_funding_line"
        ).fetchone()
        marts = {
            view: con.execute(f"SELECT sum(lines) FROM {view}").fetchone()[0]
            for view in ("mart_funding_by_partner_year", "mart_funding_by_category", "mart_funding_by_agency")
        }
        usd = con.execute(
            "SELECT sum(coalesce(allocated_usd, 0) + coalesce(committed_usd, 0) + coalesce(obligated_usd, 0) + coalesce(disbursed_usd, 0)) FROM mart_funding_by_partner_year"
        ).fetchone()[0]
    assert nulls[0] > 0 and nulls[1] > 0, nulls
    assert marts == dict.fromkeys(marts, facts[0])
    assert usd == pytest.approx(facts[1], rel=1e-9)


def test_replay_reads_a_records_file_again_once_its_country_is_mapped(inbox_copy, tmp_path):
    """Kind records keeps no row standardiser: once a steward maps the register's unknown recipient, ``dcf replay``
    reads the register again whole from the raw archive; the record loads, its failure is resolved, the other
    records are the same rows; a replay before the mapping (the tables as the file was loaded with) reads nothing."""
    from flows.nightly import run_locally
    from flows.replay import replay_quarantine

    inbox, manifest = inbox_copy
    wh = tmp_path / "wh.duckdb"
    assert run(inbox, wh).outcome == "success"
    entry = next(f for f in manifest["files"] if f["kind"] == "records")
    [row] = [b["excel_row"] for b in entry["bad_rows"] if b["rule"] == "country_unknown"]
    key = "ARMSREG/" + entry["path"].split("/", 1)[1]
    [(label,)] = query(
        wh,
        "SELECT value FROM audit_validation_failure WHERE file_key = ? AND excel_row = ? AND rule = 'country_unknown'",
        [key, row],
    ).itertuples(index=False)
    before = query(wh, "SELECT * FROM records_transfer_register ORDER BY excel_row")
    assert row not in set(before["excel_row"])

    reference = tmp_path / "reference"
    shutil.copytree(REFERENCE, reference)
    idle = run_locally(replay_quarantine, warehouse=str(wh), reference=str(reference))
    assert key not in {f["file"] for f in idle.files}  # the same tables: reading it again would change nothing
    with open(reference / "country_aliases.csv", "a", encoding="utf-8") as fh:
        fh.write(f"{label},NZL,steward test mapping\n")
    summary = run_locally(replay_quarantine, warehouse=str(wh), reference=str(reference))
    assert [f["status"] for f in summary.files if f["file"] == key] == ["re-read (loaded)"]

    after = query(wh, "SELECT * FROM records_transfer_register ORDER BY excel_row")
    assert after.loc[after["excel_row"] == row, "recipient"].tolist() == ["NZL"]
    unchanged = after[after["excel_row"] != row].reset_index(drop=True)
    pd.testing.assert_frame_equal(unchanged, before.reset_index(drop=True), check_dtype=False)
    status = query(wh, "SELECT status FROM audit_validation_failure WHERE file_key = ? AND excel_row = ?", [key, row])
    assert status["status"].tolist() == ["resolved"]
    assert query(wh, "SELECT bool_and(reconciles) AS ok FROM file_reconciliation")["ok"].item()

"""The sample inbox's files of two other shapes, through the real reader and standardiser, against the generator's
manifest (samples/register.py, samples/tracker.py): the synthetic arms transfer register (kind records: latin-1, a preamble, a record
broken by a line break, a short record, a quote left open, ...) and the synthetic multi-donor pledge tracker (kind
budget: month-first dates, text amounts, missing markers, kuna before and after the euro, rows out of scope, an
implied recipient). Every row ends loaded, quarantined with the planted rule at its row, or skipped with a reason;
each file's invalid twin fails with a message naming it, and leaves the file itself as it was."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from flows.process import process_file
from samples.register import ACCENTED, write_register
from samples.tracker import write_tracker
from schemas.batch import FileBatch
from schemas.sources import SourceConfig
from tests.integration.test_sources_samples import make_task, source_of


def entry_of(sample_inbox, agency: str) -> tuple[Path, dict]:
    inbox, manifest = sample_inbox
    entries = [f for f in manifest["files"] if f["agency"] == agency]
    assert len(entries) == 1, f"one {agency} file in the sample inbox"
    return inbox / entries[0]["path"], entries[0]


def run(path: Path, source: SourceConfig, reference) -> FileBatch:
    batch = process_file(make_task(path, source), reference)
    assert batch.status == "loaded", batch.message
    return batch


def assert_every_row_once(batch: FileBatch, entry: dict) -> None:
    """Counts as the manifest expects them, and every row below the header loaded, quarantined or skipped once."""
    c = batch.counts
    assert c == entry["expected"]
    assert c["rows_read"] == entry["data_rows"] == c["rows_loaded"] + c["rows_quarantined"] + c["rows_skipped"]
    assert batch.header_row == entry["header_row"]
    header = entry["header_row"]
    loaded = batch.tables["record_value"]["excel_row"].unique() if batch.rows is None else batch.rows["excel_row"]
    seen = [*loaded, *batch.quarantined["excel_row"], *batch.skipped["excel_row"]]
    assert sorted(int(r) for r in seen) == list(range(header + 1, header + 1 + entry["data_rows"]))


def assert_planted_rules(batch: FileBatch, entry: dict) -> None:
    """Each planted problem is quarantined with exactly its rule at its row, and nothing else fails."""
    rules = {int(row): set(group) for row, group in batch.failures.groupby("excel_row")["rule"]}
    expected: dict[int, set[str]] = {}
    for bad in entry["bad_rows"]:
        expected.setdefault(bad["excel_row"], set()).add(bad["rule"])
    assert rules == expected
    assert sorted(batch.quarantined["excel_row"].astype(int)) == sorted(expected)
    assert batch.failures["excel_row"].notna().all()  # no file-level failure
    assert set(batch.failures["severity"]) == {"block"}


def assert_skipped(batch: FileBatch, entry: dict) -> None:
    skipped = dict(zip(batch.skipped["excel_row"].astype(int), batch.skipped["reason"], strict=True))
    assert skipped == {s["excel_row"]: s["reason"] for s in entry["skipped_rows"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------ the register
@pytest.fixture(scope="module")
def register(sample_inbox, sources, reference) -> tuple[Path, dict, FileBatch]:
    path, entry = entry_of(sample_inbox, "ARMSREG")
    return path, entry, run(path, source_of(sources, "ARMSREG"), reference)


def wide(values: pd.DataFrame) -> pd.DataFrame:
    """record_value (one row per record and field) as one row per record, one column per field."""
    cell = values["text_value"].astype(object)
    cell = cell.where(values["text_value"].notna(), values["number_value"].astype(object))
    cell = cell.where(values["text_value"].notna() | values["number_value"].notna(), values["date_value"])
    return values.assign(cell=cell).pivot(index="excel_row", columns="field", values="cell")


def test_register_is_synthetic_latin1_with_a_preamble(register):
    path, entry, _ = register
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # latin-1 for real: the accented names are single bytes
    lines = raw.decode("latin-1").split("\r\n")  # the record broken by a bare LF stays one item here
    assert "SYNTHETIC" in lines[1] and entry["synthetic"] is True and entry["notice"] in lines
    assert entry["preamble_rows"] == entry["header_row"] - 1 >= 9 and "" in lines[: entry["header_row"]]
    assert lines[entry["header_row"] - 1].startswith("Deal ID,Supplier,Recipient,")
    assert 1_500 <= entry["data_rows"] <= 3_000 and len(lines) == entry["header_row"] + entry["data_rows"]
    broken = [b["excel_row"] for b in entry["bad_rows"] if b["defect"] == "broken_record"]
    assert raw.count(b"\n") - raw.count(b"\r\n") == 1 and lines[broken[0] - 1].count("\n") == 1


def test_register_every_row_is_loaded_quarantined_or_skipped(register):
    _, entry, batch = register
    assert_every_row_once(batch, entry)
    assert entry["blank_rows"] == 2 and {s["reason"] for s in entry["skipped_rows"]} == {"blank"}
    assert_skipped(batch, entry)


def test_register_planted_problems_get_their_rules(register):
    _, entry, batch = register
    assert {b["defect"] for b in entry["bad_rows"]} == {
        "broken_record",
        "short_record",
        "unbalanced_quote",
        "unknown_country",
        "year_out_of_range",
        "status_not_allowed",
        "duplicate_deal_id",
        "missing_marker_required",
    }
    assert_planted_rules(batch, entry)
    failures = batch.failures.set_index("excel_row")
    for bad in entry["bad_rows"]:
        if bad["column"] is not None:
            assert failures.loc[bad["excel_row"], "column"] == bad["column"], bad
    duplicates = [b["excel_row"] for b in entry["bad_rows"] if b["defect"] == "duplicate_deal_id"]
    assert len(duplicates) == 2  # every row sharing the key, the first one too
    message = failures.loc[duplicates[0], "message"]
    assert f"is on rows {duplicates[0]}, {duplicates[1]} of the file" in message


def test_register_broken_records_carry_their_line_numbers(register):
    path, entry, batch = register
    lines = re.split(r"\r\n|\n", path.read_bytes().decode("latin-1"))  # line n is lines[n - 1]
    malformed = batch.failures[batch.failures["rule"] == "record_malformed"].set_index("excel_row")
    planted = {b["excel_row"]: b for b in entry["bad_rows"] if b["rule"] == "record_malformed"}
    assert sorted(malformed.index) == sorted(planted) and len(planted) == 4
    assert malformed["column"].isna().all()
    for row, bad in planted.items():
        message, value = malformed.loc[row, "message"], malformed.loc[row, "value"]
        assert value == lines[row - 1]  # the raw text of the line, accents and all
        if bad["defect"] == "broken_record":
            first = min(r for r, b in planted.items() if b["defect"] == "broken_record")
            assert message.startswith(f"Lines {first}-{first + 1} look like one record broken in two by a line break")
            assert f"line {row} reads" in message
        elif bad["defect"] == "short_record":
            assert message.startswith(f"Line {row} has 9 field(s) where the header has 10")
        else:
            assert message.startswith(
                f'Line {row} opens a quoted value (") that is not closed before line {bad["open_until"]}'
            )
        assert message.endswith("send it again") or "send the file again" in message


def test_register_names_years_and_markers_come_through(register):
    _, entry, batch = register
    values = batch.tables["record_value"]
    assert set(values["dataset"]) == {entry["dataset"]}
    records = wide(values)
    assert len(records) == entry["expected"]["rows_loaded"]
    # latin-1 names as written, and their ISO codes
    assert "Côte d'Ivoire" in set(records["recipient_as_written"])
    for name, check in entry["checks"]["accented_recipients"].items():
        rows = records[records["recipient_as_written"] == name]
        assert len(rows) == check["rows"] > 0 and set(rows["recipient"]) == {ACCENTED[name]} == {check["iso3"]}
    assert records["recipient"].notna().all() and records["supplier"].notna().all()
    # a range of years reads as its first year (ranges: first)
    ranges = entry["checks"]["year_ranges"]
    assert {"excel_row": entry["checks"]["year_range_row"], "written": "2019-2020", "year": 2019} in ranges
    for r in ranges:
        assert records.loc[r["excel_row"], "order_year"] == r["year"]
    # 'n/a' and '?' in columns a record may leave empty load as empty (never 0, never the marker)
    optional = [m for m in entry["missing_markers"] if m["column"] in ("Number ordered", "Delivery date")]
    assert optional
    for m in optional:
        field = {"Number ordered": "quantity", "Delivery date": "delivered"}[m["column"]]
        assert pd.isna(records.loc[m["excel_row"], field]), m
    # deal values in millions of their currency, each converted to US$
    assert records["value"].astype(float).sum() == pytest.approx(entry["checks"]["value_millions_loaded"] * 1e6)
    assert records["value_usd"].notna().all() and (records["value_usd"].astype(float) > 0).all()
    fields = batch.tables["record_field"]["field"].tolist()
    assert "weapon_description" not in fields and fields[:3] == ["deal_id", "supplier", "supplier_as_written"]


@pytest.mark.parametrize("breakage", ["utf16", "deal_id_renamed"])
def test_register_invalid_twin_fails_cleanly(register, sources, reference, tmp_path, breakage):
    path, entry, batch = register
    before = sha256(path)
    twin = tmp_path / "armsreg" / path.name
    twin.parent.mkdir()
    text = path.read_bytes().decode("latin-1")
    if breakage == "utf16":
        twin.write_bytes(text.encode("utf-16"))
    else:
        twin.write_bytes(text.replace("Deal ID,Supplier", "Deal number,Supplier", 1).encode("latin-1"))
    failed = process_file(make_task(twin, source_of(sources, "ARMSREG")), reference)
    assert failed.status == "failed" and failed.message.startswith(path.name)
    assert "Traceback" not in failed.message
    rule = failed.failures["rule"].tolist()
    if breakage == "utf16":
        assert rule in (["file_unreadable"], ["header_not_found"])
    else:
        assert rule == ["header_not_found"] and "deal_id: Deal ID" in failed.message
    assert failed.counts["rows_loaded"] == 0 and not failed.tables
    assert sha256(path) == before and batch.counts == entry["expected"]  # the file itself is as it was


# ------------------------------------------------------------------------------------------------- the tracker
@pytest.fixture(scope="module")
def tracker(sample_inbox, sources, reference) -> tuple[Path, dict, FileBatch]:
    path, entry = entry_of(sample_inbox, "PLEDGES")
    return path, entry, run(path, source_of(sources, "PLEDGES"), reference)


def test_tracker_is_synthetic_with_the_notice_above_its_header(tracker):
    path, entry, _ = tracker
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == entry["notice"] and "SYNTHETIC" in lines[0] and entry["header_row"] == 2
    assert lines[1] == "Pledge ID,Donor,Project,Sector,Amount,Currency,Status,Date"
    assert "Jordan" not in path.read_text(encoding="utf-8")  # the recipient is implied, never written


def test_tracker_every_row_is_loaded_quarantined_or_skipped(tracker):
    _, entry, batch = tracker
    assert_every_row_once(batch, entry)
    assert_planted_rules(batch, entry)
    assert {b["defect"] for b in entry["bad_rows"]} == {
        "withdrawn_currency",
        "not_given_amount",
        "missing_currency",
        "missing_sector",
        "day_first_date",
    }


def test_tracker_rows_out_of_scope_are_skipped_as_filtered(tracker):
    path, entry, batch = tracker
    assert entry["filtered_rows"] == entry["expected"]["rows_skipped"] > 0
    assert_skipped(batch, entry)
    labels = batch.skipped.set_index("excel_row")["label"]
    for s in entry["skipped_rows"]:
        assert labels.loc[s["excel_row"]] == f"Status = {s['status']}"
    # a missing marker on a pledge out of scope: skipped with the others, never quarantined
    scoped_out = entry["checks"]["scoped_out"]
    assert scoped_out["amount"] == "Not given" and labels.loc[scoped_out["excel_row"]] == "Status = Withdrawn"


def test_tracker_dates_amounts_currencies_and_the_implied_partner(tracker):
    _, entry, batch = tracker
    rows = batch.rows.set_index("excel_row")
    checks = entry["checks"]
    assert set(rows["country_iso3"]) == {checks["partner_iso3"]} == {"JOR"}  # a constant of the source
    # 03/04/2024 is 4 March, as the source declares dates month first; "35,000,000" is 35 million
    month_first = rows.loc[checks["month_first"]["excel_row"]]
    assert month_first["transaction_date"].strftime("%Y-%m-%d") == checks["month_first"]["date"] == "2024-03-04"
    assert month_first["amount_original"] == 35_000_000.0 and month_first["currency"] == "EUR"
    assert month_first["fiscal_year"] == 2024  # fiscal_year_from: transaction_date
    # kuna before the euro loads at the day's rate; after it, the row fails naming the date and the successor
    kuna = rows.loc[checks["kuna_before_euro"]["excel_row"]]
    assert kuna["currency"] == "HRK" and kuna["amount_original"] == 4_500_000.0 and kuna["fx_rate"] > 0
    withdrawn = next(b["excel_row"] for b in entry["bad_rows"] if b["defect"] == "withdrawn_currency")
    message = batch.failures.set_index("excel_row").loc[withdrawn, "message"]
    assert "'HRK' was withdrawn on 2023-01-01 (replaced by EUR)" in message and "2023-03-15" in message
    # text amounts with thousands separators, summed per currency as the manifest sums them
    by_currency = rows.groupby("currency")["amount_original"].sum().round(2).to_dict()
    assert by_currency == pytest.approx(checks["amount_loaded_by_currency"])
    assert len(by_currency) >= 8
    assert sorted(rows["fiscal_year"].unique()) == checks["fiscal_years_loaded"]
    assert rows["amount_usd"].notna().all() and set(rows["fx_policy"]) == {"transaction_date"}
    # a marker in a column a line may leave empty: the pledge loads without a project name
    assert pd.isna(rows.loc[checks["project_marker"]["excel_row"], "program_name"])


@pytest.mark.parametrize("breakage", ["amount_renamed", "utf16"])
def test_tracker_invalid_twin_fails_cleanly(tracker, sources, reference, tmp_path, breakage):
    path, entry, batch = tracker
    before = sha256(path)
    twin = tmp_path / "pledges" / path.name
    twin.parent.mkdir()
    text = path.read_text(encoding="utf-8")
    if breakage == "utf16":
        twin.write_bytes(text.encode("utf-16"))
    else:
        twin.write_text(text.replace(",Amount,", ",Pledge amount,", 1), encoding="utf-8")
    failed = process_file(make_task(twin, source_of(sources, "PLEDGES")), reference)
    assert failed.status == "failed" and failed.message.startswith(path.name)
    assert "Traceback" not in failed.message and failed.counts["rows_loaded"] == 0
    if breakage == "amount_renamed":
        assert failed.failures["rule"].tolist() == ["header_not_found"] and "amount: Amount" in failed.message
    else:
        assert failed.failures["rule"].tolist() in (["file_unreadable"], ["header_not_found"])
    assert sha256(path) == before
    assert run(path, source_of(sources, "PLEDGES"), reference).counts == batch.counts == entry["expected"]


# --------------------------------------------------------------------------------------------- the generators
@pytest.mark.parametrize("write", [write_register, write_tracker])
def test_generators_are_deterministic(tmp_path, write):
    first, again, other = (write(tmp_path / name, seed) for name, seed in (("a", 42), ("b", 42), ("c", 7)))
    assert first == again and first != other
    rel = first[0]["path"]
    assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert (tmp_path / "a" / rel).read_bytes() != (tmp_path / "c" / other[0]["path"]).read_bytes()


@pytest.mark.slow
def test_other_seeds_plant_the_same_problems(tmp_path, sources, reference):
    """Not only seed 42: the planted rows move, the outcome the manifest promises holds."""
    for seed in (7,):
        inbox = tmp_path / str(seed)
        for write, agency in ((write_register, "ARMSREG"), (write_tracker, "PLEDGES")):
            (entry,) = write(inbox, seed)
            path = inbox / entry["path"]
            batch = run(path, source_of(sources, agency), reference)
            assert_every_row_once(batch, entry)
            assert_planted_rules(batch, entry)
            assert_skipped(batch, entry)
            shutil.rmtree(path.parent)

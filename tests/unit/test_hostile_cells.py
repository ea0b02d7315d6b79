"""Hostile cells: each cost only what it spoils and says what it is (issue "hostile input"): Excel's newer error
values, formulas without a saved result, extreme amounts, a hidden first sheet read by position, UTF-7 text in a
CSV, and a huge cell quoted in a message."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.typing import Series

from flows.process import FileTask, describe_seen, process_file
from tests.hostile.zipbuild import deflated, write_zip
from transforms.failures import from_pandera, utf7_decoded

S = pd.StringDtype("pyarrow")


def task_for(path: Path, source) -> FileTask:
    digest, size, mtime, seen = describe_seen(path)
    return FileTask(
        path, f"{source.agency}/{path.name}", digest, "t", size, mtime, source, source.spec_for(path.name), seen=seen
    )


def source(sources, agency: str):
    return next(s for s in sources if s.agency == agency)


def edit_cells(src: Path, out: Path, cells: dict[str, str]) -> Path:
    """Copy a workbook, replacing whole cell elements of its worksheets by hand-written XML (``ref -> <c>...``)."""
    entries = []
    with zipfile.ZipFile(src) as zf:
        for info in zf.infolist():
            data = zf.read(info)
            if info.filename.startswith("xl/worksheets/"):
                for ref, xml in cells.items():
                    data, n = re.subn(
                        rb'<c r="' + ref.encode() + rb'"[^>]*?(?:/>|>.*?</c>)', xml.encode(), data, count=1
                    )
                    assert n == 1, ref
            entries.append(deflated(info.filename, data))
    write_zip(out, entries)
    return out


def mof_with(sample_inbox, tmp_path: Path, cells: dict[str, str]):
    return edit_cells(sample_inbox[0] / "mof" / "MOF_budget_FY2024.xlsx", tmp_path / "MOF_budget_FY2024.xlsx", cells)


# -------------------------------------------------------------------------------------------- newer Excel errors
NEWER_ERRORS = [
    "#SPILL!",
    "#CALC!",
    "#GETTING_DATA",
    "#FIELD!",
    "#BLOCKED!",
    "#CONNECT!",
    "#BUSY!",
    "#UNKNOWN!",
    "#PYTHON!",
    "#EXTERNAL!",
]


def mof_alone(sample_inbox, sources, reference):
    return process_file(task_for(sample_inbox[0] / "mof" / "MOF_budget_FY2024.xlsx", source(sources, "MOF")), reference)


def test_newer_excel_errors_cost_only_their_rows_and_are_named(sample_inbox, sources, reference, tmp_path):
    """calamine refuses a sheet holding an error value it does not know ('Unsupported cell error value'): the
    whole file failed. Such a cell is read as its text instead, so the amount fails on its own row, naming it."""
    rows = dict(zip(range(5, 5 + len(NEWER_ERRORS)), NEWER_ERRORS))
    cells = {f"F{r}": f'<c r="F{r}" t="e"><f>A1#</f><v>{e}</v></c>' for r, e in rows.items()}
    batch = process_file(task_for(mof_with(sample_inbox, tmp_path, cells), source(sources, "MOF")), reference)
    assert batch.status == "loaded", batch.message
    fails = batch.failures[batch.failures["excel_row"].isin(list(rows))].set_index("excel_row")
    assert fails["rule"].to_dict() == dict.fromkeys(rows, "amount_not_number")
    assert all(fails.loc[r, "message"] == f"Amount (millions) '{e}' is not a number." for r, e in rows.items())
    alone = mof_alone(sample_inbox, sources, reference)
    assert not set(rows) & set(alone.quarantined["excel_row"])
    assert set(batch.quarantined["excel_row"]) == set(alone.quarantined["excel_row"]) | set(rows)


def test_known_errors_stay_errors_beside_a_newer_one(sample_inbox, sources, reference, tmp_path):
    """Only the unknown error cells are rewritten: a #DIV/0! in the same sheet still reads as an empty cell."""
    path = mof_with(
        sample_inbox,
        tmp_path,
        {"F5": '<c r="F5" t="e"><v>#SPILL!</v></c>', "F6": '<c r="F6" s="0" t="e"><v>#DIV/0!</v></c>'},
    )
    batch = process_file(task_for(path, source(sources, "MOF")), reference)
    rules = batch.failures.groupby("excel_row")["rule"].agg(list).to_dict()
    assert rules[5] == ["amount_not_number"] and rules[6] == ["required_missing"]


# ---------------------------------------------------------------------------------- formulas with no saved result
def test_a_formula_without_a_saved_result_says_so(sample_inbox, sources, reference, tmp_path):
    path = mof_with(
        sample_inbox,
        tmp_path,
        {
            "F5": '<c r="F5"><f>SUM(F1:F2)</f></c>',
            "F6": '<c r="F6" t="str"><f>F5*2</f><v></v></c>',
            "F7": '<c r="F7"/>',
        },
    )
    batch = process_file(task_for(path, source(sources, "MOF")), reference)
    fails = batch.failures.set_index("excel_row")
    for row in (5, 6):
        assert fails.loc[row, "rule"] == "required_missing"
        assert fails.loc[row, "message"] == (
            "The 'Amount (millions)' cell holds a formula with no saved result; open the file in Excel or "
            "LibreOffice and save it, so the results are stored, then send it again."
        )
    assert fails.loc[7, "message"] == "The 'Amount (millions)' cell is empty."  # a truly empty cell stays empty


def test_unsaved_formulas_are_noted_whatever_the_chunk_size(monkeypatch):
    from flows import preflight

    xml = (
        '<worksheet><sheetData><row r="2"><c r="A2"><v>1</v></c><c r="B2"><f>SUM(A1:A2)</f></c>'
        '<x:c r="AB2" t="str"><x:f>A2</x:f><x:v></x:v></x:c><c r="C2"><f>1</f><v>1</v></c></row></sheetData>'
        "</worksheet>"
    )
    for chunk in (7, 64, 1 << 20):
        monkeypatch.setattr(preflight, "CHUNK", chunk)
        notes = preflight._CellNotes()
        for i in range(0, len(xml), chunk):
            notes.scan(xml[i : i + chunk].encode())
        assert notes.unsaved == {(2, 1), (2, 27)} and not notes.unknown_errors


# --------------------------------------------------------------------------------------- positions skip hidden sheets
def gip_with_hidden_first(sample_inbox, tmp_path: Path) -> Path:
    wb = openpyxl.load_workbook(sample_inbox[0] / "gip" / "GIP_budget_2023-24.xlsx")
    hidden = wb.create_sheet("Hidden", 0)
    hidden.sheet_state = "hidden"
    hidden["A1"] = "internal"
    out = tmp_path / "GIP_budget_2023-24.xlsx"
    wb.save(out)
    return out


def test_sheet_zero_is_the_first_visible_sheet(sample_inbox, sources, reference, tmp_path):
    gip = source(sources, "GIP")
    assert gip.spec_for("GIP_budget_2023-24.xlsx").sheet == 0
    alone = process_file(task_for(sample_inbox[0] / "gip" / "GIP_budget_2023-24.xlsx", gip), reference)
    batch = process_file(task_for(gip_with_hidden_first(sample_inbox, tmp_path), gip), reference)
    assert batch.status == "loaded", batch.message
    assert batch.sheet == alone.sheet != "Hidden" and batch.counts == alone.counts


def test_a_hidden_sheet_may_still_be_named_and_positions_count_visible_sheets(sample_inbox, tmp_path):
    import fastexcel

    from flows.limits import Limits
    from flows.read_common import FileReadError
    from flows.read_sheet import _open_workbook, _resolve_sheet

    path = gip_with_hidden_first(sample_inbox, tmp_path)
    reader = _open_workbook(path, Limits.from_env())
    visible = [n for n in reader.sheet_names if n != "Hidden"]
    assert _resolve_sheet(reader, "Hidden", path) == "Hidden"
    assert _resolve_sheet(reader, 0, path) == visible[0]
    with pytest.raises(FileReadError, match=f"has {len(visible)} visible sheet"):
        _resolve_sheet(reader, len(visible), path)
    plain = fastexcel.read_excel(path.read_bytes())  # no notes from the bytes: fastexcel is asked sheet by sheet
    assert _resolve_sheet(plain, 0, path) == visible[0]


# ------------------------------------------------------------------------------------------------- extreme amounts
def test_an_extreme_amount_is_one_failure_on_the_amount(sample_inbox, sources, reference, tmp_path):
    """1e308 (in millions: infinite once scaled) and 5e9 millions (US$5e15) each fail once, on the amount, not as
    one usd_matches_rate failure per column of the canonical row."""
    cells = {"F5": '<c r="F5"><v>1E+308</v></c>', "F6": '<c r="F6" t="n"><v>5000000000</v></c>'}
    batch = process_file(task_for(mof_with(sample_inbox, tmp_path, cells), source(sources, "MOF")), reference)
    for row, text in ((5, "1e+308"), (6, "5000000000")):
        mine = batch.failures[batch.failures["excel_row"] == row]
        assert mine[["rule", "column"]].values.tolist() == [["amount_out_of_range", "amount"]], mine
        assert mine["message"].iloc[0] == (
            f"Amount (millions) '{text}', times 1,000,000 for its unit, is out of range: infinite, or over "
            "US$1,000 trillion once converted; correct the amount or its unit."
        )
    assert {5, 6} <= set(batch.quarantined["excel_row"])


class Line(pa.DataFrameModel):
    amount_original: Series[float]
    amount_usd: Series[float]
    category_label: Series[str]

    @pa.dataframe_check(name="usd_matches_rate")
    @classmethod
    def _usd(cls, df: pd.DataFrame) -> pd.Series:
        return df["amount_usd"] == df["amount_original"]

    @pa.dataframe_check(name="some_row_check")
    @classmethod
    def _other(cls, df: pd.DataFrame) -> pd.Series:
        return df["amount_usd"] < 100


def test_a_frame_wide_check_fails_once_on_its_own_column():
    frame = pd.DataFrame(
        {"amount_original": [1.0, 2.0, 300.0], "amount_usd": [1.0, 9.0, 300.0], "category_label": ["a", "b", "c"]}
    ).assign(excel_row=[4, 5, 6])
    with pytest.raises(pa.errors.SchemaErrors) as exc:
        Line.validate(frame.drop(columns="excel_row"), lazy=True)
    out = from_pandera(exc.value.failure_cases, frame, {"amount_usd": "US$"})
    got = out[["excel_row", "column", "value", "rule"]].astype(object).where(out.notna(), None).values.tolist()
    assert sorted(got, key=str) == sorted(
        [[5, "amount_usd", "9.0", "canonical_contract"], [6, None, None, "canonical_contract"]], key=str
    )
    assert out.set_index("excel_row").loc[5, "message"] == "Check 'usd_matches_rate' failed on 'US$'."


# ---------------------------------------------------------------------------------------------------- UTF-7 text
def test_utf7_sequences_are_told_apart_from_plus_signs():
    cells = pd.Series(
        ["+AEkAdABhAGwAeQ-", "C+APQ-te d'Ivoire", "+966 50 123 4567", "C++", "a+b@x.org", "+44", None, "Italy"],
        dtype=S,
    )
    assert utf7_decoded(cells).tolist() == ["Italy", "Côte d'Ivoire", pd.NA, pd.NA, pd.NA, pd.NA, pd.NA, pd.NA]


def test_a_utf7_csv_loads_with_a_warning(sample_inbox, sources, reference, tmp_path):
    lines = (sample_inbox[0] / "gami" / "GAMI_budget_2024.csv").read_bytes().split(b"\n")
    assert lines[1].startswith(b"GAMI-P022;Oasis Framework;")
    lines[1] = lines[1].replace(b"Oasis Framework", b"Oasis +AMk-lan")
    path = tmp_path / "GAMI_budget_2024.csv"
    path.write_bytes(b"\n".join(lines))
    batch = process_file(task_for(path, source(sources, "GAMI")), reference)
    assert batch.status == "loaded", batch.message
    row2 = batch.failures[batch.failures["excel_row"] == 2]
    assert row2[["rule", "severity", "column"]].values.tolist() == [["text_maybe_utf7", "warn", "program_name"]]
    assert "(as UTF-7 it reads 'Oasis Élan')" in row2["message"].iloc[0]
    loaded = batch.rows.set_index("excel_row")
    assert loaded.loc[2, "program_name"] == "Oasis +AMk-lan" and loaded.loc[2, "warning_rules"] == "text_maybe_utf7"


# ------------------------------------------------------------------------------------------- long values in messages
def test_a_long_value_is_cut_in_its_message_and_kept_whole(sample_inbox, sources, reference, tmp_path):
    long = "x" * 32_000
    cells = {"C5": f'<c r="C5" t="inlineStr"><is><t>{long}</t></is></c>'}
    batch = process_file(task_for(mof_with(sample_inbox, tmp_path, cells), source(sources, "MOF")), reference)
    row5 = batch.failures[batch.failures["excel_row"] == 5].set_index("rule")
    message = row5.loc["category_unmapped", "message"]
    assert message.startswith("Purpose '" + "x" * 200 + "… (32,000 characters)' has no category mapping")
    assert len(message) < 400 and row5.loc["category_unmapped", "value"] == long

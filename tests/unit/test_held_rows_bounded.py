"""Rows held back (quarantined or warned) are turned into their JSON records slice by slice (warehouse/file_audit.py
held_frame), so a file whose every row fails (up to a whole sheet) never holds all its rows as Python dicts at once:
the Python memory it takes does not grow with the rows, and the result is what one pass over all rows gives."""

from __future__ import annotations

import json
import tracemalloc
import types

import numpy as np
import pandas as pd
import pytest

from warehouse import file_audit


def _held(n: int, seed: int = 3) -> tuple[types.SimpleNamespace, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    words = ["Joint drill", "USD", "1,234.5", None, "تدريب", 'say "hi"']
    q = pd.DataFrame({f"c{i}": pd.array(rng.choice(words, n), dtype="str") for i in range(6)})
    q["excel_row"] = np.arange(2, n + 2, dtype="int32")
    rows = q["excel_row"].to_numpy()
    failures = pd.DataFrame(
        {
            "excel_row": np.concatenate([rows, rows[::3], rows[::3]]),
            "rule": ["country_unknown"] * n + ["amount_not_number"] * 2 * len(rows[::3]),
            "severity": ["block"] * (n + len(rows[::3])) + ["warn"] * len(rows[::3]),
        }
    )
    return types.SimpleNamespace(failures=failures, agency_code="MOD", kind="budget"), q


def _one_pass(batch: types.SimpleNamespace, q: pd.DataFrame) -> pd.DataFrame:
    """What the records and rules are, written the plain way."""
    cells = q.drop(columns=["excel_row"]).astype(object).where(q.drop(columns=["excel_row"]).notna(), None)
    blocking = batch.failures[batch.failures["severity"] == "block"]
    rules = blocking.groupby("excel_row")["rule"].agg(lambda s: ",".join(sorted(set(s))))
    return pd.DataFrame(
        {
            "excel_row": q["excel_row"].to_numpy(),
            "raw_json": [json.dumps(r, ensure_ascii=False) for r in cells.to_dict(orient="records")],
            "rules": rules.reindex(q["excel_row"]).fillna("").to_numpy(),
        }
    )


def test_held_rows_equal_one_pass_over_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_audit, "HELD_SLICE", 7)  # many slices, the last one short
    batch, q = _held(100)
    got = file_audit.held_frame(batch, q, "block")
    want = _one_pass(batch, q)
    assert got["excel_row"].tolist() == want["excel_row"].tolist()
    assert _records(got) == _records(want)  # the same objects, keys in the same order (spacing is DuckDB's)
    assert got["rules"].tolist() == want["rules"].tolist()
    assert set(got["rules"]) == {"amount_not_number,country_unknown", "country_unknown"}
    assert json.loads(got["raw_json"].iloc[0]).keys() == {f"c{i}" for i in range(6)}


def _records(frame: pd.DataFrame) -> list[list[tuple]]:
    return [list(json.loads(text).items()) for text in frame["raw_json"]]


@pytest.mark.parametrize("clash", [False, True])
def test_any_text_survives_the_json(monkeypatch: pytest.MonkeyPatch, clash: bool) -> None:
    """Quotes, backslashes, control characters, NUL, right-to-left and astral characters, a key with a quote:
    what JSON gives back is the cell as read."""
    nasty = ['a "quoted" \\ back', "tab\there\nnewline\r", "nul\x00byte\x1f", "\u202eRTL تدريب", "😀 \u2028", "", None]
    q = pd.DataFrame({"plain": pd.array(nasty, dtype="str"), 'it\'s "odd"': pd.array(nasty[::-1], dtype="str")})
    if clash:  # a field named like the column that keeps the rows' order: DuckDB refuses it, Python writes them
        q["__dcf_position"] = q["plain"]
    q["excel_row"] = np.arange(2, len(nasty) + 2, dtype="int32")
    used: list[int] = []
    python_json = file_audit._raw_json
    monkeypatch.setattr(file_audit, "_raw_json", lambda cells: used.append(len(cells)) or python_json(cells))
    batch = types.SimpleNamespace(
        failures=pd.DataFrame(
            {
                "excel_row": pd.array([3, 3, 5, None], dtype="Int64"),  # a failure of the whole file has no row
                "rule": ["b_rule", "a_rule", "b_rule", "totals_mismatch"],
                "severity": "block",
            }
        ),
        agency_code="MOD",
        kind="budget",
    )
    got = file_audit.held_frame(batch, q, "block")
    assert used == ([len(nasty)] if clash else [])
    assert _records(got) == _records(_one_pass(batch, q))
    assert got["rules"].tolist() == ["", "a_rule,b_rule", "", "b_rule", "", "", ""]


def test_cells_duckdb_cannot_take_are_written_in_python() -> None:
    """A column of mixed Python types (a number and a text) cannot go to Arrow: the same records, built in Python."""
    q = pd.DataFrame({"a": pd.Series([1, "x", None], dtype=object), "b": ["u", None, "w"]})
    q["excel_row"] = np.array([2, 3, 4], dtype="int32")
    batch = types.SimpleNamespace(
        failures=pd.DataFrame({"excel_row": [4], "rule": ["r"], "severity": "block"}), agency_code="MOD", kind="x"
    )
    got = file_audit.held_frame(batch, q, "block")
    assert [json.loads(t) for t in got["raw_json"]] == [
        {"a": 1, "b": "u"},
        {"a": "x", "b": None},
        {"a": None, "b": "w"},
    ]
    assert got["rules"].tolist() == ["", "", "r"]


def test_multi_sheet_rows_are_keyed_by_sheet_and_row() -> None:
    q = pd.DataFrame({"sheet": ["S1", "S2", "S1"], "v": ["a", "b", "c"]})
    q["excel_row"] = np.array([5, 5, 6], dtype="int32")
    failures = pd.DataFrame(
        {"sheet": ["S2", "S2", "S1"], "excel_row": [5, 5, 6], "rule": ["z", "y", "x"], "severity": "block"}
    )
    batch = types.SimpleNamespace(failures=failures, agency_code="DAC", kind="records")
    got = file_audit.held_frame(batch, q, "block")
    assert got["rules"].tolist() == ["", "y,z", "x"]
    assert got["sheet"].tolist() == ["S1", "S2", "S1"]
    assert [json.loads(t) for t in got["raw_json"]] == [{"v": "a"}, {"v": "b"}, {"v": "c"}]


def _python_peak(n: int) -> int:
    batch, q = _held(n)
    tracemalloc.start()
    try:
        file_audit.held_frame(batch, q, "block")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_python_memory_does_not_grow_with_the_held_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_audit, "HELD_SLICE", 500)
    small, large = _python_peak(2_000), _python_peak(20_000)
    # the JSON texts live in Arrow (not traced); what grows per row is its rules (an object array, ~150 bytes a row
    # here); all rows as dicts at once would add ~870 bytes a row
    per_row = (large - small) / 18_000
    assert per_row < 400, (small, large, per_row)


def test_duckdb_out_of_memory_falls_back_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB running out of memory while it writes the JSON never costs the file (nor the night): Python writes
    the same records."""
    import duckdb

    real = duckdb.connect
    monkeypatch.setattr(file_audit.duckdb, "connect", lambda: real(config={"memory_limit": "8MB", "threads": 1}))
    used: list[int] = []
    python_json = file_audit._raw_json
    monkeypatch.setattr(file_audit, "_raw_json", lambda cells: used.append(len(cells)) or python_json(cells))
    batch, q = _held(60_000)
    q = q.assign(c0=q["c0"].fillna("") + "x" * 200)  # about 20 MB of JSON: more than DuckDB may hold
    got = file_audit.held_frame(batch, q, "block")
    assert used == [60_000]
    assert _records(got) == _records(_one_pass(batch, q))
    assert got["rules"].tolist() == _one_pass(batch, q)["rules"].tolist()

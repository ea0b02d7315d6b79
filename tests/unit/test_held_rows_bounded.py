"""Rows held back (quarantined or warned) are stored with their cells as JSON objects and their rules
(warehouse/file_audit.py): DuckDB builds the JSON inside the INSERT on the staging connection (store_held), under
its memory bound and in the rows' order; where the cells cannot go to DuckDB (a column of mixed Python types),
Python writes them slice by slice (held_frame), never holding all rows as dicts at once. Each row's rules come
from held_rules, vectorised. Whichever way, the result is what one plain pass over all rows gives."""

from __future__ import annotations

import json
import tracemalloc
import types

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from warehouse import file_audit
from warehouse.ddl import apply_ddl

LINEAGE = {"file_key": "mod/a.xlsx", "sheet": "Budget", "file_hash": "h1", "load_id": "L1"}


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


def _one_pass(batch: types.SimpleNamespace, q: pd.DataFrame, severity: str = "block") -> pd.DataFrame:
    """What the records and rules are, written the plain way."""
    plain = q.drop(columns=[c for c in ("excel_row", "sheet") if c in q])
    cells = plain.astype(object).where(plain.notna(), None)
    held = batch.failures[batch.failures["severity"] == severity]
    rules = held.groupby("excel_row")["rule"].agg(lambda s: ",".join(sorted(set(s))))
    return pd.DataFrame(
        {
            "excel_row": q["excel_row"].to_numpy(),
            "raw_json": [json.dumps(r, ensure_ascii=False) for r in cells.to_dict(orient="records")],
            "rules": rules.reindex(q["excel_row"]).fillna("").to_numpy(),
        }
    )


def _store(batch, q, severity="block", table="quarantine_row", override=False) -> tuple[bool, pd.DataFrame]:
    """store_held into a fresh warehouse layout; what it stored, in the order it stored it."""
    con = duckdb.connect()
    apply_ddl(con)
    cols = [r[0] for r in con.execute(f"SELECT * FROM {table} LIMIT 0").description]
    done = file_audit.store_held(con, table, cols, batch, q, severity, LINEAGE, override)
    return done, con.execute(f"SELECT * FROM {table} ORDER BY rowid").df()


def _records(frame: pd.DataFrame) -> list[list[tuple]]:
    return [list(json.loads(text).items()) for text in frame["raw_json"]]


@pytest.mark.parametrize("severity", ["block", "warn"])
def test_duckdb_stores_what_one_pass_over_every_row_gives(severity: str) -> None:
    batch, q = _held(100)
    done, got = _store(batch, q, severity, "quarantine_row" if severity == "block" else "warned_row")
    want = _one_pass(batch, q, severity)
    assert done
    assert got["excel_row"].tolist() == want["excel_row"].tolist()  # in the rows' order
    assert _records(got) == _records(want)  # the same objects, keys in the same order (spacing is DuckDB's)
    assert got["rules"].tolist() == want["rules"].tolist()
    assert set(got["rules"]) == (
        {"amount_not_number,country_unknown", "country_unknown"} if severity == "block" else {"amount_not_number", ""}
    )
    assert (got["file_key"] == "mod/a.xlsx").all() and (got["sheet"] == "Budget").all()
    assert (got["agency_code"] == "MOD").all() and (got["kind"] == "budget").all() and (got["load_id"] == "L1").all()


def test_python_writes_what_one_pass_gives_slice_by_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_audit, "HELD_SLICE", 7)  # many slices, the last one short
    batch, q = _held(100)
    got = file_audit.held_frame(batch, q, "block")
    want = _one_pass(batch, q)
    assert got["excel_row"].tolist() == want["excel_row"].tolist()
    assert [json.loads(t) for t in got["raw_json"]] == [json.loads(t) for t in want["raw_json"]]
    assert got["rules"].tolist() == want["rules"].tolist()


@pytest.mark.parametrize("odd_header", [False, True])
def test_any_text_survives_the_json(odd_header: bool) -> None:
    """Quotes, backslashes, control characters, NUL, right-to-left and astral characters, in cells and in the
    headers (a NUL, a quote): what JSON gives back is the cell as read, built by DuckDB (headers go as parameters,
    never into the SQL)."""
    nasty = ['a "quoted" \\ back', "tab\there\nnewline\r", "nul\x00byte\x1f", "\u202eRTL تدريب", "😀 \u2028", "", None]
    q = pd.DataFrame({"plain": pd.array(nasty, dtype="str"), 'it\'s "odd"': pd.array(nasty[::-1], dtype="str")})
    if odd_header:
        q["h\x00\"'); DROP TABLE quarantine_row; --"] = q["plain"]
    q["excel_row"] = np.arange(2, len(nasty) + 2, dtype="int32")
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
    done, got = _store(batch, q)
    assert done
    assert _records(got) == _records(_one_pass(batch, q))
    assert got["rules"].tolist() == ["", "a_rule,b_rule", "", "b_rule", "", "", ""]
    assert file_audit.held_frame(batch, q, "block")["rules"].tolist() == got["rules"].tolist()


def test_cells_duckdb_cannot_take_are_left_to_python() -> None:
    """A column of mixed Python types (a number and a text) cannot go to Arrow: store_held does nothing (no
    statement that could end the load's transaction) and Python writes the same records."""
    q = pd.DataFrame({"a": pd.Series([1, "x", None], dtype=object), "b": ["u", None, "w"]})
    q["excel_row"] = np.array([2, 3, 4], dtype="int32")
    batch = types.SimpleNamespace(
        failures=pd.DataFrame({"excel_row": [4], "rule": ["r"], "severity": "block"}), agency_code="MOD", kind="x"
    )
    done, stored = _store(batch, q)
    assert not done and stored.empty
    got = file_audit.held_frame(batch, q, "block")
    assert [json.loads(t) for t in got["raw_json"]] == [
        {"a": 1, "b": "u"},
        {"a": "x", "b": None},
        {"a": None, "b": "w"},
    ]
    assert got["rules"].tolist() == ["", "", "r"]


@pytest.mark.parametrize("override", [False, True])
def test_multi_sheet_rows_are_keyed_by_sheet_and_row(override: bool) -> None:
    q = pd.DataFrame({"sheet": ["S1", "S2", "S1"], "v": ["a", "b", "c"]})
    q["excel_row"] = np.array([5, 5, 6], dtype="int32")
    failures = pd.DataFrame(
        {"sheet": ["S2", "S2", "S1"], "excel_row": [5, 5, 6], "rule": ["z", "y", "x"], "severity": "block"}
    )
    batch = types.SimpleNamespace(failures=failures, agency_code="DAC", kind="records")
    done, got = _store(batch, q, override=override)
    assert done
    assert got["rules"].tolist() == ["", "y,z", "x"]
    assert got["sheet"].tolist() == (["Budget"] * 3 if override else ["S1", "S2", "S1"])
    assert [json.loads(t) for t in got["raw_json"]] == [{"v": "a"}, {"v": "b"}, {"v": "c"}]
    python = file_audit.held_frame(batch, q, "block")
    assert python["rules"].tolist() == ["", "y,z", "x"] and python["sheet"].tolist() == ["S1", "S2", "S1"]


def _rules(held: pd.DataFrame, failures: pd.DataFrame) -> list[str]:
    out = file_audit.held_rules(held, failures)
    assert isinstance(out, pa.DictionaryArray)
    return out.to_pylist()


def test_held_rules_exact() -> None:
    held = pd.DataFrame({"excel_row": np.array([9, 2, 4, 7], dtype="int32")})
    failures = pd.DataFrame(
        {
            "excel_row": pd.array([2, 2, 2, 9, None, 4, 11], dtype="Int64"),
            "rule": pd.array(["b", "a", "b", "é", "whole_file", None, "c"], dtype="str"),
        }
    )
    # 2: distinct and sorted; 4: its only rule missing; 7: none; a row-less failure and row 11 match no held row
    assert _rules(held, failures) == ["é", "a,b", "", ""]
    assert _rules(held, failures.iloc[:0]) == ["", "", "", ""]
    assert _rules(held.iloc[:0], failures) == []


def test_held_rules_with_more_rules_than_bits_in_a_word() -> None:
    names = [f"rule_{i:03d}" for i in range(130)]  # three 64-bit words
    held = pd.DataFrame({"excel_row": np.array([2, 3, 4], dtype="int32")})
    failures = pd.DataFrame(
        {"excel_row": [2] * 130 + [3, 3, 4], "rule": names[::-1] + ["rule_129", "rule_000", "rule_064"]}
    )
    assert _rules(held, failures) == [",".join(names), "rule_000,rule_129", "rule_064"]


def test_held_rules_keyed_by_sheet_and_row_missing_sheet_matches_missing() -> None:
    held = pd.DataFrame({"sheet": pd.array(["A", "B", None], dtype="str"), "excel_row": [2, 2, 2]})
    failures = pd.DataFrame(
        {"sheet": pd.array(["B", None, "A"], dtype="str"), "excel_row": [2, 2, 3], "rule": ["r1", "r2", "r3"]}
    )
    assert _rules(held, failures) == ["", "r1", "r2"]


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
    # the JSON texts and the rules live in Arrow (not traced); all rows as dicts at once would add ~870 bytes a row
    per_row = (large - small) / 18_000
    assert per_row < 200, (small, large, per_row)

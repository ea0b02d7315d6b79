"""failures_where (transforms/failures.py) writes each failure's text as a dictionary of the distinct texts, copies
of the failing rows only the columns a message reads, and with ``per_value`` writes a message once per distinct
value; the held rows of a sheet whose every row fails are that sheet's frame, not a copy (issue 17, point 8)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from transforms.failures import TEXT, failures_where
from transforms.standardise_checks import apply_severity, rows_held

STR = pd.StringDtype("pyarrow")


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "excel_row": [2, 3, 4, 5, 6, 7],
            "partner": pd.array(["Atlantis", "Mu", None, "Atlantis", "Mu", "Atlantis"], dtype=STR),
            "other": pd.array(["a", "b", "c", "d", "e", "f"], dtype=STR),
        }
    )


def test_per_value_writes_each_distinct_message_once_and_gives_every_row_its_own():
    data = frame()
    seen: list[list] = []

    def message(r: pd.DataFrame, v: pd.Series) -> pd.Series:
        seen.append(v.tolist())
        return "Partner '" + v + "' is unknown."

    mask = pd.Series([True, True, True, True, False, True])
    got = failures_where(data, mask, "partner", "country_unknown", message, per_value=True)
    plain = failures_where(data, mask, "partner", "country_unknown", lambda r, v: "Partner '" + v + "' is unknown.")
    assert seen == [["Atlantis", "Mu", pd.NA]]  # three distinct values (a missing one among them), one call
    assert got["message"].tolist() == [
        "Partner 'Atlantis' is unknown.",
        "Partner 'Mu' is unknown.",
        pd.NA,  # text + a missing value: missing, as row by row
        "Partner 'Atlantis' is unknown.",
        "Partner 'Atlantis' is unknown.",
    ]
    assert got["message"].tolist() == plain["message"].tolist()
    assert got["excel_row"].tolist() == [2, 3, 4, 5, 7]
    assert got["value"].tolist() == ["Atlantis", "Mu", pd.NA, "Atlantis", "Atlantis"]


def test_text_columns_are_dictionaries_of_the_distinct_texts():
    data = frame()
    got = failures_where(data, pd.Series(True, index=data.index), "partner", "country_unknown", "unknown partner")
    assert all(got[c].dtype == TEXT for c in got.columns if c != "excel_row")
    chunks = {c: got[c].array._pa_array.chunks for c in ("rule", "severity", "message", "column", "value")}
    assert {c: sum(len(k.dictionary) for k in ch) for c, ch in chunks.items()} == {
        "rule": 1,
        "severity": 1,
        "message": 1,
        "column": 1,
        "value": 2,  # Atlantis, Mu (a missing cell is a null index)
    }
    assert got["suggestion"].isna().all() and got["rule"].eq("country_unknown").all()
    assert got["severity"].tolist() == ["block"] * 6


def test_reads_limits_what_the_message_sees_of_the_failing_rows():
    data = frame()
    columns: list[list[str]] = []

    def message(r: pd.DataFrame, v: pd.Series) -> pd.Series:
        columns.append(list(r.columns))
        return "x " + v

    failures_where(data, pd.Series(True, index=data.index), "partner", "country_unknown", message, reads=())
    failures_where(data, pd.Series(True, index=data.index), "partner", "country_unknown", message, reads=("other",))
    failures_where(data, pd.Series(True, index=data.index), "partner", "country_unknown", message)
    assert columns == [["excel_row", "partner"], ["excel_row", "partner", "other"], ["excel_row", "partner", "other"]]


def test_rows_held_is_the_frame_itself_when_every_row_is_blocked():
    n = 200_000
    data = pd.DataFrame(
        {"excel_row": np.arange(2, n + 2), "cell": pd.array([f"value {i}" for i in range(n)], dtype=STR)}
    )
    before = pa.total_allocated_bytes()
    held = rows_held(data, np.arange(2, n + 2))
    grown = pa.total_allocated_bytes() - before
    assert held["cell"].tolist() == data["cell"].tolist() and list(held.index) == list(range(n))
    assert grown < 100_000, grown  # a copy of the cells would be ~2.4 MB
    some = rows_held(data, np.array([5, 3]))
    assert some["excel_row"].tolist() == [3, 5] and some["cell"].tolist() == ["value 1", "value 3"]
    assert list(some.index) == [0, 1]


def test_apply_severity_blocks_each_row_once_sorted_and_applies_overrides():
    failures = pd.DataFrame(
        {
            "excel_row": pd.array([9, 2, 9, None, 4], dtype="Int64"),
            "rule": ["a", "b", "c", "d", "e"],
            "severity": ["block", "block", "warn", "block", "block"],
        }
    )
    out, blocked, warned = apply_severity(failures, {"e": "warn"})
    assert blocked.tolist() == [2, 9] and blocked.dtype == np.int64
    assert warned["rule"].tolist() == ["c", "e"]
    assert out["severity"].tolist() == ["block", "block", "warn", "block", "warn"]

"""The quiet-night check's dimension comparison (warehouse/quiet.py _differs) counts rows on this side instead of
asking DuckDB for EXCEPT ALL both ways: the same answer, checked here against that query, case by case."""

from __future__ import annotations

import random

import duckdb
import pandas as pd
import pytest

from warehouse.quiet import _differs, _scannable


def _except_all(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> bool:
    """The comparison as it was written before (the oracle)."""
    cols = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in frame.columns)
    con.register("_dimension_now", frame)
    try:
        row = con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {cols} FROM _dimension_now EXCEPT ALL SELECT {cols} FROM {table})) "
            f"+ (SELECT count(*) FROM (SELECT {cols} FROM {table} EXCEPT ALL SELECT {cols} FROM _dimension_now))"
        ).fetchone()
    finally:
        con.unregister("_dimension_now")
    return bool(row and row[0])


def _country() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "iso3": ["FRA", "PAK", "YAR", "SAU"],
            "iso2": ["FR", "PK", None, "SA"],
            "name_en": ["France", "Pakistan", "Yemen Arab Republic", "Saudi Arabia"],
            "is_former": [False, False, True, False],
            "oic_member": pd.array([False, True, pd.NA, True], dtype="boolean"),
            "month": [1, 7, 1, 1],
        }
    )


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute(
        "CREATE TABLE dim (iso3 VARCHAR, iso2 VARCHAR, name_en VARCHAR, is_former BOOLEAN, oic_member BOOLEAN, "
        "month TINYINT)"
    )
    c.register("frame", _country())
    c.execute("INSERT INTO dim SELECT * FROM frame")
    c.unregister("frame")
    yield c
    c.close()


def _variants(frame: pd.DataFrame) -> list[pd.DataFrame]:
    changed = frame.copy()
    changed.loc[1, "name_en"] = "Pakistan "
    nulled = frame.copy()
    nulled.loc[0, "iso2"] = None
    flipped = frame.copy()
    flipped["oic_member"] = pd.array([False, True, False, True], dtype="boolean")
    doubled = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)
    swapped = pd.concat([frame.iloc[:3], frame.iloc[[0]]], ignore_index=True)  # same size, other multiset
    return [
        frame,
        frame.iloc[[3, 2, 1, 0]].reset_index(drop=True),  # order does not count
        changed,
        nulled,
        flipped,
        doubled,
        swapped,
        frame.iloc[:3],
        frame.iloc[:0],
        frame.assign(month=frame["month"].astype("float64")),  # floats: scanned as pandas, as before
        frame.assign(iso2=["FR", 1, None, "SA"]),  # a mixed column: pandas' scan decides, as before
    ]


def _answer(fn, *args) -> bool | str:
    try:
        return fn(*args)
    except duckdb.Error as exc:  # a frame DuckDB cannot scan: the same failure either way
        return type(exc).__name__


def test_the_same_answer_as_except_all(con):
    answers = [(_answer(_differs, con, "dim", f), _answer(_except_all, con, "dim", f)) for f in _variants(_country())]
    assert [new for new, _ in answers] == [old for _, old in answers]
    assert [new for new, _ in answers[:2]] == [False, False] and all(new is True for new, _ in answers[2:9])


def test_the_same_answer_on_random_edits(con):
    rng = random.Random(7)
    base = _country()
    for _ in range(40):
        frame = base.sample(n=rng.randint(0, 6), replace=True, random_state=rng.randint(0, 10**6))
        frame = frame.reset_index(drop=True)
        if len(frame) and rng.random() < 0.5:
            frame.loc[rng.randrange(len(frame)), "name_en"] = rng.choice(["France", "X", None])
        assert _differs(con, "dim", frame) == _except_all(con, "dim", frame), frame


def test_only_plain_columns_go_through_arrow():
    assert isinstance(_scannable(_country().assign(x=1.5)), pd.DataFrame)
    assert isinstance(_scannable(_country().assign(x=pd.Timestamp("2024-01-01"))), pd.DataFrame)
    assert not isinstance(_scannable(_country()), pd.DataFrame)

"""Build failure records (schemas.frames.Failure) from masks, vectorised; turn Pandera failure cases into them."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from schemas.frames import FAILURE_COLUMNS
from schemas.rules import severity

Message = str | Callable[[pd.DataFrame, pd.Series], pd.Series]
_STR = pd.StringDtype("pyarrow")


_EMPTY = pd.DataFrame({c: pd.Series(dtype="Int64" if c == "excel_row" else _STR) for c in FAILURE_COLUMNS})


def empty_failures() -> pd.DataFrame:
    return _EMPTY.copy()


def failures_where(
    frame: pd.DataFrame,
    mask: pd.Series,
    column: str | None,
    rule: str,
    message: Message,
    suggestion: pd.Series | None = None,
) -> pd.DataFrame:
    """One failure per row of ``frame`` where ``mask`` holds. ``message`` is text or a function of
    (the failing rows, their values as text) returning a Series of text."""
    mask = mask.fillna(False).astype(bool)
    if not mask.any():
        return empty_failures()
    rows = frame[mask]
    values = (
        rows[column].astype(_STR)
        if column is not None and column in rows
        else pd.Series(pd.NA, index=rows.index, dtype=_STR)
    )
    text = message(rows, values) if callable(message) else message
    if not isinstance(text, pd.Series):  # a message function may return one sentence for every row
        text = pd.Series(text, index=rows.index)
    out = pd.DataFrame(
        {
            "excel_row": rows["excel_row"].astype("Int64"),
            "column": pd.Series(column, index=rows.index, dtype=_STR),
            "value": values,
            "rule": pd.Series(rule, index=rows.index, dtype=_STR),
            "severity": pd.Series(severity(rule), index=rows.index, dtype=_STR),
            "message": text.astype(_STR),
            "suggestion": (suggestion[mask] if suggestion is not None else pd.Series(pd.NA, index=rows.index)).astype(
                _STR
            ),
        }
    )
    return out.reset_index(drop=True)


def file_failure(rule: str, message: str, column: str | None = None) -> pd.DataFrame:
    """A failure about the whole file (no row)."""
    return pd.DataFrame(
        {
            "excel_row": pd.array([pd.NA], dtype="Int64"),
            "column": pd.array([column], dtype=_STR),
            "value": pd.array([pd.NA], dtype=_STR),
            "rule": pd.array([rule], dtype=_STR),
            "severity": pd.array([severity(rule)], dtype=_STR),
            "message": pd.array([message], dtype=_STR),
            "suggestion": pd.array([pd.NA], dtype=_STR),
        }
    )


_PANDERA_RULES = {"not_nullable": "required_missing"}


class ContractError(Exception):
    """A frame breaks a contract as a whole (a column missing or of the wrong type): a bug, not a data problem."""


def from_pandera(failure_cases: pd.DataFrame, frame: pd.DataFrame, headers: dict[str, str]) -> pd.DataFrame:
    """Pandera's lazy ``failure_cases`` -> failure records located by Excel row. Failures that concern the whole
    frame rather than rows raise :class:`ContractError`: they must never be dropped quietly."""
    whole = failure_cases[failure_cases["index"].isna()]
    if len(whole):
        detail = "; ".join(f"{r.column}: {r.check} ({r.failure_case})" for r in whole.itertuples())
        raise ContractError(f"contract broken by the frame as a whole: {detail}")
    cases = failure_cases
    if cases.empty:
        return empty_failures()
    idx = cases["index"].astype("int64").to_numpy()
    col = cases["column"].astype(object)
    rule = cases["check"].astype(str).map(_PANDERA_RULES).fillna("canonical_contract")
    header = col.map(lambda c: headers.get(c, c) if isinstance(c, str) else "row")
    message = ("The '" + header + "' cell is empty.").where(
        rule == "required_missing", "Check '" + cases["check"].astype(str) + "' failed on '" + header + "'."
    )
    out = pd.DataFrame(
        {
            "excel_row": frame.loc[idx, "excel_row"].astype("Int64").to_numpy(),
            "column": col.to_numpy(),
            "value": cases["failure_case"]
            .astype(object)
            .where(cases["failure_case"].notna(), None)
            .astype(_STR)
            .to_numpy(),
            "rule": rule.to_numpy(),
            "severity": rule.map(severity).to_numpy(),
            "message": message.to_numpy(),
            "suggestion": pd.NA,
        }
    )
    return out.astype({c: _STR for c in FAILURE_COLUMNS if c != "excel_row"})


def concat_failures(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_failures()
    return (
        pd.concat(parts, ignore_index=True)
        .sort_values(["excel_row", "column"], kind="stable", na_position="first")
        .reset_index(drop=True)
    )

"""A records dataset as its source YAML declares it (for ``transforms/records.py``): the :class:`RecordsContext`
the standardiser is given and the :class:`RecordsResult` it gives back, the dataset's output fields and their
storage, the Pandera contract of its loaded rows, and those rows as the long (dataset, row, field, value) storage
of record_value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa

_STR = pd.StringDtype("pyarrow")
#: storage of each output field: the typed column of record_value that holds it
STORAGE = {"text": "text", "integer": "integer", "decimal": "decimal", "date": "date"}


@dataclass(frozen=True)
class RecordsContext:
    """What the records standardiser needs to know about the file, as plain data (JSON-able)."""

    agency: str
    dataset: str
    columns: dict[str, dict]  # declared name -> RecordColumn as a dict
    date_order: str | None = None
    number_locale: str = "en"
    missing: list[str] = field(default_factory=list)
    constants: dict[str, str] = field(default_factory=dict)
    keep_rows: dict | None = None
    key: list[str] = field(default_factory=list)
    fx_lookback_days: int = 7
    severity: dict[str, str] = field(default_factory=dict)
    source_columns: dict[str, str] = field(default_factory=dict)

    def header(self, column: str) -> str:
        return self.source_columns.get(column, column)


@dataclass
class RecordsResult:
    rows: pd.DataFrame  # one row per loaded record: excel_row, warning_rules and the output fields
    fields: pd.DataFrame  # the dataset's output fields in order: field, storage, declared_type, unit, description
    failures: pd.DataFrame
    quarantined: pd.DataFrame  # raw cells (+ excel_row) of rows with a blocking failure
    skipped: pd.DataFrame
    rows_read: int


def output_fields(columns: dict[str, dict]) -> pd.DataFrame:
    """The dataset's columns as its view shows them: each declared column, and what a country (as written) or a
    money amount (currency, US$ value and the rate that made it) adds."""
    rows: list[tuple[str, str, str, str | None, str | None]] = []
    for name, col in columns.items():
        t, unit, desc = col["type"], col.get("unit"), col.get("description")
        if t in ("text", "currency"):
            rows.append((name, "text", t, None, desc))
        elif t in ("integer", "year"):
            rows.append((name, "integer", t, unit, desc))
        elif t == "decimal":
            rows.append((name, "decimal", t, unit, desc))
        elif t == "date":
            rows.append((name, "date", t, None, desc))
        elif t == "country":
            rows.append((name, "text", t, "ISO 3166-1 alpha-3", desc))
            rows.append((f"{name}_as_written", "text", "text", None, f"{name} as the file writes it"))
        elif t == "money":
            rows += [
                (name, "decimal", t, unit or "units of its currency", desc),
                (f"{name}_currency", "text", "currency", "ISO 4217", f"the currency of {name}"),
                (f"{name}_usd", "decimal", "money", "US$", f"{name} converted to US$"),
                (f"{name}_fx_rate", "decimal", "decimal", "units per US$", f"the rate that converted {name}"),
                (f"{name}_fx_rate_date", "date", "date", None, f"the day (or period end) of {name}'s rate"),
                (f"{name}_fx_provider", "text", "text", None, f"who gave {name}'s rate"),
                (f"{name}_fx_policy", "text", "text", None, f"transaction_date or fiscal_period_average for {name}"),
            ]
    return pd.DataFrame(rows, columns=["field", "storage", "declared_type", "unit", "description"])


def _typed(values: pd.Series, storage: str) -> pd.Series:
    if storage == "text":
        return values.astype(_STR)
    if storage == "integer":
        return values.astype("Int64")
    if storage == "decimal":
        return values.astype("float64")
    return pd.to_datetime(values).astype("datetime64[ns]")


def contract(ctx: RecordsContext, fields: pd.DataFrame, warn_rules: set[str]) -> pa.DataFrameSchema:
    """The Pandera contract of a dataset's loaded rows, built from its declaration: every field typed, declared
    required columns not null, allowed values, patterns and ranges checked unless the source lets them warn."""
    dtype = {"text": _STR, "integer": "Int64", "decimal": "float64", "date": "datetime64[ns]"}
    columns: dict[str, pa.Column] = {"excel_row": pa.Column("int32")}
    for f, storage in zip(fields["field"], fields["storage"], strict=True):
        col = ctx.columns.get(f, {})
        checks: list[pa.Check] = []
        if "value_not_allowed" not in warn_rules:
            if col.get("allowed") is not None:
                checks.append(pa.Check.isin([str(a) for a in col["allowed"]]))
            if col.get("pattern") is not None:
                checks.append(pa.Check.str_matches(f"(?:{col['pattern']})\\Z"))
        if "value_out_of_range" not in warn_rules and col.get("type") in ("integer", "decimal", "year", "money"):
            if col.get("min") is not None:
                checks.append(pa.Check.ge(col["min"]))
            if col.get("max") is not None:
                checks.append(pa.Check.le(col["max"]))
        required = bool(col.get("required")) and not _may_warn_empty(col, warn_rules)
        columns[f] = pa.Column(dtype[storage], checks=checks, nullable=not required)
    columns["warning_rules"] = pa.Column(_STR, nullable=True)
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name=f"records_{ctx.dataset}")


def _may_warn_empty(col: dict, warn_rules: set[str]) -> bool:
    """A required column may still load empty when the rule that empties it is declared warn."""
    by_type = {
        "country": "country_unknown",
        "integer": "number_unreadable",
        "decimal": "number_unreadable",
        "money": "number_unreadable",
        "year": "year_unreadable",
        "date": "date_unreadable",
    }
    rule = by_type.get(col.get("type", ""))
    return rule in warn_rules or (
        col.get("type") == "date" and bool({"date_ambiguous", "date_out_of_range"} & warn_rules)
    )


def long_values(rows: pd.DataFrame, fields: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The loaded rows as (dataset, excel_row, field, text_value, number_value, date_value): one row per record and
    field (empty values kept, so every record has every field), the storage record_value holds."""
    n = len(rows)
    parts = []
    for f, storage in zip(fields["field"], fields["storage"], strict=True):
        v = rows[f]
        parts.append(
            pd.DataFrame(
                {
                    "excel_row": rows["excel_row"].to_numpy(),
                    "field": pd.Series(f, index=range(n), dtype=_STR),
                    "text_value": (v if storage == "text" else pd.Series(pd.NA, index=v.index)).astype(_STR).to_numpy(),
                    "number_value": (v if storage in ("integer", "decimal") else pd.Series(np.nan, index=v.index))
                    .astype("float64")
                    .to_numpy(),
                    "date_value": (v if storage == "date" else pd.Series(pd.NaT, index=v.index))
                    .astype("datetime64[ns]")
                    .to_numpy(),
                }
            )
        )
    warned = rows[rows["warning_rules"].notna()] if "warning_rules" in rows else rows.iloc[:0]
    parts.append(
        pd.DataFrame(
            {
                "excel_row": warned["excel_row"].to_numpy(),
                "field": pd.Series("warning_rules", index=range(len(warned)), dtype=_STR),
                "text_value": warned["warning_rules"].astype(_STR).to_numpy() if len(warned) else [],
                "number_value": np.full(len(warned), np.nan),
                "date_value": np.full(len(warned), np.datetime64("NaT"), dtype="datetime64[ns]"),
            }
        )
    )
    long = pd.concat(parts, ignore_index=True)
    long.insert(0, "dataset", pd.Series(dataset, index=long.index, dtype=_STR))
    long["excel_row"] = long["excel_row"].astype("int32")
    long["text_value"] = long["text_value"].astype(_STR)
    return long

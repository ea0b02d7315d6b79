"""Views of the datasets of kind 'records': ``records_<dataset>``, one row per record, each field in its SQL type,
made from the dataset's declaration (record_field) when one of its files is loaded, commented with units."""

from __future__ import annotations

import duckdb
import pandas as pd

SQL_TYPE = {"text": "VARCHAR", "integer": "BIGINT", "decimal": "DOUBLE", "date": "DATE"}
VALUE_COLUMN = {"text": "text_value", "integer": "number_value", "decimal": "number_value", "date": "date_value"}
#: columns every records view starts with (a declared column may not take these names)
KEY_COLUMNS = ("file_key", "sheet", "excel_row", "warning_rules")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def dataset_view_sql(dataset: str, fields: pd.DataFrame) -> str:
    """The view of one dataset. Names are checked by the config model (lower-case SQL names), values quoted."""
    cols = []
    for field, storage in zip(fields["field"], fields["storage"], strict=True):
        pick = f"max({VALUE_COLUMN[storage]}) FILTER (WHERE field = {_quote(field)})"
        cols.append(f"CAST({pick} AS {SQL_TYPE[storage]}) AS {field}")
    warnings = "max(text_value) FILTER (WHERE field = 'warning_rules') AS warning_rules"
    return (
        f"CREATE OR REPLACE VIEW records_{dataset} AS\n"
        f"SELECT file_key, sheet, excel_row,\n       " + ",\n       ".join([*cols, warnings]) + "\n"
        f"FROM record_value WHERE dataset = {_quote(dataset)}\n"
        "GROUP BY file_key, sheet, excel_row"
    )


def view_comments(dataset: str, fields: pd.DataFrame) -> list[str]:
    about = (
        fields["dataset_description"].dropna().iloc[0]
        if "dataset_description" in fields and fields["dataset_description"].notna().any()
        else None
    )
    table = (
        f"Dataset {dataset} (kind records; declared in its source YAML): one row per record"
        + (f". {str(about).rstrip('.')}" if about else "")
        + ". Fields and units: record_field."
    )
    out = [f"COMMENT ON VIEW records_{dataset} IS {_quote(table)}"]
    keys = {
        "file_key": "<AGENCY>/<file name>: the source file of the record.",
        "sheet": "Sheet name; empty for a CSV.",
        "excel_row": "Row of the record in its file (1-based, as the steward sees it).",
        "warning_rules": "Rules the record loaded with as warnings (comma-separated); NULL when none.",
    }
    for name, text in keys.items():
        out.append(f"COMMENT ON COLUMN records_{dataset}.{name} IS {_quote(text)}")
    for row in fields.itertuples(index=False):
        parts = [str(row.description)] if pd.notna(row.description) else []
        parts.append(f"declared type: {row.declared_type}")
        if pd.notna(row.unit):
            parts.append(f"unit: {row.unit}")
        text = "; ".join(parts)
        out.append(f"COMMENT ON COLUMN records_{dataset}.{row.field} IS {_quote(text[0].upper() + text[1:] + '.')}")
    return out


def create_dataset_view(con: duckdb.DuckDBPyConnection, fields: pd.DataFrame) -> None:
    """(Re-)create the view of the dataset these fields declare, with its comments."""
    dataset = str(fields["dataset"].iloc[0])
    con.execute(dataset_view_sql(dataset, fields))
    for statement in view_comments(dataset, fields):
        con.execute(statement)

"""What loading one file records besides its rows, on the staging connection (warehouse/store.py Staging): the rows
it holds back (quarantine_row, warned_row), its validation failures (audit_validation_failure: upserted, and resolved
when they no longer occur) and its version (audit_source_file)."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa

from schemas.batch import FileBatch


def to_arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def _params(sql: str, values: dict) -> dict:
    """Only the named parameters the statement uses (DuckDB rejects extra ones)."""
    return {k: v for k, v in values.items() if f"${k}" in sql}


def _cells(letters: pd.Series, rows: pd.Series) -> pd.Series:
    """A1 addresses where both the column letter and the row are known, else None."""
    ok = letters.notna() & rows.notna()
    out = pd.Series(None, index=letters.index, dtype=object)
    out[ok] = letters[ok].astype(str) + rows[ok].astype("int64").astype(str)
    return out


def quarantine_frame(batch: FileBatch) -> pd.DataFrame:
    assert batch.quarantined is not None, "only called for a batch with quarantined rows"
    return held_frame(batch, batch.quarantined, "block")


#: rows turned into JSON at a time: a file whose every row is held (up to a whole sheet, 1,048,575 rows) never has
#: all its rows as Python dicts at once; the JSON texts are kept in Arrow (one buffer per slice), not as objects
HELD_SLICE = 50_000


def _raw_json(cells: pd.DataFrame) -> pa.ChunkedArray:
    """Each row's cells as read, as a JSON object (missing cells null), slice by slice."""
    chunks = []
    for start in range(0, len(cells), HELD_SLICE):
        part = cells.iloc[start : start + HELD_SLICE]
        part = part.astype(object).where(part.notna(), None)
        texts = [json.dumps(rec, ensure_ascii=False) for rec in part.to_dict(orient="records")]
        chunks.append(pa.array(texts, type=pa.string()))
        del part, texts
    return pa.chunked_array(chunks, type=pa.string())


def held_frame(batch: FileBatch, q: pd.DataFrame, severity: str) -> pd.DataFrame:
    """Rows kept with their cells as read (quarantined: the blocking rules; warned: the warning rules)."""
    assert batch.failures is not None, "only called for a batch with failures"
    keys = [c for c in ("sheet", "excel_row") if c in q.columns]  # multi-sheet files: a row is (sheet, row)
    raw_json = _raw_json(q.drop(columns=keys))
    blocking = batch.failures[batch.failures["severity"] == severity]
    fkeys = [c for c in keys if c in blocking.columns]
    unique = blocking[[*fkeys, "rule"]].drop_duplicates().sort_values([*fkeys, "rule"])
    rules = unique.groupby(fkeys, sort=False)["rule"].agg(",".join)  # each row's rules, sorted, once each
    index = pd.MultiIndex.from_frame(q[fkeys]) if len(fkeys) > 1 else pd.Index(q["excel_row"])
    out = pd.DataFrame(
        {
            "excel_row": q["excel_row"].astype("int32").to_numpy(),
            "agency_code": batch.agency_code,
            "kind": batch.kind,
            "raw_json": pd.Series(pd.arrays.ArrowExtensionArray(raw_json)),
            "rules": pd.Series(rules.reindex(index).to_numpy()).fillna("").to_numpy(),
        }
    )
    if "sheet" in q.columns:
        out["sheet"] = q["sheet"].to_numpy()
    return out


def record_failures(
    con: duckdb.DuckDBPyConnection,
    batch: FileBatch,
    load_id: str,
    now: datetime,
    scope_rows: list[int] | None = None,
) -> None:
    """Upsert the batch's failures; open failures of the file that no longer occur are resolved (only among
    ``scope_rows`` when given: a replay re-checks some rows, not the file)."""
    f = (
        batch.failures
        if batch.failures is not None
        else pd.DataFrame(columns=["excel_row", "column", "value", "rule", "severity", "message", "suggestion"])
    )
    letters = pd.Series(batch.column_letters, dtype=object)
    headers = pd.Series(batch.source_columns, dtype=object)
    incoming = pd.DataFrame(
        {
            "excel_row": f["excel_row"].astype("Int64"),
            "column_name": f["column"].astype(object),
            "source_column": f["column"].astype(object).map(headers),
            "cell": f["cell"].astype(object)
            if "cell" in f
            else _cells(f["column"].astype(object).map(letters), f["excel_row"]),
            "sheet": (f["sheet"] if "sheet" in f else pd.Series(None, index=f.index, dtype=object)).astype(
                pd.StringDtype("pyarrow")
            ),
            "value": f["value"].astype(object),
            "rule": f["rule"].astype(object),
            "severity": f["severity"].astype(object),
            "message": f["message"].astype(object),
            "suggestion": f["suggestion"].astype(object),
        }
    )
    con.register("_failures", to_arrow(incoming))
    try:
        params = {
            "file_key": batch.file_key,
            "file_hash": batch.file_hash,
            "agency": batch.agency_code,
            "sheet": batch.sheet,
            "load": load_id,
            "now": now,
            "scope": scope_rows or [],
        }
        run = lambda sql: con.execute(sql, _params(sql, params))  # noqa: E731
        run(
            """
            CREATE OR REPLACE TEMP TABLE _new_failures AS
            SELECT md5(concat_ws('|', $file_key, coalesce(sheet, $sheet), coalesce(CAST(excel_row AS VARCHAR), '-'),
                                 coalesce(column_name, '-'), rule, coalesce(value, ''))) AS failure_id, *
            FROM (SELECT DISTINCT * FROM _failures)
            """
        )
        run(
            """
            UPDATE audit_validation_failure SET status = 'resolved', resolved_at = $now
            WHERE file_key = $file_key AND status = 'open'
              AND failure_id NOT IN (SELECT failure_id FROM _new_failures)
            """
            + ("AND list_contains($scope, excel_row)" if scope_rows is not None else "")
        )
        run(
            """
            INSERT INTO audit_validation_failure
            SELECT failure_id, $file_key, $file_hash, $agency, coalesce(sheet, $sheet), excel_row, cell, column_name, source_column,
                   value, rule, severity, message, suggestion, 'open', $load, $load, $now, $now, NULL
            FROM _new_failures
            ON CONFLICT (failure_id) DO UPDATE SET
                status = 'open', file_hash = excluded.file_hash, last_seen_load = excluded.last_seen_load,
                last_seen_at = excluded.last_seen_at, message = excluded.message,
                suggestion = excluded.suggestion, resolved_at = NULL
            """
        )
    finally:
        con.unregister("_failures")


def record_file(con: duckdb.DuckDBPyConnection, batch: FileBatch, load_id: str, now: datetime) -> None:
    """This version of the file becomes the current one in audit_source_file, with its counts."""
    c = batch.counts
    con.execute("UPDATE audit_source_file SET is_current = false WHERE file_key = ?", [batch.file_key])
    con.execute(
        """
        INSERT INTO audit_source_file VALUES
        ($file_key, $file_hash, $config_hash, $agency, $kind, $path, $size, $mtime,
         coalesce((SELECT min(first_seen_at) FROM audit_source_file WHERE file_key = $file_key AND file_hash = $file_hash), $now),
         $load, true, $status, $sheet, $header_row, $read, $loaded, $quarantined, $skipped, $message, $context,
         $archive, NULL)
        ON CONFLICT (file_key, file_hash, config_hash) DO UPDATE SET
            load_id = excluded.load_id, is_current = true, status = excluded.status, path = excluded.path,
            archive_path = coalesce(excluded.archive_path, audit_source_file.archive_path), withdrawn_at = NULL,
            rows_read = excluded.rows_read, rows_loaded = excluded.rows_loaded,
            rows_quarantined = excluded.rows_quarantined, rows_skipped = excluded.rows_skipped,
            message = excluded.message, context_json = excluded.context_json
        """,
        {
            "file_key": batch.file_key,
            "file_hash": batch.file_hash,
            "config_hash": batch.config_hash,
            "agency": batch.agency_code,
            "kind": batch.kind,
            "path": batch.path,
            "size": batch.size_bytes,
            "mtime": batch.modified_at,
            "now": now,
            "load": load_id,
            "status": batch.status,
            "sheet": batch.sheet,
            "header_row": batch.header_row,
            "read": c["rows_read"],
            "loaded": c["rows_loaded"],
            "quarantined": c["rows_quarantined"],
            "skipped": c["rows_skipped"],
            "message": batch.message,
            "context": batch.context_json,
            "archive": batch.archive_path,
        },
    )

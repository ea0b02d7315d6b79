"""What loading one file records besides its rows, on the staging connection (warehouse/store.py Staging): the rows
it holds back (quarantine_row, warned_row), its validation failures (audit_validation_failure: upserted, and resolved
when they no longer occur) and its version (audit_source_file)."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from schemas.batch import FileBatch


def to_arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def _params(sql: str, values: dict) -> dict:
    """Only the named parameters the statement uses (DuckDB rejects extra ones)."""
    return {k: v for k, v in values.items() if f"${k}" in sql}


def quarantine_frame(batch: FileBatch) -> pd.DataFrame:
    assert batch.quarantined is not None, "only called for a batch with quarantined rows"
    return held_frame(batch, batch.quarantined, "block")


#: rows turned into JSON at a time where DuckDB cannot take the cells (a column of mixed Python types): a file whose
#: every row is held (up to a whole sheet, 1,048,575 rows) never has all its rows as Python dicts at once
HELD_SLICE = 50_000


def _raw_json(cells: pd.DataFrame) -> pa.ChunkedArray:
    """Each row's cells as read, as a JSON object (missing cells null), slice by slice in Python (the fallback)."""
    chunks = []
    for start in range(0, len(cells), HELD_SLICE):
        part = cells.iloc[start : start + HELD_SLICE]
        part = part.astype(object).where(part.notna(), None)
        texts = [json.dumps(rec, ensure_ascii=False) for rec in part.to_dict(orient="records")]
        chunks.append(pa.array(texts, type=pa.string()))
        del part, texts
    return pa.chunked_array(chunks, type=pa.string())


_POSITION = "__dcf_position"  # the rows' order, beside their cells


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _held_in_duckdb(q: pd.DataFrame, cells: list[str], rules: pd.DataFrame, fkeys: list[str]) -> pa.Table | None:
    """(raw_json, rules) per row of ``q``, in its order, built by DuckDB from Arrow: the JSON objects and each
    row's sorted rules never become Python objects (1,048,575 held rows: 89 s and +508 MiB in Python before).
    None when the cells cannot go to Arrow (mixed types in a column) or DuckDB fails (out of memory): the caller
    builds them in Python."""
    try:
        held = pa.Table.from_pandas(q[[*fkeys, *cells]], preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError):
        return None
    held = held.append_column(_POSITION, pa.array(np.arange(len(q), dtype=np.int64)))
    pairs = ", ".join(f"'{c.replace(chr(39), chr(39) * 2)}', q.{_quoted(c)}" for c in cells)
    on = " AND ".join(f"q.{_quoted(k)} IS NOT DISTINCT FROM r.{_quoted(k)}" for k in fkeys) or "true"
    keys = ", ".join(_quoted(k) for k in fkeys)
    con = duckdb.connect()
    try:
        con.register("q", held)
        con.register("rules_in", pa.Table.from_pandas(rules, preserve_index=False))
        # the objects: a projection of one scan, so in the rows' order without a sort (preserve_insertion_order)
        made = f"json_object({pairs})" if cells else "'{}'"
        texts = con.execute(f"SELECT CAST({made} AS VARCHAR) AS raw_json FROM q").to_arrow_table()
        grouped = (
            f"SELECT {keys}, string_agg(DISTINCT rule, ',' ORDER BY rule) AS rules FROM rules_in GROUP BY ALL"
            if fkeys
            else "SELECT string_agg(DISTINCT rule, ',' ORDER BY rule) AS rules FROM rules_in"
        )
        ruled = con.execute(
            f"SELECT coalesce(r.rules, '') AS rules FROM q LEFT JOIN ({grouped}) r ON {on} ORDER BY q.{_POSITION}"
        ).to_arrow_table()
        return pa.table({"raw_json": texts.column("raw_json"), "rules": ruled.column("rules")})
    except duckdb.Error:  # out of memory, a column name it refuses: never a reason to lose the file; Python writes them
        return None
    finally:
        con.close()


def held_frame(batch: FileBatch, q: pd.DataFrame, severity: str) -> pd.DataFrame:
    """Rows kept with their cells as read (quarantined: the blocking rules; warned: the warning rules)."""
    assert batch.failures is not None, "only called for a batch with failures"
    keys = [c for c in ("sheet", "excel_row") if c in q.columns]  # multi-sheet files: a row is (sheet, row)
    cells = [c for c in q.columns if c not in keys]
    blocking = batch.failures[batch.failures["severity"] == severity]
    fkeys = [c for c in keys if c in blocking.columns]
    rules_in = pd.DataFrame(
        {
            **{k: (blocking[k].astype("Int64") if k == "excel_row" else blocking[k].astype(_STRING)) for k in fkeys},
            "rule": blocking["rule"].astype(_STRING),
        }
    )
    probe = {k: (q[k].astype("Int64") if k == "excel_row" else q[k].astype(_STRING)) for k in fkeys}
    built = _held_in_duckdb(q.assign(**probe), cells, rules_in, fkeys)
    rules: object
    if built is not None:
        raw_json, rules = built.column("raw_json"), pd.arrays.ArrowExtensionArray(built.column("rules"))
    else:
        raw_json = _raw_json(q[cells])
        unique = rules_in.drop_duplicates().sort_values([*fkeys, "rule"])  # text, not a dictionary: sortable
        grouped = unique.groupby(fkeys, sort=False)["rule"].agg(",".join)  # each row's rules, sorted, once each
        index = pd.MultiIndex.from_frame(q[fkeys]) if len(fkeys) > 1 else pd.Index(q["excel_row"])
        rules = pd.Series(grouped.reindex(index).to_numpy()).fillna("").to_numpy()
    out = pd.DataFrame(
        {
            "excel_row": q["excel_row"].astype("int32").to_numpy(),
            "agency_code": batch.agency_code,
            "kind": batch.kind,
            "raw_json": pd.Series(pd.arrays.ArrowExtensionArray(raw_json)),
            "rules": rules,
        }
    )
    if "sheet" in q.columns:
        out["sheet"] = q["sheet"].to_numpy()
    return out


#: a failure's fields as the failure frames carry them (schemas.frames.Failure), with those some frames add
_FAILURE_FIELDS = ("excel_row", "column", "value", "rule", "severity", "message", "suggestion")
_STRING = pd.StringDtype("pyarrow")


def _failure_table(f: pd.DataFrame) -> pa.Table:
    """The failures as an Arrow table, their text kept in Arrow (never one Python object per value: a sheet whose
    every row fails holds over a million failures)."""
    columns: dict[str, pd.Series] = {"excel_row": f["excel_row"].astype("Int64")}
    for c in (*_FAILURE_FIELDS[1:], "cell", "sheet"):
        columns[c] = _text(f[c]) if c in f else pd.Series(pd.NA, index=f.index, dtype=_STRING)
    return pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)


def _text(values: pd.Series) -> pd.Series:
    """A text column as DuckDB reads it: a dictionary-encoded one (transforms.failures.TEXT) as it is, never
    spelled out row by row (1.3M failures' messages: +127 MiB); anything else as text."""
    dtype = values.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_dictionary(dtype.pyarrow_dtype):
        return values
    return values.astype(_STRING)


def _column_table(batch: FileBatch) -> pa.Table:
    """Each canonical column's source header and column letter (a handful of rows, joined in SQL)."""
    names = sorted(set(batch.column_letters) | set(batch.source_columns))
    return pa.table(
        {
            "column_name": pa.array(names, type=pa.string()),
            "source_column": pa.array([batch.source_columns.get(n) for n in names], type=pa.string()),
            "letter": pa.array([batch.column_letters.get(n) for n in names], type=pa.string()),
        }
    )


#: failures shaped and upserted per statement: DuckDB's upsert into the keyed failure table holds about 1 KiB per
#: failure while it runs (1,310,719 failures in one statement: +1.4 GiB), so a sheet whose every row fails is
#: stored a slice of rows at a time (all failures of a row in the same slice, as a row's failures share its key)
FAILURE_SLICE = 100_000
#: a failure's identity: the file, where (sheet, row, column), which rule and the value; stable across nights
_FAILURE_ID = (
    "md5(concat_ws('|', $file_key, coalesce(sheet, $sheet), coalesce(CAST(excel_row AS VARCHAR), '-'), "
    "coalesce(column_name, '-'), rule, coalesce(value, '')))"
)


def row_slices(rows: pd.Series, size: int | None = None) -> list[tuple[int | None, int | None]]:
    """Excel-row ranges [lo, hi) holding about ``size`` (FAILURE_SLICE) failures each (None: unbounded), covering
    every row; a row's failures are never split between two ranges."""
    size = size or FAILURE_SLICE
    known = np.sort(rows.dropna().to_numpy(dtype="int64"))
    if len(known) <= size:
        return [(None, None)]
    bounds = np.unique(known[size::size]).tolist()
    return list(zip([None, *bounds], [*bounds, None], strict=True))


def record_failures(
    con: duckdb.DuckDBPyConnection,
    batch: FileBatch,
    load_id: str,
    now: datetime,
    scope_rows: list[int] | None = None,
) -> None:
    """Upsert the batch's failures; open failures of the file that no longer occur are resolved (only among
    ``scope_rows`` when given: a replay re-checks some rows, not the file). The failures go to DuckDB as Arrow and
    are shaped there (header, cell address, identity), a slice of rows at a time (FAILURE_SLICE): the frame is
    never copied into Python objects and DuckDB never holds more than a slice in flight."""
    f = (
        batch.failures
        if batch.failures is not None
        else pd.DataFrame({c: pd.Series(dtype="Int64" if c == "excel_row" else _STRING) for c in _FAILURE_FIELDS})
    )
    cell = "f.cell" if "cell" in f else "c.letter || CAST(f.excel_row AS VARCHAR)"  # NULL when either is unknown
    con.register("_failures", _failure_table(f))
    con.register("_failure_columns", _column_table(batch))
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
        run = lambda sql, **more: con.execute(sql, _params(sql, {**params, **more}))  # noqa: E731
        slices: list[tuple[str, dict]] = [
            (
                "f.excel_row IS NOT NULL"
                + (" AND f.excel_row >= $row_from" if lo is not None else "")
                + (" AND f.excel_row < $row_to" if hi is not None else ""),
                {"row_from": lo, "row_to": hi},
            )
            for lo, hi in row_slices(f["excel_row"])
        ]
        if f["excel_row"].isna().any():
            slices.append(("f.excel_row IS NULL", {}))
        # the file's failures as they stand (identity and when each was first seen): a failure seen again is deleted
        # and inserted anew with its first sighting kept. Not an upsert: DuckDB keeps an update's old values in
        # memory it cannot spill until the commit (1.3M failures updated: +1 GiB), while deleted rows cost a mark
        # and inserted ones are written out under the memory limit
        run(
            """
            CREATE OR REPLACE TEMP TABLE _failures_before AS
            SELECT failure_id, first_seen_load, first_seen_at FROM audit_validation_failure WHERE file_key = $file_key
            """
        )
        for where, bounds in slices:  # one statement each, no temporary table per slice (kept until the commit)
            fresh = f"""
                SELECT {_FAILURE_ID} AS failure_id, *
                FROM (
                    SELECT DISTINCT CAST(f.excel_row AS BIGINT) AS excel_row, f."column" AS column_name,
                           c.source_column, {cell} AS cell, f.sheet, f.value, f.rule, f.severity, f.message,
                           f.suggestion
                    FROM _failures f LEFT JOIN _failure_columns c ON c.column_name = f."column"
                    WHERE {where}
                )
            """
            run(
                f"""
                DELETE FROM audit_validation_failure
                WHERE file_key = $file_key AND failure_id IN (SELECT failure_id FROM ({fresh}))
                """,
                **bounds,
            )
            run(
                f"""
                INSERT INTO audit_validation_failure
                SELECT n.failure_id, $file_key, $file_hash, $agency, coalesce(n.sheet, $sheet), n.excel_row, n.cell,
                       n.column_name, n.source_column, n.value, n.rule, n.severity, n.message, n.suggestion, 'open',
                       coalesce(b.first_seen_load, $load), $load, coalesce(b.first_seen_at, $now), $now, NULL
                FROM ({fresh}) n LEFT JOIN _failures_before b ON b.failure_id = n.failure_id
                """,
                **bounds,
            )
        run(
            f"""
            UPDATE audit_validation_failure SET status = 'resolved', resolved_at = $now
            WHERE file_key = $file_key AND status = 'open'
              AND failure_id NOT IN (
                  SELECT {_FAILURE_ID} FROM (SELECT excel_row, "column" AS column_name, sheet, rule, value FROM _failures)
              )
            """
            + ("AND list_contains($scope, excel_row)" if scope_rows is not None else "")
        )
    finally:
        con.unregister("_failures")
        con.unregister("_failure_columns")
        try:
            con.execute("DROP TABLE IF EXISTS _failures_before")
        except duckdb.Error:  # an aborted transaction: the caller rolls it back, and the temporary table with it
            pass


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

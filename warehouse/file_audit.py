"""What loading one file records besides its rows, on the staging connection (warehouse/store.py Staging): the rows
it holds back (quarantine_row, warned_row), its validation failures (audit_validation_failure: upserted, and resolved
when they no longer occur) and its version (audit_source_file)."""

from __future__ import annotations

import json
from collections.abc import Mapping
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


def _held_columns(q: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The held rows' keys (multi-sheet files: a row is (sheet, row)) and their cells' columns."""
    keys = [c for c in ("sheet", "excel_row") if c in q.columns]
    return keys, [c for c in q.columns if c not in keys]


def _rules_of(batch: FileBatch, q: pd.DataFrame, keys: list[str], severity: str) -> pa.DictionaryArray:
    """Each held row's rules of ``severity`` (held_rules), keyed as its failures are."""
    assert batch.failures is not None, "only called for a batch with failures"
    fkeys = [c for c in keys if c in batch.failures.columns]
    failures = batch.failures.loc[batch.failures["severity"] == severity, [*fkeys, "rule"]]  # only what is used
    return held_rules(q[fkeys], failures)


def held_rules(held: pd.DataFrame, failures: pd.DataFrame) -> pa.DictionaryArray:
    """Each held row's rules: the distinct rules of the failures whose key (``held``'s columns: excel_row, maybe
    sheet) is the row's, sorted, comma-joined ('' for none), in ``held``'s order; as a dictionary of the few
    combinations that occur. Vectorised (one bit per rule and row): never a Python string per row, nor a grouping
    in DuckDB (1,048,574 rows, 1.3M failures: +330 MiB there)."""
    n = len(held)
    rule_codes, uniques = pd.factorize(failures["rule"])  # missing rules: -1
    names = [str(name) for name in uniques]
    order = np.argsort(np.asarray(names, dtype=object))  # code point order (DuckDB's ORDER BY rule before)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    named = rule_codes >= 0
    held_key = np.zeros(n, dtype=np.int64)
    failure_key = np.zeros(len(failures), dtype=np.int64)
    for k in held.columns:  # one integer per key, shared by both sides; a missing key matches a missing one
        dtype = "Int64" if k == "excel_row" else _STRING
        both = pd.concat([held[k].astype(dtype), failures[k].astype(dtype)], ignore_index=True)
        codes, values = pd.factorize(both, use_na_sentinel=False)
        held_key = held_key * max(len(values), 1) + codes[:n]
        failure_key = failure_key * max(len(values), 1) + codes[n:]
    # the key tuples, numbered 0..k-1 by one hash pass over both sides (never a sort of a million keys)
    key, keys = pd.factorize(np.concatenate([held_key, failure_key[named]]))
    rules = rank[rule_codes[named]]
    masks = np.zeros((len(keys), max((len(names) + 63) // 64, 1)), dtype=np.uint64)  # a bit per rule and key
    np.bitwise_or.at(masks, (key[n:], rules // 64), np.left_shift(np.uint64(1), (rules % 64).astype(np.uint64)))
    row_masks = masks[key[:n]]
    if row_masks.shape[1] == 1:  # up to 64 rules (the usual case): one hash pass
        combo_of, firsts = pd.factorize(row_masks[:, 0])
        combos = np.asarray(firsts, dtype=np.uint64)[:, None]
    else:
        combos, combo_of = np.unique(row_masks, axis=0, return_inverse=True)
    sorted_names = [names[i] for i in order]
    texts = [
        ",".join(name for b, name in enumerate(sorted_names) if int(combo[b // 64]) >> (b % 64) & 1) for combo in combos
    ]
    return pa.DictionaryArray.from_arrays(
        pa.array(combo_of.reshape(-1).astype(np.int32)), pa.array(texts, type=pa.string())
    )


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


def _json_ready(t: pa.DataType) -> bool:
    """Cells of this Arrow type become JSON in DuckDB without a chance of an error (an error would end the load's
    transaction; anything else is written by Python)."""
    if pa.types.is_dictionary(t):
        return _json_ready(t.value_type)
    return any(
        check(t)
        for check in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_integer,
            pa.types.is_floating,
            pa.types.is_boolean,
            pa.types.is_null,
            pa.types.is_date,
            pa.types.is_timestamp,
        )
    )


def store_held(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[str],
    batch: FileBatch,
    q: pd.DataFrame,
    severity: str,
    lineage: Mapping[str, object],
    override: bool = False,
) -> bool:
    """Insert the held rows ``q`` (quarantined: severity 'block'; warned: 'warn') into ``table`` (whose columns are
    ``columns``), each row's cells as a JSON object built by DuckDB in the INSERT itself: on the staging connection,
    under its memory bound (DCF_STORE_MEMORY), one pass over the rows in their order. The rows' JSON never exists
    outside the table (1,048,574 held rows built on a connection of their own and handed over: +600 MiB).
    ``lineage``: one value per column for every row (the frame's own sheet wins unless ``override``). False, with
    nothing done, when the cells cannot go to Arrow as JSON-ready types (a column of mixed Python types): the caller
    stores held_frame's rows."""
    keys, cells = _held_columns(q)
    try:
        arrow = pa.Table.from_pandas(q[cells], preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError):
        return False
    if not all(_json_ready(field.type) for field in arrow.schema):
        return False
    held = {f"c{i}": arrow.column(i) for i in range(len(cells))}  # names as parameters: any header is safe
    held["excel_row"] = pa.chunked_array([pa.array(q["excel_row"].to_numpy(dtype="int32"))])
    held["rules"] = pa.chunked_array([_rules_of(batch, q, keys, severity)])
    pairs = ", ".join(f"$k{i}, h.c{i}" for i in range(len(cells)))
    values = {
        "excel_row": "h.excel_row",
        "agency_code": "$agency",
        "kind": "$kind",
        "raw_json": f"CAST(json_object({pairs}) AS VARCHAR)" if cells else "'{}'",
        "rules": "h.rules",
    }
    params: dict[str, object] = {"agency": batch.agency_code, "kind": batch.kind}
    params.update({f"k{i}": str(c) for i, c in enumerate(cells)})
    if "sheet" in keys and not (override and "sheet" in lineage):
        held["sheet"] = pa.chunked_array([pa.array(q["sheet"].astype(_STRING), type=pa.string())])  # Arrow to Arrow
        values["sheet"] = "h.sheet"
    for name, value in lineage.items():
        if name in columns and (override or name not in values):
            values[name], params[f"l_{name}"] = f"$l_{name}", value
    values = {c: v for c, v in values.items() if c in columns}
    con.register("_held", pa.table(held))
    try:
        con.execute(
            f"INSERT INTO {table} ({', '.join(values)}) SELECT {', '.join(values.values())} FROM _held h", params
        )
    finally:
        con.unregister("_held")
    return True


def held_frame(batch: FileBatch, q: pd.DataFrame, severity: str) -> pd.DataFrame:
    """Rows kept with their cells as read (quarantined: the blocking rules; warned: the warning rules), their JSON
    written by Python slice by slice: for the cells store_held cannot hand to DuckDB."""
    keys, cells = _held_columns(q)
    rules = _rules_of(batch, q, keys, severity)
    out = pd.DataFrame(
        {
            "excel_row": q["excel_row"].astype("int32").to_numpy(),
            "agency_code": batch.agency_code,
            "kind": batch.kind,
            "raw_json": pd.Series(pd.arrays.ArrowExtensionArray(_raw_json(q[cells]))),
            "rules": pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([rules]))),
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
        seen_before = run("SELECT count(*) > 0 FROM _failures_before").fetchone() == (True,)
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
            if seen_before:  # a file's first failures: nothing of it to delete
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
        # what is still open and was not written again by this load no longer occurs (each failure seen now was
        # inserted above with last_seen_load = this load): no identity of every failure computed again and held
        # in a hash set for a NOT IN (1.3M failures)
        run(
            """
            UPDATE audit_validation_failure SET status = 'resolved', resolved_at = $now
            WHERE file_key = $file_key AND status = 'open' AND last_seen_load <> $load
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

"""Control totals between datasets (kind records, key ``control_totals``): a record of one dataset states the total
of another dataset's column for a key; per key, the other dataset's records must sum to it within a tolerance.

Checked in the staging copy after every file of the night is loaded (the two datasets may come from different
files, agencies and nights), like a totals row: a mismatch is a warning (rule ``control_total_mismatch``) on the
stating record, the records load either way, and a warning that no longer holds is resolved. The check is a few
GROUP BYs over the record store, so it costs what the two datasets hold, not the warehouse."""

from __future__ import annotations

from datetime import datetime

import duckdb

from schemas.sources import ControlTotal, RecordsFileSpec, SourceConfig

RULE = "control_total_mismatch"


def declared_controls(sources: list[SourceConfig]) -> list[tuple[str, ControlTotal]]:
    """(stating dataset, control) pairs, each once even when several file patterns declare it."""
    seen: dict[str, tuple[str, ControlTotal]] = {}
    for cfg in sources:
        for spec in cfg.files:
            if isinstance(spec, RecordsFileSpec):
                for control in spec.control_totals:
                    seen.setdefault(f"{spec.dataset}|{control.model_dump_json()}", (spec.dataset, control))
    return list(seen.values())


def _has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name]).fetchone()
    return bool(row and row[0])


def _mismatches_sql(dataset: str, control: ControlTotal, other_exists: bool) -> str:
    """One row per stating record whose total the other dataset's records do not make."""
    keys = control.keys
    mine = ", ".join(f"CAST(s.{a} AS VARCHAR) AS k{i}" for i, (a, _) in enumerate(keys))
    label = " || ', ' || ".join(f"'{a}=' || coalesce(CAST(s.{a} AS VARCHAR), 'NULL')" for a, _ in keys)
    if other_exists:
        theirs = ", ".join(f"CAST({b} AS VARCHAR) AS k{i}" for i, (_, b) in enumerate(keys))
        detail = (
            f"SELECT {theirs}, sum({control.sum}) AS summed, count(*) AS n FROM records_{control.dataset} GROUP BY ALL"
        )
    else:
        detail = (
            "SELECT " + ", ".join(f"NULL::VARCHAR AS k{i}" for i in range(len(keys))) + ", NULL::DOUBLE AS summed, "
            "0::BIGINT AS n WHERE false"
        )
    on = " AND ".join(f"c.k{i} IS NOT DISTINCT FROM d.k{i}" for i in range(len(keys)))
    return f"""
        WITH c AS (
            SELECT s.file_key, s.sheet, s.excel_row, CAST(s.{control.column} AS DOUBLE) AS stated, {label} AS key_text,
                   {mine}
            FROM records_{dataset} s WHERE s.{control.column} IS NOT NULL
        ), d AS ({detail})
        SELECT c.file_key, c.sheet, c.excel_row, c.stated, c.key_text, d.summed, coalesce(d.n, 0) AS n
        FROM c LEFT JOIN d ON {on}
        WHERE d.summed IS NULL
           OR abs(c.stated - d.summed) > {control.tolerance!r} * greatest(abs(c.stated), 1.0)
    """


def _message(control: ControlTotal, stated: float, key_text: str, summed: float | None, n: int) -> str:
    if not n:
        return (
            f"This record states {stated:,.2f} as the total of {control.sum} for {key_text}, but dataset "
            f"{control.dataset} has no records with that key: check the key here, or load the records it totals."
        )
    return (
        f"This record states {stated:,.2f} as the total of {control.sum} for {key_text}, but the {n} record(s) of "
        f"dataset {control.dataset} with that key sum to {summed:,.2f} (difference {stated - (summed or 0):,.2f}): "
        "fix the total or the records it covers."
    )


def check_control_totals(
    con: duckdb.DuckDBPyConnection, sources: list[SourceConfig], load_id: str, now: datetime
) -> int:
    """Record every control total that does not hold as an open warning on its stating record; resolve the ones
    that hold again. Returns how many do not hold."""
    found: list[tuple] = []
    for dataset, control in declared_controls(sources):
        if not _has_view(con, f"records_{dataset}"):
            continue  # nothing states a total yet
        other = _has_view(con, f"records_{control.dataset}")
        for file_key, sheet, row, stated, key_text, summed, n in con.execute(
            _mismatches_sql(dataset, control, other)
        ).fetchall():
            message = _message(control, stated, key_text, summed, n)
            found.append((file_key, sheet, row, control.column, repr(stated), message))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _control_failures (file_key VARCHAR, sheet VARCHAR, excel_row INTEGER, "
        "column_name VARCHAR, value VARCHAR, message VARCHAR)"
    )
    if found:
        con.executemany("INSERT INTO _control_failures VALUES (?, ?, ?, ?, ?, ?)", found)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _control_new AS
        SELECT md5(concat_ws('|', f.file_key, f.sheet, CAST(f.excel_row AS VARCHAR), f.column_name, '{RULE}', f.value))
                   AS failure_id, f.*, a.file_hash, a.agency_code
        FROM _control_failures f JOIN audit_source_file a ON a.file_key = f.file_key AND a.is_current
        """
    )
    con.execute(
        f"""
        UPDATE audit_validation_failure SET status = 'resolved', resolved_at = $now
        WHERE rule = '{RULE}' AND status = 'open' AND failure_id NOT IN (SELECT failure_id FROM _control_new)
        """,
        {"now": now},
    )
    con.execute(
        f"""
        INSERT INTO audit_validation_failure
        SELECT failure_id, file_key, file_hash, agency_code, sheet, excel_row, NULL, column_name, column_name, value,
               '{RULE}', 'warn', message, NULL, 'open', $load, $load, $now, $now, NULL
        FROM _control_new
        ON CONFLICT (failure_id) DO UPDATE SET
            status = 'open', file_hash = excluded.file_hash, last_seen_load = excluded.last_seen_load,
            last_seen_at = excluded.last_seen_at, message = excluded.message, resolved_at = NULL
        """,
        {"load": load_id, "now": now},
    )
    return len(found)

"""Steward workbooks (warehouse/export.py), the warehouse side: the failures to export, with the record key and
period of their rows, and for each file its loaded version (raw archive path, sheet, header row, encoding) and the
held-back rows stored in ``quarantine_row`` (read only when the Data sheet needs them: the source file is gone). The
warehouse is opened read-only; the failures are read in batches into compact records (a file may have hundreds of
thousands)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from warehouse.store import read_only


@dataclass(slots=True)
class Failure:
    file_key: str
    agency_code: str
    sheet: str
    excel_row: int | None
    cell: str | None
    column_name: str | None
    source_column: str | None
    value: str | None
    rule: str
    severity: str
    message: str
    suggestion: str | None
    status: str
    first_seen_at: datetime | None
    record_key: str | None = None
    period: str | None = None

    def sort_key(self) -> tuple:
        return (
            self.excel_row is not None,
            self.record_key or "",
            self.period or "",
            self.message or "",
            self.source_column or self.column_name or "",
            self.value or "",
            self.excel_row or 0,
            self.cell or "",
        )


@dataclass
class SourceFile:
    file_key: str
    file_hash: str | None = None
    path: str | None = None
    kind: str | None = None
    sheet: str | None = None
    header_row: int | None = None
    status: str | None = None
    encoding: str | None = None  # the source's declared text encoding (CSV), from the file's context
    warehouse: Path | None = None  # where the held-back rows are read from
    quarantined: dict[int, dict] | None = None  # excel_row -> raw cells (canonical names), once read

    def held_back(self) -> dict[int, dict]:
        """The held-back rows of the loaded version (``quarantine_row``), read on first use."""
        if self.quarantined is None:
            self.quarantined = {}
            if self.warehouse is not None:
                with read_only(self.warehouse) as con:
                    for excel_row, raw in con.execute(
                        "SELECT q.excel_row, q.raw_json FROM quarantine_row q JOIN audit_source_file a "
                        "ON a.is_current AND a.file_key = q.file_key AND a.file_hash = q.file_hash "
                        "WHERE q.file_key = $key ORDER BY q.excel_row",
                        {"key": self.file_key},
                    ).fetchall():
                        self.quarantined[int(excel_row)] = _json(raw)
        return self.quarantined


_FAILURES_SQL = """
SELECT f.file_key, f.agency_code, f.sheet, f.excel_row, f.cell, f.column_name, f.source_column, f.value, f.rule,
       f.severity, f.message, f.suggestion, f.status, f.first_seen_at, f.file_hash,
       q.raw_json,
       coalesce(l.program_code, p.program_code, r.entity_name) AS loaded_key,
       coalesce(l.fiscal_year_label,
                CASE WHEN r.entity_name IS NOT NULL AND regexp_full_match(f.column_name, '[0-9]{4}') THEN f.column_name END
       ) AS loaded_period
FROM audit_validation_failure f
LEFT JOIN quarantine_row q
       ON q.file_key = f.file_key AND q.sheet = f.sheet AND q.excel_row = f.excel_row AND q.file_hash = f.file_hash
LEFT JOIN fact_funding_line l
       ON l.file_key = f.file_key AND l.sheet = f.sheet AND l.excel_row = f.excel_row AND l.file_hash = f.file_hash
LEFT JOIN dim_program p
       ON p.file_key = f.file_key AND p.sheet = f.sheet AND p.excel_row = f.excel_row AND p.file_hash = f.file_hash
LEFT JOIN (SELECT DISTINCT file_key, sheet, excel_row, file_hash, entity_name FROM ref_series_value) r
       ON r.file_key = f.file_key AND r.sheet = f.sheet AND r.excel_row = f.excel_row AND r.file_hash = f.file_hash
WHERE ($status = 'all' OR f.status = $status)
  AND ($agency IS NULL OR upper(f.agency_code) = upper($agency))
  AND ($contains IS NULL OR strpos(lower(f.file_key), lower($contains)) > 0)
"""


def _text(value: object) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def load_failures(
    warehouse: Path, agency: str | None, file_contains: str | None, status: str
) -> tuple[dict[str, list[Failure]], dict[str, SourceFile]]:
    by_file: dict[str, list[Failure]] = defaultdict(list)
    strings: dict[str, str] = {}  # one copy of each repeated text (rule, status, column, agency, file key)

    def same(v: Any) -> Any:
        return strings.setdefault(v, v) if isinstance(v, str) and len(v) < 200 else v

    with read_only(warehouse) as con:
        cur = con.execute(
            _FAILURES_SQL, {"status": status, "agency": agency or None, "contains": file_contains or None}
        )
        names = [d[0] for d in cur.description]
        while batch := cur.fetchmany(10_000):
            for values in batch:
                r = dict(zip(names, values))
                raw = _json(r["raw_json"])
                by_file[r["file_key"]].append(
                    Failure(
                        file_key=same(r["file_key"]),
                        agency_code=same(r["agency_code"]),
                        sheet=same(r["sheet"] or ""),
                        excel_row=None if r["excel_row"] is None else int(r["excel_row"]),
                        cell=_text(r["cell"]),
                        column_name=same(r["column_name"]),
                        source_column=same(r["source_column"]),
                        value=r["value"],
                        rule=same(r["rule"]),
                        severity=same(r["severity"]),
                        message=r["message"],
                        suggestion=same(_text(r["suggestion"])),
                        status=same(r["status"]),
                        first_seen_at=r["first_seen_at"],
                        record_key=_text(raw.get("program_code")) or _text(r["loaded_key"]),
                        period=same(_text(raw.get("fiscal_year")) or _text(r["loaded_period"])),
                    )
                )
        keys = sorted(by_file)
        files: dict[str, SourceFile] = {k: SourceFile(k, warehouse=Path(warehouse)) for k in keys}
        if keys:
            for file_key, file_hash, path, kind, sheet, header_row, st, context in con.execute(
                # the Data sheet copies the bytes that were loaded, from the raw archive: never whatever the inbox path
                # (or a link planted there) holds now
                "SELECT file_key, file_hash, archive_path, kind, sheet, header_row, status, context_json FROM audit_source_file "
                "WHERE is_current AND list_contains($keys, file_key)",
                {"keys": keys},
            ).fetchall():
                per_sheet = _json(context).get("header_rows") or {}
                if not sheet and per_sheet:  # a multi-sheet reference workbook: the sheet of its first failure
                    sheet = by_file[file_key][0].sheet or None
                    header_row = per_sheet.get(sheet, header_row)
                files[file_key] = SourceFile(
                    file_key,
                    file_hash,
                    path,
                    kind,
                    sheet,
                    header_row,
                    st,
                    _json(context).get("encoding"),
                    warehouse=Path(warehouse),
                )
    for failures in by_file.values():
        failures.sort(key=Failure.sort_key)
    return dict(by_file), files


def _json(raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

"""Where one file's store goes (issue 15): CPU of inserting one normalised workbook into ``fact_funding_line`` and
committing it, as the nightly writer does (one DuckDB thread, the lineage as parameters, one transaction per file),
then per column. A diagnostic, not a target: BENCHMARKS.md's figures come from ``benchmarks.run`` and
``benchmarks.scale``.

The batch is the real one: the workbook is processed by ``flows.process.process_file`` with the shipped sources and
reference tables. By default it is the first MOD workbook of a cached benchmark corpus (``make bench`` makes one).

Usage: ``python -m benchmarks.store_cost [WORKBOOK] [--repeat 10] [--threads 1,2] [--row-groups 122880,65536]
[--per-column]``.
Measured 2026-12-03 (2-core AMD EPYC, 100k-line workbook x 10, per 1M rows): INSERT 0.59-0.65 and COMMIT 0.78-0.84
CPU-s in row groups of 65,536 rows (the writer's, docs/adr/0016) against 0.55-0.59 and 1.27 in DuckDB's default of
122,880; two threads did not help (insert 110 against 58 ms, commit 173-185 against 177-190 ms per 100k rows, in the
default row groups).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from benchmarks.corpus import cache_root
from warehouse.connect import ROW_GROUP_SIZE, lift_storage
from warehouse.ddl import apply_ddl

ROOT = Path(__file__).resolve().parents[1]
LINEAGE = ["file_key", "sheet", "file_hash", "load_id"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def scratch(row_group_size: int = ROW_GROUP_SIZE) -> Iterator[duckdb.DuckDBPyConnection]:
    """A new DuckDB file of its own, in the warehouse's storage format, attached with ``row_group_size`` rows per row
    group (by default the writer's, warehouse/connect.py), on one thread, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="dcf-store-cost-"))
    try:
        lift_storage(folder / "w.duckdb")  # created in the warehouse's storage format
        con = duckdb.connect()
        con.execute(f"ATTACH '{folder / 'w.duckdb'}' AS w (ROW_GROUP_SIZE {row_group_size})")
        con.execute("USE w")
        con.execute("SET threads = 1")
        try:
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def default_workbook() -> Path:
    found = sorted(cache_root().glob("lines-*/inbox/mod/MOD_budget_*.xlsx"))
    if not found:
        raise SystemExit(f"no cached corpus under {cache_root()}: run `make bench` first, or name a MOD workbook")
    return found[0]


def normalised_rows(workbook: Path) -> pd.DataFrame:
    from flows.process import FileTask, describe, process_file
    from flows.reference import read_reference
    from schemas.sources import load_sources

    source = next(s for s in load_sources(ROOT / "sources") if s.agency == "MOD")
    digest, size, mtime = describe(workbook)
    task = FileTask(workbook, f"MOD/{workbook.name}", digest, "t", size, mtime, source, source.spec_for(workbook.name))
    batch = process_file(task, read_reference(ROOT / "reference"))
    if batch.rows is None or not len(batch.rows):
        raise SystemExit(f"{workbook}: no rows to store ({batch.status}: {batch.message})")
    return batch.rows


def store(
    rows: pa.Table, columns: list[str], threads: int, repeat: int, row_group_size: int = ROW_GROUP_SIZE
) -> tuple[float, float, float, int]:
    """(insert CPU-s, commit CPU-s, commit wall-s), summed over ``repeat`` files of these rows stored into the
    warehouse's own ``fact_funding_line`` (its DDL, CHECKs included), and the rows it holds at the end."""
    with scratch(row_group_size) as con:
        apply_ddl(con)
        con.execute(f"SET threads = {threads}")
        con.register("_incoming", rows)
        names = ", ".join(columns + LINEAGE)
        sql = f"INSERT INTO fact_funding_line ({names}) SELECT {', '.join(columns)}, ?, ?, ?, ? FROM _incoming"
        insert = commit = commit_wall = 0.0
        for i in range(repeat):
            c0 = cpu_seconds()
            con.execute("BEGIN TRANSACTION")
            con.execute(sql, [f"MOD/f{i}.xlsx", "Budget", f"h{i}", "L1"])
            c1, w1 = cpu_seconds(), time.perf_counter()
            con.execute("COMMIT")
            commit_wall += time.perf_counter() - w1
            insert, commit = insert + c1 - c0, commit + cpu_seconds() - c1
        held = con.execute("SELECT count(*) FROM fact_funding_line").fetchone()
        return insert, commit, commit_wall, held[0] if held else 0


def per_column(rows: pa.Table, repeat: int) -> None:
    print(f"{'column':24s} CPU-s for {repeat} x {rows.num_rows:,} rows (insert + commit, a table of that column)")
    for name in rows.column_names:
        with scratch() as con:
            con.register("_one", rows.select([name]))
            con.execute("CREATE TABLE t AS SELECT * FROM _one LIMIT 0")
            c0 = cpu_seconds()
            for _ in range(repeat):
                con.execute("BEGIN TRANSACTION")
                con.execute("INSERT INTO t SELECT * FROM _one")
                con.execute("COMMIT")
            print(f"{name:24s} {cpu_seconds() - c0:.2f}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.store_cost", description=__doc__.split("\n")[0])
    p.add_argument("workbook", nargs="?", type=Path, help="a MOD budget workbook (default: a cached corpus's first)")
    p.add_argument("--repeat", type=int, default=10, help="files stored, one transaction each (default 10)")
    p.add_argument("--threads", default="1,2", help="DuckDB thread counts to compare (default 1,2)")
    p.add_argument(
        "--row-groups",
        default=str(ROW_GROUP_SIZE),
        help=f"rows per row group to compare, e.g. 122880,{ROW_GROUP_SIZE} (default {ROW_GROUP_SIZE}, the writer's)",
    )
    p.add_argument("--per-column", action="store_true", help="also the cost of each column stored alone")
    args = p.parse_args(argv)
    workbook = args.workbook or default_workbook()
    frame = normalised_rows(workbook)
    rows = pa.Table.from_pandas(frame, preserve_index=False)
    print(f"{workbook.name}: {rows.num_rows:,} rows x {rows.num_columns} columns (+ {len(LINEAGE)} lineage)")
    for size in (int(n) for n in args.row_groups.split(",")):
        for threads in (int(t) for t in args.threads.split(",")):
            insert, commit, wall, _ = store(rows, list(frame.columns), threads, args.repeat, size)
            per_million = 1_000_000 / (rows.num_rows * args.repeat)
            print(
                f"row groups of {size:,}, threads={threads}: INSERT {insert * per_million:.2f} CPU-s, "
                f"COMMIT {commit * per_million:.2f} CPU-s ({wall * per_million:.2f} s wall) per 1M rows"
            )
    if args.per_column:
        per_column(rows, args.repeat)


if __name__ == "__main__":
    main()

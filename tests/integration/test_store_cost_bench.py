"""benchmarks/store_cost.py stores a real normalised batch the way the nightly writer does: every column of the
batch and the four lineage columns land in the warehouse's own fact_funding_line (warehouse.ddl.apply_ddl, CHECKs
included), once per repeated file."""

from __future__ import annotations

import pyarrow as pa

from benchmarks.store_cost import normalised_rows, store


def test_the_diagnostic_stores_every_row_of_a_real_batch_into_the_fact_table(sample_inbox):
    inbox, _ = sample_inbox
    workbook = sorted((inbox / "mod").glob("MOD_budget_*.xlsx"))[0]
    frame = normalised_rows(workbook)
    assert len(frame) > 100
    rows = pa.Table.from_pandas(frame, preserve_index=False)
    insert, commit, wall, held = store(rows, list(frame.columns), threads=1, repeat=3)
    assert held == 3 * len(frame)
    assert insert >= 0 and commit >= 0 and wall > 0

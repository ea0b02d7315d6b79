"""One file per edition of a publisher's dataset, whatever order the files come in.

A publisher's workbook (kind ``years_across_columns``, e.g. SIPRI's) carries an edition, read from its name and
checked against its content (transforms/wide.py). Two files can claim the same edition: a re-download under another
name, or a copy someone changed. File order must never decide which one the warehouse holds (a name that sorts
first would win), so:

- files of the SAME night claiming one edition: with the same figures, the first (by file key) loads and the others
  fail as duplicates naming it (it makes no difference which one loads); with different figures, ALL of them fail,
  each message naming every claimant, and nothing of that edition is loaded from this night; the steward removes
  the files that are not the publisher's, and the next night loads the one left;
- a file claiming an edition that an earlier night loaded from another file fails naming that file, and says
  whether the figures are the same (warehouse/store.py ``_claim_edition``); the loaded one stays until a steward
  removes it.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from flows.kinds.base import as_failed
from schemas.batch import FileBatch
from warehouse.editions import same_figures


def _claim(batch: FileBatch) -> tuple[str, str] | None:
    editions = batch.tables.get("ref_series_edition")
    if batch.status == "failed" or editions is None or not len(editions):
        return None
    row = editions.iloc[0]
    return str(row["dataset"]), str(row["edition"])


def _refused(batch: FileBatch, message: str) -> FileBatch:
    return as_failed(batch, "edition_duplicate", message)


def settle_editions(batches: list[FileBatch]) -> list[FileBatch]:
    """The night's batches with every same-night edition claim settled (module docstring); others unchanged."""
    claims: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, batch in enumerate(batches):
        if (key := _claim(batch)) is not None:
            claims[key].append(i)
    settled = list(batches)
    for (dataset, edition), idx in claims.items():
        if len(idx) < 2:
            continue
        idx = sorted(idx, key=lambda i: batches[i].file_key)
        keys = [batches[i].file_key for i in idx]
        values = [batches[i].tables.get("ref_series_value", pd.DataFrame()) for i in idx]
        if all(same_figures(values[0], v) for v in values[1:]):
            for i in idx[1:]:
                settled[i] = _refused(
                    batches[i],
                    f"edition {edition} of {dataset} is also in {keys[0]} with the same figures; that file is "
                    "loaded: remove this copy",
                )
            continue
        listed = ", ".join(keys)
        for i in idx:
            settled[i] = _refused(
                batches[i],
                f"edition {edition} of {dataset} is claimed by {len(keys)} files whose figures differ: {listed}. "
                "None of them is loaded: keep the publisher's file, remove the other(s), and the next run loads it",
            )
    return settled

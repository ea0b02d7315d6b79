"""The nightly flow's bookkeeping: the run summary, the reference dimensions, what a night would change
(a night with nothing new publishes nothing), the rates a rerate moved, and the run's Markdown artifact."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from prefect import get_run_logger

from flows.nightly_discover import _archived
from flows.process import FileTask
from schemas.batch import FileBatch
from schemas.settings import Settings
from schemas.sources import SourceConfig
from transforms.reference import Reference, country_dimension
from warehouse.published_state import TrustedLook
from warehouse.quiet import reasons_to_publish
from warehouse.store import (
    LoadInfo,
    Staging,
)


@dataclass
class RunSummary:
    load_id: str
    outcome: str  # success | partial | nothing_new
    warehouse: str
    files: list[dict] = field(default_factory=list)  # one dict per file seen
    totals: dict[str, int] = field(default_factory=dict)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)  # (rule, failures) most frequent first
    warnings: list[str] = field(default_factory=list)  # what in the inbox no source reads (flows/discover.py)
    rates_changed: list[dict] = field(default_factory=list)  # frozen rates a rerate moved (flows/nightly.py)

    @property
    def exit_code(self) -> int:
        return 4 if self.outcome == "partial" else 0


def _dimensions(reference: Reference, sources: list[SourceConfig]):
    agencies = pd.DataFrame(
        [
            (s.agency, s.name_en, s.name_ar, s.fiscal_year_start_month, s.fiscal_year_label, s.number_locale)
            for s in sources
        ],
        columns=["agency_code", "name_en", "name_ar", "fiscal_year_start_month", "fiscal_year_label", "number_locale"],
    )
    return {"dim_agency": agencies, "dim_country": country_dimension(reference), "dim_category": reference.categories}


_LOCK_KEY = ["currency", "policy", "key_start", "key_end", "fiscal_year"]


def _locked_rates_of(staging: Staging, years: frozenset[int]) -> pd.DataFrame:
    """The frozen rates of ``years`` (empty when none are asked for)."""
    return staging.con.execute(
        f"SELECT {', '.join(_LOCK_KEY)}, units_per_usd, rate_date, provider FROM fx_rate_lock "
        "WHERE list_contains(?, fiscal_year)",
        [sorted(years)],
    ).df()


def _rate_changes(before: pd.DataFrame, after: pd.DataFrame) -> list[dict]:
    """The frozen rates ``dcf rerate`` moved: one entry per lock key whose rate, rate date or provider changed
    (a key only before or only after shows the side it lacks as None)."""
    both = before.merge(after, on=_LOCK_KEY, how="outer", suffixes=("_before", "_after"))
    moved = both[
        ~(
            both["units_per_usd_before"].eq(both["units_per_usd_after"])
            & both["rate_date_before"].eq(both["rate_date_after"])
            & both["provider_before"].eq(both["provider_after"])
        )
    ].sort_values(_LOCK_KEY)
    return moved.astype(object).where(moved.notna(), None).to_dict("records")


def _presence(
    settings: Settings, sources: list[SourceConfig], batches: list[FileBatch], unchanged: list[FileTask]
) -> tuple[set[str], set[str]]:
    """(files in the inbox tonight, agencies whose folder is missing: never guess, they withdraw nothing)."""
    in_inbox = {b.file_key for b in batches if not _archived(b.path, settings)} | {
        u.file_key for u in unchanged if not _archived(u.path, settings)
    }
    return in_inbox, {s.agency for s in sources if not (settings.inbox / s.inbox_dir).is_dir()}


def _totals(batches: list[FileBatch], unchanged: list[FileTask], withdrawn: list[dict]) -> dict[str, int]:
    return {
        "files_seen": len(batches) + len(unchanged),
        "files_processed": len(batches),
        "files_unchanged": len(unchanged),
        "files_failed": sum(b.status == "failed" for b in batches),
        "files_withdrawn": len(withdrawn),
        **{
            k: sum(b.counts[k] for b in batches)
            for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_skipped")
        },
    }


def _files(
    batches: list[FileBatch], unchanged: list[FileTask], withdrawn: list[dict], refused: list[dict] | None
) -> list[dict]:
    files = [{"file": b.file_key, "status": b.status, **b.counts, "message": b.message} for b in batches]
    return files + withdrawn + (refused or []) + [{"file": u.file_key, "status": "unchanged"} for u in unchanged]


def _top_rules(batches: list[FileBatch]) -> list[tuple[str, int]]:
    reasons = pd.concat(
        [b.failures["rule"] for b in batches if b.failures is not None and len(b.failures)] or [pd.Series(dtype=object)]
    )
    return [(str(k), int(v)) for k, v in reasons.value_counts().head(10).items()]


def quiet_night(
    settings: Settings,
    sources: list[SourceConfig],
    reference: Reference,
    batches: list[FileBatch],
    unchanged: list[FileTask],
    refused: list[dict],
    load: LoadInfo,
    look: TrustedLook | None = None,
) -> RunSummary | None:
    """The summary of a night that changes nothing (issue 14, point 8: no staging copy, no publish, every kept
    version kept), or None when something would change. Only nights whose processed files all failed (or none)
    qualify; the published state decides the rest (warehouse/quiet.py), asked through ``look`` when given."""
    if any(b.status != "failed" for b in batches):
        return None
    in_inbox, folderless = _presence(settings, sources, batches, unchanged)
    reasons = reasons_to_publish(
        settings.warehouse,
        present=in_inbox,
        skip_agencies=folderless,
        dimensions=_dimensions(reference, sources),
        failed_again=[(b.file_key, b.file_hash, b.message) for b in batches],
        as_of=load.started_at,
        restricted={s.agency for s in sources if s.restricted},
        look=look,
    )
    if reasons:
        get_run_logger().info("publishing: %s", "; ".join(reasons), extra={"dcf": "stage"})
        return None
    get_run_logger().info(
        "nothing new: the published warehouse is left as it was (no version used)", extra={"dcf": "line"}
    )
    totals = _totals(batches, unchanged, [])
    outcome = "partial" if totals["files_failed"] else "nothing_new"
    return RunSummary(
        load.load_id,
        outcome,
        str(settings.warehouse),
        _files(batches, unchanged, [], refused),
        totals,
        _top_rules(batches),
    )


def _per_agency(files: list[dict]) -> list[str]:
    frame = pd.DataFrame([f for f in files if f["status"] not in ("unchanged", "withdrawn", "retracted", "refused")])
    if frame.empty:
        return []
    frame["agency"] = frame["file"].str.split("/").str[0]
    cols = ["rows_read", "rows_loaded", "rows_quarantined", "rows_skipped"]
    grouped = frame.groupby("agency").agg(files=("file", "count"), **{c: (c, "sum") for c in cols})
    return [
        f"| {a} | {r.files} | {r.rows_read} | {r.rows_loaded} | {r.rows_quarantined} | {r.rows_skipped} |"
        for a, r in grouped.iterrows()
    ]


def _summary_markdown(summary: RunSummary) -> str:
    t = summary.totals
    lines = [
        f"# Nightly ingestion {summary.load_id}: {summary.outcome}",
        "",
        f"{t.get('files_processed', 0)} file(s) processed, {t.get('files_unchanged', 0)} unchanged, "
        f"{t.get('files_failed', 0)} failed. Rows: {t.get('rows_read', 0)} read = {t.get('rows_loaded', 0)} loaded + "
        f"{t.get('rows_quarantined', 0)} quarantined + {t.get('rows_skipped', 0)} skipped.",
        "",
        "| agency | files | read | loaded | quarantined | skipped |",
        "|---|---:|---:|---:|---:|---:|",
        *_per_agency(summary.files),
        "",
        "| file | status | read | loaded | quarantined | skipped | message |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for f in summary.files:
        lines.append(
            f"| {f['file']} | {f['status']} | {f.get('rows_read', '')} | {f.get('rows_loaded', '')} | "
            f"{f.get('rows_quarantined', '')} | {f.get('rows_skipped', '')} | {f.get('message') or ''} |"
        )
    if summary.warnings:
        lines += ["", "Inbox warnings (not read):", "", *(f"- {w}" for w in summary.warnings)]
    if summary.top_reasons:
        lines += ["", "Top reasons rows were held back:", "", "| rule | rows |", "|---|---:|"]
        lines += [f"| {rule} | {n} |" for rule, n in summary.top_reasons]
    return "\n".join(lines)


# the ignore below: Prefect's flow() wants TaskRunner[PrefectFuture[Any]], which its own ThreadPoolTaskRunner (a
# TaskRunner[PrefectConcurrentFuture[R]], invariant) does not match; Prefect casts the same way internally

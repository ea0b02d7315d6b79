"""Where a flow run's time goes: read, contracts, normalise, load, publish, Prefect.

The flow does not time its stages, so :class:`StageProbe` wraps, for one run in this process, the functions that do
them with a clock (two ``perf_counter`` calls per call: about 30 calls for a 10-file night) and restores them after.
Nothing in flows/ or warehouse/ is changed, and what the functions do is not either. A function the probe cannot find
(renamed or moved) is reported as missing rather than timed as zero.

The wall-clock stages add up to the flow time. The work of each file runs in Prefect's thread pool (two threads on
two cores), so it appears once as wall time (first file started to last file finished) and, split into read,
contracts, normalise, archive copy and the rest, as thread-seconds summed over the threads.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from collections import defaultdict
from dataclasses import replace
from typing import Any

#: (stage, module, attribute path) of every function the probe times
HOOKS: tuple[tuple[str, str, str], ...] = (
    ("flow_body", "flows.nightly", "nightly_ingestion.fn"),
    ("reference", "flows.nightly", "read_reference"),
    ("discover", "flows.nightly", "discover.fn"),
    ("quiet_check", "flows.nightly", "quiet_night"),
    ("load_publish", "flows.nightly", "load_and_publish.fn"),
    ("staging_copy", "warehouse.store", "Staging.__init__"),
    ("load", "warehouse.store", "Staging.load_batches"),
    ("publish", "warehouse.store", "Staging.publish"),
    ("staging_ddl", "warehouse.store", "apply_ddl"),
    ("publish_file", "warehouse.store", "publish_file"),
    ("file_task", "flows.nightly", "process.fn"),
    ("process_file", "flows.nightly", "process_file"),
    ("read", "flows.kinds.table", "read_source_file"),
    ("raw_contract", "transforms.standardise_budget", "_raw_contract"),
    ("raw_contract", "transforms.standardise_programs", "_raw_contract"),
    ("canonical_contract", "transforms.standardise_checks", "validate_passing"),
    ("archive", "flows.archive", "keep"),
)
#: the table kinds' standardisers (read through flows.kinds.table.KINDS_BY_NAME): contracts included
STANDARDISE = "standardise"
#: stages every run that processes files must reach (a zero there means a hook no longer sits on the flow's path)
EXPECTED_WITH_FILES = ("flow_body", "discover", "file_task", "process_file", "read", STANDARDISE, "raw_contract")
EXPECTED_ALWAYS = ("flow_body", "discover")

#: the rows of a breakdown: (key, label, kind); kind "wall" rows add up to the flow time, "part" rows are wall
#: seconds inside the row above them, "thread" rows are per-file thread-seconds summed over the pool's threads
ROWS: tuple[tuple[str, str, str], ...] = (
    ("prefect_outside", "Prefect: the flow run's start and end (outside the flow's body)", "wall"),
    ("reference", "reference tables read", "wall"),
    ("discover", "discover: hash the inbox, compare with the warehouse", "wall"),
    ("per_file_wall", "per-file work, wall clock (first file started to last finished)", "wall"),
    ("read", "read: workbook -> cells (fastexcel)", "thread"),
    ("contracts", "contracts: raw and canonical Pandera validation", "thread"),
    ("normalise", "normalise: standardise, without the contracts", "thread"),
    ("archive", "archive copy of each file", "thread"),
    ("per_file_other", "other per-file work (settle, batch, logs, task run)", "thread"),
    (
        "writer",
        "stored while files were processed (the flow's thread, overlapped): staging opened, rows inserted",
        "part",
    ),
    ("quiet_check", "quiet-night check (is there anything to publish?)", "wall"),
    ("staging", "staging copy opened after the files were processed (Staging: copy, open, DDL)", "wall"),
    ("staging_copy", "copy of the published warehouse and open (nothing to copy on a first load)", "part"),
    ("staging_ddl", "schema DDL (apply_ddl)", "part"),
    ("load", "load: rows stored after the last file was processed (its own rows, held editions)", "wall"),
    ("checks", "checks, refreshes and bookkeeping before publishing", "wall"),
    ("publish", "publish (Staging.publish)", "wall"),
    ("publish_checkpoint", "stamp, CHECKPOINT and close", "part"),
    ("publish_file", "version link, copy to the published file, analyst edition (publish_file)", "part"),
    ("prefect_rest", "Prefect and the rest inside the flow (task runs, logs, artifact, lock)", "wall"),
)


class StageProbe:
    """``with StageProbe() as probe: run the flow`` then ``probe.breakdown(flow_seconds)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float, int]] = []  # (stage, start, end, thread id)
        self.missing: list[str] = []
        self._undo: list[tuple[Any, str, Any]] = []
        self._lock = threading.Lock()

    # -- installing ------------------------------------------------------------------------------------------
    def __enter__(self) -> StageProbe:
        for stage, module, path in HOOKS:
            try:
                owner: Any = importlib.import_module(module)
                *parents, name = path.split(".")
                for part in parents:
                    owner = getattr(owner, part)
                original = getattr(owner, name)
            except (ImportError, AttributeError):
                if module != "transforms.standardise_programs":  # optional: the corpus has budgets only
                    self.missing.append(f"{module}.{path}")
                continue
            self._swap(owner, name, self._timed(stage, original))
        try:
            table = importlib.import_module("flows.kinds.table")
            kinds = table.KINDS_BY_NAME
            for key, kind in list(kinds.items()):
                if kind.standardise is not None:
                    self._swap_item(kinds, key, replace(kind, standardise=self._timed(STANDARDISE, kind.standardise)))
        except (ImportError, AttributeError, TypeError):
            self.missing.append("flows.kinds.table.KINDS_BY_NAME[...].standardise")
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._undo):
            if isinstance(owner, dict):
                owner[name] = original
            else:
                setattr(owner, name, original)
        self._undo.clear()

    def _swap(self, owner: Any, name: str, new: Any) -> None:
        self._undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    def _swap_item(self, owner: dict, key: str, new: Any) -> None:
        self._undo.append((owner, key, owner[key]))
        owner[key] = new

    def _timed(self, stage: str, fn: Any) -> Any:
        calls, lock = self.calls, self._lock

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                with lock:
                    calls.append((stage, started, ended, threading.get_ident()))

        return timed

    # -- reading -------------------------------------------------------------------------------------------------
    def breakdown(self, flow_s: float) -> dict[str, Any]:
        """The run's stages in seconds (keys of :data:`ROWS`, plus ``flow``, ``files``, ``threads``, ``problems``)."""
        return breakdown(self.calls, flow_s, self.missing)


#: stages timed only where they run inside another (apply_ddl inside Staging.__init__, publish_file inside publish)
INSIDE = {"staging_ddl": "staging_copy", "publish_file": "publish"}


def breakdown(calls: list[tuple[str, float, float, int]], flow_s: float, missing: list[str]) -> dict[str, Any]:
    total: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for stage, start, end, _ in calls:
        outer = INSIDE.get(stage)
        if outer and not any(o == outer and s <= start and end <= e for o, s, e, _ in calls):
            continue
        total[stage] += end - start
        count[stage] += 1
    file_calls = [(s, e, t) for stage, s, e, t in calls if stage == "file_task"]
    per_file_wall = max(e for _, e, _ in file_calls) - min(s for s, _, _ in file_calls) if file_calls else 0.0
    window = [(min(s for s, _, _ in file_calls), max(e for _, e, _ in file_calls))] if file_calls else []
    lp = [(s, e) for stage, s, e, _ in calls if stage == "load_publish"]

    def within(stage: str, spans: list[tuple[float, float]]) -> float:
        """Seconds of ``stage`` that ran inside ``spans`` (the per-file window, load-and-publish)."""
        return sum(max(0.0, min(e, we) - max(s, ws)) for st, s, e, _ in calls if st == stage for ws, we in spans)

    # the flow stores each file while the others are processed (flows/nightly_load.py): the staging copy and the
    # loads that ran inside the per-file window are part of its wall time; only what ran after it is serial
    staging_in, load_in = within("staging_copy", window), within("load", window)
    staging_after = total["staging_copy"] - staging_in
    load_after = total["load"] - load_in
    ddl_after = total["staging_ddl"] - within("staging_ddl", window)
    staging_in_lp, load_in_lp = within("staging_copy", lp), within("load", lp)
    contracts = total["raw_contract"] + total["canonical_contract"]
    serial = (
        total["reference"]
        + total["discover"]
        + total["quiet_check"]
        + total["load_publish"]
        + (staging_after - staging_in_lp)
        + (load_after - load_in_lp)
    )
    figures: dict[str, Any] = {
        "flow": flow_s,
        "prefect_outside": flow_s - total["flow_body"],
        "reference": total["reference"],
        "discover": total["discover"],
        "per_file_wall": per_file_wall,
        "read": total["read"],
        "contracts": contracts,
        "normalise": total[STANDARDISE] - contracts,
        "archive": total["archive"],
        "per_file_other": total["file_task"] - total["read"] - total[STANDARDISE] - total["archive"],
        "quiet_check": total["quiet_check"],
        "writer": staging_in + load_in,
        "staging": staging_after,
        "staging_copy": staging_after - ddl_after,
        "staging_ddl": ddl_after,
        "load": load_after,
        "checks": total["load_publish"] - staging_in_lp - load_in_lp - total["publish"],
        # wherever they ran (the publish-against-size table): the staging copy, its copy part and its DDL, the loads
        "staging_all": total["staging_copy"],
        "staging_copy_all": total["staging_copy"] - total["staging_ddl"],
        "staging_ddl_all": total["staging_ddl"],
        "load_all": total["load"],
        "publish": total["publish"],
        "publish_checkpoint": total["publish"] - total["publish_file"],
        "publish_file": total["publish_file"],
        "prefect_rest": total["flow_body"] - serial - per_file_wall,
        "files": count["file_task"],
        "threads": len({t for _, _, t in file_calls}),
    }
    expected = EXPECTED_WITH_FILES if count["file_task"] else EXPECTED_ALWAYS
    problems = [f"stage probe: {name} not found (renamed or moved?)" for name in missing]
    problems += [f"stage probe: '{stage}' was never called" for stage in expected if not count[stage]]
    figures["problems"] = problems
    return figures

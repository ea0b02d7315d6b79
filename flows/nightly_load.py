"""A night's files go into the staging copy as they are processed (issue 15, point 1: stream).

The flow processes files on Prefect's thread pool and, on its own thread, stores each finished file in the staging
copy of the warehouse at once (:class:`NightLoad`): loading overlaps reading, and a night holds the few files in
flight in memory, never all of them (:func:`in_window` submits a file only when one of the window has finished).
Nothing else changes about what a night guarantees:

- each file is stored in its own transaction, so a file the database refuses becomes that file's failure and rolls
  back only its own rows (``on_reject``), never the other files';
- nothing is published until every file is processed and every check passed, in one atomic publish
  (flows/nightly.py ``load_and_publish``); any failure before that discards the staging copy and leaves the
  published warehouse as it was;
- on a night that will publish (a file new or changed, or ``--force``), the staging copy is made on the writer
  thread while the first files are read (:meth:`NightLoad.prepare`), so copying the warehouse overlaps reading
  instead of following it; a night whose files are only failures tried again makes no copy until the quiet-night
  check says there is something to publish (issue 14, point 8): a quiet night makes none, publishes nothing and
  keeps every version;
- files claiming an edition of a publisher's dataset are held back and settled together at the end, so file order
  never decides which one loads (flows/editions.py).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture, as_completed

from flows.editions import settle_editions
from flows.nightly_steps import _dimensions
from schemas.batch import FileBatch
from schemas.settings import KEY_ENV, Settings
from schemas.sources import SourceConfig
from transforms.reference import Reference
from warehouse import run_steps
from warehouse.connect import configured_key
from warehouse.memory import give_back
from warehouse.store import LoadInfo, Staging, WarehouseError, explain

LINE = {"dcf": "line"}
T = TypeVar("T")


def in_window(submit: Callable[[T], PrefectFuture], items: Iterable[T], window: int) -> Iterator[tuple[int, FileBatch]]:
    """(position, result) of every item as its task finishes, with at most ``window`` tasks submitted and not yet
    handed over: the next item is submitted as soon as one finishes, before the caller stores the finished one, so
    the workers keep busy while the flow's thread writes."""
    pending: dict[Any, tuple[int, PrefectFuture]] = {}
    todo = iter(enumerate(items))

    def fill() -> None:
        while len(pending) < window and (item := next(todo, None)) is not None:
            future = submit(item[1])
            pending[future.task_run_id] = (item[0], future)

    fill()
    while pending:
        done = next(as_completed([future for _, future in pending.values()]))
        position, future = pending.pop(done.task_run_id)
        fill()
        result = future.result()
        _forget(result, future)
        del future, done
        yield position, result


def _forget(result: object, future: PrefectFuture) -> None:
    """Let a stored file's frames be freed at once. Prefect keeps every task's final state, and with it the result,
    in the flow run's context for as long as the flow runs (``run_results``: to link a result passed to another task
    back to the task that made it), and its engine objects refer to one another (a cycle, freed only when Python's
    cyclic collector next runs, which may be many files later). A file's batch is never passed to another task, so
    its entry is dropped and the final state lets go of the result."""
    context = FlowRunContext.get()
    if context is not None:
        context.run_results.pop(id(result), None)
    try:
        future.state.data = None
    except Exception:  # noqa: BLE001 - Prefect's internals: at worst the frames wait for the cyclic collector
        pass


class NightLoad:
    """The staging copy of one night, filled file by file (module docstring). Use as a context manager: leaving it
    with an exception discards the staging copy (and says a machine's problem, like a full disk, in plain words)."""

    def __init__(
        self,
        settings: Settings,
        sources: list[SourceConfig],
        reference: Reference,
        load: LoadInfo,
        on_reject: Callable[[FileBatch, Exception], FileBatch],
        eager: bool = False,
    ) -> None:
        self.settings, self.sources, self.reference, self.load = settings, sources, reference, load
        self.on_reject = on_reject
        self.eager = eager  # open the staging copy at the first file, even a failed one (--force, a rerate)
        self.staging: Staging | None = None
        self.countries_before: frozenset[str] = frozenset()  # dim_country's codes before tonight's (ADR 0012)
        self._stored: dict[int, FileBatch] = {}  # position -> the slim batch as stored
        self._held: dict[int, FileBatch] = {}  # position -> a batch not stored yet (failed before staging, editions)
        #: the one writer: DuckDB runs on this thread, so a signal (SIGTERM, Ctrl-C) is handled on the flow's thread
        #: at once instead of being turned into a DuckDB "interrupted" error in the middle of a file's insert
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dcf-writer")
        self._prepared: Future[Staging] | None = None  # the staging copy being made ahead (:meth:`prepare`)
        self._submitted = False  # a store was handed to the writer thread

    def __enter__(self) -> NightLoad:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        self.discard()
        if (
            isinstance(exc, Exception)
            and not isinstance(exc, WarehouseError)
            and (plain := explain(exc, self.settings.warehouse))
        ):
            raise plain from exc

    @property
    def opened(self) -> bool:
        return self.staging is not None

    def prepare(self) -> None:
        """Start making the staging copy (the copy of the newest version, its DDL) on the writer thread, where
        the first file will be stored: the copy, which grows with the warehouse (0.5 s at 142 MiB here), then
        overlaps the reading of the first files instead of following it. Nothing is written into it before
        :meth:`open`; a failure making it is raised there, where making it at the first need raised it."""
        if self._prepared is None and self.staging is None and not self._submitted:  # before any store: else the
            # first store, opening the copy on the writer thread, would wait for a copy queued behind itself
            self._prepared = self._writer.submit(contextvars.copy_context().run, self._new_staging)

    def wait_prepared(self) -> None:
        """Wait until the staging copy made ahead (if any) is made (or failed: said where it is used)."""
        if self._prepared is not None:
            wait([self._prepared])

    def _new_staging(self) -> Staging:
        return Staging(self.settings.warehouse, log=get_run_logger().info)

    def open(self) -> Staging:
        """The staging copy, opened at the first need (made then, or ahead by :meth:`prepare`): the reference
        dimensions and the restricted agencies are written first, as every file's rows may point at them."""
        if self.staging is not None:
            return self.staging
        logger = get_run_logger()
        prepared, self._prepared = self._prepared, None
        staging = prepared.result() if prepared is not None else self._new_staging()
        self.staging = staging
        self.countries_before = run_steps.country_codes(staging.con)  # for the orphan check's scope (ADR 0012)
        for table, frame in _dimensions(self.reference, self.sources).items():
            staging.replace_dimension(table, frame)
        restricted = {s.agency for s in self.sources if s.restricted}
        staging.restrict(restricted)
        if restricted and configured_key() is None:
            logger.warning(
                "restricted agencies (%s) are left out of the analyst edition, but no key is set (%s): their lines "
                "are in plain text in %s",
                ", ".join(sorted(restricted)),
                KEY_ENV,
                self.settings.warehouse.name,
                extra=LINE,
            )
        return staging

    def offer(self, position: int, batch: FileBatch) -> None:
        """A processed file: stored now, or held (an edition claim; a failed file while no staging copy is open)."""
        if _claims_edition(batch) or (batch.status == "failed" and not self.eager and self.staging is None):
            self._held[position] = batch
            return
        self._store({position: batch})

    def finish(self) -> list[FileBatch]:
        """Settle the held edition claims, store every held batch, and return the night's batches (slim, in the
        order the files were submitted)."""
        if self._held:
            positions = sorted(self._held)
            settled = settle_editions([self._held[p] for p in positions])
            logger = get_run_logger()
            for position, after in zip(positions, settled, strict=True):
                if after is not self._held[position]:
                    logger.error("%s: %s", after.file_key, after.message)
            self._held = {}
            self._store(dict(zip(positions, settled, strict=True)))
        self._writer.shutdown(wait=True)  # nothing more to store tonight
        return self.batches()

    def batches(self) -> list[FileBatch]:
        """Every batch offered so far, stored (slim) or held, in submission order."""
        every = {**self._stored, **self._held}
        return [every[p] for p in sorted(every)]

    def _store(self, batches: dict[int, FileBatch]) -> None:
        """Store on the writer thread and wait there; interrupted (a signal), stop the writer's query first."""
        self._submitted = True
        future = self._writer.submit(contextvars.copy_context().run, self._store_now, batches)
        try:
            future.result()
        except BaseException:
            if not future.done() and self.staging is not None and self.staging._con is not None:
                self.staging.con.interrupt()
            wait([future])
            raise

    def _store_now(self, batches: dict[int, FileBatch]) -> None:
        staging = self.open()
        positions = list(batches)
        for held in [p for p in self._held if p not in batches]:  # failed files waiting for a staging copy
            if not _claims_edition(self._held[held]):
                positions.append(held)
                batches[held] = self._held.pop(held)
        stored = staging.load_batches([batches[p] for p in positions], self.load, datetime.now(), self.on_reject)
        for position, batch in zip(positions, stored, strict=True):
            self._stored[position] = batch.slim()
            batches[position].release()  # the object offered: the flow holds it until the next file is read
        give_back()  # what storing them freed goes back to the system (warehouse/memory.py)

    def discard(self) -> None:
        """Remove the staging copy, used or only made ahead (a quiet night's, or a failed night's)."""
        self._writer.shutdown(wait=True)
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared.exception() is None:  # made ahead and never used
            prepared.result().discard()
        if self.staging is not None:
            self.staging.discard()


def _claims_edition(batch: FileBatch) -> bool:
    return batch.status != "failed" and "ref_series_edition" in batch.tables

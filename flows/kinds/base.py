"""What every file kind shares: the unit's shape, and the failed batch a kind returns for a file it cannot load."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flows.extract import shown
from schemas.batch import FileBatch
from schemas.sources import kind_name
from transforms.failures import file_failure

if TYPE_CHECKING:
    from flows.process import FileTask
    from transforms.reference import Reference

MAX_MESSAGE = 500  # characters in a failed file's message: one line, never a 20,000-character sheet list
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
log = logging.getLogger("dcf.read")


@dataclass(frozen=True)
class Kind:
    """One file kind as a unit: how a file of it becomes a batch, where its rows go, and whether ``dcf replay``
    can re-normalise its held rows from their stored cells.

    ``process(task, spec, reference, started)`` reads, checks and standardises one settled file and returns its
    :class:`FileBatch` (a failed one for a file it cannot load; it may raise for a bug, which the caller turns into
    a failed batch). ``standardise(cells, ctx, reference)`` is the pure standardiser replay calls (None: the kind's
    files are read again whole when a mapping changes, because the reference tables are part of their version).
    """

    name: str
    process: Callable[[FileTask, Any, Reference, float], FileBatch]
    rows_table: str | None = None  # the table FileBatch.rows go to (None: the kind fills FileBatch.tables)
    standardise: Callable | None = None
    description: str = ""


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """A message as one line of at most ``limit`` characters, safe to log and store (names that are not UTF-8
    shown with backslash escapes, control characters and line breaks as spaces)."""
    text = " ".join(_CONTROL.sub(" ", shown(message)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failed(task: FileTask, rule: str, message: str, started: float) -> FileBatch:
    """The batch of a file that could not be loaded: one file-level failure under ``rule``."""
    message = one_line(message)
    return batch_of(task, started, status="failed", message=message, failures=file_failure(rule, message))


def as_failed(batch: FileBatch, rule: str, message: str) -> FileBatch:
    """A processed batch turned into a failed one after the fact (refused by the database, an edition claimed
    twice): none of its rows is stored, one file-level failure under ``rule`` says why."""
    from dataclasses import replace

    message = one_line(message)
    return replace(
        batch,
        status="failed",
        message=message,
        rows=None,
        quarantined=None,
        warned=None,
        skipped=None,
        rows_read=0,
        tables={},
        failures=file_failure(rule, message),
    )


def unexpected(task: FileTask, exc: Exception, started: float) -> FileBatch:
    """The last guard: any error while one file is processed fails that file alone; the traceback is for
    developers (debug log), the steward gets one line."""
    log.debug("%s: unexpected error while processing", shown(task.file_key), exc_info=True)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return failed(
        task,
        "file_unreadable",
        f"{shown(task.path)}: could not be processed ({type(exc).__name__}: {first}); the file was not loaded",
        started,
    )


def is_panic(exc: BaseException) -> bool:
    """A Rust panic inside an extension (calamine through fastexcel): pyo3 raises ``pyo3_runtime.PanicException``,
    a ``BaseException``. The panic has unwound on the Rust side, so the process may go on."""
    return type(exc).__name__ == "PanicException" and type(exc).__module__ == "pyo3_runtime"


def panicked(task: FileTask, exc: BaseException, started: float) -> FileBatch:
    """A reader's panic on one file fails that file alone, in words a steward can act on."""
    log.debug("%s: a reader panicked", shown(task.file_key), exc_info=True)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return failed(
        task,
        "file_unreadable",
        f"{shown(task.path)}: not a readable workbook: its reader stopped on malformed content ({first}); ask the "
        "agency to send it again, saved from Excel",
        started,
    )


def batch_of(task: FileTask, started: float, **fields: Any) -> FileBatch:
    """A batch carrying the task's identity (file, version, agency, kind, path) and ``fields`` (loaded unless they
    say otherwise)."""
    fields.setdefault("status", "loaded")
    return FileBatch(
        file_key=shown(task.file_key),
        file_hash=task.file_hash,
        config_hash=task.config_hash,
        agency_code=task.source.agency,
        kind=kind_name(task.spec),
        path=shown(str(task.path)),
        size_bytes=task.size_bytes,
        modified_at=task.modified_at,
        seconds=time.perf_counter() - started,
        **fields,
    )

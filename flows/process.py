"""One file, start to finish, short of the warehouse: read -> raw contract -> normalise -> canonical contract.

Plain functions (no Prefect) so tests call them directly and any task runner can run them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from flows.discover import IGNORED_PREFIXES, find_files, refused_entries, scan_inbox  # noqa: F401 (re-exported)
from flows.extract import file_sha256, open_regular, shown
from flows.kinds import KINDS
from flows.kinds.base import MAX_MESSAGE, failed, one_line, unexpected  # noqa: F401 (one_line, MAX_MESSAGE re-exported)
from flows.limits import Limits
from flows.retry import FileStillChanging, RetryPolicy, retry_io, unreadable_message, wait_until_settled
from schemas.batch import FileBatch
from schemas.rules import RULES
from schemas.sources import AnySpec, SourceConfig, kind_name
from transforms.reference import Reference


@dataclass(frozen=True)
class FileTask:
    """A file found in the inbox, hashed, with the config that claims it (spec is None: no pattern matched)."""

    path: Path
    file_key: str
    file_hash: str
    config_hash: str
    size_bytes: int
    modified_at: datetime | None  # None: discovery could not stat it (read_error says why)
    source: SourceConfig
    spec: AnySpec | None
    seen: tuple[int, float] | None = (
        None  # (size, mtime) when discovery hashed it: a later change means "still copying"
    )
    read_error: str | None = None  # discovery could not read it even after retries


def describe(path: Path) -> tuple[str, int, datetime]:
    return describe_seen(path)[:3]


def describe_seen(path: Path) -> tuple[str, int, datetime, tuple[int, float]]:
    """Hash, size, mtime and the (size, mtime) pair a later look compares with (stat taken before hashing, so a
    file that grows while it is hashed shows up as changed). A file over ``DCF_MAX_FILE_BYTES`` is not read to
    hash it (an 8 GiB file would hold up the night): its version is a digest of its size and mtime, and
    :func:`process_file` refuses it."""
    st = path.stat()
    mtime = datetime.fromtimestamp(st.st_mtime, tz=UTC).replace(tzinfo=None)
    if st.st_size > Limits.from_env().max_file_bytes:
        digest = hashlib.sha256(f"not hashed: {st.st_size} bytes, mtime {st.st_mtime_ns}".encode()).hexdigest()
    else:
        digest = file_sha256(path)
    return digest, st.st_size, mtime, (st.st_size, st.st_mtime)


_log = logging.getLogger("dcf.read")


def settle(task: FileTask, policy: RetryPolicy | None = None, log=_log.warning) -> FileTask:
    """The task once its file is quiet and readable: waits (with backoff) while the file is still being written or
    a share/lock error may pass, re-hashing a file that changed since discovery. Raises FileStillChanging/OSError."""
    policy = policy or RetryPolicy.from_env()
    if task.seen is not None:
        changed, settled = wait_until_settled(task.path, task.seen, policy, log)
        if changed:
            digest, size, mtime, seen = retry_io(lambda: describe_seen(task.path), task.path.name, policy, log)
            task = replace(task, file_hash=digest, size_bytes=size, modified_at=mtime, seen=seen)
    retry_io(lambda: _probe(task.path), task.path.name, policy, log)
    return task


def _probe(path: Path) -> None:
    with open_regular(path) as fh:  # a FIFO put in the file's place is refused, never waited on
        fh.read(1)


def process_file(task: FileTask, reference: Reference, log=_log.warning) -> FileBatch:
    """Never raises for a data problem: an unreadable file comes back as a failed batch with a one-line message,
    and so does any other error while this one file is processed (``Exception``, not ``BaseException``)."""
    started = time.perf_counter()
    try:
        return _process_file(task, reference, log, started)
    except Exception as exc:  # noqa: BLE001 - one file never stops the night
        return unexpected(task, exc, started)


def _process_file(task: FileTask, reference: Reference, log, started: float) -> FileBatch:
    if task.read_error:
        return failed(task, "file_unreadable", task.read_error, started)
    policy = RetryPolicy.from_env()
    try:
        task = settle(task, policy, log)
    except FileStillChanging as exc:
        return failed(task, "file_unreadable", str(exc), started)
    except FileNotFoundError:
        return failed(task, "file_unreadable", f"{shown(task.path)}: file disappeared before it could be read", started)
    except OSError as exc:
        return failed(task, "file_unreadable", unreadable_message(task.path, exc, policy), started)
    if task.spec is None:
        patterns = ", ".join(f"'{s.pattern}'" for s in task.source.files)
        return failed(
            task,
            "no_source_config",
            f"{shown(task.path)}: matches none of {task.source.agency}'s file patterns ({patterns}); "
            "rename it or add a pattern to its source YAML",
            started,
        )
    kind = KINDS[kind_name(task.spec) or ""]
    return kind.process(task, task.spec, reference, started)


def rule_title(rule: str) -> str:
    return RULES[rule].title if rule in RULES else rule

"""One file, start to finish, short of the warehouse: read -> raw contract -> normalise -> canonical contract.

Plain functions (no Prefect) so tests call them directly and any task runner can run them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from flows.discover import IGNORED_PREFIXES, find_files, refused_entries, scan_inbox  # noqa: F401 (re-exported)
from flows.extract import file_sha256, open_regular, shown
from flows.kinds import KINDS
from flows.kinds.base import MAX_MESSAGE, failed, is_panic, one_line, panicked, unexpected  # noqa: F401 (one_line, MAX_MESSAGE re-exported)
from flows.limits import Limits
from flows.retry import FileStillChanging, RetryPolicy, retry_io, unreadable_message, wait_until_settled
from schemas.batch import FileBatch
from schemas.rules import RULES
from schemas.sources import AnySpec, SourceConfig, kind_name
from transforms.reference import Reference
from warehouse.memory import give_back


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
    #: where a remote drop's mirror fetched it from (flows/remote.py ``origins``, looked up once per folder at
    #: discovery): the path the file audit records; None for a file dropped by hand or read from the raw archive
    origin: str | None = None
    #: the same bytes under the same config as a load that failed (tried again every night, flows/nightly_discover.py):
    #: such a file alone gives a night nothing new unless it now fails differently or loads (warehouse/quiet.py)
    retried: bool = False


def describe(path: Path) -> tuple[str, int, datetime]:
    return describe_seen(path)[:3]


class HashCache:
    """The sha256 of each file as last hashed, with the file's stat at that moment, so that an unchanged file is
    not read again (git's index does the same). A recorded hash is reused only when the file's size, mtime, ctime,
    inode, device and mode are all as recorded AND its mtime and ctime were at least :attr:`RACY_NS` older than the
    moment it was hashed: a file written in the same clock tick as it was hashed (or on a share whose clock runs a
    little behind) could change again without its times moving, so it is hashed again until its times are safely
    in the past ("racily clean" in git). Any write sets ctime to the current time, even a tool that puts the old
    mtime back, so a changed file never matches. ``reuse=False`` (``--force``) hashes everything and records it."""

    #: a stat this much older than the hash may be trusted (coarse timestamps: 2 s on FAT/SMB; some clock skew)
    RACY_NS = 3_000_000_000

    def __init__(self, entries: dict[str, list] | None = None, reuse: bool = True):
        self.entries: dict[str, list] = dict(entries or {})
        self.reuse = reuse
        self.used: dict[str, list] = {}  # the entries of the files looked at this time (what is saved)
        self.hashed = 0  # files read to hash them (the others were known)

    @staticmethod
    def _stat(st: os.stat_result) -> list[int]:
        return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, st.st_mode]

    def known(self, path: Path, st: os.stat_result) -> str | None:
        """The recorded hash of ``path`` if ``st`` says it cannot have changed since."""
        entry = self.entries.get(str(path)) if self.reuse else None
        if not (isinstance(entry, list) and len(entry) == 8 and all(type(v) is int for v in entry[:7])):
            return None  # none, or not written by this code
        *recorded, hashed_at, digest = entry
        if not isinstance(digest, str):
            return None
        if recorded != self._stat(st) or max(st.st_mtime_ns, st.st_ctime_ns) > hashed_at - self.RACY_NS:
            return None
        self.used[str(path)] = entry
        return str(digest)

    def record(self, path: Path, st: os.stat_result, digest: str, hashed_at: int) -> None:
        """``digest`` is the hash of ``path`` read after ``st`` was taken, itself taken after ``hashed_at``."""
        self.hashed += 1
        self.used[str(path)] = [*self._stat(st), hashed_at, digest]


def modified_at(st: os.stat_result) -> datetime:
    """A file's mtime as recorded (naive UTC)."""
    return datetime.fromtimestamp(st.st_mtime, tz=UTC).replace(tzinfo=None)


def describe_seen(path: Path) -> tuple[str, int, datetime, tuple[int, float]]:
    """Hash, size, mtime and the (size, mtime) pair a later look compares with (stat taken before hashing, so a
    file that grows while it is hashed shows up as changed). A file over ``DCF_MAX_FILE_BYTES`` is not read to
    hash it (an 8 GiB file would hold up the night): its version is a digest of its size and mtime, and
    :func:`process_file` refuses it."""
    st = path.stat()
    if st.st_size > Limits.from_env().max_file_bytes:
        digest = hashlib.sha256(f"not hashed: {st.st_size} bytes, mtime {st.st_mtime_ns}".encode()).hexdigest()
    else:
        digest = file_sha256(path)
    return digest, st.st_size, modified_at(st), (st.st_size, st.st_mtime)


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
    and so does any other error while this one file is processed (``Exception``), and a reader's panic (Rust code
    such as calamine stopping on malformed content: pyo3 raises it as a ``BaseException``, which would otherwise
    end the whole night with a traceback). Interrupts and exits are raised."""
    started = time.perf_counter()
    try:
        return _process_file(task, reference, log, started)
    except Exception as exc:  # noqa: BLE001 - one file never stops the night
        return unexpected(task, exc, started)
    except BaseException as exc:
        if not is_panic(exc):  # an interrupt, an exit: never this file's
            raise
        return panicked(task, exc, started)
    finally:
        give_back()  # the file's transient frames are freed: their pages go back (warehouse/memory.py)


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

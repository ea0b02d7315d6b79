"""Transient file-system trouble, retried with backoff inside a run: a file locked by the agency's Excel on a share,
a share that blips, a file still being copied into the inbox. Errors that will not pass by waiting (no such file,
not a workbook) are not retried; what still fails after the last try is recorded as a failed file, never a crash.

Configuration: DCF_READ_ATTEMPTS (tries in all, default 4) and DCF_READ_BACKOFF (first wait in seconds, default
0.5; doubled each time, at most 8 s), so by default a file gets 0.5 + 1 + 2 = 3.5 s to come right.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: errors a share or a lock produces and that may pass: permission denied while another program holds the file
#: (SMB sharing violations arrive as EACCES), busy, try again, timed out, stale NFS handle, I/O error, network down
TRANSIENT_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EAGAIN,
        errno.EBUSY,
        errno.ETIMEDOUT,
        errno.ESTALE,
        errno.EIO,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.ENETRESET,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.ENOLCK,
        errno.EDEADLK,
    }
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (TimeoutError, ConnectionError, BlockingIOError, InterruptedError)):
        return True
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        try:
            attempts = max(1, int(os.environ.get("DCF_READ_ATTEMPTS", cls.attempts)))
            base = max(0.0, float(os.environ.get("DCF_READ_BACKOFF", cls.base_delay)))
        except ValueError:
            return cls()
        return cls(attempts=attempts, base_delay=base)

    def delays(self) -> list[float]:
        """The waits between tries: base, 2 x base, 4 x base ... capped at max_delay."""
        return [min(self.base_delay * 2**i, self.max_delay) for i in range(self.attempts - 1)]

    @property
    def total_wait(self) -> float:
        return sum(self.delays())


def retry_io(
    fn: Callable[[], T],
    what: str,
    policy: RetryPolicy,
    log: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()``, tried again after each delay of ``policy`` while it raises a transient OSError; the last error,
    or any other error, propagates."""
    delays = policy.delays()
    for attempt in range(len(delays) + 1):
        try:
            return fn()
        except OSError as exc:
            if attempt == len(delays) or not is_transient(exc):
                raise
            log(
                f"{what}: {describe_error(exc)}; retrying in {delays[attempt]:.1f} s (try {attempt + 2} of {policy.attempts})"
            )
            sleep(delays[attempt])
    raise AssertionError("unreachable")


def describe_error(exc: BaseException) -> str:
    """An OS error in one line without the server path (the file is named by the caller)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def unreadable_message(path: Path, exc: BaseException, policy: RetryPolicy) -> str:
    """The steward's sentence for a file that could not be read even after every retry."""
    return (
        f"{path.name}: cannot be read ({describe_error(exc)}), {policy.attempts} tries over "
        f"{policy.total_wait:.1f} s; it will be tried again on the next run"
    )


class FileStillChanging(Exception):
    """The file kept changing (size or time) through every wait: it is still being written."""


def wait_until_settled(
    path: Path,
    seen: tuple[int, float],
    policy: RetryPolicy,
    log: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, tuple[int, float]]:
    """Compare the file's (size, mtime) with what discovery ``seen``. Unchanged: (False, seen). Changed: wait
    until two looks in a row agree and return (True, settled); :class:`FileStillChanging` if it never settles."""
    now = _look(path, policy, log, sleep)
    if now == seen:
        return False, seen
    for delay in policy.delays():
        log(f"{path.name}: changed since it was found (still being copied?); waiting {delay:.1f} s for it to settle")
        sleep(delay)
        again = _look(path, policy, log, sleep)
        if again == now:
            return True, now
        now = again
    raise FileStillChanging(
        f"{path.name}: still changing after {policy.total_wait:.1f} s of waiting; it will be read on "
        "the next run, once it is complete"
    )


def _look(path: Path, policy: RetryPolicy, log, sleep) -> tuple[int, float]:
    st = retry_io(lambda: path.stat(), path.name, policy, log, sleep)
    return st.st_size, st.st_mtime

"""Retries with backoff for transient file trouble: which errors are retried, the waits, and when it gives up."""

from __future__ import annotations

import errno
import os

import pytest

from flows.retry import FileStillChanging, RetryPolicy, is_transient, retry_io, wait_until_settled


class Flaky:
    """Raises the given errors in turn, then returns 'ok'."""

    def __init__(self, *errors: OSError):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_policy_delays_double_and_cap():
    assert RetryPolicy(attempts=4, base_delay=0.5).delays() == [0.5, 1.0, 2.0]
    assert RetryPolicy(attempts=6, base_delay=3, max_delay=8).delays() == [3, 6, 8, 8, 8]
    assert RetryPolicy(attempts=1).delays() == [] and RetryPolicy(attempts=4, base_delay=0.5).total_wait == 3.5


def test_policy_from_environment(monkeypatch):
    monkeypatch.setenv("DCF_READ_ATTEMPTS", "2")
    monkeypatch.setenv("DCF_READ_BACKOFF", "0.25")
    assert RetryPolicy.from_env() == RetryPolicy(attempts=2, base_delay=0.25)
    monkeypatch.setenv("DCF_READ_ATTEMPTS", "many")
    assert RetryPolicy.from_env() == RetryPolicy()


@pytest.mark.parametrize(
    "exc, transient",
    [
        (PermissionError(errno.EACCES, "Permission denied"), True),  # a share's sharing violation / Excel's lock
        (OSError(errno.EBUSY, "Device or resource busy"), True),
        (OSError(errno.ESTALE, "Stale file handle"), True),
        (TimeoutError("timed out"), True),
        (ConnectionResetError(errno.ECONNRESET, "reset"), True),
        (FileNotFoundError(errno.ENOENT, "No such file"), False),
        (IsADirectoryError(errno.EISDIR, "Is a directory"), False),
    ],
)
def test_which_errors_are_transient(exc, transient):
    assert is_transient(exc) is transient


def test_transient_errors_are_retried_with_backoff_then_succeed():
    fn, waits, logs = Flaky(PermissionError(errno.EACCES, "Permission denied"), OSError(errno.EBUSY, "busy")), [], []
    assert retry_io(fn, "MOD/x.xlsx", RetryPolicy(attempts=4, base_delay=0.5), logs.append, waits.append) == "ok"
    assert fn.calls == 3 and waits == [0.5, 1.0]
    assert logs[0] == "MOD/x.xlsx: PermissionError: Permission denied; retrying in 0.5 s (try 2 of 4)"


def test_gives_up_after_the_last_try_with_the_last_error():
    fn, waits = Flaky(*[OSError(errno.EIO, "I/O error")] * 5), []
    with pytest.raises(OSError, match="I/O error"):
        retry_io(fn, "x", RetryPolicy(attempts=3, base_delay=1), sleep=waits.append)
    assert fn.calls == 3 and waits == [1, 2]


def test_permanent_errors_are_not_retried():
    fn, waits = Flaky(FileNotFoundError(errno.ENOENT, "No such file")), []
    with pytest.raises(FileNotFoundError):
        retry_io(fn, "x", RetryPolicy(), sleep=waits.append)
    assert fn.calls == 1 and waits == []


def test_a_file_that_changed_since_discovery_is_waited_for_until_it_settles(tmp_path):
    path = tmp_path / "MOD_budget.xlsx"
    path.write_bytes(b"part")
    seen = (path.stat().st_size, path.stat().st_mtime)
    assert wait_until_settled(path, seen, RetryPolicy(), sleep=lambda s: None) == (False, seen)

    growth = iter([b"-more", b"-rest", None, None])  # still being copied for two looks, then quiet

    def sleep(_):
        chunk = next(growth)
        if chunk:
            with path.open("ab") as fh:
                fh.write(chunk)
            os.utime(path, (seen[1] + len(chunk), seen[1] + path.stat().st_size))

    path.write_bytes(b"part-1")  # changed once already since discovery
    changed, settled = wait_until_settled(path, seen, RetryPolicy(attempts=6, base_delay=0.1), sleep=sleep)
    assert changed and settled[0] == len(b"part-1-more-rest")


def test_a_file_that_never_settles_is_reported(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"a")
    seen = (path.stat().st_size, path.stat().st_mtime)

    def sleep(_):
        with path.open("ab") as fh:
            fh.write(b"b")

    path.write_bytes(b"ab")
    with pytest.raises(FileStillChanging, match="still changing after 0.3 s"):
        wait_until_settled(path, seen, RetryPolicy(attempts=3, base_delay=0.1), sleep=sleep)

"""SIGTERM as an exit that unwinds (shared by the flow's embedded server and the CLI's long commands; this layer
imports neither Prefect nor the flows, so any command may use it)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_TERMINATED = 143  # 128 + SIGTERM


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """SIGTERM (a scheduler's stop, ``timeout``, ``kill``) raises SystemExit(143) in the main thread instead of
    ending the process at once (Python's default, which skips every ``finally``), so ``with`` blocks unwind and exit
    handlers run: the embedded Prefect server is stopped, a stopped export removes the workbook it was writing and
    openpyxl's temporary files. Prefect swaps in its own handler while a flow runs and, after marking the run
    crashed, re-delivers the signal to this one. Outside the main thread: nothing to install."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

"""One machine, scheduled for real: a local Prefect server (started here unless PREFECT_API_URL points at one)
plus ``flow.serve`` for the nightly schedule. Prefect's temporary server runs no scheduler, so this is what makes
the 02:00 run happen without any other infrastructure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "Asia/Riyadh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(api_url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the Prefect server at {api_url} did not become healthy within {timeout:g} s")


@contextmanager
def local_server(port: int | None = None, timeout: float = 60.0, env: dict | None = None) -> Iterator[str]:
    """Start ``prefect server start`` on 127.0.0.1 and yield its API URL; stop it (SIGINT, then SIGKILL) on exit.
    ``env`` (e.g. another PREFECT_HOME) is the server's environment. On Linux the kernel also kills the server when
    this thread ends, even by kill -9 (PR_SET_PDEATHSIG, as for dcf run's server): call it from the thread that
    uses the server."""
    from flows.prefect_local import deathsig_preexec

    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
        preexec_fn=deathsig_preexec(),  # prctl only: nothing else runs between fork and exec
    )
    try:
        wait_healthy(api_url, timeout)
        yield api_url
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGINT, wait; then SIGKILL the whole process group (Prefect's processes do not always end on SIGTERM)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=grace)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def serve_nightly(cron: str = DEFAULT_CRON, timezone: str = DEFAULT_TIMEZONE, parameters: dict | None = None) -> None:
    """Register the nightly schedule with the Prefect API in PREFECT_API_URL and run its flow runs until
    interrupted (Ctrl-C)."""
    from prefect.schedules import Cron

    from flows.nightly import nightly_ingestion

    nightly_ingestion.serve(
        name="nightly",
        schedules=[Cron(cron, timezone=timezone)],
        parameters=parameters or {},
        tags=["ingestion", "nightly"],
        pause_on_shutdown=False,
    )

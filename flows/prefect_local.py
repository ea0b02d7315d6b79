"""Prefect's local API server for one ``dcf`` command: started here, as a child of this process, and stopped with it.

With no Prefect API configured, Prefect starts a temporary server by itself (``SubprocessASGIServer``) the first time
a client needs one. That server has two problems for a command-line tool:

- it must answer within ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` (20 s by default), while its first start
  on a machine (a new PREFECT_HOME) migrates its SQLite database, which alone takes 14-20 s on 2 cores: on a fresh or
  busy machine the first run failed with "Timed out while attempting to connect to ephemeral Prefect API server";
- it is an ordinary child process: when ``dcf`` is killed (kill -9, an OOM kill) it stays up (~230 MB) until someone
  notices.

:func:`local_prefect` starts the same server the same way (``python -m uvicorn ... prefect.server.api.server:create_app``
with the same environment), waits for it with a generous limit while telling the user why, points Prefect at it, and
stops it on the way out. On Linux the server also gets ``PR_SET_PDEATHSIG = SIGKILL``: the kernel kills it when the
thread that started it ends, so not even ``kill -9`` of ``dcf`` leaves it behind.

Only the standard library is imported at module level (no pandas, no Prefect): Prefect is imported when a server is
actually needed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from warehouse.signals import sigterm_exits

#: seconds to wait for the server to answer; env DCF_PREFECT_START_TIMEOUT
DEFAULT_START_TIMEOUT = 600.0
#: how often (seconds) the user hears that the server is still starting
PROGRESS_EVERY = 30.0
#: uvicorn's exit code when its port is taken (a race with another process after we picked it): retried on a new port
_UVICORN_PORT_IN_USE = 3
_PR_SET_PDEATHSIG = 1

Notify = Callable[[str], None]


class LocalPrefectError(RuntimeError):
    """Prefect's local server could not be started; the message is one plain sentence with the next step."""


def start_timeout() -> float:
    """DCF_PREFECT_START_TIMEOUT in seconds (default 600); a value that is not a positive number is refused."""
    raw = os.environ.get("DCF_PREFECT_START_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_START_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise LocalPrefectError(f"DCF_PREFECT_START_TIMEOUT must be a number of seconds above 0, not {raw!r}")
    return value


def api_configured() -> bool:
    """True when Prefect already has an API to talk to (PREFECT_API_URL from the environment or the profile)."""
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deathsig_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks the kernel to SIGKILL the child when its parent (the creating thread) ends.

    Linux only; elsewhere None (no death signal: a clean exit still stops the server, kill -9 may orphan it).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec: keep it tiny
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect: no signal will come
            os._exit(1)

    return preexec


def _server_command(port: int) -> list[str]:
    """What ``SubprocessASGIServer._run_uvicorn_command`` runs (prefect/server/api/server.py, Prefect 3.9)."""
    import prefect

    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(prefect.__module_path__.parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def _server_env() -> dict[str, str]:
    """The environment ``SubprocessASGIServer`` gives its server: ours, no UI, marked ephemeral and final, plus every
    Prefect setting set in this process (profile, temporary_settings)."""
    from prefect.settings import get_current_settings

    return {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        **get_current_settings().to_environment_variables(exclude_unset=True),
    }


def _database_missing() -> bool:
    """True when the server's SQLite database does not exist yet (its first start will create and migrate it)."""
    try:
        from prefect.settings import get_current_settings

        url = get_current_settings().server.database.connection_url
        text = url.get_secret_value() if url is not None and hasattr(url, "get_secret_value") else str(url or "")
        if not text.startswith("sqlite"):
            return False
        path = text.split(":///", 1)[-1]
        return not path or path == ":memory:" or not Path(path).exists()
    except Exception:  # noqa: BLE001 - only decides which message the user sees
        return False


def _healthy(api_url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes through a proxy
    try:
        with opener.open(f"{api_url}/health", timeout=5) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


class LocalServer:
    """One Prefect API server process, a child of this process. ``start`` returns at once; ``wait_ready`` waits."""

    def __init__(self, notify: Notify | None = None):
        self.notify = notify or (lambda message: None)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.first_start = False  # no database yet: this start creates and migrates it
        self._log: IO[bytes] | None = None
        self._port_retries = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> LocalServer:
        """Spawn the server. PR_SET_PDEATHSIG fires when the creating *thread* ends: start it from the thread that
        waits for it and uses it (the main thread, in dcf)."""
        if self._log is None:
            self.first_start = _database_missing()  # before the server can create the file
            self._log = tempfile.TemporaryFile(prefix="dcf-prefect-server-")  # noqa: SIM115 - closed by stop(); no name: nothing left if we are killed
        self.port = _free_port()
        self.proc = subprocess.Popen(
            _server_command(self.port),
            env=_server_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=deathsig_preexec(),
            # its own session: Ctrl-C in a terminal reaches dcf only, which then stops the server after the flow
            # has recorded how it ended (the death signal still covers dcf being killed outright)
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float) -> None:
        self.notify(
            "starting Prefect's local server"
            + (
                " (the first start on a machine prepares its database; this can take a minute)"
                if self.first_start
                else ""
            )
        )
        started = time.monotonic()
        next_note = started + PROGRESS_EVERY
        while True:
            assert self.proc is not None
            code = self.proc.poll()
            if code == _UVICORN_PORT_IN_USE and self._port_retries < 10:
                self._port_retries += 1
                self.start()  # someone took the port between our pick and uvicorn's bind (as Prefect does)
                continue
            if code is not None:
                raise LocalPrefectError(
                    f"Prefect's local server stopped with exit code {code} before it was ready: its output is in "
                    f"{self._save_log()} (or set PREFECT_API_URL to use a running Prefect server)"
                )
            if _healthy(self.api_url):
                return
            now = time.monotonic()
            if now - started >= timeout:
                raise LocalPrefectError(
                    f"Prefect's local server did not answer within {timeout:g} s (the machine may be very busy): "
                    f"run again with DCF_PREFECT_START_TIMEOUT set higher, or set PREFECT_API_URL to a running "
                    f"Prefect server (its output is in {self._save_log()})"
                )
            if now >= next_note:
                self.notify(f"still starting Prefect's local server ({now - started:.0f} s)")
                next_note = now + PROGRESS_EVERY
            time.sleep(0.25)

    def _save_log(self) -> Path | None:
        """The server's output so far, copied to a named file the user can read (only when starting failed)."""
        if self._log is None:
            return None
        fd, offset = self._log.fileno(), 0  # pread: the server shares this file's offset, leave it alone
        with tempfile.NamedTemporaryFile(prefix="dcf-prefect-server-", suffix=".log", delete=False) as kept:
            while chunk := os.pread(fd, 1 << 16, offset):
                kept.write(chunk)
                offset += len(chunk)
        return Path(kept.name)

    def stop(self, grace: float = 10.0) -> None:
        """terminate, wait up to ``grace`` s, then kill. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.terminate()
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None


def _drain_prefect_workers(timeout: float = 10.0) -> None:
    """Send Prefect's queued logs and events before the server goes away (as prefect_test_harness does), so its
    exit handlers do not report failures to a server that is gone."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker
    except Exception:  # noqa: BLE001
        return
    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout, at_exit=False)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


@contextmanager
def local_prefect(
    notify: Notify | None = None, timeout: float | None = None, handle_sigterm: bool = True
) -> Iterator[str | None]:
    """Make sure Prefect has an API for the duration of the block; yield its URL (None when one was configured).

    - PREFECT_API_URL configured (environment or profile): nothing is started, nothing changes.
    - Otherwise: start Prefect's local server as a child of this process (call this from the main thread), wait for
      ``/api/health`` up to ``timeout`` s (default DCF_PREFECT_START_TIMEOUT or 600), reporting progress through
      ``notify``; then set PREFECT_API_URL (os.environ, for child processes such as Dask workers, and Prefect's
      settings, for this process and all its threads) and switch flow-run heartbeats off (nothing watches them on a
      server that lives as long as the run; each costs up to 1 s per run in Prefect 3.9). On the way out, even on
      KeyboardInterrupt or SIGTERM (``handle_sigterm``), queued logs and events are sent and the server is stopped.

    Raises :class:`LocalPrefectError` (one sentence) when the server cannot be started.
    """
    with ExitStack() as stack:
        if handle_sigterm:
            stack.enter_context(sigterm_exits())
        if api_configured():
            yield None
            return
        limit = start_timeout() if timeout is None else timeout
        server = LocalServer(notify)
        try:
            server.start()
            server.wait_ready(limit)
            stack.enter_context(_pointed_at(server.api_url))
        except BaseException:
            server.stop()
            raise
        stack.callback(_quiet_after_server)
        stack.callback(server.stop)
        stack.callback(_drain_prefect_workers)  # callbacks run last-in first-out: drain, stop, then quiet
        yield server.api_url


def _quiet_after_server() -> None:
    """Once the server is gone, nothing can be sent to it: a task thread still finishing after SIGTERM (the
    interpreter waits for the pool's threads) would have Prefect log "Error emitting event" with a traceback, and
    its log handlers "--- Logging error ---", on the user's terminal. Both are switched off."""
    logging.raiseExceptions = False
    for name in ("prefect.events.utilities", "prefect.events.worker"):
        logging.getLogger(name).disabled = True


@contextmanager
def _pointed_at(api_url: str) -> Iterator[None]:
    import prefect.context
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_UI_URL, temporary_settings

    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api_url
    # heartbeats off; no UI URL: this server serves no UI and ends with the run, so Prefect's "View at <url>" log line
    # would be a dead link (with its own temporary server Prefect printed none either)
    updates = {PREFECT_API_URL: api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_UI_URL: ""}
    try:
        with temporary_settings(updates):
            # threads that never entered this context (Prefect's log and event workers) read the process-global
            # settings: point those at the server too, as prefect_test_harness does
            swap = getattr(prefect.context, "_temporary_global_settings_context", None)
            with swap(prefect.context.get_settings_context()) if swap else _nothing():
                yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


@contextmanager
def _nothing() -> Iterator[None]:
    yield

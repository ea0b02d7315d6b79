"""Prefect's local server as a child of ``dcf`` (flows/prefect_local.py): the first run on a fresh, busy machine
succeeds, and however ``dcf`` ends (exit, SIGTERM, Ctrl-C, kill -9) no server is left behind.

Every wait is a poll with a generous deadline: these tests must pass on a loaded machine, and they assert no timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DCF = [sys.executable, "-m", "dcf.cli"]
RUN_TIMEOUT = 900  # a dcf run on the sample inbox takes ~15-100 s here depending on load; this only bounds a hang


def _env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # no API, no profile from outside
    return {**env, "PREFECT_HOME": str(home), "COLUMNS": "200", **extra}


def _is_server(proc: psutil.Process) -> bool:
    try:
        cmd = " ".join(proc.cmdline())
        return "uvicorn" in cmd and "prefect.server.api.server" in cmd and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def servers_for(home: Path) -> list[psutil.Process]:
    """Live Prefect API server processes started for this PREFECT_HOME (ours or Prefect's own), anywhere."""
    found = []
    for proc in psutil.process_iter():
        if not _is_server(proc):
            continue
        try:
            if proc.environ().get("PREFECT_HOME") == str(home):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_until(predicate, timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def no_server_left(home: Path, timeout: float = 30.0) -> None:
    wait_until(lambda: not servers_for(home), timeout, f"every Prefect server of {home} to end")


def unreconciled(warehouse: Path) -> int:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        total, bad = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT reconciles) FROM file_reconciliation"
        ).fetchone()
    assert total > 0
    return bad


@pytest.fixture
def busy_cores():
    """Both cores (all of them) kept busy by spinning processes for the duration of the test."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for proc in spinners:
            proc.kill()
        for proc in spinners:
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def warm_home(tmp_path_factory) -> tuple[Path, dict]:
    """A PREFECT_HOME whose database exists (one server start migrated it), and what that start saw: the API URL and
    heartbeat setting inside the block (also from a new thread), the environment and children after it."""
    home = tmp_path_factory.mktemp("prefect-warm")
    script = textwrap.dedent("""
        import json, os, sys, threading
        import psutil
        from flows.prefect_local import local_prefect
        seen = {"before": os.environ.get("PREFECT_API_URL")}
        with local_prefect() as url:
            from prefect.settings import PREFECT_API_URL, get_current_settings
            seen["url"] = url
            seen["settings_url"] = get_current_settings().api.url
            seen["heartbeat"] = get_current_settings().flows.heartbeat_frequency
            seen["env_url"] = os.environ.get("PREFECT_API_URL")
            box = {}
            t = threading.Thread(target=lambda: box.update(url=PREFECT_API_URL.value()))
            t.start(); t.join()
            seen["thread_url"] = box["url"]
            seen["children_inside"] = len(psutil.Process().children(recursive=True))
        seen["env_after"] = os.environ.get("PREFECT_API_URL")
        seen["children_after"] = len(psutil.Process().children(recursive=True))
        seen["pandas"] = "pandas" in sys.modules
        print(json.dumps(seen))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=RUN_TIMEOUT, env=_env(home), cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return home, json.loads(done.stdout.strip().splitlines()[-1])


def test_local_server_is_used_for_everything_then_stopped(warm_home):
    """Inside the block Prefect (this thread, other threads, child processes) talks to our server with heartbeats
    off; after it the environment is as before and the server is gone. Importing the module pulls in no pandas."""
    home, seen = warm_home
    assert seen["before"] is None and seen["url"].startswith("http://127.0.0.1:") and seen["url"].endswith("/api")
    assert seen["settings_url"] == seen["env_url"] == seen["thread_url"] == seen["url"]
    assert seen["heartbeat"] is None
    assert seen["children_inside"] == 1  # the server, and nothing else (no second, Prefect-started server)
    assert seen["env_after"] is None and seen["children_after"] == 0
    assert seen["pandas"] is False
    assert (home / "prefect.db").exists()
    no_server_left(home)


def test_first_run_on_a_fresh_busy_machine_succeeds(inbox_copy, tmp_path, busy_cores):
    """A new PREFECT_HOME (its database is created and migrated on this start) while every core is busy. Prefect's
    own start-up limit is set to 1 s: through the old path (Prefect's temporary server) this run would fail with
    'Timed out while attempting to connect to ephemeral Prefect API server'; dcf's own server waits as long as it
    takes (DCF_PREFECT_START_TIMEOUT, 600 s)."""
    inbox, _ = inbox_copy
    home, wh = tmp_path / "fresh-prefect-home", tmp_path / "out" / "warehouse.duckdb"
    assert not home.exists()
    result = subprocess.run(
        [*DCF, "run", "--inbox", str(inbox), "--warehouse", str(wh)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=ROOT,
        env=_env(home, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1"),
    )
    assert result.returncode in (0, 4), result.stderr[-3000:]
    assert "first start on a machine prepares its database" in result.stderr
    assert "Starting temporary server" not in result.stdout + result.stderr  # Prefect never started its own
    assert "Traceback" not in result.stdout + result.stderr
    assert "View at http" not in result.stdout + result.stderr  # no link to a UI that is not served and is gone
    assert unreconciled(wh) == 0
    no_server_left(home)


def test_server_that_cannot_start_in_time_is_one_sentence_and_leaves_nothing(inbox_copy, tmp_path):
    inbox, _ = inbox_copy
    home, wh = tmp_path / "prefect-home", tmp_path / "warehouse.duckdb"
    result = subprocess.run(
        [*DCF, "run", "--inbox", str(inbox), "--warehouse", str(wh)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=ROOT,
        env=_env(home, DCF_PREFECT_START_TIMEOUT="0.1"),
    )
    assert result.returncode == 1
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr and not wh.exists()
    error = " ".join(result.stderr.split("error:", 1)[1].split())  # one sentence (rich may wrap it over lines)
    assert "did not answer within 0.1 s" in error and "DCF_PREFECT_START_TIMEOUT" in error, error
    no_server_left(home)
    kept = Path(error.split("its output is in ", 1)[1].split(")")[0])
    assert kept.name.startswith("dcf-prefect-server-") and kept.exists()  # kept for the user to read
    kept.unlink()


@pytest.mark.parametrize(
    "sig, moment",
    [
        (signal.SIGKILL, "server starting"),  # dcf killed while it waits for the server
        (signal.SIGKILL, "flow running"),
        (signal.SIGTERM, "flow running"),
        (signal.SIGINT, "flow running"),  # Ctrl-C: sent to dcf's process group, as a terminal does
    ],
    ids=["kill-9-while-server-starts", "kill-9-during-flow", "sigterm-during-flow", "ctrl-c-during-flow"],
)
def test_no_server_outlives_dcf(sig, moment, warm_home, sample_inbox, tmp_path):
    home, _ = warm_home
    inbox, _ = sample_inbox  # read only: the run is killed or fails before it could matter
    log = tmp_path / "dcf.log"
    with open(log, "w") as out:
        dcf = subprocess.Popen(
            # --verbose: Prefect's own "Beginning flow run" line tells when the flow is running
            [*DCF, "run", "--verbose", "--inbox", str(inbox), "--warehouse", str(tmp_path / "w.duckdb")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(home),
            cwd=ROOT,
            start_new_session=True,
        )
    try:

        def our_server():
            try:
                return next((p for p in psutil.Process(dcf.pid).children(recursive=True) if _is_server(p)), None)
            except psutil.NoSuchProcess:
                return None

        server = wait_until(our_server, RUN_TIMEOUT, "dcf to start Prefect's server")
        if moment == "flow running":
            wait_until(
                lambda: "Beginning flow run" in log.read_text() or dcf.poll() is not None,
                RUN_TIMEOUT,
                "the flow run to begin",
            )
        if sig == signal.SIGINT:
            os.killpg(dcf.pid, sig)
        else:
            os.kill(dcf.pid, sig)
        code = dcf.wait(timeout=300)
        # a run that happened to finish before the signal arrived exits 0 or 4
        assert code in {signal.SIGKILL: (-9,), signal.SIGTERM: (143, 0, 4), signal.SIGINT: (130, 0, 4)}[sig], code
        wait_until(lambda: not _is_server(server), 30, "dcf's server to end")
        no_server_left(home)
        assert "Traceback" not in log.read_text()
        if code == 130:  # Ctrl-C says what happened in one line (Click alone would print 'Aborted!' and exit 1)
            assert "interrupted (Ctrl-C); the published warehouse was not changed" in log.read_text()
    finally:
        if dcf.poll() is None:
            dcf.kill()
            dcf.wait(timeout=30)
        for proc in servers_for(home):  # never leave one behind, even when an assertion failed
            proc.kill()

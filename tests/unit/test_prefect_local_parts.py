"""flows/prefect_local.py without a Prefect server: settings, the death signal, the configured-API path.
(The server itself is exercised in tests/system/test_prefect_local.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flows import prefect_local

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_module_pulls_in_neither_pandas_nor_prefect():
    code = "import sys, flows.prefect_local; print(sorted(m for m in ('pandas', 'prefect') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_start_timeout_from_the_environment(monkeypatch):
    monkeypatch.delenv("DCF_PREFECT_START_TIMEOUT", raising=False)
    assert prefect_local.start_timeout() == 600
    monkeypatch.setenv("DCF_PREFECT_START_TIMEOUT", "90.5")
    assert prefect_local.start_timeout() == 90.5
    for bad in ("soon", "0", "-3"):
        monkeypatch.setenv("DCF_PREFECT_START_TIMEOUT", bad)
        with pytest.raises(prefect_local.LocalPrefectError, match="DCF_PREFECT_START_TIMEOUT"):
            prefect_local.start_timeout()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_child_started_with_the_death_signal_dies_with_its_parent():
    """The mechanism alone: a parent starts `sleep` the way the server is started, then is killed with SIGKILL."""
    parent_code = textwrap.dedent("""
        import subprocess, sys, time
        from flows.prefect_local import deathsig_preexec
        child = subprocess.Popen(["sleep", "300"], preexec_fn=deathsig_preexec(), start_new_session=True)
        print(child.pid, flush=True)
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    child_pid = int(parent.stdout.readline())
    try:
        assert _alive(child_pid)
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child_pid)
    finally:
        if _alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running (a zombie awaiting its new parent's wait() counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_configured_api_is_used_as_it_is():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        with prefect_local.local_prefect(timeout=0.01) as url:
            assert url is None
            assert PREFECT_API_URL.value() == "http://127.0.0.1:9/api"

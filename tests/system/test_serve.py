"""dcf serve on one machine: a local Prefect server starts, the nightly schedule is registered with its cron and
timezone, scheduled runs exist, and Ctrl-C stops everything (bounded waits, SIGKILL fallback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from flows.serve import free_port, stop, wait_healthy

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def api(url: str, path: str, body: dict) -> list | dict:
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_dcf_serve_registers_the_schedule_and_stops_cleanly(tmp_path):
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    (tmp_path / "inbox").mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dcf.cli",
            "serve",
            "--port",
            str(port),
            "--cron",
            "0 2 * * *",
            "--timezone",
            "Asia/Riyadh",
            "--inbox",
            str(tmp_path / "inbox"),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        # the bounds below only stop a hang: on a machine whose cores are busy each step can take minutes
        wait_healthy(api_url, timeout=600)
        deployments: list = []
        deadline = time.time() + 300
        while time.time() < deadline and not deployments:
            deployments = api(api_url, "/deployments/filter", {})
            time.sleep(1)
        assert [d["name"] for d in deployments] == ["nightly"]
        schedule = deployments[0]["schedules"][0]["schedule"]
        assert schedule["cron"] == "0 2 * * *" and schedule["timezone"] == "Asia/Riyadh"
        runs: list = []
        deadline = time.time() + 300
        while time.time() < deadline and not runs:  # the server's scheduler creates the upcoming runs
            runs = api(api_url, "/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})
            time.sleep(2)
        assert runs, "the scheduler created no scheduled run"
        when = runs[0]["expected_start_time"]
        assert when.endswith(("23:00:00Z", "23:00:00+00:00")), when  # 02:00 in Riyadh (UTC+3)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            stop(proc, grace=1)
            pytest.fail("dcf serve did not stop on SIGINT within 300 s")
    output = proc.stdout.read()
    assert "Prefect server on http://127.0.0.1:" in output and "Traceback" not in output


def test_dcf_serve_that_cannot_start_its_server_in_time_says_so_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), "DCF_PREFECT_START_TIMEOUT": "0.1", "COLUMNS": "200"}
    (tmp_path / "inbox").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "dcf.cli", "serve", "--port", str(free_port()), "--inbox", str(tmp_path / "inbox")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "did not become healthy within 0.1 s" in errors[0], done.stderr
    assert "DCF_PREFECT_START_TIMEOUT" in errors[0]


def test_killing_dcf_serve_leaves_no_server(tmp_path):
    """kill -9 of dcf serve: the kernel ends its Prefect server too (PR_SET_PDEATHSIG), nothing keeps the port."""
    import psutil

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    (tmp_path / "inbox").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dcf.cli", "serve", "--port", str(port), "--inbox", str(tmp_path / "inbox")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api", timeout=600)
        servers = [p for p in psutil.Process(proc.pid).children(recursive=True) if "server" in " ".join(p.cmdline())]
        assert servers, "dcf serve started no server process"
        proc.kill()
        proc.wait(timeout=60)
        gone, alive = psutil.wait_procs(servers, timeout=60)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if proc.poll() is None:
            stop(proc, grace=1)

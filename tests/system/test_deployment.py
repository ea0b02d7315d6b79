"""The deployment as production runs it: a Prefect server on a free loopback port, the process work pool,
`prefect deploy --all` from prefect.yaml, a worker, a triggered nightly run that completes and fills the warehouse.
Everything is torn down with bounded waits (the worker needs SIGINT; SIGKILL is the fallback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from flows.serve import free_port, local_server, stop

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]


def api(url: str, path: str, body: dict | None = None, method: str = "POST"):
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body or {}).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read() or b"null")


def test_prefect_deploy_and_worker_run_the_nightly_deployment(sample_inbox, tmp_path):
    inbox, manifest = sample_inbox
    warehouse = tmp_path / "warehouse.duckdb"
    home = {
        **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    with local_server(free_port(), timeout=90, env=home) as api_url:  # a fresh server database for this test
        env = {
            **home,
            "PREFECT_API_URL": api_url,
            "DCF_PROJECT_DIR": str(ROOT),
            "DCF_INBOX": str(inbox),
            "DCF_WAREHOUSE": str(warehouse),
        }

        def run(*args):
            return subprocess.run([*PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)

        created = run("work-pool", "create", "dcf-process", "--type", "process")
        assert created.returncode == 0, created.stdout + created.stderr
        deployed = run("--no-prompt", "deploy", "--all")
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        deployments = {d["name"]: d for d in api(api_url, "/deployments/filter")}
        assert {"nightly", "replay", "report"} <= set(deployments)
        schedule = deployments["nightly"]["schedules"][0]["schedule"]
        assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "Asia/Riyadh")
        report = deployments["report"]["schedules"][0]["schedule"]  # the HTML report, after the nightly run
        assert (report["cron"], report["timezone"]) == ("30 2 * * *", "Asia/Riyadh")
        flow_run = api(api_url, f"/deployments/{deployments['nightly']['id']}/create_flow_run", {})
        worker = subprocess.Popen(
            [*PREFECT, "worker", "start", "--pool", "dcf-process", "--run-once"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            deadline, state = time.time() + 240, None
            while time.time() < deadline:
                state = api(api_url, f"/flow_runs/{flow_run['id']}", method="GET")["state"]["type"]
                if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                    break
                time.sleep(2)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGINT)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop(worker, grace=1)
        assert state == "COMPLETED", worker.stdout.read()[-4000:]
        scheduled = api(api_url, "/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})
        assert any(r["deployment_id"] == deployments["nightly"]["id"] for r in scheduled)  # the cron made runs
    with duckdb.connect(str(warehouse), read_only=True) as con:
        read = con.execute("SELECT sum(rows_read) FROM audit_source_file WHERE is_current").fetchone()[0]
    assert read == sum(f["data_rows"] for f in manifest["files"])

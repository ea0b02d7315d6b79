"""The deployment as production runs it, by the README's own commands ("A server and workers"), run as written on a
fresh Prefect profile with no terminal (only the port is changed, to a free one): a background Prefect server, the
process work pool, `prefect deploy --all` from prefect.yaml, a nightly run triggered from the command line, a worker
that runs it to completion and fills the warehouse. Everything is torn down with bounded waits (the worker needs
SIGINT; SIGKILL is the fallback; the server is stopped by the README's own last line)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from flows.serve import free_port, stop

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_recipe() -> list[str]:
    """The command lines of the README's "A server and workers" block, comments dropped."""
    section = README.split("- **A server and workers**", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block, "the README's server-and-workers block"
    lines = [ln.strip()[2:] for ln in block.group(1).splitlines() if ln.strip().startswith("$ ")]
    return [ln.split("  #", 1)[0].strip() for ln in lines]


def api(url: str, path: str, body: dict | None = None, method: str = "POST"):
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body or {}).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read() or b"null")


def test_the_readme_server_and_worker_commands_run_the_nightly_deployment(sample_inbox, tmp_path):
    inbox, manifest = sample_inbox
    warehouse = tmp_path / "warehouse.duckdb"
    port = free_port()
    recipe = [
        line.replace("4200", str(port)).replace("$PWD/.prefect", shlex.quote(str(tmp_path / "prefect")))
        for line in readme_recipe()
    ]
    *setup, worker_line, stop_line = recipe
    assert worker_line.startswith(".venv/bin/prefect worker start") and stop_line == ".venv/bin/prefect server stop"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},  # a fresh profile, no server known
        "DCF_INBOX": str(inbox),
        "DCF_WAREHOUSE": str(warehouse),
    }
    exports = setup[0]
    assert exports.startswith("export PREFECT_HOME=")

    def bash(script: str, timeout: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-euc", script],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    try:
        for line in setup[1:]:
            done = bash(f"{exports}\n{line}", timeout=900)
            assert done.returncode == 0, f"{line}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        api_url = f"http://127.0.0.1:{port}/api"
        deployments = {d["name"]: d for d in api(api_url, "/deployments/filter")}
        assert {"nightly", "replay", "report"} <= set(deployments)
        schedule = deployments["nightly"]["schedules"][0]["schedule"]
        assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "Asia/Riyadh")
        report = deployments["report"]["schedules"][0]["schedule"]  # the HTML report, after the nightly run
        assert (report["cron"], report["timezone"]) == ("30 2 * * *", "Asia/Riyadh")
        [flow_run] = [
            r
            for r in api(api_url, "/flow_runs/filter", {})
            if r["deployment_id"] == deployments["nightly"]["id"] and not r["auto_scheduled"]
        ]  # the one 'prefect deployment run' made
        worker = subprocess.Popen(
            ["bash", "-euc", f"{exports}\nexec {worker_line}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            deadline, state = time.time() + 600, None
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
        assert state == "COMPLETED", worker.stdout.read()[-4000:] if worker.stdout else state
        scheduled = api(api_url, "/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})
        assert any(r["deployment_id"] == deployments["nightly"]["id"] for r in scheduled)  # the cron made runs
    finally:
        stopped = bash(f"{exports}\n{stop_line}", timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    with duckdb.connect(str(warehouse), read_only=True) as con:
        read = con.execute("SELECT sum(rows_read) FROM audit_source_file WHERE is_current").fetchone()[0]
    assert read == sum(f["data_rows"] for f in manifest["files"])

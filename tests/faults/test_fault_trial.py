"""The fault trial, as a suite: kill -9 at every stage boundary, a full disk at the copy and at commit, a read-only
folder, simultaneous starts. After each fault: the published state equals the state before the run or after a
complete one, a rerun converges, nothing is stored twice, nothing is left behind (issue 11).

``dcf run`` runs as a real process against one Prefect server started for this module (a run then costs seconds,
not Prefect's per-process start-up)."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from flows.nightly_discover import HASHES_SUFFIX
from flows.serve import free_port, local_server
from tests.system.test_publish_safety import sha, state
from warehouse import publish
from warehouse.faults import STAGES
from warehouse.quiet import MEMO_SUFFIX
from warehouse.store import SCHEMA_VERSION

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    env = {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, "PREFECT_HOME": str(home)}
    with local_server(free_port(), timeout=600, env=env) as url:  # generous: a busy machine migrates slowly
        yield {"PREFECT_HOME": str(home), "PREFECT_API_URL": url}


def dcf(*args: str, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dcf.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **env},
        cwd=ROOT,
    )


def change(inbox: Path) -> None:
    """A corrected file arrives: one amount of MOD's programs file... and one budget file is replaced."""
    csv = inbox / "gami" / "GAMI_budget_2025.csv"
    lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
    csv.write_text("".join(lines[:-3]), encoding="utf-8")  # three lines fewer


@pytest.fixture(scope="module")
def template(sample_inbox, tmp_path_factory, prefect_api):
    """A warehouse after one clean run (state 'before'), and the state a complete run on the changed inbox gives
    ('after')."""
    inbox, _ = sample_inbox
    base = tmp_path_factory.mktemp("template")
    shutil.copytree(inbox, base / "inbox")
    env = {**prefect_api, "DCF_INBOX": str(base / "inbox"), "DCF_WAREHOUSE": str(base / "wh" / "warehouse.duckdb")}
    first = dcf("run", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    before = state(base / "wh" / "warehouse.duckdb")
    reference = tmp_path_factory.mktemp("after")
    world = copy_world(base, reference)
    change(world["inbox"])
    done = dcf("run", env=world["env"] | prefect_api)
    assert done.returncode == 0, done.stderr[-3000:]
    after = state(world["wh"])
    assert after != before
    return base, before, after


def copy_world(template: Path, dest: Path) -> dict:
    shutil.copytree(template / "inbox", dest / "inbox")
    shutil.copytree(template / "wh", dest / "wh", symlinks=True)
    wh = dest / "wh" / "warehouse.duckdb"
    return {"inbox": dest / "inbox", "wh": wh, "env": {"DCF_INBOX": str(dest / "inbox"), "DCF_WAREHOUSE": str(wh)}}


def leftovers(wh: Path) -> list[str]:
    """What a dead run may leave next to the warehouse (the caches kept on purpose beside it are not leftovers: the
    inbox's hashes, flows/nightly_discover.py, and the quiet-night memo, warehouse/quiet.py)."""
    found = [
        p.name
        for p in wh.parent.iterdir()
        if p.name.startswith(f".{wh.name}.") and not p.name.endswith((HASHES_SUFFIX, MEMO_SUFFIX))
    ]
    found += [p.name for p in publish.versions_dir(wh).iterdir() if not publish._VERSION.match(p.name)]
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_kill_at_each_stage_then_rerun(stage, template, prefect_api, tmp_path):
    base, before, after = template
    world = copy_world(base, tmp_path)
    change(world["inbox"])
    env = world["env"] | prefect_api
    killed = dcf("run", env=env | {"DCF_FAULT": stage})
    assert killed.returncode == -9, f"{stage}: not killed (exit {killed.returncode}): {killed.stderr[-2000:]}"
    now = state(world["wh"])
    assert now in (before, after), f"{stage}: the published state is neither before nor after the run"
    assert now["unreconciled"] == 0
    seqs = publish.version_seqs(world["wh"])
    assert publish.published_seq(world["wh"]) in seqs, f"{stage}: the published state is not among the kept versions"
    rerun = dcf("run", env=env)
    assert rerun.returncode == 0, f"{stage}: {rerun.stderr[-3000:]}"
    assert state(world["wh"]) == after, f"{stage}: the rerun did not converge"
    assert leftovers(world["wh"]) == [], f"{stage}: left behind"
    assert max(publish.version_seqs(world["wh"])) == publish.published_seq(world["wh"])
    assert all(
        publish.check_warehouse_file(publish.version_path(world["wh"], s), SCHEMA_VERSION) is None
        for s in publish.version_seqs(world["wh"])
    )


def _mount_tmpfs(where: Path, size_bytes: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here (needs root): {done.stderr.decode().strip()}")


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _used(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.mark.parametrize("where", ["copy", "commit"])
def test_a_full_disk_fails_the_run_plainly_and_harms_nothing(where, template, prefect_api, tmp_path):
    base, before, after = template
    size = (base / "wh" / "warehouse.duckdb").stat().st_size
    used = _used(base / "wh")
    # 'copy': no room for the staging copy; 'commit': room for the copy, none for what the load then writes
    room = used + (size // 2 if where == "copy" else size + 64 * 1024)
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, room)
    try:
        world = copy_world(base, mnt)
        shutil.rmtree(world["inbox"])
        shutil.copytree(base / "inbox", tmp_path / "inbox")
        world["env"]["DCF_INBOX"] = str(tmp_path / "inbox")
        change(tmp_path / "inbox")
        published = sha(world["wh"])
        env = world["env"] | prefect_api | {"DCF_ARCHIVE": str(tmp_path / "archive")}
        failed = dcf("run", env=env)
        assert failed.returncode == 1, failed.stdout[-2000:] + failed.stderr[-2000:]
        assert "not enough free space" in failed.stderr and str(world["wh"].parent) in failed.stderr
        assert "Traceback" not in failed.stderr and "no transaction is active" not in failed.stderr
        assert sha(world["wh"]) == published and state(world["wh"]) == before
        assert leftovers(world["wh"]) == [], "a failed staging copy must be discarded"
    finally:
        _umount(mnt)


def test_a_read_only_folder_is_one_plain_sentence(template, prefect_api, tmp_path):
    base, before, _ = template
    mnt = tmp_path / "ro"
    _mount_tmpfs(mnt, 200 * 1024 * 1024)
    try:
        world = copy_world(base, mnt)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        env = world["env"] | prefect_api | {"DCF_ARCHIVE": str(tmp_path / "archive")}
        failed = dcf("run", env=env)
        assert failed.returncode == 1, failed.stderr[-2000:]
        assert "read-only file system" in failed.stderr and "permissions" in failed.stderr
        assert "Traceback" not in failed.stderr
        assert state(world["wh"]) == before
        status = dcf("status", env=env)  # reading still works
        assert status.returncode == 0, status.stderr
    finally:
        _umount(mnt)


class _Hook(http.server.BaseHTTPRequestHandler):
    posts: list[bytes] = []

    def do_POST(self):
        _Hook.posts.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_simultaneous_starts_one_writes_the_others_exit_3_without_a_flow(template, prefect_api, tmp_path):
    base, before, after = template
    world = copy_world(base, tmp_path)
    change(world["inbox"])
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "COLUMNS": "200",
        **world["env"],
        **prefect_api,
        "DCF_WEBHOOK_URL": f"http://127.0.0.1:{server.server_address[1]}/hook",
    }
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "dcf.cli", "run"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=ROOT,
            )
            for _ in range(4)
        ]
        results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    finally:
        server.shutdown()
    codes = sorted(r[0] for r in results)
    # one wins; a loser either found it running (3) or, started after it finished, found nothing new (0)
    assert codes.count(3) >= 1 and all(c in (0, 3) for c in codes), [(c, e[-500:]) for c, _, e in results]
    for code, out, err in results:
        if code == 3:
            assert "another ingestion is running" in err
            assert "Flow run" not in out + err and "flow run" not in out + err, "a loser started a flow"
    assert _Hook.posts == [], "no failure was notified"
    assert state(world["wh"]) == after

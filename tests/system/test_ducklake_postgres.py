"""DuckLake on a real catalog: the sample warehouse published into a DuckLake whose catalog is a PostgreSQL server
started by this module (Debian's postgresql binaries, a throwaway cluster on a loopback port, stopped at the end) and
whose data is a local folder. Proves what docs/scaling.md promises: each publish is one snapshot, a reader during a
publish sees the previous snapshot whole, time travel returns an earlier publish, and a publish that fails (an
error, or the process killed) half-way through its tables leaves the lake at its last snapshot.

PostgreSQL refuses to run as root (as CI and the development machine run tests): the server runs as the ``postgres``
user in a directory of its own under the system temporary directory (pytest's are private to root). Without the
binaries, that user or a server that starts, the tests skip and say why."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

import warehouse.lake
from warehouse.lake import LAKE_TABLES, attach_lake, publish_to_lake

pytestmark = pytest.mark.slow

#: throwaway credentials of the throwaway cluster; the password reaches libpq through PGPASSWORD, as in production
USER, PASSWORD, DATABASE = "dcf", "throwaway-lake-test", "lake"

#: one row per table: row count and a checksum of every row; plus the facts' sum of US$
STATE_SQL = (
    "SELECT * FROM ("
    + " UNION ALL ".join(
        f"SELECT '{t}' AS part, count(*)::VARCHAR AS n, sum(hash(r)::HUGEINT)::VARCHAR AS checksum "
        f"FROM (SELECT * FROM lake.{t} {{at}}) AS r"
        for t in LAKE_TABLES
    )
    + " UNION ALL SELECT 'sum(amount_usd)', sum(amount_usd)::VARCHAR, NULL FROM lake.fact_funding_line {at}"
    + ") ORDER BY part"
)

READER = (
    "import json, sys, duckdb\n"
    "from warehouse.lake import attach_lake\n"
    "con = duckdb.connect()\n"
    "attach_lake(con, sys.argv[1], sys.argv[2])\n"
    "print(json.dumps(con.execute(sys.argv[3]).fetchall()))\n"
)

State = dict[str, tuple[str, str | None]]


def state_of(con: duckdb.DuckDBPyConnection, at: str = "") -> State:
    return {part: (n, checksum) for part, n, checksum in con.execute(STATE_SQL.format(at=at)).fetchall()}


def warehouse_state(path: Path) -> State:
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{path}' AS lake (READ_ONLY)")
        return state_of(con)


def snapshot_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')").fetchone()[0]


def _postgres_bin() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: [int(n) for n in p.parts[-3].split(".") if n.isdigit()],
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    pytest.skip("PostgreSQL server binaries (pg_ctl, initdb) not found: install Debian's postgresql")


def _as_server_user() -> tuple[list[str], tuple[int, int] | None]:
    """The command prefix that runs a program as an unprivileged user, and that user's (uid, gid) when it is not
    the current one."""
    if os.geteuid() != 0:
        return [], None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run the PostgreSQL server as")
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root and runuser (util-linux) is missing: cannot start PostgreSQL unprivileged")
    return [runuser, "-u", "postgres", "--"], (entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_catalog() -> Iterator[str]:
    """A PostgreSQL server of its own on a free loopback port with an empty database; yields the DuckLake catalog
    string (no password in it: PGPASSWORD is set while the module runs). The server is stopped and its directory
    removed at the end, whatever happened."""
    bin_dir = _postgres_bin()
    prefix, owner = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="dcf-lake-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    pwfile = root / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    sockets.mkdir()
    if owner is not None:
        for path in (root, sockets, pwfile):
            os.chown(path, *owner)

    def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, str(bin_dir / argv[0]), *argv[1:]],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop() -> None:
        stopped = run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
        if stopped.returncode != 0 and (data / "postmaster.pid").exists():
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop")
        if (data / "postmaster.pid").exists():  # still there: the server we started would not stop
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int((data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)

    try:
        done = run(
            "initdb",
            "-D",
            str(data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        if done.returncode != 0:
            pytest.skip(f"initdb failed, no PostgreSQL catalog to test against: {done.stderr.strip()[-500:]}")
        port = _free_port()
        options = f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sockets}"
        done = run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-800:] if log.exists() else done.stderr
            pytest.skip(f"the PostgreSQL server did not start: {tail.strip()}")
        done = run("createdb", "-h", str(sockets), "-p", str(port), "-U", USER, DATABASE)
        assert done.returncode == 0, done.stderr
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PGPASSWORD", PASSWORD)
            yield f"postgres:dbname={DATABASE} host=127.0.0.1 port={port} user={USER}"
    finally:
        stop()


@pytest.fixture(scope="module")
def warehouses(sample_warehouse, tmp_path_factory) -> tuple[Path, Path]:
    """The sample night's warehouse, and a revised copy (agency names changed, one agency's facts gone): the two
    publishes differ in the first table a publish replaces (dim_agency) and in the facts."""
    revised = tmp_path_factory.mktemp("revised") / "warehouse.duckdb"
    shutil.copy(sample_warehouse, revised)
    with duckdb.connect(str(revised)) as con:
        con.execute("UPDATE dim_agency SET name_en = name_en || ' (revised)'")
        con.execute("DELETE FROM fact_funding_line WHERE agency_code = (SELECT min(agency_code) FROM dim_agency)")
    return sample_warehouse, revised


class PausingFaultpoint:
    """Stands in for ``warehouse.lake.faultpoint``: the publishing thread stops at every fault point until the test
    has looked at the lake."""

    FINISHED = "finished"

    def __init__(self) -> None:
        self.reached: queue.Queue[str] = queue.Queue()
        self.resume: queue.Queue[None] = queue.Queue()

    def __call__(self, stage: str) -> None:
        self.reached.put(stage)
        self.resume.get(timeout=300)

    def publish_in_thread(self, publish: Callable[[], int], outcome: dict) -> threading.Thread:
        def target() -> None:
            try:
                outcome["snapshot"] = publish()
            except BaseException as e:  # noqa: BLE001 - handed to the test
                outcome["error"] = e
            finally:
                self.reached.put(self.FINISHED)

        thread = threading.Thread(target=target, name="publish-to-lake", daemon=True)
        thread.start()
        return thread


@pytest.fixture(scope="module")
def lake(postgres_catalog, warehouses, tmp_path_factory) -> dict:
    """Two publishes into the PostgreSQL-catalogued lake: the sample warehouse, then the revised one, the second
    paused after every table while another connection (and, at the first pause, another process) reads the lake."""
    first_wh, second_wh = warehouses
    data = str(tmp_path_factory.mktemp("lake-pg") / "data") + "/"
    catalog = postgres_catalog
    first = publish_to_lake(first_wh, catalog, data)

    reader = duckdb.connect()
    attach_lake(reader, catalog, data)
    pause = PausingFaultpoint()
    outcome: dict = {}
    seen_during: list[tuple[str, State]] = []
    seen_by_process: State | None = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(warehouse.lake, "faultpoint", pause)
        thread = pause.publish_in_thread(lambda: publish_to_lake(second_wh, catalog, data), outcome)
        while (stage := pause.reached.get(timeout=300)) != pause.FINISHED:
            try:
                seen_during.append((stage, state_of(reader)))
                if seen_by_process is None:
                    done = subprocess.run(
                        [sys.executable, "-c", READER, catalog, data, STATE_SQL.format(at="")],
                        capture_output=True,
                        text=True,
                        timeout=300,
                    )
                    assert done.returncode == 0, done.stderr
                    seen_by_process = {part: (n, checksum) for part, n, checksum in json.loads(done.stdout)}
            finally:
                pause.resume.put(None)
        thread.join(timeout=300)
    seen_after = state_of(reader)
    reader.close()
    if "error" in outcome:
        raise outcome["error"]
    return {
        "catalog": catalog,
        "data": data,
        "first": first,
        "second": outcome["snapshot"],
        "first_state": warehouse_state(first_wh),
        "second_state": warehouse_state(second_wh),
        "seen_during": seen_during,
        "seen_by_process": seen_by_process,
        "seen_after": seen_after,
    }


def test_each_publish_is_a_new_snapshot(lake):
    assert lake["second"] > lake["first"]
    assert list(Path(lake["data"]).rglob("*.parquet"))  # the data went to the local folder, the catalog to PostgreSQL


def test_reader_during_a_publish_sees_the_previous_snapshot_whole(lake):
    first_state, second_state = lake["first_state"], lake["second_state"]
    assert first_state != second_state
    assert [stage for stage, _ in lake["seen_during"]] == ["lake_table"] * len(LAKE_TABLES)  # paused after each
    for _, seen in lake["seen_during"]:
        assert seen == first_state
    assert lake["seen_by_process"] == first_state
    assert lake["seen_after"] == second_state


def test_time_travel_returns_the_earlier_publish(lake):
    with duckdb.connect() as con:
        attach_lake(con, lake["catalog"], lake["data"])
        assert state_of(con) == lake["second_state"]
        assert state_of(con, f"AT (VERSION => {lake['first']})") == lake["first_state"]
        assert state_of(con, f"AT (VERSION => {lake['second']})") == lake["second_state"]


@pytest.mark.parametrize("fault", ["enospc", "kill"])
def test_failed_publish_leaves_the_last_snapshot(lake, warehouses, monkeypatch, fault):
    """An error after the first table is replaced (raised in this process), or the publishing process killed there:
    the lake keeps its last snapshot, rows and sums."""
    catalog, data = lake["catalog"], lake["data"]
    with duckdb.connect() as con:
        attach_lake(con, catalog, data)
        before_id, before = snapshot_id(con), state_of(con)
    other = next(wh for wh in warehouses if warehouse_state(wh) != before)  # a publish that would change the lake
    if fault == "enospc":
        monkeypatch.setenv("DCF_FAULT", "lake_table:enospc")
        with pytest.raises(OSError, match="No space left on device"):
            publish_to_lake(other, catalog, data)
    else:
        code = "import sys; from pathlib import Path; from warehouse.lake import publish_to_lake; "
        code += "publish_to_lake(Path(sys.argv[1]), sys.argv[2], sys.argv[3])"
        done = subprocess.run(
            [sys.executable, "-c", code, str(other), catalog, data],
            env={**os.environ, "DCF_FAULT": "lake_table"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == -signal.SIGKILL, done.stderr
    with duckdb.connect() as con:
        attach_lake(con, catalog, data)
        assert snapshot_id(con) == before_id
        assert state_of(con) == before

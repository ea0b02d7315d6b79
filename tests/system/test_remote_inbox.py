"""A remote inbox for real: one agency (MOD) delivers to an SFTP drop on a real OpenSSH server started by the test
(its own host and client keys, loopback only), another (GAMI) to the local inbox. Real nights prove the remote
files go the way local ones do: loaded with counts that reconcile and lineage naming the sftp location, a second
night downloads and loads nothing, a corrected file replaces only its own rows, links and FIFOs on the server are
refused, and a drop that cannot be reached or refuses the credentials is that agency's failure (exit 4, one line
naming the location or the setting, no traceback, no secret) while the other agency loads."""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml

from flows.nightly import run_nightly
from flows.retry import RetryPolicy

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SSHD = Path("/usr/sbin/sshd")
KEY_ENV = "DCF_TEST_SFTP_KEY"
MOD_FILES = ("MOD_budget_FY2024.xlsx", "MOD_budget_FY2025.xlsx", "MOD_programs.csv")


@dataclass
class Sshd:
    port: int
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Keys:
    folder: Path
    client_key: Path
    host_public: str  # "ssh-ed25519 AAAA..."

    def known_hosts(self, port: int) -> Path:
        path = self.folder / f"known_hosts_{port}"
        path.write_text(f"[127.0.0.1]:{port} {self.host_public}\n")
        return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=60)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        pytest.skip(f"no OpenSSH server here ({SSHD} or ssh-keygen missing)")
    folder = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key", "stranger_key"):
        _keygen(folder / name)
    shutil.copyfile(folder / "client_key.pub", folder / "authorized_keys")
    host_public = " ".join((folder / "host_key.pub").read_text().split()[:2])
    return Keys(folder, folder / "client_key", host_public)


def start_sshd(keys: Keys, name: str) -> Sshd:
    """A real sshd on a free loopback port, SFTP only through internal-sftp, key logins for the keys' client key."""
    port = _free_port()
    config = keys.folder / f"sshd_config_{name}"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys.folder / 'host_key'}\n"
        f"AuthorizedKeysFile {keys.folder / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"PidFile {keys.folder / f'sshd_{name}.pid'}\nSubsystem sftp internal-sftp\n"
    )
    try:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder (missing in containers)
    except OSError as exc:
        pytest.skip(f"cannot create /run/sshd for sshd ({exc})")
    log = keys.folder / f"sshd_{name}.log"
    try:
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT)
    except OSError as exc:
        pytest.skip(f"sshd cannot start ({exc})")
    server = Sshd(port, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.skip(f"sshd exited at start: {log.read_text(errors='replace')[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    pytest.skip(f"sshd did not accept connections within 30 s: {log.read_text(errors='replace')[-500:]}")


@pytest.fixture
def sshd(keys):
    server = start_sshd(keys, "main")
    yield server
    server.stop()


def _setup(sample_inbox, tmp_path: Path, keys: Keys, port: int) -> tuple[Path, Path, Path, dict]:
    """(inbox with GAMI's files, sources with MOD delivering to the SFTP drop, the drop folder, MOD's manifest)."""
    inbox_src, manifest = sample_inbox
    inbox, sources, drop = tmp_path / "inbox", tmp_path / "sources", tmp_path / "drop" / "mod"
    shutil.copytree(inbox_src / "gami", inbox / "gami")
    drop.mkdir(parents=True)
    for name in MOD_FILES:
        shutil.copy2(inbox_src / "mod" / name, drop / name)
    sources.mkdir()
    shutil.copyfile(ROOT / "sources" / "gami.yaml", sources / "gami.yaml")
    mod = yaml.safe_load((ROOT / "sources" / "mod.yaml").read_text(encoding="utf-8"))
    mod["remote"] = {
        "url": f"sftp://{getpass.getuser()}@127.0.0.1:{port}{drop}/",
        "credentials": {"env": KEY_ENV},
        "known_hosts": str(keys.known_hosts(port)),
        "timeout_seconds": 10,
    }
    (sources / "mod.yaml").write_text(yaml.safe_dump(mod, allow_unicode=True), encoding="utf-8")
    rows = {f"MOD/{Path(f['path']).name}": f["data_rows"] for f in manifest["files"] if f["agency"] == "MOD"}
    return inbox, sources, drop, rows


def _night(inbox: Path, sources: Path, wh: Path):
    return run_nightly(inbox=str(inbox), warehouse=str(wh), sources=str(sources))


def _rows_by_file(wh: Path) -> dict[tuple[str, str], tuple]:
    """(table, file) -> (rows, the load that wrote them) for every table that holds a file's rows."""
    tables = ("fact_funding_line", "dim_program", "quarantine_row", "skipped_row")
    with duckdb.connect(str(wh), read_only=True) as con:
        return {
            (table, key): (n, load)
            for table in tables
            for key, n, load in con.execute(
                f"SELECT file_key, count(*), max(load_id) FROM {table} GROUP BY ALL"
            ).fetchall()
        }


def test_a_night_loads_the_sftp_drop_then_downloads_nothing_then_replaces_only_a_corrected_file(
    sample_inbox, tmp_path, keys, sshd, monkeypatch
):
    inbox, sources, drop, rows = _setup(sample_inbox, tmp_path, keys, sshd.port)
    os.symlink("/etc/passwd", drop / "MOD_programs_passwd.csv")  # on the server: a link leaving the drop
    os.mkfifo(drop / "MOD_programs_fifo.csv")  # and a FIFO (opening it would block the server's reader)
    monkeypatch.setenv(KEY_ENV, str(keys.client_key))
    wh = tmp_path / "wh.duckdb"
    url = f"sftp://{getpass.getuser()}@127.0.0.1:{sshd.port}{drop}/"

    first = _night(inbox, sources, wh)
    assert first.outcome == "success", first.files
    status = {f["file"]: f for f in first.files}
    for key, data_rows in rows.items():
        assert status[key]["status"] == "loaded" and status[key]["rows_read"] == data_rows, status[key]
    assert {k: f["status"] for k, f in status.items() if k.startswith("GAMI/")} == {
        "GAMI/GAMI_budget_2024.csv": "loaded",
        "GAMI/GAMI_budget_2025.csv": "loaded",
    }
    assert status["MOD/MOD_programs_passwd.csv"]["status"] == "refused"
    assert "leads outside the drop folder" in status["MOD/MOD_programs_passwd.csv"]["message"]
    assert status["MOD/MOD_programs_fifo.csv"]["message"] == "not a regular file (a FIFO); not read"
    with duckdb.connect(str(wh), read_only=True) as con:
        audit = {
            key: (path, digest)
            for key, path, digest in con.execute(
                "SELECT file_key, path, file_hash FROM audit_source_file WHERE is_current AND agency_code = 'MOD'"
            ).fetchall()
        }
        assert con.execute("SELECT bool_and(reconciles) FROM file_reconciliation").fetchone()[0]
        refused = dict(con.execute("SELECT entry, reason FROM audit_refused_entry").fetchall())
    assert audit == {  # lineage names the remote file; the version is the sha256 of the bytes on the server
        f"MOD/{name}": (url + name, hashlib.sha256((drop / name).read_bytes()).hexdigest()) for name in MOD_FILES
    }
    assert set(refused) == {"MOD/MOD_programs_passwd.csv", "MOD/MOD_programs_fifo.csv"}
    landed = inbox / "mod"
    assert sorted(p.name for p in landed.iterdir()) == [".dcf-remote.json", *MOD_FILES]  # nothing of /etc/passwd
    copies = {name: ((landed / name).stat().st_ino, (landed / name).stat().st_mtime_ns) for name in MOD_FILES}
    before = _rows_by_file(wh)

    second = _night(inbox, sources, wh)  # nothing new on the server: nothing downloaded, nothing loaded
    assert second.outcome == "nothing_new" and second.totals["files_processed"] == 0, second.files
    assert second.totals["files_unchanged"] == len(rows) + 2
    assert {name: ((landed / name).stat().st_ino, (landed / name).stat().st_mtime_ns) for name in MOD_FILES} == copies
    assert _rows_by_file(wh) == before

    programs = drop / "MOD_programs.csv"  # the agency corrects its programme list: one record fewer
    lines = programs.read_bytes().splitlines(keepends=True)
    programs.write_bytes(b"".join(lines[:-1]))
    os.utime(programs, (time.time() + 5, time.time() + 5))
    third = _night(inbox, sources, wh)
    assert third.outcome == "success" and third.totals["files_processed"] == 1, third.files
    [changed] = [f for f in third.files if f["status"] == "loaded"]
    assert changed["file"] == "MOD/MOD_programs.csv" and changed["rows_read"] == rows["MOD/MOD_programs.csv"] - 1
    after = _rows_by_file(wh)
    assert {k: v for k, v in after.items() if k[1] != "MOD/MOD_programs.csv"} == {
        k: v for k, v in before.items() if k[1] != "MOD/MOD_programs.csv"
    }
    assert after[("dim_program", "MOD/MOD_programs.csv")][1] != before[("dim_program", "MOD/MOD_programs.csv")][1]
    assert (landed / "MOD_programs.csv").read_bytes() == programs.read_bytes()
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT bool_and(reconciles) FROM file_reconciliation").fetchone()[0]


def test_a_drop_that_stops_answering_fails_its_agency_alone_with_exit_4(sample_inbox, tmp_path, keys, monkeypatch):
    server = start_sshd(keys, "stopping")
    try:
        inbox, sources, drop, rows = _setup(sample_inbox, tmp_path, keys, server.port)
        shutil.move(inbox / "gami", tmp_path / "gami-later")  # GAMI delivers on the second night
        wh = tmp_path / "wh.duckdb"
        monkeypatch.setenv(KEY_ENV, str(keys.client_key))
        assert _night(inbox, sources, wh).outcome == "success"
        before = _rows_by_file(wh)
    finally:
        server.stop()  # the server goes away: its port refuses connections
    shutil.move(tmp_path / "gami-later", inbox / "gami")
    monkeypatch.setenv("DCF_READ_ATTEMPTS", "2")
    monkeypatch.setenv("DCF_READ_BACKOFF", "0.2")

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "dcf.cli",
            "run",
            "--inbox",
            str(inbox),
            "--warehouse",
            str(wh),
            "--sources",
            str(sources),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        cwd=ROOT,
        timeout=600,
    )
    out = " ".join((run.stdout + run.stderr).split())  # a long message is wrapped to the console's width
    url = f"sftp://{getpass.getuser()}@127.0.0.1:{server.port}{drop}/"
    assert run.returncode == 4, out[-3000:]  # published, but one agency's drop could not be read
    assert f"failed MOD/{url}: remote drop {url}: not reachable (ConnectionRefusedError" in out, out[-3000:]
    assert "after 2 tries over 0.2 s; MOD's files were not fetched this night" in out
    assert "retrying in 0.2 s" in out
    assert "GAMI/GAMI_budget_2024.csv [csv]:" in out and "GAMI/GAMI_budget_2025.csv [csv]:" in out  # GAMI loaded
    assert "Traceback" not in out
    assert str(keys.client_key) not in out and keys.client_key.read_text().splitlines()[1] not in out
    after = _rows_by_file(wh)
    assert {k: v for k, v in after.items() if k[1].startswith("MOD/")} == before  # the copies fetched before stay
    assert {k[1] for k in after if k[1].startswith("GAMI/")} == {
        "GAMI/GAMI_budget_2024.csv",
        "GAMI/GAMI_budget_2025.csv",
    }
    with duckdb.connect(str(wh), read_only=True) as con:
        outcome, failed = con.execute(
            "SELECT outcome, files_failed FROM audit_load ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        reason = con.execute("SELECT reason FROM audit_refused_entry WHERE entry = ?", [f"MOD/{url}"]).fetchone()[0]
    assert (outcome, failed) == ("partial", 1) and reason.startswith(f"remote drop {url}: not reachable")

    quiet = _night(inbox, sources, wh)  # nothing else new: no publish, and still the drop's failure (exit 4)
    assert (quiet.outcome, quiet.exit_code, quiet.totals["files_failed"]) == ("partial", 4, 1), quiet.files
    assert _rows_by_file(wh) == after


def test_wrong_credentials_or_an_unknown_host_key_name_the_setting_to_fix(
    sample_inbox, tmp_path, keys, sshd, monkeypatch
):
    from flows import remote
    from schemas.sources import load_source

    _, sources, drop, _ = _setup(sample_inbox, tmp_path, keys, sshd.port)
    src = load_source(sources / "mod.yaml")
    url = f"sftp://{getpass.getuser()}@127.0.0.1:{sshd.port}{drop}/"
    folder, policy = tmp_path / "inbox" / "mod", RetryPolicy(attempts=2, base_delay=0.1)

    monkeypatch.setenv(KEY_ENV, str(keys.folder / "stranger_key"))  # a key the server does not know
    [refused] = remote.fetch(src, folder, policy)
    assert refused["message"] == (
        f"remote drop {url}: the server refused the credentials from the environment variable {KEY_ENV} "
        f"(authentication failed for user {getpass.getuser()}); fix that setting, or install its public key on the "
        f"server; MOD's files were not fetched this night (those fetched before stay as they were)"
    )
    monkeypatch.setenv(KEY_ENV, str(keys.client_key))
    unknown = src.model_copy(
        update={"remote": src.remote.model_copy(update={"known_hosts": str(tmp_path / "empty_known_hosts")})}
    )
    [untrusted] = remote.fetch(unknown, folder, policy)
    assert untrusted["message"].startswith(
        f"remote drop {url}: the host key of [127.0.0.1]:{sshd.port} is not in {tmp_path / 'empty_known_hosts'}: "
        f"add it (ssh-keyscan -p {sshd.port} 127.0.0.1 >> "
    )
    assert not folder.exists()  # nothing fetched, nothing written
    assert remote.fetch(src, folder, policy) == []  # the right key and host key: the drop is mirrored
    assert sorted(p.name for p in folder.iterdir()) == [".dcf-remote.json", *MOD_FILES]

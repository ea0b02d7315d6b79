"""The warehouse on a file system that clones (XFS with reflink, btrfs): the copies of warehouse/filecopy.py are
real reflink clones there, and every guarantee resting on the copies still holds (a private staging copy, the
published file apart from its kept versions, rollback). tests/unit/test_filecopy.py checks copy_file's contract with
the ioctl faked; this checks it against a real kernel and file system.

Where the test finds its file system: ``DCF_CLONE_DIR`` (a folder on one), else, as root with xfsprogs (``.ci/run``
installs it), a small XFS image of its own mounted on a loop device, unmounted afterwards. Elsewhere it skips and
says why."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from flows.nightly import run_nightly
from warehouse import filecopy, publish, store
from warehouse.store import SCHEMA_VERSION

pytestmark = pytest.mark.slow

IMAGE_BYTES = 512 << 20  # XFS's smallest file system is 300 MB; the image is sparse, so it costs what it holds


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def cloning_dir(tmp_path_factory):
    given = os.environ.get("DCF_CLONE_DIR")
    if given:
        if not filecopy.can_clone(given):
            pytest.skip(f"DCF_CLONE_DIR={given} cannot clone files")
        folder = Path(tempfile.mkdtemp(dir=given))
        yield folder
        shutil.rmtree(folder, ignore_errors=True)
        return
    mkfs = shutil.which("mkfs.xfs")
    if os.geteuid() != 0 or mkfs is None or shutil.which("mount") is None:
        pytest.skip("no file system that clones: set DCF_CLONE_DIR, or run as root with xfsprogs (mkfs.xfs)")
    base = tmp_path_factory.mktemp("xfs")
    image, mount_point = base / "fs.img", base / "mnt"
    mount_point.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(IMAGE_BYTES)
    made = _run(mkfs, "-q", "-m", "reflink=1", str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.xfs failed: {made.stderr.strip()[:200]}")
    mounted = _run("mount", "-o", "loop", str(image), str(mount_point))
    if mounted.returncode != 0:  # no loop device, or mounting is not allowed in this sandbox
        pytest.skip(f"could not mount an XFS image: {mounted.stderr.strip()[:200]}")
    try:
        yield mount_point
    finally:
        if _run("umount", str(mount_point)).returncode != 0:
            _run("umount", "-l", str(mount_point))


def _used_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_copy_file_clones_there_sharing_the_blocks_and_the_clone_is_independent(cloning_dir):
    source, target = cloning_dir / "w.duckdb", cloning_dir / "copy.duckdb"
    source.write_bytes(os.urandom(64 << 20))
    os.sync()
    used = _used_bytes(cloning_dir)
    assert filecopy.copy_file(source, target) == "clone"
    os.sync()
    assert _used_bytes(cloning_dir) - used < 8 << 20  # a 64 MiB byte copy would take 64 MiB more
    assert target.read_bytes() == source.read_bytes()
    with open(target, "r+b") as fh:  # copy on write: the clone changed, the source not
        fh.write(b"changed")
    assert source.read_bytes()[:7] != b"changed"
    assert filecopy.can_clone(cloning_dir) is True
    source.unlink()
    target.unlink()


def test_nights_on_a_cloning_file_system_clone_every_copy_and_keep_every_guarantee(
    cloning_dir, inbox_copy, monkeypatch
):
    ways: Counter[tuple[str, str]] = Counter()  # (module, "clone" or "copy")
    real = filecopy.copy_file

    def counting(module):  # the real copy, its way counted (store.py and publish.py import it by name)
        def counted(source, target):
            how = real(source, target)
            ways[module.__name__, how] += 1
            return how

        return counted

    monkeypatch.setattr(store, "copy_file", counting(store))
    monkeypatch.setattr(publish, "copy_file", counting(publish))
    inbox, _ = inbox_copy
    folder = cloning_dir / "night"
    folder.mkdir()
    wh = folder / "warehouse.duckdb"
    os.sync()
    used_before = _used_bytes(cloning_dir)

    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    with duckdb.connect(str(wh), read_only=True) as con:
        first = con.execute("SELECT count(*) FROM fact_funding_line").fetchone()[0]
        gami = con.execute("SELECT count(*) FROM fact_funding_line WHERE agency_code = 'GAMI'").fetchone()[0]
    assert first > 0 and gami > 0

    (inbox / "gami" / "GAMI_budget_2025.csv").unlink()  # withdrawn: a second night that publishes
    second = run_nightly(inbox=str(inbox), warehouse=str(wh))
    assert second.totals["files_withdrawn"] == 1
    seqs = publish.version_seqs(wh)
    assert len(seqs) == 2 and publish.published_seq(wh) == seqs[-1]
    # every warehouse copy of the two nights was a clone: the second night's staging copy, both publishes
    assert ways == {("warehouse.store", "clone"): 1, ("warehouse.publish", "clone"): 2}, ways
    # and the files share their blocks: the file system holds less than the files' own blocks summed (the published
    # file and the version it was published from are one set of blocks, not two)
    os.sync()
    files = {st.st_ino: st.st_blocks * 512 for st in (p.stat() for p in folder.rglob("*") if p.is_file())}
    shared = sum(files.values()) - (_used_bytes(cloning_dir) - used_before)
    assert shared > wh.stat().st_size // 2, (shared, wh.stat().st_size, files)

    # the kept first version is untouched by the second night's writes to its clones
    with duckdb.connect(str(publish.version_path(wh, seqs[0])), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM fact_funding_line").fetchone()[0] == first

    # rollback to the first version (a clone again) brings back its rows, as a new version
    new_seq = publish.rollback(wh, seqs[0], SCHEMA_VERSION, lambda _message: None)
    assert new_seq == seqs[-1] + 1 and publish.published_seq(wh) == new_seq
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM fact_funding_line").fetchone()[0] == first
    # the kept version copied back, then published: two more clones
    assert ways == {("warehouse.store", "clone"): 1, ("warehouse.publish", "clone"): 4}, ways

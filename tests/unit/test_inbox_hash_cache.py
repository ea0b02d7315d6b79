"""Discovery does not read an unchanged inbox file again (issue 15 point 4): the hash recorded when it was last read
is reused only while the file's stat is exactly as recorded and its times were safely older than that reading
(git's "racily clean" rule); anything else, and ``--force``, reads it again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from flows import nightly_discover, process
from flows.nightly_discover import _describe, hashes_path, load_hashes, save_hashes
from flows.process import HashCache


@pytest.fixture
def reads(monkeypatch) -> list[Path]:
    """Every file discovery reads to hash it."""
    seen: list[Path] = []
    real = process.file_sha256
    monkeypatch.setattr(process, "file_sha256", lambda p, *a: seen.append(p) or real(p, *a))
    return seen


def _settled(path: Path, seconds: float = 60.0) -> None:
    """Make the file's mtime and ctime lie ``seconds`` in the past, as for a file dropped before tonight (ctime
    cannot be set: the clock the recorded hash is compared with is moved instead, see _older)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def _older(hashes: HashCache, path: Path, seconds: float = 60.0) -> None:
    """As if the recorded hash had been taken ``seconds`` after the file last changed (its ctime)."""
    entry = hashes.used[str(path)]
    entry[6] = entry[2] + int(seconds * 1e9)


def _night(hashes: HashCache) -> HashCache:
    """The next night's cache: what this one recorded."""
    return HashCache(hashes.used)


def _hashed_once(tmp_path: Path) -> tuple[Path, HashCache]:
    """A settled file hashed on a first night, its record old enough to be trusted on the next."""
    path = tmp_path / "MOD_budget.xlsx"
    path.write_bytes(b"version one")
    _settled(path)
    hashes = HashCache()
    _describe(path, hashes)
    _older(hashes, path)
    return path, hashes


def test_an_unchanged_file_is_not_read_again(tmp_path, reads):
    path = tmp_path / "MOD_budget.xlsx"
    path.write_bytes(b"version one")
    _settled(path)
    first = HashCache()
    found = _describe(path, first)
    assert found[0] == hashlib.sha256(b"version one").hexdigest() and reads == [path]
    _older(first, path)
    second = _night(first)
    assert _describe(path, second) == found  # the same answer (hash, size, mtime, what settle compares) ...
    assert reads == [path]  # ... without reading the file
    assert second.hashed == 0 and second.used == first.used


def test_a_touched_or_rewritten_file_is_read_again(tmp_path, reads):
    path, hashes = _hashed_once(tmp_path)
    os.utime(path)  # touched: same bytes, new mtime
    again = _night(hashes)
    assert _describe(path, again)[0] == hashlib.sha256(b"version one").hexdigest()
    assert len(reads) == 2
    path.write_bytes(b"version two")  # same size, other bytes; mtime and ctime move
    _settled(path)
    _older(again, path)
    third = _night(again)
    assert _describe(path, third)[0] == hashlib.sha256(b"version two").hexdigest()
    assert len(reads) == 3


def test_an_edit_with_the_same_size_and_times_in_the_racy_window_is_read_again(tmp_path, reads):
    """A file written in the same clock tick as it was hashed, then written again within that tick: its stat
    (size, mtime, ctime, inode) cannot tell. The hash was taken less than RACY_NS after the file's times, so it is
    not trusted and the edit is seen."""
    path = tmp_path / "MOD_budget.xlsx"
    path.write_bytes(b"version one")
    hashes = HashCache()
    _describe(path, hashes)  # just written: its times are not safely older than this reading
    entry = hashes.used[str(path)]
    path.write_bytes(b"version two")  # same size
    st = path.stat()
    entry[1], entry[2] = st.st_mtime_ns, st.st_ctime_ns  # a coarse clock: the stat did not move at all
    entry[6] = max(st.st_mtime_ns, st.st_ctime_ns) + HashCache.RACY_NS // 2  # hashed in the same window
    assert _describe(path, _night(hashes))[0] == hashlib.sha256(b"version two").hexdigest()
    assert len(reads) == 2
    # the same stat recorded long after the file's last change would be trusted: that is what the window guards
    entry[6] = max(st.st_mtime_ns, st.st_ctime_ns) + 2 * HashCache.RACY_NS
    entry[7] = "the recorded hash"
    assert _describe(path, _night(hashes))[0] == "the recorded hash"
    assert len(reads) == 2


def test_a_file_changing_while_it_is_hashed_is_not_recorded(tmp_path, monkeypatch):
    path = tmp_path / "MOD_budget.xlsx"
    path.write_bytes(b"first third")
    real = nightly_discover.describe_seen

    def copied_on(p):
        real(p)  # hashed as it was ...
        with p.open("ab") as fh:  # ... while the copy went on
            fh.write(b" and the rest")
        return real(p)

    monkeypatch.setattr(nightly_discover, "describe_seen", copied_on)
    hashes = HashCache()
    _describe(path, hashes)
    assert hashes.used == {}


def test_force_reads_every_file_and_records_it(tmp_path, reads):
    path, hashes = _hashed_once(tmp_path)
    forced = HashCache(hashes.used, reuse=False)
    _describe(path, forced)
    assert len(reads) == 2 and forced.hashed == 1 and str(path) in forced.used


def test_the_hashes_are_kept_beside_the_warehouse(tmp_path, reads):
    wh = tmp_path / "warehouse.duckdb"
    path = tmp_path / "inbox" / "MOD_budget.xlsx"
    path.parent.mkdir()
    path.write_bytes(b"version one")
    _settled(path)
    hashes = load_hashes(wh)
    assert hashes.entries == {}  # none yet
    _describe(path, hashes)
    _older(hashes, path)
    save_hashes(wh, hashes)
    assert hashes_path(wh).name == ".warehouse.duckdb.inbox-hashes.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".warehouse.duckdb.inbox-hashes.json", "inbox"]
    again = load_hashes(wh)
    assert _describe(path, again)[0] == hashlib.sha256(b"version one").hexdigest() and len(reads) == 1
    path.unlink()
    save_hashes(wh, HashCache(again.used))  # a night that finds no file keeps no entry
    assert load_hashes(wh).entries == {}


@pytest.mark.parametrize("content", ["not json", '{"format": 99, "files": {}}', '{"format": 1, "files": []}', "[]"])
def test_a_damaged_record_means_hashing_everything(tmp_path, content, reads):
    wh = tmp_path / "warehouse.duckdb"
    hashes_path(wh).write_text(content)
    path = tmp_path / "f.xlsx"
    path.write_bytes(b"x")
    _describe(path, load_hashes(wh))
    assert reads == [path]


def test_a_recorded_entry_of_the_wrong_shape_is_not_trusted(tmp_path, reads):
    path, hashes = _hashed_once(tmp_path)
    for broken in (hashes.used[str(path)][:7], [*hashes.used[str(path)][:6], "late", "d"], "text"):
        _describe(path, HashCache({str(path): broken}))
    assert len(reads) == 4

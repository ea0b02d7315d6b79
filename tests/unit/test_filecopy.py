"""Copies of warehouse files (warehouse/filecopy.py): a clone where the file system shares blocks, else a byte copy;
either way an independent file with the source's bytes, and a real failure is never hidden behind the fallback."""

from __future__ import annotations

import errno
import shutil

import pytest

from warehouse import filecopy


def test_the_target_holds_the_source_bytes_and_is_independent_of_it(tmp_path):
    source, target = tmp_path / "w.duckdb", tmp_path / "copy.duckdb"
    source.write_bytes(bytes(range(256)) * 4096)
    target.write_bytes(b"x" * (2 << 20))  # a longer file already there is replaced whole, not overwritten in part
    how = filecopy.copy_file(source, target)
    assert how in ("clone", "copy")
    assert target.read_bytes() == source.read_bytes()
    with open(target, "r+b") as fh:  # a write into the copy (DuckDB writing the staging copy) ...
        fh.write(b"changed")
    assert source.read_bytes()[:7] == bytes(range(7))  # ... leaves the source as it was


@pytest.mark.parametrize("code", [errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY])
def test_a_file_system_that_cannot_clone_gets_a_byte_copy(tmp_path, monkeypatch, code):
    def refuse(*_args):
        raise OSError(code, "cannot clone here")

    monkeypatch.setattr(filecopy.fcntl, "ioctl", refuse)
    source, target = tmp_path / "a", tmp_path / "b"
    source.write_bytes(b"warehouse bytes")
    assert filecopy.copy_file(source, target) == "copy"
    assert target.read_bytes() == b"warehouse bytes"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EPERM])
def test_a_real_failure_while_cloning_is_raised_not_copied_around(tmp_path, monkeypatch, code):
    def fail(*_args):
        raise OSError(code, "real trouble")

    monkeypatch.setattr(filecopy.fcntl, "ioctl", fail)
    source = tmp_path / "a"
    source.write_bytes(b"warehouse bytes")
    with pytest.raises(OSError) as caught:
        filecopy.copy_file(source, tmp_path / "b")
    assert caught.value.errno == code


def test_can_clone_says_what_the_folder_does_and_leaves_nothing_behind(tmp_path, monkeypatch):
    assert isinstance(filecopy.can_clone(tmp_path), bool)  # this machine's own answer (ext4 here: False)
    monkeypatch.setattr(filecopy.fcntl, "ioctl", lambda *_args: 0)  # a file system that clones
    assert filecopy.can_clone(tmp_path) is True

    def refuse(*_args):
        raise OSError(errno.EOPNOTSUPP, "cannot clone here")

    monkeypatch.setattr(filecopy.fcntl, "ioctl", refuse)
    assert filecopy.can_clone(tmp_path) is False
    assert list(tmp_path.iterdir()) == []
    assert filecopy.can_clone(tmp_path / "missing") is False


def test_a_target_that_is_the_source_itself_is_refused_and_the_source_kept(tmp_path):
    source = tmp_path / "version-000001.duckdb"
    source.write_bytes(b"a kept version")
    link = tmp_path / "published.duckdb"
    link.hardlink_to(source)  # versions are hard links of the file that was published
    for target in (source, link):
        with pytest.raises(shutil.SameFileError):
            filecopy.copy_file(source, target)
    assert source.read_bytes() == b"a kept version"

"""Copy a warehouse file: a reflink clone where the file system can share the file's blocks (XFS with reflink,
btrfs, ZFS 2.2 with block cloning), else a byte copy (docs/adr/0012-publish-what-changed.md, option 2).

A clone is an independent file (copy on write): a write to either leaves the other as it was, exactly as after a
copy, so every guarantee that rests on the copies (a private staging copy, a published file separate from the
kept versions) holds either way. What changes is the cost: a clone costs about the same at any size, a copy grows
with the warehouse (about 4 ms per MiB on this project's ext4 machine, which cannot clone)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

try:  # POSIX only; elsewhere every copy is a byte copy
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Linux's ioctl that makes the target share the source's blocks (linux/fs.h: _IOW(0x94, 9, int))
FICLONE = 0x40049409

#: the file system (or the kernel, or the pair of folders) cannot clone: copy the bytes instead
_CANNOT_CLONE = frozenset(
    # EAGAIN: ZFS 2.2 refuses to clone blocks not yet written out (a file just written), openzfs/zfs#15172
    {errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF, errno.EAGAIN}
)


def copy_file(source: Path | str, target: Path | str) -> str:
    """``target`` becomes a file with ``source``'s bytes (created or truncated, as :func:`shutil.copyfile` does):
    cloned where the file system can, else copied. Returns ``"clone"`` or ``"copy"``. A real failure (disk full,
    I/O error, permissions) raises, whichever way was tried; so does a target that is the source itself (a hard link
    of it), which is left as it is."""
    if os.path.lexists(target) and os.path.samefile(source, target):  # never truncate the source (a hard link)
        raise shutil.SameFileError(f"{source} and {target} are the same file")
    if fcntl is not None:
        with open(source, "rb") as src, open(target, "wb") as dst:
            try:
                fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
                return "clone"
            except OSError as exc:
                if exc.errno not in _CANNOT_CLONE:
                    raise
    shutil.copyfile(source, target)
    return "copy"


def can_clone(folder: Path | str) -> bool:
    """Whether files in ``folder`` can be cloned (a one-byte trial file, removed again): the benchmark says so of
    the folder its warehouses were in, since the copies' cost depends on it."""
    folder = Path(folder)
    source = folder / f".clone-trial-{os.getpid()}"
    target = folder / f".clone-trial-{os.getpid()}.copy"
    try:
        source.write_bytes(b"\0")
        return copy_file(source, target) == "clone"
    except OSError:
        return False
    finally:
        source.unlink(missing_ok=True)
        target.unlink(missing_ok=True)

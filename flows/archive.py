"""The raw archive: every file received is kept, content-addressed, beside the warehouse (or at DCF_ARCHIVE).

``<archive>/<sha256[:2]>/<sha256>/<original file name>``: the hash names the bytes, the original name is kept because
some file kinds read meaning from it (an edition in a publisher's file name). Written once (copy to a temporary
name while hashing, then rename; the temporary name is short, as the original name may already be 255 bytes long),
read-only afterwards. Re-processing (a schema rebuild, a changed mapping) reads a
file that has left the inbox from here, so the warehouse never depends on the inbox still holding it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from flows.preflight import open_regular, shown


def archive_path(root: Path, digest: str, name: str) -> Path:
    return root / digest[:2] / digest / name


def keep(path: Path, digest: str, root: Path) -> Path | None:
    """Copy ``path`` into the archive unless its bytes are already there. Returns the archived path, or None when
    the bytes read now no longer hash to ``digest`` (the file changed again: the next run archives the new bytes)."""
    target = archive_path(root, digest, shown(path.name))  # a name that is not UTF-8, escaped
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # same folder (the rename is atomic), a short name: the original name may already use a file system's 255 bytes
    tmp = target.with_name(f".tmp-{digest[:16]}-{os.getpid()}")
    sha = hashlib.sha256()
    try:
        with open_regular(path) as src, tmp.open("wb") as dst:  # never blocks on a FIFO swapped in
            while chunk := src.read(1 << 20):
                sha.update(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        if sha.hexdigest() != digest:
            return None
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def present(path: str | None) -> Path | None:
    """An archived path recorded in the warehouse, if the archive still holds it."""
    if not path:
        return None
    p = Path(path)
    return p if p.is_file() else None

"""Publishing the warehouse so that nothing another process does can corrupt it (docs/adr/0006).

Layout beside the published file ``warehouse.duckdb``:

- ``warehouse.duckdb.versions/000042.duckdb`` - private, numbered versions written only by the loader. The newest
  one is the state that is published; the staging copy of the next run is taken from it, never from the published
  file (which an analyst may have opened read-write). Numbered by a monotonic sequence, never by the clock.
- ``warehouse.duckdb`` - a copy of the newest version, replaced by one atomic rename.
- ``warehouse.duckdb.wal`` - a dangling symlink (the *WAL guard*). DuckDB names its write-ahead log after the path,
  not the file: without the guard, an analyst's read-write session on the replaced file would leave a WAL that the
  next open of the *new* file replays into it. With the guard, read-only and read-write opens work, reads work, and
  writes fail with "Cannot open file ... .wal" (the published warehouse is read-only for everyone).
- ``warehouse.duckdb.lock`` - the ingestion lock (flock), re-entrant within one process.
- ``warehouse.analyst.duckdb`` (and its own WAL guard) - the analyst edition, published with the full warehouse
  whenever an agency is restricted (warehouse/analyst.py, docs/adr/0010).

Every file is opened through warehouse/connect.py, which attaches it with the key when one is configured.

Every run starts with :func:`recover`: leftovers of a run that died (staging and publish copies, partial versions,
versions newer than what was published) are removed and logged.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from warehouse import analyst
from warehouse.connect import close, configured_key, httpfs_extension, is_encrypted, open_warehouse, session
from warehouse.errors import WarehouseBusy, WarehouseError, WarehouseKeyProblem, WarehouseUnreadable
from warehouse.faults import faultpoint
from warehouse.filecopy import copy_file

#: how many earlier published states are kept besides the current one
KEEP_VERSIONS = int(os.environ.get("DCF_KEEP_VERSIONS", "5"))
#: where the WAL guard points: a path that cannot exist, named so that whoever finds it understands it
WAL_GUARD_TARGET = ".published-warehouse-is-read-only--ATTACH-it-READ_ONLY/wal"
_VERSION = re.compile(r"^(\d{6,})\.duckdb$")

Log = Callable[[str], None]


# -- errors in plain words ---------------------------------------------------------------------------------------
def _free_mb(folder: Path) -> float:
    try:
        return shutil.disk_usage(folder).free / 1e6
    except OSError:
        return float("nan")


def explain(exc: BaseException, published: Path) -> WarehouseError | None:
    """One plain sentence for a file-system fault met while staging or publishing ``published``, or None."""
    folder = published.parent
    text = str(exc)
    code = exc.errno if isinstance(exc, OSError) else None
    if code == errno.ENOSPC or "No space left on device" in text:
        size = published.stat().st_size / 1e6 if published.exists() else 0.0
        return WarehouseError(
            f"not enough free space in {folder} ({_free_mb(folder):.0f} MB free; a run needs about "
            f"{max(3 * size, 50):.0f} MB for the {size:.0f} MB warehouse, its staging copy and a new version): free space "
            "and run again; the published warehouse was not changed"
        )
    if (
        code in (errno.EACCES, errno.EPERM, errno.EROFS)
        or "Permission denied" in text
        or "Read-only file system" in text
    ):
        why = "is on a read-only file system" if code == errno.EROFS or "Read-only" in text else "is not writable"
        return WarehouseError(
            f"the warehouse folder {folder} {why} for this user ({os.strerror(code or errno.EACCES)}): "
            "fix its permissions (or choose another --warehouse) and run again"
        )
    return None


# -- the lock ----------------------------------------------------------------------------------------------------
_held: dict[str, int] = {}


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


@contextmanager
def exclusive_lock(warehouse: Path) -> Iterator[None]:
    """One ingestion at a time per warehouse. Re-entrant within a process: ``dcf run`` takes it before Prefect
    starts (so a second run exits at once), and the flow takes it again (so a deployment run is exclusive too)."""
    path = lock_path(warehouse)
    key = str(path.resolve())
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    try:
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        fh = path.open("a+")
    except OSError as exc:
        raise (
            explain(exc, warehouse) or WarehouseError(f"cannot create the lock file {path}: {exc.strerror}")
        ) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise WarehouseBusy(f"another ingestion is running ({holder}); try again when it ends") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {datetime.now().isoformat(timespec='seconds')}")
        fh.flush()
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- reading without blocking anyone -----------------------------------------------------------------------------
SNAPSHOT_PREFIX = "dcf-snapshot-"


def unreadable_error(path: Path, exc: BaseException, way_out: str | None = None) -> WarehouseUnreadable:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    way_out = way_out or (
        "'dcf rollback' publishes the last good version again (see 'dcf rollback --list'), and the "
        "next 'dcf run' repairs it"
    )
    return WarehouseUnreadable(f"the warehouse {path} cannot be opened ({first}); {way_out}", exc)


@contextmanager
def read_only(warehouse: Path, config: dict[str, Any] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to ``warehouse``. If a writer elsewhere holds the file (an analyst's read-write
    session), read a private snapshot copy instead of failing. A file that does not open raises
    :class:`WarehouseUnreadable` naming the real path (never the snapshot's) and the way out; a missing or wrong key
    :class:`WarehouseKeyProblem`. ``config``: DuckDB settings fixed for the connection (``dcf sql`` turns external
    access off with them)."""
    if not warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse}; run 'dcf run' first")
    with tempfile.TemporaryDirectory(prefix=f"{SNAPSHOT_PREFIX}{os.getpid()}-") as tmp:
        try:
            try:
                con = open_warehouse(warehouse, read_only=True, config=config)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                copy = Path(tmp) / warehouse.name
                copy_file(warehouse, copy)
                con = open_warehouse(copy, read_only=True, config=config)
        except duckdb.Error as exc:
            raise unreadable_error(warehouse, exc) from None
        try:
            yield con
        finally:
            close(con)


def meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """warehouse_meta as a dict ({} for a file without it)."""
    try:
        return dict(con.execute("SELECT key, value FROM warehouse_meta").fetchall())
    except duckdb.CatalogException:
        return {}


def published_seq(published: Path) -> int | None:
    """The version number the published file says it is; None when it has none or does not open."""
    if not published.exists():
        return None
    try:
        with read_only(published) as con:
            value = meta(con).get("publish_seq")
    except WarehouseKeyProblem:
        raise
    except (WarehouseError, duckdb.Error, OSError):
        return None
    return int(value) if value and value.isdigit() else None


# -- versions ----------------------------------------------------------------------------------------------------
def versions_dir(published: Path) -> Path:
    return published.with_name(published.name + ".versions")


def version_path(published: Path, seq: int) -> Path:
    return versions_dir(published) / f"{seq:06d}.duckdb"


def version_seqs(published: Path) -> list[int]:
    folder = versions_dir(published)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _VERSION.match(p.name)))


@dataclass(frozen=True)
class Version:
    seq: int
    path: Path
    load_id: str | None
    finished_at: datetime | None
    problem: str | None  # None: opens as a warehouse of the current schema
    current: bool  # the published file says it is this version


def _inspect(path: Path, schema: str) -> tuple[str | None, tuple | None]:
    """(None, its last load's (load_id, finished_at)) if ``path`` opens as a warehouse of layout ``schema``, else
    (what is wrong, in words, None); one open of the file."""
    try:
        with session(path, read_only=True) as con:
            found = meta(con).get("schema_version")
            if found != schema:
                return (
                    f"layout {found or 'unknown'}, not {schema}" if found else "not a warehouse of this project"
                ), None
            return None, con.execute(
                "SELECT load_id, finished_at FROM audit_load ORDER BY load_seq DESC NULLS LAST, started_at DESC LIMIT 1"
            ).fetchone()
    except duckdb.Error as exc:
        return f"does not open as a DuckDB warehouse ({str(exc).splitlines()[0][:160]})", None


def check_warehouse_file(path: Path, schema: str) -> str | None:
    """None if ``path`` opens as a warehouse of layout ``schema``, else what is wrong, in words."""
    return _inspect(path, schema)[0]


def list_versions(published: Path, schema: str) -> list[Version]:
    """Kept versions, newest first, each checked."""
    current = published_seq(published)
    out = []
    for seq in reversed(version_seqs(published)):
        path = version_path(published, seq)
        problem, row = _inspect(path, schema)
        out.append(Version(seq, path, row[0] if row else None, row[1] if row else None, problem, seq == current))
    return out


def next_seq(published: Path) -> int:
    return max([0, *version_seqs(published), published_seq(published) or 0]) + 1


def prune(published: Path, log: Log | None = None) -> None:
    """Keep the newest KEEP_VERSIONS + 1 versions (by sequence) and always the published one. With a key configured,
    versions written in plain text before it was set are removed too: the warehouse is encrypted at rest, and such a
    version could not be published under the key anyway."""
    seqs = version_seqs(published)
    current = published_seq(published)
    for seq in seqs[: max(0, len(seqs) - (KEEP_VERSIONS + 1))]:
        if seq != current:
            version_path(published, seq).unlink(missing_ok=True)
    if configured_key() is not None:
        for seq in version_seqs(published):
            path = version_path(published, seq)
            try:
                plain = seq != current and not is_encrypted(path)
            except duckdb.Error:  # a damaged version: rollback --list says so; not this function's to judge
                continue
            if plain:
                path.unlink()
                if log:
                    log(f"removed version {seq:06d}: written without encryption, before the key was set")


# -- recovery ----------------------------------------------------------------------------------------------------
def _leftovers(published: Path) -> list[Path]:
    folder, name = published.parent, published.name
    edition = analyst.analyst_path(published).name
    found = [
        p
        for pattern in (f".{name}.staging-*", f".{name}.publish-*", f".{name}.rollback-*", f".{edition}.publish-*")
        for p in folder.glob(pattern)
    ]
    vdir = versions_dir(published)
    if vdir.is_dir():
        found += [p for p in vdir.iterdir() if p.name.endswith((".tmp", ".wal"))]
    return sorted(found)


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def recover(published: Path, log: Log, seq_of: Callable[[Path], int | None] | None = None) -> list[str]:
    """Clear what a dead run left. Call with the lock held (so no live run owns these files). Returns what it did.
    ``seq_of``: how the published file's version number is found (default :func:`published_seq`, which opens it;
    the nightly flow passes warehouse.quiet's, which remembers it while the file is unchanged)."""
    done = []
    for path in _leftovers(published):
        if path.is_dir() and not path.is_symlink():  # DuckDB's spill folder of a staging copy (<staging>.tmp)
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}/ ({size:.1f} MB) left by a run that did not finish")
            continue
        size = path.stat().st_size / 1e6 if path.exists() else 0.0
        path.unlink(missing_ok=True)
        done.append(f"removed {path.name} ({size:.1f} MB) left by a run that did not finish")
    current = (seq_of or published_seq)(published)
    if current is not None:
        for seq in version_seqs(published):
            if seq > current:  # linked, but the rename never happened: the published state is the one before
                version_path(published, seq).unlink()
                done.append(f"removed version {seq:06d}, kept by a run that died before publishing it")
    for snap in Path(tempfile.gettempdir()).glob(f"{SNAPSHOT_PREFIX}*"):
        pid = snap.name[len(SNAPSHOT_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and _dead(int(pid)):
            shutil.rmtree(snap, ignore_errors=True)
            done.append(f"removed the reader's snapshot {snap} left by process {pid}")
    for line in done:
        log(line)
    return done


def check_key(published: Path) -> None:
    """Before a run: the key setting holds a usable key (or none is set), and it opens the newest kept version (else
    the published file); :class:`WarehouseKeyProblem` otherwise, so a wrong key fails before any file is read."""
    if configured_key() is not None:
        httpfs_extension()  # writing needs it: say so now, not after the files are read
    trusted = base_version(published) or (published if published.exists() else None)
    if trusted is not None:
        try:
            open_warehouse(trusted, read_only=True).close()
        except duckdb.Error:
            pass  # a broken or busy file: the run says so in its own words


def base_version(published: Path) -> Path | None:
    """The newest kept version: the trusted state a new staging copy starts from (None: none kept yet)."""
    seqs = version_seqs(published)
    return version_path(published, seqs[-1]) if seqs else None


# -- the WAL guard and the publish itself -----------------------------------------------------------------------
def guard_wal(published: Path, log: Log) -> None:
    """Make ``<published>.wal`` the guard link. A real file there is a foreign write-ahead log (the loader never
    writes at the published path): it is moved aside, never replayed into the file about to be published."""
    wal = published.with_name(published.name + ".wal")
    if wal.is_symlink() and os.readlink(wal) == WAL_GUARD_TARGET:
        return
    if wal.exists() or wal.is_symlink():
        aside = wal.with_name(f"{wal.name}.foreign-{datetime.now():%Y%m%dT%H%M%S}-{os.getpid()}")
        os.replace(wal, aside)
        log(
            f"moved a write-ahead log left by another program's read-write session aside to {aside.name}; "
            "it is never applied to the published warehouse"
        )
    os.symlink(WAL_GUARD_TARGET, wal)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_file(ready: Path, published: Path, seq: int, log: Log) -> None:
    """``ready`` (closed, complete, carrying publish_seq = ``seq``) becomes version ``seq`` and the published file,
    and, when it records restricted agencies, its analyst edition is published beside it (warehouse/analyst.py).

    Order matters for kills at any point: the version is linked first (a kill after it leaves a version newer than
    the published file, removed by :func:`recover`), both copies are complete before either is renamed, each is
    renamed in one step (a kill between the two leaves the analyst edition one version behind: the next night sees
    it and publishes again, warehouse/quiet.py), pruning comes last.
    """
    vdir = versions_dir(published)
    version = version_path(published, seq)
    tmp = published.with_name(f".{published.name}.publish-{os.getpid()}")
    edition = analyst.analyst_path(published)
    edition_tmp = edition.with_name(f".{edition.name}.publish-{os.getpid()}")
    try:
        _fsync(ready)
        vdir.mkdir(exist_ok=True)
        os.link(ready, version)
        _fsync(vdir)
        faultpoint("version_link")
        copy_file(ready, tmp)
        _fsync(tmp)
        left_out = analyst.build(ready, edition_tmp)
        if left_out is not None:
            _fsync(edition_tmp)
        faultpoint("rename")
        guard_wal(published, log)
        os.replace(tmp, published)
        if left_out is not None:
            guard_wal(edition, log)
            os.replace(edition_tmp, edition)
    except BaseException:  # not published: undo this attempt's version and copies (a kill leaves them to recover())
        version.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        edition_tmp.unlink(missing_ok=True)
        raise
    if left_out is not None:
        log(
            f"analyst edition {edition.name} published: {sum(left_out.values())} row(s) of restricted agencies left out"
        )
    try:
        _fsync(published.parent)
        faultpoint("after_rename")
        ready.unlink()
        if left_out is None and edition.exists():  # no agency is restricted any more: never leave a stale edition
            edition.unlink()
            edition.with_name(edition.name + ".wal").unlink(missing_ok=True)  # its guard (a link to nowhere)
            log(f"removed the analyst edition {edition.name}: no agency is restricted any more")
        prune(published, log)
    except OSError as exc:  # published already; tidying up can wait for the next run's recover()
        log(f"published, but could not tidy up ({exc}); the next run will")


def stamp(path: Path, seq: int, **extra: str) -> None:
    """Write the version number (and other facts) into a closed private copy before it is published."""
    with session(path, read_only=False) as con:
        con.execute("CREATE TABLE IF NOT EXISTS warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
        for key, value in {
            "publish_seq": str(seq),
            "published_at": datetime.now().isoformat(timespec="seconds"),
            **extra,
        }.items():
            con.execute("INSERT OR REPLACE INTO warehouse_meta VALUES (?, ?)", [key, value])
        con.execute("CHECKPOINT")


def rollback(published: Path, seq: int, schema: str, log: Log) -> int:
    """Publish kept version ``seq`` again, as a new version (so the rollback itself can be undone). Refuses a
    version that does not open as a warehouse of the current layout. Returns the new version number."""
    source = version_path(published, seq)
    if not source.exists():
        raise WarehouseError(f"no kept version {seq:06d}; see 'dcf rollback --list'")
    problem = check_warehouse_file(source, schema)
    if problem:
        raise WarehouseError(
            f"version {seq:06d} cannot be published: it {problem}; choose another ('dcf rollback --list')"
        )
    if configured_key() is not None and not is_encrypted(source):
        raise WarehouseError(
            f"version {seq:06d} cannot be published: it was written without encryption, before the key was set; "
            "choose another ('dcf rollback --list')"
        )
    with exclusive_lock(published):
        recover(published, log)
        new = next_seq(published)
        ready = published.with_name(f".{published.name}.rollback-{os.getpid()}")
        try:
            copy_file(source, ready)
            stamp(ready, new, rolled_back_from=str(seq))
            publish_file(ready, published, new, log)
        except OSError as exc:
            ready.unlink(missing_ok=True)
            raise (explain(exc, published) or exc) from None
    return new

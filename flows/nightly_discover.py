"""The nightly flow's discovery: which inbox files are new, changed, failed last time or unchanged, and which
current files are read again from the raw archive (a changed mapping or layout)."""

from __future__ import annotations

import functools
import json
import os
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import archive
from flows.discover import describe_refused, scan_inbox
from flows.limits import Limits
from flows.preflight import shown
from flows.process import FileTask, HashCache, describe_seen, modified_at
from flows.reference import config_hash, reference_fingerprint
from flows.remote import fetch_drops, origins
from flows.retry import RetryPolicy, retry_io, unreadable_message
from schemas.settings import Settings
from schemas.sources import SourceConfig
from warehouse.published_state import TrustedLook
from warehouse.store import (
    SCHEMA_VERSION,
    archived_current_files,
    read_only,
    schema_version,
    trusted,
)


class InboxUnavailable(OSError):
    """The inbox folder itself cannot be reached: the run fails (and notifies) rather than load an empty night."""


def source_yamls(settings: Settings, sources: list[SourceConfig]) -> dict[str, Path]:
    """agency -> its YAML file (whose bytes, with the reference tables', make a file's config hash)."""
    return {
        s.agency: p
        for p in settings.sources.glob("*.yaml")
        for s in sources
        if p.stem.lower() == s.inbox_dir.lower() or p.stem.upper() == s.agency
    }


def archived_task(
    settings: Settings,
    sources: list[SourceConfig],
    key: str,
    digest: str,
    stored: str,
    yamls: dict[str, Path] | None = None,
    ref_fp: str | None = None,
) -> FileTask | None:
    """The task that reads a current file again from the raw archive (None: its agency or its copy is gone)."""
    owner = next((s for s in sources if s.agency == key.split("/", 1)[0]), None)
    kept = archive.present(stored)
    if owner is None or kept is None:
        return None
    yaml_path = (yamls if yamls is not None else source_yamls(settings, sources)).get(owner.agency)
    ref_fp = ref_fp or reference_fingerprint(settings.reference)
    ch = config_hash(yaml_path, ref_fp) if yaml_path else ref_fp[:16]
    st = kept.stat()
    rel = key.split("/", 1)[1]
    return FileTask(kept, key, digest, ch, st.st_size, datetime.fromtimestamp(st.st_mtime), owner, owner.spec_for(rel))


#: the retries of discovery (the nightly flow runs it in its own body, flows/nightly.py ``discovered``: no task run)
RETRY_DELAYS = (1, 5)


@task(name="discover", cache_policy=NO_CACHE, retries=len(RETRY_DELAYS), retry_delay_seconds=list(RETRY_DELAYS))
def discover(
    settings: Settings, sources: list[SourceConfig], force: bool = False, look: TrustedLook | None = None
) -> tuple[list[FileTask], list[FileTask], list[dict]]:
    """Hash every inbox file; split into (to process, unchanged, refused). Unchanged = same bytes, same config, and
    its last load did not fail (a failure's cause may lie outside the file: a limit since raised, a share that was
    down, so a failed file is tried again every run); refused = entries never read (links leaving the inbox, FIFOs,
    ...), as run-summary rows with the reason. ``look``: the last published state is asked through it."""
    logger = get_run_logger()
    ref_fp = reference_fingerprint(settings.reference)
    yaml_by_agency = source_yamls(settings, sources)
    current, failed, archived = published_files(settings.warehouse, look)
    known = set() if force else current
    loaded = known - failed if known else known
    hashes = load_hashes(settings.warehouse, reuse=not force)  # --force reads every file again
    todo: list[FileTask] = []
    unchanged: list[FileTask] = []
    policy = RetryPolicy.from_env()
    for delay in [*policy.delays(), None]:  # a share that is down: wait for it, then fail the run loudly
        if settings.inbox.is_dir():
            break
        if delay is None:
            raise InboxUnavailable(
                f"inbox {settings.inbox} is not reachable (missing, or the share is down) after "
                f"{policy.attempts} tries over {policy.total_wait:.1f} s; nothing was loaded"
            )
        logger.warning("inbox %s is not reachable; retrying in %.1f s", settings.inbox, delay)
        time.sleep(delay)
    drops = fetch_drops(settings.inbox, sources, policy, logger)  # remote drops mirrored into their folders first
    found, odd = scan_inbox(settings.inbox, sources)
    fetched = {s.agency: origins(settings.inbox / s.inbox_dir, s) for s in sources if s.remote is not None}
    for entry in odd:
        logger.warning("refused, not read: %s", describe_refused(entry, settings.inbox))
    refused = [{"file": _key(path, src, settings), "status": "refused", "message": reason} for path, src, reason in odd]
    refused += drops  # a drop that failed counts as a failed file; its refused entries as refused ones
    for path, src in found:
        rel = path.relative_to(settings.inbox / src.inbox_dir).as_posix()
        yaml_path = yaml_by_agency.get(src.agency)
        ch = config_hash(yaml_path, ref_fp) if yaml_path else ref_fp[:16]
        key = _key(path, src, settings)
        try:  # one unreadable file must not stop the others: retried with backoff, then recorded as failed
            digest, size, mtime, seen = retry_io(
                functools.partial(_describe, path, hashes), key, policy, logger.warning
            )
        except FileNotFoundError:
            logger.warning("%s: disappeared while the inbox was being listed; skipped this run", key)
            continue
        except OSError as exc:
            todo.append(
                FileTask(
                    path,
                    key,
                    "unreadable",
                    ch,
                    0,
                    None,
                    src,
                    src.spec_for(rel),
                    read_error=unreadable_message(path, exc, policy),
                    origin=fetched.get(src.agency, {}).get(rel),
                    retried=(key, "unreadable", ch) in failed,
                )
            )
            continue
        origin = fetched.get(src.agency, {}).get(rel)  # a remote drop's file: where it was fetched from
        retried = (key, digest, ch) in failed
        ft = FileTask(
            path, key, digest, ch, size, mtime, src, src.spec_for(rel), seen=seen, origin=origin, retried=retried
        )
        (unchanged if (ft.file_key, digest, ch) in loaded else todo).append(ft)
    save_hashes(settings.warehouse, hashes)
    in_inbox = {t.file_key for t in todo + unchanged}
    for key, digest, stored in archived:  # withdrawn from the inbox, rows kept
        kept = (
            None if key in in_inbox else archived_task(settings, sources, key, digest, stored, yaml_by_agency, ref_fp)
        )
        if kept is not None and (key, digest, kept.config_hash) not in known:
            todo.append(kept)  # a changed mapping or layout: re-processed from the raw archive
    logger.info(
        "inbox %s: %d file(s), %d new or changed, %d unchanged",
        settings.inbox,
        len(todo) + len(unchanged),
        len(todo),
        len(unchanged),
        extra={"dcf": "line"},
    )
    return todo, unchanged, refused


def _describe(path: Path, hashes: HashCache) -> tuple[str, int, datetime, tuple[int, float]]:
    """:func:`describe_seen`, without reading a file whose stat shows it unchanged since it was hashed (``hashes``);
    a file that is read is recorded there with the stat taken before it was read."""
    hashed_at = time.time_ns()  # before the stat: a write after this moment never looks older than the hash
    st = path.stat()
    if st.st_size > Limits.from_env().max_file_bytes:  # not read anyway; its version follows the limit in force
        return describe_seen(path)
    digest = hashes.known(path, st)
    if digest is not None:
        return digest, st.st_size, modified_at(st), (st.st_size, st.st_mtime)
    found = describe_seen(path)
    if found[3] == (st.st_size, st.st_mtime):  # else it changed as it was hashed: not recorded, hashed next time
        hashes.record(path, st, found[0], hashed_at)
    return found


def published_files(
    warehouse: Path, look: TrustedLook | None = None
) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """What :func:`known_versions`, :func:`failed_versions` and :func:`archived_current_files` say, in one look at
    the last published state (opening a warehouse costs DuckDB 40-80 ms; a night asked three times): through
    ``look``'s connection when given, else the trusted file opened for this."""
    with ExitStack() as stack:
        if look is None:  # a look of its own, closed when done
            look = stack.enter_context(TrustedLook(warehouse))
        con = look.connection()
        if con is None:
            return set(), set(), []
        if schema_version(con) == SCHEMA_VERSION:
            rows = con.execute(
                "SELECT file_key, file_hash, config_hash, status = 'failed', archive_path FROM audit_source_file "
                "WHERE is_current ORDER BY file_key"
            ).fetchall()
        else:
            rows = None
    if rows is None:  # an older layout: everything is re-processed into a fresh database
        return set(), set(), archived_current_files(warehouse)
    current = {(key, digest, config) for key, digest, config, _, _ in rows}
    failed = {(key, digest, config) for key, digest, config, failing, _ in rows if failing}
    archived = [(key, digest, stored) for key, digest, _, _, stored in rows if stored is not None]
    return current, failed, archived


#: the hashes of the inbox files as last hashed, beside the warehouse (flows/process.py HashCache)
HASHES_SUFFIX = ".inbox-hashes.json"
HASHES_FORMAT = 1


def hashes_path(warehouse: Path) -> Path:
    return warehouse.with_name(f".{warehouse.name}{HASHES_SUFFIX}")


def load_hashes(warehouse: Path, reuse: bool = True) -> HashCache:
    """The hashes recorded by the last discovery (none when the file is missing, unreadable or of another format:
    every file is then hashed, as on a first night)."""
    try:
        saved = json.loads(hashes_path(warehouse).read_text(encoding="utf-8"))
        entries = saved["files"] if saved.get("format") == HASHES_FORMAT else {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        entries = {}
    return HashCache(entries if isinstance(entries, dict) else {}, reuse=reuse)


def save_hashes(warehouse: Path, hashes: HashCache) -> None:
    """Keep the hashes of the files looked at tonight (written whole, then renamed into place). Only a cache: a
    failure to write it costs the next night a full hash of the inbox, nothing else."""
    if hashes.used == hashes.entries:
        return
    path = hashes_path(warehouse)
    try:
        if not path.parent.is_dir():
            return
        for left in path.parent.glob(f"{path.name}.tmp-*"):  # of a run that died writing it (runs hold the lock)
            left.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": HASHES_FORMAT, "files": hashes.used}, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


def failed_versions(warehouse: Path) -> set[tuple[str, str, str]]:
    """(file_key, file_hash, config_hash) of the current files whose last load failed (last published state)."""
    source = trusted(warehouse)
    if source is None:
        return set()
    with read_only(source) as con:
        if schema_version(con) != SCHEMA_VERSION:
            return set()
        rows = con.execute(
            "SELECT file_key, file_hash, config_hash FROM audit_source_file WHERE is_current AND status = 'failed'"
        ).fetchall()
    return {(key, digest, config) for key, digest, config in rows}


# no task timeout: tasks run in worker threads, which Prefect cannot interrupt (it only warned, once per file); a
# file's work is bounded by the declared limits (flows/limits.py) and the flow's own timeout


def _key(path: Path, src: SourceConfig, settings: Settings) -> str:
    """The logical file (ADR 0002): AGENCY/path under its inbox folder, a name that is not UTF-8 shown escaped."""
    return f"{src.agency}/{shown(path.relative_to(settings.inbox / src.inbox_dir).as_posix())}"


def _archived(path: str | Path, settings: Settings) -> bool:
    """True for a file read from the raw archive (withdrawn from the inbox), not from the inbox."""
    return Path(path).is_relative_to(settings.archive)

"""A night with nothing new publishes nothing (issue 14, point 8): before a staging copy is made, the last published
state is asked, read-only, whether this night would change anything. Only if it would not (no file new, changed or
withdrawn, no failed file failing differently, the same reference dimensions, no exchange rate of a fiscal year
that closed since, and the published file intact as the newest version) is the night recorded as ``nothing_new``
without a publish: every kept version stays, so idle nights never erase the rollback window, and the cost of such a
night does not grow with the warehouse (no copy, no rewrite)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import tempfile
import time
from collections import Counter
from collections.abc import Set as AbstractSet
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.analyst import analyst_path, restricted_of
from warehouse.connect import session
from warehouse.ddl import SCHEMA_VERSION, schema_version
from warehouse.publish import WAL_GUARD_TARGET, published_seq, version_path, version_seqs
from warehouse.published_state import TrustedLook
from warehouse.run_steps import CLOSED_RATES_SQL, _mark_key


def _intact(published: Path) -> str | None:
    """None if the published file is the newest kept version behind its WAL guard, else why it must be republished."""
    seqs = version_seqs(published)
    if not seqs:
        return "no version kept yet"
    if _published_seq(published, memo_path(published)) != seqs[-1]:
        return f"the published file is not version {seqs[-1]}, the newest kept"
    if not _guarded(published):
        return "the published file's write-ahead-log guard is missing"
    return None


def _guarded(path: Path) -> bool:
    wal = path.with_name(path.name + ".wal")
    return wal.is_symlink() and os.readlink(wal) == WAL_GUARD_TARGET


def _differs(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> bool:
    """Whether ``table`` holds other rows than ``frame`` (as multisets of rows, every value compared as DuckDB casts
    it to text). The rows of both sides are fetched and counted here: the same test as EXCEPT ALL both ways, which
    cost DuckDB 25-55 ms per table of a few hundred rows."""
    cols = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in frame.columns)
    data = _scannable(frame)  # a relation, not a registered view: registering one cost DuckDB 8-15 ms
    relation = con.from_arrow(data) if isinstance(data, pa.Table) else con.from_df(data)
    now = Counter(relation.select(cols).fetchall())
    before = Counter(con.execute(f"SELECT {cols} FROM {table}").fetchall())
    return now != before


def _scannable(frame: pd.DataFrame) -> pa.Table | pd.DataFrame:
    """``frame`` as Arrow (registering a pandas frame costs DuckDB ~20 ms), unless a column could read differently
    that way: floats (NaN is a value to pandas' scan, a null to Arrow) and dates and times stay pandas."""
    if any(dtype.kind in "fcmM" for dtype in frame.dtypes):
        return frame
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):  # mixed types in a column: pandas' scan decides, as before
        return frame


def reasons_to_publish(
    published: Path,
    *,
    present: AbstractSet[str],
    skip_agencies: AbstractSet[str],
    dimensions: dict[str, pd.DataFrame],
    failed_again: list[tuple[str, str, str | None]],
    as_of: datetime,
    restricted: AbstractSet[str] = frozenset(),
    look: TrustedLook | None = None,
) -> list[str]:
    """What this night would change in the last published state ([] = nothing). ``present``: the files in the
    inbox; ``skip_agencies``: agencies whose folder is missing (they withdraw nothing); ``failed_again``: (file_key,
    file_hash, message) of the files processed tonight, all of which failed; ``restricted``: the agencies the source
    YAMLs restrict tonight (their analyst edition must match, warehouse/analyst.py); ``look``: the night's
    connection to the last published state (warehouse/published_state.py), used when it is the newest version."""
    problem = _intact(published)
    if problem:
        return [problem]
    newest = version_seqs(published)[-1]
    base = version_path(published, newest)
    memo = memo_path(published)
    with contextlib.ExitStack() as stack:
        if look is not None and look.source == base:
            con = look.connection()
            assert con is not None  # its source exists
        else:  # a private version: no writer, no guard needed
            con = stack.enter_context(session(base, read_only=True))
        if schema_version(con) != SCHEMA_VERSION:
            return ["the warehouse layout is older than this code's"]
        reasons = []
        recorded = restricted_of(con)
        edition = analyst_path(published)
        if recorded != sorted(restricted):
            reasons.append("the restricted agencies changed")
        elif recorded and published_seq(edition) != newest:
            reasons.append(f"the analyst edition is not version {newest}")
        elif recorded and not _guarded(edition):
            reasons.append("the analyst edition's write-ahead-log guard is missing")
        elif not recorded and edition.exists():
            reasons.append("an analyst edition is left from when an agency was restricted")
        moved = con.execute(  # the names as list parameters: registering a table costs DuckDB ~15 ms
            """
            SELECT count(*) FROM audit_source_file WHERE is_current AND (
                (withdrawn_at IS NULL AND NOT list_contains(CAST($present AS VARCHAR[]), file_key)
                 AND NOT list_contains(CAST($skip AS VARCHAR[]), agency_code))
                OR (withdrawn_at IS NOT NULL AND list_contains(CAST($present AS VARCHAR[]), file_key)))
            """,
            {"present": sorted(present), "skip": sorted(skip_agencies)},
        ).fetchone()
        if moved and moved[0]:
            reasons.append(f"{moved[0]} file(s) withdrawn from or back in the inbox")
        for file_key, file_hash, message in failed_again:
            same = con.execute(
                "SELECT count(*) FROM audit_source_file WHERE is_current AND file_key = ? AND file_hash = ? "
                "AND status = 'failed' AND message IS NOT DISTINCT FROM ?",
                [file_key, file_hash, message],
            ).fetchone()
            if not (same and same[0]):
                reasons.append(f"{file_key} failed differently")
        reasons += [f"{table} changed" for table in dimensions_changed(con, base, memo, dimensions)]
        unlocked = unlocked_rates(con, base, memo, as_of)
        if unlocked:
            reasons.append(f"{unlocked} exchange rate(s) of closed fiscal years to freeze")
    return reasons


# -- what the check remembers between nights -------------------------------------------------------------------
#: beside the warehouse: answers of the last check that hold while the files they were read from are unchanged
MEMO_SUFFIX = ".quiet-memo.json"
#: a file whose mtime or ctime is less than this older than the moment it was read may change unseen (git's rule)
RACY_NS = 3_000_000_000


def memo_path(published: Path) -> Path:
    return published.with_name(f".{published.name}{MEMO_SUFFIX}")


def _memo(path: Path) -> dict:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _remember(path: Path, section: str, entry: dict) -> None:
    """Write ``entry`` as the memo's ``section`` (written whole, then renamed into place); only a memo: a failure
    costs the next night the work again."""
    try:
        memo = {**_memo(path), section: entry}
        for left in path.parent.glob(f"{path.name}.tmp-*"):  # of a night that died writing it (nights hold the lock)
            left.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(memo, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, ValueError, TypeError):
        pass


def _identity(path: Path) -> list:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def remembered_seq(published: Path) -> int | None:
    """The published file's version number, from the memo while the file is unchanged (see :func:`_published_seq`)."""
    return _published_seq(published, memo_path(published))


def _published_seq(published: Path, memo: Path) -> int | None:
    """:func:`published_seq`, without opening the published file (40-80 ms for DuckDB) when it is the very file
    (path, size, mtime, ctime, inode) whose number the last check read, and was not written in the moments before
    that reading (a write then might not have moved its times: it is read again until its times are safely older).
    Any write to the file, or another file put in its place, changes its ctime or inode."""
    try:
        identity = _identity(published)
        saved = _memo(memo).get("published")
        if (
            isinstance(saved, dict)
            and saved.get("file") == identity
            and max(identity[2], identity[3]) <= int(saved["read_at"]) - RACY_NS
        ):
            return int(saved["seq"])
    except (OSError, ValueError, TypeError, KeyError):
        return published_seq(published)  # missing, or not examined: as before
    read_at = time.time_ns()  # before the reading: a write after it never looks older than the reading
    seq = published_seq(published)
    try:
        if seq is not None and _identity(published) == identity:
            _remember(memo, "published", {"file": identity, "read_at": read_at, "seq": seq})
    except OSError:
        pass
    return seq


def _frame_digest(table: str, frame: pd.DataFrame) -> str | None:
    """A digest of ``frame`` as pickled (1 ms for the dimensions; comparing one costs DuckDB 30-150 ms): a pickle
    restores the very frame, columns, dtypes and values (NaN and None, 1 and "1" apart), so equal digests are equal
    frames. Two equal frames built otherwise may pickle apart, which only costs a comparison; None (compared every
    night) for a frame that cannot be pickled."""
    try:
        data = pickle.dumps(frame, protocol=4)
    except (pickle.PicklingError, TypeError, AttributeError, ValueError):
        return None
    return hashlib.sha256(table.encode() + b"\0" + data).hexdigest()


def dimensions_changed(
    con: duckdb.DuckDBPyConnection, base: Path, memo: Path, dimensions: dict[str, pd.DataFrame]
) -> list[str]:
    """The tables of ``dimensions`` whose rows differ from version ``base`` (open as ``con``), by :func:`_differs`.
    A table found the same is remembered in ``memo`` with the digest of the frame compared and the version's
    identity (size, times, inode: a version is never rewritten, another file is another identity): the same frame
    against the same version compares the same, so it is not compared again. Any trouble with the memo: compared."""
    try:
        identity = _identity(base)
        saved = _memo(memo).get("dimensions")
        same = saved["tables"] if isinstance(saved, dict) and saved.get("version") == identity else {}
    except (OSError, TypeError, KeyError):
        identity, same = None, {}
    digests = {table: _frame_digest(table, frame) for table, frame in dimensions.items()}
    changed = [
        table
        for table, frame in dimensions.items()
        if not (digests[table] is not None and isinstance(same, dict) and same.get(table) == digests[table])
        and _differs(con, table, frame)
    ]
    unchanged = {table: digest for table, digest in digests.items() if table not in changed and digest is not None}
    if identity is not None and unchanged != same:
        _remember(memo, "dimensions", {"version": identity, "tables": unchanged})
    return changed


def _unlocked_now(con: duckdb.DuckDBPyConnection, as_of: datetime) -> int:
    row = con.execute(
        f"SELECT count(*) FROM ({CLOSED_RATES_SQL}) r ANTI JOIN fx_rate_lock l "
        "USING (currency, policy, key_start, key_end, fiscal_year)",
        {"as_of": as_of},
    ).fetchone()
    return int(row[0]) if row else 0


def unlocked_rates(con: duckdb.DuckDBPyConnection, base: Path, memo: Path, as_of: datetime) -> int:
    """How many rates of fiscal years closed by ``as_of`` the facts of version ``base`` (open as ``con``) use and
    fx_rate_lock lacks. Counting them scans every fact (1 s at 5M lines), so the answer is remembered in ``memo``
    with the span of ``as_of`` over which it cannot change: the query depends on ``as_of`` only through which facts
    have ``period_end < as_of``, and that set stays the same from the ``as_of`` it was counted at until the
    earliest period_end of the facts it left out. A version is immutable; its size, times and inode are part of
    the memo, so another file (or a rewritten one) is counted again. Any trouble with the memo: counted again."""
    if not _memo_holds() or as_of.tzinfo:
        return _unlocked_now(con, as_of)  # the reasoning above no longer holds
    try:
        identity = _identity(base)
        saved = _memo(memo)["rates"]
        if saved["version"] == identity and datetime.fromisoformat(saved["as_of"]) <= as_of:
            until = saved["until"]
            if until is None or as_of <= datetime.fromisoformat(until):
                return int(saved["count"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    count = _unlocked_now(con, as_of)
    try:
        entry = {
            "version": _identity(base),
            "as_of": as_of.isoformat(),
            "until": _next_close(con, as_of),
            "count": count,
        }
    except (OSError, ValueError, TypeError, AttributeError, duckdb.Error):
        return count  # only a memo: the next night counts again
    _remember(memo, "rates", entry)
    return count


def _memo_holds() -> bool:
    """Whether the reasoning of :func:`unlocked_rates` holds for the query as written."""
    return "period_end < $as_of" in CLOSED_RATES_SQL and CLOSED_RATES_SQL.count("$as_of") == 1


def _next_close(con: duckdb.DuckDBPyConnection, as_of: datetime) -> str | None:
    """The first moment a fact left out of the count at ``as_of`` would be counted (ISO text; None: none is left
    out)."""
    row = con.execute(
        "SELECT CAST(min(period_end) AS TIMESTAMP) FROM fact_funding_line WHERE NOT (period_end < $as_of)",
        {"as_of": as_of},
    ).fetchone()
    until = row[0] if row else None
    return until.isoformat() if until is not None else None


#: where the night's lock of closed-year rates records the state it locked (warehouse/run_steps.py _set_mark)
LOCK_MARK = _mark_key("fx_rate_lock")


def settled_rates(con: duckdb.DuckDBPyConnection, seq: int, as_of: datetime) -> dict | None:
    """On a staging copy about to be published as version ``seq`` (every step of the night done): what
    :func:`unlocked_rates` would remember of it, without counting, or None if that cannot be told here. Tonight's
    lock (``as_of``, recorded for ``seq`` in warehouse_meta) froze every rate the facts of closed fiscal years use
    (run_steps.lock_rates_scoped: exact, the loader's own next lock relies on it, and fx_rate_lock's key columns are
    NOT NULL, so every such key is in it), and no later step of a night writes facts or locks: the count at ``as_of``
    is 0, and it stays 0 until the first period_end left out (one pass over one column of the facts, on a publishing
    night). The published night's first quiet check then needs no count (:func:`remember_settled_rates`)."""
    if not _memo_holds() or as_of.tzinfo:
        return None
    try:
        row = con.execute("SELECT value FROM warehouse_meta WHERE key = ?", [LOCK_MARK]).fetchone()
        mark = json.loads(row[0]) if row else None
        if not (isinstance(mark, dict) and mark.get("seq") == seq and mark.get("as_of") == as_of.isoformat()):
            return None
        return {"as_of": as_of.isoformat(), "until": _next_close(con, as_of), "count": 0}
    except (ValueError, TypeError, AttributeError, duckdb.Error):
        return None


def remember_settled_rates(published: Path, seq: int, settled: dict | None) -> None:
    """Right after version ``seq`` is published: remember :func:`settled_rates`'s answer for that version's file
    (only a memo: a failure costs the next quiet night the count)."""
    if settled is None:
        return
    try:
        entry = {"version": _identity(version_path(published, seq)), **settled}
    except OSError:
        return
    _remember(memo_path(published), "rates", entry)

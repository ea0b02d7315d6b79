"""The one way project code opens a warehouse file: the published one, a private version, the staging copy, the
analyst edition (docs/adr/0010).

Without a key configured (neither ``DCF_WAREHOUSE_KEY`` nor ``DCF_WAREHOUSE_KEY_SECRET``, schemas/settings.py) a file
is opened for reading as before, ``duckdb.connect(path, read_only=True)``; for writing it is attached to an in-memory
connection under the name ``warehouse`` with :data:`ROW_GROUP_SIZE` (an ATTACH option) and ``USE``d. With a key,
DuckDB's database encryption (AES-GCM-256): an in-memory connection attaches the file with the key under the name
``warehouse`` and ``USE``s it, so unqualified names work as before. Facts measured with duckdb 1.5.5 (ADR 0010):

- ``duckdb.connect(path, config={"encryption_key": ...})`` is refused ("options were not recognized"): only
  ``ATTACH ... (ENCRYPTION_KEY ...)`` takes a key.
- Reading needs nothing more; writing needs OpenSSL from the httpfs extension (``duckdb-extension-httpfs``, loaded by
  path: nothing is downloaded), else "DuckDB currently has a read-only crypto module loaded". It is loaded whenever a
  key is used, and temporary files (spilled sorts and joins) are encrypted too (``temp_file_encryption``).
- Without the key: CatalogException 'Cannot open encrypted database "..." without a key'; with another key:
  InvalidInputException "Wrong encryption key used to open the database file"; with a key on a file that is not
  encrypted: CatalogException 'A key is explicitly specified, but database "..." is not encrypted'.

A missing or wrong key is :class:`WarehouseKeyProblem` naming the setting, never the key; no message of this module
carries the key (DuckDB's own messages are scrubbed of it).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from schemas.settings import KEY_ENV, KEY_MIN_LENGTH, KEY_SECRET_ENV, KeySetting, key_setting
from warehouse.errors import WarehouseKeyProblem

#: the catalog name of a warehouse opened with a key or for writing (a file opened directly for reading is named after
#: its stem: "warehouse")
ALIAS = "warehouse"
NO_KEY = "without a key"
WRONG_KEY = "Wrong encryption key"
NOT_ENCRYPTED = "is not encrypted"
#: The storage format every plain warehouse file is written in (docs/adr/0014). DuckDB 1.5 still creates a new file
#: in v1.0.0's format unless told otherwise; from v1.3.0's on, it stores the same rows with a third less CPU (the
#: COMMIT of 1M fact lines: 1.3-1.5 against 1.9-2.2 CPU-s, 2026-12-03). DuckDB 1.3 and newer open such a file (the
#: DuckDB CLI, Python, DBeaver's DuckDB driver); an older one says it cannot read this storage version. An encrypted
#: file is v1.4.0's or newer already (DuckDB's encryption needs it).
STORAGE_VERSION = "v1.3.0"
#: Rows per row group DuckDB writes into a warehouse opened read-write (docs/adr/0016), against its default of
#: 122,880. Each commit of a file's rows rewrites the table's last row group, which holds the rows before it: at
#: 122,880, 10 files of 100,000 lines cost 1.8-1.9 CPU-s to store, at 65,536 1.35 (2026-12-03, 2-core AMD EPYC,
#: ``python -m benchmarks.store_cost --row-groups``), and the file is the same size. It is an ATTACH option, so a file
#: opened read-write is attached (a file opened directly takes DuckDB's default); readers are not concerned.
ROW_GROUP_SIZE = 65_536
_LIFT_TABLE = "_dcf_storage_version_lift"
_secrets: dict[str, str] = {}
#: reads a Prefect Secret block's value by name; registered by the orchestration layer (flows/__init__.py), so that
#: warehouse/ imports no Prefect. None: a key kept in a Secret block cannot be read by this process.
_block_reader: Callable[[str], object] | None = None


def use_block_reader(reader: Callable[[str], object]) -> None:
    """Say how a Prefect Secret block is read (flows/passwords.py ``secret_block_value``)."""
    global _block_reader
    _block_reader = reader


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _read_secret(where: KeySetting) -> str:
    name = str(where.secret)
    if name not in _secrets:
        if _block_reader is None:
            raise WarehouseKeyProblem(
                f"the {where.setting} cannot be read by this program (it reads no Prefect Secret blocks): set {KEY_ENV}"
            )
        try:
            value = _block_reader(name)
        except Exception as exc:  # noqa: BLE001 - no block, no server: one sentence naming the block
            raise WarehouseKeyProblem(f"the {where.setting} could not be read ({type(exc).__name__})") from None
        _secrets[name] = value if isinstance(value, str) else ""
    return _secrets[name]


def configured_key() -> tuple[str, KeySetting] | None:
    """(the key, where it comes from), or None when encryption is off. A setting that holds no usable key is
    :class:`WarehouseKeyProblem`: a warehouse must never be written in plain text because a variable came empty."""
    try:
        where = key_setting()
    except ValueError as exc:
        raise WarehouseKeyProblem(str(exc)) from None
    if where is None:
        return None
    key = os.environ.get(str(where.env), "") if where.env else _read_secret(where)
    if not key:
        raise WarehouseKeyProblem(
            f"the {where.setting} is set but holds no key: give it the warehouse key, or unset "
            f"{KEY_ENV} and {KEY_SECRET_ENV} for a warehouse without encryption"
        )
    if len(key) < KEY_MIN_LENGTH:
        raise WarehouseKeyProblem(f"the key in the {where.setting} is shorter than {KEY_MIN_LENGTH} characters")
    return key, where


def httpfs_extension() -> Path:
    """The httpfs extension of this duckdb version (its OpenSSL writes encrypted files), from its PyPI package."""
    try:
        import duckdb_extension_httpfs
    except ImportError:
        raise WarehouseKeyProblem(
            f"writing an encrypted warehouse needs DuckDB's httpfs extension: install the package "
            f"duckdb-extension-httpfs=={duckdb.__version__} (or unset {KEY_ENV} and {KEY_SECRET_ENV})"
        ) from None
    found = sorted(
        pathlib.Path(duckdb_extension_httpfs.__file__).parent.rglob(f"v{duckdb.__version__}/*.duckdb_extension")
    )
    if not found:
        raise WarehouseKeyProblem(f"no httpfs extension for duckdb {duckdb.__version__} in duckdb-extension-httpfs")
    return found[0]


def _scrubbed(exc: duckdb.Error, key: str) -> duckdb.Error:
    """The same DuckDB error, its message without the key (should DuckDB ever quote the statement)."""
    text = str(exc).replace(key, "***")
    try:
        return type(exc)(text)
    except TypeError:  # an exception type that takes other arguments
        return duckdb.Error(text)


def _setting(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _quote(str(value))


def _apply(con: duckdb.DuckDBPyConnection, config: Mapping[str, Any]) -> None:
    """Connect-time settings given after the ATTACH (external access off forbids ATTACH, and setting a folder):
    ``enable_external_access`` after the others, ``lock_configuration`` last, so no query can change them back."""
    last = ("enable_external_access", "lock_configuration")
    for name, value in sorted(config.items(), key=lambda item: last.index(item[0]) + 1 if item[0] in last else 0):
        con.execute(f"SET {name} = {_setting(value)}")


def missing_key(path: Path) -> WarehouseKeyProblem:
    return WarehouseKeyProblem(
        f"the warehouse {path} is encrypted and no key is set: set {KEY_ENV} (the key) or {KEY_SECRET_ENV} "
        "(the name of a Prefect Secret block holding it)"
    )


def wrong_key(path: Path, where: KeySetting) -> WarehouseKeyProblem:
    return WarehouseKeyProblem(f"the key in the {where.setting} does not open the warehouse {path} (wrong key)")


def open_warehouse(
    path: Path | str,
    *,
    read_only: bool = True,
    config: Mapping[str, Any] | None = None,
    plain: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A connection whose default catalog is the warehouse at ``path``. With a key configured (and not ``plain``)
    the file is attached with it: a new file is written encrypted, an existing one must open with the key. A file
    that is not encrypted (written before the key was set, or an analyst edition) opens read-only as it is; opening
    it read-write under a key is refused (warehouse/store.py encrypts a copy instead). ``config``: DuckDB settings
    fixed for the connection (``dcf sql`` turns external access off with them)."""
    path = Path(path)
    found = None if plain else configured_key()
    if found is None:
        try:
            if not read_only:
                lift_storage(path)
                return _writable(path, config or {})
            return duckdb.connect(str(path), read_only=True, config=dict(config or {}))
        except duckdb.CatalogException as exc:
            if NO_KEY in str(exc):
                raise missing_key(path) from None
            raise
    key, where = found
    con = duckdb.connect()
    try:
        con.execute(f"LOAD {_quote(str(httpfs_extension()))}")
        con.execute("SET temp_file_encryption = true")
        _attach(con, path, f"ENCRYPTION_KEY {_quote(key)}", read_only, config or {})
    except duckdb.Error as exc:
        con.close()
        text = str(exc)
        if WRONG_KEY in text:
            raise wrong_key(path, where) from None
        if NOT_ENCRYPTED in text:
            if read_only:
                return open_warehouse(path, read_only=True, config=config, plain=True)
            raise WarehouseKeyProblem(
                f"{path} is not encrypted, and a key is set ({where.setting}): it is not written in plain text"
            ) from None
        raise _scrubbed(exc, key) from None
    except BaseException:
        con.close()
        raise
    return con


def _writable(path: Path, config: Mapping[str, Any]) -> duckdb.DuckDBPyConnection:
    """The plain file ``path`` opened read-write, attached (:func:`_attach`)."""
    con = duckdb.connect()
    try:
        _attach(con, path, "", False, config)
    except BaseException:
        con.close()
        raise
    return con


def _attach(
    con: duckdb.DuckDBPyConnection, path: Path, options: str, read_only: bool, config: Mapping[str, Any]
) -> None:
    """Attach ``path`` to the in-memory ``con`` as :data:`ALIAS` with ``options`` (read-only, or written in row groups
    of :data:`ROW_GROUP_SIZE`) and ``USE`` it, its temporary files beside it, as DuckDB puts a file database's (an
    in-memory one spills into ./.tmp of whatever folder the process runs in); then ``config``."""
    con.execute(f"SET temp_directory = {_quote(str(path) + '.tmp')}")
    mode = "READ_ONLY" if read_only else f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}"
    con.execute(f"ATTACH {_quote(str(path))} AS {ALIAS} ({', '.join(filter(None, [options, mode]))})")
    con.execute(f"USE {ALIAS}")
    _apply(con, config)


def quiesce(con: duckdb.DuckDBPyConnection) -> bool:
    """Stop DuckDB's worker threads of ``con``'s database, each after it has released its last task; whether it
    could. The way to close a connection is :func:`close`, which does this first (docs/adr/0015).

    DuckDB 1.5.5 closes a database's files before it stops its worker threads. A worker that has finished a task of
    the last query (a hash join over a scan of the file) but not yet released it then frees blocks into storage that
    is gone, and the process dies of SIGSEGV: between 1 in 2,000 and 1 in 24,000 closes in our stress runs on a busy
    machine, in readers that did nothing but query and close. Lowering the thread count makes DuckDB join its
    workers while the database is whole (a worker releases its task before it looks whether to stop). A transaction
    left aborted by an error is rolled back first (the setting cannot change inside it; nothing of it could be kept
    anyway). A connection that cannot change it (closed already, or its configuration locked: ``dcf sql`` runs on one
    thread for this) is left as it is. Another open connection to the same database in this process keeps working,
    on one thread."""
    try:
        con.execute("SET threads = 1")
        return True
    except duckdb.TransactionException:  # an aborted transaction refuses every statement but ROLLBACK
        pass
    except duckdb.Error:
        return False
    try:
        con.execute("ROLLBACK")
        con.execute("SET threads = 1")
    except duckdb.Error:
        return False
    return True


def close(con: duckdb.DuckDBPyConnection) -> None:
    """Close ``con`` safely: :func:`quiesce`, then close (also when the quiesce is interrupted)."""
    try:
        quiesce(con)
    finally:
        con.close()


@contextmanager
def session(
    path: Path | str,
    *,
    read_only: bool = True,
    config: Mapping[str, Any] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """:func:`open_warehouse` for a ``with`` block, closed by :func:`close`."""
    con = open_warehouse(path, read_only=read_only, config=config)
    try:
        yield con
    finally:
        close(con)


def _version(text: str) -> tuple[int, ...]:
    """``"v1.3.0+"`` (DuckDB's storage version tag) as ``(1, 3, 0)``."""
    return tuple(int(part) for part in text.strip("v+").split(".") if part.isdigit())


def storage_version(path: Path) -> str:
    """The storage version a plain DuckDB file is written in, as DuckDB tags it (``"v1.3.0+"``); the file is only
    read."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {_quote(str(path))} AS probed (READ_ONLY)")
        row = con.execute(
            "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'probed'"
        ).fetchone()
        return str(row[0]) if row and row[0] else ""
    finally:
        close(con)


def lift_storage(path: Path) -> None:
    """Make the plain file ``path``, before it is opened read-write, one written in :data:`STORAGE_VERSION`'s format:
    a new file is created in it; a file in an older one (a warehouse written before this setting) is lifted to it,
    its rows as they were (DuckDB writes the new version into the file with the first change it checkpoints, here a
    table made and dropped); a file in that format or a newer one is left as it is. An encrypted file cannot be
    read without the key: DuckDB's CatalogException, which :func:`open_warehouse` turns into the missing key."""
    if path.exists():
        found = storage_version(path)
        if found and _version(found) >= _version(STORAGE_VERSION):
            return
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {_quote(str(path))} AS lifted (STORAGE_VERSION {_quote(STORAGE_VERSION)})")
        con.execute(f"CREATE TABLE lifted.main.{_LIFT_TABLE} (i INTEGER)")
        con.execute(f"DROP TABLE lifted.main.{_LIFT_TABLE}")
    finally:
        close(con)  # checkpoints the file: the version goes into it


def attach(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> None:
    """Attach the warehouse at ``path`` read-only to a connection of one's own as ``alias`` (with the key when one is
    configured and the file is encrypted), e.g. to copy it elsewhere."""
    found = configured_key()
    target = f"ATTACH {_quote(str(path))} AS {alias}"
    if found is None or not is_encrypted(path):
        con.execute(f"{target} (READ_ONLY)")
        return
    key, where = found
    try:
        con.execute(f"{target} (ENCRYPTION_KEY {_quote(key)}, READ_ONLY)")
    except duckdb.Error as exc:
        if WRONG_KEY in str(exc):
            raise wrong_key(path, where) from None
        raise _scrubbed(exc, key) from None


def is_encrypted(path: Path) -> bool:
    """Whether ``path`` is an encrypted DuckDB file (asked of DuckDB without a key; the file is only read)."""
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.CatalogException as exc:
        if NO_KEY in str(exc):
            return True
        raise
    return False


def encrypt_copy(source: Path, target: Path) -> None:
    """Write ``target`` (a new file) encrypted under the configured key with everything ``source`` (a plain file)
    holds: tables with their rows, constraints, views and comments (COPY FROM DATABASE). Used once, when the key is
    set on a warehouse written without one."""
    con = open_warehouse(target, read_only=False)
    try:
        con.execute(f"ATTACH {_quote(str(source))} AS plain_source (READ_ONLY)")
        con.execute(f"COPY FROM DATABASE plain_source TO {current_catalog(con)}")
        con.execute("DETACH plain_source")
        con.execute("CHECKPOINT")
    finally:
        close(con)


def current_catalog(con: duckdb.DuckDBPyConnection) -> str:
    """The quoted name of the connection's default catalog (the warehouse)."""
    row = con.execute("SELECT current_database()").fetchone()
    assert row is not None
    return '"' + str(row[0]).replace('"', '""') + '"'

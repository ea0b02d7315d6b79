"""Remote drops: an agency whose files wait on an SFTP server, in an object store or in another folder (``remote:``
in its source YAML, schemas/spec_remote.py) has them mirrored into its inbox folder before each night's discovery.
From there a file goes exactly the way a dropped one does (hash, skip-unchanged, replace-on-change, the raw archive,
withdrawal, refused entries), so no guarantee needs a second implementation; only lineage differs: the file audit
records the file's remote location (:func:`with_origin`).

- **Download only what changed.** The listing decides: a file whose change token equals the one recorded when it
  was last fetched is not downloaded again. The token is a checksum where the protocol gives one (an object
  store's ETag or checksum), else size and modification time (SFTP has no checksum). The bytes downloaded are
  hashed on the way in; their sha256 stays the file's identity, as for any local file (discovery hashes the copy).
- **The same care as the local inbox (ADR 0007).** Only regular files are fetched. A link is followed only to a
  regular file inside the drop folder (the server resolves it); links leaving the drop, dangling links, links to
  folders, FIFOs, devices, sockets and names a server should never send ('..', a '/') are refused with a reason, as
  refused entries of the night. Nothing is written outside the agency's inbox folder.
- **The mirror's own record.** ``.dcf-remote.json`` in the agency folder (a dot-file: never read as data) lists
  what was fetched, with its token and sha256. A file that left the drop is removed from the folder (only files the
  mirror put there; nothing under a remote folder that could not be listed), so it is withdrawn as usual.
- **One broken drop never stops the night.** Connecting and listing are retried with backoff (flows/retry.py);
  what still fails is one failed entry of the night (exit 4) whose message names the location and the setting to
  fix, never the credential. The copies fetched before stay, so that agency's rows stay as they were.
- **Credentials** come from an environment variable or a Prefect Secret block (``credentials:``), read when the
  night connects and never written to a message, a log line or the warehouse. An SFTP server's host key must be in
  a known_hosts file (default ``~/.ssh/known_hosts``): an unknown or changed key refuses the connection.

SFTP is read through fsspec's SFTP file system and its paramiko client: fsspec's listing drops the file mode, which
the refusals above need, so the listing and the links use the paramiko SFTP client the file system holds.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import json
import logging
import os
import posixpath
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from flows.discover import IGNORED_PREFIXES, _kind, _walk
from flows.limits import Limits
from flows.passwords import secret_block_value
from flows.preflight import open_regular
from flows.retry import RetryPolicy, describe_error, retry_io
from schemas.spec_remote import RemoteCredentials, RemoteSpec

if TYPE_CHECKING:
    from flows.process import FileTask
    from schemas.batch import FileBatch
    from schemas.sources import SourceConfig

MANIFEST = ".dcf-remote.json"
_PARTIAL = ".dcf-partial-"
#: info keys of fsspec implementations that carry a checksum or version of the object, most telling first
CHECKSUM_KEYS = ("sha256", "ChecksumSHA256", "checksum", "md5Hash", "md5", "ETag", "etag", "crc32c", "version_id")
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created")

_log = logging.getLogger("dcf.remote")


class RemoteProblem(Exception):
    """A drop that waiting will not fix (credentials refused or missing, unknown host key, no such folder): one
    sentence naming the location or the setting, never the credential."""


@dataclass(frozen=True)
class RemoteEntry:
    """A regular file of the drop: its path under the drop folder, size, change token, where to open it (a link's
    target inside the drop) and its modification time (seconds since the epoch, None when the protocol gives none)."""

    rel: str
    size: int
    token: str
    source: str
    mtime: float | None = None


@dataclass
class Listing:
    entries: list[RemoteEntry] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path under the drop, why it is not read)
    unlisted: list[str] = field(default_factory=list)  # folders that could not be listed: nothing under them removed


@dataclass(frozen=True)
class Plan:
    download: list[tuple[RemoteEntry, str]]  # (entry, why: new, changed, missing here)
    remove: list[str]  # files the mirror fetched before that left the drop
    too_large: list[RemoteEntry]  # over DCF_MAX_FILE_BYTES: never downloaded


# --- pure: what to download ---------------------------------------------------------------------------------------


def change_token(info: dict[str, Any]) -> str:
    """What says a remote file changed: a checksum or version the protocol gives, else its size and mtime."""
    for key in CHECKSUM_KEYS:
        if info.get(key):
            return f"{key}:" + str(info[key]).strip('"')  # an ETag comes quoted
    return f"size:{info.get('size')} mtime:{mtime_of(info)}"


def mtime_of(info: dict[str, Any]) -> float | None:
    """The modification time an fsspec info dict gives, as seconds since the epoch (None when it has none)."""
    for key in _MTIME_KEYS:
        value = info.get(key)
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def needs_download(entry: RemoteEntry, known: dict[str, Any] | None, landed_size: int | None) -> str | None:
    """Why ``entry`` must be downloaded, or None: ``known`` is what the mirror recorded when it last fetched that
    path (None: never), ``landed_size`` the size of the copy in the inbox folder (None: no regular file there)."""
    if known is None:
        return "new"
    if known.get("token") != entry.token:
        return "changed"
    if landed_size is None:
        return "missing here"
    if landed_size != known.get("size"):
        return "copy changed here"
    return None


def plan(
    listing: Listing,
    fetched: dict[str, dict],
    landed: dict[str, int | None],
    max_bytes: int,
    mirrored: set[str] | None = None,
) -> Plan:
    """What to download and what to remove, from the listing alone. ``fetched``: the mirror's record of this drop
    (path -> token, size, sha256); ``landed``: size of each recorded path's copy here (None: gone or not a regular
    file); ``mirrored``: every file the mirror put here (default: those of ``fetched``), the only ones it removes."""
    download: list[tuple[RemoteEntry, str]] = []
    too_large: list[tuple[RemoteEntry, str]] = []
    for entry in listing.entries:
        why = needs_download(entry, fetched.get(entry.rel), landed.get(entry.rel))
        if why is None:
            continue
        (too_large if entry.size > max_bytes else download).append((entry, why))
    listed = {e.rel for e in listing.entries}
    kept_under = tuple(f"{folder}/" for folder in listing.unlisted)
    ours = set(fetched) if mirrored is None else mirrored
    remove = sorted(rel for rel in ours if rel not in listed and not rel.startswith(kept_under))
    return Plan(download, remove, [entry for entry, _ in too_large])


def safe_name(name: str) -> bool:
    """A single name a server may send for an entry of a folder: not empty, '.', '..', and without '/' or NUL."""
    return name not in ("", ".", "..") and "/" not in name and "\x00" not in name


def scrub(text: str, secret: object) -> str:
    """``text`` with any credential value replaced by ``***`` (messages are built without it; this is the belt)."""
    values = secret.values() if isinstance(secret, dict) else [secret]
    for value in values:
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "***")
    return text


# --- credentials -----------------------------------------------------------------------------------------------------


def credential_of(cred: RemoteCredentials) -> str | dict[str, Any]:
    """The credential the setting points at (a dict for ``holds: options``); RemoteProblem naming the setting when it
    is not set, cannot be read or does not hold what ``holds`` says."""
    value: object
    if cred.env:
        value = os.environ.get(cred.env)
        if not value:
            raise RemoteProblem(f"the {cred.setting} is not set (the source's 'remote.credentials' names it)")
    else:
        try:
            value = secret_block_value(str(cred.secret))
        except Exception as exc:  # noqa: BLE001 - no block, no server, no permission: one sentence naming the block
            raise RemoteProblem(f"the {cred.setting} could not be read ({type(exc).__name__})") from None
    if cred.holds == "options":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if not isinstance(value, dict):
            raise RemoteProblem(f"the {cred.setting} does not hold a JSON object of storage options")
        return value
    if not isinstance(value, str) or not value:
        raise RemoteProblem(f"the {cred.setting} holds no text ({cred.holds})")
    return value


def _ssh_auth(cred: RemoteCredentials, value: str) -> dict[str, Any]:
    """paramiko's keyword for the credential: a loaded private key (``pkey``) or a ``password``."""
    import paramiko

    if cred.holds == "password":
        return {"password": value}
    if cred.holds == "key_file":
        try:
            return {"pkey": paramiko.PKey.from_path(Path(value).expanduser())}
        except FileNotFoundError:
            raise RemoteProblem(f"the private key file named by the {cred.setting} does not exist") from None
        except paramiko.PasswordRequiredException:
            raise RemoteProblem(
                f"the private key file named by the {cred.setting} is protected by a passphrase; dcf needs a key "
                "without one (readable by the dcf user only)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - unreadable, not a key, an unknown type: the setting to fix
            raise RemoteProblem(
                f"the file named by the {cred.setting} is not a private key dcf can use ({type(exc).__name__})"
            ) from None
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return {"pkey": key_class.from_private_key(io.StringIO(value))}
        except Exception:  # noqa: BLE001 - not this type: try the next
            continue
    raise RemoteProblem(f"the {cred.setting} holds no private key dcf can use (OpenSSH or PEM, without a passphrase)")


# --- the drops: list, open, close -------------------------------------------------------------------------------------


class _LocalDrop:
    """A folder on this machine: listed by the inbox's own walk (flows/discover.py), opened non-blocking."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def listing(self) -> Listing:
        if not self.root.is_dir():
            raise FileNotFoundError(errno.ENOENT, "no such folder")
        files, odd = _walk(self.root, os.path.realpath(self.root))
        out = Listing()
        for path in files:
            st = path.stat()
            rel = path.relative_to(self.root).as_posix()
            out.entries.append(
                RemoteEntry(rel, st.st_size, f"size:{st.st_size} mtime:{st.st_mtime_ns}", str(path), st.st_mtime)
            )
        for path, reason in odd:
            rel = path.relative_to(self.root).as_posix()
            out.refused.append((rel, reason))
            if reason.startswith("folder cannot be listed"):
                out.unlisted.append(rel)
        return out

    @contextmanager
    def open(self, entry: RemoteEntry) -> Iterator[BinaryIO]:
        with open_regular(Path(entry.source)) as fh:
            yield fh

    def close(self) -> None:
        pass


class _FsspecDrop:
    """An object store (or any fsspec file system without links): every object under the prefix."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs, self.root = fs, fs._strip_protocol(root).rstrip("/")  # as the file system names its paths

    def listing(self) -> Listing:
        if not self.fs.isdir(self.root):
            raise FileNotFoundError(errno.ENOENT, "no such folder")
        out = Listing()
        for name, info in sorted(self.fs.find(self.root, detail=True, withdirs=False).items()):
            rel = name[len(self.root) :].lstrip("/") if name.startswith(self.root) else ""
            steps = rel.split("/")
            if not rel or not all(map(safe_name, steps)):
                out.refused.append((rel or name, "a name outside the drop folder or with '..'; not read"))
            elif steps[-1].startswith(IGNORED_PREFIXES):
                continue
            elif info.get("islink"):
                out.refused.append((rel, "symbolic link; not read from this kind of drop (copy the file in instead)"))
            elif info.get("type") != "file":
                out.refused.append((rel, f"not a regular file ({info.get('type')}); not read"))
            else:
                size = int(info.get("size") or 0)
                out.entries.append(RemoteEntry(rel, size, change_token(info), name, mtime_of(info)))
        return out

    @contextmanager
    def open(self, entry: RemoteEntry) -> Iterator[BinaryIO]:
        with self.fs.open(entry.source, "rb") as fh:
            yield fh

    def close(self) -> None:
        pass


class _SftpDrop:
    """An SFTP server, through fsspec's SFTP file system; the paramiko client it holds gives the file modes."""

    def __init__(self, fs: Any, root: str, spec: RemoteSpec) -> None:
        self.fs, self.root, self.spec = fs, root, spec

    @property
    def sftp(self) -> Any:
        return self.fs.ftp

    def listing(self) -> Listing:
        with _ssh_errors(self.spec):
            return self._listing()

    def _listing(self) -> Listing:
        real_root = self.sftp.normalize(self.root)  # FileNotFoundError: no such folder
        if not stat.S_ISDIR(self.sftp.stat(self.root).st_mode or 0):
            raise FileNotFoundError(errno.ENOTDIR, "not a folder")
        out = Listing()
        pending = [""]
        while pending:
            rel_dir = pending.pop()
            try:
                attrs = self.sftp.listdir_attr(posixpath.join(self.root, rel_dir) if rel_dir else self.root)
            except OSError as exc:
                if not rel_dir:
                    raise
                out.refused.append(
                    (rel_dir, f"folder cannot be listed ({describe_error(exc)}); its files are not read")
                )
                out.unlisted.append(rel_dir)
                continue
            for attr in attrs:
                self._entry(attr, f"{rel_dir}/{attr.filename}" if rel_dir else attr.filename, real_root, out, pending)
        out.entries.sort(key=lambda e: e.rel)
        out.refused.sort()
        return out

    def _entry(self, attr: Any, rel: str, real_root: str, out: Listing, pending: list[str]) -> None:
        name, path = attr.filename, posixpath.join(self.root, rel)
        if not safe_name(name):
            out.refused.append((rel, "a name a server should never send ('..', '/' or NUL in it); not read"))
            return
        mode = attr.st_mode
        if not mode or not stat.S_IFMT(mode):  # a server that sends no file type: ask for it
            try:
                mode = self.sftp.lstat(path).st_mode
            except OSError:
                mode = None
        if not mode or not stat.S_IFMT(mode):
            out.refused.append((rel, "the server gives no file type for it; not read"))
        elif stat.S_ISDIR(mode):
            pending.append(rel)
        elif name.startswith(IGNORED_PREFIXES):
            return
        elif stat.S_ISREG(mode):
            out.entries.append(RemoteEntry(rel, attr.st_size or 0, _sftp_token(attr), path, attr.st_mtime))
        elif stat.S_ISLNK(mode):
            reason, target, real = self._link(path, real_root)
            if reason is not None:
                out.refused.append((rel, reason))
            else:
                out.entries.append(RemoteEntry(rel, target.st_size or 0, _sftp_token(target), real, target.st_mtime))
        else:
            out.refused.append((rel, f"not a regular file ({_kind(mode)}); not read"))

    def _link(self, path: str, real_root: str) -> tuple[str | None, Any, str]:
        """Why a link may not be read (None: a regular file inside the drop), its target's attributes and real path."""
        try:
            target = self.sftp.stat(path)  # the server follows the link (and any chain of links)
            real = self.sftp.normalize(path)
        except FileNotFoundError:
            return "dangling symbolic link (its target does not exist); not read", None, ""
        except OSError as exc:
            return f"symbolic link whose target cannot be examined ({describe_error(exc)}); not read", None, ""
        if posixpath.commonpath([real, real_root]) != real_root:
            return "symbolic link that leads outside the drop folder; not read (copy the file in instead)", None, ""
        mode = target.st_mode or 0
        if stat.S_ISDIR(mode):
            return "symbolic link to a folder; not followed (its files are read where they are)", None, ""
        if not stat.S_ISREG(mode):
            return f"symbolic link to something that is not a regular file ({_kind(mode)}); not read", None, ""
        return None, target, real

    @contextmanager
    def open(self, entry: RemoteEntry) -> Iterator[BinaryIO]:
        with _ssh_errors(self.spec), self.sftp.open(entry.source, "rb") as fh:
            if not stat.S_ISREG(fh.stat().st_mode or 0):  # swapped for something else since the listing
                raise RemoteProblem("no longer a regular file")
            fh.prefetch(entry.size)
            yield fh

    def close(self) -> None:
        try:
            self.fs.client.close()
        except Exception:  # noqa: BLE001 - closing a session that already broke
            pass


def _sftp_token(attr: Any) -> str:
    return f"size:{attr.st_size} mtime:{attr.st_mtime}"


@contextmanager
def _ssh_errors(spec: RemoteSpec) -> Iterator[None]:
    """paramiko's errors as ours: what waiting may fix (refused, reset, timed out, a name not resolved) as a
    ConnectionError, which flows/retry.py retries; what it will not (credentials, host key) as RemoteProblem."""
    import paramiko

    loc = spec.location
    try:
        yield
    except paramiko.AuthenticationException:
        setting = spec.credentials.setting if spec.credentials else "the source's 'remote.credentials'"
        raise RemoteProblem(
            f"the server refused the credentials from the {setting} (authentication failed for user {loc.user}); "
            "fix that setting, or install its public key on the server"
        ) from None
    except _HostKeyRefused as exc:
        raise RemoteProblem(str(exc)) from None
    except paramiko.BadHostKeyException:
        raise RemoteProblem(_changed_key(loc.host, spec.known_hosts_file)) from None
    except socket.gaierror:
        raise ConnectionError(errno.EHOSTUNREACH, f"the host name {loc.host} cannot be resolved") from None
    except paramiko.ssh_exception.NoValidConnectionsError:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "connection refused") from None
    except (paramiko.SSHException, EOFError) as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        raise ConnectionResetError(
            errno.ECONNRESET, f"the SSH session failed ({type(exc).__name__}: {first})"
        ) from None


class _HostKeyRefused(Exception):
    pass


def _changed_key(host: str | None, known_hosts: Path) -> str:
    return (
        f"the host key of {host} does not match the one in {known_hosts} (a changed server, or someone in between): "
        "check with the drop's administrator before replacing it"
    )


def _known_hosts_only(known_hosts: Path, port: int | None) -> Any:
    """A paramiko host key policy that accepts only a key listed in ``known_hosts`` (never adds one)."""
    import paramiko

    class KnownHostsOnly(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            try:
                keys = paramiko.HostKeys(str(known_hosts))
            except FileNotFoundError:
                keys = paramiko.HostKeys()
            except Exception as exc:  # noqa: BLE001 - a broken file: say which
                raise _HostKeyRefused(
                    f"the known_hosts file {known_hosts} cannot be read ({type(exc).__name__})"
                ) from None
            listed = keys.lookup(hostname)
            if listed is None:
                host = hostname.strip("[").split("]")[0]
                raise _HostKeyRefused(
                    f"the host key of {hostname} is not in {known_hosts}: add it (ssh-keyscan -p {port} {host} >> "
                    f"{known_hosts}, after checking it with the drop's administrator) or name another file in "
                    "the source's 'remote.known_hosts'"
                )
            if listed.get(key.get_name()) != key:
                raise _HostKeyRefused(_changed_key(hostname, known_hosts))

    return KnownHostsOnly()


def _connect(spec: RemoteSpec, secret: str | dict[str, Any] | None) -> _LocalDrop | _FsspecDrop | _SftpDrop:
    loc = spec.location
    if loc.protocol == "file":
        return _LocalDrop(loc.path)
    import fsspec

    if loc.protocol != "sftp":
        try:
            fs = fsspec.filesystem(
                loc.protocol, skip_instance_cache=True, **(secret if isinstance(secret, dict) else {})
            )
        except ImportError as exc:
            first = (str(exc).splitlines() or [""])[0][:200]
            raise RemoteProblem(
                f"reading a {loc.protocol}:// drop needs a package not installed here ({first})"
            ) from None
        return _FsspecDrop(fs, loc.path)
    assert spec.credentials is not None and isinstance(secret, str)  # RemoteSpec requires them for sftp
    auth = _ssh_auth(spec.credentials, secret)
    timeout = spec.timeout_seconds
    with _ssh_errors(spec):
        # our own socket: when the handshake fails (credentials, host key) closing it ends paramiko's transport thread
        sock = socket.create_connection((str(loc.host), int(loc.port or 22)), timeout=timeout)
        try:
            fs = fsspec.filesystem(
                "sftp",
                host=loc.host,
                port=loc.port,
                username=loc.user,
                sock=sock,
                look_for_keys=False,
                allow_agent=False,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
                host_key_policy=_known_hosts_only(spec.known_hosts_file, loc.port),
                skip_instance_cache=True,
                **auth,
            )
            fs.ftp.get_channel().settimeout(timeout)
        except BaseException:
            sock.close()
            raise
    return _SftpDrop(fs, loc.path, spec)


# --- the mirror ---------------------------------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    """The mirror's record in an agency folder ({} when there is none or it cannot be read)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else {}


def _write_manifest(folder: Path, location: str, files: dict[str, dict]) -> None:
    tmp = folder / f"{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({"location": location, "files": files}, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def _landed_size(path: Path) -> int | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _land(drop: Any, entry: RemoteEntry, folder: Path, max_bytes: int) -> str:
    """Download one file into the agency folder (a temporary dot-file, then an atomic rename), hashing the bytes on
    the way; returns their sha256."""
    target = folder / entry.rel
    root = os.path.realpath(folder)
    if os.path.commonpath([os.path.realpath(target.parent), root]) != root:  # a link put in the folder here
        raise RemoteProblem("its folder here leads outside the inbox folder; not written")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{_PARTIAL}{hashlib.sha256(entry.rel.encode()).hexdigest()[:12]}-{os.getpid()}"
    sha, size = hashlib.sha256(), 0
    try:
        with drop.open(entry) as src, tmp.open("wb") as dst:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise RemoteProblem(f"larger than DCF_MAX_FILE_BYTES ({max_bytes} bytes)")
                sha.update(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        if size != entry.size:  # not retried now: the listing's size is what it is checked against
            raise RemoteProblem(
                f"changed while it was downloaded ({size} bytes read, {entry.size} listed): still being written?"
            )
        if entry.mtime is not None:
            os.utime(tmp, (entry.mtime, entry.mtime))  # the copy keeps the drop's time: the file audit's modified_at
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return sha.hexdigest()


@dataclass
class _Voice:
    """A drop's log lines, any credential scrubbed out: warnings (retries, refusals), errors (what failed) and the
    one line per drop ``dcf run`` shows (tagged for its console, flows/nightly.py)."""

    logger: Any
    secret: str | dict[str, Any] | None = None

    def warning(self, text: str) -> None:
        self.logger.warning("%s", scrub(text, self.secret))

    def error(self, text: str) -> None:
        self.logger.error("%s", scrub(text, self.secret))

    def line(self, text: str) -> None:
        self.logger.info("%s", scrub(text, self.secret), extra={"dcf": "line"})


def fetch(src: SourceConfig, folder: Path, policy: RetryPolicy, logger: Any = _log) -> list[dict]:
    """Mirror one agency's drop into ``folder``: download new and changed files, remove those that left the drop.
    Returns the night's entries for what failed (status ``failed``) or was not read (status ``refused``); never
    raises for the drop's problems."""
    spec = src.remote
    assert spec is not None
    shown = spec.location.shown
    voice = _Voice(logger)
    try:
        voice.secret = credential_of(spec.credentials) if spec.credentials else None
        drop, listing = retry_io(
            lambda: _open_and_list(spec, voice.secret), f"{src.agency}: remote drop {shown}", policy, voice.warning
        )
    except RemoteProblem as exc:
        problem = str(exc)
    except FileNotFoundError:
        problem = "the drop folder does not exist there (or is not a folder); check the source's 'remote.url'"
    except OSError as exc:
        problem = f"not reachable ({describe_error(exc)}) after {policy.attempts} tries over {policy.total_wait:.1f} s"
    except Exception as exc:  # noqa: BLE001 - any other failure of one drop: that agency's problem, not the night's
        _log.debug("%s: remote drop %s failed", src.agency, shown, exc_info=True)
        problem = f"could not be read ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]})"
    else:
        try:
            return _mirror(src, drop, listing, folder, policy, voice)
        finally:
            drop.close()
    message = (
        f"remote drop {shown}: {problem}; {src.agency}'s files were not fetched this night (those fetched before "
        "stay as they were)"
    )
    return [_failed(src, shown, message, voice)]


def _open_and_list(spec: RemoteSpec, secret: str | dict[str, Any] | None) -> tuple[Any, Listing]:
    drop = _connect(spec, secret)
    try:
        return drop, drop.listing()
    except BaseException:
        drop.close()
        raise


def _mirror(
    src: SourceConfig, drop: Any, listing: Listing, folder: Path, policy: RetryPolicy, voice: _Voice
) -> list[dict]:
    loc = src.remote.location  # type: ignore[union-attr]
    record = read_manifest(folder)
    fetched: dict[str, dict] = dict(record.get("files", {}))
    known = fetched if record.get("location") == loc.shown else {}  # another drop: nothing it holds is known yet
    limit = Limits.from_env().max_file_bytes
    todo = plan(listing, known, {rel: _landed_size(folder / rel) for rel in known}, limit, set(fetched))
    entries = []
    for rel, reason in listing.refused:
        voice.warning(f"refused, not read: {src.agency}/{rel} ({loc.url_of(rel)}): {reason}")
        entries.append({"file": f"{src.agency}/{rel}", "status": "refused", "message": reason})
    for entry in todo.too_large:
        message = f"{loc.url_of(entry.rel)} is {entry.size} bytes, over DCF_MAX_FILE_BYTES ({limit}); not downloaded"
        entries.append(_failed(src, entry.rel, message, voice))
    folder.mkdir(parents=True, exist_ok=True)
    downloaded = 0
    for entry, why in todo.download:
        try:
            digest = retry_io(
                functools.partial(_land, drop, entry, folder, limit), f"{src.agency}/{entry.rel}", policy, voice.warning
            )
        except Exception as exc:  # noqa: BLE001 - one file: its entry says why; the copy fetched before stays
            problem = str(exc) if isinstance(exc, RemoteProblem) else describe_error(exc)
            message = f"{loc.url_of(entry.rel)} could not be downloaded ({problem}); it is tried again next night"
            entries.append(_failed(src, entry.rel, message, voice))
            continue
        downloaded += 1
        fetched[entry.rel] = {"token": entry.token, "size": entry.size, "sha256": digest, "why": why}
    for rel in todo.remove:
        if _landed_size(folder / rel) is not None:
            (folder / rel).unlink()
        fetched.pop(rel, None)
    _write_manifest(folder, loc.shown, fetched)
    voice.line(
        f"{src.agency}: remote drop {loc.shown}: {len(listing.entries)} file(s), {downloaded} downloaded, "
        f"{len(todo.remove)} removed (gone from the drop)"
    )
    return entries


def _failed(src: SourceConfig, name: str, message: str, voice: _Voice) -> dict:
    """The night's entry for a drop, or one of its files, that could not be fetched: counted as a failed file."""
    voice.error(message)
    return {"file": f"{src.agency}/{name}", "status": "failed", "message": scrub(message, voice.secret), **_NO_ROWS}


_NO_ROWS = {"rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0, "rows_skipped": 0}


# --- hooks for discovery and the flow --------------------------------------------------------------------------------


def fetch_drops(inbox: Path, sources: list[SourceConfig], policy: RetryPolicy, logger: Any = _log) -> list[dict]:
    """Mirror every remote source's drop into its inbox folder (``inbox/<inbox_dir>``); the night's failed and
    refused entries, for the run summary (flows/nightly_discover.py)."""
    entries: list[dict] = []
    for src in sources:
        if src.remote is not None:
            entries += fetch(src, inbox / src.inbox_dir, policy, logger)
    return entries


def drop_failures(entries: list[dict]) -> int:
    """How many of the night's entries are failures of remote drops (they count as failed files: exit 4)."""
    return sum(e.get("status") == "failed" for e in entries)


def origins(folder: Path, src: SourceConfig) -> dict[str, str]:
    """relative path -> remote location of every file the mirror fetched into ``folder`` (an agency's inbox folder),
    read from its record once per night at discovery ({} for an agency without a remote drop). Discovery puts the
    location on each file's task (``FileTask.origin``), so the record is never read again per file."""
    if src.remote is None:
        return {}
    return {rel: src.remote.location.url_of(rel) for rel in read_manifest(folder).get("files", {})}


def with_origin(batch: FileBatch, task: FileTask) -> FileBatch:
    """A batch of a file the mirror fetched, with its remote location (``task.origin``, set at discovery) as the path
    the file audit records; any other batch (a file dropped by hand, one read from the raw archive) as it is."""
    return replace(batch, path=task.origin) if task.origin else batch

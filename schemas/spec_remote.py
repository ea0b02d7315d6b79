"""Where an agency's files wait when it does not drop them into the local inbox: an SFTP server, an object store or
another folder (``remote:`` in its source YAML). The YAML holds the location and the *name* of a credential, never
the credential: that comes from an environment variable or a Prefect Secret block when the night connects
(flows/remote.py), as a workbook password does (``PasswordSpec``).

Pure (no fsspec, no paramiko): ``dcf status`` and the config checks validate a source without importing them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from schemas.spec_base import SecretRef, _Strict

#: the protocols a drop may use: sftp (fsspec's SFTP file system, over paramiko), the object stores through their
#: fsspec implementations (s3 needs s3fs, gs gcsfs, az adlfs, installed where used), a folder on this machine
#: (file), and fsspec's in-process memory file system (tests)
PROTOCOLS = ("sftp", "s3", "gs", "az", "file", "memory")
#: other spellings fsspec knows for the same protocols
ALIASES = {"ssh": "sftp", "s3a": "s3", "gcs": "gs", "abfs": "az", "abfss": "az"}
SFTP_PORT = 22
OBJECT_STORES = ("s3", "gs", "az")
_EXAMPLES = "sftp://user@host[:port]/folder/, s3://bucket/folder/, or an absolute local path"


@dataclass(frozen=True)
class Location:
    """A drop folder: ``path`` is absolute for sftp and file, ``bucket/prefix`` for object stores (no slash at
    either end, except the root folder ``/``)."""

    protocol: str
    path: str
    host: str | None = None
    port: int | None = None
    user: str | None = None

    @property
    def shown(self) -> str:
        """The location as a person reads it and as lineage records it (never a credential), ending in ``/``."""
        if self.protocol == "sftp":
            host = f"[{self.host}]" if self.host and ":" in self.host else self.host
            return f"sftp://{self.user}@{host}:{self.port}{self.path.rstrip('/')}/"
        if self.protocol == "file":
            return f"{self.path.rstrip('/')}/"
        return f"{self.protocol}://{self.path}/"

    def url_of(self, relative: str) -> str:
        """Where one file of the drop lies (``relative``: its path under the drop folder)."""
        return self.shown + relative


def parse_location(text: str) -> Location:
    """A drop location from the YAML; ValueError with a sentence saying what is wrong and how it is written."""
    text = text.strip()
    if not text:
        raise ValueError(f"the drop location is empty; write {_EXAMPLES}")
    if text.startswith(("/", "~")):
        return Location("file", _clean(os.path.expanduser(text), absolute=True))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if not scheme or "://" not in text:
        raise ValueError(f"'{text}' is neither a URL nor an absolute local path; write {_EXAMPLES}")
    protocol = ALIASES.get(scheme, scheme)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol '{scheme}' is not supported; use sftp, s3, gs, az or file (or a local path)")
    if parts.query or parts.fragment:
        raise ValueError("a drop location has no query or fragment ('?' or '#')")
    if parts.password is not None:
        raise ValueError(
            "a password never sits in the YAML: remove it from the URL and name where it is kept in "
            "'credentials' ({env: VARIABLE} or {secret: block-name})"
        )
    if protocol == "sftp":
        if not parts.hostname:
            raise ValueError("an sftp location names its host: sftp://user@host[:port]/folder/")
        if not parts.username:
            raise ValueError("an sftp location names the user to log in as: sftp://user@host[:port]/folder/")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0 or (port is None and parts.netloc.endswith(":")):
            raise ValueError(f"the port in '{text}' is not a number from 1 to 65535")
        return Location(
            "sftp", _clean(parts.path, absolute=True), parts.hostname, port or SFTP_PORT, unquote(parts.username)
        )
    if parts.username is not None:
        raise ValueError(f"a {protocol} location names no user; credentials go in 'credentials'")
    if protocol == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError("a file:// location is a folder on this machine: file:///folder/")
        return Location("file", _clean(parts.path, absolute=True))
    if not parts.netloc:
        raise ValueError(f"a {protocol} location names its bucket: {protocol}://bucket/folder/")
    return Location(protocol, _clean(parts.netloc + parts.path, absolute=False))


def _clean(path: str, absolute: bool) -> str:
    """The folder without empty or '.' steps; '..' is refused (a drop names its folder, never a way out of it)."""
    if absolute and not path.startswith("/"):
        raise ValueError(f"the folder '{path or '(none)'}' must be an absolute path (starting with '/')")
    steps = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in steps:
        raise ValueError(f"the folder '{path}' may not contain '..'")
    return "/" + "/".join(steps) if absolute else "/".join(steps)


class RemoteCredentials(SecretRef):
    """Where the credential of a drop comes from (an environment variable or a Prefect Secret block) and what it
    holds: the path of a private key file (``key_file``, the default), a private key itself (``key``, e.g. the
    text of a Secret block), a ``password``, or ``options``: a JSON object of fsspec storage options (an object
    store's key and secret)."""

    INLINE: ClassVar[str] = (
        "credentials never sit in the YAML: write {env: VARIABLE} (an environment variable holding them) "
        "or {secret: block-name} (a Prefect Secret block)"
    )

    holds: Literal["key_file", "key", "password", "options"] = "key_file"


class RemoteSpec(_Strict):
    """``remote:`` in a source YAML: the agency's drop, mirrored into its inbox folder before each night's
    discovery (flows/remote.py). A bare string is the URL."""

    url: str = Field(description=f"the drop folder: {_EXAMPLES}")
    credentials: RemoteCredentials | None = None
    #: sftp: the known_hosts file that must list the server's host key (default ~/.ssh/known_hosts)
    known_hosts: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="connect and read timeout, seconds")

    @model_validator(mode="before")
    @classmethod
    def _bare_url(cls, value: object) -> object:
        return {"url": value} if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_location(value)
        return value.strip()

    @model_validator(mode="after")
    def _fits_protocol(self) -> RemoteSpec:
        protocol = self.location.protocol
        holds = self.credentials.holds if self.credentials else None
        if protocol == "sftp" and holds is None:
            raise ValueError(
                "an sftp drop needs 'credentials': {env: VARIABLE} naming a private key file (holds: key_file, the "
                "default), or with holds: key (the key itself) or holds: password"
            )
        if protocol == "sftp" and holds == "options":
            raise ValueError("an sftp drop's credentials hold key_file, key or password, not options")
        if protocol in OBJECT_STORES and holds not in (None, "options"):
            raise ValueError(f"a {protocol} drop's credentials hold 'options' (a JSON object of storage options)")
        if protocol in ("file", "memory") and holds is not None:
            raise ValueError("a folder on this machine takes no credentials")
        if self.known_hosts is not None and protocol != "sftp":
            raise ValueError("known_hosts is for sftp drops only")
        return self

    @property
    def location(self) -> Location:
        return parse_location(self.url)

    @property
    def known_hosts_file(self) -> Path:
        return Path(self.known_hosts or "~/.ssh/known_hosts").expanduser()

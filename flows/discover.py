"""Which inbox entries may be read: regular files whose real path lies inside the agency's inbox folder.

Everything else is refused and reported, never opened: links that leave the folder (a link to /etc/passwd or to a
CSV elsewhere on the machine), dangling links, link loops, links to folders (not followed), FIFOs (opening one
blocks), devices, sockets, and sub-folders that cannot be listed. The walk uses ``lstat`` and never follows a link
to a folder, so a loop of links cannot make it run forever.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from flows.names import shown
from flows.retry import describe_error

if TYPE_CHECKING:  # not imported at run time: dcf status's inbox check must not build the pydantic models
    from schemas.outline import SourceOutline
    from schemas.sources import SourceConfig

IGNORED_PREFIXES = ("~$", ".", "MANIFEST")

Found = tuple[Path, "SourceConfig"]
Refused = tuple[Path, "SourceConfig", str]  # the entry, the agency whose folder holds it, why it is not read


def scan_inbox(inbox: Path, sources: list[SourceConfig]) -> tuple[list[Found], list[Refused]]:
    """(files to read, entries refused with a reason), each sorted by path, agency by agency."""
    found: list[Found] = []
    refused: list[Refused] = []
    for src in sources:
        folder = inbox / src.inbox_dir
        if not folder.is_dir():
            continue
        files, odd = _walk(folder, os.path.realpath(folder))
        found += [(path, src) for path in sorted(files)]
        refused += [(path, src, reason) for path, reason in sorted(odd)]
    return found, refused


def inbox_warnings(inbox: Path, sources: Sequence[SourceConfig] | Sequence[SourceOutline]) -> list[str]:
    """What in the inbox's top level no source reads, one sentence each naming the real path and the folder expected:
    a folder whose name matches an agency's ``inbox_dir`` only when letter case is ignored (``MOD/`` for ``mod``), a
    folder no source names at all, a file of an agency's pattern lying outside its folder, and an inbox that holds no
    agency folder but is itself named like one (``--inbox data/inbox/mod``: one level too deep). A correct inbox
    gives none. Names starting with ~$, . or MANIFEST are ignored here as everywhere in the inbox."""
    try:
        with os.scandir(inbox) as it:
            entries = sorted((e for e in it if not e.name.startswith(IGNORED_PREFIXES)), key=lambda e: e.name)
    except OSError:
        return []  # an inbox that cannot be listed fails the run elsewhere, with its own message
    if not sources:
        return []
    by_dir = {src.inbox_dir.split("/")[0]: src for src in sources}
    by_folded = {name.casefold(): src for name, src in reversed(by_dir.items())}
    expected = ", ".join(f"{name}/" for name in sorted(by_dir))
    folders = [e for e in entries if _is_dir(e)]
    warnings: list[str] = []
    for entry in folders:
        if entry.name in by_dir:
            continue
        real = shown(str(inbox / entry.name))
        src = by_folded.get(entry.name.casefold())
        if src is not None:
            warnings.append(
                f"inbox folder {real} is not read: agency {src.agency} expects '{src.inbox_dir}' (inbox_dir of its "
                f"source; letter case counts), so its files belong in {shown(str(inbox / src.inbox_dir))}"
            )
        else:
            warnings.append(
                f"inbox folder {real} matches no source and is not read; the agency folders are {expected} "
                "(inbox_dir in the source YAMLs)"
            )
    strays: dict[str, list[str]] = {}
    for entry in entries:
        if not _is_dir(entry):
            for src in sources:
                if src.spec_for(entry.name) is not None:
                    strays.setdefault(src.agency, []).append(entry.name)
                    break
    has_agency_folder = any(e.name in by_dir for e in folders)
    own = by_folded.get(inbox.name.casefold())
    if not has_agency_folder and own is not None:
        warnings.append(
            f"inbox {shown(str(inbox))} holds no agency folder but is named like agency {own.agency}'s own folder "
            f"('{own.inbox_dir}'): one level too deep? The inbox is the folder holding {expected} "
            f"(here probably {shown(str(inbox.parent))})"
        )
    else:
        for agency, names in strays.items():
            src = next(s for s in sources if s.agency == agency)
            warnings.append(
                f"{len(names)} file(s) of agency {agency} lie directly in the inbox {shown(str(inbox))} (e.g. "
                f"{shown(names[0])}) and are not read: they belong in {shown(str(inbox / src.inbox_dir))}"
            )
    return warnings


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a link, as scan_inbox does for an agency folder
    except OSError:
        return False


def find_files(inbox: Path, sources: list[SourceConfig]) -> list[Found]:
    """Every regular file in each agency's inbox folder (recursively), sorted; Office lock files and dot-files
    ignored; links are read only when they point at a regular file inside the same agency folder."""
    return scan_inbox(inbox, sources)[0]


def refused_entries(inbox: Path, sources: list[SourceConfig]) -> list[Refused]:
    """The inbox entries :func:`find_files` leaves out on purpose, each with the reason, for the run summary."""
    return scan_inbox(inbox, sources)[1]


def _walk(folder: Path, root: str) -> tuple[list[Path], list[tuple[Path, str]]]:
    files: list[Path] = []
    refused: list[tuple[Path, str]] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except OSError as exc:
            refused.append((current, f"folder cannot be listed ({describe_error(exc)}); its files are not read"))
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue  # gone while listing
            except OSError as exc:
                refused.append((path, f"cannot be examined ({describe_error(exc)})"))
                continue
            if stat.S_ISDIR(mode):
                pending.append(path)
            elif entry.name.startswith(IGNORED_PREFIXES):
                continue
            elif stat.S_ISREG(mode):
                files.append(path)
            else:
                reason = (
                    _link_problem(path, root) if stat.S_ISLNK(mode) else f"not a regular file ({_kind(mode)}); not read"
                )
                if reason is None:
                    files.append(path)
                else:
                    refused.append((path, reason))
    return files, refused


def _link_problem(path: Path, root: str) -> str | None:
    """Why a symbolic link may not be read, or None for a link to a regular file inside the agency folder."""
    try:
        target = os.stat(path)  # follows the link (and any chain of links)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop; not read"
        if exc.errno == errno.ENOENT:
            return "dangling symbolic link (its target does not exist); not read"
        return f"symbolic link whose target cannot be examined ({describe_error(exc)}); not read"
    real = os.path.realpath(path)
    if os.path.commonpath([real, root]) != root:
        return "symbolic link that leads outside the agency's inbox folder; not read (copy the file in instead)"
    if stat.S_ISDIR(target.st_mode):
        return "symbolic link to a folder; not followed (its files are read where they are)"
    if not stat.S_ISREG(target.st_mode):
        return f"symbolic link to something that is not a regular file ({_kind(target.st_mode)}); not read"
    return None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISLNK, "a link"),
    ):
        if test(mode):
            return name
    return f"mode {stat.filemode(mode)}"


def describe_refused(refused: Refused, inbox: Path) -> str:
    """One line for a run summary: ``AGENCY/relative/name: reason`` (the name shown safely)."""
    path, src, reason = refused
    try:
        rel = path.relative_to(inbox / src.inbox_dir).as_posix()
    except ValueError:
        rel = path.name
    return f"{src.agency}/{shown(rel)}: {reason}"

"""The few keys of the source YAMLs that say which inbox entries belong to whom (agency, folder, file patterns), read
without validating the rest: for ``dcf status``'s inbox check, which must answer in well under a second and so cannot
build the pydantic models of :mod:`schemas.sources` (that costs more than the whole query). ``dcf run`` always loads
and validates the full configs; a YAML this reader cannot make sense of gives no outline, never a guess."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import NamedTuple

import yaml

#: libyaml's safe loader where PyYAML was built with it (the same results as yaml.safe_load, about ten times faster)
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def first_match(patterns: list[str] | tuple[str, ...], name: str) -> int | None:
    """Index of the first glob pattern matching a file name, or None: a file belongs to its source's first matching
    file spec (:meth:`schemas.sources.SourceConfig.spec_for` and :class:`SourceOutline` share this rule)."""
    for i, pattern in enumerate(patterns):
        if fnmatch(name, pattern):
            return i
    return None


class SourceOutline(NamedTuple):
    agency: str
    inbox_dir: str
    patterns: tuple[str, ...]

    def spec_for(self, relative_name: str) -> int | None:
        """The index of the file spec a name belongs to, or None (the same rule as SourceConfig.spec_for)."""
        return first_match(self.patterns, relative_name)


def read_outlines(directory: Path) -> list[SourceOutline]:
    """One outline per ``*.yaml`` in the folder, sorted by agency. Raises ValueError (or OSError) for a YAML whose
    agency, inbox_dir or file patterns cannot be read: the caller then says nothing rather than guess."""
    outlines = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: cannot read YAML: {exc}") from None
        files = raw.get("files") if isinstance(raw, dict) else None
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise ValueError(f"{path}: no list of files")
        agency, folder = raw.get("agency"), raw.get("inbox_dir")
        patterns = tuple(f.get("pattern") for f in files)
        if not isinstance(agency, str) or not isinstance(folder, str) or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"{path}: agency, inbox_dir or a file pattern is not text")
        outlines.append(SourceOutline(agency, folder, patterns))
    return sorted(outlines, key=lambda o: o.agency)

"""The benchmark's data: a synthetic corpus of budget workbooks (``samples.generate_corpus``, seed 7) in a work
directory that is a temporary one unless ``--workdir`` names one."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

SEED = 7
WORK_NAMES = ("inbox", "flow.duckdb", "memory.duckdb", "raw.duckdb", "naive.duckdb")


@dataclass
class Corpus:
    inbox: Path
    files: list[dict]  # MANIFEST.json "files" entries

    @property
    def lines(self) -> int:
        return sum(f["lines"] for f in self.files)

    @property
    def data_rows(self) -> int:
        return sum(f["data_rows"] for f in self.files)

    @property
    def skipped_rows(self) -> int:
        return sum(f["blank_rows"] + f["totals_rows"] for f in self.files)

    @property
    def size_bytes(self) -> int:
        return sum((self.inbox / f["path"]).stat().st_size for f in self.files)

    def path(self, entry: dict) -> Path:
        return self.inbox / entry["path"]


def prepare_workdir(workdir: Path | None) -> tuple[Path, bool]:
    """The work directory and whether it is a temporary one to delete at the end.

    A given --workdir is kept, but what a previous run left in it is cleared.
    """
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="dcf-bench-")), True
    workdir.mkdir(parents=True, exist_ok=True)
    for name in WORK_NAMES:
        for path in workdir.glob(f"{name}*"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    return workdir, False


def generate(inbox: Path, lines: int, n_files: int) -> Corpus:
    from samples import generate_corpus

    manifest = generate_corpus(inbox, total_lines=lines, n_files=n_files, seed=SEED)
    return Corpus(inbox, manifest["files"])

"""Where things live. Defaults under the project's data/ folder; each path overridable by flag or environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

ENV = {
    "inbox": "DCF_INBOX",
    "warehouse": "DCF_WAREHOUSE",
    "sources": "DCF_SOURCES",
    "reference": "DCF_REFERENCE",
    "archive": "DCF_ARCHIVE",
}


@dataclass(frozen=True)
class Settings:
    inbox: Path
    warehouse: Path
    sources: Path
    reference: Path
    archive: Path  # the raw archive: every received file, content-addressed (flows/archive.py)

    @classmethod
    def resolve(cls, **overrides: str | Path | None) -> Settings:
        """Flag (override) > environment variable > default under the project root."""
        defaults = {
            "inbox": PROJECT_ROOT / "data" / "inbox",
            "warehouse": PROJECT_ROOT / "data" / "warehouse.duckdb",
            "sources": PROJECT_ROOT / "sources",
            "reference": PROJECT_ROOT / "reference",
        }
        values = {}
        for key, default in defaults.items():
            chosen = overrides.get(key) or os.environ.get(ENV[key]) or default
            values[key] = Path(chosen).expanduser().resolve()
        archive = overrides.get("archive") or os.environ.get(ENV["archive"])
        values["archive"] = (
            Path(archive).expanduser().resolve()
            if archive
            else values["warehouse"].with_name(values["warehouse"].name + ".archive")
        )
        return cls(**values)

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


#: the warehouse's encryption key (docs/adr/0010): the key itself in an environment variable, or the name of a
#: Prefect Secret block holding it; never in a file of the project, a flag (shells keep history) or a message
KEY_ENV = "DCF_WAREHOUSE_KEY"
KEY_SECRET_ENV = "DCF_WAREHOUSE_KEY_SECRET"
KEY_MIN_LENGTH = 16


@dataclass(frozen=True)
class KeySetting:
    """Where the warehouse key comes from: ``env`` (an environment variable holding the key) or ``secret`` (a
    Prefect Secret block's name). Holds the place, never the key."""

    env: str | None = None
    secret: str | None = None

    @property
    def setting(self) -> str:
        """The setting to fix, in words (never the key)."""
        return f"environment variable {self.env}" if self.env else f"Prefect Secret block '{self.secret}'"


def key_setting() -> KeySetting | None:
    """The configured key's place, None when encryption is off (neither variable set). Both set is a configuration
    error (ValueError naming the two variables): which one wins must never be a guess."""
    env, secret = os.environ.get(KEY_ENV), os.environ.get(KEY_SECRET_ENV)
    if env is not None and secret is not None:
        raise ValueError(f"set {KEY_ENV} (the key) or {KEY_SECRET_ENV} (a Prefect Secret block holding it), not both")
    if secret is not None:
        return KeySetting(secret=secret.strip())
    return KeySetting(env=KEY_ENV) if env is not None else None

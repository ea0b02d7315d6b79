"""Real public data lives in ../shared/realdata (never copied into this repository); skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not (REALDATA / "MANIFEST.md").exists():
        pytest.skip(f"real data not available at {REALDATA} (it sits beside the repository on the team's machines)")
    return REALDATA

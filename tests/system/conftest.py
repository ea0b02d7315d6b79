from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """One temporary Prefect API for the whole session (it takes seconds to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def sample_warehouse(sample_inbox, tmp_path_factory, prefect_harness) -> Path:
    """The sample inbox through the nightly flow once per session: a published warehouse that tests only read
    (copy it before loading into it)."""
    from flows.nightly import run_nightly

    inbox, _ = sample_inbox
    wh = tmp_path_factory.mktemp("sample-warehouse") / "warehouse.duckdb"
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    return wh

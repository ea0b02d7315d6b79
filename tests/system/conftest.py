from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """One temporary Prefect API for the whole session (it takes seconds to start, minutes on a busy machine).

    Its URL is also exported, so a ``dcf`` started by a test uses it instead of starting a server of its own (tens
    of seconds each under load). The tests that prove ``dcf`` starts and stops its own server
    (test_prefect_local.py) and the fault trial remove it from their children's environment."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=600):
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous


@pytest.fixture(scope="session")
def sample_warehouse(sample_inbox, tmp_path_factory, prefect_harness) -> Path:
    """The sample inbox through the nightly flow once per session: a published warehouse that tests only read
    (copy it before loading into it)."""
    from flows.nightly import run_nightly

    inbox, _ = sample_inbox
    wh = tmp_path_factory.mktemp("sample-warehouse") / "warehouse.duckdb"
    assert run_nightly(inbox=str(inbox), warehouse=str(wh)).outcome == "success"
    return wh

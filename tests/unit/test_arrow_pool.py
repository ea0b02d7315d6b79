"""Arrow allocates from jemalloc in every process that processes or stores files (warehouse/memory.py): with
pyarrow's default mimalloc the worst legal sheet's run peaked over the 1 GiB bound (BENCHMARKS.md, "Worst legal
sheet"). A pool the user chooses with ARROW_DEFAULT_MEMORY_POOL is kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import pyarrow as pa; import flows.process; print(pa.default_memory_pool().backend_name)"


def _pool(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if env_value is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = env_value
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_processing_files_allocates_arrow_from_jemalloc():
    assert _pool(None) == "jemalloc"


@pytest.mark.parametrize("chosen", ["system", "mimalloc"])
def test_a_pool_the_user_chooses_is_kept(chosen):
    assert _pool(chosen) == chosen

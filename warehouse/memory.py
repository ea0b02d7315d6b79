"""Memory a finished file's work freed goes back to the operating system (issue 17, point 8).

A large file's transient frames are freed when its work ends, but the allocators keep the pages for later use:
Arrow's pool (then mimalloc) per thread, and glibc's malloc arenas. Measured on a 1,048,575-row sheet whose every row
fails, just after ``process_file``: 1,193 MiB resident, of which 303 MiB were live Arrow buffers; returning glibc's
free pages took it to 964 MiB and Arrow's to 682 MiB, each in under a millisecond. Without this, the next phase
(storing the file, under DuckDB's own bound) starts from the high-water mark of the previous one.

Arrow allocates from jemalloc, not from pyarrow's default mimalloc (:func:`use_jemalloc`, on importing this module,
which every path that processes or stores a file does): the same whole-sheet-failing workbook's ``dcf run`` peaked
at 1,066,096-1,098,112 KiB with mimalloc (10 runs, 2026-12-03, 2-core AMD EPYC), over the 1 GiB bound, and at
987,448-1,013,112 KiB with jemalloc (6 runs); a 1M-line night took 6.40-6.81 s against 6.69-7.17 s (4 runs each).
``ARROW_DEFAULT_MEMORY_POOL`` set by the user is left as it is."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import pyarrow as pa


def _malloc_trim():  # glibc only; elsewhere nothing to call
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()

POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def use_jemalloc() -> str:
    """Make jemalloc Arrow's default pool, unless ``ARROW_DEFAULT_MEMORY_POOL`` chooses one or this pyarrow was
    built without it; returns the pool's backend now in use. Buffers already allocated keep their own pool."""
    if not os.environ.get(POOL_ENV):
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except NotImplementedError:  # a pyarrow built without jemalloc: its default stays
            pass
    return pa.default_memory_pool().backend_name


use_jemalloc()


def give_back() -> None:
    """Return the free pages of Arrow's pool (the calling thread's, and abandoned ones) and of glibc's heap. Never
    raises: it only saves memory, and it runs where a file's outcome must not be lost (process_file's ``finally``)."""
    try:
        pa.default_memory_pool().release_unused()
        if _TRIM is not None:
            _TRIM(0)
    except Exception:  # noqa: BLE001 - saving memory is never worth an error
        pass

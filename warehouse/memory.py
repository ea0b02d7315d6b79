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
``ARROW_DEFAULT_MEMORY_POOL`` set by the user is left as it is.

glibc's free pages go back only when its arenas hold more than :data:`KEEP_FREE` free and, since the last trim, the
process has grown or glibc's memory in use has shrunk by more than that (issue 15, :func:`give_back`): returning
them after every file of a 1M-line night (10 workbooks of 100,000 lines, 30-56 MiB free each time) made the next
file fault the same pages in again, about 300,000 page faults per 10 files against 100,000, and 0.3-0.5 CPU-s of
the night's ~7 CPU-s of file work (one thread, 2026-12-03, 2-core AMD EPYC) for 20-30 MiB less peak. A large
sheet's hundreds of MiB still go back at once."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

import pyarrow as pa


def _malloc_trim():  # glibc only; elsewhere nothing to call
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()

#: glibc's free bytes kept for the next file's work instead of returned (:func:`give_back`)
KEEP_FREE = 64 << 20


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo2():  # glibc 2.33 or newer; elsewhere nothing to call
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).mallinfo2 if name else None
    except (OSError, AttributeError):
        return None
    if function is not None:
        function.restype = _MallInfo2
    return function


_MALLINFO2 = _mallinfo2()


def free_bytes() -> int | None:
    """Bytes glibc's arenas hold free (every arena, the top of each heap included); None where glibc cannot say."""
    counts = _glibc_counts()
    return None if counts is None else counts[0]


def _glibc_counts() -> tuple[int, int] | None:
    """(bytes free, bytes in use) in glibc's arenas; None where glibc cannot say."""
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    return int(info.fordblks), int(info.uordblks)


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


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """The process's resident memory (Linux ``/proc/self/statm``); None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


_trim_lock = threading.Lock()
#: (resident bytes, glibc's bytes in use) just after the last trim; zeros before the first
_at_trim = (0, 0)


def give_back(keep_free: int = KEEP_FREE) -> None:
    """Return the free pages of Arrow's pool (the calling thread's, and abandoned ones), and those of glibc's heap when
    it may hold more than ``keep_free`` bytes of them in memory: glibc holds more than that free, and since the last
    trim either the process has grown by more than that (pages faulted in and freed again) or glibc's memory in use
    has shrunk by more than that (memory live at the last trim and freed since). glibc's count of free bytes alone
    would not do: it keeps counting the pages a trim returned, so once a large file had been freed every call would
    trim and the next file would fault its pages in again. Where glibc or the system cannot say, it trims. Never
    raises: it only saves memory, and it runs where a file's outcome must not be lost (process_file's ``finally``)."""
    global _at_trim
    try:
        pa.default_memory_pool().release_unused()
        if _TRIM is None:
            return
        with _trim_lock:
            counts, resident = _glibc_counts(), resident_bytes()
            if counts is not None and resident is not None:
                free, used = counts
                grown, shrunk = resident - _at_trim[0], _at_trim[1] - used
                if free <= keep_free or (grown <= keep_free and shrunk <= keep_free):
                    return
            _TRIM(0)
            after = _glibc_counts()
            _at_trim = (resident_bytes() or 0, after[1] if after is not None else 0)
    except Exception:  # noqa: BLE001 - saving memory is never worth an error
        pass

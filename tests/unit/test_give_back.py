"""glibc's free pages go back to the system only when there are many of them (warehouse/memory.py ``give_back``):
a 100k-line file frees 30-56 MiB, which the next file would fault in again; a large sheet frees hundreds of MiB,
which must go back before the next phase. Each case runs in a fresh interpreter, so that the heap holds only what
it sets up: blocks allocated with glibc's malloc and freed, with one block kept after them so that glibc does not
trim them itself (free memory at the top of the heap is returned at once; in the middle it stays until trimmed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import ctypes, sys
from warehouse import memory

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]


def resident():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS"))


freed = int(sys.argv[1]) << 20
blocks = [libc.malloc(64 << 10) for _ in range(freed // (64 << 10))]  # under the mmap threshold: in the heap
for block in blocks:
    ctypes.memset(block, 1, 64 << 10)  # touched: resident
fence = libc.malloc(64 << 10)  # keeps the freed blocks off the heap's top, where free() would trim them
for block in blocks:
    libc.free(block)
free = memory.free_bytes()
before = resident()
memory.give_back(*(int(a) for a in sys.argv[2:]))  # keep_free, if given
print(free, before - resident())
"""


def _give_back_after_freeing(mib: int, *keep_free: int) -> tuple[int, int]:
    """(glibc's free bytes before ``give_back``, resident bytes it returned) after ``mib`` MiB were freed."""
    argv = [sys.executable, "-c", PROBE, str(mib), *map(str, keep_free)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    free, returned = done.stdout.split()
    return int(free), int(returned)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_few_free_mib_are_kept_for_the_next_file():
    free, returned = _give_back_after_freeing(32)
    assert 32 << 20 <= free <= (48 << 20)  # the 32 MiB freed, and what the interpreter's start left free
    assert returned < 4 << 20  # kept: the next file's work reuses the pages without faulting them in


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_many_free_mib_go_back_to_the_system():
    free, returned = _give_back_after_freeing(256)
    assert free >= 256 << 20
    assert returned >= 200 << 20  # the freed blocks' pages, returned by malloc_trim


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_keeping_nothing_returns_even_a_few_free_mib():
    free, returned = _give_back_after_freeing(32, 0)
    assert free >= 32 << 20
    assert returned >= 24 << 20

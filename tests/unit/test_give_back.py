"""glibc's free pages go back to the system only when there are many of them (warehouse/memory.py ``give_back``):
a 100k-line file frees 30-56 MiB, which the next file would fault in again; a large sheet frees hundreds of MiB,
which must go back before the next phase. Pages a trim returned stay counted as free by glibc, so after one large
file the next small ones must still keep theirs.

Each case runs in a fresh interpreter, so that the heap holds only what it sets up: per step, blocks allocated with
glibc's malloc, touched and freed, with one block kept after them so that glibc does not trim them itself (free
memory at the top of the heap is returned at once; in the middle it stays until trimmed), then ``give_back``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import ctypes, json, sys
from warehouse import memory

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
BLOCK = 64 << 10  # under glibc's mmap threshold: in the heap


def resident():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS"))


keep = [int(a) for a in sys.argv[2:]]  # keep_free, if given
held, fences, out = {}, [], []
for op in json.loads(sys.argv[1]):
    if op[0] == "alloc":  # ["alloc", name, MiB]: touched, so resident
        held[op[1]] = [libc.malloc(BLOCK) for _ in range((op[2] << 20) // BLOCK)]
        for block in held[op[1]]:
            ctypes.memset(block, 1, BLOCK)
        fences.append(libc.malloc(BLOCK))  # keeps freed blocks off the heap's top, where free() would trim them
    elif op[0] == "free":  # ["free", name]
        for block in held.pop(op[1]):
            libc.free(block)
    else:  # ["give"]: glibc's free bytes before, and the resident bytes give_back returned
        free, before = memory.free_bytes(), resident()
        memory.give_back(*keep)
        out.append([free, before - resident()])
print(json.dumps(out))
"""

MiB = 1 << 20
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")


def _run(ops: list, *keep_free: int) -> list[tuple[int, int]]:
    """Per ``give`` among ``ops``: (glibc's free bytes before ``give_back``, resident bytes it returned)."""
    argv = [sys.executable, "-c", PROBE, json.dumps(ops), *map(str, keep_free)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return [(int(free), int(returned)) for free, returned in json.loads(done.stdout)]


def _give_back_after_freeing(steps: list[int], *keep_free: int) -> list[tuple[int, int]]:
    """Per step: freeing that many MiB (allocated and touched first), then ``give_back``."""
    ops: list = []
    for i, mib in enumerate(steps):
        ops += [["alloc", str(i), mib], ["free", str(i)], ["give"]]
    return _run(ops, *keep_free)


@linux
def test_a_few_free_mib_are_kept_for_the_next_file():
    [(free, returned)] = _give_back_after_freeing([32])
    assert 32 * MiB <= free <= 48 * MiB  # the 32 MiB freed, and what the interpreter's start left free
    assert returned < 4 * MiB  # kept: the next file's work reuses the pages without faulting them in


@linux
def test_many_free_mib_go_back_to_the_system():
    [(free, returned)] = _give_back_after_freeing([256])
    assert free >= 256 * MiB
    assert returned >= 200 * MiB  # the freed blocks' pages, returned by malloc_trim


@linux
def test_after_a_large_file_the_small_ones_keep_theirs_and_the_next_large_one_goes_back():
    steps = _give_back_after_freeing([256, 32, 32, 32, 160])
    (free, returned), smalls, (_, last) = steps[0], steps[1:4], steps[4]
    assert free >= 256 * MiB and returned >= 200 * MiB
    for free_after, kept in smalls:
        assert free_after >= 256 * MiB  # glibc still counts the returned pages as free: not a reason to trim
        assert kept < 4 * MiB
    assert last >= 96 * MiB  # grown by 160 MiB since the last trim: back


@linux
def test_memory_in_use_at_a_trim_and_freed_after_it_goes_back():
    ops = [["alloc", "live", 256], ["alloc", "a", 128], ["free", "a"], ["give"], ["free", "live"], ["give"]]
    (_, first), (_, second) = _run(ops)
    assert first >= 96 * MiB  # the 128 MiB freed first
    assert second >= 200 * MiB  # the 256 MiB live at that trim: the process did not grow, glibc's use shrank


@linux
def test_keeping_nothing_returns_even_a_few_free_mib():
    [(free, returned)] = _give_back_after_freeing([32], 0)
    assert free >= 32 * MiB
    assert returned >= 24 * MiB

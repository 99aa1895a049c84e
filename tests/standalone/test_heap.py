"""The runner hands freed heap back to the system (glibc's malloc_trim), and does nothing
where the C library has no such function."""

from __future__ import annotations

import asyncio
import ctypes
import platform
import random
from pathlib import Path

import pytest
from fleet_metrics import heap


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_trim_returns_freed_heap_that_glibc_kept() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    trim = heap.heap_trimmer()
    assert trim is not None
    trim()
    rng = random.Random(7)
    # Frames of a few kB freed while long-lived objects sit between them: glibc keeps the
    # freed chunks (they are below its mmap threshold and not at the heap's top).
    frames, pinned = [], []
    for index in range(20_000):
        frames.append(bytes(rng.randint(2_000, 14_000)))
        if index % 40 == 0:
            pinned.append(bytearray(1_000))
    before = _rss_mb()
    del frames
    kept = _rss_mb()
    trim()
    after = _rss_mb()
    assert kept > before - 20  # freed, but still resident
    assert after < kept - 60  # ~160 MB were freed; most of it goes back
    assert len(pinned) == 500


async def test_without_malloc_trim_the_task_ends_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    class _NoTrim:  # a C library without malloc_trim (musl, macOS)
        def __init__(self, name: object) -> None: ...

    monkeypatch.setattr(ctypes, "CDLL", _NoTrim)
    assert heap.heap_trimmer() is None
    await asyncio.wait_for(heap.trim_forever(0.01), 1)

"""Hand freed heap memory back to the system now and then.

glibc keeps what the process frees for its own reuse: after a burst (a large ``/metrics``
render, agents' frames queued while the outputs were slow) the runner's resident size stays
at its peak although the memory is free (a 1,000-host bench ended at 225 MB, of which about
70 MB were free heap). ``malloc_trim(0)`` returns the free pages; it is glibc's, so elsewhere
(musl, macOS) this does nothing. Python has no API for it, hence ``ctypes``.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import time
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

TRIM_INTERVAL = 5.0  # a trim of ~100 MB of free heap takes a few ms


def heap_trimmer() -> Callable[[], int] | None:
    """A function that trims the C heap, or None where the C library has no ``malloc_trim``."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: no ldconfig run to find libc
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


async def trim_forever(interval: float = TRIM_INTERVAL) -> None:
    """Trim every ``interval`` seconds; returns at once where there is nothing to call."""
    trim = heap_trimmer()
    if trim is None:
        _LOGGER.debug("no malloc_trim in this C library: freed memory stays with the process")
        return
    while True:
        await asyncio.sleep(interval)
        started = time.perf_counter()
        trim()
        _LOGGER.debug("heap trimmed in %.1f ms", 1000 * (time.perf_counter() - started))

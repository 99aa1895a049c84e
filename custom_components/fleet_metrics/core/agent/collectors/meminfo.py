"""Memory and swap (fast tier).

``used`` is psutil's (total - free - buffers - cached on Linux, what ``free`` prints), so the
server can show a used % without knowing the platform's bookkeeping.
"""

from __future__ import annotations

from typing import Any, Final

import psutil

from ...sample import Sample
from .base import Collector

_MEMORY: Final = (
    ("total_bytes", "total"),
    ("available_bytes", "available"),
    ("used_bytes", "used"),
    ("free_bytes", "free"),
    ("buffers_bytes", "buffers"),  # Linux and BSD only
    ("cached_bytes", "cached"),
)
_SWAP_COUNTERS: Final = frozenset({"sin_bytes", "sout_bytes"})


def memory_sample(memory: Any, time_ns: int) -> Sample:
    """The ``memory`` sample from ``psutil.virtual_memory()``."""
    fields = {name: int(getattr(memory, attr)) for name, attr in _MEMORY if hasattr(memory, attr)}
    return Sample("memory", {}, fields, time_ns)


def swap_sample(swap: Any, time_ns: int) -> Sample:
    """The ``swap`` sample from ``psutil.swap_memory()``; sin/sout are cumulative bytes."""
    fields = {
        "total_bytes": int(swap.total),
        "free_bytes": int(swap.free),
        "used_bytes": int(swap.used),
        "sin_bytes": int(swap.sin),
        "sout_bytes": int(swap.sout),
    }
    return Sample("swap", {}, fields, time_ns, _SWAP_COUNTERS)


class MeminfoCollector(Collector):
    name = "meminfo"
    tier = "fast"

    def collect(self, time_ns: int) -> list[Sample]:
        return [
            memory_sample(psutil.virtual_memory(), time_ns),
            swap_sample(psutil.swap_memory(), time_ns),
        ]

"""CPU time by mode, as counters (fast tier).

Cumulative seconds rather than ``cpu_percent``: the server turns counters into rates over any
window it likes (Prometheus ``rate``, HA's usage %), nothing needs priming on the agent, and a
lost batch costs resolution, not correctness. Modes a platform lacks are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import psutil

from ...sample import Sample
from .base import Collector

MODES: Final = (
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
)
_COUNTERS: Final = frozenset(MODES)


def cpu_sample(times: Any, cpu: str, time_ns: int) -> Sample:
    """One ``cpu`` sample from a psutil ``scputimes``; ``cpu`` is "total" or the CPU index."""
    fields = {mode: float(getattr(times, mode)) for mode in MODES if hasattr(times, mode)}
    return Sample("cpu", {"cpu": cpu}, fields, time_ns, _COUNTERS.intersection(fields))


def cpu_samples(total: Any, per_cpu: Sequence[Any], time_ns: int) -> list[Sample]:
    """All CPUs summed as "total", then one sample per CPU when ``per_cpu`` is given."""
    samples = [cpu_sample(total, "total", time_ns)]
    samples += [cpu_sample(times, str(index), time_ns) for index, times in enumerate(per_cpu)]
    return samples


class CpuCollector(Collector):
    name = "cpu"
    tier = "fast"

    def collect(self, time_ns: int) -> list[Sample]:
        per_cpu = psutil.cpu_times(percpu=True) if self.settings.per_cpu else []
        return cpu_samples(psutil.cpu_times(), per_cpu, time_ns)

"""Load average over 1, 5 and 15 minutes (fast tier)."""

from __future__ import annotations

from collections.abc import Sequence

import psutil

from ...sample import Sample
from .base import Collector


def load_sample(loadavg: Sequence[float], time_ns: int) -> Sample:
    """The ``load`` sample from ``psutil.getloadavg()``."""
    load1, load5, load15 = loadavg
    return Sample(
        "load",
        {},
        {"load1": float(load1), "load5": float(load5), "load15": float(load15)},
        time_ns,
    )


class LoadavgCollector(Collector):
    name = "loadavg"
    tier = "fast"

    def collect(self, time_ns: int) -> list[Sample]:
        return [load_sample(psutil.getloadavg(), time_ns)]

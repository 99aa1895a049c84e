"""A synthetic sensor that needs no hardware or network, and can crash on demand.

It is what ``fleet-metrics run`` without ``-c`` reads (a check that an installation works)
and what the supervision tests crash on purpose. The simulated fleet of ``fleet-metrics
demo`` speaks the real device protocols instead (standalone/simulators).
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
import time
from typing import Any, ClassVar

import voluptuous as vol

from ..sample import Sample
from ..source import Emit, Source
from ..validators import positive_seconds

DEFAULT_TRIGGER_FILE = os.path.join(tempfile.gettempdir(), "fleet-metrics-demo-crash")

SCHEMA: dict[Any, Any] = {
    vol.Optional("interval", default=5.0): positive_seconds,
    vol.Optional("trigger_file", default=DEFAULT_TRIGGER_FILE): str,
}


class DemoCrash(RuntimeError):
    """Raised on purpose while the trigger file exists."""


class DemoSource(Source):
    kind = "demo"
    HELP: ClassVar[dict[str, str]] = {
        "demo_temperature_celsius": "Synthetic temperature following a slow sine wave.",
        "demo_humidity_ratio": "Synthetic relative humidity, 0 to 1.",
        "demo_pressure_pascals": "Synthetic air pressure.",
        "demo_ticks": "Readings produced since the source started.",
    }

    async def run(self, emit: Emit) -> None:
        interval: float = self.config["interval"]
        trigger: str = self.config["trigger_file"]
        ticks = 0
        while True:
            if os.path.exists(trigger):  # noqa: ASYNC240 - one stat per interval
                raise DemoCrash(f"trigger file {trigger} exists")
            ticks += 1
            phase = time.time() / 600.0 * 2 * math.pi
            emit(
                Sample(
                    "demo",
                    {"source": self.name},
                    {
                        "temperature_celsius": round(21.0 + 3.0 * math.sin(phase), 2),
                        "humidity_ratio": round(0.45 + 0.1 * math.cos(phase), 3),
                        "pressure_pascals": round(101325.0 + 250.0 * math.sin(phase / 3), 1),
                        "ticks": ticks,
                    },
                    counters=frozenset({"ticks"}),
                )
            )
            self.stats.emitted()
            await asyncio.sleep(interval)

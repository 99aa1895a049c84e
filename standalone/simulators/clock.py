"""A sped-up clock and the sun it drives: a solar day in minutes, not hours."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

SECONDS_PER_DAY = 86_400.0
SUNRISE_HOUR = 6.0
SUNSET_HOUR = 20.0


class SimClock:
    """Simulated time of day: starts at ``start_hour`` and runs ``speed`` times faster than
    the monotonic clock (``speed=144`` makes a day last ten minutes)."""

    def __init__(
        self,
        start_hour: float = 10.0,
        speed: float = 144.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()
        self._start = (start_hour % 24.0) * 3600.0

    def seconds(self) -> float:
        """Simulated seconds since the simulated midnight before the start."""
        return self._start + (self._monotonic() - self._origin) * self.speed

    def day(self) -> int:
        """Simulated days since the start day (the day counters reset when it changes)."""
        return int(self.seconds() // SECONDS_PER_DAY)

    def hour(self) -> float:
        """Hour of the simulated day, 0 to 24."""
        return (self.seconds() % SECONDS_PER_DAY) / 3600.0


def sun(hour: float) -> float:
    """Clear-sky irradiance as a share of noon's: 0 at night, a sine arch by day."""
    hour %= 24.0
    if not SUNRISE_HOUR < hour < SUNSET_HOUR:
        return 0.0
    return math.sin(math.pi * (hour - SUNRISE_HOUR) / (SUNSET_HOUR - SUNRISE_HOUR))


def is_night(hour: float) -> bool:
    return sun(hour) == 0.0

"""A circuit breaker for a write endpoint: stop hammering it while it is down.

Hand-written because it is twenty lines and the libraries that offer one bring their own
retry frameworks. Closed: every write goes through. After ``threshold`` failures in a row it
opens: nothing is tried for ``cooldown`` seconds. Then it is half-open: one probe goes
through; success closes it, failure opens it again with the cool-down doubled (up to
``max_cooldown``), so a long outage costs fewer and fewer attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 30.0,
        max_cooldown: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.initial_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.cooldown = cooldown
        self._clock = clock
        self._state: State = "closed"
        self._opened_at = 0.0
        self.failures = 0  # in a row
        self.opened = 0  # times it opened, for self-metrics

    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown:
            self._state = "half_open"
        return self._state

    def allow(self) -> bool:
        """Whether a write may be tried now (in half-open: the probe)."""
        return self.state != "open"

    def success(self) -> None:
        self._state = "closed"
        self.failures = 0
        self.cooldown = self.initial_cooldown

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half_open":  # the probe failed
            self.cooldown = min(self.cooldown * 2, self.max_cooldown)
            self._open()
        elif self._state == "closed" and self.failures >= self.threshold:
            self._open()

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self.opened += 1

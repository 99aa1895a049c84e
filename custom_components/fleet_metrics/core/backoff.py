"""Exponential backoff with full jitter, shared by reconnecting clients and the supervisor."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each drawn in [d/2, d].

    Half-jitter keeps a fleet of restarting sources from reconnecting in lockstep while
    still guaranteeing the delay grows.
    """

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    attempts: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0

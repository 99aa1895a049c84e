"""Holds back the samples of a device for its first seconds, so a flood never reaches the sinks.

A source caps its device table and forgets the least recently seen device when it is full;
but every sample it already emitted became a series in the Prometheus sink, kept there for
the whole TTL. A flood of made-up device ids churns through a capped table within a fraction
of a second, so holding a newcomer's samples for ``hold`` seconds, and dropping them when
the table forgot the device meanwhile, keeps such a flood out of the sinks. A real device's
first samples arrive ``hold`` seconds late with their own timestamps: nothing is lost.
TickrMeter does the same on its tick (a symbol becomes a series after one whole tick).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from ..sample import Sample

DEFAULT_HOLD = 2.0
PER_DEVICE = 256  # held samples per device; the newest are kept


class NewcomerGate:
    def __init__(
        self,
        hold: float = DEFAULT_HOLD,
        capacity: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hold = hold
        self.capacity = capacity
        self.dropped = 0  # held samples of devices that were forgotten, or beyond capacity
        self._clock = clock
        self._held: OrderedDict[str, list[Sample]] = OrderedDict()

    @property
    def held(self) -> int:
        return len(self._held)

    def admit(self, key: str, first_seen: float | None, samples: list[Sample]) -> list[Sample]:
        """The samples to emit now: none while ``key`` is new (they wait here), and all that
        waited once it is not. ``first_seen`` None: not a device the table keeps; emit."""
        if first_seen is None or self._clock() - first_seen >= self.hold:
            waiting = self._held.pop(key, None)
            return samples if waiting is None else waiting + samples
        waiting = self._held.get(key)
        if waiting is None:
            waiting = self._held[key] = []
            if len(self._held) > self.capacity:
                self.dropped += len(self._held.popitem(last=False)[1])
        waiting.extend(samples)
        if len(waiting) > PER_DEVICE:
            self.dropped += len(waiting) - PER_DEVICE
            del waiting[:-PER_DEVICE]
        return []

    def release(self, first_seen_of: Callable[[str], float | None]) -> list[Sample]:
        """Samples of devices that are no longer new; those of forgotten devices are dropped.

        ``first_seen_of`` answers from the source's table (None: forgotten).
        """
        now = self._clock()
        out: list[Sample] = []
        for key in list(self._held):
            first_seen = first_seen_of(key)
            if first_seen is None:
                self.dropped += len(self._held.pop(key))
            elif now - first_seen >= self.hold:
                out.extend(self._held.pop(key))
        return out

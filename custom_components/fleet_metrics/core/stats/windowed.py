"""Latency over a sliding window: quantiles with a stated relative error, average and max.

The window is a ring of slots, each with its own DDSketch (DataDog's mergeable sketch:
every quantile it returns is within ``relative_accuracy`` of the true value's rank-neighbour,
whatever the distribution). Reading merges the live slots; old slots are dropped whole, so
the window slides in steps of ``window / slots``. A slot's sketch exists only once a value
falls in it, so an idle window costs a few hundred bytes (one per tracked symbol).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ddsketch import DDSketch

DEFAULT_RELATIVE_ACCURACY = 0.01


@dataclass(slots=True)
class _Slot:
    index: int
    sketch: DDSketch
    count: int = 0
    total: float = 0.0
    maximum: float = 0.0


@dataclass(frozen=True, slots=True)
class WindowSummary:
    count: int
    average: float | None
    maximum: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class WindowedLatency:
    __slots__ = ("_clock", "_slot_length", "_slots", "relative_accuracy")

    def __init__(
        self,
        window: float = 300.0,
        slots: int = 10,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window <= 0 or slots < 1:
            raise ValueError("window and slots must be positive")
        self.relative_accuracy = relative_accuracy
        self._slot_length = window / slots
        self._slots: list[_Slot | None] = [None] * slots
        self._clock = clock

    def _slot(self, now: float) -> _Slot:
        index = int(now // self._slot_length)
        position = index % len(self._slots)
        slot = self._slots[position]
        if slot is None or slot.index != index:
            slot = self._slots[position] = _Slot(index, DDSketch(self.relative_accuracy))
        return slot

    def add(self, value: float) -> None:
        slot = self._slot(self._clock())
        slot.sketch.add(value)
        slot.count += 1
        slot.total += value
        if value > slot.maximum:
            slot.maximum = value

    def _live(self) -> list[_Slot]:
        newest = int(self._clock() // self._slot_length)
        oldest = newest - len(self._slots) + 1
        return [s for s in self._slots if s is not None and oldest <= s.index <= newest]

    def summary(self) -> WindowSummary:
        return summarize([self])


def summarize(windows: Iterable[WindowedLatency]) -> WindowSummary:
    """One summary over several windows (all symbols of a fleet): sketches merge exactly."""
    live = []
    accuracy = DEFAULT_RELATIVE_ACCURACY
    for window in windows:
        live += window._live()
        accuracy = window.relative_accuracy
    count = sum(s.count for s in live)
    if count == 0:
        return WindowSummary(0, None, None, None, None, None)
    merged = DDSketch(accuracy)
    for slot in live:
        merged.merge(slot.sketch)
    return WindowSummary(
        count=count,
        average=sum(s.total for s in live) / count,
        maximum=max(s.maximum for s in live if s.count),
        p50=merged.get_quantile_value(0.50),
        p95=merged.get_quantile_value(0.95),
        p99=merged.get_quantile_value(0.99),
    )

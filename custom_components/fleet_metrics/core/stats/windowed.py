"""Latency over a sliding window: quantiles with a stated relative error, average and max.

The window is a ring of slots, each with its own DDSketch (DataDog's mergeable sketch:
every quantile it returns is within ``relative_accuracy`` of the true value's rank-neighbour,
whatever the distribution). Reading merges the live slots; old slots are dropped whole, so
the window slides in steps of ``window / slots``. A slot's sketch exists only once a value
falls in it, so an idle window costs a few hundred bytes (one per tracked symbol).

A window is saved (``export``) as its live slots, each with its counters and its sketch's
bins, and read back (``restore``) by adding each bin's representative value with the bin's
weight through ``DDSketch.add``: the logarithmic mapping sends that value back to the same
bin, so the quantiles come back exactly. ddsketch 3.0.1 serialises only through protobuf
and shows its bins through no public attribute, so ``sketch_bins`` reads them, and only after
checking that the sketch is laid out as 3.0.1 lays it out; otherwise (another ddsketch) the
window is saved and restored empty, with one warning, and the counters kept beside it stay.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import ddsketch
from ddsketch import DDSketch, LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.store import DenseStore

_LOGGER = logging.getLogger(__name__)

DEFAULT_RELATIVE_ACCURACY = 0.01
MAX_COUNT = 2**63 - 1  # a saved count beyond what a metric can carry is refused
# A sketch's bins lie between its lowest and highest one: a saved sketch spread over more
# than this many orders of magnitude (latencies from 1 ns to a day span 14) is refused, so
# a corrupt save cannot make each slot hold tens of thousands of bins.
MAX_DECADES = 40


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

    def _live(self, now: float | None = None) -> list[_Slot]:
        newest = int((self._clock() if now is None else now) // self._slot_length)
        oldest = newest - len(self._slots) + 1
        return [s for s in self._slots if s is not None and oldest <= s.index <= newest]

    def summary(self) -> WindowSummary:
        return summarize([self])

    def export(self, now: float) -> dict[str, Any]:
        """The live slots at ``now`` as JSON-able data (see ``restore``).

        Each slot is ``[age, count, total, maximum, zeros, bins]`` (``bins``: ``[key, weight]``
        of each non-empty bin; a seventh item holds the bins of negative values, if any). A
        slot is kept by the age of its middle (negative for the current slot, whose middle may
        lie ahead), which no rounding moves into a neighbouring slot.
        """
        slots: list[list[Any]] = []
        for slot in self._live(now):
            content = sketch_bins(slot.sketch, self.relative_accuracy)
            if content is None:
                _layout_unknown()
                slots = []
                break
            middle = (slot.index + 0.5) * self._slot_length
            row = [now - middle, slot.count, slot.total, slot.maximum, content.zeros,
                   [list(item) for item in content.positive]]  # fmt: skip
            if content.negative:
                row.append([list(item) for item in content.negative])
            slots.append(row)
        return {"accuracy": self.relative_accuracy, "slots": slots}

    def restore(self, data: Any, now: float) -> None:
        """Add the slots of an ``export``; ``now`` is the moment of the export on this
        window's clock (in a new process: its clock's reading less the time it was down).

        A slot whose middle had left the window is dropped, slots falling into one slot of
        this window are merged, and reading the window drops the rest as they age. ``data``
        is not trusted: anything but an export of the same accuracy raises ValueError and
        leaves the window as it was.
        """
        if type(data) is not dict or _real(data.get("accuracy")) != self.relative_accuracy:
            raise ValueError("a latency window of another accuracy")
        oldest = int(now // self._slot_length) - len(self._slots) + 1
        read: list[tuple[float, int, float, float, DDSketch]] = []
        for raw in _list(data.get("slots")):
            row = _list(raw)
            if len(row) not in (6, 7):
                raise ValueError("not a latency slot")
            when = min(now - _real(row[0]), now)  # the current slot's middle may lie ahead
            content = SketchBins(
                _weight(row[4], zero=True),
                _bins(row[5]),
                _bins(row[6]) if len(row) == 7 else (),
            )
            counters = (when, _count(row[1]), _real(row[2]), _real(row[3]))
            sketch = sketch_from_bins(content, self.relative_accuracy)  # refuses a foreign bin
            if int(when // self._slot_length) >= oldest:
                read.append((*counters, sketch))
        if read and sketch_bins(DDSketch(self.relative_accuracy), self.relative_accuracy) is None:
            _layout_unknown()  # bins saved by another layout would land elsewhere
            return
        for when, count, total, maximum, sketch in read:
            slot = self._slot(when)
            slot.sketch.merge(sketch)
            slot.count += count
            slot.total += total
            slot.maximum = max(slot.maximum, maximum)


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


# --- a sketch's bins ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SketchBins:
    """What a DDSketch holds: the weight of zeros, and ``(key, weight)`` of each non-empty
    bin of positive and of negative values (keys of ``LogarithmicMapping``)."""

    zeros: float
    positive: tuple[tuple[int, float], ...]
    negative: tuple[tuple[int, float], ...] = ()


def sketch_bins(sketch: BaseDDSketch, relative_accuracy: float) -> SketchBins | None:
    """The bins of a ``DDSketch(relative_accuracy)``, or None if this ddsketch does not keep
    them as 3.0.1 does (a logarithmic mapping, two dense stores and a zero count that add up
    to the sketch's count): no public API shows them, so each private member is checked."""
    mapping: object = getattr(sketch, "_mapping", None)
    positive: object = getattr(sketch, "_store", None)
    negative: object = getattr(sketch, "_negative_store", None)
    zeros: object = getattr(sketch, "_zero_count", None)
    if not (
        _same_mapping(mapping, relative_accuracy)
        and isinstance(positive, DenseStore)
        and isinstance(negative, DenseStore)
        and isinstance(zeros, int | float)
        and math.isfinite(zeros)
        and zeros >= 0
    ):
        return None
    positive_bins, negative_bins = _store_bins(positive), _store_bins(negative)
    if positive_bins is None or negative_bins is None:
        return None
    total = zeros + sum(w for _, w in positive_bins) + sum(w for _, w in negative_bins)
    if not math.isclose(total, sketch.count, rel_tol=1e-9, abs_tol=1e-9):
        return None
    return SketchBins(float(zeros), positive_bins, negative_bins)


def sketch_from_bins(content: SketchBins, relative_accuracy: float) -> DDSketch:
    """A new ``DDSketch(relative_accuracy)`` holding ``content``, built through ``add`` alone;
    ValueError for a key that no value maps to or bins spread over more than ``MAX_DECADES``
    (a corrupt or foreign save)."""
    mapping = LogarithmicMapping(relative_accuracy)
    widest = mapping.key(10.0**MAX_DECADES) - mapping.key(1.0)
    sketch = DDSketch(relative_accuracy)
    for sign, bins in ((1.0, content.positive), (-1.0, content.negative)):
        keys = [key for key, _ in bins]
        if keys and max(keys) - min(keys) > widest:
            raise ValueError("sketch bins spread too wide")
        for key, weight in bins:
            sketch.add(sign * _bin_value(mapping, key), weight)
    if content.zeros:
        sketch.add(0.0, content.zeros)
    return sketch


def _same_mapping(mapping: object, relative_accuracy: float) -> bool:
    """Whether ``mapping`` numbers bins as ``LogarithmicMapping(relative_accuracy)`` does."""
    reference = LogarithmicMapping(relative_accuracy)
    return (
        type(mapping) is LogarithmicMapping
        and mapping.gamma == reference.gamma
        and all(mapping.key(value) == reference.key(value) for value in (1.0, 1e-3, 1e3))
    )


def _store_bins(store: DenseStore) -> tuple[tuple[int, float], ...] | None:
    offset: object = store.offset
    bins: object = store.bins
    if type(offset) is not int or type(bins) is not list:
        return None
    found = []
    for index, weight in enumerate(bins):
        if not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            return None
        if weight:
            found.append((offset + index, float(weight)))
    return tuple(found)


def _bin_value(mapping: LogarithmicMapping, key: int) -> float:
    """The value that stands for bin ``key``: the mapping sends it back to ``key``."""
    try:
        value = float(mapping.value(key))
    except (OverflowError, ValueError) as err:
        raise ValueError("not a sketch bin") from err
    if not mapping.min_possible < value < mapping.max_possible or mapping.key(value) != key:
        raise ValueError("not a sketch bin")
    return value


_warned = False


def _layout_unknown() -> None:
    global _warned
    if not _warned:
        _warned = True
        _LOGGER.warning(
            "ddsketch %s keeps its bins otherwise than 3.0.1 did: latency windows are neither "
            "saved nor restored (counters are)",
            ddsketch.__version__,
        )


# --- reading a saved window: nothing is trusted --------------------------------------------


def _real(value: Any) -> float:
    try:
        real = float(value) if type(value) in (int, float) else math.nan
    except OverflowError:  # an int beyond any float
        real = math.nan
    if not math.isfinite(real):
        raise ValueError(f"not a number: {value!r:.40}")
    return real


def _count(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"not a count: {value!r:.40}")
    return value


def _weight(value: Any, zero: bool = False) -> float:
    weight = _real(value)
    if weight < 0 or (weight == 0 and not zero):
        raise ValueError("a sketch bin without weight")
    return weight


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise ValueError("not a list")
    return value


def _bins(value: Any) -> tuple[tuple[int, float], ...]:
    found = []
    for item in _list(value):
        pair = _list(item)
        if len(pair) != 2 or type(pair[0]) is not int:
            raise ValueError("not a sketch bin")
        found.append((pair[0], _weight(pair[1])))
    return tuple(found)

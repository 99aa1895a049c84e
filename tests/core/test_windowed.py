"""Saving and restoring a latency window: the quantiles come back exactly (the sketch is
rebuilt through ddsketch's public ``add``), a save read back is never trusted, and a ddsketch
that keeps its bins otherwise is noticed instead of misread."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from ddsketch import CubicallyInterpolatedMapping, DDSketch, LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch, LogCollapsingLowestDenseDDSketch
from ddsketch.store import DenseStore
from hypothesis import example, given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.stats import windowed
from custom_components.fleet_metrics.core.stats.windowed import (
    SketchBins,
    WindowedLatency,
    sketch_bins,
    sketch_from_bins,
)

QUANTILES = [i / 40 for i in range(41)]
ACCURACIES = st.sampled_from([0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3])


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@st.composite
def mapping_keys(draw: st.DrawFn) -> tuple[float, int]:
    """An accuracy and any key of its mapping whose value is a finite, distinguishable float."""
    accuracy = draw(ACCURACIES)
    mapping = LogarithmicMapping(accuracy)
    lowest, highest = mapping.key(mapping.min_possible) + 1, mapping.key(mapping.max_possible) - 1
    edge = st.sampled_from([lowest, lowest + 1, -1, 0, 1, highest - 1, highest])
    return accuracy, draw(st.integers(lowest, highest) | edge)


@settings(max_examples=400, deadline=None)
@given(mapping_keys())
def test_each_bins_value_maps_back_to_that_bin(case: tuple[float, int]) -> None:
    """What the rebuild relies on: ``key(value(key)) == key``, over the whole key range."""
    accuracy, key = case
    mapping = LogarithmicMapping(accuracy)
    value = mapping.value(key)
    assert mapping.min_possible < value < mapping.max_possible
    assert mapping.key(value) == key
    rebuilt = sketch_from_bins(SketchBins(0.0, ((key, 2.0),), ((key, 1.0),)), accuracy)
    assert sketch_bins(rebuilt, accuracy) == SketchBins(0.0, ((key, 2.0),), ((key, 1.0),))


values = st.one_of(
    st.floats(min_value=1e-9, max_value=1e6),  # latencies, wide
    st.floats(min_value=0.001, max_value=5.0),  # latencies, typical
    st.just(0.0),
    st.floats(min_value=-1e3, max_value=-1e-9),  # a window is not only for latencies
    st.floats(min_value=1e-30, max_value=1e-20),  # far from the rest, within MAX_DECADES
)


@settings(max_examples=150, deadline=None)
@given(ACCURACIES, st.lists(st.tuples(values, st.integers(1, 5)), max_size=60))
def test_a_rebuilt_sketch_has_the_same_quantiles(
    accuracy: float, added: list[tuple[float, int]]
) -> None:
    sketch = DDSketch(accuracy)
    for value, weight in added:
        sketch.add(value, weight)
    content = sketch_bins(sketch, accuracy)
    assert content is not None
    # Through JSON, as the store writes it.
    content = SketchBins(
        *json.loads(json.dumps([content.zeros, content.positive, content.negative]))
    )
    content = SketchBins(
        content.zeros,
        tuple((k, w) for k, w in content.positive),
        tuple((k, w) for k, w in content.negative),
    )
    rebuilt = sketch_from_bins(content, accuracy)
    assert rebuilt.count == sketch.count
    for q in QUANTILES:
        assert rebuilt.get_quantile_value(q) == sketch.get_quantile_value(q), q
    assert sketch_bins(rebuilt, accuracy) == sketch_bins(sketch, accuracy)


history = st.lists(
    st.tuples(
        st.just(0.0) | st.floats(min_value=1e-12, max_value=120.0),  # monotonic differences
        st.sampled_from([0.0, 2.5, 40.0]),
    ),
    max_size=80,
)


def restored_after(window: WindowedLatency, saved_at: float, down: float, shift: int) -> Any:
    """``window`` saved at ``saved_at``, through JSON, restored in a new process whose
    monotonic clock reads ``shift`` whole windows otherwise, ``down`` seconds later (in the
    same phase of the slots, so that both windows drop a slot at the same moment)."""
    saved = json.loads(json.dumps(window.export(saved_at)))
    clock = Clock()
    clock.now = saved_at + shift * 300.0
    restored = WindowedLatency(window=300.0, clock=clock)
    restored.restore(saved, clock.now)
    clock.now += down
    return restored


# Downtimes on a 2**-30 s grid (finer than a monotonic clock's nanoseconds): "``down`` seconds
# later" must be one moment on both clocks. A finer downtime is rounded to each clock's own ulp,
# and a sum within an ulp of a slot edge lands on different sides of it on clocks that read
# far apart (saved at 10002.5, down 287.5 - 1e-12: the original is still in the slot, the
# restored clock 40 windows ahead is already past it); no window can tell those apart.
downtimes = st.floats(min_value=0.0, max_value=400.0).map(lambda s: round(s * 2**30) / 2**30)


@settings(max_examples=100, deadline=None)
@given(history, downtimes, st.integers(-40, 40))
@example([(1.0, 0.0), (2.0, 2.5)], 287.5 - 2**-30, 40)  # a grid step before the slot leaves
@example([(1.0, 0.0), (2.0, 2.5)], 287.5, -40)  # the moment it leaves
def test_quantiles_after_a_restore_are_the_quantiles_before(
    steps: list[tuple[float, float]], down: float, shift: int
) -> None:
    """What is still in the window after ``down`` seconds reads exactly as the original
    would read then: quantiles, count, average, maximum."""
    clock = Clock()
    window = WindowedLatency(window=300.0, clock=clock)
    for value, wait in steps:
        clock.now += wait
        window.add(value)
    restored = restored_after(window, clock.now, down, shift)
    clock.now += down
    assert restored.summary() == window.summary()


def test_slots_leave_a_restored_window_as_they_leave_the_original() -> None:
    clock = Clock()
    window = WindowedLatency(window=300.0, slots=10, clock=clock)
    window.add(1.0)  # slot [9990, 10020)
    clock.now += 100
    window.add(3.0)  # slot [10080, 10110)
    saved_at = clock.now
    counts = []
    for down in (0.0, 150.0, 200.0, 300.0):
        restored = restored_after(window, saved_at, down, shift=-33)
        clock.now = saved_at + down
        assert restored.summary() == window.summary()
        counts.append(restored.summary().count)
    assert counts == [2, 2, 1, 0]
    assert restored_after(window, saved_at, 200.0, shift=5).summary().maximum == 3.0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=25,
)


def _saved() -> Any:
    clock = Clock()
    window = WindowedLatency(clock=clock)
    for value in (0.0, 0.02, 1.5, 1.5, -0.5, 30.0):
        window.add(value)
        clock.now += 45
    return json.loads(json.dumps(window.export(clock.now)))


SAVED = _saved()


def _replace(path: tuple[Any, ...], value: Any) -> Any:
    document = json.loads(json.dumps(SAVED))
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*path, index))
    return found


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.builds(_replace, st.sampled_from(_paths(SAVED)), json_values | st.integers()),
    )
)
def test_a_restore_of_anything_raises_only_value_error_and_then_changes_nothing(
    document: Any,
) -> None:
    clock = Clock()
    window = WindowedLatency(clock=clock)
    window.add(0.25)
    before = window.export(clock.now)
    try:
        window.restore(document, clock.now)
    except ValueError:
        assert window.export(clock.now) == before
    summary = window.summary()
    assert summary.count >= 1
    if summary.p50 is not None:
        assert math.isfinite(summary.p50)


@pytest.mark.parametrize(
    ("slot", "reason"),
    [
        ([0.0, 1, 1.0, 1.0, 0.0, [[10**6, 1.0]]], "not a sketch bin"),  # no value maps there
        ([0.0, 1, 1.0, 1.0, 0.0, [[1.5, 1.0]]], "not a sketch bin"),
        ([0.0, 1, 1.0, 1.0, 0.0, [[3, 0.0]]], "without weight"),
        ([0.0, 2, 1.0, 1.0, 0.0, [[-9000, 1.0], [9000, 1.0]]], "too wide"),  # 78 decades
        ([0.0, 1, 1.0, 1.0, -1.0, []], "without weight"),
        ([0.0, -1, 1.0, 1.0, 0.0, []], "not a count"),
        ([0.0, 2**63, 1.0, 1.0, 0.0, []], "not a count"),
        ([0.0, 1, 1.0, math.inf, 0.0, []], "not a number"),
        ([0.0, 1, 10**400, 1.0, 0.0, []], "not a number"),
        ([0.0, 1, 1.0, 1.0, 0.0, [[10**400, 1.0]]], "not a sketch bin"),
        ([0.0, 1, 1.0, 1.0, 0.0], "not a latency slot"),
        ([0.0, 1, 1.0, 1.0, 0.0, [], [[3, 1.0]], []], "not a latency slot"),
    ],
)
def test_a_slot_that_is_not_what_an_export_writes_is_refused(slot: list[Any], reason: str) -> None:
    window = WindowedLatency(clock=lambda: 0.0)
    with pytest.raises(ValueError, match=reason):
        window.restore({"accuracy": window.relative_accuracy, "slots": [slot]}, 0.0)
    with pytest.raises(ValueError, match="another accuracy"):
        window.restore({"accuracy": 0.02, "slots": []}, 0.0)
    assert window.export(0.0)["slots"] == []


# --- a ddsketch laid out otherwise ---------------------------------------------------------


class _ListStore:
    """A store as another ddsketch might keep one: not a DenseStore."""

    def __init__(self) -> None:
        self.count = 0.0


def test_bins_are_read_only_from_the_layout_they_were_checked_for() -> None:
    accuracy = 0.01
    plain = DDSketch(accuracy)
    plain.add(1.0)
    assert sketch_bins(plain, accuracy) == SketchBins(0.0, ((0, 1.0),))
    assert sketch_bins(plain, 0.02) is None, "numbered by another mapping"

    collapsing = LogCollapsingLowestDenseDDSketch(accuracy)  # a DenseStore, laid out alike
    collapsing.add(1.0)
    assert sketch_bins(collapsing, accuracy) == SketchBins(0.0, ((0, 1.0),))

    cubic = BaseDDSketch(CubicallyInterpolatedMapping(accuracy), DenseStore(), DenseStore(), 0.0)
    cubic.add(1.0)
    assert sketch_bins(cubic, accuracy) is None

    foreign = BaseDDSketch(LogarithmicMapping(accuracy), _ListStore(), DenseStore(), 0.0)  # type: ignore[arg-type]
    assert sketch_bins(foreign, accuracy) is None

    inconsistent = DDSketch(accuracy)
    inconsistent.add(1.0)
    inconsistent._count = 7.0  # bins that do not add up to the count: not what we think
    assert sketch_bins(inconsistent, accuracy) is None

    class Bare:
        count = 0.0

    assert sketch_bins(Bare(), accuracy) is None  # type: ignore[arg-type]


@pytest.fixture
def other_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """ddsketch as if its stores were no longer DenseStores: the feature check fails."""
    monkeypatch.setattr(windowed, "DenseStore", type("DenseStore", (), {}))
    monkeypatch.setattr(windowed, "_warned", False)


def test_another_layout_saves_and_restores_an_empty_window_and_warns_once(
    other_layout: None, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    windows = [WindowedLatency(clock=clock) for _ in range(3)]
    for window in windows:
        window.add(0.5)
    saved = [window.export(clock.now) for window in windows]
    assert all(data["slots"] == [] for data in saved)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "neither saved nor restored" in warnings[0].getMessage()


def test_another_layout_when_restoring_leaves_the_window_empty(
    other_layout: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Bins saved by the layout this code knows would land elsewhere in another one."""
    assert SAVED["slots"], "saved before the layout changed"
    window = WindowedLatency(clock=lambda: 10_000.0 + 6 * 45)
    window.restore(SAVED, 10_000.0 + 6 * 45)
    assert window.summary().count == 0
    assert caplog.text.count("neither saved nor restored") == 1

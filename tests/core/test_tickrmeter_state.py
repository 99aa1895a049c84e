"""Saving and restoring the TickrMeter fleet state: what a restore brings back is what was
saved (devices, counters, latency windows), aged by the time the process was down, within
the same caps; whatever a store file holds, a restore never raises and never half-applies."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.sources.tickrmeter.correlator import Correlator
from custom_components.fleet_metrics.core.sources.tickrmeter.fleet import Fleet
from custom_components.fleet_metrics.core.sources.tickrmeter.snapshot import SnapshotTaker
from custom_components.fleet_metrics.core.sources.tickrmeter.state import (
    FORMAT,
    VERSION,
    export_state,
    restore_state,
    state_summary,
)
from custom_components.fleet_metrics.core.sources.tickrmeter.tracker import FleetTracker
from custom_components.fleet_metrics.core.stats import windowed
from custom_components.fleet_metrics.core.stats.windowed import WindowedLatency
from tests.core.test_tickrmeter_correlation import Clock

WINDOW = 300.0


class Wall:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def make_tracker(clock: Clock, max_devices: int = 20_000, max_symbols: int = 1_000) -> FleetTracker:
    return FleetTracker(
        Correlator(
            clock=clock,
            latency_factory=lambda: WindowedLatency(window=WINDOW, clock=clock),
            max_symbols=max_symbols,
        ),
        Fleet(clock=clock, max_devices=max_devices),
    )


def device(index: int) -> str:
    return f"08A6F792{index:04X}"


def feed(tracker: FleetTracker, clock: Clock, steps: list[tuple[int, int, str, int]]) -> None:
    """(device, kind, symbol, quarter seconds to wait) per step; kinds: request, answer,
    status, boot, garbage."""
    for index, kind, symbol, wait in steps:
        clock.now += wait / 4
        if kind == 0:
            body: dict[str, Any] = {"device": device(index), "symbol": symbol}
            tracker.handle("STOCKPRICEUPDATE", orjson.dumps(body))
        elif kind == 1:
            tracker.handle(device(index), orjson.dumps({"symbol": symbol}))
        elif kind == 2:
            body = {"device": device(index), "firmware_version": f"6{index}p",
                    "battery": index * 7 % 101, "charging": index % 2 == 0}  # fmt: skip
            tracker.handle("DEVICESTATUS_RES", orjson.dumps(body))
        elif kind == 3:
            tracker.handle("TICKRMETERBOOT", orjson.dumps({"device": device(index)}))
        else:
            tracker.handle("DEVICESTATUS_RES", b"{broken")


steps = st.lists(
    st.tuples(
        st.integers(0, 12),
        st.integers(0, 4),
        st.sampled_from(["AAPL", "BTC-USD", "^GSPC", "EURUSD=X"]),
        st.integers(0, 400),  # up to 100 s between messages: slots fill, age and drop out
    ),
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_restore_of_an_export_is_the_state_that_was_saved(
    history: list[tuple[int, int, str, int]],
) -> None:
    clock, wall = Clock(), Wall()
    tracker = make_tracker(clock)
    feed(tracker, clock, history)
    saved = export_state(tracker, wall)
    # Through JSON, as the store writes it: keys and numbers survive the trip.
    saved = json.loads(json.dumps(saved))

    restored = make_tracker(clock)
    result = restore_state(restored, saved, wall)
    assert result.ignored == "" and result.skipped == 0
    assert result.devices == len(tracker.fleet.devices)
    assert state_summary(restored) == state_summary(tracker)
    assert export_state(restored, wall) == export_state(tracker, wall)
    a, b = SnapshotTaker(tracker, clock=clock).take(), SnapshotTaker(restored, clock=clock).take()
    assert (a.fleet, a.latency, a.slowest) == (b.fleet, b.latency, b.slowest)


def test_time_down_ages_devices_and_latency_slots() -> None:
    clock, wall = Clock(), Wall()
    tracker = make_tracker(clock)
    feed(tracker, clock, [(1, 0, "AAPL", 0), (1, 1, "AAPL", 2), (2, 2, "", 0)])
    saved = export_state(tracker, wall)

    wall.now += 200  # HA was down for 200 s; the new process's monotonic clock starts anew
    later = Clock()
    later.now = 5.0
    restored = make_tracker(later)
    assert restore_state(restored, saved, wall).devices == 2
    summary = restored.fleet.summary()
    assert (summary.devices, summary.online) == (2, 2), "200 s is within the 300 s timeout"
    assert restored.correlator.symbols["AAPL"].latency.summary().count == 1

    wall.now += 200
    gone = make_tracker(later)
    restore_state(gone, saved, wall)
    summary = gone.fleet.summary()
    assert (summary.devices, summary.online) == (2, 0), "silent for 400 s: offline, still known"
    assert gone.correlator.symbols["AAPL"].latency.summary().count == 0, "slot left the window"
    assert gone.correlator.symbols["AAPL"].responses == 1, "counters stay"


def test_a_restore_keeps_the_caps_and_counts_what_it_drops() -> None:
    clock, wall = Clock(), Wall()
    big = make_tracker(clock)
    feed(big, clock, [(i, 0, symbol, 1) for i in range(10) for symbol in ("A", "B", "C")])
    saved = export_state(big, wall)
    small = make_tracker(clock, max_devices=4, max_symbols=2)
    result = restore_state(small, saved, wall)
    assert len(small.fleet.devices) == 4 and len(small.correlator.symbols) == 2
    assert set(small.fleet.devices) == {device(i) for i in range(6, 10)}, "the newest"
    assert set(small.correlator.symbols) == {"B", "C"}
    assert result.skipped == 6
    assert small.correlator.totals() == big.correlator.totals(), "totals never go backwards"


def test_bad_items_are_skipped_and_the_rest_restored() -> None:
    clock, wall = Clock(), Wall()
    tracker = make_tracker(clock)
    feed(tracker, clock, [(1, 2, "", 0), (2, 2, "", 0), (1, 0, "AAPL", 0), (1, 1, "AAPL", 1)])
    saved = export_state(tracker, wall)
    saved["devices"]["not a device"] = saved["devices"][device(1)]
    saved["devices"][device(2)][0] = "fw with spaces"  # never a label
    saved["symbols"]["AAPL"]["counts"][0] = -1
    saved["symbols"]["a symbol"] = {}
    restored = make_tracker(clock)
    result = restore_state(restored, saved, wall)
    assert (result.devices, result.symbols, result.skipped) == (1, 0, 4)
    assert set(restored.fleet.devices) == {device(1)}


def test_foreign_and_other_versions_are_refused_whole() -> None:
    clock, wall = Clock(), Wall()
    tracker = make_tracker(clock)
    feed(tracker, clock, [(1, 2, "", 0)])
    saved = export_state(tracker, wall)
    for document, reason in [
        ({**saved, "version": VERSION + 1}, "another version"),
        ({**saved, "format": "something else"}, "not a saved"),
        ([saved], "not a saved"),
        ({**saved, "received": {"request": 1, "evil": 2}}, "unreadable"),
    ]:
        fresh = make_tracker(clock)
        result = restore_state(fresh, document, wall)
        assert reason in result.ignored
        assert fresh.fleet.devices == {} and not fresh.counts.received, "nothing half-applied"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=15),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)


def _mutations(saved: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The saved document with one value somewhere replaced by anything JSON can hold."""

    def paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        found = [path]
        if isinstance(node, dict):
            for key, value in node.items():
                found += paths(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                found += paths(value, (*path, index))
        return found

    def replace(path: tuple[Any, ...], value: Any) -> Any:
        if not path:
            return value
        document = copy.deepcopy(saved)
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return document

    return st.builds(replace, st.sampled_from(paths(saved)), json_values)


def _saved_document() -> dict[str, Any]:
    clock, wall = Clock(), Wall()
    tracker = make_tracker(clock)
    feed(tracker, clock, [(1, 2, "", 0), (2, 3, "", 1), (1, 0, "AAPL", 0), (1, 1, "AAPL", 3),
                          (3, 0, "BTC-USD", 8), (4, 4, "", 0)])  # fmt: skip
    saved: dict[str, Any] = json.loads(json.dumps(export_state(tracker, wall)))
    return saved


SAVED = _saved_document()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_mutations(SAVED), json_values))
def test_garbage_never_raises_and_keeps_the_caps(document: Any) -> None:
    clock = Clock()
    tracker = make_tracker(clock, max_devices=3, max_symbols=1)
    result = restore_state(tracker, document, Wall())
    assert len(tracker.fleet.devices) <= 3 and len(tracker.correlator.symbols) <= 1
    if result.ignored:
        assert tracker.fleet.devices == {} and tracker.correlator.symbols == {}
    # What was restored works: snapshots and further traffic.
    SnapshotTaker(tracker, clock=clock).take()
    feed(tracker, clock, [(1, 0, "AAPL", 1), (1, 1, "AAPL", 1)])
    assert "AAPL" in tracker.correlator.symbols
    assert json.loads(json.dumps(export_state(tracker)))["format"] == FORMAT


def test_with_a_ddsketch_laid_out_otherwise_counters_are_saved_and_windows_are_not(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The sketch's bins are read only behind a check of ddsketch's layout: if it fails (as
    with another ddsketch), the windows come back empty, everything else as saved."""
    monkeypatch.setattr(windowed, "DenseStore", type("DenseStore", (), {}))
    monkeypatch.setattr(windowed, "_warned", False)
    clock, wall = Clock(), Wall()
    tracker = make_tracker(clock)
    feed(tracker, clock, [(1, 0, "AAPL", 0), (1, 1, "AAPL", 2), (2, 0, "BTC-USD", 1),
                          (2, 1, "BTC-USD", 3), (2, 2, "", 0)])  # fmt: skip
    saved = json.loads(json.dumps(export_state(tracker, wall)))
    assert all(s["window"]["slots"] == [] for s in saved["symbols"].values())

    restored = make_tracker(clock)
    result = restore_state(restored, saved, wall)
    assert (result.ignored, result.symbols, result.skipped) == ("", 2, 0)
    assert restored.correlator.totals() == tracker.correlator.totals()
    for symbol, stats in tracker.correlator.symbols.items():
        again = restored.correlator.symbols[symbol]
        assert (again.responses, again.bucket_counts) == (stats.responses, stats.bucket_counts)
        assert stats.latency.summary().count == 1 and again.latency.summary().count == 0
    assert caplog.text.count("latency windows are neither saved nor restored") == 1

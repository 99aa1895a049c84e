"""The slowest-symbols ranking and the device counts by version, tick after tick, on /metrics.

Each tick's ranking and counts are complete sets: a symbol that left the ranking and a
firmware no online device runs leave the sink at once, while Home Assistant's snapshot,
which reads the tracker and never the sink, gives the same ranking.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from custom_components.fleet_metrics.core.exporters.line_protocol import encode_samples
from custom_components.fleet_metrics.core.exporters.prometheus import PrometheusSink
from custom_components.fleet_metrics.core.sources.tickrmeter.correlator import Correlator
from custom_components.fleet_metrics.core.sources.tickrmeter.fleet import Fleet
from custom_components.fleet_metrics.core.sources.tickrmeter.samples import HELP, tick_samples
from custom_components.fleet_metrics.core.sources.tickrmeter.snapshot import SnapshotTaker
from custom_components.fleet_metrics.core.sources.tickrmeter.tracker import FleetTracker
from tests.core.test_prometheus import render


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_tracker(clock: Clock) -> FleetTracker:
    return FleetTracker(Correlator(clock=clock), Fleet(device_timeout=60.0, clock=clock))


def answered(tracker: FleetTracker, clock: Clock, symbol: str, latency: float, times: int) -> None:
    for index in range(times):
        device = f"{symbol}{index:04d}"
        tracker.correlator.request(device, symbol)
        clock.now += latency
        tracker.correlator.response(device, symbol)


def tick(tracker: FleetTracker, sink: PrometheusSink, top: int) -> str:
    for sample in tick_samples(tracker, top, per_device=False):
        sink.add(sample)
    return render(sink)


def ranking(text: str) -> list[tuple[str, str]]:
    """(rank, symbol) of every ranking series on the page, in rank order."""
    return sorted(
        (sample.labels["rank"], sample.labels["symbol"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tickrmeter_slowest_symbols_ranking"
    )


def counts(text: str, name: str, label: str) -> dict[str, float]:
    return {
        sample.labels[label]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_a_tick_where_the_slowest_symbol_changes_leaves_exactly_top_series() -> None:
    clock = Clock()
    tracker = new_tracker(clock)
    sink = PrometheusSink(help_texts=HELP, clock=clock)
    for symbol, latency in (("AAPL", 2.0), ("BTC", 1.0), ("ETH", 0.5), ("SOL", 0.1)):
        answered(tracker, clock, symbol, latency, 20)
    assert ranking(tick(tracker, sink, top=3)) == [("1", "AAPL"), ("2", "BTC"), ("3", "ETH")]

    answered(tracker, clock, "SOL", 5.0, 20)  # SOL's p95 goes past everyone's (in 100 s)
    text = tick(tracker, sink, top=3)
    assert ranking(text) == [("1", "SOL"), ("2", "AAPL"), ("3", "BTC")]
    snapshot = SnapshotTaker(tracker, top=3, clock=clock).take()
    assert [symbol for symbol, _ in snapshot.slowest] == ["SOL", "AAPL", "BTC"]
    # Every symbol keeps its own series; only the ranking is a set.
    assert set(counts(text, "tickrmeter_stock_update_requests_total", "symbol")) == {
        "AAPL", "BTC", "ETH", "SOL"
    }  # fmt: skip


def test_an_empty_ranking_leaves_no_ranking_series() -> None:
    clock = Clock()
    tracker = new_tracker(clock)
    sink = PrometheusSink(help_texts=HELP, clock=clock, ttl=3600.0)
    answered(tracker, clock, "AAPL", 1.0, 5)
    assert ranking(tick(tracker, sink, top=5)) == [("1", "AAPL")]
    clock.now += 1000  # past the 300 s latency window: nothing left to rank
    text = tick(tracker, sink, top=5)
    assert ranking(text) == []
    assert "tickrmeter_slowest_symbols_ranking" not in text


def test_a_firmware_no_online_device_runs_leaves_at_once() -> None:
    clock = Clock()
    tracker = new_tracker(clock)
    sink = PrometheusSink(help_texts=HELP, clock=clock, ttl=3600.0)
    fleet = tracker.fleet
    for device in ("A", "B"):
        fleet.status(device, {"firmware_version": "62p", "charging": "1"})
    assert counts(tick(tracker, sink, 5), "tickrmeter_devices_by_firmware", "firmware_version") == {
        "62p": 2
    }
    fleet.status("A", {"firmware_version": "70"})
    text = tick(tracker, sink, 5)
    by_firmware = counts(text, "tickrmeter_devices_by_firmware", "firmware_version")
    assert by_firmware == {"62p": 1, "70": 1}
    fleet.status("B", {"firmware_version": "70", "charging": "0"})
    text = tick(tracker, sink, 5)
    assert counts(text, "tickrmeter_devices_by_firmware", "firmware_version") == {"70": 2}
    assert counts(text, "tickrmeter_devices_by_charging", "charging") == {"yes": 1, "no": 1}

    clock.now += 120  # past device_timeout: no device online
    text = tick(tracker, sink, 5)
    for name in ("firmware", "inner_version", "flash_id", "charging"):
        assert f"tickrmeter_devices_by_{name}" not in text
    assert "tickrmeter_devices_online 0.0" in text
    assert "tickrmeter_devices_known 2.0" in text


def test_line_protocol_writes_the_sets_as_points_and_nothing_for_an_empty_one() -> None:
    clock = Clock()
    tracker = new_tracker(clock)
    answered(tracker, clock, "AAPL", 1.0, 5)
    samples = tick_samples(tracker, 5, per_device=False)
    lines = encode_samples(samples).splitlines()
    assert len(lines) == sum(1 for sample in samples if sample.fields or sample.histogram)
    assert sum(line.startswith("tickrmeter_slowest_symbols,") for line in lines) == 1
    # No device yet: each count by attribute is an empty set, a sample without a line.
    assert not any("by_firmware" in line for line in lines)


@pytest.mark.parametrize("top", [1, 3])
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from(["AAPL", "BTC", "ETH", "SOL", "ADA"]), st.floats(0.01, 9)),
            max_size=6,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_after_any_ticks_the_page_shows_the_current_ranking_only(
    top: int, ticks: list[list[tuple[str, float]]]
) -> None:
    clock = Clock()
    tracker = new_tracker(clock)
    sink = PrometheusSink(help_texts=HELP, clock=clock)
    for answers in ticks:
        for symbol, latency in answers:
            answered(tracker, clock, symbol, latency, 1)
        text = tick(tracker, sink, top)
        expected = tracker.correlator.slowest(top)
        assert ranking(text) == [
            (str(rank), symbol) for rank, (symbol, _) in enumerate(expected, start=1)
        ]
        assert len(ranking(text)) <= top

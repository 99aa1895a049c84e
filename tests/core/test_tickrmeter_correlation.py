from __future__ import annotations

import random

import pytest

from custom_components.fleet_metrics.core.sources.tickrmeter.correlator import Correlator
from custom_components.fleet_metrics.core.stats.windowed import WindowedLatency


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_answer_closes_request_with_its_latency(clock: Clock) -> None:
    correlator = Correlator(clock=clock)
    correlator.request("08A6F792DD5C", "AAPL")
    clock.now += 0.25
    assert correlator.response("08A6F792DD5C", "AAPL") == pytest.approx(0.25)
    stats = correlator.symbols["AAPL"]
    assert (stats.requests, stats.responses, stats.timeouts) == (1, 1, 0)
    assert stats.latency.summary().count == 1
    assert correlator.pending == 0


def test_answers_go_to_the_right_device_and_symbol(clock: Clock) -> None:
    correlator = Correlator(clock=clock)
    correlator.request("A", "AAPL")
    correlator.request("B", "AAPL")
    correlator.request("A", "BTC")
    clock.now += 1
    correlator.response("B", "AAPL")
    clock.now += 1
    assert correlator.response("A", "BTC") == pytest.approx(2)
    assert correlator.response("A", "AAPL") == pytest.approx(2)
    assert correlator.symbols["AAPL"].responses == 2


def test_timeouts_are_swept_oldest_first_and_late_answers_are_unsolicited(clock: Clock) -> None:
    correlator = Correlator(request_timeout=30, clock=clock)
    correlator.request("A", "AAPL")
    clock.now += 20
    correlator.request("B", "AAPL")
    clock.now += 15  # A is 35 s old, B 15 s
    assert correlator.sweep() == 1
    assert correlator.pending == 1
    assert correlator.symbols["AAPL"].timeouts == 1
    assert correlator.response("A", "AAPL") is None
    assert correlator.symbols["AAPL"].unsolicited == 1
    assert correlator.response("B", "AAPL") == pytest.approx(15)
    assert correlator.symbols["AAPL"].response_ratio == pytest.approx(0.5)


def test_duplicate_request_keeps_the_first_time(clock: Clock) -> None:
    correlator = Correlator(clock=clock)
    correlator.request("A", "TSLA")
    clock.now += 5
    correlator.request("A", "TSLA")
    clock.now += 1
    assert correlator.response("A", "TSLA") == pytest.approx(6)
    stats = correlator.symbols["TSLA"]
    assert (stats.requests, stats.duplicates, stats.responses) == (2, 1, 1)


def test_pending_is_capped_and_evictions_counted(clock: Clock) -> None:
    correlator = Correlator(max_pending=3, clock=clock)
    for device in "ABCDE":
        correlator.request(device, "AAPL")
        clock.now += 1
    assert correlator.pending == 3
    assert correlator.evicted == 2
    assert correlator.response("A", "AAPL") is None, "the oldest were evicted"
    assert correlator.response("E", "AAPL") == pytest.approx(1)


def test_sweep_touches_only_expired_entries(clock: Clock) -> None:
    correlator = Correlator(request_timeout=30, clock=clock)
    for i in range(10_000):
        correlator.request(f"D{i}", "AAPL")
    clock.now += 31
    correlator.request("fresh", "AAPL")
    assert correlator.sweep() == 10_000
    assert correlator.sweep() == 0
    assert correlator.pending == 1


def test_slowest_symbols_ranking(clock: Clock) -> None:
    correlator = Correlator(clock=clock)
    for symbol, latency in (("AAPL", 0.1), ("BTC", 2.0), ("TSLA", 0.5)):
        for device in range(20):
            correlator.request(str(device), symbol)
        clock.now += latency
        for device in range(20):
            correlator.response(str(device), symbol)
    ranking = correlator.slowest(top=2)
    assert [symbol for symbol, _ in ranking] == ["BTC", "TSLA"]
    assert ranking[0][1] == pytest.approx(2.0, rel=0.02)


@pytest.mark.parametrize("distribution", ["lognormal", "uniform", "bimodal"])
def test_window_quantiles_within_the_stated_relative_error(clock: Clock, distribution: str) -> None:
    rng = random.Random(42)
    window = WindowedLatency(window=300, slots=10, relative_accuracy=0.01, clock=clock)
    values = []
    for i in range(20_000):
        if distribution == "lognormal":
            value = rng.lognormvariate(-1.5, 0.8)
        elif distribution == "uniform":
            value = rng.uniform(0.05, 3.0)
        else:
            value = rng.gauss(0.2, 0.02) if i % 10 else rng.gauss(4.0, 0.3)
        value = max(value, 1e-4)
        values.append(value)
        window.add(value)
        clock.now += 0.01  # 200 s in all: every value is inside the window
    values.sort()
    summary = window.summary()
    assert summary.count == len(values)
    for q, got in ((0.5, summary.p50), (0.95, summary.p95), (0.99, summary.p99)):
        exact = values[int(q * (len(values) - 1))]
        assert got == pytest.approx(exact, rel=0.011), q
    assert summary.maximum == values[-1]
    assert summary.average == pytest.approx(sum(values) / len(values))


def test_window_slides(clock: Clock) -> None:
    window = WindowedLatency(window=300, slots=10, clock=clock)
    window.add(10.0)
    clock.now += 200
    window.add(1.0)
    assert window.summary().maximum == 10.0
    clock.now += 150  # the 10 s value is 350 s old now
    summary = window.summary()
    assert (summary.count, summary.maximum) == (1, 1.0)
    clock.now += 400
    assert window.summary().count == 0
    assert window.summary().p95 is None


def test_histogram_buckets_are_cumulative_since_start(clock: Clock) -> None:
    correlator = Correlator(clock=clock, buckets=(0.1, 1.0))
    for latency in (0.05, 0.1, 0.5, 2.0, 40.0):
        clock.now = 0.0  # then the latency is exact: 0.1 sits on its bucket's inclusive bound
        correlator.request("A", "AAPL")
        clock.now += latency
        correlator.response("A", "AAPL")
    histogram = correlator.histogram(correlator.symbols["AAPL"])
    assert histogram.buckets == ((0.1, 2), (1.0, 3), (float("inf"), 5))
    assert histogram.count == 5
    assert histogram.sum == pytest.approx(42.65)

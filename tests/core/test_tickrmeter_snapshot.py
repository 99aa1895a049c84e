"""Rates, ratios and degraded/recovered symbols from a fleet driven by a controllable clock."""

from __future__ import annotations

import orjson
import pytest

from custom_components.fleet_metrics.core.sources.tickrmeter.correlator import Correlator
from custom_components.fleet_metrics.core.sources.tickrmeter.fleet import Fleet
from custom_components.fleet_metrics.core.sources.tickrmeter.health import (
    REASON_LATENCY,
    REASON_TIMEOUTS,
    SymbolHealth,
    Thresholds,
    Transition,
)
from custom_components.fleet_metrics.core.sources.tickrmeter.snapshot import SnapshotTaker
from custom_components.fleet_metrics.core.sources.tickrmeter.tracker import FleetTracker
from custom_components.fleet_metrics.core.stats.windowed import WindowedLatency
from tests.core.test_tickrmeter_correlation import Clock


def fleet(clock: Clock) -> FleetTracker:
    return FleetTracker(
        Correlator(
            request_timeout=30,
            clock=clock,
            latency_factory=lambda: WindowedLatency(window=300, clock=clock),
        ),
        Fleet(clock=clock),
    )


def device(index: int) -> str:
    return f"08A6F792{index:04X}"


def ask(tracker: FleetTracker, index: int, symbol: str) -> None:
    body = {"type": "UPDATE", "device": device(index), "symbol": symbol}
    tracker.handle("STOCKPRICEUPDATE", orjson.dumps(body))


def answer(tracker: FleetTracker, index: int, symbol: str) -> None:
    tracker.handle(device(index), orjson.dumps({"symbol": symbol, "price": "$1"}))


def traffic(tracker: FleetTracker, clock: Clock, symbol: str, asked: int, answered: int,
            latency: float) -> None:  # fmt: skip
    for index in range(asked):
        ask(tracker, index, symbol)
    clock.now += latency
    for index in range(answered):
        answer(tracker, index, symbol)


def test_rates_per_minute_and_ratios_over_the_rate_window() -> None:
    clock = Clock()
    tracker = fleet(clock)
    taker = SnapshotTaker(tracker, rate_window=60, clock=clock)
    first = taker.take()
    assert first.rates.requests is None, "one snapshot has no rate yet"
    traffic(tracker, clock, "AAPL", asked=30, answered=30, latency=0.2)
    traffic(tracker, clock, "BTC", asked=10, answered=6, latency=1.0)
    clock.now += 40  # the four open BTC requests time out (30 s)
    snapshot = taker.take()  # 41.2 s after the first one
    minutes = 41.2 / 60
    assert snapshot.rates.requests == pytest.approx(40 / minutes)
    assert snapshot.rates.responses == pytest.approx(36 / minutes)
    assert snapshot.rates.timeouts == pytest.approx(4 / minutes)
    assert snapshot.rates.response_ratio == pytest.approx(36 / 40)
    btc = snapshot.symbols["BTC"]
    assert btc.rates.timeout_ratio == pytest.approx(0.4)
    assert btc.latency.p95 == pytest.approx(1.0, rel=0.011)
    assert snapshot.latency.count == 36, "the fleet latency merges every symbol's window"
    assert snapshot.slowest[0][0] == "BTC"
    assert snapshot.fleet.online == 30

    # A minute later with no traffic: the rate window holds nothing new.
    clock.now += 61
    quiet = taker.take()
    assert quiet.rates.requests == 0
    assert quiet.rates.timeout_ratio is None


def test_symbols_degrade_and_recover_once_each_with_enough_evidence() -> None:
    clock = Clock()
    tracker = fleet(clock)
    taker = SnapshotTaker(tracker, rate_window=60, clock=clock)
    health = SymbolHealth(Thresholds(timeout_ratio=0.2, p95_seconds=2.0, min_outcomes=5))
    taker.take()
    traffic(tracker, clock, "AAPL", asked=10, answered=5, latency=0.1)  # half time out
    traffic(tracker, clock, "TSLA", asked=10, answered=10, latency=3.0)  # slow
    traffic(tracker, clock, "MSFT", asked=3, answered=0, latency=0.1)  # too few to judge
    clock.now += 31
    transitions = health.update(taker.take())
    assert [(t.symbol, t.degraded, t.reasons) for t in transitions] == [
        ("AAPL", True, (REASON_TIMEOUTS,)),
        ("TSLA", True, (REASON_LATENCY,)),
    ]
    assert health.update(taker.take()) == [], "a degraded symbol is reported once"

    # The next minute AAPL answers everything; TSLA stays slow (its p95 window is 5 min).
    clock.now += 61
    taker.take()
    traffic(tracker, clock, "AAPL", asked=20, answered=20, latency=0.1)
    clock.now += 1
    transitions = health.update(taker.take())
    assert transitions == [Transition("AAPL", False, (), 0.0, pytest.approx(0.1, rel=0.011))]
    assert set(health.degraded) == {"TSLA"}

"""What a hostile or broken publisher can do to the TickrMeter tracker: names are checked
before they become labels, every map stays within its cap, what a cap pushes out is
forgotten (counts, memory and series), and every unusable message is one counted rejection."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from custom_components.fleet_metrics.core.rejects import Rejected, Rejects
from custom_components.fleet_metrics.core.sources.tickrmeter.caps import make_room
from custom_components.fleet_metrics.core.sources.tickrmeter.correlator import Correlator
from custom_components.fleet_metrics.core.sources.tickrmeter.fleet import OTHER, Fleet
from custom_components.fleet_metrics.core.sources.tickrmeter.health import SymbolHealth, Thresholds
from custom_components.fleet_metrics.core.sources.tickrmeter.names import (
    MAX_NAME_LENGTH,
    valid_label_text,
    valid_symbol,
)
from custom_components.fleet_metrics.core.sources.tickrmeter.samples import tick_samples
from custom_components.fleet_metrics.core.sources.tickrmeter.snapshot import SnapshotTaker
from custom_components.fleet_metrics.core.sources.tickrmeter.tracker import FleetTracker
from tests.core.test_tickrmeter_correlation import Clock

REAL_TICKERS = ["AAPL", "BRK.B", "BTC-USD", "^GSPC", "EURUSD=X", "BINANCE:BTCUSDT", "BTC/USD",
                "M&M.NS", "spy", "X" * MAX_NAME_LENGTH]  # fmt: skip
BAD_NAMES = ["", "A" * (MAX_NAME_LENGTH + 1), "A" * 1_000_000, "BTC USD", "AAPL\n", "A\x00B",
             "A\tB", "AAPL\x1b[2J", "Ä", "€", "A\"B", "A\\", "{x}", "a,b"]  # fmt: skip


def device(index: int) -> str:
    return f"{index:012X}"


def request(dev: str, symbol: object) -> tuple[str, bytes]:
    return "STOCKPRICEUPDATE", orjson.dumps({"type": "UPDATE", "device": dev, "symbol": symbol})


def answer(dev: str, symbol: object) -> tuple[str, bytes]:
    return dev, orjson.dumps({"symbol": symbol, "price": "$1"})


def status(dev: str, **fields: object) -> tuple[str, bytes]:
    return "DEVICESTATUS_RES", orjson.dumps({"device": dev, **fields})


class Sink:
    def __init__(self) -> None:
        self.rejected: list[Rejected] = []

    def __call__(self, item: Rejected) -> None:
        self.rejected.append(item)


def tracker_with(clock: Clock, **caps: int) -> tuple[FleetTracker, Sink]:
    sink = Sink()
    correlator_caps = {k: v for k, v in caps.items() if k in ("max_symbols", "max_pending")}
    fleet_caps = {k: v for k, v in caps.items() if k in ("max_devices", "max_label_values")}
    tracker = FleetTracker(
        Correlator(clock=clock, **correlator_caps),
        Fleet(clock=clock, **fleet_caps),
        rejects=Rejects("fleet", sink),
    )
    return tracker, sink


def feed(tracker: FleetTracker, *messages: tuple[str, bytes]) -> None:
    for topic, payload in messages:
        tracker.handle(topic, payload)


def labels(tracker: FleetTracker) -> set[str]:
    """Every label value the tracker's samples carry."""
    return {
        value
        for sample in tick_samples(tracker, top=5, per_device=True)
        for value in sample.tags.values()
    }


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", REAL_TICKERS)
def test_real_tickers_become_labels(symbol: str) -> None:
    assert valid_symbol(symbol)
    tracker, sink = tracker_with(Clock())
    feed(tracker, request(device(1), symbol), answer(device(1), symbol))
    assert tracker.correlator.symbols[symbol].responses == 1
    assert symbol in labels(tracker)
    assert sink.rejected == []


def short(value: object) -> str:
    return repr(value)[:20]


@pytest.mark.parametrize("symbol", BAD_NAMES, ids=short)
@pytest.mark.parametrize("make", [request, answer])
def test_bad_symbols_are_counted_name_rejections_not_series(symbol: str, make: Any) -> None:
    tracker, sink = tracker_with(Clock())
    topic, payload = make(device(1), symbol)
    tracker.handle(topic, payload)
    assert tracker.correlator.symbols == {}
    assert tracker.correlator.pending == 0
    expected = "shape" if symbol == "" else "name"
    if len(payload) > tracker.max_payload:
        expected = "too_large"  # the megabyte symbol is refused before it is even decoded
    assert [(r.kind, r.topic, r.payload) for r in sink.rejected] == [(expected, topic, payload)]
    assert tracker.counts.malformed.total() == tracker.rejects.total == 1
    assert all(len(value) <= MAX_NAME_LENGTH for value in labels(tracker))


@pytest.mark.parametrize(
    "text", ["A" * (MAX_NAME_LENGTH + 1), "62p beta", "v1\n", "\x00", "Ä", 'a"b', "a\\"], ids=short
)
def test_status_texts_that_cannot_be_labels_are_refused_and_the_rest_applied(text: str) -> None:
    tracker, sink = tracker_with(Clock())
    tracker.handle(*status(device(7), firmware_version=text, battery="55"))
    dev = tracker.fleet.devices[device(7)]
    assert (dev.firmware, dev.battery) == (None, 55.0)
    assert [r.kind for r in sink.rejected] == ["name"]
    assert text not in labels(tracker)
    assert valid_label_text("62p") and valid_label_text("1.2.3-rc1+g0a1b")


def test_device_ids_that_are_not_12_hex_digits_are_refused() -> None:
    tracker, sink = tracker_with(Clock())
    for dev in ("08A6F792DD5", "08A6F792DD5CC", "08A6F792DD5G", "08A6F792DD5\n", " 08A6F792DD5"):
        feed(tracker, request(dev, "AAPL"), status(dev, battery=3))
    assert tracker.fleet.devices == {}
    assert [r.kind for r in sink.rejected] == ["name"] * 10


# --- caps -------------------------------------------------------------------------------


def test_a_symbol_flood_stays_within_the_cap_and_cannot_lock_real_symbols_out() -> None:
    clock = Clock()
    tracker, sink = tracker_with(clock, max_symbols=50)
    correlator = tracker.correlator
    for index in range(5_000):
        clock.now += 0.001
        if index % 20 == 0:  # the real symbol keeps being asked for during the flood
            feed(tracker, request(device(1), "AAPL"), answer(device(1), "AAPL"))
        tracker.handle(*request(device(index), f"G{index}"))
        assert len(correlator.symbols) <= 50
    assert correlator.symbols["AAPL"].responses == 250, "never forgotten while in use"
    assert correlator.symbols_forgotten == 5_000 - len(correlator.symbols) + 1
    # A new real symbol after the flood gets in and stays.
    feed(tracker, request(device(2), "MSFT"), answer(device(2), "MSFT"))
    assert correlator.symbols["MSFT"].responses == 1
    assert sink.rejected == [], "valid names over the cap are forgotten, not rejected"


def test_forgotten_symbols_keep_fleet_totals_and_rates_from_going_backwards() -> None:
    clock = Clock()
    tracker, _ = tracker_with(clock, max_symbols=10)
    taker = SnapshotTaker(tracker, rate_window=60, clock=clock)
    taker.take()
    feed(tracker, *(request(device(i), "AAPL") for i in range(30)))
    clock.now += 1
    first = taker.take()
    before = tracker.correlator.totals()
    feed(tracker, *(request(device(i), f"G{i}") for i in range(40)))  # pushes AAPL out
    assert "AAPL" not in tracker.correlator.symbols
    feed(tracker, request(device(99), "AAPL"))  # AAPL returns, counting from 1
    clock.now += 1
    second = taker.take()
    assert tracker.correlator.totals()[0] == before[0] + 41
    assert second.rates.requests is not None and first.rates.requests is not None
    assert second.rates.requests >= first.rates.requests
    assert all(
        s.rates.requests is not None and s.rates.requests >= 0 for s in second.symbols.values()
    )
    clock.now += 31  # the open requests of forgotten symbols time out: counted fleet-wide
    taker.take()
    assert tracker.correlator.totals()[2] == 71


def test_device_table_is_capped_least_recently_seen_first() -> None:
    clock = Clock()
    tracker, _ = tracker_with(clock, max_devices=100)
    fleet = tracker.fleet
    for index in range(1_000):
        clock.now += 1
        tracker.handle(*status(device(10_000), battery=50))  # a real device, always talking
        tracker.handle(*status(device(index), battery=1))
        assert len(fleet.devices) <= 100
    assert device(10_000) in fleet.devices
    assert fleet.evicted == 1_001 - len(fleet.devices)
    assert device(999) in fleet.devices and device(0) not in fleet.devices


def test_pending_requests_are_capped() -> None:
    tracker, _ = tracker_with(Clock(), max_pending=100)
    feed(tracker, *(request(device(i), "AAPL") for i in range(1_000)))
    assert tracker.correlator.pending == 100
    assert tracker.correlator.evicted == 900


def test_label_values_of_fleet_counts_are_capped_with_the_rest_as_other() -> None:
    clock = Clock()
    tracker, _ = tracker_with(clock, max_label_values=5)
    for index in range(200):
        firmware = "62p" if index < 100 else f"garbage{index}"
        tracker.handle(*status(device(index), firmware_version=firmware))
    by_firmware = tracker.fleet.summary().by_firmware
    assert len(by_firmware) == 5
    assert by_firmware["62p"] == 100
    assert by_firmware[OTHER] == 200 - sum(v for k, v in by_firmware.items() if k != OTHER)


def test_degraded_symbols_that_were_forgotten_leave_the_health_map() -> None:
    clock = Clock()
    tracker, _ = tracker_with(clock, max_symbols=10)
    taker = SnapshotTaker(tracker, clock=clock)
    health = SymbolHealth(Thresholds(timeout_ratio=0.1, min_outcomes=5))
    taker.take()
    feed(tracker, *(request(device(i), "AAPL") for i in range(10)))
    clock.now += 31
    assert [t.symbol for t in health.update(taker.take())] == ["AAPL"]
    feed(tracker, *(request(device(i), f"G{i}") for i in range(20)))
    health.update(taker.take())
    assert health.degraded == {}


def test_make_room_forgets_the_least_recently_seen_tenth() -> None:
    class Entry:
        def __init__(self, last_seen: float) -> None:
            self.last_seen = last_seen

    table = {f"k{i}": Entry(float((i * 7) % 100)) for i in range(100)}
    forgotten = make_room(table, 100)
    assert sorted(e.last_seen for _, e in forgotten) == [float(v) for v in range(10)]
    assert len(table) == 90 and min(e.last_seen for e in table.values()) == 10.0
    assert make_room(table, 100) == []


def _traced_after_flood(new_ids: int) -> int:
    clock = Clock()
    tracker, _ = tracker_with(clock, max_symbols=50, max_devices=100, max_pending=100)
    gc.collect()
    start = tracemalloc.get_traced_memory()[0]
    for index in range(new_ids):
        clock.now += 0.001
        tracker.handle(*request(device(index), f"S{index}"))
        tracker.handle(*answer(device(index + 1), f"S{index}"))
        tracker.handle(*status(device(index + 2), firmware_version=f"f{index}"))
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - start


def test_forgotten_entries_hold_no_memory() -> None:
    """Ten times the ids cost no more than one time: nothing forgotten is still referenced."""
    tracemalloc.start()
    try:
        _traced_after_flood(500)  # one-time allocations (orjson's buffer, regex caches)
        filled = _traced_after_flood(500)
        flooded = _traced_after_flood(5_000)
    finally:
        tracemalloc.stop()
    assert flooded < filled * 1.15, (filled, flooded)


# --- every unusable message is one counted rejection -------------------------------------


class ExplodingFleet(Fleet):
    """A fault nobody foresaw, in the middle of applying a message."""

    def status(self, device_id: str, payload: Mapping[str, Any]) -> str | None:
        if payload.get("explode"):
            raise RecursionError("maximum recursion depth exceeded")
        return super().status(device_id, payload)


def test_an_unforeseen_exception_is_a_counted_rejection_and_the_tracker_carries_on() -> None:
    sink = Sink()
    tracker = FleetTracker(fleet=ExplodingFleet(), rejects=Rejects("fleet", sink))
    tracker.handle(*status(device(1), explode=True))
    tracker.handle(*status(device(2), battery=80))
    assert [(r.kind, r.reason.split(":")[0]) for r in sink.rejected] == [("exception", "status")]
    assert "RecursionError" in sink.rejected[0].reason
    assert tracker.counts.malformed == {"status": 1}
    assert tracker.fleet.devices[device(2)].battery == 80.0


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"[" * 5_000 + b"]" * 5_000, "json"),
        (b'{"device":' * 1_200, "json"),
        (b"NaN", "json"),
        (b'{"device":"08A6F792DD5C","symbol":"AAPL","x":1e999}', "json"),
        (b'"just a string"', "shape"),
        (b'{"device":["08A6F792DD5C"],"symbol":"AAPL"}', "shape"),
        (b'{"device":"08A6F792DD5C","symbol":{"$gt":""}}', "shape"),
        (b'{"device":"08A6F792DD5C","symbol":"' + b"A" * 20_000 + b'"}', "too_large"),
    ],
    ids=short,
)
def test_payload_faults_are_rejections_by_kind(payload: bytes, kind: str) -> None:
    tracker, sink = tracker_with(Clock())
    tracker.handle("STOCKPRICEUPDATE", payload)
    assert [r.kind for r in sink.rejected] == [kind]
    assert tracker.counts.malformed == {"request": 1}
    assert tracker.correlator.symbols == {}


def test_the_tracker_shares_the_sources_rejects_and_defaults_to_its_own() -> None:
    assert FleetTracker().rejects.source == "tickrmeter"
    rejects = Rejects("mine")
    assert FleetTracker(rejects=rejects).rejects is rejects

"""Property tests: whatever arrives on whatever topic, the TickrMeter tracker never raises,
counts every unusable message once, keeps every map within its cap, and only ever turns
checked names into labels."""

from __future__ import annotations

import string
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.rejects import Rejects
from custom_components.fleet_metrics.core.sources.tickrmeter.correlator import Correlator
from custom_components.fleet_metrics.core.sources.tickrmeter.fleet import Fleet
from custom_components.fleet_metrics.core.sources.tickrmeter.health import SymbolHealth
from custom_components.fleet_metrics.core.sources.tickrmeter.names import (
    valid_label_text,
    valid_symbol,
)
from custom_components.fleet_metrics.core.sources.tickrmeter.samples import tick_samples
from custom_components.fleet_metrics.core.sources.tickrmeter.snapshot import SnapshotTaker
from custom_components.fleet_metrics.core.sources.tickrmeter.tracker import DEVICE_ID, FleetTracker
from tests.core.test_tickrmeter_correlation import Clock

CAP = 4
MAX_LABEL_VALUES = 3
TOPICS = ["STOCKPRICEUPDATE", "DEVICESTATUS_RES", "TICKRMETERBOOT", "DEVICE_BOOTED",
          "HTTPSTREAMSTOCKS"]  # fmt: skip
KEYS = ["device", "symbol", "firmware_version", "iv", "flash_id", "battery", "charging", "vin",
        "uptime", "wifi_lost", "type"]  # fmt: skip

hex_ids = st.one_of(
    st.integers(0, 2**48 - 1).map(lambda i: f"{i:012X}"),
    st.text("0123456789abcdefABCDEF", min_size=12, max_size=12),
)
# A few devices and symbols recur, so answers meet their requests and caps fill and churn.
devices = st.one_of(st.sampled_from(["08A6F792DD5C", "ec6260314dd0", "4022D8E2FB0C"]), hex_ids)
symbols = st.one_of(
    st.sampled_from(["AAPL", "BRK.B", "^GSPC", "EURUSD=X", "BINANCE:BTCUSDT"]),
    st.integers(0, 10**9).map(lambda i: f"G{i}"),  # many distinct: the caps fill and churn
    st.text(string.ascii_letters + string.digits + ".-^=:/", min_size=1, max_size=40),
    st.text(max_size=40),
)
huge = st.integers(1, 40_000).map(lambda n: "A" * n)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["NaN", "inf", "-Infinity", "1e999", "78%", "4.9V", "", " ", "\x00"]),
    huge,
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int, opener: bytes, closer: bytes) -> bytes:
    return opener * depth + b"1" + closer * depth


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(st.binary(max_size=200))
    if choice == 1:
        depth = draw(st.integers(1, 3_000))
        return draw(st.sampled_from([nested(depth, b"[", b"]"), nested(depth, b'{"a":', b"}")]))
    if choice == 2:
        return orjson.dumps(draw(json_values))
    # Close to a real message: right keys, any values (or right values), odd extras.
    body: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=len(KEYS), unique=True)):
        if key == "device":
            body[key] = draw(st.one_of(devices, json_values))
        elif key == "symbol":
            body[key] = draw(st.one_of(symbols, json_values))
        else:
            body[key] = draw(json_values)
    return orjson.dumps(body)


topics = st.one_of(st.sampled_from(TOPICS), devices, st.text(max_size=30))


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[str, bytes]:
    """A message of the right shape for its topic, with drawn names and values."""
    kind = draw(st.sampled_from(["request", "answer", "status", "boot"]))
    dev = draw(devices)
    if kind == "answer":
        return dev, orjson.dumps({"symbol": draw(symbols), "price": "$1"})
    body: dict[str, Any] = {"device": dev}
    if kind == "request":
        body["symbol"] = draw(symbols)
    elif kind == "status":
        fields = st.lists(st.sampled_from(KEYS[2:]), min_size=1, max_size=4, unique=True)
        body |= {key: draw(st.one_of(st.text(max_size=40), scalars)) for key in draw(fields)}
    topic = {"request": TOPICS[0], "status": TOPICS[1], "boot": TOPICS[2]}[kind]
    return topic, orjson.dumps(body)


messages = st.lists(st.one_of(well_formed(), st.tuples(topics, payloads())), max_size=40)
# Enough well-formed traffic to fill every cap several times over.
traffic = st.lists(well_formed(), min_size=4 * CAP, max_size=40)


def new_tracker(clock: Clock) -> FleetTracker:
    return FleetTracker(
        Correlator(clock=clock, max_symbols=CAP, max_pending=CAP),
        Fleet(clock=clock, max_devices=CAP, max_label_values=MAX_LABEL_VALUES),
        rejects=Rejects("fleet", log_interval=1e9),
    )


def check_invariants(tracker: FleetTracker) -> None:
    correlator, fleet = tracker.correlator, tracker.fleet
    assert len(correlator.symbols) <= CAP
    assert correlator.pending <= CAP
    assert len(fleet.devices) <= CAP
    assert all(valid_symbol(symbol) for symbol in correlator.symbols)
    assert all(DEVICE_ID.fullmatch(d) and d == d.upper() for d in fleet.devices)
    for dev in fleet.devices.values():
        for text in (dev.firmware, dev.inner_version, dev.flash_id):
            assert text is None or valid_label_text(text)
    assert tracker.counts.malformed.total() == tracker.rejects.total
    assert tracker.counts.malformed.total() <= tracker.counts.received.total()
    summary = fleet.summary()
    for by_value in (summary.by_firmware, summary.by_inner_version, summary.by_flash_id):
        assert len(by_value) <= MAX_LABEL_VALUES
        assert sum(by_value.values()) == summary.online


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_any_message_on_any_topic_is_used_or_counted_and_never_raises(
    batch: list[tuple[str, bytes]],
) -> None:
    clock = Clock()
    tracker = new_tracker(clock)
    for topic, payload in batch:
        clock.now += 0.5
        received = tracker.counts.received.total()
        tracker.handle(topic, payload)  # raising here fails the test
        assert tracker.counts.received.total() - received in (0, 1)
    check_invariants(tracker)
    label_values = [v for s in tick_samples(tracker, 5, per_device=True) for v in s.tags.values()]
    assert all(len(value) <= 32 for value in label_values)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic)
def test_well_formed_floods_churn_through_the_caps(batch: list[tuple[str, bytes]]) -> None:
    clock = Clock()
    tracker = new_tracker(clock)
    for topic, payload in batch:
        clock.now += 0.5
        tracker.handle(topic, payload)
        check_invariants(tracker)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(messages, traffic), st.lists(st.floats(0, 120), min_size=1, max_size=5))
def test_snapshots_and_health_stay_bounded_and_rates_never_negative(
    batch: list[tuple[str, bytes]], gaps: list[float]
) -> None:
    clock = Clock()
    tracker = new_tracker(clock)
    taker = SnapshotTaker(tracker, rate_window=60, clock=clock)
    health = SymbolHealth()
    taker.take()
    chunk = max(1, len(batch) // len(gaps))
    for index, gap in enumerate(gaps):
        for topic, payload in batch[index * chunk : (index + 1) * chunk]:
            tracker.handle(topic, payload)
        clock.now += gap
        snapshot = taker.take()
        health.update(snapshot)
        assert len(health.degraded) <= CAP
        assert set(health.degraded) <= set(tracker.correlator.symbols)
        for rates in (snapshot.rates, *(s.rates for s in snapshot.symbols.values())):
            for rate in (rates.requests, rates.responses, rates.timeouts):
                assert rate is None or rate >= 0
        check_invariants(tracker)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=64))
def test_names_that_pass_are_short_printable_ascii_without_spaces(text: str) -> None:
    for check in (valid_symbol, valid_label_text):
        if check(text):
            assert 0 < len(text) <= 32
            assert text.isascii() and text.isprintable()
            assert not any(char.isspace() for char in text)
            assert '"' not in text and "\\" not in text

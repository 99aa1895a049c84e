"""TickrMeter aggregates as samples: per symbol, fleet-wide, and per device behind a switch.

A symbol or device becomes a series only once it has been tracked since before
``settled_before`` (the runner passes the previous tick): a flood of made-up names churns
through the capped tables faster than a tick and so never reaches a sink, where each series
would live on for the sink's TTL; a real symbol shows from its second tick on.

The ranking and the counts of online devices by firmware, inner version, flash id and
charging state are sent as complete sets (``SetSample``): their label sets change from
tick to tick, and a symbol that left rank 1 or a firmware no device runs any more must leave
``/metrics`` at once, not after the sink's TTL. An empty set is one sample without fields.
Per-symbol and per-device series are not sets: they leave only when the capped tables
forget them, and a forgotten series' last value stays true until the TTL.
"""

from __future__ import annotations

import math
import time

from ...sample import CompleteSet, FieldValue, Sample, SetSample
from .tracker import FleetTracker

SYMBOL_COUNTERS = frozenset(
    {"requests", "responses", "timeout", "duplicate_requests", "unsolicited_responses"}
)

RANKING = CompleteSet(frozenset({"ranking"}))
# Online devices counted by an attribute: each field is a set of its own.
BY_ATTRIBUTE = {
    field_name: CompleteSet(frozenset({field_name}))
    for field_name in ("by_firmware", "by_inner_version", "by_flash_id", "by_charging")
}

HELP = {
    "tickrmeter_stock_update_requests": "Stock-update requests devices sent, by symbol.",
    "tickrmeter_stock_update_responses": "Requests the backend answered, by symbol.",
    "tickrmeter_stock_update_timeout": "Requests with no answer within request_timeout.",
    "tickrmeter_stock_update_duplicate_requests": "Requests for a pair that was still open.",
    "tickrmeter_stock_update_unsolicited_responses": "Answers nobody was waiting for.",
    "tickrmeter_stock_update_response_ratio": "Answered over answered plus timed out, 0 to 1.",
    "tickrmeter_stock_update_latency_seconds": "Request to answer time, since start.",
    "tickrmeter_stock_update_latency_p95_seconds": "95th percentile latency over the window.",
    "tickrmeter_slowest_symbols_ranking": "Windowed p95 latency of the slowest symbols; "
    "rank 1 is the slowest.",
    "tickrmeter_devices_online": "Devices heard from within device_timeout.",
    "tickrmeter_devices_known": "Devices in the table, online or not.",
    "tickrmeter_devices_low_battery": "Online devices below the low-battery level.",
    "tickrmeter_devices_by_firmware": "Online devices by firmware version.",
    "tickrmeter_devices_by_inner_version": "Online devices by inner version.",
    "tickrmeter_devices_by_flash_id": "Online devices by flash chip id.",
    "tickrmeter_devices_by_charging": "Online devices by charging state.",
    "tickrmeter_requests_pending": "Requests waiting for an answer.",
    "tickrmeter_requests_evicted": "Open requests dropped because the pending cap was hit.",
    "tickrmeter_symbols_tracked": "Symbols with statistics, at most max_symbols.",
    "tickrmeter_symbols_forgotten": "Symbols forgotten to make room under max_symbols.",
    "tickrmeter_devices_forgotten": "Devices forgotten to make room under max_devices.",
    "tickrmeter_messages_received": "Messages received, by kind.",
    "tickrmeter_messages_malformed": "Messages that could not be used, by kind.",
    "tickrmeter_device_battery_level": "Battery level in percent (per-device series).",
    "tickrmeter_device_uptime_seconds": "Device uptime (per-device series).",
    "tickrmeter_device_last_seen_timestamp_seconds": "Unix time of the device's last message.",
}


def symbol_samples(
    tracker: FleetTracker, now: int, top: int, settled_before: float = math.inf
) -> list[Sample]:
    correlator = tracker.correlator
    settled = {
        symbol: stats
        for symbol, stats in correlator.symbols.items()
        if stats.first_seen <= settled_before
    }
    windows = {symbol: stats.latency.summary() for symbol, stats in settled.items()}
    samples = []
    for symbol, stats in settled.items():
        tags = {"symbol": symbol}
        fields: dict[str, FieldValue] = {
            "requests": stats.requests,
            "responses": stats.responses,
            "timeout": stats.timeouts,
            "duplicate_requests": stats.duplicates,
            "unsolicited_responses": stats.unsolicited,
        }
        if (ratio := stats.response_ratio) is not None:
            fields["response_ratio"] = ratio
        window = windows[symbol]
        for name, value in (
            ("latency_p50_seconds", window.p50),
            ("latency_p95_seconds", window.p95),
            ("latency_p99_seconds", window.p99),
            ("latency_average_seconds", window.average),
            ("latency_max_seconds", window.maximum),
        ):
            if value is not None:
                fields[name] = value
        samples.append(Sample("tickrmeter_stock_update", tags, fields, now, SYMBOL_COUNTERS))
        samples.append(
            Sample(
                "tickrmeter_stock_update_latency_seconds",
                tags,
                {},
                now,
                histogram=correlator.histogram(stats),
            )
        )
    ranking: list[Sample] = [
        SetSample(
            "tickrmeter_slowest_symbols",
            {"symbol": symbol, "rank": str(rank)},
            {"ranking": p95},
            now,
            complete=RANKING,
        )
        for rank, (symbol, p95) in enumerate(correlator.slowest(top, windows), start=1)
    ]
    samples += ranking or [empty_set("tickrmeter_slowest_symbols", RANKING, now)]
    return samples


def empty_set(measurement: str, complete: CompleteSet, now: int) -> SetSample:
    """The sample that says a set is empty now (its fields hold nothing this tick)."""
    return SetSample(measurement, {}, {}, now, complete=complete)


def fleet_samples(tracker: FleetTracker, now: int) -> list[Sample]:
    summary = tracker.fleet.summary()
    samples = [
        Sample(
            "tickrmeter_devices",
            {},
            {
                "online": summary.online,
                "known": summary.devices,
                "low_battery": summary.low_battery,
            },
            now,
        ),
        Sample("tickrmeter_requests", {}, {"pending": tracker.correlator.pending}, now),
        Sample(
            "tickrmeter_requests",
            {},
            {"evicted": tracker.correlator.evicted},
            now,
            frozenset({"evicted"}),
        ),
        Sample("tickrmeter_symbols", {}, {"tracked": len(tracker.correlator.symbols)}, now),
        Sample(
            "tickrmeter_symbols",
            {},
            {"forgotten": tracker.correlator.symbols_forgotten},
            now,
            frozenset({"forgotten"}),
        ),
        Sample(
            "tickrmeter_devices",
            {},
            {"forgotten": tracker.fleet.evicted},
            now,
            frozenset({"forgotten"}),
        ),
    ]
    for field_name, tag, by_value in (
        ("by_firmware", "firmware_version", summary.by_firmware),
        ("by_inner_version", "inner_version", summary.by_inner_version),
        ("by_flash_id", "flash_id", summary.by_flash_id),
        ("by_charging", "charging", summary.charging),
    ):
        complete = BY_ATTRIBUTE[field_name]
        by = [
            SetSample(
                "tickrmeter_devices", {tag: value}, {field_name: count}, now, complete=complete
            )
            for value, count in by_value.items()
        ]
        samples += by or [empty_set("tickrmeter_devices", complete, now)]
    counts = tracker.counts
    for kind in sorted(set(counts.received) | set(counts.malformed)):
        samples.append(
            Sample(
                "tickrmeter_messages",
                {"kind": kind},
                {"received": counts.received[kind], "malformed": counts.malformed[kind]},
                now,
                frozenset({"received", "malformed"}),
            )
        )
    return samples


def device_samples(
    tracker: FleetTracker, now: int, settled_before: float = math.inf
) -> list[Sample]:
    """One series per device: only behind the ``per_device`` switch (8,000+ devices)."""
    fleet = tracker.fleet
    monotonic_now, wall_now = time.monotonic(), time.time()
    samples = []
    for device_id, device in fleet.devices.items():
        if device.first_seen > settled_before:
            continue
        fields: dict[str, FieldValue] = {
            "last_seen_timestamp_seconds": wall_now - (monotonic_now - device.last_seen),
            "boots": device.boots,
        }
        if device.battery is not None:
            fields["battery_level"] = device.battery
        if device.uptime is not None:
            fields["uptime_seconds"] = device.uptime
        tags = {"device_id": device_id, "firmware_version": device.firmware or ""}
        samples.append(Sample("tickrmeter_device", tags, fields, now, frozenset({"boots"})))
    return samples


def tick_samples(
    tracker: FleetTracker, top: int, per_device: bool, settled_before: float = math.inf
) -> list[Sample]:
    """``settled_before``: the monotonic time a symbol or device must have been tracked since
    to be a series (the default: every one)."""
    now = time.time_ns()
    samples = symbol_samples(tracker, now, top, settled_before) + fleet_samples(tracker, now)
    if per_device:
        samples += device_samples(tracker, now, settled_before)
    return samples

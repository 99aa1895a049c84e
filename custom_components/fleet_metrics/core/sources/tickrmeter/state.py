"""The fleet's state as JSON-able data, to outlive a restart: devices, counters, latency windows.

``export_state`` writes what the dashboards need to carry on where they stopped: the device
table, every symbol's counters and latency window, the message counts. Open requests are
left out: after a restart their answers count as unsolicited, as they would after a timeout.
Times are kept as ages ("seen 40 s ago") plus the wall-clock time of the save, because the
monotonic clock starts again with the process; a restore ages everything by the time the
process was down, so a device silent since then is offline and an old latency slot drops out
of its window.

``restore_state`` trusts nothing it reads (a store file can be corrupt, hand-edited or from
another version): a foreign or unreadable document is refused as a whole with the reason,
a bad device or symbol is skipped and counted, and the same caps apply as to what arrives
over the wire. It never raises, and it changes the tracker only once everything is read.

A latency window saves and restores itself (``WindowedLatency.export``/``restore``): its
quantiles come back exactly, or, with a ddsketch that keeps its bins otherwise, the window
comes back empty while the counters beside it are kept.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from heapq import nlargest
from typing import Any

from ...stats.windowed import WindowedLatency
from .correlator import SymbolStats, Totals
from .fleet import Device
from .names import valid_label_text, valid_symbol
from .tracker import DEVICE_ID, FleetTracker

FORMAT = "fleet_metrics.tickrmeter.state"
VERSION = 1
MESSAGE_KINDS = frozenset({"request", "status", "boot", "stream", "response"})
# A device row: the attributes in this order, then its age ("seen ago", "first seen ago").
DEVICE_ROW = (
    "firmware", "inner_version", "flash_id", "battery", "charging", "vin", "uptime",
    "wifi_lost", "boots", "seen_ago", "first_seen_ago",
)  # fmt: skip
# (requests, responses, timeouts, duplicates, unsolicited)
_COUNTS = ("requests", "responses", "timeouts", "duplicates", "unsolicited")
MAX_COUNT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restore did: ``ignored`` says why nothing was restored (empty when it was)."""

    ignored: str = ""
    devices: int = 0
    symbols: int = 0
    skipped: int = 0


class _Bad(ValueError):
    """One value that is not what the format says; the item holding it is skipped."""


# --- export ------------------------------------------------------------------------------


def _device_row(device: Device, now: float) -> list[Any]:
    return [
        device.firmware, device.inner_version, device.flash_id, device.battery, device.charging,
        device.vin, device.uptime, device.wifi_lost, device.boots,
        now - device.last_seen, now - device.first_seen,
    ]  # fmt: skip


def _symbol(stats: SymbolStats, now: float) -> dict[str, Any]:
    return {
        "counts": [getattr(stats, name) for name in _COUNTS],
        "buckets": list(stats.bucket_counts),
        "latency_sum": stats.latency_sum,
        "seen_ago": now - stats.last_seen,
        "first_seen_ago": now - stats.first_seen,
        "window": stats.latency.export(now),
    }


def export_state(tracker: FleetTracker, wall: Callable[[], float] = time.time) -> dict[str, Any]:
    """The tracker's lasting state, JSON-able (str keys, lists, numbers, None)."""
    fleet, correlator = tracker.fleet, tracker.correlator
    now = fleet.clock()
    symbols_now = correlator.clock()
    forgotten = correlator.forgotten
    return {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": wall(),
        "devices": {key: _device_row(device, now) for key, device in fleet.devices.items()},
        "devices_evicted": fleet.evicted,
        "buckets": list(correlator.buckets),
        "symbols": {
            symbol: _symbol(stats, symbols_now) for symbol, stats in correlator.symbols.items()
        },
        "forgotten": [forgotten.requests, forgotten.responses, forgotten.timeouts],
        "symbols_forgotten": correlator.symbols_forgotten,
        "requests_evicted": correlator.evicted,
        "received": dict(tracker.counts.received),
        "malformed": dict(tracker.counts.malformed),
    }


# --- restore -----------------------------------------------------------------------------


def _count(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise _Bad(f"not a count: {value!r:.40}")
    return value


def _real(value: Any, minimum: float = -math.inf) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value < minimum:
        raise _Bad(f"not a number: {value!r:.40}")
    return float(value)


def _optional_real(value: Any) -> float | None:
    return None if value is None else _real(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str or not valid_label_text(value):
        raise _Bad("not a label text")
    return value


def _list(value: Any, length: int | None = None) -> list[Any]:
    if type(value) is not list or (length is not None and len(value) != length):
        raise _Bad("not a list of the expected length")
    return value


def _device(row: Any, now: float) -> Device:
    fields = dict(zip(DEVICE_ROW, _list(row, len(DEVICE_ROW)), strict=True))
    charging = fields["charging"]
    if charging is not None and type(charging) is not bool:
        raise _Bad("charging is not true, false or null")
    seen_ago = _real(fields["seen_ago"], 0)
    return Device(
        firmware=_text(fields["firmware"]),
        inner_version=_text(fields["inner_version"]),
        flash_id=_text(fields["flash_id"]),
        battery=_optional_real(fields["battery"]),
        vin=_optional_real(fields["vin"]),
        uptime=_optional_real(fields["uptime"]),
        wifi_lost=_optional_real(fields["wifi_lost"]),
        charging=charging,
        boots=_count(fields["boots"]),
        last_seen=now - seen_ago,
        first_seen=now - max(_real(fields["first_seen_ago"], 0), seen_ago),
    )


def _restore_window(window: WindowedLatency, data: Any, now: float) -> None:
    try:
        window.restore(data, now)
    except ValueError as err:
        raise _Bad(str(err)) from err


def _stats(data: Any, tracker: FleetTracker, now: float, same_buckets: bool) -> SymbolStats:
    if type(data) is not dict:
        raise _Bad("a symbol is not an object")
    correlator = tracker.correlator
    counts = [_count(value) for value in _list(data.get("counts"), len(_COUNTS))]
    width = len(correlator.buckets) + 1
    buckets = [_count(value) for value in _list(data.get("buckets"), width)] if same_buckets \
        else [0] * width  # fmt: skip
    seen_ago = _real(data.get("seen_ago"), 0)
    stats = SymbolStats(
        **dict(zip(_COUNTS, counts, strict=True)),
        latency=correlator.new_window(),
        bucket_counts=buckets,
        latency_sum=_real(data.get("latency_sum"), 0) if same_buckets else 0.0,
        last_seen=now - seen_ago,
        first_seen=now - max(_real(data.get("first_seen_ago"), 0), seen_ago),
    )
    _restore_window(stats.latency, data.get("window"), now)
    return stats


def _kind_counts(data: Any) -> Counter[str]:
    if type(data) is not dict or not data.keys() <= MESSAGE_KINDS:
        raise _Bad("message counts of unknown kinds")
    return Counter({kind: _count(value) for kind, value in data.items()})


def _items(data: Any) -> list[tuple[Any, Any]]:
    if type(data) is not dict:
        raise _Bad("not an object")
    return list(data.items())


def restore_state(
    tracker: FleetTracker, data: Any, wall: Callable[[], float] = time.time
) -> Restored:
    """Put a saved state into a tracker that has not started; never raises (see module)."""
    try:
        return _restore(tracker, data, wall)
    except Exception as err:  # the promise is "never raises": whatever the file holds
        return Restored(ignored=f"unreadable: {type(err).__name__}: {err}"[:200])


def _restore(tracker: FleetTracker, data: Any, wall: Callable[[], float]) -> Restored:
    if type(data) is not dict or data.get("format") != FORMAT:
        return Restored(ignored="not a saved TickrMeter state")
    if data.get("version") != VERSION:
        return Restored(ignored=f"saved by another version ({data.get('version')!r:.20})")
    fleet, correlator = tracker.fleet, tracker.correlator
    down = max(0.0, wall() - _real(data.get("saved_at")))  # a clock set back: no time passed
    skipped = 0

    now = fleet.clock() - down
    devices: dict[str, Device] = {}
    for key, row in _items(data.get("devices")):
        try:
            if type(key) is not str or not DEVICE_ID.fullmatch(key) or key != key.upper():
                raise _Bad("not a device id")
            devices[key] = _device(row, now)
        except _Bad:
            skipped += 1
    room = max(0, fleet.max_devices - len(fleet.devices))
    kept = nlargest(room, devices.items(), key=lambda item: item[1].last_seen)
    skipped += len(devices) - len(kept)

    now = correlator.clock() - down
    same_buckets = data.get("buckets") == list(correlator.buckets)
    symbols: dict[str, SymbolStats] = {}
    for symbol, raw in _items(data.get("symbols")):
        try:
            if type(symbol) is not str or not valid_symbol(symbol):
                raise _Bad("not a symbol")
            symbols[symbol] = _stats(raw, tracker, now, same_buckets)
        except _Bad:
            skipped += 1
    room = max(0, correlator.max_symbols - len(correlator.symbols))
    newest = dict(nlargest(room, symbols.items(), key=lambda item: item[1].last_seen))
    forgotten = Totals(*(_count(value) for value in _list(data.get("forgotten"), 3)))
    for symbol, stats in symbols.items():
        if symbol not in newest:
            forgotten.add(stats)  # over the cap: counted as a forgotten symbol would be
    received = _kind_counts(data.get("received"))
    malformed = _kind_counts(data.get("malformed"))
    devices_evicted = _count(data.get("devices_evicted"))
    symbols_forgotten = _count(data.get("symbols_forgotten")) + len(symbols) - len(newest)
    requests_evicted = _count(data.get("requests_evicted"))

    # Everything is read: only now is the tracker changed (what it already holds wins).
    for key, device in kept:
        fleet.devices.setdefault(key, device)
    for symbol, stats in newest.items():
        correlator.symbols.setdefault(symbol, stats)
    correlator.forgotten.requests += forgotten.requests
    correlator.forgotten.responses += forgotten.responses
    correlator.forgotten.timeouts += forgotten.timeouts
    correlator.symbols_forgotten += symbols_forgotten
    correlator.evicted += requests_evicted
    fleet.evicted += devices_evicted
    tracker.counts.received.update(received)
    tracker.counts.malformed.update(malformed)
    return Restored(devices=len(kept), symbols=len(newest), skipped=skipped)


def state_summary(tracker: FleetTracker) -> Mapping[str, Any]:
    """What a restore must bring back, for comparing two trackers."""
    correlator = tracker.correlator
    return {
        "devices": {key: _device_row(d, 0.0)[:-2] for key, d in tracker.fleet.devices.items()},
        "symbols": {
            symbol: ([getattr(stats, n) for n in _COUNTS], stats.latency.summary())
            for symbol, stats in correlator.symbols.items()
        },
        "totals": correlator.totals(),
        "received": dict(tracker.counts.received),
        "malformed": dict(tracker.counts.malformed),
    }

"""Diagnostics: the entry and the device state as the core parsed it, secrets removed.

Three layers, because addresses and ids leak three ways. By key: credentials, the DTU's URL,
the broker host, MACs, IPs, host names and Tasmota topics (``tasmota_`` plus the end of the
MAC by default) are replaced wherever they sit. Whole values: a string that is one of a
Tasmota device's ids (its name, when that is its topic) is replaced. Inside text: the entry's
own addresses are cut out of every string and key, since free text such as a broker's
``last_error`` ("Connect call failed ('10.0.0.2', 1883)") names them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from typing import Any
from urllib.parse import urlsplit

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant

from . import FleetMetricsConfigEntry, FleetMetricsRuntime
from .agents import AgentsRuntime
from .agents.coordinator import AgentsCoordinator
from .const import CONF_TOKEN_HASH
from .core.mqtt.session import BrokerSession
from .opendtu import OpenDtuRuntime
from .tasmota import TasmotaRuntime
from .tickrmeter import TickrMeterRuntime

# Host tokens are never stored; their hashes are, and stay out as well (belt and braces: the
# agents part below never reads them in the first place).
TO_REDACT = {
    CONF_PASSWORD,
    CONF_USERNAME,
    CONF_URL,
    CONF_HOST,
    "mac",
    "ip",
    "hostname",
    "bssid",
    "token",
    CONF_TOKEN_HASH,
    "topic",
}
# Shorter values are not scrubbed from free text: they would mangle unrelated words. The
# fields that hold them are still redacted by key.
MIN_SCRUBBED = 3


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: FleetMetricsConfigEntry
) -> dict[str, Any]:
    """The entry's settings and its runtime counters, with addresses and device ids removed."""
    entry_data = {"data": dict(entry.data), "options": dict(entry.options)}
    runtime = entry.runtime_data
    if isinstance(runtime, OpenDtuRuntime):
        coordinator = runtime.coordinator
        state: dict[str, Any] = {
            "live_connected": coordinator.live_connected,
            "live_messages": coordinator.collector.live_messages,
            "live_parse_errors": coordinator.collector.parse_errors,
            "last_update_success": coordinator.last_update_success,
            "snapshot": dataclasses.asdict(coordinator.data),
        }
    elif isinstance(runtime, AgentsRuntime):
        state = _agents(runtime.coordinator)
    elif isinstance(runtime, TickrMeterRuntime):
        tickrmeter = runtime.coordinator
        tracker = tickrmeter.tracker
        state = {
            "broker": _broker(tickrmeter.session),
            "messages_received": dict(tracker.counts.received),
            "messages_malformed": dict(tracker.counts.malformed),
            "rejects": dict(tickrmeter.rejects.by_kind),
            "requests_evicted": tracker.correlator.evicted,
            "degraded_symbols": {s: list(r) for s, r in tickrmeter.health.degraded.items()},
            # Fleet-wide figures only: device ids stay out of diagnostics.
            "snapshot": dataclasses.asdict(tickrmeter.data),
        }
    else:
        tasmota = runtime.coordinator
        state = {
            "broker": _broker(tasmota.session),
            "parse_errors": tasmota.tracker.parse_errors,
            "rejects": dict(tasmota.rejects.by_kind),
            "skipped_values": tasmota.tracker.skipped.count,
            # A list, not a dict keyed by topic: the topic is a device id.
            "devices": [
                {
                    "name": device.name,  # the topic when undiscovered: then scrubbed
                    "device": dataclasses.asdict(device.device) if device.device else None,
                    "online": device.online,
                    "health": device.health,
                    "relays": device.relays,
                    "readings": {
                        f"{key[0]}{dict(key[1])}": reading.fields
                        for key, reading in device.readings.items()
                    },
                }
                for device in tasmota.tracker.devices.values()
            ],
        }
    redacted = async_redact_data({"entry": entry_data, **state}, TO_REDACT)
    scrubbed: dict[str, Any] = _scrub(redacted, _addresses(entry), _device_ids(runtime))
    return scrubbed


def _broker(session: BrokerSession) -> dict[str, Any]:
    return {
        "state": str(session.state),
        "last_error": session.last_error,
        "reconnects": session.reconnects,
        "messages": session.messages,
        "subscription_failures": session.subscription_failures,
        "failed_subscriptions": dict(session.failed_subscriptions),
    }


def _agents(coordinator: AgentsCoordinator) -> dict[str, Any]:
    """Each host's connection state and readings; no token and no hash."""
    hub = coordinator.hub
    hosts: dict[str, Any] = {}
    for name, readings in coordinator.data.items():
        host = hub.hosts.get(name)
        hosts[name] = {
            "online": host.online if host else False,
            "connected": host is not None and host.connection is not None,
            "last_seen": host.last_seen if host else None,
            "agent_version": host.agent_version if host else "",
            "last_seq": host.last_seq if host else 0,
            "batches_received": host.batches_received if host else 0,
            "batches_replayed": host.batches_replayed if host else 0,
            "batches_duplicate": host.batches_duplicate if host else 0,
            "seq_gaps": host.seq_gaps if host else 0,
            "samples_dropped": host.samples_dropped if host else 0,
            "readings": {
                **{
                    field.name: getattr(readings, field.name)
                    for field in dataclasses.fields(readings)
                    if not field.name.startswith("_") and field.name != "temperatures"
                },
                "temperatures": {
                    f"{chip}/{sensor}": value
                    for (chip, sensor), value in readings.temperatures.items()
                },
            },
        }
    return {
        "hub": {
            "stats": dataclasses.asdict(hub.stats),
            "rejects": dict(hub.rejects.by_kind),
            "grace_seconds": hub.limits.grace,
            "failed_logins_tracked": len(hub.limiter),
        },
        "hosts": hosts,
    }


def _addresses(entry: FleetMetricsConfigEntry) -> set[str]:
    """The entry's own addresses (DTU URL and host, broker host): few, found inside text."""
    found: set[str] = {entry.data.get(CONF_HOST) or ""}
    if url := entry.data.get(CONF_URL):
        found.add(url)
        with contextlib.suppress(ValueError):  # not a URL after all: nothing more to find
            found.add(urlsplit(url).hostname or "")
    return {value for value in found if len(value) >= MIN_SCRUBBED}


def _device_ids(runtime: FleetMetricsRuntime) -> set[str]:
    """Tasmota topics, MACs, IPs and host names: replaced where a whole string is one.

    Compared whole (a set lookup) rather than searched for, since a fleet has thousands; a
    device's name is one of them when it equals its topic.
    """
    found: set[str] = set()
    if isinstance(runtime, TasmotaRuntime):
        for state in runtime.coordinator.tracker.devices.values():
            found.add(state.topic)
            if device := state.device:
                found.update((device.mac, device.topic, device.ip or "", device.hostname or ""))
    found.discard("")
    return found


def _scrub(value: Any, addresses: set[str], ids: set[str]) -> Any:
    """``value`` with ``ids`` replaced and ``addresses`` cut out of every string and key."""
    # Longest first, so that a URL goes as a whole before its host is looked for.
    alternatives = sorted(addresses, key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, alternatives)), re.I) if alternatives else None

    def scrub(item: Any) -> Any:
        if isinstance(item, str):
            if item in ids:
                return REDACTED
            return pattern.sub(REDACTED, item) if pattern else item
        if isinstance(item, dict):
            return {scrub(key): scrub(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [scrub(inner) for inner in item]
        return item

    return scrub(value)

"""Diagnostics: the entry and the device state as the core parsed it, secrets removed."""

from __future__ import annotations

import dataclasses
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant

from . import FleetMetricsConfigEntry
from .agents import AgentsRuntime
from .agents.coordinator import AgentsCoordinator
from .const import CONF_TOKEN_HASH
from .core.mqtt.session import BrokerSession
from .opendtu import OpenDtuRuntime
from .tickrmeter import TickrMeterRuntime

# Host tokens are never stored; their hashes are, and stay out as well (belt and braces: the
# agents part below never reads them in the first place).
TO_REDACT = {CONF_PASSWORD, CONF_USERNAME, "mac", "ip", "bssid", "token", CONF_TOKEN_HASH}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: FleetMetricsConfigEntry
) -> dict[str, Any]:
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
            "devices": {
                topic: {
                    "device": dataclasses.asdict(device.device) if device.device else None,
                    "online": device.online,
                    "health": device.health,
                    "relays": device.relays,
                    "readings": {
                        f"{key[0]}{dict(key[1])}": reading.fields
                        for key, reading in device.readings.items()
                    },
                }
                for topic, device in tasmota.tracker.devices.items()
            },
        }
    return async_redact_data({"entry": entry_data, **state}, TO_REDACT)


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

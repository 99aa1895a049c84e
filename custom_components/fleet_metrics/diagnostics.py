"""Diagnostics: the entry and the device state as the core parsed it, secrets removed."""

from __future__ import annotations

import dataclasses
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant

from . import FleetMetricsConfigEntry
from .core.mqtt.session import BrokerSession
from .opendtu import OpenDtuRuntime
from .tickrmeter import TickrMeterRuntime

TO_REDACT = {CONF_PASSWORD, CONF_USERNAME, "mac", "ip", "bssid"}


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

"""Diagnostics: the entry and the device state as the core parsed it, secrets removed."""

from __future__ import annotations

import dataclasses
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant

from . import FleetMetricsConfigEntry

TO_REDACT = {CONF_PASSWORD, CONF_USERNAME, "mac", "ip"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: FleetMetricsConfigEntry
) -> dict[str, Any]:
    coordinator = entry.runtime_data.coordinator
    return {
        "entry": async_redact_data(
            {"data": dict(entry.data), "options": dict(entry.options)}, TO_REDACT
        ),
        "live_connected": coordinator.live_connected,
        "live_messages": coordinator.collector.live_messages,
        "live_parse_errors": coordinator.collector.parse_errors,
        "last_update_success": coordinator.last_update_success,
        "snapshot": async_redact_data(dataclasses.asdict(coordinator.data), TO_REDACT),
    }
